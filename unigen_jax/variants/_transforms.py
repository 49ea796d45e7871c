r"""The paper's transfer of ideas as operations on variants (Sec. 4).

* :func:`importance_weighted` (from IWAE to the adversarial family, Eq. 16): every
  generator-side player of the variant weights its samples' objective by the normalised
  :math:`w_i \propto q^r(y|x_i)/q(y|x_i)` of its discriminator, held constant, over the
  minibatch (and over devices). ``importance_weighted(gan)`` is IWGAN,
  ``importance_weighted(cgan)`` IW-CGAN; it also applies to InfoGAN, the AAE's encoder
  (a generator of codes), ALI/BiGAN's generator and encoder and ADA's feature extractor.
* :func:`adversary_activated` (from GANs to the variational family, Eq. 17): adds a
  discriminator of real versus generated samples and weights each example's objective by
  :math:`q^r_\phi(y|x)`, with samples drawn from the model, x ~ p_theta(x|z).
  ``adversary_activated(vae)`` is AA-VAE, and likewise CVAE, SVAE; it also applies to
  IWAE, AVB and wake-sleep's wake phase.

Both read what they need from the declaration (``generator_objective``,
``example_objective``, ``activation_form``) and refuse, naming the reason, a variant where
the transfer is undefined. The registry builds them from names: ``iw(infogan)``,
``aa(iwae)`` (``unigen_jax.variants.get``).
"""

from __future__ import annotations

import dataclasses

from unigen_jax.variants import _specs
from unigen_jax.variants import _variational
from unigen_jax.variants._core import Player, Variant


def importance_weighted(variant: Variant, name: str = "", description: str = "") -> Variant:
  """The variant whose generator-side objectives use Eq. 16's importance weights."""
  if variant.generator_objective is None:
    raise ValueError(
        f"importance weighting (Eq. 16) is undefined for {variant.name!r}: it has no player "
        "that trains a generator against a binary discriminator (its weights are "
        "q^r(y|x)/q(y|x) of such a discriminator).")
  if variant.generator_objective == "importance_weighted":
    raise ValueError(f"{variant.name!r} is importance-weighted already.")
  return dataclasses.replace(
      variant, name=name or f"iw({variant.name})",
      description=description or (f"Importance-weighted {variant.name} (Eq. 16): generator-side "
                                  "objectives weighted by normalised q^r/q of the discriminator"),
      generator_objective="importance_weighted")


def adversary_activated(variant: Variant, name: str = "", description: str = "") -> Variant:
  """The variant with a trained discriminator weighting real and generated examples (Eq. 17)."""
  form = variant.activation_form
  if form is None and "discriminator" in variant.modules and variant.family == "variational":
    raise ValueError(f"{variant.name!r} is adversary-activated already.")
  if form is None:
    raise ValueError(
        f"adversary activation (Eq. 17) is undefined for {variant.name!r}: it needs a "
        "wake-direction (ELBO-type) objective of single examples to weight and a decoder to "
        "draw samples from.")
  if "discriminator" in variant.modules:
    raise ValueError(f"{variant.name!r} has a 'discriminator' already (adversary-activated?).")
  if "decoder" not in variant.modules:
    raise ValueError(f"adversary activation of {variant.name!r} needs a 'decoder' to draw "
                     "x ~ p_theta(x|z).")
  if form == "m2":
    players = (Player(variant.players[0].name, variant.players[0].modules,
                      _variational.aa_svae_loss),
               Player("discriminator", ("discriminator",), _variational.aa_svae_discriminator,
                      role="discriminator"))
    discriminator = _specs.discriminator(False)  # unlabelled real data: an unconditional D
  else:
    loss = _variational.activated_loss(variant.example_objective, variant.conditional)
    players = tuple(dataclasses.replace(p, loss=loss) if p.name == variant.objective_player
                    else p for p in variant.players)
    players += (Player("discriminator", ("discriminator",),
                       _variational.aa_discriminator_loss(variant.conditional),
                       role="discriminator"),)
    discriminator = _specs.discriminator(variant.conditional)
  return dataclasses.replace(
      variant, name=name or f"aa({variant.name})",
      description=description or (f"Adversary-activated {variant.name} (Eq. 17): real and "
                                  "generated examples weighted by a trained q^r_phi(y|x)"),
      modules=dict(variant.modules, discriminator=discriminator), players=players,
      # Revision 2 of the AA formulation: Bernoulli samples, statistics from real data only,
      # a label-conditioned discriminator for conditional models.
      revision=variant.revision + 1, activation_form=None, example_objective=None,
      objective_player=None)


TRANSFORMS = {"iw": importance_weighted, "aa": adversary_activated}
