"""unigen_jax: the unified view of GANs and VAEs (Hu et al., ICLR 2018) in JAX.

Submodules load on first use (``unigen_jax.losses``, ``unigen_jax.distributions``, ...),
so that ``import unigen_jax`` costs nothing and ``import unigen_jax.losses`` imports JAX
and nothing heavier.
"""

import importlib

__version__ = "0.1.0"

_LAZY = ("distributions", "losses", "metrics", "models", "variants", "train_step", "parallel")


def __getattr__(name):
  if name in _LAZY:
    return importlib.import_module(f"unigen_jax.{name}")
  raise AttributeError(f"module 'unigen_jax' has no attribute {name!r}")
