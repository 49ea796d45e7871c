"""Fidelity of the adversary-activated models (Eq. 17) and of M2 to their papers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from unigen_jax import losses
from unigen_jax import train_step
from unigen_jax import variants
from unigen_jax.variants import _variational
from tests.test_train_step import TINY, make_batch


def _context(model, state, key=0):
  return variants.Context(model.variant, model.cfg, model.modules(), state.params,
                          state.batch_stats, jax.random.key(key), train=True)


def test_generated_samples_of_eq17_are_bernoulli_draws_of_the_decoder():
  """x ~ p_theta(x|z): binary like the dynamically binarised data, with the decoder's means."""
  model = train_step.build("aavae", **TINY)
  state = model.init(jax.random.key(0))
  fake, _ = _variational._generated(_context(model, state), 4000, False)  # pylint: disable=protected-access
  assert set(np.unique(np.asarray(fake))) <= {0.0, 1.0}
  means = train_step.build("aavae", **TINY, aa_fake_samples="mean")
  mean_fake, _ = _variational._generated(_context(means, state), 4000, False)  # pylint: disable=protected-access
  assert len(np.unique(np.asarray(mean_fake))) > 100  # grey levels: the option, off by default
  # Same z (same draws), so the Bernoulli draws average to the decoder's means.
  np.testing.assert_allclose(np.asarray(fake).mean(0), np.asarray(mean_fake).mean(0), atol=0.05)
  with pytest.raises(ValueError, match="aa_fake_samples='logits'"):
    train_step.build("aavae", **TINY, aa_fake_samples="logits")


def test_aa_cvae_discriminator_sees_the_label():
  model = train_step.build("aacvae", **TINY)
  state = model.init(jax.random.key(0))
  assert model.variant.modules["discriminator"].example_inputs(model.cfg)[1].shape == (2,)
  ctx = variants.Context(model.variant, model.cfg, model.modules(), state.params,
                         state.batch_stats, jax.random.key(0), train=False)
  x = make_batch()["image"]
  as_zero = ctx.apply("discriminator", x, jnp.zeros(8, jnp.int32))
  as_one = ctx.apply("discriminator", x, jnp.ones(8, jnp.int32))
  assert not np.allclose(np.asarray(as_zero), np.asarray(as_one))  # D(x, y) depends on y
  new, metrics = train_step.make_train_step(model)(state, make_batch(), jax.random.key(1))
  assert np.isfinite(float(metrics["discriminator/loss"]))


@pytest.mark.parametrize("name,base", [
    ("aavae", "vae"), pytest.param("aacvae", "cvae", marks=pytest.mark.slow)])
def test_generated_samples_do_not_move_test_time_batch_statistics(name, base):
  """After an AA step the encoder's running statistics are exactly the base model's: only
  the real batch was recorded (the generated one is normalised but not recorded)."""
  aa = train_step.build(name, **TINY)
  plain = train_step.build(base, **TINY)
  state = aa.init(jax.random.key(0))
  plain_state = plain.init(jax.random.key(0)).replace(
      params={m: state.params[m] for m in ("encoder", "decoder")},
      batch_stats={m: state.batch_stats[m] for m in ("encoder", "decoder")})
  batch = make_batch()
  new, _ = train_step.make_train_step(aa, donate=False)(state, batch, jax.random.key(1))
  new_plain, _ = train_step.make_train_step(plain, donate=False)(plain_state, batch,
                                                                  jax.random.key(1))
  jax.tree.map(np.testing.assert_array_equal, new.batch_stats["encoder"],
               new_plain.batch_stats["encoder"])
  # And the statistics did move (the test can fail).
  moved = jax.tree.map(lambda a, b: float(np.max(np.abs(np.asarray(a) - np.asarray(b)))),
                       new.batch_stats["encoder"], state.batch_stats["encoder"])
  assert max(jax.tree.leaves(moved)) > 0


