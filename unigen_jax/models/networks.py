"""The networks of every variant, built on the shared backbones.

Every module is called as ``module.apply(variables, *inputs, train=...)`` and
all take the same ``ModelConfig``-derived attributes, so GAN and VAE variants
share parameter pytrees: a VAE decoder *is* a GAN generator, a VAE encoder or a
classifier is a GAN discriminator with another head.

Shapes: images ``[B, H, W, C]`` float32 in [0, 1]; codes ``[B, D]``; labels
``[B]`` int32; logits ``[B]`` for real/fake heads.
"""

from __future__ import annotations

from typing import Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from unigen_jax.models import backbones


class _Config(nn.Module):
  """Fields shared by the networks (set from a ``ModelConfig``)."""
  image_shape: Sequence[int] = (28, 28, 1)
  architecture: str = "dcgan"       # 'dcgan', 'dcgan_upsample', 'conv' or 'mlp'
  width: int = 64                   # DCGAN base width
  hidden: Sequence[int] = (500,)    # MLP hidden sizes
  num_classes: Optional[int] = None  # set for label-conditioned networks
  mlp_activation: str = "leaky_relu"  # of MLP discriminators/encoders ('relu' as in pythae)
  conv_channels: Sequence[int] = (128, 256, 512, 1024)  # 'conv' encoder
  deconv_start: Sequence[int] = (4, 4, 1024)            # 'conv' decoder
  deconv_channels: Sequence[int] = (512, 256)
  bn_epsilon: float = 1e-5           # of the 'dcgan_upsample' blocks (PyTorch-GAN: 0.8)
  dropout: float = 0.0              # channel dropout of the 'dcgan_upsample' discriminator
  bn_axis_name: Optional[str] = None
  dtype: jnp.dtype = jnp.float32

  def image_features(self, x, labels, train):
    """The discriminator backbone (conv or MLP), label-conditioned when num_classes is set."""
    if tuple(x.shape[1:]) != tuple(self.image_shape):
      raise ValueError(
          f"{type(self).__name__} was built for images of shape {tuple(self.image_shape)} "
          f"but got {tuple(x.shape[1:])}; set the model's image_shape to the dataset's.")
    if self.num_classes is not None:
      if labels is None:
        raise ValueError(f"{type(self).__name__} is label-conditioned: pass labels.")
      x = backbones.one_hot_channels(x, labels, self.num_classes)
    if self.architecture == "dcgan":
      h = backbones.DCGANDiscriminatorBackbone(
          self.image_shape, self.width, self.bn_axis_name, self.dtype)(x, train)
    elif self.architecture == "dcgan_upsample":
      h = backbones.UpsampleDiscriminatorBackbone(self.width, self.dropout, self.bn_epsilon,
                                                  self.bn_axis_name, self.dtype)(x, train)
    elif self.architecture == "mlp":
      h = backbones.MLPBackbone(self.hidden, self.mlp_activation, self.dtype)(x, train)
    elif self.architecture == "conv":
      h = backbones.ConvStackEncoderBackbone(self.conv_channels, 4, 1, self.bn_axis_name,
                                             self.dtype)(x, train)
    else:
      raise ValueError(f"architecture={self.architecture!r}; use 'dcgan', 'dcgan_upsample', "
                       "'conv' or 'mlp'.")
    if self.num_classes is not None:
      h = jnp.concatenate([h, jax.nn.one_hot(labels, self.num_classes, dtype=h.dtype)], axis=-1)
    return h

  def code_input(self, z, labels):
    if self.num_classes is not None:
      if labels is None:
        raise ValueError(f"{type(self).__name__} is label-conditioned: pass labels.")
      z = jnp.concatenate([z, jax.nn.one_hot(labels, self.num_classes, dtype=z.dtype)], axis=-1)
    return z


class Generator(_Config):
  """GAN generator / VAE decoder: code (and label) -> image logits ``[B, H, W, C]``."""

  @nn.compact
  def __call__(self, z, labels=None, *, train: bool):
    z = self.code_input(z, labels)
    if self.architecture == "dcgan":
      return backbones.DCGANGeneratorBackbone(
          self.image_shape, self.width, self.bn_axis_name, self.dtype)(z, train)
    if self.architecture == "dcgan_upsample":
      return backbones.UpsampleGeneratorBackbone(self.image_shape, self.width, self.bn_epsilon,
                                                 self.bn_axis_name, self.dtype)(z, train)
    if self.architecture == "mlp":
      return backbones.MLPGeneratorBackbone(self.image_shape, self.hidden, self.dtype)(z, train)
    if self.architecture == "conv":
      return backbones.ConvStackDecoderBackbone(self.image_shape, self.deconv_start,
                                                self.deconv_channels, 3, self.bn_axis_name,
                                                self.dtype)(z, train)
    raise ValueError(f"architecture={self.architecture!r}; use 'dcgan', 'dcgan_upsample', "
                     "'conv' or 'mlp'.")


