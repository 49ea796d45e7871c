r"""Variational losses: the wake-phase KL direction.

In the unified view (Hu et al., 2018, Sec. 3.3, Lemma 2) a VAE minimises

.. math::
  \mathrm{KL}\big(q_\eta(z|x,y)\,q^r_*(y|x)\,\|\,p_\theta(z,y|x)\big)

with a perfect, degenerate discriminator :math:`q_*`: the inference model is the
*first* argument of the KL, the same direction as the wake phase of wake-sleep
and the opposite of the GAN's. The AA models (Eq. 17) replace :math:`q_*` by a
trained discriminator. Every function below is a quantity to minimise (a
*negative* bound) and returns per-example values with a ``reduction`` of
``'mean'`` (default), ``'sum'`` or ``'none'``.

Inputs are log-likelihoods, logits and Gaussian parameters, never modules, so
the same functions serve MLP and convolutional models and any decoder family:
compute ``log p(x|z)`` with :mod:`unigen_jax.distributions` (or use the
Bernoulli / Gaussian conveniences here).

Shapes: per-example values have any batch shape ``[...]``; Gaussian parameters add a
trailing latent axis ``[..., D]``, classifier logits a trailing class axis ``[..., C]``;
IWAE's samples lead: ``[K, ...]``. Arrays are positional, hyperparameters keyword-only.
"""

from __future__ import annotations

import math
from typing import Optional

import jax
import jax.numpy as jnp

from unigen_jax import distributions
from unigen_jax.losses import _utils

Array = jax.Array


def _kl_to_prior(posterior_mean, posterior_log_var, prior_mean, prior_log_var):
  _utils.check_same_shape("posterior_mean", posterior_mean, "posterior_log_var", posterior_log_var)
  _utils.check_trailing("posterior_mean", posterior_mean, "latent_dim")
  if (prior_mean is None) != (prior_log_var is None):
    raise ValueError("pass both prior_mean and prior_log_var, or neither (standard normal prior).")
  if prior_mean is None:  # the latent axis is the last one; any batch axes lead
    return distributions.kl_diag_gaussian_standard_normal(posterior_mean, posterior_log_var,
                                                          event_ndims=1)
  return distributions.kl_diag_gaussians(posterior_mean, posterior_log_var, prior_mean,
                                         prior_log_var, event_ndims=1)


# ---------------------------------------------------------------------------
# VAE / CVAE (Eq. 11)
# ---------------------------------------------------------------------------

def negative_elbo(log_likelihood: Array, posterior_mean: Array, posterior_log_var: Array, *,
                  prior_mean: Optional[Array] = None, prior_log_var: Optional[Array] = None,
                  kl_weight: float = 1.0, reduction: str = "mean") -> Array:
  r"""Negative evidence lower bound of a VAE with a diagonal-Gaussian encoder (Eq. 11).

  .. math::
    -\mathcal{L}(x) = -\mathbb{E}_{q_\eta(z|x)}[\log p_\theta(x|z)]
                      + \mathrm{KL}\big(q_\eta(z|x)\,\|\,p(z)\big)

  The expectation is the single-sample (reparameterised) estimate
  ``log_likelihood``; the KL is analytic. By Lemma 2 this is, up to a constant,
  :math:`\mathrm{KL}(q_\eta(z|x,y)q^r_*(y|x)\|p_\theta(z,y|x))` with a perfect
  discriminator: wake-phase KL direction. Used by VAE, CVAE (label-conditioned
  networks, optionally a conditional prior), SVAE and the AA models.

  Args:
    log_likelihood: :math:`\log p_\theta(x|z)` at ``z ~ q(z|x)``, ``[...]``.
    posterior_mean: encoder mean, ``[..., D]``.
    posterior_log_var: encoder log-variance, ``[..., D]``.
    prior_mean: optional prior mean ``[..., D]`` (a conditional prior
      :math:`p(z|c)`); the default prior is N(0, I).
    prior_log_var: optional prior log-variance, with ``prior_mean``.
    kl_weight: multiplies the KL (1 is the ELBO; other values give beta-VAE).
    reduction: ``'mean'``, ``'sum'`` or ``'none'`` (``[...]``).

  Example:
    >>> import jax.numpy as jnp
    >>> from unigen_jax import losses
    >>> ll = jnp.array([-90.0, -110.0])
    >>> mean, log_var = jnp.zeros((2, 20)), jnp.zeros((2, 20))  # q = p(z): KL = 0
    >>> print(f"{float(losses.negative_elbo(ll, mean, log_var)):.1f}")
    100.0
  """
  _utils.check_reduction(reduction)
  kl = _kl_to_prior(posterior_mean, posterior_log_var, prior_mean, prior_log_var)
  _utils.check_same_shape("log_likelihood", log_likelihood, "the KL per example", kl)
  return _utils.reduce(kl_weight * kl - log_likelihood, reduction)


