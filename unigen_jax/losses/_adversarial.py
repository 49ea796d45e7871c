r"""Adversarial losses: the sleep-phase KL direction.

In the unified view (Hu et al., 2018, Sec. 3.2) a GAN has a real/fake indicator
``y`` (1 = real), a discriminator :math:`q_\phi(y|x) = D(x) = \sigma(l(x))` and its
reversal :math:`q^r_\phi(y|x) = q_\phi(1-y|x)`. The generator update minimises
(Lemma 1, Eq. 6)

.. math::
  \mathbb{E}_{p(y)}\,\mathrm{KL}\big(p_\theta(x|y)\,\|\,q^r(x|y)\big)
  - \mathrm{JSD}\big(p_\theta(x|y=0)\,\|\,p_\theta(x|y=1)\big),

i.e. the model distribution is the *first* argument of the KL, the same direction
as the sleep phase of wake-sleep. Every function below is a quantity to
minimise, takes discriminator logits ``l`` (never probabilities) and is stable
for :math:`|l| \ge 100` (it uses ``softplus``: :math:`-\log\sigma(l) = \mathrm{softplus}(-l)`).

Shapes: logits have any batch shape ``[...]`` (``[B]``, ``[B, K]``, a scalar under
``jax.vmap``); per-class logits and code logits add a trailing class axis ``[..., C]``.
Arrays are positional, hyperparameters keyword-only. Reductions: ``'mean'`` (default),
``'sum'`` (over all batch axes) or ``'none'`` (per-example values). A loss over two
batches (real and fake) returns, for ``'mean'``, the sum of the two batch means (the
two expectations of the paper's objective), for ``'sum'`` the sum of every term and,
for ``'none'``, a :class:`~unigen_jax.losses.TwoBatch` ``(real, fake)`` of per-example
arrays.
"""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp

from unigen_jax import distributions
from unigen_jax.losses import _utils

Array = jax.Array


# ---------------------------------------------------------------------------
# GAN (Eq. 3 / Eq. 4), CGAN
# ---------------------------------------------------------------------------

def discriminator_loss(real_logits: Array, fake_logits: Array, *,
                       real_weights: Optional[Array] = None,
                       fake_weights: Optional[Array] = None,
                       label_smoothing: float = 0.0,
                       reduction: str = "mean"):
  r"""Discriminator objective of GANs (Eq. 3 / Eq. 4, the update of :math:`\phi`).

  .. math::
    \mathcal{L}_\phi = -\mathbb{E}_{p_{data}}[\log D(x)]
                       - \mathbb{E}_{p_\theta(x|y=0)}[\log (1 - D(x))]
                     = \mathbb{E}[\mathrm{softplus}(-l_{real})] + \mathbb{E}[\mathrm{softplus}(l_{fake})]

  In the unified notation this is :math:`-\mathbb{E}_{p_\theta(x|y)p(y)}\log q_\phi(y|x)`:
  the discriminator is trained with the *un-reversed* labels. KL direction: the
  adversarial (sleep-phase) family. Used by GAN, IWGAN, CGAN (with a
  label-conditioned discriminator), AA-VAE and every adversarial variant.

  Args:
    real_logits: discriminator logits on data, ``[...]``.
    fake_logits: discriminator logits on generated samples, ``[...]`` (its own shape).
    real_weights: optional per-example weights, the shape of ``real_logits``.
    fake_weights: optional per-example weights, the shape of ``fake_logits``.
    label_smoothing: one-sided smoothing; real targets become
      ``1 - label_smoothing`` (0, the paper's setting, by default).
    reduction: ``'mean'`` (sum of the two batch means), ``'sum'`` or ``'none'``
      (a ``TwoBatch(real, fake)`` of per-example terms).

  Returns:
    The loss to minimise, or the per-example pair.

  Example:
    >>> import jax.numpy as jnp
    >>> from unigen_jax import losses
    >>> real, fake = jnp.array([2.0, 3.0]), jnp.array([-1.0, 0.0, -2.0])
    >>> print(f"{float(losses.discriminator_loss(real, fake)):.4f}")
    0.4655
    >>> losses.discriminator_loss(real, fake, reduction="none").fake.shape
    (3,)
  """
  _utils.check_reduction(reduction)
  if not 0.0 <= label_smoothing < 1.0:
    raise ValueError(f"label_smoothing={label_smoothing} must be in [0, 1).")
  real_terms = jax.nn.softplus(-real_logits)
  if label_smoothing:
    # Target 1 - s: -(1-s) log D - s log(1-D).
    real_terms = (1.0 - label_smoothing) * real_terms + label_smoothing * jax.nn.softplus(real_logits)
  fake_terms = jax.nn.softplus(fake_logits)
  real_terms = _utils.apply_weights("real_weights", real_weights, real_terms)
  fake_terms = _utils.apply_weights("fake_weights", fake_weights, fake_terms)
  return _utils.reduce_two_sided(real_terms, fake_terms, reduction)


