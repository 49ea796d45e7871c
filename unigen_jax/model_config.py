"""``ModelConfig``: the one list of the networks' and losses' hyperparameters.

Every network (:mod:`unigen_jax.models` takes it whole), loss and optimizer reads its
settings from a ``ModelConfig``; :mod:`unigen_jax.config` generates the ``model`` section of
the run configuration from its fields. So the list exists once. It is re-exported as
``unigen_jax.variants.ModelConfig``.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """Hyperparameters of the networks and the losses. ``None`` means the variant's default.

  Attributes:
    image_shape: ``(H, W, C)`` of the data.
    num_classes: number of labels (conditional and semi-supervised variants).
    architecture: ``'dcgan'`` (the paper's), ``'dcgan_upsample'`` (PyTorch-GAN's DCGAN:
      upsampling + 3x3 convolutions in the generator, 3x3 stride-2 convolutions with
      dropout in the discriminator), ``'conv'`` (configurable conv stacks, e.g. pythae's
      MNIST VAE) or ``'mlp'``.
    bn_epsilon: batch-norm epsilon of the ``'dcgan_upsample'`` blocks (PyTorch-GAN: 0.8).
    dropout: channel-dropout rate of the ``'dcgan_upsample'`` discriminator (PyTorch-GAN:
      0.25); in training each call draws its own dropout key.
    mlp_activation: activation of MLP encoders/discriminators (``'leaky_relu'`` or ``'relu'``).
    conv_channels, deconv_start, deconv_channels: the ``'conv'`` encoder's channels and the
      decoder's starting (H, W, C) and channels.
    width: DCGAN base width (64 in the paper).
    hidden: MLP hidden sizes, and the sizes of small vector MLPs.
    latent_dim: size of z (GAN family default 100, VAE family 20).
    optimizer: ``'adam'`` (default) or ``'sgd'`` (plain gradient descent, e.g. to compare
      numerics: Adam's ``g / (|g| + eps)`` amplifies rounding in near-zero gradients).
    learning_rate, b1, b2: Adam (GANs: 2e-4, 0.5, 0.999 as in DCGAN; VAEs: 1e-3, 0.9, 0.999).
    discriminator_learning_rate: learning rate of the players declared with
      ``role='discriminator'`` (GANs, AA-VAEs, ALI, AAE, ADA); ``None``: ``learning_rate``.
      A two-time-scale setting, e.g. to keep the AA-VAE discriminator from saturating;
      ``0`` freezes the discriminator at its initialisation (a control experiment).
    num_importance_samples: IWAE's K.
    fake_weight: weight of generated samples in the AA-VAE family (Eq. 17).
    aa_fake_samples: how the AA-VAE family draws the generated samples of Eq. 17:
      ``'bernoulli'`` (x ~ p_theta(x|z), binary like the dynamically binarised data; the
      paper's) or ``'mean'`` (the decoder's grey-level means).
    svae_alpha: weight of the M2 classification term (per-batch mean cross-entropy).
    svae_labelled_weight, svae_unlabelled_weight: weights of the per-batch means of the M2
      labelled and unlabelled terms. Kingma et al. (2014) sum over N_l labelled and N_u
      unlabelled examples with alpha = 0.1 N (N = N_l + N_u); divided by N, that is
      weights N_l/N and N_u/N with ``svae_alpha=0.1``.
    infogan_categories, infogan_continuous: InfoGAN codes (10 and 2 on MNIST).
    infogan_weight, infogan_continuous_weight: weights of the InfoGAN terms.
    adversarial_weight: weight of the adversarial term in ADA and AAE.
    gradient_penalty: added to every discriminator player's loss: ``'none'``, ``'r1'``
      (squared gradient norm at the real inputs), ``'r2'`` (at the generated ones) or
      ``'wgan_gp'`` (unit gradient norm at random interpolates); see
      :mod:`unigen_jax.losses`. Inputs are the discriminator's own: images, codes (AAE),
      features (ADA), (x, z) pairs (ALI, AVB).
    gradient_penalty_weight: its weight (R1 with Mescheder et al.'s gamma: gamma / 2).
    dtype: compute dtype of the networks (``'float32'`` or ``'bfloat16'``).
    update_order: ``'default'`` (the variant's ``players``) or an alternative order the
      variant declares in ``Variant.orders``. GAN, IWGAN, CGAN, IW-CGAN:
      ``'generator_first'`` updates the generator first and then the discriminator on the
      same generated batch (detached, from the generator before its update), as PyTorch
      DCGAN implementations do: one generator forward pass per step instead of two.
    microbatch_size: ``0`` (default): the step's gradient is taken over the whole batch at
      once. ``m > 0``: accumulated over chunks of ``m`` examples in a ``lax.scan``
      (each chunk's noise from ``fold_in(player_key, chunk)``), which keeps the intermediates
      cache-sized at large batches (``benchmarks/RESULTS_iwae_large_batch.md``: -23% per IWAE
      K=5 MLP step at batch 1024). The same mathematics only where the loss is a mean over
      independent examples: single-player per-example objectives (VAE, CVAE, IWAE) on
      networks without batch norm (``architecture='mlp'``), in a ``'jit'`` or ``'none'``
      step; anything else is refused. Not bitwise the unchunked step (another summation
      order, other noise draws).
    conv_batch_chunk: ``0`` (default): each convolution runs over the whole batch at once.
      ``c > 0``: every convolution of the conv architectures (``'dcgan'``,
      ``'dcgan_upsample'``, ``'conv'``) runs as one call per chunk of at most ``c``
      examples, unrolled in the same program, in at most 16 chunks (larger chunks beyond
      ``16 c`` examples: the program grows with their number; ``kernels.over_batch_chunks``). XLA:CPU's
      convolutions cost more per example as the batch grows; over chunks of 16-64 they stay
      on their fast path (``benchmarks/RESULTS_conv_batch_chunk.md``). Batch norm and
      everything else still see the whole batch: the same function and the same
      mathematics for every variant, not bitwise (a shared kernel's gradient is summed
      over the chunks). Ignored by ``'mlp'``. A CPU setting: accelerators want the whole
      batch.
    fast_likelihood: ``False`` (default): the decoders' Bernoulli log-likelihood in the
      training objectives is ``x l - jax.nn.softplus(l)`` summed over the image's axes, as in
      every earlier version (steps bitwise those of before). ``True``: over flat events
      (``[..., 784]``) with :func:`unigen_jax.distributions.softplus`
      (``max(l, 0) + log1p(exp(-|l|))``), the form the evaluation's likelihood uses: the
      same function to float rounding, cheaper on XLA:CPU where the likelihood is a large
      part of the step (IWAE's ``[K, B, 784]``: ``benchmarks/RESULTS_iwae_large_batch.md``).
      Every variant with a Bernoulli decoder (VAE family, IWAE, AAE, AVB, wake-sleep).
  """
  image_shape: tuple = (28, 28, 1)
  num_classes: int = 10
  architecture: str = "dcgan"
  width: int = 64
  hidden: tuple = (500,)
  mlp_activation: str = "leaky_relu"
  conv_channels: tuple = (128, 256, 512, 1024)
  deconv_start: tuple = (4, 4, 1024)
  deconv_channels: tuple = (512, 256)
  bn_epsilon: float = 1e-5
  dropout: float = 0.0
  latent_dim: Optional[int] = None
  optimizer: str = "adam"
  learning_rate: Optional[float] = None
  discriminator_learning_rate: Optional[float] = None
  b1: Optional[float] = None
  b2: float = 0.999
  num_importance_samples: int = 5
  fake_weight: float = 1.0
  aa_fake_samples: str = "bernoulli"
  svae_alpha: float = 1.0
  svae_labelled_weight: float = 1.0
  svae_unlabelled_weight: float = 1.0
  infogan_categories: int = 10
  infogan_continuous: int = 2
  infogan_weight: float = 1.0
  infogan_continuous_weight: float = 0.1
  adversarial_weight: float = 1.0
  gradient_penalty: str = "none"
  gradient_penalty_weight: float = 10.0
  dtype: str = "float32"
  update_order: str = "default"
  microbatch_size: int = 0
  conv_batch_chunk: int = 0
  fast_likelihood: bool = False

  def __post_init__(self):
    object.__setattr__(self, "image_shape", tuple(int(d) for d in self.image_shape))
    for name in ("hidden", "conv_channels", "deconv_start", "deconv_channels"):
      object.__setattr__(self, name, tuple(int(d) for d in getattr(self, name)))
    if len(self.image_shape) != 3 or min(self.image_shape) < 1:
      raise ValueError(f"image_shape must be (height, width, channels), got {self.image_shape}.")
    if self.architecture not in ("dcgan", "dcgan_upsample", "conv", "mlp"):
      raise ValueError(f"architecture={self.architecture!r}; use 'dcgan', 'dcgan_upsample', "
                       "'conv' or 'mlp'.")
    if not 0.0 <= self.dropout < 1.0:
      raise ValueError(f"dropout must be in [0, 1), got {self.dropout}.")
    if self.dropout > 0 and self.architecture != "dcgan_upsample":
      raise ValueError(f"dropout={self.dropout} is only used by architecture='dcgan_upsample'; "
                       "set it to 0 or change the architecture.")
    if not self.bn_epsilon > 0:
      raise ValueError(f"bn_epsilon must be > 0, got {self.bn_epsilon}.")
    if self.mlp_activation not in ("relu", "leaky_relu"):
      raise ValueError(f"mlp_activation={self.mlp_activation!r}; use 'relu' or 'leaky_relu'.")
    if self.optimizer not in ("adam", "sgd"):
      raise ValueError(f"optimizer={self.optimizer!r}; use 'adam' or 'sgd'.")
    if self.dtype not in ("float32", "bfloat16"):
      raise ValueError(f"dtype={self.dtype!r}; use 'float32' or 'bfloat16'.")
    for name in ("num_classes", "width", "num_importance_samples", "infogan_categories"):
      if getattr(self, name) < 1:
        raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}.")
    if self.microbatch_size < 0:
      raise ValueError(f"microbatch_size must be >= 0 (0: no accumulation), got "
                       f"{self.microbatch_size}.")
    if self.conv_batch_chunk < 0:
      raise ValueError(f"conv_batch_chunk must be >= 0 (0: whole-batch convolutions), got "
                       f"{self.conv_batch_chunk}.")
    for name in ("latent_dim",):
      if getattr(self, name) is not None and getattr(self, name) < 1:
        raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}.")
    if self.learning_rate is not None and not self.learning_rate > 0:
      raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}.")
    if self.discriminator_learning_rate is not None and not self.discriminator_learning_rate >= 0:
      raise ValueError("discriminator_learning_rate must be >= 0 (0 freezes the discriminator), "
                       f"got {self.discriminator_learning_rate}.")
    if self.gradient_penalty not in ("none", "r1", "r2", "wgan_gp"):
      raise ValueError(f"gradient_penalty={self.gradient_penalty!r}; use 'none', 'r1', 'r2' or "
                       "'wgan_gp'.")
    if not self.gradient_penalty_weight >= 0:
      raise ValueError(f"gradient_penalty_weight must be >= 0, got {self.gradient_penalty_weight}.")
    if self.aa_fake_samples not in ("bernoulli", "mean"):
      raise ValueError(f"aa_fake_samples={self.aa_fake_samples!r}; use 'bernoulli' or 'mean'.")
    for name in ("svae_alpha", "svae_labelled_weight", "svae_unlabelled_weight", "fake_weight"):
      if not getattr(self, name) >= 0:
        raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}.")

  @property
  def compute_dtype(self):
    return jnp.bfloat16 if self.dtype == "bfloat16" else jnp.float32

  def replace(self, **kwargs) -> "ModelConfig":
    return dataclasses.replace(self, **kwargs)
