"""Backbones shared by every model of the paper (Flax Linen).

The paper uses the DCGAN architecture (Radford et al., 2015) for GANs and shares
it with the VAEs: generators and VAE decoders use the *generator* backbone,
discriminators, encoders and classifiers the *discriminator* backbone. MLP
backbones of the same interface serve the Flax-example and pythae-sized models.

Batch norm is functional: statistics live in the ``batch_stats`` collection and
are updated with ``mutable=['batch_stats']`` when ``train=True``. With
``bn_axis_name`` set (inside ``jax.shard_map``), batch statistics are averaged
over that mapped axis, i.e. they are global-batch statistics, the same as a
single-device step on the whole batch and as ``jax.jit`` over a sharded batch.
"""

from __future__ import annotations

from typing import Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from unigen_jax.models import kernels

# DCGAN initialisation: N(0, 0.02) weights, N(1, 0.02) batch-norm scales.
dcgan_init = nn.initializers.normal(0.02)


def _scale_init(key, shape, dtype=jnp.float32):
  return 1.0 + 0.02 * jax.random.normal(key, shape, dtype)


def _levels(image_shape: Sequence[int]) -> tuple[int, int]:
  """(number of stride-2 levels, starting spatial size) for a DCGAN of this image size."""
  size = image_shape[0]
  if image_shape[0] != image_shape[1]:
    raise ValueError(f"DCGAN backbones need square images, got image_shape={tuple(image_shape)}.")
  for levels in (4, 3, 2):
    if size % (2 ** levels) == 0 and size // (2 ** levels) >= 4:
      return levels, size // (2 ** levels)
  if size % 4 == 0:
    return 2, size // 4
  raise ValueError(
      f"DCGAN backbones need an image side divisible by 4 (28, 32, 64, ...), got {size}.")


def one_hot_channels(x: jax.Array, labels: jax.Array, num_classes: int) -> jax.Array:
  """Appends the one-hot label as constant feature maps (conditional discriminators/encoders)."""
  onehot = jax.nn.one_hot(labels, num_classes, dtype=x.dtype)
  maps = jnp.broadcast_to(onehot[:, None, None, :], x.shape[:3] + (num_classes,))
  return jnp.concatenate([x, maps], axis=-1)


class BatchNorm(nn.Module):
  """Batch norm with DCGAN initialisation and an optional cross-device axis."""
  axis_name: Optional[str] = None
  dtype: jnp.dtype = jnp.float32
  epsilon: float = 1e-5

  @nn.compact
  def __call__(self, x, train: bool):
    return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=self.epsilon,
                        scale_init=_scale_init, axis_name=self.axis_name,
                        dtype=self.dtype)(x)


class DCGANDiscriminatorBackbone(nn.Module):
  """Strided convolutions, LeakyReLU 0.2, batch norm on every layer but the input one.

  28x28 -> 14 -> 7 (widths w, 2w); 32x32 -> 16 -> 8 -> 4 (w, 2w, 4w). Returns the
  flattened features ``[B, F]``.
  """
  image_shape: Sequence[int]
  width: int = 64
  bn_axis_name: Optional[str] = None
  dtype: jnp.dtype = jnp.float32
  batch_chunk: int = 0  # convolutions over chunks of this many examples (0: whole batch)

  @nn.compact
  def __call__(self, x, train: bool):
    levels, _ = _levels(self.image_shape)
    for level in range(levels):
      # No bias where batch norm follows: its gradient is exactly zero there.
      conv = nn.Conv(self.width * 2 ** level, (4, 4), strides=(2, 2), padding="SAME",
                     use_bias=level == 0, kernel_init=dcgan_init, dtype=self.dtype)
      x = kernels.over_batch_chunks(conv, x, self.batch_chunk)
      if level > 0:
        x = BatchNorm(self.bn_axis_name, self.dtype)(x, train)
      x = nn.leaky_relu(x, 0.2)
    return x.reshape((x.shape[0], -1))


