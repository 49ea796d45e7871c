"""Distribution helpers against numpy references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from unigen_jax import distributions


def test_bernoulli_log_prob_matches_numpy_and_is_stable():
  rng = np.random.default_rng(0)
  x = rng.uniform(size=(3, 4, 4, 1)).astype(np.float32)
  logits = rng.normal(size=(3, 4, 4, 1)).astype(np.float32)
  p = 1 / (1 + np.exp(-logits))
  expected = np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=(1, 2, 3))
  np.testing.assert_allclose(distributions.bernoulli_log_prob(x, logits), expected, rtol=1e-5)
  np.testing.assert_allclose(distributions.bernoulli_log_prob(x, logits, event_ndims=0),
                             x * np.log(p) + (1 - x) * np.log(1 - p), rtol=1e-5)
  out = distributions.bernoulli_log_prob(jnp.array([[1.0, 0.0]]), jnp.array([[-100.0, 100.0]]))
  np.testing.assert_allclose(out, [-200.0], rtol=1e-6)
  with pytest.raises(ValueError, match="must match"):
    distributions.bernoulli_log_prob(jnp.zeros((2, 784)), jnp.zeros((2, 28, 28, 1)))
  with pytest.raises(ValueError, match="event_ndims"):
    distributions.bernoulli_log_prob(jnp.zeros((2, 3)), jnp.zeros((2, 3)), event_ndims=3)


def test_categorical_log_prob_and_entropy():
  logits = jnp.array([[0.0, 1.0, 2.0], [100.0, -100.0, 0.0]])
  p = np.exp(np.asarray(logits, np.float64))
  p /= p.sum(1, keepdims=True)
  np.testing.assert_allclose(distributions.categorical_log_prob(jnp.array([2, 1]), logits),
                             [np.log(p[0, 2]), -200.0], rtol=1e-5)
  ent = -np.sum(np.where(p > 0, p * np.log(np.maximum(p, 1e-300)), 0), axis=1)
  np.testing.assert_allclose(distributions.categorical_entropy(logits), ent, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(distributions.categorical_entropy(jnp.zeros((1, 4))), [np.log(4)],
                             rtol=1e-6)
  with pytest.raises(ValueError, match="labels.shape"):
    distributions.categorical_log_prob(jnp.array([0, 1, 2]), logits)


def test_gaussian_log_prob_matches_numpy():
  rng = np.random.default_rng(1)
  x, m, lv = (rng.normal(size=(4, 3)).astype(np.float32) for _ in range(3))
  var = np.exp(lv)
  expected = -0.5 * np.sum(np.log(2 * np.pi * var) + (x - m) ** 2 / var, axis=1)
  np.testing.assert_allclose(distributions.gaussian_log_prob(x, m, lv), expected, rtol=1e-5)
  np.testing.assert_allclose(distributions.standard_normal_log_prob(x),
                             -0.5 * np.sum(np.log(2 * np.pi) + x ** 2, axis=1), rtol=1e-5)


def test_reparameterised_sampling_moments_and_gradient():
  mean = jnp.array([[1.0, -2.0]])
  log_var = jnp.array([[0.5, -1.0]])
  z = distributions.sample_diag_gaussian(jax.random.PRNGKey(0), mean, log_var, num_samples=100000)
  assert z.shape == (100000, 1, 2)
  np.testing.assert_allclose(jnp.mean(z, axis=0), mean, atol=0.02)
  np.testing.assert_allclose(jnp.var(z, axis=0), jnp.exp(log_var), rtol=0.02)
  g = jax.grad(lambda m: jnp.sum(distributions.sample_diag_gaussian(
      jax.random.PRNGKey(1), m, log_var)))(mean)
  np.testing.assert_allclose(g, jnp.ones_like(mean))  # dz/dmean = 1: reparameterised


def test_kl_standard_normal_is_zero_at_prior_and_positive_elsewhere():
  np.testing.assert_allclose(
      distributions.kl_diag_gaussian_standard_normal(jnp.zeros((2, 5)), jnp.zeros((2, 5))), 0.0)
  kl = distributions.kl_diag_gaussian_standard_normal(jnp.ones((2, 5)), -jnp.ones((2, 5)))
  assert np.all(np.asarray(kl) > 0)
  # Tiny log-variances keep full precision (expm1 form).
  with jax.enable_x64(True):
    kl_small = distributions.kl_diag_gaussian_standard_normal(jnp.zeros((1, 1)),
                                                              jnp.full((1, 1), 1e-6))
    np.testing.assert_allclose(kl_small, [0.5 * (np.expm1(1e-6) - 1e-6)], rtol=1e-6)


def test_fast_softplus_equals_log1p_exp_in_float64_and_jax_softplus_to_rounding():
  x = np.concatenate([np.linspace(-120, 120, 20001), [-1e4, -30.5, -1e-7, 0.0, 1e-7, 30.5, 1e4]])
  x = x.astype(np.float32)
  exact = np.logaddexp(0.0, x.astype(np.float64))  # float64 reference at the same inputs
  fast = np.asarray(jax.jit(distributions.softplus)(jnp.asarray(x)), np.float64)
  np.testing.assert_allclose(fast, exact, rtol=1e-6, atol=1e-37)
  np.testing.assert_allclose(fast, np.asarray(jax.nn.softplus(jnp.asarray(x))),
                             rtol=1e-6, atol=1e-37)
  # The Bernoulli log-probability with either softplus: equal to float rounding.
  rng = np.random.default_rng(0)
  logits = jnp.asarray(rng.normal(size=(64, 784)) * 8, jnp.float32)
  x01 = jnp.asarray(rng.uniform(size=(64, 784)) > 0.5, jnp.float32)
  slow = distributions.bernoulli_log_prob(x01, logits)
  quick = distributions.bernoulli_log_prob(x01, logits, fast=True)
  reference = np.sum(np.asarray(x01, np.float64) * np.asarray(logits, np.float64)
                     - np.logaddexp(0.0, np.asarray(logits, np.float64)), axis=1)
  np.testing.assert_allclose(np.asarray(quick), reference, rtol=1e-5)
  np.testing.assert_allclose(np.asarray(quick), np.asarray(slow), rtol=1e-6)
