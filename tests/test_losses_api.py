"""The losses as a dependency: optax-style API, any batch shape, jit and not (chex variants),
runnable docstring examples, checked labels, and the discriminator's gradient penalties."""

import doctest
import functools
import inspect

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from unigen_jax import losses
from unigen_jax.losses import _adversarial, _regularizers, _variational

NOT_LOSSES = {"importance_weights", "select_class_logits", "iwae_log_weights",
              "adversary_activated_weights", "checked", "TwoBatch"}
PUBLIC = [name for name in losses.__all__ if name not in ("TwoBatch", "checked")]


@pytest.mark.parametrize("module", [_adversarial, _variational, _regularizers])
def test_docstring_examples_run(module):
  result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE, verbose=False)
  assert result.failed == 0 and result.attempted > 0


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_loss_has_an_example_reduction_and_keyword_only_hyperparameters(name):
  fn = getattr(losses, name)
  assert "Example:" in fn.__doc__ and ">>>" in fn.__doc__, name
  params = inspect.signature(fn).parameters.values()
  assert not any(p.kind is p.VAR_KEYWORD for p in params), f"{name} takes **kwargs"
  keyword_only = {p.name for p in params if p.kind is p.KEYWORD_ONLY}
  positional = [p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD]
  hyper = {"reduction", "weights", "real_weights", "fake_weights", "label_smoothing",
           "axis_name", "alpha", "num_classes", "label_log_prior", "kl_weight", "fake_weight",
           "validate", "target_norm", "event_ndims"}
  assert not hyper & set(positional), (name, hyper & set(positional))
  if name not in NOT_LOSSES:
    assert "reduction" in keyword_only, name


ELEMENTWISE = [losses.generator_loss_nonsaturating, losses.generator_loss_minimax,
               losses.aae_encoder_loss]
TWO_BATCH = [losses.discriminator_loss, losses.ada_discriminator_loss,
             losses.ada_feature_extractor_loss, losses.aae_discriminator_loss,
             losses.ali_discriminator_loss, losses.ali_generator_loss,
             losses.avb_discriminator_loss]


class AnyBatchShape(chex.TestCase):
  """Per-example values keep any batch shape; [B, K] equals the rows one by one."""

  @chex.variants(with_jit=True, without_jit=True)
  def test_elementwise_losses(self):
    logits = jnp.asarray(np.random.default_rng(0).normal(size=(3, 5)) * 3, jnp.float32)
    for fn in ELEMENTWISE:
      per_example = self.variant(functools.partial(fn, reduction="none"))(logits)
      rows = jnp.stack([fn(row, reduction="none") for row in logits])
      chex.assert_trees_all_close(per_example, rows, rtol=1e-6)
      chex.assert_trees_all_close(self.variant(fn)(logits), jnp.mean(rows), rtol=1e-6)

  @chex.variants(with_jit=True, without_jit=True)
  def test_two_batch_losses_return_a_two_batch(self):
    rng = np.random.default_rng(1)
    real = jnp.asarray(rng.normal(size=(2, 4)), jnp.float32)
    fake = jnp.asarray(rng.normal(size=(3,)), jnp.float32)
    for fn in TWO_BATCH:
      pair = self.variant(functools.partial(fn, reduction="none"))(real, fake)
      self.assertIsInstance(pair, losses.TwoBatch)
      chex.assert_shape(pair.real, (2, 4))
      chex.assert_shape(pair.fake, (3,))
      chex.assert_trees_all_close(self.variant(fn)(real, fake),
                                  jnp.mean(pair.real) + jnp.mean(pair.fake), rtol=1e-6)
      chex.assert_trees_all_close(self.variant(functools.partial(fn, reduction="sum"))(real, fake),
                                  jnp.sum(pair.real) + jnp.sum(pair.fake), rtol=1e-6)

  @chex.variants(with_jit=True, without_jit=True)
  def test_importance_weighting_normalises_over_the_last_axis(self):
    logits = jnp.asarray(np.random.default_rng(2).normal(size=(3, 6)), jnp.float32)
    weights, ess = self.variant(losses.importance_weights)(logits)
    chex.assert_trees_all_close(jnp.sum(weights, axis=-1), jnp.ones(3), rtol=1e-6)
    chex.assert_shape(ess, (3,))
    loss = self.variant(losses.generator_loss_importance_weighted)(logits)
    rows = [losses.generator_loss_importance_weighted(row) for row in logits]
    chex.assert_trees_all_close(loss, jnp.mean(jnp.stack(rows)), rtol=1e-6)
    # Under vmap of a per-minibatch function: the same.
    chex.assert_trees_all_close(jax.vmap(losses.generator_loss_importance_weighted)(logits),
                                jnp.stack(rows), rtol=1e-6)

  @chex.variants(with_jit=True, without_jit=True)
  def test_variational_losses_take_leading_batch_axes(self):
    rng = np.random.default_rng(3)
    x = jnp.asarray(rng.uniform(size=(2, 3, 6)) > 0.5, jnp.float32)  # [B1, B2, pixels]
    logits = jnp.asarray(rng.normal(size=(2, 3, 6)), jnp.float32)
    mean = jnp.asarray(rng.normal(size=(2, 3, 4)), jnp.float32)
    log_var = jnp.asarray(rng.normal(size=(2, 3, 4)) * 0.1, jnp.float32)
    nelbo = self.variant(functools.partial(losses.bernoulli_negative_elbo, reduction="none"))(
        x, logits, mean, log_var)
    flat = losses.bernoulli_negative_elbo(x.reshape(6, 6), logits.reshape(6, 6),
                                          mean.reshape(6, 4), log_var.reshape(6, 4),
                                          reduction="none")
    chex.assert_trees_all_close(nelbo, flat.reshape(2, 3), rtol=1e-6)
    per_class = jnp.asarray(rng.normal(size=(2, 3, 10)), jnp.float32)
    cls = jnp.asarray(rng.normal(size=(2, 3, 10)), jnp.float32)
    unl = self.variant(functools.partial(losses.semi_supervised_unlabelled_loss,
                                         reduction="none"))(per_class, cls)
    chex.assert_shape(unl, (2, 3))
    log_w = jnp.asarray(rng.normal(size=(5, 2, 3)), jnp.float32)
    bound = self.variant(functools.partial(losses.iwae_negative_bound, reduction="none"))(log_w)
    chex.assert_trees_all_close(
        bound, losses.iwae_negative_bound(log_w.reshape(5, 6), reduction="none").reshape(2, 3),
        rtol=1e-5)  # float32 log-sum-exp: different reduction layouts differ in the last bit