class DCGANGeneratorBackbone(nn.Module):
  """Dense projection, then stride-2 transposed convolutions (4x4, 'SAME'), ReLU and batch norm.

  No batch norm on the output layer. Returns pre-activation outputs (logits)
  of shape ``[B, *image_shape]``: a Bernoulli decoder uses them as logits, a GAN
  generator maps them to images with a sigmoid.
  """
  image_shape: Sequence[int]
  width: int = 64
  bn_axis_name: Optional[str] = None
  dtype: jnp.dtype = jnp.float32
  batch_chunk: int = 0  # convolutions over chunks of this many examples (0: whole batch)

  @nn.compact
  def __call__(self, z, train: bool):
    levels, start = _levels(self.image_shape)
    top_width = self.width * 2 ** (levels - 1)
    x = nn.Dense(start * start * top_width, use_bias=False, kernel_init=dcgan_init,
                 dtype=self.dtype)(z)
    x = nn.relu(BatchNorm(self.bn_axis_name, self.dtype)(x, train))
    x = x.reshape((z.shape[0], start, start, top_width))
    # Named as nn.ConvTranspose would be, so parameter trees (and checkpoints) keep their names.
    for index, level in enumerate(reversed(range(1, levels))):
      x = SubpixelConvTranspose(self.width * 2 ** (level - 1), use_bias=False,
                                dtype=self.dtype, batch_chunk=self.batch_chunk,
                                name=f"ConvTranspose_{index}")(x)
      x = nn.relu(BatchNorm(self.bn_axis_name, self.dtype)(x, train))
    x = SubpixelConvTranspose(self.image_shape[-1], dtype=self.dtype,
                              batch_chunk=self.batch_chunk, name=f"ConvTranspose_{levels - 1}")(x)
    return x.astype(jnp.float32)


class UpsampleDiscriminatorBackbone(nn.Module):
  """Four 3x3 stride-2 convolutions, each LeakyReLU 0.2, channel dropout, batch norm.

  The discriminator of PyTorch-GAN's DCGAN (eriklindernoren/PyTorch-GAN,
  ``implementations/dcgan``), the pair of ``UpsampleGeneratorBackbone``: widths
  ``w/4, w/2, w, 2w`` (16-32-64-128 at ``w=64``), 32 -> 16 -> 8 -> 4 -> 2, batch norm
  after the activation and dropout on every block but the first, so conv biases are
  kept (they are not cancelled by the batch norm). ``dropout`` drops whole channels
  (``Dropout2d``) in training; it needs a ``'dropout'`` RNG, which ``Context.apply``
  supplies when the model's ``dropout`` is positive. Returns ``[B, F]``.
  """
  width: int = 64
  dropout: float = 0.25
  bn_epsilon: float = 1e-5
  bn_axis_name: Optional[str] = None
  dtype: jnp.dtype = jnp.float32
  batch_chunk: int = 0  # convolutions over chunks of this many examples (0: whole batch)

  @nn.compact
  def __call__(self, x, train: bool):
    for level, factor in enumerate((0.25, 0.5, 1, 2)):
      conv = nn.Conv(max(1, int(self.width * factor)), (3, 3), strides=(2, 2),
                     padding=((1, 1), (1, 1)), kernel_init=dcgan_init, dtype=self.dtype)
      x = kernels.over_batch_chunks(conv, x, self.batch_chunk)
      x = nn.leaky_relu(x, 0.2)
      if self.dropout > 0:
        x = nn.Dropout(self.dropout, broadcast_dims=(1, 2), deterministic=not train)(x)
      if level > 0:
        x = BatchNorm(self.bn_axis_name, self.dtype, self.bn_epsilon)(x, train)
    return x.reshape((x.shape[0], -1))


def _add_bias(module: nn.Module, y: jax.Array) -> jax.Array:
  """``y + bias`` with a zero-initialised ``bias`` parameter of ``module.features`` entries,
  as ``nn.Conv`` / ``nn.ConvTranspose`` have it (``module.use_bias`` off: ``y``)."""
  if not module.use_bias:
    return y
  bias = module.param("bias", nn.initializers.zeros, (module.features,))
  return y + bias.astype(module.dtype)


