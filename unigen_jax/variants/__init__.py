"""Registry of the paper's model variants as declarations over shared networks.

>>> from unigen_jax import variants
>>> sorted(variants.names())[:3]
['aacvae', 'aae', 'aasvae']
>>> variants.get('iwgan').players[1].name
'generator'

Register a new variant with :func:`register`; it then trains with the same
compiled step (:mod:`unigen_jax.train_step`) and entry point as the built-ins.
"""

from __future__ import annotations

from unigen_jax.variants import _adversarial
from unigen_jax.variants import _specs as specs
from unigen_jax.variants import _symmetric
from unigen_jax.variants import _variational
from unigen_jax.variants._core import Context
from unigen_jax.variants._core import ModelConfig
from unigen_jax.variants._core import ModuleSpec
from unigen_jax.variants._core import Player
from unigen_jax.variants._core import Variant

_REGISTRY: dict[str, Variant] = {}


def register(variant: Variant, *, overwrite: bool = False) -> Variant:
  """Adds ``variant`` to the registry under ``variant.name`` and returns it."""
  if variant.name in _REGISTRY and not overwrite:
    raise ValueError(f"a variant named {variant.name!r} is already registered; "
                     "pass overwrite=True to replace it.")
  _REGISTRY[variant.name] = variant
  return variant


def get(name: str) -> Variant:
  """The registered variant ``name``; an unknown name lists the known ones."""
  try:
    return _REGISTRY[name]
  except KeyError:
    raise ValueError(f"unknown variant {name!r}; registered variants: "
                     f"{', '.join(sorted(_REGISTRY))}.") from None


def names() -> list[str]:
  return sorted(_REGISTRY)


for _v in _adversarial.VARIANTS + _variational.VARIANTS + _symmetric.VARIANTS:
  register(_v)

__all__ = ["Context", "ModelConfig", "ModuleSpec", "Player", "Variant", "get", "names",
           "register", "specs"]
