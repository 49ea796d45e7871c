r"""The paper's evaluation metrics as pure functions (no I/O, no models, no state).

* Sample quality: :func:`inception_score` (Salimans et al. 2016, 10 splits),
  :func:`conditional_accuracy` (Hu et al. 2017), :func:`frechet_distance` of classifier
  features.
* Likelihood bounds of a model with a diagonal-Gaussian encoder ``encode(x) -> (mean,
  log_var)`` and a log-likelihood ``log_likelihood(x, z [K, B, D]) -> [K, B]``:
  :func:`elbo_estimate` (Eq. 11, analytic KL), :func:`importance_sampled_log_likelihood`
  (the IWAE estimate with ``K`` up to 5000, streamed over chunks), and :func:`m2_bound`, the
  semi-supervised (M2) bound of unlabelled data.

``unigen_jax.evaluate`` applies them to trained models; the numpy functions take arrays
already on the host.
"""

from __future__ import annotations

import math
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

from unigen_jax import distributions
from unigen_jax import losses

# Names of the metrics unigen_jax.evaluate computes (config.eval.metrics, validation.metrics).
METRICS = ("elbo", "iwae", "svae_accuracy", "inception_score", "conditional_accuracy", "fid")
HIGHER_IS_BETTER = {"elbo": True, "iwae": True, "svae_accuracy": True, "inception_score": True,
                    "conditional_accuracy": True, "fid": False}

Encode = Callable[[jax.Array], tuple[jax.Array, jax.Array]]
LogLikelihood = Callable[[jax.Array, jax.Array], jax.Array]  # (x [B,...], z [K,B,D]) -> [K,B]


class MetricError(ValueError):
  """A metric cannot be computed from the given arrays; the message says why."""


def unsupported(metric: str, variant) -> str | None:
  """Why ``variant`` (a ``unigen_jax.variants.Variant``) has no ``metric``, or None."""
  if metric in ("elbo", "iwae") and variant.likelihood_bound is None:
    return f"variant {variant.name!r} has no likelihood bound (no Gaussian encoder)."
  if metric == "iwae" and variant.likelihood_bound != "gaussian":
    return f"the importance-sampled estimate needs a Gaussian encoder; {variant.name!r} has none."
  if metric == "svae_accuracy" and variant.label_classifier is None:
    return f"variant {variant.name!r} has no label classifier."
  if metric in ("inception_score", "conditional_accuracy", "fid") and variant.sampler is None:
    return f"variant {variant.name!r} does not generate images."
  if metric == "conditional_accuracy" and not (variant.conditional
                                               and variant.sample_classes is None):
    return (f"conditional accuracy needs samples conditioned on the dataset's labels; "
            f"{variant.name!r} has none.")
  return None


def validation_metrics(spec: str, variant) -> list:
  """The metrics of ``spec`` (comma-separated), or the variant's defaults when it is empty."""
  names = [m for m in spec.split(",") if m]
  if names:
    return names
  if variant.likelihood_bound is not None:
    return ["elbo"] + (["svae_accuracy"] if variant.label_classifier else [])
  if variant.sampler is not None:
    return ["inception_score"] + (
        ["conditional_accuracy"] if unsupported("conditional_accuracy", variant) is None else [])
  return []


# --- sample quality ------------------------------------------------------------------

def inception_score(logits: np.ndarray, num_splits: int = 10) -> tuple[float, float]:
  r"""Inception score :math:`\exp \mathbb{E}_x \mathrm{KL}(p(y|x)\|p(y))`: mean and std over splits.

  Args:
    logits: classifier logits of the samples, ``[N, C]``.
    num_splits: the samples are split into this many equal parts (10 as usual); the std is
      over the splits (``ddof=0``, the convention of Salimans et al.'s code).
  """
  logits = np.asarray(logits, np.float64)
  if logits.ndim != 2 or len(logits) < num_splits:
    raise MetricError(f"inception score needs logits [N >= {num_splits}, C], got {logits.shape}.")
  log_p = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)
  scores = []
  for part in np.array_split(log_p, num_splits):
    log_marginal = np.logaddexp.reduce(part, axis=0) - math.log(len(part))
    kl = np.sum(np.exp(part) * (part - log_marginal), axis=1)
    scores.append(math.exp(float(np.mean(kl))))
  return float(np.mean(scores)), float(np.std(scores))