class UpsampleConv(nn.Module):
  """Nearest-neighbour x2 upsampling followed by a 3x3 'same' convolution, computed exactly
  without the upsampled tensor.

  Parameters are those of the 3x3 convolution on the upsampled image (``kernel``
  ``[3, 3, C_in, C_out]``, as in PyTorch-GAN's ``Upsample`` + ``Conv2d(k=3, p=1)``).
  ``method='subpixel'`` (default) runs it as the equal 4x4 stride-2 transposed convolution
  (``kernels.upsampled_conv_kernel``) in sub-pixel form (``kernels.upsample_conv``): one 2x2
  convolution per output phase at the *input* resolution, 16 instead of 36 multiply-adds
  per input pixel and channel pair (2.25x fewer FLOPs, the same function up to float
  rounding). ``'direct'``
  upsamples and convolves, as written.
  """
  features: int
  use_bias: bool = True
  method: str = "subpixel"
  dtype: jnp.dtype = jnp.float32
  batch_chunk: int = 0  # convolutions over chunks of this many examples (0: whole batch)

  @nn.compact
  def __call__(self, x):
    kernel = self.param("kernel", dcgan_init, (3, 3, x.shape[-1], self.features))
    x, kernel = x.astype(self.dtype), kernel.astype(self.dtype)
    return _add_bias(self, kernels.over_batch_chunks(
        lambda v: kernels.upsample_conv(v, kernel, self.method), x, self.batch_chunk))


class UpsampleGeneratorBackbone(nn.Module):
  """Dense projection, then (nearest-neighbour x2 upsampling, 3x3 convolution) blocks.

  The generator of PyTorch-GAN's DCGAN: Dense -> ``(S/4, S/4, 2w)``, batch norm, then
  twice [upsample x2, conv 3x3, batch norm, LeakyReLU 0.2] with widths ``2w, w``, and a
  3x3 convolution to the image channels (no batch norm). Each upsample + conv runs as one
  sub-pixel convolution at the lower resolution (``UpsampleConv``: same parameters and
  function, 2.25x fewer FLOPs), fast on XLA:CPU too. Conv biases directly before batch
  norm are dropped (their gradient is exactly zero). Returns logits ``[B, *image_shape]``.
  """
  image_shape: Sequence[int]
  width: int = 64
  bn_epsilon: float = 1e-5
  bn_axis_name: Optional[str] = None
  dtype: jnp.dtype = jnp.float32
  upsample_method: str = "subpixel"  # see UpsampleConv
  batch_chunk: int = 0  # convolutions over chunks of this many examples (0: whole batch)

  @nn.compact
  def __call__(self, z, train: bool):
    size = self.image_shape[0]
    if self.image_shape[0] != self.image_shape[1] or size % 4:
      raise ValueError("the upsampling generator needs square images with a side divisible "
                       f"by 4 (28, 32, ...), got image_shape={tuple(self.image_shape)}.")
    start, top = size // 4, 2 * self.width
    x = nn.Dense(start * start * top, kernel_init=dcgan_init, dtype=self.dtype)(z)
    x = x.reshape((z.shape[0], start, start, top))
    # PyTorch-GAN's first batch norm uses the default epsilon; only the later ones 0.8.
    x = BatchNorm(self.bn_axis_name, self.dtype)(x, train)
    for width in (top, self.width):
      x = UpsampleConv(width, use_bias=False, method=self.upsample_method, dtype=self.dtype,
                       batch_chunk=self.batch_chunk)(x)
      x = nn.leaky_relu(BatchNorm(self.bn_axis_name, self.dtype, self.bn_epsilon)(x, train), 0.2)
    conv = nn.Conv(self.image_shape[-1], (3, 3), padding=((1, 1), (1, 1)),
                   kernel_init=dcgan_init, dtype=self.dtype)
    return kernels.over_batch_chunks(conv, x, self.batch_chunk).astype(jnp.float32)