def bernoulli_negative_elbo(x: Array, decoder_logits: Array, posterior_mean: Array,
                            posterior_log_var: Array, *, prior_mean: Optional[Array] = None,
                            prior_log_var: Optional[Array] = None, kl_weight: float = 1.0,
                            event_ndims: Optional[int] = None, reduction: str = "mean") -> Array:
  r"""Negative ELBO (Eq. 11) with a Bernoulli decoder given by logits.

  .. math::
    -\mathcal{L}(x) = -\sum_i \big[x_i \log\sigma(l_i) + (1-x_i)\log\sigma(-l_i)\big]
                      + \mathrm{KL}(q_\eta(z|x)\|p(z))

  Args:
    x: data in [0, 1], ``[..., *event]`` (images ``[B, H, W, C]`` or ``[B, 784]``).
    decoder_logits: same shape as ``x``.
    posterior_mean: ``[..., D]``; the batch shape ``[...]`` of the examples.
    posterior_log_var: ``[..., D]``.
    prior_mean, prior_log_var, kl_weight, reduction: as in :func:`negative_elbo`.
    event_ndims: trailing axes of ``x`` that form one example (default: all but the batch
      axes of ``posterior_mean``).

  Example:
    >>> import jax.numpy as jnp
    >>> from unigen_jax import losses
    >>> x = jnp.ones((2, 4))
    >>> loss = losses.bernoulli_negative_elbo(x, jnp.zeros((2, 4)), jnp.zeros((2, 3)),
    ...                                       jnp.zeros((2, 3)))
    >>> print(f"{float(loss):.4f}")  # 4 pixels at p = 1/2: 4 log 2
    2.7726
  """
  _utils.check_same_shape("x", x, "decoder_logits", decoder_logits)
  if event_ndims is None:
    event_ndims = jnp.ndim(x) - (jnp.ndim(posterior_mean) - 1)
  return negative_elbo(distributions.bernoulli_log_prob(x, decoder_logits, event_ndims=event_ndims),
                       posterior_mean, posterior_log_var, prior_mean=prior_mean,
                       prior_log_var=prior_log_var, kl_weight=kl_weight, reduction=reduction)


def gaussian_negative_elbo(x: Array, decoder_mean: Array, decoder_log_var: Array,
                           posterior_mean: Array, posterior_log_var: Array, *,
                           prior_mean: Optional[Array] = None,
                           prior_log_var: Optional[Array] = None, kl_weight: float = 1.0,
                           event_ndims: Optional[int] = None, reduction: str = "mean") -> Array:
  r"""Negative ELBO (Eq. 11) with a diagonal-Gaussian decoder :math:`\mathcal{N}(x; \mu_\theta(z), e^{v_\theta(z)})`.

  ``decoder_log_var`` may be a scalar or broadcastable array (a shared, learned
  or fixed observation noise). Other arguments as in :func:`bernoulli_negative_elbo`.

  Example:
    >>> import jax.numpy as jnp
    >>> from unigen_jax import losses
    >>> x = jnp.zeros((1, 2))
    >>> loss = losses.gaussian_negative_elbo(x, x, 0.0, jnp.zeros((1, 3)), jnp.zeros((1, 3)))
    >>> print(f"{float(loss):.4f}")  # log N(0; 0, 1) twice
    1.8379
  """
  _utils.check_same_shape("x", x, "decoder_mean", decoder_mean)
  if event_ndims is None:
    event_ndims = jnp.ndim(x) - (jnp.ndim(posterior_mean) - 1)
  log_likelihood = distributions.gaussian_log_prob(x, decoder_mean, decoder_log_var,
                                                   event_ndims=event_ndims)
  return negative_elbo(log_likelihood, posterior_mean, posterior_log_var, prior_mean=prior_mean,
                       prior_log_var=prior_log_var, kl_weight=kl_weight, reduction=reduction)


