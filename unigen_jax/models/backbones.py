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

  @nn.compact
  def __call__(self, x, train: bool):
    return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
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

  @nn.compact
  def __call__(self, x, train: bool):
    levels, _ = _levels(self.image_shape)
    for level in range(levels):
      # No bias where batch norm follows: its gradient is exactly zero there.
      x = nn.Conv(self.width * 2 ** level, (4, 4), strides=(2, 2), padding="SAME",
                  use_bias=level == 0, kernel_init=dcgan_init, dtype=self.dtype)(x)
      if level > 0:
        x = BatchNorm(self.bn_axis_name, self.dtype)(x, train)
      x = nn.leaky_relu(x, 0.2)
    return x.reshape((x.shape[0], -1))


class DCGANGeneratorBackbone(nn.Module):
  """Dense projection, then stride-2 transposed convolutions, ReLU and batch norm.

  No batch norm on the output layer. Returns pre-activation outputs (logits)
  of shape ``[B, *image_shape]``: a Bernoulli decoder uses them as logits, a GAN
  generator maps them to images with a sigmoid.
  """
  image_shape: Sequence[int]
  width: int = 64
  bn_axis_name: Optional[str] = None
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, z, train: bool):
    levels, start = _levels(self.image_shape)
    top_width = self.width * 2 ** (levels - 1)
    x = nn.Dense(start * start * top_width, use_bias=False, kernel_init=dcgan_init,
                 dtype=self.dtype)(z)
    x = nn.relu(BatchNorm(self.bn_axis_name, self.dtype)(x, train))
    x = x.reshape((z.shape[0], start, start, top_width))
    for level in reversed(range(1, levels)):
      x = nn.ConvTranspose(self.width * 2 ** (level - 1), (4, 4), strides=(2, 2), padding="SAME",
                           use_bias=False, kernel_init=dcgan_init, dtype=self.dtype)(x)
      x = nn.relu(BatchNorm(self.bn_axis_name, self.dtype)(x, train))
    x = nn.ConvTranspose(self.image_shape[-1], (4, 4), strides=(2, 2), padding="SAME",
                         kernel_init=dcgan_init, dtype=self.dtype)(x)
    return x.astype(jnp.float32)


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
  """Transposed convolution with explicit ``(low, high)`` padding, fast on CPU too.

  Same parameters (``kernel`` ``[k, k, C_in, C_out]``, ``bias``) and the same result as
  ``nn.ConvTranspose`` (``lax.conv_transpose``). On XLA:CPU the kernel gradient of a
  wide transposed convolution falls off Eigen's fast path (4.4 s for 1024->512 channels
  at batch 64, against 0.05 s forward); inserting the zeros explicitly, padding with
  ``jnp.pad`` and convolving ``VALID`` computes the same function with ordinary
  convolutions (0.6 s). Narrow layers and other backends keep ``lax.conv_transpose``.
  """
  features: int
  kernel_size: int
  padding: tuple  # ((low, high), (low, high))
  strides: int = 2
  use_bias: bool = True
  dtype: jnp.dtype = jnp.float32
  zero_insert_min_channels: int = 16384  # C_in * C_out above which CPU uses zero insertion

  @nn.compact
  def __call__(self, x):
    k, s = self.kernel_size, self.strides
    kernel = self.param("kernel", nn.initializers.lecun_normal(),
                        (k, k, x.shape[-1], self.features))
    x = x.astype(self.dtype)
    kernel = kernel.astype(self.dtype)
    wide = x.shape[-1] * self.features >= self.zero_insert_min_channels
    if jax.default_backend() == "cpu" and wide:
      b, h, w, c = x.shape
      up = jnp.zeros((b, (h - 1) * s + 1, (w - 1) * s + 1, c), x.dtype).at[:, ::s, ::s].set(x)
      up = jnp.pad(up, ((0, 0), tuple(self.padding[0]), tuple(self.padding[1]), (0, 0)))
      y = jax.lax.conv_general_dilated(up, kernel, (1, 1), "VALID",
                                       dimension_numbers=("NHWC", "HWIO", "NHWC"))
    else:
      y = jax.lax.conv_transpose(x, kernel, (s, s), tuple(tuple(p) for p in self.padding),
                                 dimension_numbers=("NHWC", "HWIO", "NHWC"))
    if self.use_bias:
      y = y + self.param("bias", nn.initializers.zeros, (self.features,)).astype(self.dtype)
    return y


class ConvStackEncoderBackbone(nn.Module):
  """Configurable conv encoder: ``kernel``/stride-2 convolutions with explicit ``padding``,
  batch norm and ReLU on every layer (the pythae-style MNIST encoder: channels
  128-256-512-1024, kernel 4, padding 1 gives 28 -> 14 -> 7 -> 3 -> 1)."""
  channels: Sequence[int] = (128, 256, 512, 1024)
  kernel: int = 4
  padding: int = 1
  bn_axis_name: Optional[str] = None
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool):
    for width in self.channels:
      x = nn.Conv(width, (self.kernel, self.kernel), strides=(2, 2),
                  padding=((self.padding, self.padding),) * 2, use_bias=False,
                  dtype=self.dtype)(x)
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
                               dtype=self.dtype)(x)
      if not last:
        x = nn.relu(BatchNorm(self.bn_axis_name, self.dtype)(x, train))
    return x.astype(jnp.float32)