class SubpixelConvTranspose(nn.Module):
  """``nn.ConvTranspose(features, (4, 4), strides=(2, 2), padding='SAME')``, computed as four
  2x2 convolutions at the input resolution (one per output phase) and interleaved.

  Same parameters (``kernel`` ``[4, 4, C_in, C_out]``, ``bias``) and the same function as
  ``lax.conv_transpose`` up to float rounding. Output row ``2m + a`` only sees kernel rows
  ``a`` and ``a + 2`` at input rows ``m + a - 1`` and ``m + a``, so the zeros that a
  transposed convolution inserts are never multiplied. On XLA:CPU the gradient of a wide
  ``lax.conv_transpose`` is off Eigen's fast path: this form is ~5x faster fwd+bwd for
  128 -> 64 channels at 7x7, batch 64 (``python -m benchmarks.layer_times``). ``method='auto'`` uses this on CPU when
  ``C_out > 1`` (with one output channel the lax path is faster) and ``lax.conv_transpose``
  on GPU/TPU; ``'subpixel'`` / ``'lax'`` force one.
  """
  features: int
  use_bias: bool = True
  method: str = "auto"
  dtype: jnp.dtype = jnp.float32
  batch_chunk: int = 0  # convolutions over chunks of this many examples (0: whole batch)

  @nn.compact
  def __call__(self, x):
    kernel = self.param("kernel", dcgan_init, (4, 4, x.shape[-1], self.features))
    x, kernel = x.astype(self.dtype), kernel.astype(self.dtype)
    # 'SAME' for kernel 4, stride 2 pads the dilated input by 2 on each side.
    return _add_bias(self, kernels.over_batch_chunks(
        lambda v: kernels.conv_transpose(v, kernel, 2, ((2, 2), (2, 2)), self.method), x,
        self.batch_chunk))


class MLPBackbone(nn.Module):
  """Flattens the input and applies Dense layers with the given activation."""
  hidden: Sequence[int] = (500,)
  activation: str = "relu"
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool):
    del train  # no batch norm in the MLPs
    act = {"relu": nn.relu, "leaky_relu": lambda v: nn.leaky_relu(v, 0.2)}[self.activation]
    x = x.reshape((x.shape[0], -1))
    for size in self.hidden:
      x = act(nn.Dense(size, dtype=self.dtype)(x))
    return x


class MLPGeneratorBackbone(nn.Module):
  """MLP from a code to image-shaped logits (the Flax example / pythae decoders)."""
  image_shape: Sequence[int]
  hidden: Sequence[int] = (500,)
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, z, train: bool):
    h = MLPBackbone(self.hidden, "relu", self.dtype)(z, train)
    size = 1
    for d in self.image_shape:
      size *= d
    out = nn.Dense(size, dtype=self.dtype)(h)
    return out.reshape((z.shape[0],) + tuple(self.image_shape)).astype(jnp.float32)


class StridedConvTranspose(nn.Module):
  """Stride-2 transposed convolution with explicit ``(low, high)`` padding, fast on CPU too.

  Same parameters (``kernel`` ``[k, k, C_in, C_out]``, ``bias``) and the same result as
  ``nn.ConvTranspose`` (``lax.conv_transpose``). On XLA:CPU the kernel gradient of a wide
  transposed convolution falls off Eigen's fast path (4.4 s for 1024->512 channels at
  batch 64, against 0.05 s forward); on CPU with ``C_out > 1`` this module runs the
  sub-pixel form (``kernels.conv_transpose``) instead. Other backends and single-channel
  outputs (where the lax path is faster) keep ``lax.conv_transpose``.
  """
  features: int
  kernel_size: int
  padding: tuple  # ((low, high), (low, high))
  strides: int = 2
  use_bias: bool = True
  dtype: jnp.dtype = jnp.float32
  method: str = "auto"  # 'auto', 'subpixel' or 'lax'
  batch_chunk: int = 0  # convolutions over chunks of this many examples (0: whole batch)

  @nn.compact
  def __call__(self, x):
    k, s = self.kernel_size, self.strides
    kernel = self.param("kernel", nn.initializers.lecun_normal(),
                        (k, k, x.shape[-1], self.features))
    x = x.astype(self.dtype)
    kernel = kernel.astype(self.dtype)
    padding = tuple(tuple(int(v) for v in p) for p in self.padding)
    return _add_bias(self, kernels.over_batch_chunks(
        lambda v: kernels.conv_transpose(v, kernel, s, padding, self.method), x, self.batch_chunk))


