"""``ModuleSpec``s of the networks the variants are built from, and shared sampling code."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from unigen_jax import distributions
from unigen_jax import losses
from unigen_jax import models
from unigen_jax.variants._core import Context, ModelConfig, ModuleSpec

GAN_DEFAULTS = dict(latent_dim=100, learning_rate=2e-4, b1=0.5)  # DCGAN (Radford et al.)
VAE_DEFAULTS = dict(latent_dim=20, learning_rate=1e-3, b1=0.9)


def _common(cfg: ModelConfig, axis_name, conditional: bool):
  return dict(cfg=cfg, conditional=conditional, bn_axis_name=axis_name)


def _images(cfg):
  return jnp.zeros((2,) + cfg.image_shape, jnp.float32)


def _labels(conditional):
  return (jnp.zeros((2,), jnp.int32),) if conditional else ()


def generator(conditional: bool = False, extra_inputs=lambda cfg: 0) -> ModuleSpec:
  """GAN generator / VAE decoder; ``extra_inputs(cfg)`` widens z (InfoGAN codes)."""
  return ModuleSpec(
      build=lambda cfg, ax: models.Generator(**_common(cfg, ax, conditional)),
      example_inputs=lambda cfg: (jnp.zeros((2, cfg.latent_dim + extra_inputs(cfg))),)
      + _labels(conditional))


def discriminator(conditional: bool = False) -> ModuleSpec:
  return ModuleSpec(
      build=lambda cfg, ax: models.Discriminator(**_common(cfg, ax, conditional)),
      example_inputs=lambda cfg: (_images(cfg),) + _labels(conditional))


def infogan_discriminator() -> ModuleSpec:
  return ModuleSpec(
      build=lambda cfg, ax: models.InfoGANDiscriminator(**_common(cfg, ax, False)),
      example_inputs=lambda cfg: (_images(cfg),))


def encoder(conditional: bool = False) -> ModuleSpec:
  return ModuleSpec(
      build=lambda cfg, ax: models.Encoder(**_common(cfg, ax, conditional)),
      example_inputs=lambda cfg: (_images(cfg),) + _labels(conditional))


def classifier() -> ModuleSpec:
  return ModuleSpec(
      build=lambda cfg, ax: models.Classifier(**_common(cfg, ax, False)),
      example_inputs=lambda cfg: (_images(cfg),))


def implicit_encoder() -> ModuleSpec:
  return ModuleSpec(
      build=lambda cfg, ax: models.ImplicitEncoder(**_common(cfg, ax, False)),
      example_inputs=lambda cfg: (_images(cfg), jnp.zeros((2, cfg.latent_dim))))


def joint_discriminator() -> ModuleSpec:
  return ModuleSpec(
      build=lambda cfg, ax: models.JointDiscriminator(**_common(cfg, ax, False)),
      example_inputs=lambda cfg: (_images(cfg), jnp.zeros((2, cfg.latent_dim))))


def vector_mlp(input_dim, num_outputs=lambda cfg: 1) -> ModuleSpec:
  """MLP on vectors of size ``input_dim(cfg)`` (code discriminator, domain discriminator, heads)."""
  return ModuleSpec(
      build=lambda cfg, ax: models.CodeMLP(hidden=(256, 256), num_outputs=num_outputs(cfg)),
      example_inputs=lambda cfg: (jnp.zeros((2, input_dim(cfg))),))


def feature_extractor(feature_dim: int = 128) -> ModuleSpec:
  return ModuleSpec(
      build=lambda cfg, ax: models.FeatureExtractor(**_common(cfg, ax, False),
                                                    feature_dim=feature_dim),
      example_inputs=lambda cfg: (_images(cfg),))


# --- shared pieces of losses and samplers ---------------------------------

def random_labels(ctx: Context, n: int):
  return ctx.randint((n,), ctx.cfg.num_classes)


def sample_from(module: str, conditional: bool):
  """A sampler ``(ctx, n, labels) -> images`` decoding z ~ N(0, I) with ``module``."""

  def sampler(ctx: Context, n: int, labels=None):
    z = ctx.normal((n, ctx.cfg.latent_dim))
    if conditional and labels is None:
      labels = random_labels(ctx, n)
    args = (z, labels) if conditional else (z,)
    return jax.nn.sigmoid(ctx.apply(module, *args))

  return sampler


def mean_sigmoid(logits):
  return jnp.mean(jax.nn.sigmoid(logits))


def with_gradient_penalty(ctx: Context, loss, module: str, real, fake, real_args=(),
                          fake_args=(), output_index=None):
  """``loss`` plus ``cfg.gradient_penalty`` of discriminator ``module`` (nothing for 'none').

  ``real`` / ``fake`` are the discriminator's inputs (arrays or tuples of arrays, held
  constant); ``*_args`` are further inputs it takes unpenalised (labels). WGAN-GP
  interpolates the inputs and uses ``real_args``. ``output_index``: which output is the
  real/fake logit when the network returns several (InfoGAN). Batch statistics are not
  recorded.
  """
  kind = ctx.cfg.gradient_penalty
  if kind == "none":
    return loss
  def discriminator(args):
    def apply(inputs):
      inputs = inputs if isinstance(inputs, tuple) else (inputs,)
      out = ctx.apply(module, *inputs, *args, record_stats=False)
      return out if output_index is None else out[output_index]
    return apply
  real, fake = jax.lax.stop_gradient(real), jax.lax.stop_gradient(fake)
  if kind == "r1":
    penalty = losses.r1_penalty(discriminator(real_args), real)
  elif kind == "r2":
    penalty = losses.r2_penalty(discriminator(fake_args), fake)
  else:
    penalty = losses.wgan_gp_penalty(discriminator(real_args), real, fake, ctx.next_key())
  return loss + ctx.cfg.gradient_penalty_weight * penalty


def generator_term(ctx: Context, logits, target: int = 1, metric: str = "iw_ess"):
  """``(loss, metrics)`` of a generator-side player on discriminator ``logits`` of its samples.

  ``target`` is the label the player wants the discriminator to give its samples (1: "real",
  a GAN generator; 0: "fake", e.g. ALI's encoder pairs, ADA's source features). The
  objective is the variant's ``generator_objective``: ``'nonsaturating'``
  (:math:`-\\log q^r`), ``'minimax'`` or ``'importance_weighted'`` (Eq. 16: weights
  :math:`q^r(y|x_i)/q(y|x_i)`, normalised over the minibatch and the devices, held constant;
  their effective sample size goes to ``metrics[metric]``).
  """
  objective = ctx.variant.generator_objective
  oriented = logits if target == 1 else -logits  # the logit of the label the player wants
  if objective == "importance_weighted":
    loss = losses.generator_loss_importance_weighted(oriented, axis_name=ctx.axis_name)
    _, ess = losses.importance_weights(oriented, axis_name=ctx.axis_name)
    return loss, {metric: ess}
  if objective == "minimax":
    if target != 1:
      raise ValueError("the minimax objective is defined for generators targeting 'real'.")
    return losses.generator_loss_minimax(oriented), {}
  return losses.generator_loss_nonsaturating(oriented), {}


def bernoulli_log_likelihood(ctx: Context, x: jax.Array, logits: jax.Array,
                             event_ndims=None) -> jax.Array:
  """``log p(x | z)`` of a Bernoulli decoder's ``logits``, summed over ``event_ndims``.

  ``ctx.cfg.fast_likelihood``: flat events and the explicit softplus (the same function to
  float rounding, cheaper on XLA:CPU); otherwise exactly the earlier versions' computation.
  """
  return distributions.bernoulli_log_prob(x, logits, event_ndims=event_ndims,
                                          fast=ctx.cfg.fast_likelihood)
