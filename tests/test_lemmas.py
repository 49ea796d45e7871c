"""The paper's identities, checked numerically through the library's losses.

Lemma 1 / Eq. 6 and Eq. 8 on a discrete x-space in float64, Lemma 2 through the
adversary-activated ELBO. Each test also checks that a wrong variant (reversed
KL direction, saturating loss) gives a *different* gradient, so the equality
is not vacuous.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from unigen_jax import losses

NUM_STATES = 6


def _kl(p, q):
  return jnp.sum(p * (jnp.log(p) - jnp.log(q)))


def _jsd(p, q):
  m = 0.5 * (p + q)
  return 0.5 * _kl(p, m) + 0.5 * _kl(q, m)


@pytest.fixture
def discrete_problem():
  rng = np.random.default_rng(0)
  theta0 = rng.normal(size=NUM_STATES)
  p_data = rng.dirichlet(np.ones(NUM_STATES))
  disc_logits = 2.0 * rng.normal(size=NUM_STATES)  # an arbitrary discriminator
  return theta0, p_data, disc_logits


def _expected_generator_objective(loss_fn, theta, p_data, disc_logits):
  """-E_{p_theta(x|y)p(y)} log q^r(y|x) for uniform p(y), exact sum over states.

  The y=0 half uses the library's per-example generator loss at every state;
  the y=1 half (data, -log q^r(y=1|x) = softplus(l)) does not depend on theta.
  """
  p_gen = jax.nn.softmax(theta)
  gen_terms = loss_fn(jnp.asarray(disc_logits), reduction="none")
  data_terms = jax.nn.softplus(jnp.asarray(disc_logits))
  return 0.5 * jnp.sum(p_gen * gen_terms) + 0.5 * jnp.sum(p_data * data_terms)


def _lemma1_rhs(theta, theta0, p_data, disc_logits, reverse_kl=False):
  """E_p(y) KL(p_theta(x|y) || q^r(x|y)) - JSD(p_theta(x|y=0) || p_theta(x|y=1))."""
  d = jax.nn.sigmoid(disc_logits)
  p_theta0 = 0.5 * (jax.nn.softmax(theta0) + p_data)  # p_theta0(x), fixed
  qr_given_0 = d * p_theta0 / jnp.sum(d * p_theta0)  # q^r(x|y=0) ∝ q^r(y=0|x) p_theta0(x)
  qr_given_1 = (1 - d) * p_theta0 / jnp.sum((1 - d) * p_theta0)
  p_gen = jax.nn.softmax(theta)
  if reverse_kl:
    kl_term = 0.5 * _kl(qr_given_0, p_gen) + 0.5 * _kl(qr_given_1, p_data)
  else:
    kl_term = 0.5 * _kl(p_gen, qr_given_0) + 0.5 * _kl(p_data, qr_given_1)
  return kl_term - _jsd(p_gen, p_data)


def test_lemma1_generator_gradient_is_kl_minus_jsd(discrete_problem):
  theta0, p_data, disc_logits = discrete_problem
  with jax.enable_x64(True):
    theta0 = jnp.asarray(theta0, jnp.float64)
    lhs = jax.grad(_expected_generator_objective, argnums=1)(
        losses.generator_loss_nonsaturating, theta0, p_data, disc_logits)
    rhs = jax.grad(_lemma1_rhs)(theta0, theta0, p_data, jnp.asarray(disc_logits))
    np.testing.assert_allclose(lhs, rhs, rtol=0, atol=1e-10)
    assert np.abs(lhs).max() > 1e-3  # the gradient is not trivially zero
    # The identity is specific: the reversed KL or the saturating loss break it.
    rhs_reversed = jax.grad(_lemma1_rhs)(theta0, theta0, p_data, jnp.asarray(disc_logits),
                                         reverse_kl=True)
    assert np.abs(lhs - rhs_reversed).max() > 1e-3
    lhs_minimax = jax.grad(_expected_generator_objective, argnums=1)(
        losses.generator_loss_minimax, theta0, p_data, disc_logits)
    assert np.abs(lhs_minimax - rhs).max() > 1e-3


def test_eq8_optimal_discriminator_gives_half_kl_minus_jsd(discrete_problem):
  theta0, p_data, _ = discrete_problem
  with jax.enable_x64(True):
    theta0 = jnp.asarray(theta0, jnp.float64)
    p_gen0 = jax.nn.softmax(theta0)
    # D*(x) = p_data / (p_data + p_g): its logit is log p_data - log p_g.
    optimal_logits = jnp.log(p_data) - jnp.log(p_gen0)
    # The library's discriminator loss is minimised there (zero gradient).
    disc_grad = jax.grad(
        lambda l: jnp.sum(p_data * losses.discriminator_loss(l, l, reduction="none")[0])
        + jnp.sum(p_gen0 * losses.discriminator_loss(l, l, reduction="none")[1]))(optimal_logits)
    np.testing.assert_allclose(disc_grad, 0.0, atol=1e-12)

    lhs = jax.grad(_expected_generator_objective, argnums=1)(
        losses.generator_loss_nonsaturating, theta0, p_data, optimal_logits)
    rhs = jax.grad(lambda t: 0.5 * _kl(jax.nn.softmax(t), p_data)
                   - _jsd(jax.nn.softmax(t), p_data))(theta0)
    np.testing.assert_allclose(lhs, rhs, rtol=0, atol=1e-10)
    wrong = jax.grad(lambda t: 0.5 * _kl(p_data, jax.nn.softmax(t))
                     - _jsd(jax.nn.softmax(t), p_data))(theta0)
    assert np.abs(lhs - wrong).max() > 1e-3


def _linear_vae_neg_elbo(params, x, eps):
  """Per-example negative ELBO of a tiny linear Gaussian-encoder/Bernoulli-decoder VAE."""
  mean = x @ params["enc_w"]
  log_var = x @ params["enc_v"]
  z = mean + jnp.exp(0.5 * log_var) * eps
  logits = z @ params["dec_w"] + params["dec_b"]
  return losses.bernoulli_negative_elbo(x, logits, mean, log_var, reduction="none")


@pytest.fixture
def vae_problem():
  rng = np.random.default_rng(1)
  params = {
      "enc_w": jnp.asarray(rng.normal(size=(8, 3)) * 0.3, jnp.float32),
      "enc_v": jnp.asarray(rng.normal(size=(8, 3)) * 0.1, jnp.float32),
      "dec_w": jnp.asarray(rng.normal(size=(3, 8)), jnp.float32),
      "dec_b": jnp.zeros((8,), jnp.float32),
  }
  x_real = jnp.asarray(rng.uniform(size=(5, 8)) > 0.5, jnp.float32)
  x_fake = jnp.asarray(rng.uniform(size=(5, 8)), jnp.float32)
  eps = jnp.asarray(rng.normal(size=(5, 3)), jnp.float32)
  return params, x_real, x_fake, eps


def test_lemma2_perfect_discriminator_recovers_vae(vae_problem):
  params, x_real, x_fake, eps = vae_problem
  perfect_real = jnp.full((5,), jnp.inf)
  perfect_fake = jnp.full((5,), -jnp.inf)

  def aa_loss(p, real_logits, fake_logits):
    return losses.adversary_activated_negative_elbo(
        _linear_vae_neg_elbo(p, x_real, eps), _linear_vae_neg_elbo(p, x_fake, eps),
        real_logits, fake_logits)

  def vae_loss(p):
    return jnp.mean(_linear_vae_neg_elbo(p, x_real, eps))

  value, grads = jax.value_and_grad(aa_loss)(params, perfect_real, perfect_fake)
  vae_value, vae_grads = jax.value_and_grad(vae_loss)(params)
  assert value == vae_value  # exactly, not approximately
  jax.tree.map(lambda a, b: np.testing.assert_array_equal(a, b), grads, vae_grads)

  # Generated samples alone contribute zero gradient.
  fake_only = jax.grad(lambda p: losses.adversary_activated_negative_elbo(
      jnp.zeros((5,)), _linear_vae_neg_elbo(p, x_fake, eps), perfect_real, perfect_fake))(params)
  jax.tree.map(lambda g: np.testing.assert_array_equal(g, 0.0), fake_only)

  # A trained (imperfect) discriminator changes both value and gradient.
  rng = np.random.default_rng(2)
  soft_real = jnp.asarray(rng.normal(size=5), jnp.float32)
  soft_fake = jnp.asarray(rng.normal(size=5), jnp.float32)
  soft_grads = jax.grad(aa_loss)(params, soft_real, soft_fake)
  assert not np.allclose(soft_grads["dec_w"], vae_grads["dec_w"], atol=1e-4)
  # ...and no gradient ever reaches the discriminator logits from the VAE loss.
  logit_grads = jax.grad(aa_loss, argnums=(1, 2))(params, soft_real, soft_fake)
  for g in logit_grads:
    np.testing.assert_array_equal(g, 0.0)


def test_aa_weights_are_reversed_discriminator_on_generator_branch(vae_problem):
  params, x_real, x_fake, eps = vae_problem
  real_logits = jnp.array([0.3, -1.0, 2.0, 0.0, 5.0])
  fake_logits = jnp.array([-0.3, 1.0, -2.0, 0.0, -5.0])
  real_nelbo = _linear_vae_neg_elbo(params, x_real, eps)
  fake_nelbo = _linear_vae_neg_elbo(params, x_fake, eps)
  real_terms, fake_terms = losses.adversary_activated_negative_elbo(
      real_nelbo, fake_nelbo, real_logits, fake_logits, fake_weight=0.5, reduction="none")
  d_real = 1 / (1 + np.exp(-np.asarray(real_logits)))
  d_fake = 1 / (1 + np.exp(-np.asarray(fake_logits)))
  np.testing.assert_allclose(real_terms, d_real * np.asarray(real_nelbo), rtol=1e-6)
  np.testing.assert_allclose(fake_terms, 0.5 * d_fake * np.asarray(fake_nelbo), rtol=1e-6)