def sample_class_diagnostics(logits: np.ndarray) -> dict:
  r"""Why an inception score falls short of its ceiling: class balance vs confidence.

  Over all ``N`` samples (one split), with :math:`\bar p = \frac1N \sum_x p(y|x)`,

  .. math::
     \log \mathrm{IS}_1 = H(\bar p) - \frac1N \sum_x H(p(y|x)),

  so a score below the real data's comes from a less even class marginal (the first term;
  :math:`\log C` at most) or from less confident class predictions (the second).

  Args:
    logits: classifier logits of the samples, ``[N, C]``.

  Returns:
    ``class_frequencies`` (share of samples per predicted class, ``[C]``),
    ``marginal_entropy`` :math:`H(\bar p)` and ``mean_conditional_entropy`` (nats),
    ``mean_confidence`` (mean of :math:`\max_y p(y|x)`) and ``one_split_inception_score``
    (:math:`\exp` of their difference: :func:`inception_score` with ``num_splits=1``).
  """
  logits = np.asarray(logits, np.float64)
  if logits.ndim != 2 or len(logits) < 1:
    raise MetricError(f"class diagnostics need logits [N >= 1, C], got {logits.shape}.")
  log_p = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)
  p = np.exp(log_p)
  marginal = p.mean(0)
  marginal_entropy = float(-np.sum(marginal * np.log(np.clip(marginal, 1e-300, None))))
  conditional_entropy = float(np.mean(-np.sum(p * log_p, axis=1)))
  counts = np.bincount(np.argmax(logits, axis=1), minlength=logits.shape[1])
  return {"class_frequencies": [round(float(c), 6) for c in counts / len(logits)],
          "marginal_entropy": marginal_entropy,
          "mean_conditional_entropy": conditional_entropy,
          "mean_confidence": float(np.mean(p.max(1))),
          "one_split_inception_score": math.exp(marginal_entropy - conditional_entropy)}


def conditional_accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
  """Fraction of conditional samples the evaluation classifier assigns to their conditioning label."""
  return float(np.mean(np.argmax(np.asarray(logits), axis=1) == np.asarray(labels)))


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
  r""":math:`\|\mu_a-\mu_b\|^2 + \mathrm{tr}(\Sigma_a + \Sigma_b - 2(\Sigma_a^{1/2}\Sigma_b\Sigma_a^{1/2})^{1/2})`."""
  a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
  mu_a, mu_b = a.mean(0), b.mean(0)
  cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
  w, v = np.linalg.eigh(cov_a)
  sqrt_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
  middle = np.linalg.eigvalsh(sqrt_a @ cov_b @ sqrt_a)
  trace_sqrt = np.sum(np.sqrt(np.clip(middle, 0, None)))
  return float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_sqrt)


# --- likelihood bounds -------------------------------------------------------------

def bernoulli_log_likelihood(decode: Callable[[jax.Array], jax.Array]) -> LogLikelihood:
  """``log_likelihood(x, z [K, B, D]) -> [K, B]`` of a Bernoulli decoder returning logits."""

  def log_likelihood(x, z):
    k, b = z.shape[:2]
    # Flat events ([K, B, 784], not [K, B, 28, 28, 1]) and the explicit softplus: XLA:CPU
    # vectorises the flat reduction ~1.7x better, and the softplus over K x 784 logits per
    # image is what the estimate spends beside the decoder's matmuls (benchmarks/RESULTS_eval.md).
    logits = decode(z.reshape((k * b,) + z.shape[2:])).reshape(k, b, -1)
    flat_x = x.reshape(x.shape[0], -1)
    return distributions.bernoulli_log_prob(jnp.broadcast_to(flat_x, logits.shape), logits,
                                            event_ndims=1, fast=True)
  return log_likelihood


