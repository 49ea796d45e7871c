"""Loss functions of the unified view of deep generative models (Hu et al., 2018).

Two families, named by their KL direction:

* adversarial (sleep-phase direction, ``KL(p_theta(x|y) || q^r(x|y))``, Lemma 1):
  GAN, IWGAN, CGAN, IW-CGAN, InfoGAN, ADA, AAE, ALI/BiGAN;
* variational (wake-phase direction, ``KL(q_eta(z|x,y) q^r(y|x) || p_theta(z,y|x))``,
  Lemma 2): VAE, CVAE, IWAE, SVAE (M2), AA-VAE/CVAE/SVAE, wake-sleep, AVB.

All are pure functions of arrays, quantities to minimise, with per-example values of
any batch shape and a ``reduction`` keyword; arrays are positional, hyperparameters
keyword-only. Losses over two batches return a :class:`TwoBatch` for ``reduction='none'``.
Beside them: the discriminator's gradient penalties (R1, R2, WGAN-GP) and
:func:`checked`, which turns the optional ``validate=True`` label checks into errors under
``jit``.
"""

from unigen_jax.losses._adversarial import aae_discriminator_loss
from unigen_jax.losses._adversarial import aae_encoder_loss
from unigen_jax.losses._adversarial import ada_discriminator_loss
from unigen_jax.losses._adversarial import ada_feature_extractor_loss
from unigen_jax.losses._adversarial import ali_discriminator_loss
from unigen_jax.losses._adversarial import ali_generator_loss
from unigen_jax.losses._adversarial import conditional_discriminator_loss
from unigen_jax.losses._adversarial import conditional_generator_loss_importance_weighted
from unigen_jax.losses._adversarial import conditional_generator_loss_nonsaturating
from unigen_jax.losses._adversarial import discriminator_loss
from unigen_jax.losses._adversarial import generator_loss_importance_weighted
from unigen_jax.losses._adversarial import generator_loss_minimax
from unigen_jax.losses._adversarial import generator_loss_nonsaturating
from unigen_jax.losses._adversarial import importance_weights
from unigen_jax.losses._adversarial import infogan_categorical_code_loss
from unigen_jax.losses._adversarial import infogan_gaussian_code_loss
from unigen_jax.losses._adversarial import select_class_logits
from unigen_jax.losses._regularizers import r1_penalty
from unigen_jax.losses._regularizers import r2_penalty
from unigen_jax.losses._regularizers import wgan_gp_penalty
from unigen_jax.losses._utils import TwoBatch
from unigen_jax.losses._utils import checked
from unigen_jax.losses._variational import adversary_activated_negative_elbo
from unigen_jax.losses._variational import adversary_activated_semi_supervised_loss
from unigen_jax.losses._variational import adversary_activated_weights
from unigen_jax.losses._variational import avb_discriminator_loss
from unigen_jax.losses._variational import avb_negative_elbo
from unigen_jax.losses._variational import bernoulli_negative_elbo
from unigen_jax.losses._variational import conditional_negative_elbo
from unigen_jax.losses._variational import gaussian_negative_elbo
from unigen_jax.losses._variational import iwae_log_weights
from unigen_jax.losses._variational import iwae_negative_bound
from unigen_jax.losses._variational import negative_elbo
from unigen_jax.losses._variational import semi_supervised_classification_loss
from unigen_jax.losses._variational import semi_supervised_labelled_loss
from unigen_jax.losses._variational import semi_supervised_unlabelled_loss
from unigen_jax.losses._variational import sleep_phase_loss
from unigen_jax.losses._variational import wake_phase_loss

__all__ = [name for name in dir() if not name.startswith("_")]
