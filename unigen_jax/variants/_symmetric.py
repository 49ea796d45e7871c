"""The symmetric view (Sec. 3.5): implicit inference models trained adversarially.

ALI / BiGAN treat ``x`` and ``z`` alike: a discriminator on joint pairs tells
``(x, E(x))`` from ``(G(z), z)``. AVB keeps the VAE objective but replaces the
analytic KL by a critic ``T(x, z)``, so the encoder can be implicit.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from unigen_jax import losses
from unigen_jax.variants import _specs
from unigen_jax.variants._core import Context, Player, Variant

sg = jax.lax.stop_gradient


def _ali_pairs(ctx: Context, x):
  mean, log_var = ctx.apply("encoder", x)
  z_inferred = mean + jnp.exp(0.5 * log_var) * ctx.normal(mean.shape)
  z_prior = ctx.normal(mean.shape)
  x_generated = jax.nn.sigmoid(ctx.apply("generator", z_prior))
  return (x, z_inferred), (x_generated, z_prior)


def _ali_discriminator(ctx: Context, batch):
  (x, z_inf), (x_gen, z) = _ali_pairs(ctx, batch["image"])
  enc_logits = ctx.apply("joint_discriminator", x, sg(z_inf))
  gen_logits = ctx.apply("joint_discriminator", sg(x_gen), z)
  loss = _specs.with_gradient_penalty(ctx, losses.ali_discriminator_loss(enc_logits, gen_logits),
                                      "joint_discriminator", (x, z_inf), (x_gen, z))
  return loss, {
      "d_encoder_pairs": _specs.mean_sigmoid(enc_logits),
      "d_generator_pairs": _specs.mean_sigmoid(gen_logits)}


def _ali_generator(ctx: Context, batch):
  (x, z_inf), (x_gen, z) = _ali_pairs(ctx, batch["image"])
  enc_logits = ctx.apply("joint_discriminator", x, z_inf)
  gen_logits = ctx.apply("joint_discriminator", x_gen, z)
  # Labels flipped on both pairs: inference pairs want "generated", generated ones "inferred".
  enc_term, enc_metrics = _specs.generator_term(ctx, enc_logits, target=0, metric="iw_ess_encoder")
  gen_term, gen_metrics = _specs.generator_term(ctx, gen_logits, target=1,
                                                metric="iw_ess_generator")
  return enc_term + gen_term, {**enc_metrics, **gen_metrics}


def _avb_code(ctx: Context, x, record_stats: bool = True):
  noise = ctx.normal((x.shape[0], ctx.cfg.latent_dim))
  return ctx.apply("encoder", x, noise, record_stats=record_stats)


def avb_objective(ctx: Context, x, labels=None, record_stats: bool = True):
  """Per-example AVB negative ELBO: T(x, z) - log p(x|z), z from the implicit encoder."""
  del labels  # unconditional
  z = _avb_code(ctx, x, record_stats)
  log_likelihood = _specs.bernoulli_log_likelihood(ctx, x, ctx.apply("decoder", z,
                                                                    record_stats=record_stats))
  critic = ctx.apply("critic", x, z, record_stats=record_stats)
  per_example = losses.avb_negative_elbo(log_likelihood, critic, reduction="none")
  return per_example, {"elbo": -jnp.mean(per_example),
                       "reconstruction_nll": -jnp.mean(log_likelihood),
                       "kl_estimate": jnp.mean(critic)}


def _avb_vae(ctx: Context, batch):
  per_example, metrics = avb_objective(ctx, batch["image"])
  return jnp.mean(per_example), metrics


def _avb_critic(ctx: Context, batch):
  x = batch["image"]
  z_posterior = sg(_avb_code(ctx, x))
  z_prior = ctx.normal(z_posterior.shape)
  posterior_logits = ctx.apply("critic", x, z_posterior)
  prior_logits = ctx.apply("critic", x, z_prior)
  loss = _specs.with_gradient_penalty(
      ctx, losses.avb_discriminator_loss(posterior_logits, prior_logits), "critic",
      (x, z_posterior), (x, z_prior))
  return loss, {
      "d_posterior": _specs.mean_sigmoid(posterior_logits),
      "d_prior": _specs.mean_sigmoid(prior_logits)}


VARIANTS = [
    Variant(name="ali",
            description="ALI / BiGAN: a discriminator on (x, z) pairs, encoder and generator "
                        "trained with labels flipped on both",
            family="symmetric",
            modules={"encoder": _specs.encoder(), "generator": _specs.generator(),
                     "joint_discriminator": _specs.joint_discriminator()},
            players=(Player("discriminator", ("joint_discriminator",), _ali_discriminator,
                            role="discriminator"),
                     Player("inference_generation", ("encoder", "generator"), _ali_generator)),
            defaults=_specs.GAN_DEFAULTS, data_binarization="none",
            generator_objective="nonsaturating",
            sampler=_specs.sample_from("generator", False)),
    Variant(name="avb",
            description="Adversarial variational Bayes: implicit encoder, KL(q||p) estimated by "
                        "a critic T(x, z)",
            family="symmetric",
            modules={"encoder": _specs.implicit_encoder(), "decoder": _specs.generator(),
                     "critic": _specs.joint_discriminator()},
            players=(Player("critic", ("critic",), _avb_critic, role="discriminator"),
                     Player("vae", ("encoder", "decoder"), _avb_vae)),
            defaults=_specs.VAE_DEFAULTS, example_objective=avb_objective,
            activation_form="per_example", objective_player="vae",
            sampler=_specs.sample_from("decoder", False)),
]