def conditional_negative_elbo(log_likelihood: Array, posterior_mean: Array,
                              posterior_log_var: Array, prior_mean: Array,
                              prior_log_var: Array, *, kl_weight: float = 1.0,
                              reduction: str = "mean") -> Array:
  r"""Negative ELBO of a conditional VAE with a conditional prior :math:`p(z|c)`.

  .. math::
    -\mathcal{L}(x|c) = -\mathbb{E}_{q_\eta(z|x,c)}[\log p_\theta(x|z,c)]
                        + \mathrm{KL}\big(q_\eta(z|x,c)\,\|\,p(z|c)\big)

  ``log_likelihood`` and the posterior come from label-conditioned networks;
  the prior parameters from a prior network of ``c`` (pass zeros for the
  N(0, I) prior the paper's CVAE uses). Wake-phase family; CVAE, AA-CVAE.

  Example:
    >>> import jax.numpy as jnp
    >>> from unigen_jax import losses
    >>> z = jnp.zeros((1, 2))
    >>> print(f"{float(losses.conditional_negative_elbo(jnp.array([-5.0]), z, z, z, z)):.1f}")
    5.0
  """
  return negative_elbo(log_likelihood, posterior_mean, posterior_log_var,
                       prior_mean=prior_mean, prior_log_var=prior_log_var,
                       kl_weight=kl_weight, reduction=reduction)


# ---------------------------------------------------------------------------
# IWAE
# ---------------------------------------------------------------------------

def iwae_log_weights(log_likelihood: Array, z: Array, posterior_mean: Array,
                     posterior_log_var: Array) -> Array:
  r"""Log importance weights :math:`\log p_\theta(x|z_k) + \log p(z_k) - \log q_\eta(z_k|x)`.

  Args:
    log_likelihood: :math:`\log p_\theta(x|z_k)`, ``[K, ...]``.
    z: the ``K`` posterior samples, ``[K, ..., D]``.
    posterior_mean: ``[..., D]``.
    posterior_log_var: ``[..., D]``.

  Returns:
    ``[K, ...]`` log-weights with a standard normal prior (not a loss: no reduction).

  Example:
    >>> import jax.numpy as jnp
    >>> from unigen_jax import losses
    >>> z = jnp.zeros((5, 2, 3))  # K=5 samples for 2 examples; q = p(z)
    >>> log_w = losses.iwae_log_weights(jnp.full((5, 2), -7.0), z, z[0], z[0])
    >>> log_w.shape, round(float(log_w[0, 0]), 4)
    ((5, 2), -7.0)
  """
  if jnp.ndim(z) < 2 or jnp.shape(z)[1:] != jnp.shape(posterior_mean):
    raise ValueError(
        f"z must have shape [num_samples, *batch, latent_dim] = [K, *{jnp.shape(posterior_mean)}], "
        f"got {jnp.shape(z)}.")
  if jnp.shape(log_likelihood) != jnp.shape(z)[:-1]:
    raise ValueError(
        f"log_likelihood must have shape [K, *batch] = {jnp.shape(z)[:-1]}, got {jnp.shape(log_likelihood)}.")
  log_prior = distributions.standard_normal_log_prob(z, event_ndims=1)
  log_posterior = distributions.gaussian_log_prob(z, posterior_mean, posterior_log_var,
                                                  event_ndims=1)
  return log_likelihood + log_prior - log_posterior