def _one_batch_loss(terms_fn, fake_logits, weights, reduction):
  """Per-example terms, optional weights and the reduction of a one-batch loss."""
  _utils.check_reduction(reduction)
  return _utils.reduce(_utils.apply_weights("weights", weights, terms_fn(fake_logits)), reduction)


def generator_loss_nonsaturating(fake_logits: Array, *,
                                 weights: Optional[Array] = None,
                                 reduction: str = "mean") -> Array:
  r"""Non-saturating generator objective (Eq. 3 / Eq. 4, the update of :math:`\theta`).

  .. math::
    \mathcal{L}_\theta = -\mathbb{E}_{p_\theta(x|y=0)}[\log D(x)]
                       = -\mathbb{E}_{p_\theta(x|y=0)}[\log q^r_\phi(y=0|x)]
                       = \mathbb{E}[\mathrm{softplus}(-l_{fake})]

  This is the generator term of :math:`-\mathbb{E}_{p_\theta(x|y)p(y)}\log q^r_\phi(y|x)`
  (the data term does not depend on :math:`\theta`). Its gradient is that of
  :math:`\mathbb{E}_{p(y)}\mathrm{KL}(p_\theta(x|y)\|q^r(x|y)) - \mathrm{JSD}` (Lemma 1, Eq. 6):
  sleep-phase KL direction. Used by GAN, CGAN, InfoGAN, AAE, AA-VAE.

  Args:
    fake_logits: discriminator logits on generated samples, ``[...]``.
    weights: optional per-example weights, the shape of ``fake_logits``.
    reduction: ``'mean'``, ``'sum'`` or ``'none'`` (the shape of ``fake_logits``).

  Example:
    >>> import jax.numpy as jnp
    >>> from unigen_jax import losses
    >>> print(f"{float(losses.generator_loss_nonsaturating(jnp.zeros(4))):.4f}")  # log 2
    0.6931
    >>> losses.generator_loss_nonsaturating(jnp.zeros((2, 3)), reduction="none").shape
    (2, 3)
  """
  return _one_batch_loss(lambda l: jax.nn.softplus(-l), fake_logits, weights, reduction)


def generator_loss_minimax(fake_logits: Array, *,
                           weights: Optional[Array] = None,
                           reduction: str = "mean") -> Array:
  r"""Minimax (saturating) generator objective of the original GAN (Eq. 3).

  .. math::
    \mathcal{L}_\theta = \mathbb{E}_{p_\theta(x|y=0)}[\log(1 - D(x))]
                       = -\mathbb{E}[\mathrm{softplus}(l_{fake})]

  The negative of the discriminator's fake term: the generator minimises what the
  discriminator maximises. Its gradient vanishes when the discriminator is
  confident (:math:`l \to -\infty`), which is why the non-saturating form is the
  default. Values are negative. Sleep-phase family; used by ``gan_minimax``.

  Args:
    fake_logits: discriminator logits on generated samples, ``[...]``.
    weights: optional per-example weights, the shape of ``fake_logits``.
    reduction: ``'mean'``, ``'sum'`` or ``'none'`` (the shape of ``fake_logits``).

  Example:
    >>> import jax.numpy as jnp
    >>> from unigen_jax import losses
    >>> print(f"{float(losses.generator_loss_minimax(jnp.zeros(4))):.4f}")  # -log 2
    -0.6931
  """
  return _one_batch_loss(lambda l: -jax.nn.softplus(l), fake_logits, weights, reduction)


