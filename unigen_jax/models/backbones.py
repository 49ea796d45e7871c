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
