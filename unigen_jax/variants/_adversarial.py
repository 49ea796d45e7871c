"""Variants trained in the sleep-phase KL direction: GAN, IWGAN, CGAN, IW-CGAN, InfoGAN, ADA, AAE.

All GAN-family variants share the module names ``generator`` and
``discriminator``: GAN and IWGAN have identical parameter pytrees and differ in
one line, the generator objective.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from unigen_jax import losses
from unigen_jax.variants import _specs
from unigen_jax.variants._core import Context, Player, Variant

sg = jax.lax.stop_gradient

def _generate(ctx: Context, n: int, conditional: bool):
  labels = _specs.random_labels(ctx, n) if conditional else None
  z = ctx.normal((n, ctx.cfg.latent_dim))
  args = (z, labels) if conditional else (z,)
  return jax.nn.sigmoid(ctx.apply("generator", *args)), labels


def _discriminate(ctx: Context, x, labels, conditional: bool):
  return ctx.apply("discriminator", x, labels) if conditional else ctx.apply("discriminator", x)


def gan_losses(conditional: bool):
  """(discriminator loss, generator loss) of a GAN / CGAN; the generator's objective is the
  variant's ``generator_objective`` (non-saturating, minimax or importance-weighted)."""

  def discriminator(ctx: Context, batch):
    real = batch["image"]
    if "fake" in ctx.received:  # 'generator_first': the generator update's batch, detached
      fake, fake_labels = ctx.received["fake"], ctx.received.get("fake_labels")
    else:
      fake, fake_labels = _generate(ctx, real.shape[0], conditional)
    real_logits = _discriminate(ctx, real, batch.get("label"), conditional)
    fake_logits = _discriminate(ctx, sg(fake), fake_labels, conditional)
    loss = losses.discriminator_loss(real_logits, fake_logits)
    loss = _specs.with_gradient_penalty(
        ctx, loss, "discriminator", real, fake,
        (batch["label"],) if conditional else (), (fake_labels,) if conditional else ())
    return loss, {"d_real": _specs.mean_sigmoid(real_logits),
                  "d_fake": _specs.mean_sigmoid(fake_logits)}

  def generator(ctx: Context, batch):
    fake, fake_labels = _generate(ctx, batch["image"].shape[0], conditional)
    ctx.handoff["fake"] = fake  # for a discriminator update after this one
    if conditional:
      ctx.handoff["fake_labels"] = fake_labels
    fake_logits = _discriminate(ctx, fake, fake_labels, conditional)
    return _specs.generator_term(ctx, fake_logits)

  return discriminator, generator


def gan_variant(name: str, description: str, objective: str, conditional: bool) -> Variant:
  disc_loss, gen_loss = gan_losses(conditional)
  discriminator = Player("discriminator", ("discriminator",), disc_loss, role="discriminator")
  generator = Player("generator", ("generator",), gen_loss)
  return Variant(
      name=name, description=description, family="adversarial",
      modules={"generator": _specs.generator(conditional),
               "discriminator": _specs.discriminator(conditional)},
      players=(discriminator, generator),
      orders={"generator_first": ("generator", "discriminator")},
      batch_keys=("image", "label") if conditional else ("image",),
      defaults=_specs.GAN_DEFAULTS, data_binarization="none", generator_objective=objective,
      sampler=_specs.sample_from("generator", conditional), conditional=conditional)


# --- InfoGAN (Eq. 9) -------------------------------------------------------

def _infogan_codes(ctx: Context, n: int, categories=None):
  cfg = ctx.cfg
  if categories is None:
    categories = ctx.randint((n,), cfg.infogan_categories)
  continuous = ctx.uniform((n, cfg.infogan_continuous), -1.0, 1.0)
  noise = ctx.normal((n, cfg.latent_dim))
  z = jnp.concatenate([noise, jax.nn.one_hot(categories, cfg.infogan_categories), continuous], -1)
  return z, categories, continuous