def iwae_negative_bound(log_weights: Array, *, reduction: str = "mean") -> Array:
  r"""Negative importance-weighted bound (Burda et al., 2016) with ``K`` samples.

  .. math::
    -\mathcal{L}_K(x) = -\log \frac{1}{K}\sum_{k=1}^K
        \frac{p_\theta(x, z_k)}{q_\eta(z_k|x)}, \qquad z_k \sim q_\eta(z|x)

  Computed as a log-mean-exp, stable for log-weights of any size. For ``K = 1``
  it is the negative ELBO on the same sample; it is non-increasing in ``K`` in
  expectation and tends to :math:`-\log p_\theta(x)`. Its gradient weights each
  sample's :math:`\nabla\log w_k` by the normalised :math:`\tilde w_k`, the
  wake-phase counterpart of IWGAN's weights (Sec. 4.1). Wake-phase family; IWAE
  and the evaluation's importance-sampled log-likelihood.

  Args:
    log_weights: ``[K, ...]`` (see :func:`iwae_log_weights`): the samples lead.
    reduction: ``'mean'``, ``'sum'`` or ``'none'`` (``[...]``).

  Example:
    >>> import jax.numpy as jnp
    >>> from unigen_jax import losses
    >>> log_w = jnp.log(jnp.array([[1.0], [3.0]]))  # K=2: log mean(1, 3) = log 2
    >>> print(f"{float(losses.iwae_negative_bound(log_w)):.4f}")
    -0.6931
  """
  _utils.check_reduction(reduction)
  if jnp.ndim(log_weights) < 1:
    raise ValueError("log_weights must have shape [num_samples, *batch], got a scalar.")
  k = log_weights.shape[0]
  bound = jax.nn.logsumexp(log_weights, axis=0) - math.log(k)
  return _utils.reduce(-bound, reduction)


# ---------------------------------------------------------------------------
# Semi-supervised VAE (Kingma et al., 2014, M2)
# ---------------------------------------------------------------------------

def _label_log_prior(num_classes: int, label_log_prior: Optional[Array]) -> Array:
  if label_log_prior is None:
    return jnp.full((num_classes,), -math.log(num_classes))
  if jnp.shape(label_log_prior) != (num_classes,):
    raise ValueError(
        f"label_log_prior must have shape [num_classes] = ({num_classes},), "
        f"got {jnp.shape(label_log_prior)}.")
  return label_log_prior


def semi_supervised_labelled_loss(neg_elbo_given_label: Array, labels: Array, *,
                                  num_classes: int,
                                  label_log_prior: Optional[Array] = None,
                                  validate: bool = False,
                                  reduction: str = "mean") -> Array:
  r"""M2 loss of a labelled example, :math:`-\mathcal{L}(x, y)`.

  .. math::
    -\mathcal{L}(x,y) = -\mathbb{E}_{q_\eta(z|x,y)}[\log p_\theta(x|y,z)]
                        + \mathrm{KL}(q_\eta(z|x,y)\|p(z)) - \log p(y)

  Args:
    neg_elbo_given_label: per-example negative ELBO of ``(x, y)`` without the
      label prior (e.g. :func:`negative_elbo` with ``reduction='none'`` on
      label-conditioned networks), ``[...]``.
    labels: integer labels ``[...]``.
    num_classes: number of classes ``C``.
    label_log_prior: :math:`\log p(y)`, ``[C]``; uniform by default.
    validate: check at run time that labels are in ``[0, C)``.
    reduction: ``'mean'``, ``'sum'`` or ``'none'`` (``[...]``).

  Example:
    >>> import jax.numpy as jnp
    >>> from unigen_jax import losses
    >>> loss = losses.semi_supervised_labelled_loss(jnp.array([100.0]), jnp.array([3]),
    ...                                             num_classes=10)
    >>> print(f"{float(loss):.4f}")  # 100 + log 10
    102.3026
  """
  _utils.check_reduction(reduction)
  _utils.check_same_shape("neg_elbo_given_label", neg_elbo_given_label, "labels", labels)
  _utils.check_integer("labels", labels)
  _utils.check_label_values("labels", labels, num_classes, validate)
  log_prior = _label_log_prior(num_classes, label_log_prior)
  return _utils.reduce(neg_elbo_given_label - log_prior[labels], reduction)


