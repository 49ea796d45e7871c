"""Registry of the paper's model variants as declarations over shared networks.

>>> from unigen_jax import variants
>>> sorted(variants.names())[:3]
['aacvae', 'aae', 'aasvae']
>>> variants.get('iwgan').players[1].name
'generator'

Register a new variant with :func:`register`; it then trains with the same
compiled step (:mod:`unigen_jax.train_step`) and entry point as the built-ins.
:func:`importance_weighted` and :func:`adversary_activated` transfer the paper's two
ideas to any variant where they are defined; ``get('iw(infogan)')`` or ``get('aa(iwae)')``
builds (and registers) such a variant by name, so ``--config=...:iw(infogan)`` works too.

>>> get('aa(iwae)').players[-1].name
'discriminator'
"""

from __future__ import annotations

import re

from unigen_jax.variants import _adversarial
from unigen_jax.variants import _specs as specs
from unigen_jax.variants import _symmetric
from unigen_jax.variants import _transforms
from unigen_jax.variants import _variational
from unigen_jax.variants._core import Context
from unigen_jax.variants._core import ModelConfig
from unigen_jax.variants._core import ModuleSpec
from unigen_jax.variants._core import Player
from unigen_jax.variants._core import Variant
from unigen_jax.variants._transforms import adversary_activated
from unigen_jax.variants._transforms import importance_weighted

_REGISTRY: dict[str, Variant] = {}


def register(variant: Variant, *, overwrite: bool = False) -> Variant:
  """Adds ``variant`` to the registry under ``variant.name`` and returns it."""
  if variant.name in _REGISTRY and not overwrite:
    raise ValueError(f"a variant named {variant.name!r} is already registered; "
                     "pass overwrite=True to replace it.")
  _REGISTRY[variant.name] = variant
  return variant


def get(name: str) -> Variant:
  """The registered variant ``name``; ``iw(...)`` / ``aa(...)`` are built by the transforms.

  An unknown name lists the known ones; a transform that is undefined for its argument
  says why.
  """
  if name in _REGISTRY:
    return _REGISTRY[name]
  match = re.fullmatch(r"(iw|aa)\((.+)\)", name)
  if match:
    return register(_transforms.TRANSFORMS[match.group(1)](get(match.group(2))))
  declared = sorted(n for n in _REGISTRY if "(" not in n)
  transformed = sorted(n for n in _REGISTRY if "(" in n)
  raise ValueError(f"unknown variant {name!r}; registered variants: {', '.join(declared)}; "
                   f"built by the transforms: {', '.join(transformed)} (any iw(<name>) / "
                   "aa(<name>) where the transfer is defined).")


def names() -> list[str]:
  return sorted(_REGISTRY)


for _v in _adversarial.VARIANTS + _variational.VARIANTS + _symmetric.VARIANTS:
  register(_v)

# The paper's transferred models, built by the transforms (one implementation each).
register(importance_weighted(
    get("gan"), "iwgan", "Importance-weighted GAN (Eq. 16): generator gradients weighted by "
    "softmax of discriminator logits"))
register(importance_weighted(
    get("cgan"), "iwcgan", "Importance-weighted conditional GAN (Eq. 16 with D(x, y))"))
register(adversary_activated(get("vae"), "aavae", "Adversary-activated VAE (Eq. 17)"))
register(adversary_activated(get("cvae"), "aacvae",
                             "Adversary-activated conditional VAE (Eq. 17)"))
register(adversary_activated(get("svae"), "aasvae",
                             "Adversary-activated semi-supervised VAE (Eq. 17 on M2)"))
# Transfers beyond the paper's pairs.
for _base in ("infogan", "aae", "ali", "ada"):
  get(f"iw({_base})")
for _base in ("iwae", "avb", "wake_sleep"):
  get(f"aa({_base})")

__all__ = ["Context", "ModelConfig", "ModuleSpec", "Player", "Variant", "adversary_activated",
           "get", "importance_weighted", "names", "register", "specs"]