def elbo_estimate(x: jax.Array, key: jax.Array, encode: Encode, log_likelihood: LogLikelihood,
                  num_samples: int = 1) -> jax.Array:
  """Per-example ELBO ``[B]``: ``num_samples`` reparameterised samples, analytic KL (Eq. 11)."""
  mean, log_var = encode(x)
  z = distributions.sample_diag_gaussian(key, mean, log_var, num_samples=num_samples)
  ll = jnp.mean(log_likelihood(x, z), axis=0)
  return -losses.negative_elbo(ll, mean, log_var, reduction="none")


def importance_sampled_log_likelihood(x: jax.Array, key: jax.Array, encode: Encode,
                                      log_likelihood: LogLikelihood, num_samples: int,
                                      chunk_size: Optional[int] = None,
                                      rows_per_chunk: int = 10000) -> jax.Array:
  r"""Per-example :math:`\log \frac1K\sum_k w_k` (IWAE estimate) with ``K = num_samples``.

  Samples are drawn in chunks and combined with a running log-sum-exp (``lax.scan``), so
  ``K = 5000`` needs the memory of one chunk. ``chunk_size`` (samples per chunk; a divisor of
  ``K`` is used) defaults to about ``rows_per_chunk / B`` for a batch of ``B`` images: the
  decoder then sees ~10,000 rows per call whatever the batch, which keeps its logits near the
  caches (B = 500 with 100 samples per chunk ran 1.4x slower here than B = 100).
  """
  if chunk_size is None:
    chunk_size = max(1, min(num_samples, rows_per_chunk // max(1, x.shape[0])))
  if num_samples % chunk_size:
    chunk_size = max(d for d in range(1, chunk_size + 1) if num_samples % d == 0)
  mean, log_var = encode(x)
  num_chunks = num_samples // chunk_size

  def body(carry, chunk_key):
    running_max, running_sum = carry
    z = distributions.sample_diag_gaussian(chunk_key, mean, log_var, num_samples=chunk_size)
    log_w = losses.iwae_log_weights(log_likelihood(x, z), z, mean, log_var)  # [chunk, B]
    new_max = jnp.maximum(running_max, jnp.max(log_w, axis=0))
    running_sum = (running_sum * jnp.exp(running_max - new_max)
                   + jnp.sum(jnp.exp(log_w - new_max), axis=0))
    return (new_max, running_sum), None

  init = (jnp.full(mean.shape[:1], -jnp.inf), jnp.zeros(mean.shape[:1]))
  (final_max, total), _ = jax.lax.scan(body, init, jax.random.split(key, num_chunks))
  return final_max + jnp.log(total) - math.log(num_samples)


def m2_bound(x: jax.Array, key: jax.Array, conditional_fns: Callable, classifier_logits: jax.Array,
             num_classes: int, num_samples: int = 1) -> jax.Array:
  r"""M2 bound of unlabelled data (Kingma et al. 2014), per example ``[B]``.

  .. math::
    \mathcal{U}(x) = \sum_y q(y|x)\,\big(\mathcal{L}(x, y) + \log p(y)\big) + \mathcal{H}(q(y|x))

  with a uniform :math:`p(y)`. ``conditional_fns(labels [N]) -> (encode, log_likelihood)``
  conditions both networks on the labels; ``classifier_logits`` are :math:`q(y|x)`'s, ``[B, C]``.
  """
  b = x.shape[0]
  x_rep = jnp.repeat(x, num_classes, axis=0)
  y_rep = jnp.tile(jnp.arange(num_classes), b)
  elbo = elbo_estimate(x_rep, key, *conditional_fns(y_rep), num_samples)
  return -losses.semi_supervised_unlabelled_loss(-elbo.reshape(b, num_classes),
                                                 classifier_logits, reduction="none")