class Discriminator(_Config):
  """Real/fake discriminator (label-conditioned for CGAN): image -> logits ``[B]``."""

  @nn.compact
  def __call__(self, x, labels=None, *, train: bool):
    h = self.image_features(x, labels, train)
    return nn.Dense(1, kernel_init=backbones.dcgan_init)(h)[:, 0].astype(jnp.float32)


class InfoGANDiscriminator(_Config):
  """Discriminator with InfoGAN's code head :math:`q_\\eta(c|x)` sharing its backbone.

  Returns ``(logits [B], categorical_code_logits [B, K], continuous_code_mean [B, D])``.
  """
  num_categories: int = 10
  num_continuous: int = 2

  @nn.compact
  def __call__(self, x, labels=None, *, train: bool):
    h = self.image_features(x, labels, train)
    logits = nn.Dense(1, kernel_init=backbones.dcgan_init)(h)[:, 0]
    q = nn.leaky_relu(nn.Dense(128)(h), 0.2)
    cat_logits = nn.Dense(self.num_categories)(q)
    cont_mean = nn.Dense(self.num_continuous)(q)
    return (logits.astype(jnp.float32), cat_logits.astype(jnp.float32),
            cont_mean.astype(jnp.float32))


class Encoder(_Config):
  """Diagonal-Gaussian encoder q(z|x[, y]): image -> ``(mean [B, D], log_var [B, D])``."""
  latent_dim: int = 20

  @nn.compact
  def __call__(self, x, labels=None, *, train: bool):
    h = self.image_features(x, labels, train)
    out = nn.Dense(2 * self.latent_dim)(h).astype(jnp.float32)
    mean, log_var = jnp.split(out, 2, axis=-1)
    return mean, log_var


class Classifier(_Config):
  """Image classifier q(y|x) (the M2 classifier, the evaluation classifier): logits ``[B, C]``."""
  num_outputs: int = 10

  @nn.compact
  def __call__(self, x, labels=None, *, train: bool):
    h = self.image_features(x, labels, train)
    return nn.Dense(self.num_outputs)(h).astype(jnp.float32)


class ImplicitEncoder(_Config):
  """AVB's implicit encoder: z = f(x, eps) with eps ~ N(0, I); no tractable density."""
  latent_dim: int = 20
  noise_dim: int = 20

  @nn.compact
  def __call__(self, x, noise, labels=None, *, train: bool):
    h = self.image_features(x, labels, train)
    h = jnp.concatenate([h, noise.astype(h.dtype)], axis=-1)
    h = nn.relu(nn.Dense(256)(h))
    return nn.Dense(self.latent_dim)(h).astype(jnp.float32)


class JointDiscriminator(_Config):
  """Discriminator on (x, z) pairs: ALI/BiGAN's discriminator and AVB's critic T(x, z)."""
  joint_hidden: int = 256

  @nn.compact
  def __call__(self, x, z, labels=None, *, train: bool):
    hx = self.image_features(x, labels, train)
    hz = nn.leaky_relu(nn.Dense(self.joint_hidden)(z), 0.2)
    h = jnp.concatenate([hx, hz], axis=-1)
    h = nn.leaky_relu(nn.Dense(self.joint_hidden)(h), 0.2)
    return nn.Dense(1)(h)[:, 0].astype(jnp.float32)


class CodeMLP(nn.Module):
  """MLP on a vector: the AAE code discriminator and ADA's domain discriminator / label head."""
  hidden: Sequence[int] = (256, 256)
  num_outputs: int = 1

  @nn.compact
  def __call__(self, v, *, train: bool):
    del train
    for size in self.hidden:
      v = nn.leaky_relu(nn.Dense(size)(v), 0.2)
    out = nn.Dense(self.num_outputs)(v).astype(jnp.float32)
    return out[:, 0] if self.num_outputs == 1 else out


class FeatureExtractor(_Config):
  """ADA's feature extractor G_theta: image -> features ``[B, feature_dim]``."""
  feature_dim: int = 128

  @nn.compact
  def __call__(self, x, *, train: bool):
    h = self.image_features(x, None, train)
    return nn.relu(nn.Dense(self.feature_dim)(h)).astype(jnp.float32)
