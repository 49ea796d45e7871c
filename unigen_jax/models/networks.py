"""The networks of every variant, built on the shared backbones.

Every module is called as ``module.apply(variables, *inputs, train=...)`` and
all take the run's ``ModelConfig`` whole (``cfg``), so GAN and VAE variants
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

from unigen_jax.model_config import ModelConfig
from unigen_jax.models import backbones


class _Config(nn.Module):
  """What every network reads: the ``ModelConfig``, whether it is label-conditioned, and the
  mapped axis of its batch norm (inside ``shard_map``)."""
  cfg: ModelConfig = ModelConfig()
  conditional: bool = False
  bn_axis_name: Optional[str] = None

  @property
  def num_classes(self) -> Optional[int]:
    return self.cfg.num_classes if self.conditional else None

  def image_features(self, x, labels, train):
    """The discriminator backbone (conv or MLP), label-conditioned when num_classes is set."""
    if tuple(x.shape[1:]) != tuple(self.cfg.image_shape):
      raise ValueError(
          f"{type(self).__name__} was built for images of shape {tuple(self.cfg.image_shape)} "
          f"but got {tuple(x.shape[1:])}; set the model's image_shape to the dataset's.")
    if self.num_classes is not None:
      if labels is None:
        raise ValueError(f"{type(self).__name__} is label-conditioned: pass labels.")
      x = backbones.one_hot_channels(x, labels, self.num_classes)
    if self.cfg.architecture == "dcgan":
      h = backbones.DCGANDiscriminatorBackbone(
          self.cfg.image_shape, self.cfg.width, self.bn_axis_name, self.cfg.compute_dtype,
          batch_chunk=self.cfg.conv_batch_chunk)(x, train)
    elif self.cfg.architecture == "dcgan_upsample":
      h = backbones.UpsampleDiscriminatorBackbone(self.cfg.width, self.cfg.dropout, self.cfg.bn_epsilon,
                                                  self.bn_axis_name, self.cfg.compute_dtype,
                                                  batch_chunk=self.cfg.conv_batch_chunk)(x, train)
    elif self.cfg.architecture == "mlp":
      h = backbones.MLPBackbone(self.cfg.hidden, self.cfg.mlp_activation, self.cfg.compute_dtype)(x, train)
    elif self.cfg.architecture == "conv":
      h = backbones.ConvStackEncoderBackbone(self.cfg.conv_channels, 4, 1, self.bn_axis_name,
                                             self.cfg.compute_dtype,
                                             batch_chunk=self.cfg.conv_batch_chunk)(x, train)
    else:
      raise ValueError(f"architecture={self.cfg.architecture!r}; use 'dcgan', 'dcgan_upsample', "
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
    if self.cfg.architecture == "dcgan":
      return backbones.DCGANGeneratorBackbone(
          self.cfg.image_shape, self.cfg.width, self.bn_axis_name, self.cfg.compute_dtype,
          batch_chunk=self.cfg.conv_batch_chunk)(z, train)
    if self.cfg.architecture == "dcgan_upsample":
      return backbones.UpsampleGeneratorBackbone(self.cfg.image_shape, self.cfg.width, self.cfg.bn_epsilon,
                                                 self.bn_axis_name, self.cfg.compute_dtype,
                                                 batch_chunk=self.cfg.conv_batch_chunk)(z, train)
    if self.cfg.architecture == "mlp":
      return backbones.MLPGeneratorBackbone(self.cfg.image_shape, self.cfg.hidden, self.cfg.compute_dtype)(z, train)
    if self.cfg.architecture == "conv":
      return backbones.ConvStackDecoderBackbone(self.cfg.image_shape, self.cfg.deconv_start,
                                                self.cfg.deconv_channels, 3, self.bn_axis_name,
                                                self.cfg.compute_dtype,
                                                batch_chunk=self.cfg.conv_batch_chunk)(z, train)
    raise ValueError(f"architecture={self.cfg.architecture!r}; use 'dcgan', 'dcgan_upsample', "
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

  @nn.compact
  def __call__(self, x, labels=None, *, train: bool):
    h = self.image_features(x, labels, train)
    logits = nn.Dense(1, kernel_init=backbones.dcgan_init)(h)[:, 0]
    q = nn.leaky_relu(nn.Dense(128)(h), 0.2)
    cat_logits = nn.Dense(self.cfg.infogan_categories)(q)
    cont_mean = nn.Dense(self.cfg.infogan_continuous)(q)
    return (logits.astype(jnp.float32), cat_logits.astype(jnp.float32),
            cont_mean.astype(jnp.float32))


class Encoder(_Config):
  """Diagonal-Gaussian encoder q(z|x[, y]): image -> ``(mean [B, D], log_var [B, D])``,
  ``D = cfg.latent_dim``."""

  @nn.compact
  def __call__(self, x, labels=None, *, train: bool):
    h = self.image_features(x, labels, train)
    out = nn.Dense(2 * self.cfg.latent_dim)(h).astype(jnp.float32)
    mean, log_var = jnp.split(out, 2, axis=-1)
    return mean, log_var


class Classifier(_Config):
  """Image classifier q(y|x) (the M2 classifier, the evaluation classifier): logits ``[B, C]``,
  ``C = cfg.num_classes``."""

  @nn.compact
  def __call__(self, x, labels=None, *, train: bool):
    h = self.image_features(x, labels, train)
    return nn.Dense(self.cfg.num_classes)(h).astype(jnp.float32)


class ImplicitEncoder(_Config):
  """AVB's implicit encoder: z = f(x, eps) with eps ~ N(0, I); no tractable density."""

  @nn.compact
  def __call__(self, x, noise, labels=None, *, train: bool):
    h = self.image_features(x, labels, train)
    h = jnp.concatenate([h, noise.astype(h.dtype)], axis=-1)
    h = nn.relu(nn.Dense(256)(h))
    return nn.Dense(self.cfg.latent_dim)(h).astype(jnp.float32)


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
