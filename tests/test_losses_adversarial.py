"""Adversarial (sleep-phase) losses against numpy references, under jit, with gradients."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from unigen_jax import losses


def np_softplus(x):
  return np.logaddexp(0.0, x)


def np_sigmoid(x):
  return 1 / (1 + np.exp(-x))


@pytest.fixture
def logits():
  rng = np.random.default_rng(0)
  return (rng.normal(size=7).astype(np.float32) * 3, rng.normal(size=5).astype(np.float32) * 3)


def test_discriminator_loss_matches_numpy(logits):
  real, fake = logits
  expected = np.mean(-np.log(np_sigmoid(real))) + np.mean(-np.log(1 - np_sigmoid(fake)))
  np.testing.assert_allclose(losses.discriminator_loss(real, fake), expected, rtol=1e-5)
  r, f = losses.discriminator_loss(real, fake, reduction="none")
  assert r.shape == (7,) and f.shape == (5,)
  np.testing.assert_allclose(losses.discriminator_loss(real, fake, reduction="sum"),
                             np.sum(r) + np.sum(f), rtol=1e-5)


def test_discriminator_loss_weights_and_label_smoothing(logits):
  real, fake = logits
  wr = np.linspace(0, 1, 7).astype(np.float32)
  wf = np.linspace(1, 2, 5).astype(np.float32)
  expected = np.mean(wr * np_softplus(-real)) + np.mean(wf * np_softplus(fake))
  np.testing.assert_allclose(
      losses.discriminator_loss(real, fake, real_weights=wr, fake_weights=wf), expected, rtol=1e-5)
  s = 0.1
  d = np_sigmoid(real)
  expected = np.mean(-(1 - s) * np.log(d) - s * np.log(1 - d)) + np.mean(np_softplus(fake))
  np.testing.assert_allclose(losses.discriminator_loss(real, fake, label_smoothing=s), expected,
                             rtol=1e-5)


def test_generator_losses_match_numpy(logits):
  _, fake = logits
  np.testing.assert_allclose(losses.generator_loss_nonsaturating(fake),
                             np.mean(-np.log(np_sigmoid(fake))), rtol=1e-5)
  np.testing.assert_allclose(losses.generator_loss_minimax(fake),
                             np.mean(np.log(1 - np_sigmoid(fake))), rtol=1e-5)
  # Saturation: at a confident discriminator the minimax gradient vanishes, the other does not.
  confident = jnp.full((4,), -20.0)
  g_mm = jax.grad(losses.generator_loss_minimax)(confident)
  g_ns = jax.grad(losses.generator_loss_nonsaturating)(confident)
  assert np.abs(g_mm).max() < 1e-8 and np.abs(g_ns).min() > 0.2


def test_importance_weights_properties():
  fake = jnp.array([-3.0, -1.0, 0.0, 0.5, 2.0])
  w, ess = losses.importance_weights(fake)
  np.testing.assert_allclose(jnp.sum(w), 1.0, rtol=1e-6)
  assert np.all(np.diff(np.asarray(w)) > 0)  # increasing with the logit
  # w_i ∝ D/(1-D) = exp(l): the ratio of reversed to original discriminator.
  d = np_sigmoid(np.asarray(fake))
  ratio = d / (1 - d)
  np.testing.assert_allclose(w, ratio / ratio.sum(), rtol=1e-5)
  np.testing.assert_allclose(ess, 1 / np.sum(np.square(ratio / ratio.sum())), rtol=1e-5)
  _, ess_equal = losses.importance_weights(jnp.zeros(8))
  np.testing.assert_allclose(ess_equal, 8.0, rtol=1e-6)
  w_extreme, ess_extreme = losses.importance_weights(jnp.array([100.0, -100.0, 0.0]))
  assert np.all(np.isfinite(w_extreme)) and abs(float(ess_extreme) - 1.0) < 1e-6


def test_iwgan_equals_nonsaturating_for_equal_logits_and_k1():
  for fake in (jnp.full((6,), 0.7), jnp.array([1.3])):
    np.testing.assert_allclose(losses.generator_loss_importance_weighted(fake),
                               losses.generator_loss_nonsaturating(fake), rtol=1e-6)
    np.testing.assert_allclose(jax.grad(losses.generator_loss_importance_weighted)(fake),
                               jax.grad(losses.generator_loss_nonsaturating)(fake), rtol=1e-6)
  # Through a generator: equal logits for different samples, same parameter gradient.
  theta = jnp.array([0.5, -0.2])
  feats = jnp.array([[1.0, 2.0], [2.0, 1.0], [0.0, 1.5]])

  def logits_fn(t):  # all three samples get logit 1.0 + 0 * ..., but depend on t
    raw = feats @ t
    return raw - jax.lax.stop_gradient(raw) + 1.0

  g_iw = jax.grad(lambda t: losses.generator_loss_importance_weighted(logits_fn(t)))(theta)
  g_ns = jax.grad(lambda t: losses.generator_loss_nonsaturating(logits_fn(t)))(theta)
  np.testing.assert_allclose(g_iw, g_ns, rtol=1e-6)


def test_iwgan_gradient_holds_weights_constant():
  fake = jnp.array([-2.0, -0.5, 0.3, 1.7])
  w = np.asarray(jax.nn.softmax(fake))
  # d/dl_i sum_j w_j softplus(-l_j) with w fixed = -w_i sigmoid(-l_i)
  expected = -w * np_sigmoid(-np.asarray(fake))
  grad = jax.grad(losses.generator_loss_importance_weighted)(fake)
  np.testing.assert_allclose(grad, expected, rtol=1e-5)
  # Letting gradient through the weights would give a different answer.
  leaky = jax.grad(lambda l: jnp.sum(jax.nn.softmax(l) * jax.nn.softplus(-l)))(fake)
  assert np.abs(np.asarray(leaky) - expected).max() > 1e-2
  # Value is the normalised-weight average of the per-sample generator terms.
  np.testing.assert_allclose(losses.generator_loss_importance_weighted(fake),
                             np.sum(w * np_softplus(-np.asarray(fake))), rtol=1e-6)


def test_iwgan_axis_name_normalises_across_shards():
  fake = jnp.array([-2.0, -0.5, 0.3, 1.7, 0.2, -1.1, 3.0, 0.0])
  full_w, full_ess = losses.importance_weights(fake)
  shards = fake.reshape(4, 2)
  w, ess = jax.vmap(functools.partial(losses.importance_weights, axis_name="d"),
                    axis_name="d")(shards)
  np.testing.assert_allclose(w.reshape(-1), full_w, rtol=1e-6)
  np.testing.assert_allclose(ess, full_ess * np.ones(4), rtol=1e-6)
  # pmean of per-shard 'mean' losses == global loss; same for gradients.
  per_shard = jax.vmap(functools.partial(losses.generator_loss_importance_weighted,
                                         axis_name="d"), axis_name="d")(shards)
  np.testing.assert_allclose(jnp.mean(per_shard), losses.generator_loss_importance_weighted(fake),
                             rtol=1e-6)


def test_conditional_losses_select_label_logits():
  rng = np.random.default_rng(3)
  real = rng.normal(size=(4, 3)).astype(np.float32)
  fake = rng.normal(size=(5, 3)).astype(np.float32)
  yr = np.array([0, 2, 1, 2])
  yf = np.array([1, 1, 0, 2, 0])
  sel_r = real[np.arange(4), yr]
  sel_f = fake[np.arange(5), yf]
  np.testing.assert_allclose(losses.conditional_discriminator_loss(real, yr, fake, yf),
                             losses.discriminator_loss(sel_r, sel_f), rtol=1e-6)
  np.testing.assert_allclose(losses.conditional_generator_loss_nonsaturating(fake, yf),
                             losses.generator_loss_nonsaturating(sel_f), rtol=1e-6)
  np.testing.assert_allclose(losses.conditional_generator_loss_importance_weighted(fake, yf),
                             losses.generator_loss_importance_weighted(sel_f), rtol=1e-6)
  grad = jax.grad(losses.conditional_generator_loss_nonsaturating)(jnp.asarray(fake), yf)
  mask = np.zeros((5, 3), bool)
  mask[np.arange(5), yf] = True
  assert np.all(np.asarray(grad)[~mask] == 0) and np.all(np.asarray(grad)[mask] != 0)


def test_infogan_code_losses():
  rng = np.random.default_rng(4)
  code_logits = rng.normal(size=(6, 4)).astype(np.float32)
  codes = np.array([0, 3, 2, 1, 1, 0])
  logp = code_logits - np.log(np.sum(np.exp(code_logits), axis=1, keepdims=True))
  np.testing.assert_allclose(losses.infogan_categorical_code_loss(code_logits, codes),
                             -np.mean(logp[np.arange(6), codes]), rtol=1e-5)
  mean = rng.normal(size=(6, 2)).astype(np.float32)
  log_var = rng.normal(size=(6, 2)).astype(np.float32) * 0.3
  c = rng.normal(size=(6, 2)).astype(np.float32)
  var = np.exp(log_var)
  nll = 0.5 * np.sum(np.log(2 * np.pi * var) + (c - mean) ** 2 / var, axis=1)
  np.testing.assert_allclose(losses.infogan_gaussian_code_loss(mean, log_var, c, reduction="none"),
                             nll, rtol=1e-5)


def test_ada_feature_extractor_flips_both_domains(logits):
  src, tgt = logits
  np.testing.assert_allclose(losses.ada_discriminator_loss(src, tgt),
                             np.mean(np_softplus(-src)) + np.mean(np_softplus(tgt)), rtol=1e-5)
  np.testing.assert_allclose(losses.ada_feature_extractor_loss(src, tgt),
                             np.mean(-np.log(1 - np_sigmoid(src))) + np.mean(-np.log(np_sigmoid(tgt))),
                             rtol=1e-5)
  # Feature-extractor and discriminator pull the logits in opposite directions.
  gd = jax.grad(losses.ada_discriminator_loss, argnums=(0, 1))(src, tgt)
  gf = jax.grad(losses.ada_feature_extractor_loss, argnums=(0, 1))(src, tgt)
  for a, b in zip(gd, gf):
    assert np.all(np.sign(a) == -np.sign(b))


def test_aae_and_ali_losses(logits):
  prior, post = logits
  np.testing.assert_allclose(losses.aae_discriminator_loss(prior, post),
                             np.mean(np_softplus(-prior)) + np.mean(np_softplus(post)), rtol=1e-5)
  np.testing.assert_allclose(losses.aae_encoder_loss(post), np.mean(np_softplus(-post)), rtol=1e-5)
  enc, gen = logits
  np.testing.assert_allclose(losses.ali_discriminator_loss(enc, gen),
                             np.mean(np_softplus(-enc)) + np.mean(np_softplus(gen)), rtol=1e-5)
  np.testing.assert_allclose(losses.ali_generator_loss(enc, gen),
                             np.mean(np_softplus(enc)) + np.mean(np_softplus(-gen)), rtol=1e-5)


TWO_SIDED = [losses.discriminator_loss, losses.ada_discriminator_loss,
             losses.ada_feature_extractor_loss, losses.aae_discriminator_loss,
             losses.ali_discriminator_loss, losses.ali_generator_loss]
ONE_SIDED = [losses.generator_loss_nonsaturating, losses.generator_loss_minimax,
             losses.generator_loss_importance_weighted, losses.aae_encoder_loss]


@pytest.mark.parametrize("fn", TWO_SIDED)
def test_two_sided_jit_eager_and_extreme_logits(fn):
  real = jnp.array([100.0, -100.0, 1e4, -1e4, 0.0])
  fake = jnp.array([-100.0, 100.0, 3.0])
  np.testing.assert_allclose(jax.jit(fn)(real, fake), fn(real, fake), rtol=1e-6)
  assert np.isfinite(fn(real, fake))
  grads = jax.grad(fn, argnums=(0, 1))(real, fake)
  assert all(np.all(np.isfinite(g)) for g in grads)


@pytest.mark.parametrize("fn", ONE_SIDED)
def test_one_sided_jit_eager_and_extreme_logits(fn):
  fake = jnp.array([-100.0, 100.0, 1e4, -1e4, 3.0])
  np.testing.assert_allclose(jax.jit(fn)(fake), fn(fake), rtol=1e-6)
  assert np.isfinite(fn(fake))
  assert np.all(np.isfinite(jax.grad(fn)(fake)))


@pytest.mark.parametrize("fn", ONE_SIDED)
def test_one_sided_keep_any_batch_shape_and_check_the_reduction(fn):
  assert jax.jit(functools.partial(fn, reduction="none"))(jnp.zeros((4, 1))).shape == (4, 1)
  with pytest.raises(ValueError, match="reduction"):
    fn(jnp.zeros(4), reduction="avg")


def test_two_sided_shape_and_weight_errors():
  pair = losses.discriminator_loss(jnp.zeros(3), jnp.zeros((3, 2)), reduction="none")
  assert isinstance(pair, losses.TwoBatch) and pair.fake.shape == (3, 2)
  with pytest.raises(ValueError, match="real_weights"):
    losses.discriminator_loss(jnp.zeros(3), jnp.zeros(3), real_weights=jnp.ones(4))
  with pytest.raises(ValueError, match="label_smoothing"):
    losses.discriminator_loss(jnp.zeros(3), jnp.zeros(3), label_smoothing=1.0)
  with pytest.raises(ValueError, match="logits must have shape"):
    losses.conditional_generator_loss_nonsaturating(jnp.zeros((3, 2)), jnp.zeros(4, jnp.int32))
  with pytest.raises(ValueError, match="labels must be integers"):
    losses.conditional_generator_loss_nonsaturating(jnp.zeros((3, 2)), jnp.zeros(3))


def test_vmap_over_independent_batches():
  fakes = jnp.array([[0.0, 1.0, 2.0], [3.0, -1.0, 0.5]])
  batched = jax.vmap(losses.generator_loss_importance_weighted)(fakes)
  for i in range(2):
    np.testing.assert_allclose(batched[i], losses.generator_loss_importance_weighted(fakes[i]),
                               rtol=1e-6)