def semi_supervised_unlabelled_loss(neg_elbo_per_class: Array, classifier_logits: Array, *,
                                    label_log_prior: Optional[Array] = None,
                                    reduction: str = "mean") -> Array:
  r"""M2 loss of an unlabelled example, :math:`-\mathcal{U}(x)`: the label is marginalised.

  .. math::
    -\mathcal{U}(x) = \sum_y q_\eta(y|x)\,\big(-\mathcal{L}(x, y)\big) - \mathcal{H}(q_\eta(y|x))

  Gradients reach the classifier :math:`q_\eta(y|x)` through the weights and the
  entropy, as in Kingma et al. (2014).

  Args:
    neg_elbo_per_class: negative ELBO of ``(x, y)`` for every label ``y``
      (without the label prior), ``[..., C]``.
    classifier_logits: logits of :math:`q_\eta(y|x)`, ``[..., C]``.
    label_log_prior: :math:`\log p(y)`, ``[C]``; uniform by default.
    reduction: ``'mean'``, ``'sum'`` or ``'none'`` (``[...]``).

  Example:
    >>> import jax.numpy as jnp
    >>> from unigen_jax import losses
    >>> loss = losses.semi_supervised_unlabelled_loss(jnp.full((1, 10), 100.0), jnp.zeros((1, 10)))
    >>> print(f"{float(loss):.4f}")  # 100 + log 10 - H(uniform) = 100
    100.0000
  """
  _utils.check_reduction(reduction)
  _utils.check_same_shape("neg_elbo_per_class", neg_elbo_per_class,
                          "classifier_logits", classifier_logits)
  _utils.check_trailing("classifier_logits", classifier_logits, "num_classes")
  log_prior = _label_log_prior(classifier_logits.shape[-1], label_log_prior)
  probs = jax.nn.softmax(classifier_logits, axis=-1)
  expected = jnp.sum(probs * (neg_elbo_per_class - log_prior), axis=-1)
  return _utils.reduce(expected - distributions.categorical_entropy(classifier_logits),
                       reduction)


def semi_supervised_classification_loss(classifier_logits: Array, labels: Array, *,
                                        alpha: float, validate: bool = False,
                                        reduction: str = "mean") -> Array:
  r"""M2 explicit classification term on labelled data: :math:`-\alpha \log q_\eta(y|x)`.

  Kingma et al. (2014) add :math:`\alpha\,\mathbb{E}_{\tilde p_l}[-\log q(y|x)]` with
  :math:`\alpha = 0.1 N` to an objective *summed* over the ``N`` training examples;
  divided by ``N`` (per-batch means), that is ``alpha=0.1`` here with the labelled and
  unlabelled terms weighted by their shares ``N_l / N`` and ``N_u / N``.

  Args:
    classifier_logits: ``[..., C]``; labels: ``[...]``.
    alpha: the weight.
    validate: check at run time that labels are in ``[0, C)``.
    reduction: ``'mean'``, ``'sum'`` or ``'none'`` (``[...]``).

  Example:
    >>> import jax.numpy as jnp
    >>> from unigen_jax import losses
    >>> loss = losses.semi_supervised_classification_loss(jnp.zeros((2, 10)), jnp.array([1, 2]),
    ...                                                   alpha=0.1)
    >>> print(f"{float(loss):.4f}")  # 0.1 log 10
    0.2303
  """
  _utils.check_reduction(reduction)
  _utils.check_integer("labels", labels)
  _utils.check_trailing("classifier_logits", classifier_logits, "num_classes", jnp.shape(labels))
  _utils.check_label_values("labels", labels, classifier_logits.shape[-1], validate)
  return _utils.reduce(-alpha * distributions.categorical_log_prob(labels, classifier_logits),
                       reduction)


# ---------------------------------------------------------------------------
# Adversary-activated VAEs (Eq. 17)
# ---------------------------------------------------------------------------

def adversary_activated_weights(disc_logits: Array) -> Array:
  r"""Weights :math:`q^r_\phi(y=0|x) = q_\phi(y=1|x) = D(x)` of Eq. 17, held constant.

  In the VAE's notation real examples are reconstructed through the
  :math:`y = 0` branch (the generator); the reversed discriminator gives that
  branch the probability :math:`D(x)` that ``x`` is real. A perfect
  discriminator (logits :math:`\pm\infty`) gives exactly 1 on data and 0 on
  generated samples (Lemma 2). ``stop_gradient``: the encoder/decoder update
  does not move the discriminator. Not a loss: no reduction.

  Example:
    >>> import jax.numpy as jnp
    >>> from unigen_jax import losses
    >>> losses.adversary_activated_weights(jnp.array([0.0, 100.0, -100.0])).tolist()
    [0.5, 1.0, 0.0]
  """
  return jax.lax.stop_gradient(jax.nn.sigmoid(disc_logits))


