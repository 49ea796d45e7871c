"""Variants trained in the wake-phase KL direction: VAE, IWAE, CVAE, SVAE (M2), the AA
models of Eq. 17, and wake-sleep (Eq. 14).

All share the module names ``encoder`` and ``decoder`` (the decoder is a GAN
generator network); the AA models add a ``discriminator`` (a GAN discriminator
network) and an extra player that trains it on real versus generated samples.
"""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp

from unigen_jax import distributions
from unigen_jax import losses
from unigen_jax.variants import _specs
from unigen_jax.variants._core import Context, Player, Variant

sg = jax.lax.stop_gradient


def _apply(ctx: Context, name: str, inputs, labels, record_stats: bool = True):
  args = (inputs, labels) if labels is not None else (inputs,)
  return ctx.apply(name, *args, record_stats=record_stats)


def negative_elbo_terms(ctx: Context, x, labels=None, *, record_stats: bool = True):
  """Per-example (negative ELBO, log-likelihood, KL) through encoder and decoder (Eq. 11).

  ``record_stats=False`` for inputs that are not data (generated samples): batch norm
  still normalises with their statistics but does not record them for test time.
  """
  mean, log_var = _apply(ctx, "encoder", x, labels, record_stats)
  z = mean + jnp.exp(0.5 * log_var) * ctx.normal(mean.shape)
  log_likelihood = _specs.bernoulli_log_likelihood(
      ctx, x, _apply(ctx, "decoder", z, labels, record_stats))
  kl = distributions.kl_diag_gaussian_standard_normal(mean, log_var)
  neg_elbo = losses.negative_elbo(log_likelihood, mean, log_var, reduction="none")
  return neg_elbo, log_likelihood, kl


def _elbo_metrics(neg_elbo, log_likelihood, kl):
  return {"elbo": -jnp.mean(neg_elbo), "reconstruction_nll": -jnp.mean(log_likelihood),
          "kl": jnp.mean(kl)}


def vae_objective(ctx: Context, x, labels=None, record_stats: bool = True):
  """Per-example negative ELBO (Eq. 11) and the batch's metrics; labels condition a CVAE."""
  terms = negative_elbo_terms(ctx, x, labels, record_stats=record_stats)
  return terms[0], _elbo_metrics(*terms)


def mean_of(objective, conditional: bool):
  """The player loss of a per-example objective: its mean over the batch."""
  def loss(ctx: Context, batch):
    per_example, metrics = objective(ctx, batch["image"], batch["label"] if conditional else None)
    return jnp.mean(per_example), metrics
  return loss


def iwae_objective(ctx: Context, x, labels=None, record_stats: bool = True):
  """Per-example negative K-sample IWAE bound; metrics: the bound and the K ELBO estimates."""
  del labels  # unconditional
  k = ctx.cfg.num_importance_samples
  mean, log_var = ctx.apply("encoder", x, record_stats=record_stats)
  z = mean + jnp.exp(0.5 * log_var) * ctx.normal((k,) + mean.shape, axis=1)  # [K, B, D]
  logits = ctx.apply("decoder", z.reshape((-1, z.shape[-1])), record_stats=record_stats)
  logits = logits.reshape((k,) + x.shape)
  log_likelihood = _specs.bernoulli_log_likelihood(ctx, jnp.broadcast_to(x, logits.shape), logits,
                                                   event_ndims=len(x.shape) - 1)
  log_weights = losses.iwae_log_weights(log_likelihood, z, mean, log_var)
  per_example = losses.iwae_negative_bound(log_weights, reduction="none")
  elbo = jnp.mean(log_weights)  # the K single-sample ELBO estimates, averaged
  return per_example, {"iwae_bound": -jnp.mean(per_example), "elbo": elbo}


# --- Semi-supervised VAE (M2) ---------------------------------------------

def _svae_terms(ctx: Context, batch):
  """Per-example M2 labelled and unlabelled losses, and the classification term."""
  num_classes = ctx.cfg.num_classes
  x_lab, y_lab = batch["image"], batch["label"]
  x_unl = batch["unlabelled_image"]
  lab_nelbo, _, _ = negative_elbo_terms(ctx, x_lab, y_lab)
  labelled = losses.semi_supervised_labelled_loss(lab_nelbo, y_lab, num_classes=num_classes,
                                                  reduction="none")
  # Every unlabelled example with every label: [B_u * C] through the networks at once.
  n_unl = x_unl.shape[0]
  x_rep = jnp.repeat(x_unl, num_classes, axis=0)
  y_rep = jnp.tile(jnp.arange(num_classes), n_unl)
  rep_nelbo, _, _ = negative_elbo_terms(ctx, x_rep, y_rep)
  cls_unl = ctx.apply("classifier", x_unl)
  unlabelled = losses.semi_supervised_unlabelled_loss(
      rep_nelbo.reshape((n_unl, num_classes)), cls_unl, reduction="none")
  cls_lab = ctx.apply("classifier", x_lab)
  classification = losses.semi_supervised_classification_loss(cls_lab, y_lab,
                                                              alpha=ctx.cfg.svae_alpha)
  metrics = {"labelled_elbo": -jnp.mean(labelled), "unlabelled_elbo": -jnp.mean(unlabelled),
             "train_accuracy": jnp.mean(jnp.argmax(cls_lab, -1) == y_lab)}
  return labelled, unlabelled, classification, metrics


