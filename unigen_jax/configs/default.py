"""Default training configuration: ``--config=unigen_jax/configs/default.py:<variant>[,<dataset>]``.

  python -m unigen_jax.main --config=unigen_jax/configs/default.py:aavae,mnist_sample \
      --workdir=workdirs/aavae --config.steps=2000 --config.model.width=32

Every field, its default and its validation live in :mod:`unigen_jax.config`;
``--dry_run`` prints the resolved config without training.
"""

from unigen_jax.config import get_config  # noqa: F401  (ml_collections calls get_config(arg))