def adversary_activated_negative_elbo(real_neg_elbo: Array, fake_neg_elbo: Array,
                                      real_disc_logits: Array, fake_disc_logits: Array, *,
                                      fake_weight: float = 1.0,
                                      reduction: str = "mean"):
  r"""Adversary-activated negative ELBO (AA-VAE / AA-CVAE, Eq. 17).

  .. math::
    -\mathcal{L}^{aa} = \mathbb{E}_{p_{data}}\big[q^r_\phi(y{=}0|x)\,(-\mathcal{L}(x))\big]
      + \lambda\,\mathbb{E}_{p_{\theta_0}(x|y=0)}\big[q^r_\phi(y{=}0|x)\,(-\mathcal{L}(x))\big]

  The perfect discriminator of the VAE (Lemma 2) is replaced by a trained one:
  real examples *and* generated samples enter the ELBO, each weighted by
  :math:`q^r_\phi(y=0|x) = D(x)` (see :func:`adversary_activated_weights`,
  constant in the gradient). With a perfect discriminator it reduces exactly to
  the VAE's negative ELBO of the real batch and the generated samples get zero
  gradient. Terms that depend only on :math:`\phi` (the :math:`y=1` branch,
  :math:`\log q^r`) are constant for the encoder/decoder and dropped.
  Wake-phase family. For AA-CVAE pass CVAE per-example terms; for AA-SVAE see
  :func:`adversary_activated_semi_supervised_loss`.

  Args:
    real_neg_elbo: per-example negative ELBO of data, ``[...]``.
    fake_neg_elbo: per-example negative ELBO of generated samples (as inputs
      to the encoder, with the generator's parameters held fixed for sampling),
      ``[...]`` (its own batch shape).
    real_disc_logits: discriminator logits on the data, the shape of ``real_neg_elbo``.
    fake_disc_logits: discriminator logits on the generated samples, the shape of
      ``fake_neg_elbo``.
    fake_weight: :math:`\lambda`, the weight of the generated-sample term.
    reduction: ``'mean'`` (sum of the two batch means), ``'sum'`` or ``'none'``
      (a ``TwoBatch(real, fake)`` of weighted per-example terms).

  Example:
    >>> import jax.numpy as jnp
    >>> from unigen_jax import losses
    >>> perfect = losses.adversary_activated_negative_elbo(  # Lemma 2: the VAE's loss
    ...     jnp.array([90.0, 110.0]), jnp.array([500.0]), jnp.array([100.0, 100.0]),
    ...     jnp.array([-100.0]))
    >>> print(f"{float(perfect):.1f}")
    100.0
  """
  _utils.check_reduction(reduction)
  _utils.check_same_shape("real_neg_elbo", real_neg_elbo, "real_disc_logits", real_disc_logits)
  _utils.check_same_shape("fake_neg_elbo", fake_neg_elbo, "fake_disc_logits", fake_disc_logits)
  real_terms = adversary_activated_weights(real_disc_logits) * real_neg_elbo
  fake_terms = fake_weight * adversary_activated_weights(fake_disc_logits) * fake_neg_elbo
  return _utils.reduce_two_sided(real_terms, fake_terms, reduction)


