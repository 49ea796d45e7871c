"""unigen_jax: the unified view of GANs and VAEs (Hu et al., ICLR 2018) in JAX."""

from unigen_jax import distributions
from unigen_jax import losses

__version__ = "0.1.0"