class StridedConv(nn.Module):
  """``nn.Conv(features, (k, k), strides=(s, s), padding=explicit)`` with a CPU fast path.

  Same parameters (``kernel`` ``[k, k, C_in, C_out]``, optional ``bias``) and function. With
  ``method='auto'`` a layer whose output is at most 4x4 runs as ``kernels.patches_conv`` on CPU
  (20-50x faster there for the wide late layers of a conv encoder); otherwise, and on
  GPU/TPU, ``lax.conv_general_dilated``.
  """
  features: int
  kernel_size: int
  strides: int = 2
  padding: int = 1
  use_bias: bool = True
  method: str = "auto"  # 'auto', 'patches' or 'lax'
  dtype: jnp.dtype = jnp.float32
  batch_chunk: int = 0  # convolutions over chunks of this many examples (0: whole batch)

  @nn.compact
  def __call__(self, x):
    k, s, p = self.kernel_size, self.strides, self.padding
    kernel = self.param("kernel", nn.initializers.lecun_normal(),
                        (k, k, x.shape[-1], self.features))
    x, kernel = x.astype(self.dtype), kernel.astype(self.dtype)
    return _add_bias(self, kernels.over_batch_chunks(
        lambda v: kernels.conv(v, kernel, s, ((p, p), (p, p)), self.method), x, self.batch_chunk))


class ConvStackEncoderBackbone(nn.Module):
  """Configurable conv encoder: ``kernel``/stride-2 convolutions with explicit ``padding``,
  batch norm and ReLU on every layer (the pythae-style MNIST encoder: channels
  128-256-512-1024, kernel 4, padding 1 gives 28 -> 14 -> 7 -> 3 -> 1)."""
  channels: Sequence[int] = (128, 256, 512, 1024)
  kernel: int = 4
  padding: int = 1
  bn_axis_name: Optional[str] = None
  dtype: jnp.dtype = jnp.float32
  batch_chunk: int = 0  # convolutions over chunks of this many examples (0: whole batch)

  @nn.compact
  def __call__(self, x, train: bool):
    for index, width in enumerate(self.channels):
      x = StridedConv(width, self.kernel, 2, self.padding, use_bias=False, dtype=self.dtype,
                      batch_chunk=self.batch_chunk, name=f"Conv_{index}")(x)  # nn.Conv's name: same parameter tree
      x = nn.relu(BatchNorm(self.bn_axis_name, self.dtype)(x, train))
    return x.reshape((x.shape[0], -1))


class ConvStackDecoderBackbone(nn.Module):
  """Configurable transposed-conv decoder: Dense to ``start`` (H, W, C), then stride-2
  transposed convolutions (batch norm, ReLU) whose output sizes halve back from the
  image side, and a last one to the image channels (the pythae-style MNIST decoder:
  Dense 16 -> 4x4x1024, kernel 3, channels 512-256, 4 -> 7 -> 14 -> 28)."""
  image_shape: Sequence[int]
  start: Sequence[int] = (4, 4, 1024)
  channels: Sequence[int] = (512, 256)
  kernel: int = 3
  bn_axis_name: Optional[str] = None
  dtype: jnp.dtype = jnp.float32
  batch_chunk: int = 0  # convolutions over chunks of this many examples (0: whole batch)

  @nn.compact
  def __call__(self, z, train: bool):
    h, w, c = self.start
    x = nn.Dense(h * w * c, dtype=self.dtype)(z).reshape((z.shape[0], h, w, c))
    sizes = [self.image_shape[0] // 2 ** i for i in reversed(range(len(self.channels) + 1))]
    widths = list(self.channels) + [self.image_shape[-1]]
    for i, (size, width) in enumerate(zip(sizes, widths)):
      # Padding of the dilated input that gives exactly `size` (PyTorch's padding=1 and
      # output_padding in {0, 1} for kernel 3).
      total = size - (x.shape[1] - 1) * 2 - 1 + self.kernel - 1
      low = self.kernel - 2
      if total < 0 or total - low < 0:
        raise ValueError(f"cannot reach size {size} from {x.shape[1]} with kernel {self.kernel}.")
      last = i == len(widths) - 1
      x = StridedConvTranspose(width, self.kernel, ((low, total - low),) * 2, 2, use_bias=last,
                               dtype=self.dtype, batch_chunk=self.batch_chunk)(x)
      if not last:
        x = nn.relu(BatchNorm(self.bn_axis_name, self.dtype)(x, train))
    return x.astype(jnp.float32)