def test_record_stats_false_normalises_but_does_not_record():
  model = train_step.build("vae", **TINY)
  state = model.init(jax.random.key(0))
  ctx = _context(model, state)
  before = jax.tree.map(np.asarray, ctx.batch_stats["encoder"])
  ctx.apply("encoder", make_batch()["image"], record_stats=False)
  jax.tree.map(np.testing.assert_array_equal, ctx.batch_stats["encoder"], before)
  ctx.apply("encoder", make_batch()["image"])
  assert any(not np.array_equal(a, b) for a, b in zip(
      jax.tree.leaves(ctx.batch_stats["encoder"]), jax.tree.leaves(before)))


def test_m2_objective_weights_follow_the_config():
  """Per-batch M2: w_l mean L(x, y) + w_u mean U(x) + alpha mean CE (Kingma et al.'s J^alpha / N)."""
  batch = make_batch()
  values = {}
  for weights in ((1.0, 1.0, 0.0), (2.0, 0.0, 0.0), (0.0, 3.0, 0.0), (0.0, 0.0, 0.5)):
    model = train_step.build("svae", **TINY, svae_labelled_weight=weights[0],
                             svae_unlabelled_weight=weights[1], svae_alpha=weights[2])
    state = model.init(jax.random.key(0))
    loss, metrics = model.variant.players[0].loss(_context(model, state, key=3), batch)
    values[weights] = (float(loss), {k: float(v) for k, v in metrics.items()})
  loss, m = values[(1.0, 1.0, 0.0)]
  assert loss == pytest.approx(-(m["labelled_elbo"] + m["unlabelled_elbo"]), rel=1e-6)
  loss, m = values[(2.0, 0.0, 0.0)]
  assert loss == pytest.approx(-2 * m["labelled_elbo"], rel=1e-6)
  loss, m = values[(0.0, 3.0, 0.0)]
  assert loss == pytest.approx(-3 * m["unlabelled_elbo"], rel=1e-6)
  model = train_step.build("svae", **TINY)
  state = model.init(jax.random.key(0))
  logits = model.modules()["classifier"].apply(
      {"params": state.params["classifier"], "batch_stats": state.batch_stats["classifier"]},
      batch["image"], train=True, mutable=["batch_stats"])[0]
  ce = float(losses.semi_supervised_classification_loss(logits, batch["label"], alpha=1.0))
  assert values[(0.0, 0.0, 0.5)][0] == pytest.approx(0.5 * ce, rel=1e-5)


@pytest.mark.parametrize("name", ["gan", "cgan", "aavae", "aae", "ali"])
def test_gradient_penalty_is_added_to_the_discriminator_player(name):
  """With gradient_penalty='r1' a discriminator player's loss is its plain loss plus
  weight x R1 of the same discriminator at the same real inputs."""
  batch = make_batch()
  plain = train_step.build(name, **TINY)
  penalised = train_step.build(name, **TINY, gradient_penalty="r1", gradient_penalty_weight=3.0)
  state = plain.init(jax.random.key(0))
  player = next(p for p in plain.players if p.role == "discriminator")
  base, _ = player.loss(_context(plain, state, key=5), batch)
  with_r1, _ = next(p for p in penalised.players if p.role == "discriminator").loss(
      _context(penalised, state, key=5), batch)
  assert float(with_r1) > float(base)
  if name == "gan":  # the difference is exactly the penalty
    ctx = _context(plain, state, key=5)
    r1 = losses.r1_penalty(lambda x: ctx.apply("discriminator", x, record_stats=False),
                           batch["image"])
    assert float(with_r1) - float(base) == pytest.approx(3.0 * float(r1), rel=1e-4)


def test_gradient_penalty_is_a_config_field_with_a_clear_error():
  from unigen_jax import config as config_lib
  config = config_lib.get_config("iwgan,mnist")
  config.model.gradient_penalty = "wgan_gp"
  _, model_cfg = config_lib.resolve_config(config)
  assert model_cfg.gradient_penalty == "wgan_gp"
  config = config_lib.get_config("vae,mnist")
  config.model.gradient_penalty = "r1"
  with pytest.raises(config_lib.ConfigError, match="no discriminator to penalise"):
    config_lib.resolve_config(config)