# ---------------------------------------------------------------------------
# IWGAN (Eq. 16)
# ---------------------------------------------------------------------------

def importance_weights(fake_logits: Array, *, axis_name: Optional[str] = None):
  r"""Self-normalised importance weights of IWGAN (Eq. 16) and their effective sample size.

  .. math::
    w_i = \frac{q^r_\phi(y=0|x_i)}{q_\phi(y=0|x_i)} = \frac{D(x_i)}{1 - D(x_i)} = e^{l_i},
    \qquad \tilde w_i = \frac{w_i}{\sum_{j=1}^k w_j} = \mathrm{softmax}(l)_i,
    \qquad \mathrm{ESS} = \frac{1}{\sum_i \tilde w_i^2}.

  The weights are a softmax over the ``k`` generated samples of a minibatch, the
  **last** axis of ``fake_logits``: ``[k]`` for one minibatch, ``[B, k]`` for ``B``
  independent ones. Under ``jax.jit`` with a sharded batch the softmax is over the
  global batch automatically; inside ``jax.shard_map`` pass the mapped ``axis_name``
  (sharding the last axis) so that the normalisation and the ESS run over every
  device's samples. Not a loss: no reduction.

  Args:
    fake_logits: discriminator logits on the generated samples, ``[..., k]``.
    axis_name: mapped axis to normalise over inside ``shard_map`` (None: local).

  Returns:
    ``(weights [..., k], effective_sample_size [...])``; weights sum to 1 over the last
    axis (over all devices with ``axis_name``) and increase with the logit. They are
    *not* stop-gradient'ed here; :func:`generator_loss_importance_weighted` does that.

  Example:
    >>> import jax.numpy as jnp
    >>> from unigen_jax import losses
    >>> w, ess = losses.importance_weights(jnp.log(jnp.array([1.0, 1.0, 2.0])))
    >>> [round(float(v), 2) for v in w], round(float(ess), 2)
    ([0.25, 0.25, 0.5], 2.67)
  """
  _utils.check_trailing("fake_logits", fake_logits, "k samples")
  # The shift only keeps exp() finite: the weights do not depend on it, so it is held
  # constant (pmax also has no differentiation rule).
  local_max = jax.lax.stop_gradient(jnp.max(fake_logits, axis=-1, keepdims=True))
  global_max = local_max if axis_name is None else jax.lax.pmax(local_max, axis_name)
  unnormalised = jnp.exp(fake_logits - global_max)
  total = jnp.sum(unnormalised, axis=-1, keepdims=True)
  if axis_name is not None:
    total = jax.lax.psum(total, axis_name)
  weights = unnormalised / total
  sum_sq = jnp.sum(jnp.square(weights), axis=-1)
  if axis_name is not None:
    sum_sq = jax.lax.psum(sum_sq, axis_name)
  return weights, 1.0 / sum_sq