def adversary_activated_semi_supervised_loss(
    labelled_loss: Array, unlabelled_loss: Array, fake_loss: Array,
    labelled_disc_logits: Array, unlabelled_disc_logits: Array, fake_disc_logits: Array, *,
    fake_weight: float = 1.0, reduction: str = "mean") -> Array:
  r"""Adversary-activated semi-supervised VAE (AA-SVAE, Eq. 17 applied to M2).

  .. math::
    \mathbb{E}_{lab}[D(x)(-\mathcal{L}(x,y))] + \mathbb{E}_{unl}[D(x)(-\mathcal{U}(x))]
      + \lambda\,\mathbb{E}_{fake}[D(x)(-\mathcal{L}(x,y))]

  Generated samples carry the label they were generated with, so their term is
  the labelled loss. The classification term is added separately (unweighted).

  Args:
    labelled_loss: :func:`semi_supervised_labelled_loss` per example, ``[...]``.
    unlabelled_loss: :func:`semi_supervised_unlabelled_loss` per example, ``[...]``.
    fake_loss: labelled loss of generated samples, ``[...]``.
    labelled_disc_logits, unlabelled_disc_logits, fake_disc_logits: logits
      matching each batch.
    fake_weight: :math:`\lambda`.
    reduction: ``'mean'`` (the sum of the three batch means), ``'sum'`` (every term) or
      ``'none'`` (a tuple ``(labelled, unlabelled, fake)`` of weighted per-example terms).

  Example:
    >>> import jax.numpy as jnp
    >>> from unigen_jax import losses
    >>> one = jnp.array([100.0])
    >>> loss = losses.adversary_activated_semi_supervised_loss(
    ...     one, one, one, jnp.array([100.0]), jnp.array([100.0]), jnp.array([-100.0]))
    >>> print(f"{float(loss):.1f}")  # a perfect discriminator: the M2 loss of the real data
    200.0
  """
  _utils.check_reduction(reduction)
  _utils.check_same_shape("unlabelled_loss", unlabelled_loss,
                          "unlabelled_disc_logits", unlabelled_disc_logits)
  labelled, fake = adversary_activated_negative_elbo(
      labelled_loss, fake_loss, labelled_disc_logits, fake_disc_logits, fake_weight=fake_weight,
      reduction="none")
  unlabelled = adversary_activated_weights(unlabelled_disc_logits) * unlabelled_loss
  if reduction == "none":
    return labelled, unlabelled, fake
  return (_utils.reduce(labelled, reduction) + _utils.reduce(fake, reduction)
          + _utils.reduce(unlabelled, reduction))


# ---------------------------------------------------------------------------
# Wake-sleep (Eq. 14) and AVB
# ---------------------------------------------------------------------------

def wake_phase_loss(log_likelihood: Array, z: Array, *, reduction: str = "mean") -> Array:
  r"""Wake phase of wake-sleep (Eq. 14): fit the generative model to data.

  .. math::
    \mathcal{L}_\theta = -\mathbb{E}_{q_\lambda(z|x)\,p_{data}(x)}[\log p_\theta(x|z) + \log p(z)]

  minimises :math:`\mathrm{KL}(q_\lambda(z|x)p_{data}(x)\|p_\theta(z,x))` in
  :math:`\theta`: the wake-phase (VAE) KL direction. ``z`` is a sample of the
  recognition model and is treated as data: ``stop_gradient`` is applied here,
  and the caller must also decode ``stop_gradient(z)`` so that no gradient
  reaches :math:`\lambda` through ``log_likelihood``.

  Args:
    log_likelihood: :math:`\log p_\theta(x|z)`, ``[...]``.
    z: recognition samples, ``[..., D]`` (standard normal prior).
    reduction: ``'mean'``, ``'sum'`` or ``'none'`` (``[...]``).

  Example:
    >>> import jax.numpy as jnp
    >>> from unigen_jax import losses
    >>> print(f"{float(losses.wake_phase_loss(jnp.array([-50.0]), jnp.zeros((1, 2)))):.4f}")
    51.8379
  """
  _utils.check_reduction(reduction)
  log_prior = distributions.standard_normal_log_prob(jax.lax.stop_gradient(z))
  _utils.check_same_shape("log_likelihood", log_likelihood, "log p(z)", log_prior)
  return _utils.reduce(-(log_likelihood + log_prior), reduction)


