"""Default training configuration; every field of every config is listed here.

Usage (``arg`` is ``variant`` or ``variant,dataset``)::

  python -m unigen_jax.main --config=unigen_jax/configs/default.py:aavae,mnist_sample \
      --workdir=workdirs/aavae --config.steps=2000 --config.model.width=32

Defaults follow the paper: GANs use the DCGAN architecture and hyperparameters
(Adam 2e-4, beta1 0.5, batch 64, latent 100); the VAE family shares those
networks with Adam 1e-3, latent 20 and dynamically binarised data. Fields left
``None`` (typed placeholders, so ``--config.data.fraction=0.01`` works) take the variant's default (``unigen_jax.variants``) or the dataset's
shape; ``python -m unigen_jax.main --config=... --workdir=... --dry_run`` prints
the resolved config without training.
"""

import ml_collections
from ml_collections.config_dict import placeholder

GAN_FAMILY = ("gan", "gan_minimax", "iwgan", "cgan", "iwcgan", "infogan", "ali", "ada")


def get_config(arg: str = "vae") -> ml_collections.ConfigDict:
  parts = [p for p in (arg or "vae").split(",") if p]
  variant = parts[0]
  dataset = parts[1] if len(parts) > 1 else "mnist_sample"
  gan_like = variant in GAN_FAMILY

  config = ml_collections.ConfigDict()
  config.variant = variant
  config.seed = 0
  config.steps = 2000
  config.batch_size = 64
  config.parallelism = "jit"          # 'jit' (sharded jit), 'shard_map' or 'none'
  config.steps_per_call = 1           # >1: several steps per call with lax.scan

  config.model = ml_collections.ConfigDict(dict(
      image_shape=placeholder(tuple),  # None: the dataset's (H, W, C)
      num_classes=placeholder(int),    # None: the dataset's
      architecture="dcgan", width=64, hidden=(500,), mlp_activation="leaky_relu",
      conv_channels=(128, 256, 512, 1024), deconv_start=(4, 4, 1024), deconv_channels=(512, 256),
      bn_epsilon=1e-5, dropout=0.0, latent_dim=placeholder(int), optimizer="adam", learning_rate=placeholder(float),
      discriminator_learning_rate=placeholder(float),  # None: learning_rate
      b1=placeholder(float), b2=0.999,
      num_importance_samples=5, fake_weight=1.0, svae_alpha=1.0,
      infogan_categories=10, infogan_continuous=2, infogan_weight=1.0,
      infogan_continuous_weight=0.1, adversarial_weight=1.0, dtype="float32",
      update_order="default"))       # GANs: 'generator_first' reuses G's batch for D

  config.data = ml_collections.ConfigDict(dict(
      dataset=dataset,
      split="train",                  # mnist_sample: 4,500 images; 'validation' holds 500 out
      data_dir="", source="auto", download=False,
      fraction=placeholder(float),    # the paper's 0.01 / 0.1 / 1.0 of the training split
      num_examples=placeholder(int),  # or an explicit class-balanced count
      num_labelled=placeholder(int),  # semi-supervised variants: size of the labelled set
      labelled_batch_size=placeholder(int),  # default: batch_size
      binarization="none" if gan_like else "dynamic",
      target_domain="inverted" if variant == "ada" else "",
      prefetch=2))

  config.log_every = 50
  config.checkpoint_every = 500
  config.keep_checkpoints = 3
  config.sample_every = 500
  config.num_samples = 100            # sample grid of 10 x 10 (conditional: a row per class)
  config.progress = True

  # Evaluation at the end of training (unigen_jax.evaluate); "" disables it.
  config.eval = ml_collections.ConfigDict(dict(
      dataset=dataset,
      split="validation" if dataset == "mnist_sample" else "test",
      data_dir="", binarization="none" if gan_like else "fixed",
      num_examples=placeholder(int),  # None: the whole split
      elbo_samples=1, importance_samples=0, batch_size=500,
      num_generated=10000,            # samples for inception score / accuracy / FID
      classifier_dir="",              # evaluation classifier (evaluate --train_classifier)
      metrics=""))                    # comma-separated, e.g. "elbo,iwae"; "" = none
  return config