def generator_loss_importance_weighted(fake_logits: Array, *,
                                       axis_name: Optional[str] = None,
                                       reduction: str = "mean") -> Array:
  r"""Importance-weighted GAN generator objective (IWGAN, Eq. 16).

  .. math::
    \nabla_\theta \mathcal{L}_\theta
      = -\mathbb{E}_{z_{1..k}}\Big[\sum_{i=1}^k \tilde w_i\,
        \nabla_\theta \log q^r_\phi(y=0|x(z_i,\theta))\Big],
    \qquad \tilde w = \mathrm{softmax}(l)

  The weights :math:`\tilde w_i` (see :func:`importance_weights`, over the last axis)
  are held constant (``stop_gradient``): only :math:`\log D(x_i)` is differentiated, as in
  the paper. Per-example values are :math:`k\,\tilde w_i\,\mathrm{softplus}(-l_i)`
  so that the ``'mean'`` reduction is :math:`\sum_i \tilde w_i\,\mathrm{softplus}(-l_i)`
  (averaged over leading batch axes); with equal logits (or ``k = 1``) this is exactly
  :func:`generator_loss_nonsaturating`, value and gradient. Samples the
  discriminator finds more realistic get more weight: the generator update is
  pulled towards the posterior :math:`q^r(x|y)` like an IWAE. Sleep-phase family;
  used by IWGAN and (with a label-conditioned discriminator) IW-CGAN.

  Args:
    fake_logits: discriminator logits on the ``k`` generated samples, ``[..., k]``.
    axis_name: mapped axis inside ``shard_map`` (see :func:`importance_weights`);
      the per-example values then use the global ``k``, so a ``pmean`` of the
      per-device ``'mean'`` losses is the global objective.
    reduction: ``'mean'``, ``'sum'`` or ``'none'`` (``[..., k]``).

  Example:
    >>> import jax.numpy as jnp
    >>> from unigen_jax import losses
    >>> equal = jnp.zeros(4)  # equal logits: the non-saturating loss
    >>> print(f"{float(losses.generator_loss_importance_weighted(equal)):.4f}")
    0.6931
  """
  _utils.check_reduction(reduction)
  weights, _ = importance_weights(fake_logits, axis_name=axis_name)
  weights = jax.lax.stop_gradient(weights)
  k = fake_logits.shape[-1]
  if axis_name is not None:
    k = jax.lax.psum(k, axis_name)
  terms = k * weights * jax.nn.softplus(-fake_logits)
  return _utils.reduce(terms, reduction)


def select_class_logits(logits: Array, labels: Array, *, validate: bool = False) -> Array:
  """Picks each example's logit for its label: ``logits[..., labels]``.

  For discriminators with one real/fake logit per class (``[..., C]``), the
  conditional discriminator logit of (x, y). Discriminators that take the label
  as an input already return ``[...]``; use the unconditional losses on those.
  ``validate=True`` adds a runtime check that labels are in ``[0, C)`` (see
  :func:`unigen_jax.losses.checked`).

  Example:
    >>> import jax.numpy as jnp
    >>> from unigen_jax import losses
    >>> logits = jnp.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    >>> losses.select_class_logits(logits, jnp.array([2, 0])).tolist()
    [3.0, 4.0]
  """
  _utils.check_integer("labels", labels)
  _utils.check_trailing("logits", logits, "num_classes", jnp.shape(labels))
  _utils.check_label_values("labels", labels, logits.shape[-1], validate)
  return jnp.take_along_axis(logits, labels[..., None].astype(jnp.int32), axis=-1)[..., 0]


def conditional_discriminator_loss(real_logits: Array, real_labels: Array,
                                   fake_logits: Array, fake_labels: Array, *,
                                   label_smoothing: float = 0.0, validate: bool = False,
                                   reduction: str = "mean"):
  r"""CGAN discriminator objective with per-class logits ``[..., C]`` (Eq. 3 with :math:`D(x, c)`).

  .. math::
    \mathcal{L}_\phi = \mathbb{E}[\mathrm{softplus}(-l_{c}(x_{real}))]
                     + \mathbb{E}[\mathrm{softplus}(l_{c}(x_{fake}))]

  where :math:`l_c(x)` is the logit of the example's own label ``c``; the
  discriminator judges whether ``x`` is a real example *of class c*. Sleep-phase
  family; used by CGAN and IW-CGAN with per-class discriminator heads.

  Args:
    real_logits, fake_logits: per-class logits ``[..., C]``.
    real_labels, fake_labels: integer labels, their batch shapes.
    label_smoothing: as in :func:`discriminator_loss`.
    validate: check at run time that labels are in ``[0, C)``.
    reduction: as in :func:`discriminator_loss`.

  Example:
    >>> import jax.numpy as jnp
    >>> from unigen_jax import losses
    >>> logits, labels = jnp.zeros((2, 10)), jnp.array([3, 7])
    >>> print(f"{float(losses.conditional_discriminator_loss(logits, labels, logits, labels)):.4f}")
    1.3863
  """
  return discriminator_loss(select_class_logits(real_logits, real_labels, validate=validate),
                            select_class_logits(fake_logits, fake_labels, validate=validate),
                            label_smoothing=label_smoothing, reduction=reduction)