def sleep_phase_loss(z_dream: Array, posterior_mean: Array, posterior_log_var: Array, *,
                     reduction: str = "mean") -> Array:
  r"""Sleep phase of wake-sleep (Eq. 14): fit the recognition model to dreams.

  .. math::
    \mathcal{L}_\lambda = -\mathbb{E}_{p_\theta(z, x)}[\log q_\lambda(z|x)]

  minimises :math:`\mathrm{KL}(p_\theta(z|x)p_\theta(x)\|q_\lambda(z|x)p_\theta(x))`
  in :math:`\lambda`: the sleep-phase (GAN) KL direction. ``(x, z)`` are
  sampled from the generative model; ``stop_gradient`` is applied to ``z_dream``
  here and the caller encodes ``stop_gradient(x_dream)``.

  Args:
    z_dream: latent codes the dreams were generated from, ``[..., D]``.
    posterior_mean: recognition mean on the dreams, ``[..., D]``.
    posterior_log_var: recognition log-variance on the dreams, ``[..., D]``.
    reduction: ``'mean'``, ``'sum'`` or ``'none'`` (``[...]``).

  Example:
    >>> import jax.numpy as jnp
    >>> from unigen_jax import losses
    >>> z = jnp.zeros((1, 2))
    >>> print(f"{float(losses.sleep_phase_loss(z, z, z)):.4f}")
    1.8379
  """
  _utils.check_reduction(reduction)
  _utils.check_same_shape("z_dream", z_dream, "posterior_mean", posterior_mean)
  _utils.check_same_shape("z_dream", z_dream, "posterior_log_var", posterior_log_var)
  return _utils.reduce(
      -distributions.gaussian_log_prob(jax.lax.stop_gradient(z_dream), posterior_mean,
                                       posterior_log_var), reduction)


def avb_negative_elbo(log_likelihood: Array, critic_logits: Array, *,
                      reduction: str = "mean") -> Array:
  r"""Adversarial variational Bayes (Mescheder et al., 2017): ELBO with an adversarial KL.

  .. math::
    -\mathcal{L}(x) = \mathbb{E}_{q_\eta(z|x)}\big[T_\phi(x, z) - \log p_\theta(x|z)\big]

  where the critic :math:`T_\phi(x,z)` is trained by
  :func:`avb_discriminator_loss`; at its optimum
  :math:`T^*(x,z) = \log q_\eta(z|x) - \log p(z)`, so this is the negative ELBO
  for an *implicit* encoder whose density is unknown. Wake-phase objective with
  an adversarially estimated KL: the symmetric view of Sec. 3.5.

  Args:
    log_likelihood: :math:`\log p_\theta(x|z)` at ``z ~ q(z|x)``, ``[...]``.
    critic_logits: :math:`T_\phi(x, z)` on the same pairs, ``[...]``.
    reduction: ``'mean'``, ``'sum'`` or ``'none'`` (``[...]``).

  Example:
    >>> import jax.numpy as jnp
    >>> from unigen_jax import losses
    >>> print(f"{float(losses.avb_negative_elbo(jnp.array([-90.0]), jnp.array([3.0]))):.1f}")
    93.0
  """
  _utils.check_reduction(reduction)
  _utils.check_same_shape("log_likelihood", log_likelihood, "critic_logits", critic_logits)
  return _utils.reduce(critic_logits - log_likelihood, reduction)


def avb_discriminator_loss(posterior_pair_logits: Array, prior_pair_logits: Array, *,
                           reduction: str = "mean"):
  r"""AVB critic objective: tell :math:`(x, z \sim q_\eta(z|x))` (``y=1``) from :math:`(x, z \sim p(z))` (``y=0``).

  .. math::
    \mathcal{L}_\phi = -\mathbb{E}_{p_{data} q_\eta}[\log\sigma(T(x,z))]
                       - \mathbb{E}_{p_{data} p(z)}[\log(1-\sigma(T(x,z)))]

  Its optimum is :math:`T^*(x,z) = \log q_\eta(z|x) - \log p(z)`. Shapes ``[...]`` each;
  reductions as in :func:`unigen_jax.losses.discriminator_loss`.

  Example:
    >>> import jax.numpy as jnp
    >>> from unigen_jax import losses
    >>> print(f"{float(losses.avb_discriminator_loss(jnp.zeros(2), jnp.zeros(2))):.4f}")
    1.3863
  """
  _utils.check_reduction(reduction)
  return _utils.reduce_two_sided(jax.nn.softplus(-posterior_pair_logits),
                                 jax.nn.softplus(prior_pair_logits), reduction)