def test_bad_labels_fail_loudly_when_validated():
  logits = jnp.zeros((3, 10))
  fn = functools.partial(losses.conditional_generator_loss_nonsaturating, validate=True)
  checked = losses.checked(jax.jit(fn))
  assert np.isfinite(float(checked(logits, jnp.array([0, 5, 9]))))
  for bad in ([0, -1, 2], [0, 10, 2]):
    with pytest.raises(Exception, match=r"must be in \[0, 10\)"):
      checked(logits, jnp.array(bad))
  with pytest.raises(Exception, match=r"must be in \[0, 10\)"):  # eagerly, without checkify
    losses.semi_supervised_classification_loss(logits, jnp.array([0, 11, 2]), alpha=1.0,
                                               validate=True)
  # Unchecked (the default, as optax): -1 silently selects the last class.
  last = losses.select_class_logits(jnp.arange(10.0)[None], jnp.array([-1]))
  assert float(last[0]) == 9.0


class GradientPenalties(chex.TestCase):
  """R1 / R2 / WGAN-GP against analytic gradients of linear and quadratic discriminators."""

  @chex.variants(with_jit=True, without_jit=True)
  def test_r1_r2_analytic(self):
    rng = np.random.default_rng(4)
    w = jnp.asarray(rng.normal(size=5), jnp.float32)
    a = jnp.asarray(rng.normal(size=(5, 5)), jnp.float32)
    x = jnp.asarray(rng.normal(size=(7, 5)), jnp.float32)
    linear = lambda v: v @ w  # noqa: E731
    quadratic = lambda v: jnp.einsum("bi,ij,bj->b", v, a, v)  # noqa: E731
    r1 = self.variant(functools.partial(losses.r1_penalty, linear, reduction="none"))(x)
    chex.assert_trees_all_close(r1, jnp.full(7, jnp.sum(w ** 2)), rtol=1e-5)
    r2 = self.variant(functools.partial(losses.r2_penalty, quadratic, reduction="none"))(x)
    analytic = jnp.sum(jnp.square(x @ (a + a.T)), axis=-1)  # grad of x'Ax is (A + A')x
    chex.assert_trees_all_close(r2, analytic, rtol=1e-4)
    # Images and pytrees: the norm runs over every non-batch axis of every leaf.
    image_d = lambda v: jnp.sum(v[0] * 2.0, axis=(1, 2)) + jnp.sum(v[1], axis=-1)  # noqa: E731
    pair = (jnp.ones((3, 4, 4)), jnp.ones((3, 2)))
    chex.assert_trees_all_close(losses.r1_penalty(image_d, pair, reduction="none"),
                                jnp.full(3, 16 * 4.0 + 2.0), rtol=1e-6)

  @chex.variants(with_jit=True, without_jit=True)
  def test_wgan_gp_analytic(self):
    x = jnp.asarray(np.random.default_rng(5).normal(size=(6, 3)), jnp.float32)
    steep = lambda v: v @ jnp.array([2.0, 0.0, 0.0])  # noqa: E731  (norm 2 everywhere)
    penalty = self.variant(functools.partial(losses.wgan_gp_penalty, steep))(
        x, -x, jax.random.key(0))
    chex.assert_trees_all_close(penalty, 1.0, rtol=1e-5)  # (2 - 1)^2
    quadratic = lambda v: 0.5 * jnp.sum(v * v, axis=-1)  # noqa: E731  (gradient = the point)
    key = jax.random.key(1)
    eps = jax.random.uniform(key, (6,))
    hat = eps[:, None] * x + (1 - eps[:, None]) * (2 * x)
    expected = jnp.mean(jnp.square(jnp.linalg.norm(hat, axis=-1) - 1.0))
    chex.assert_trees_all_close(losses.wgan_gp_penalty(quadratic, x, 2 * x, key), expected,
                                rtol=1e-5)
    with pytest.raises(ValueError, match="real has shape"):
      losses.wgan_gp_penalty(quadratic, x, x[:2], key)

  def test_penalty_gradients_reach_only_the_discriminator_parameters(self):
    x = jnp.ones((4, 3))
    grad = jax.grad(lambda w: losses.r1_penalty(lambda v: v @ w, x))(jnp.array([1.0, 2.0, 2.0]))
    chex.assert_trees_all_close(grad, 2 * jnp.array([1.0, 2.0, 2.0]), rtol=1e-6)  # d||w||^2/dw