def conditional_generator_loss_nonsaturating(fake_logits: Array, fake_labels: Array, *,
                                             validate: bool = False,
                                             reduction: str = "mean") -> Array:
  r"""CGAN generator objective with per-class logits: :math:`\mathbb{E}[\mathrm{softplus}(-l_c(G(z, c)))]`.

  Example:
    >>> import jax.numpy as jnp
    >>> from unigen_jax import losses
    >>> loss = losses.conditional_generator_loss_nonsaturating(jnp.zeros((2, 10)), jnp.array([1, 2]))
    >>> print(f"{float(loss):.4f}")
    0.6931
  """
  return generator_loss_nonsaturating(
      select_class_logits(fake_logits, fake_labels, validate=validate), reduction=reduction)


def conditional_generator_loss_importance_weighted(fake_logits: Array, fake_labels: Array, *,
                                                   axis_name: Optional[str] = None,
                                                   validate: bool = False,
                                                   reduction: str = "mean") -> Array:
  r"""IW-CGAN generator objective (Eq. 16 with :math:`D(x, c)`), per-class logits ``[..., k, C]``.

  The weights :math:`\tilde w = \mathrm{softmax}_i\, l_{c_i}(x_i)` normalise the
  conditional logits over the ``k`` samples (the last batch axis) of the minibatch.

  Example:
    >>> import jax.numpy as jnp
    >>> from unigen_jax import losses
    >>> loss = losses.conditional_generator_loss_importance_weighted(
    ...     jnp.zeros((4, 10)), jnp.array([0, 1, 2, 3]))
    >>> print(f"{float(loss):.4f}")
    0.6931
  """
  return generator_loss_importance_weighted(
      select_class_logits(fake_logits, fake_labels, validate=validate), axis_name=axis_name,
      reduction=reduction)


# ---------------------------------------------------------------------------
# InfoGAN (Eq. 9)
# ---------------------------------------------------------------------------

def infogan_categorical_code_loss(code_logits: Array, codes: Array, *, validate: bool = False,
                                  reduction: str = "mean") -> Array:
  r"""InfoGAN mutual-information term for a categorical code (Eq. 9).

  .. math::
    \mathcal{L}_{\theta,\eta} = -\mathbb{E}_{p(c)\,p_\theta(x|c, y=0)}[\log q_\eta(c|x)]

  :math:`H(c) - \mathcal{L}` is a lower bound on :math:`I(c; x)`. In the unified
  view :math:`q_\eta(c|x)` is the inference model of the code, trained in the
  sleep-phase direction on generated samples only (Eq. 9); minimise with respect
  to both the generator and the code head.

  Args:
    code_logits: the code head's logits on generated samples, ``[..., C]``.
    codes: the integer codes the samples were generated with, ``[...]``.
    validate: check at run time that codes are in ``[0, C)``.
    reduction: ``'mean'``, ``'sum'`` or ``'none'`` (``[...]``).

  Example:
    >>> import jax.numpy as jnp
    >>> from unigen_jax import losses
    >>> loss = losses.infogan_categorical_code_loss(jnp.zeros((3, 10)), jnp.array([0, 4, 9]))
    >>> print(f"{float(loss):.4f}")  # log 10: an uninformative code head
    2.3026
  """
  _utils.check_reduction(reduction)
  _utils.check_integer("codes", codes)
  _utils.check_trailing("code_logits", code_logits, "num_categories", jnp.shape(codes))
  _utils.check_label_values("codes", codes, code_logits.shape[-1], validate)
  return _utils.reduce(-distributions.categorical_log_prob(codes, code_logits), reduction)