def _svae_loss(ctx: Context, batch):
  """Per-batch M2 objective: w_l mean L(x, y) + w_u mean U(x) + alpha mean CE (see ModelConfig)."""
  labelled, unlabelled, classification, metrics = _svae_terms(ctx, batch)
  cfg = ctx.cfg
  return (cfg.svae_labelled_weight * jnp.mean(labelled)
          + cfg.svae_unlabelled_weight * jnp.mean(unlabelled) + classification), metrics


# --- Adversary-activated models (Eq. 17) ------------------------------------

def _generated(ctx: Context, n: int, conditional: bool):
  """Samples x ~ p_theta0(x|z), z ~ p(z), of the current decoder, held fixed (Eq. 17).

  ``cfg.aa_fake_samples='bernoulli'`` (default) draws binary images from the Bernoulli
  decoder, like the dynamically binarised data; ``'mean'`` takes the grey-level means.
  Drawing them does not record batch statistics (they are not data).
  """
  labels = _specs.random_labels(ctx, n) if conditional else None
  z = ctx.normal((n, ctx.cfg.latent_dim))
  means = sg(jax.nn.sigmoid(_apply(ctx, "decoder", z, labels, record_stats=False)))
  if ctx.cfg.aa_fake_samples == "bernoulli":
    return ctx.bernoulli(means), labels
  return means, labels


def _discriminate(ctx: Context, x, labels):
  """D(x), or D(x, y) when the discriminator is label-conditioned (AA-CVAE)."""
  return _apply(ctx, "discriminator", x, labels)


def activated_loss(objective, conditional: bool):
  """Eq. 17 over a per-example objective: real and generated samples, weighted by q^r_phi.

  The generated samples (as many as real ones) are drawn first, then the objective runs on
  the real batch and on them (their batch statistics not recorded), then the discriminator
  scores both (label-conditioned when ``conditional``).
  """
  def loss(ctx: Context, batch):
    x = batch["image"]
    labels = batch["label"] if conditional else None
    fake, fake_labels = _generated(ctx, x.shape[0], conditional)  # as many fake as real
    real_terms, metrics = objective(ctx, x, labels)
    fake_terms, _ = objective(ctx, fake, fake_labels, record_stats=False)
    real_logits = _discriminate(ctx, x, labels)
    fake_logits = _discriminate(ctx, fake, fake_labels)
    total = losses.adversary_activated_negative_elbo(real_terms, fake_terms, real_logits,
                                                     fake_logits, fake_weight=ctx.cfg.fake_weight)
    metrics = dict(metrics, aa_weight_real=_specs.mean_sigmoid(real_logits),
                   aa_weight_fake=_specs.mean_sigmoid(fake_logits))
    return total, metrics
  return loss


def aa_discriminator_loss(conditional: bool, conditional_discriminator: Optional[bool] = None):
  """Discriminator of the AA models on real vs generated samples.

  ``conditional``: the decoder takes labels; ``conditional_discriminator`` (default: the
  same) whether D sees them (AA-CVAE: yes; AA-SVAE, whose real data is mostly unlabelled: no).
  """
  if conditional_discriminator is None:
    conditional_discriminator = conditional

  def loss(ctx: Context, batch):
    x = batch["image"]
    fake, fake_labels = _generated(ctx, x.shape[0], conditional)
    real_labels = batch["label"] if conditional_discriminator else None
    fake_labels = fake_labels if conditional_discriminator else None
    real_logits = _discriminate(ctx, x, real_labels)
    fake_logits = _discriminate(ctx, fake, fake_labels)
    loss = _specs.with_gradient_penalty(
        ctx, losses.discriminator_loss(real_logits, fake_logits), "discriminator", x, fake,
        (real_labels,) if conditional_discriminator else (),
        (fake_labels,) if conditional_discriminator else ())
    return loss, {
        "d_real": _specs.mean_sigmoid(real_logits), "d_fake": _specs.mean_sigmoid(fake_logits)}
  return loss