def _infogan_code_loss(ctx: Context, cat_logits, cont_mean, categories, continuous):
  cfg = ctx.cfg
  cat = losses.infogan_categorical_code_loss(cat_logits, categories)
  cont = losses.infogan_gaussian_code_loss(cont_mean, jnp.zeros_like(cont_mean), continuous)
  return cfg.infogan_weight * cat + cfg.infogan_continuous_weight * cont, cat


def _infogan_discriminator(ctx: Context, batch):
  real = batch["image"]
  z, categories, continuous = _infogan_codes(ctx, real.shape[0])
  fake = sg(jax.nn.sigmoid(ctx.apply("generator", z)))
  real_logits, _, _ = ctx.apply("discriminator", real)
  fake_logits, cat_logits, cont_mean = ctx.apply("discriminator", fake)
  info, cat = _infogan_code_loss(ctx, cat_logits, cont_mean, categories, continuous)
  loss = losses.discriminator_loss(real_logits, fake_logits) + info
  loss = _specs.with_gradient_penalty(ctx, loss, "discriminator", real, fake,
                                      output_index=0)
  return loss, {"d_real": _specs.mean_sigmoid(real_logits),
                "d_fake": _specs.mean_sigmoid(fake_logits), "info_categorical_nll": cat}


def _infogan_generator(ctx: Context, batch):
  z, categories, continuous = _infogan_codes(ctx, batch["image"].shape[0])
  fake_logits, cat_logits, cont_mean = ctx.apply("discriminator",
                                                 jax.nn.sigmoid(ctx.apply("generator", z)))
  info, _ = _infogan_code_loss(ctx, cat_logits, cont_mean, categories, continuous)
  adversarial, metrics = _specs.generator_term(ctx, fake_logits)
  return adversarial + info, metrics


def _infogan_sampler(ctx: Context, n: int, labels=None):
  z, _, _ = _infogan_codes(ctx, n, categories=labels)
  return jax.nn.sigmoid(ctx.apply("generator", z))


INFOGAN = Variant(
    name="infogan",
    description="InfoGAN (Eq. 9): GAN plus a code head q(c|x) on the discriminator, "
                "mutual-information term on generated samples",
    family="adversarial",
    modules={"generator": _specs.generator(
                 extra_inputs=lambda cfg: cfg.infogan_categories + cfg.infogan_continuous),
             "discriminator": _specs.infogan_discriminator()},
    players=(Player("discriminator", ("discriminator",), _infogan_discriminator,
                    role="discriminator"),
             Player("generator", ("generator",), _infogan_generator)),
    defaults=dict(_specs.GAN_DEFAULTS, latent_dim=62),
    sampler=_infogan_sampler, conditional=True, data_binarization="none",
    generator_objective="nonsaturating",
    sample_classes=lambda cfg: cfg.infogan_categories)


# --- Adversarial domain adaptation (Eqs. 1-2) ------------------------------

def _ada_features(ctx: Context, batch):
  source_features = ctx.apply("feature_extractor", batch["image"])
  target_features = ctx.apply("feature_extractor", batch["target_image"])
  class_logits = ctx.apply("label_classifier", source_features)
  ce = -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(class_logits),
                                     batch["label"][:, None], axis=1))
  # Eq. 2: domain labels flipped on both domains (source features pass as target ones).
  source_term, source_metrics = _specs.generator_term(
      ctx, ctx.apply("domain_discriminator", source_features), target=0, metric="iw_ess_source")
  target_term, target_metrics = _specs.generator_term(
      ctx, ctx.apply("domain_discriminator", target_features), target=1, metric="iw_ess_target")
  adv = source_term + target_term
  accuracy = jnp.mean(jnp.argmax(class_logits, -1) == batch["label"])
  return ce + ctx.cfg.adversarial_weight * adv, {"source_ce": ce, "source_accuracy": accuracy,
                                                 **source_metrics, **target_metrics}