def infogan_gaussian_code_loss(code_mean: Array, code_log_var: Array, codes: Array, *,
                               reduction: str = "mean") -> Array:
  r"""InfoGAN mutual-information term for a continuous code with a diagonal Gaussian :math:`q_\eta(c|x)` (Eq. 9).

  .. math::
    \mathcal{L} = -\mathbb{E}[\log \mathcal{N}(c;\,\mu_\eta(x),\,e^{v_\eta(x)})]

  Args:
    code_mean: ``[..., D]``.
    code_log_var: ``[..., D]`` (pass zeros for the fixed-variance form).
    codes: the continuous codes used to generate, ``[..., D]``.
    reduction: ``'mean'``, ``'sum'`` or ``'none'`` (``[...]``).

  Example:
    >>> import jax.numpy as jnp
    >>> from unigen_jax import losses
    >>> zeros = jnp.zeros((2, 1))
    >>> print(f"{float(losses.infogan_gaussian_code_loss(zeros, zeros, zeros)):.4f}")
    0.9189
  """
  _utils.check_reduction(reduction)
  _utils.check_same_shape("code_mean", code_mean, "codes", codes)
  _utils.check_same_shape("code_log_var", code_log_var, "codes", codes)
  return _utils.reduce(-distributions.gaussian_log_prob(codes, code_mean, code_log_var),
                       reduction)


# ---------------------------------------------------------------------------
# Adversarial domain adaptation (Eqs. 1-2)
# ---------------------------------------------------------------------------

def ada_discriminator_loss(source_logits: Array, target_logits: Array, *,
                           reduction: str = "mean"):
  r"""Domain discriminator objective of adversarial domain adaptation (Eq. 1).

  .. math::
    \mathcal{L}_\phi = -\mathbb{E}_{x = G_\theta(z), z \sim p(z|y=1)}[\log D_\phi(x)]
                       - \mathbb{E}_{x = G_\theta(z), z \sim p(z|y=0)}[\log(1 - D_\phi(x))]

  ``y = 1`` is the source domain, ``y = 0`` the target; ``x`` are the features
  of the feature extractor :math:`G_\theta`. Sleep-phase family; used by ADA.

  Args:
    source_logits: domain logits of source-domain features, ``[...]``.
    target_logits: domain logits of target-domain features, ``[...]``.
    reduction: ``'mean'`` (sum of the two means), ``'sum'`` or ``'none'`` (``TwoBatch``).

  Example:
    >>> import jax.numpy as jnp
    >>> from unigen_jax import losses
    >>> print(f"{float(losses.ada_discriminator_loss(jnp.zeros(2), jnp.zeros(2))):.4f}")
    1.3863
  """
  return discriminator_loss(source_logits, target_logits, reduction=reduction)


def ada_feature_extractor_loss(source_logits: Array, target_logits: Array, *,
                               reduction: str = "mean"):
  r"""Feature-extractor objective of adversarial domain adaptation (Eq. 2).

  .. math::
    \mathcal{L}_\theta = -\mathbb{E}_{z \sim p(z|y=1)}[\log(1 - D_\phi(G_\theta(z)))]
                         - \mathbb{E}_{z \sim p(z|y=0)}[\log D_\phi(G_\theta(z))]

  The domain labels are flipped on *both* domains, i.e.
  :math:`-\mathbb{E}_{p(y)}\log q^r_\phi(y|x)`: the same reversed-discriminator
  objective as the GAN generator, except that both domains go through the
  generator :math:`G_\theta`. Sleep-phase family; used by ADA.

  Args:
    source_logits: ``[...]``; target_logits: ``[...]``.
    reduction: ``'mean'`` (sum of the two means), ``'sum'`` or ``'none'`` (``TwoBatch``).

  Example:
    >>> import jax.numpy as jnp
    >>> from unigen_jax import losses
    >>> source, target = jnp.array([5.0]), jnp.array([-5.0])  # D is right on both
    >>> print(f"{float(losses.ada_feature_extractor_loss(source, target)):.4f}")
    10.0134
  """
  _utils.check_reduction(reduction)
  return _utils.reduce_two_sided(jax.nn.softplus(source_logits),
                                 jax.nn.softplus(-target_logits), reduction)


# ---------------------------------------------------------------------------
# Adversarial autoencoder (code-space adversary) and ALI / BiGAN
# ---------------------------------------------------------------------------