def aa_svae_loss(ctx: Context, batch):
  """Eq. 17 on M2: every term weighted by D(x); generated samples enter as labelled ones."""
  labelled, unlabelled, classification, metrics = _svae_terms(ctx, batch)
  cfg = ctx.cfg
  n = batch["image"].shape[0] + batch["unlabelled_image"].shape[0]
  fake, fake_labels = _generated(ctx, n, conditional=True)
  fake_nelbo, _, _ = negative_elbo_terms(ctx, fake, fake_labels, record_stats=False)
  fake_loss = losses.semi_supervised_labelled_loss(fake_nelbo, fake_labels,
                                                   num_classes=cfg.num_classes,
                                                   reduction="none")
  # The M2 term weights (Kingma et al.'s N_l/N, N_u/N) apply to the real terms; the
  # generated term has Eq. 17's own weight (fake_weight).
  fake_logits = ctx.apply("discriminator", fake)
  total = losses.adversary_activated_semi_supervised_loss(
      cfg.svae_labelled_weight * labelled, cfg.svae_unlabelled_weight * unlabelled, fake_loss,
      ctx.apply("discriminator", batch["image"]),
      ctx.apply("discriminator", batch["unlabelled_image"]), fake_logits,
      fake_weight=cfg.fake_weight)
  metrics.update(aa_weight_fake=_specs.mean_sigmoid(fake_logits))
  return total + classification, metrics


def aa_svae_discriminator(ctx: Context, batch):
  real = jnp.concatenate([batch["image"], batch["unlabelled_image"]], axis=0)
  return aa_discriminator_loss(True, conditional_discriminator=False)(ctx, {"image": real})


# --- Wake-sleep (Eq. 14) ----------------------------------------------------

def wake_objective(ctx: Context, x, labels=None, record_stats: bool = True):
  """Per-example wake-phase loss (Eq. 14): the decoder fits x at an inferred code."""
  del labels  # unconditional
  mean, log_var = ctx.apply("encoder", x, record_stats=record_stats)
  z = sg(mean + jnp.exp(0.5 * log_var) * ctx.normal(mean.shape))
  log_likelihood = _specs.bernoulli_log_likelihood(ctx, x, ctx.apply("decoder", z,
                                                                    record_stats=record_stats))
  per_example = losses.wake_phase_loss(log_likelihood, z, reduction="none")
  kl = distributions.kl_diag_gaussian_standard_normal(mean, log_var)
  return per_example, {"elbo": jnp.mean(log_likelihood - kl)}


def _sleep(ctx: Context, batch):
  n = batch["image"].shape[0]
  z = ctx.normal((n, ctx.cfg.latent_dim))
  dream = ctx.bernoulli(sg(jax.nn.sigmoid(ctx.apply("decoder", z))))
  mean, log_var = ctx.apply("encoder", dream)
  return losses.sleep_phase_loss(z, mean, log_var), {}


def _vae_modules(conditional: bool, **extra):
  return dict({"encoder": _specs.encoder(conditional),
               "decoder": _specs.generator(conditional)}, **extra)


_PER_EXAMPLE = dict(activation_form="per_example", objective_player="vae")

VARIANTS = [
    Variant(name="vae", description="VAE (Eq. 11, Lemma 2): negative ELBO, Bernoulli decoder",
            family="variational", modules=_vae_modules(False),
            players=(Player("vae", ("encoder", "decoder"), mean_of(vae_objective, False)),),
            defaults=_specs.VAE_DEFAULTS, likelihood_bound="gaussian",
            example_objective=vae_objective, **_PER_EXAMPLE,
            sampler=_specs.sample_from("decoder", False)),
    Variant(name="iwae", description="IWAE: K-sample importance-weighted bound",
            family="variational", modules=_vae_modules(False),
            players=(Player("vae", ("encoder", "decoder"), mean_of(iwae_objective, False)),),
            defaults=_specs.VAE_DEFAULTS, likelihood_bound="gaussian",
            example_objective=iwae_objective, **_PER_EXAMPLE,
            sampler=_specs.sample_from("decoder", False)),
    Variant(name="cvae", description="Conditional VAE: label-conditioned encoder and decoder",
            family="variational", modules=_vae_modules(True),
            players=(Player("vae", ("encoder", "decoder"), mean_of(vae_objective, True)),),
            batch_keys=("image", "label"), defaults=_specs.VAE_DEFAULTS,
            likelihood_bound="gaussian", example_objective=vae_objective, **_PER_EXAMPLE,
            sampler=_specs.sample_from("decoder", True), conditional=True),
    Variant(name="svae", description="Semi-supervised VAE (Kingma et al. 2014, M2)",
            family="variational", modules=_vae_modules(True, classifier=_specs.classifier()),
            players=(Player("vae", ("encoder", "decoder", "classifier"), _svae_loss),),
            batch_keys=("image", "label", "unlabelled_image"), defaults=_specs.VAE_DEFAULTS,
            likelihood_bound="m2", label_classifier="classifier", activation_form="m2",
            sampler=_specs.sample_from("decoder", True), conditional=True),
    Variant(name="wake_sleep",
            description="Wake-sleep (Eq. 14): wake phase fits the decoder on inferred codes, "
                        "sleep phase fits the encoder on dreams",
            family="variational", modules=_vae_modules(False),
            players=(Player("wake", ("decoder",), mean_of(wake_objective, False)),
                     Player("sleep", ("encoder",), _sleep)),
            defaults=_specs.VAE_DEFAULTS, likelihood_bound="gaussian",
            example_objective=wake_objective, activation_form="per_example",
            objective_player="wake", sampler=_specs.sample_from("decoder", False)),
]