def _ada_domain(ctx: Context, batch):
  source = sg(ctx.apply("feature_extractor", batch["image"]))
  target = sg(ctx.apply("feature_extractor", batch["target_image"]))
  source_logits = ctx.apply("domain_discriminator", source)
  target_logits = ctx.apply("domain_discriminator", target)
  loss = losses.ada_discriminator_loss(source_logits, target_logits)
  loss = _specs.with_gradient_penalty(ctx, loss, "domain_discriminator", source, target)
  return loss, {"d_source": _specs.mean_sigmoid(source_logits),
                "d_target": _specs.mean_sigmoid(target_logits)}


ADA = Variant(
    name="ada",
    description="Adversarial domain adaptation (Eqs. 1-2): domain discriminator vs feature "
                "extractor with domain labels flipped on both domains",
    family="adversarial",
    modules={"feature_extractor": _specs.feature_extractor(128),
             "label_classifier": _specs.vector_mlp(lambda cfg: 128, lambda cfg: cfg.num_classes),
             "domain_discriminator": _specs.vector_mlp(lambda cfg: 128)},
    players=(Player("domain_discriminator", ("domain_discriminator",), _ada_domain,
                    role="discriminator"),
             Player("features", ("feature_extractor", "label_classifier"), _ada_features)),
    batch_keys=("image", "label", "target_image"), data_binarization="none",
    generator_objective="nonsaturating",
    defaults=dict(_specs.GAN_DEFAULTS, latent_dim=1))


# --- Adversarial autoencoder -----------------------------------------------

def _encode_sample(ctx: Context, x):
  mean, log_var = ctx.apply("encoder", x)
  return mean + jnp.exp(0.5 * log_var) * ctx.normal(mean.shape)


def _aae_autoencoder(ctx: Context, batch):
  x = batch["image"]
  z = _encode_sample(ctx, x)
  recon = -jnp.mean(_specs.bernoulli_log_likelihood(ctx, x, ctx.apply("decoder", z)))
  adv, metrics = _specs.generator_term(ctx, ctx.apply("code_discriminator", z))
  return recon + ctx.cfg.adversarial_weight * adv, {"reconstruction_nll": recon, **metrics}


def _aae_code_discriminator(ctx: Context, batch):
  z_posterior = sg(_encode_sample(ctx, batch["image"]))
  z_prior = ctx.normal(z_posterior.shape)
  prior_logits = ctx.apply("code_discriminator", z_prior)
  posterior_logits = ctx.apply("code_discriminator", z_posterior)
  loss = losses.aae_discriminator_loss(prior_logits, posterior_logits)
  loss = _specs.with_gradient_penalty(ctx, loss, "code_discriminator", z_prior, z_posterior)
  return loss, {"d_prior": _specs.mean_sigmoid(prior_logits),
                "d_posterior": _specs.mean_sigmoid(posterior_logits)}


AAE = Variant(
    name="aae",
    description="Adversarial autoencoder: reconstruction plus a code-space GAN against p(z)",
    family="adversarial",
    modules={"encoder": _specs.encoder(), "decoder": _specs.generator(),
             "code_discriminator": _specs.vector_mlp(lambda cfg: cfg.latent_dim)},
    players=(Player("code_discriminator", ("code_discriminator",), _aae_code_discriminator,
                    role="discriminator"),
             Player("autoencoder", ("encoder", "decoder"), _aae_autoencoder)),
    defaults=_specs.VAE_DEFAULTS, likelihood_bound="gaussian",
    generator_objective="nonsaturating",
    sampler=_specs.sample_from("decoder", False))


VARIANTS = [
    gan_variant("gan", "GAN, non-saturating generator (Eqs. 3-6, Lemma 1)",
                "nonsaturating", conditional=False),
    gan_variant("gan_minimax", "GAN, minimax (saturating) generator (Eq. 3)",
                "minimax", conditional=False),
    gan_variant("cgan", "Conditional GAN: label-conditioned generator and discriminator",
                "nonsaturating", conditional=True),
    INFOGAN, ADA, AAE,
]
