"""Flax (Linen) networks of the unified view; see ``networks`` and ``backbones``."""

from unigen_jax.models.backbones import DCGANDiscriminatorBackbone
from unigen_jax.models.backbones import DCGANGeneratorBackbone
from unigen_jax.models.backbones import MLPBackbone
from unigen_jax.models.backbones import MLPGeneratorBackbone
from unigen_jax.models.networks import Classifier
from unigen_jax.models.networks import CodeMLP
from unigen_jax.models.networks import Discriminator
from unigen_jax.models.networks import Encoder
from unigen_jax.models.networks import FeatureExtractor
from unigen_jax.models.networks import Generator
from unigen_jax.models.networks import ImplicitEncoder
from unigen_jax.models.networks import InfoGANDiscriminator
from unigen_jax.models.networks import JointDiscriminator