def aae_discriminator_loss(prior_logits: Array, posterior_logits: Array, *,
                           reduction: str = "mean"):
  r"""Code-space discriminator of the adversarial autoencoder.

  .. math::
    \mathcal{L}_\phi = -\mathbb{E}_{z \sim p(z)}[\log D(z)]
                       - \mathbb{E}_{z \sim q_\eta(z|x)p_{data}(x)}[\log(1 - D(z))]

  Prior samples play the role of real data (``y = 1``) and encoded codes the
  role of generated samples: an AAE is a GAN in code space whose "generator" is
  the encoder. Sleep-phase family.

  Args:
    prior_logits: discriminator logits on prior samples, ``[...]``.
    posterior_logits: discriminator logits on encoded codes, ``[...]``.
    reduction: ``'mean'`` (sum of the two means), ``'sum'`` or ``'none'`` (``TwoBatch``).

  Example:
    >>> import jax.numpy as jnp
    >>> from unigen_jax import losses
    >>> print(f"{float(losses.aae_discriminator_loss(jnp.zeros(3), jnp.zeros(3))):.4f}")
    1.3863
  """
  return discriminator_loss(prior_logits, posterior_logits, reduction=reduction)


def aae_encoder_loss(posterior_logits: Array, *, reduction: str = "mean") -> Array:
  r"""Adversarial regulariser of the AAE encoder: :math:`-\mathbb{E}_{q_\eta(z|x)}[\log D(z)]`.

  Non-saturating generator objective in code space; it replaces the VAE's
  :math:`\mathrm{KL}(q_\eta(z|x)\|p(z))`. Add the reconstruction term separately.

  Example:
    >>> import jax.numpy as jnp
    >>> from unigen_jax import losses
    >>> print(f"{float(losses.aae_encoder_loss(jnp.zeros(3))):.4f}")
    0.6931
  """
  return generator_loss_nonsaturating(posterior_logits, reduction=reduction)


def ali_discriminator_loss(encoder_pair_logits: Array, generator_pair_logits: Array, *,
                           reduction: str = "mean"):
  r"""ALI / BiGAN discriminator on joint pairs (the symmetric view, Sec. 3.5).

  .. math::
    \mathcal{L}_\phi = -\mathbb{E}_{p_{data}(x) q_\eta(z|x)}[\log D(x, z)]
                       - \mathbb{E}_{p(z) p_\theta(x|z)}[\log(1 - D(x, z))]

  Pairs ``(x, E(x))`` from the inference model are labelled ``y = 1``, pairs
  ``(G(z), z)`` from the generative model ``y = 0``. Shapes and reductions as in
  :func:`discriminator_loss`.

  Example:
    >>> import jax.numpy as jnp
    >>> from unigen_jax import losses
    >>> print(f"{float(losses.ali_discriminator_loss(jnp.zeros(2), jnp.zeros(2))):.4f}")
    1.3863
  """
  return discriminator_loss(encoder_pair_logits, generator_pair_logits, reduction=reduction)


def ali_generator_loss(encoder_pair_logits: Array, generator_pair_logits: Array, *,
                       reduction: str = "mean"):
  r"""ALI / BiGAN objective of the encoder and the generator, labels flipped on both pairs.

  .. math::
    \mathcal{L}_{\theta,\eta} = -\mathbb{E}_{p_{data} q_\eta}[\log(1 - D(x, z))]
                                - \mathbb{E}_{p(z) p_\theta}[\log D(x, z)]

  :math:`= -\mathbb{E}_{p(y)}\log q^r_\phi(y|x,z)`: the reversed-discriminator
  (sleep-phase) objective applied symmetrically to generation and inference,
  which is the paper's point that ALI treats :math:`z` and :math:`x` alike.

  Example:
    >>> import jax.numpy as jnp
    >>> from unigen_jax import losses
    >>> print(f"{float(losses.ali_generator_loss(jnp.zeros(2), jnp.zeros(2))):.4f}")
    1.3863
  """
  return ada_feature_extractor_loss(encoder_pair_logits, generator_pair_logits,
                                    reduction=reduction)
