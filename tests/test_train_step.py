"""Variants and the compiled update step: every variant trains, losses fall, steps are exact."""

import dataclasses
import json
import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from unigen_jax import losses
from unigen_jax import parallel
from unigen_jax import train_step
from unigen_jax import variants

TINY = dict(width=4, hidden=(32,))


def make_batch(n=8, seed=0, shape=(28, 28, 1)):
  rng = np.random.default_rng(seed)
  images = (rng.uniform(size=(n,) + shape) > 0.6).astype(np.float32)
  return {"image": jnp.asarray(images), "label": jnp.asarray(rng.integers(0, 10, n), jnp.int32),
          "unlabelled_image": jnp.asarray(rng.uniform(size=(n,) + shape), jnp.float32),
          "target_image": jnp.asarray(1.0 - images)}


VAE_FAMILY_LOSS = {"vae": "vae/loss", "iwae": "vae/loss", "cvae": "vae/loss",
                   "svae": "vae/loss", "aavae": "elbo", "aacvae": "elbo", "aasvae": "labelled_elbo",
                   "wake_sleep": "wake/loss", "avb": "reconstruction_nll"}
# For the AA models the tracked quantity is the (unweighted) ELBO of the real batch: the
# weighted loss also moves with the discriminator, which trains at the same time.
MAXIMISED = {"elbo", "labelled_elbo"}


def test_registry_has_every_variant_of_the_paper():
  expected = {"gan", "gan_minimax", "iwgan", "cgan", "iwcgan", "infogan", "ada", "aae", "vae",
              "iwae", "cvae", "svae", "aavae", "aacvae", "aasvae", "wake_sleep", "ali", "avb"}
  assert expected <= set(variants.names())
  with pytest.raises(ValueError, match="unknown variant 'wgan'.*registered variants: aacvae"):
    variants.get("wgan")


@pytest.mark.parametrize("name", sorted(set(variants.names()) - set(VAE_FAMILY_LOSS)))
def test_adversarial_variants_take_finite_steps(name):
  model = train_step.build(name, **TINY)
  state = model.init(jax.random.key(0))
  step = train_step.make_train_step(model)
  before = jax.tree.map(np.asarray, state.params)
  for _ in range(3):
    state, metrics = step(state, make_batch(), jax.random.key(1))
  assert int(state.step) == 3
  for key, value in metrics.items():
    assert np.isfinite(value), (key, value)
  for player in model.variant.players:
    assert f"{player.name}/loss" in metrics
  # Every network moved.
  for module, params in state.params.items():
    moved = max(float(np.max(np.abs(a - b))) for a, b in
                zip(jax.tree.leaves(params), jax.tree.leaves(before[module])))
    assert moved > 0, module


@pytest.mark.parametrize("name", sorted(VAE_FAMILY_LOSS))
def test_variational_losses_decrease_on_a_fixed_batch(name):
  model = train_step.build(name, **TINY)
  state = model.init(jax.random.key(0))
  step = train_step.make_train_step(model)
  batch = make_batch()
  tracked = VAE_FAMILY_LOSS[name]
  values = []
  for _ in range(50):
    state, metrics = step(state, batch, jax.random.key(1))
    assert all(np.isfinite(v) for v in metrics.values()), metrics
    values.append(float(metrics[tracked]))
  first, last = np.mean(values[:5]), np.mean(values[-5:])
  if tracked in MAXIMISED:
    assert last > first + 10, (first, last)
  else:
    assert last < first - 10, (first, last)


def test_discriminator_loss_decreases_with_frozen_generator():
  gan = variants.get("gan")
  # A new variant is a declaration: the GAN with only its discriminator player.
  frozen = dataclasses.replace(gan, name="gan_frozen_generator", players=gan.players[:1])
  model = train_step.build(frozen, **TINY)
  state = model.init(jax.random.key(0))
  generator_before = jax.tree.map(np.asarray, state.params["generator"])
  step = train_step.make_train_step(model)
  values = []
  for _ in range(30):
    state, metrics = step(state, make_batch(), jax.random.key(2))
    values.append(float(metrics["discriminator/loss"]))
  assert np.mean(values[-5:]) < np.mean(values[:5]) - 0.3
  jax.tree.map(np.testing.assert_array_equal, jax.tree.map(np.asarray, state.params["generator"]),
               generator_before)


def test_shared_parameter_pytrees():
  key = jax.random.key(0)
  gan, iwgan = (train_step.build(n, **TINY).init(key) for n in ("gan", "iwgan"))
  assert jax.tree.structure(gan.params) == jax.tree.structure(iwgan.params)
  jax.tree.map(np.testing.assert_array_equal, gan.params, iwgan.params)
  vae, aavae = (train_step.build(n, **TINY).init(key) for n in ("vae", "aavae"))
  assert set(aavae.params) == set(vae.params) | {"discriminator"}
  for module in ("encoder", "decoder"):
    assert jax.tree.structure(vae.params[module]) == jax.tree.structure(aavae.params[module])
  # The VAE decoder is the GAN generator network (same architecture).
  gen = train_step.build("gan", **TINY, latent_dim=20).init(key).params["generator"]
  assert jax.tree.map(jnp.shape, gen) == jax.tree.map(jnp.shape, vae.params["decoder"])


def test_iwgan_and_gan_differ_only_in_generator_objective():
  """Same state, same batch: the discriminator updates agree, the generator updates do not."""
  batch, key = make_batch(), jax.random.key(3)
  results = {}
  for name in ("gan", "iwgan"):
    model = train_step.build(name, **TINY)
    state, metrics = train_step.make_train_step(model)(model.init(jax.random.key(0)), batch, key)
    results[name] = (jax.tree.map(np.asarray, state.params), metrics)
  (gp, gm), (ip, im) = results["gan"], results["iwgan"]
  jax.tree.map(np.testing.assert_array_equal, gp["discriminator"], ip["discriminator"])
  assert gm["discriminator/loss"] == im["discriminator/loss"]
  diffs = [np.max(np.abs(a - b)) for a, b in zip(jax.tree.leaves(gp["generator"]),
                                                  jax.tree.leaves(ip["generator"]))]
  assert max(diffs) > 0
  assert 1.0 <= float(im["iw_ess"]) <= 8.0


def test_same_seed_is_bitwise_reproducible_and_step_does_not_retrace(monkeypatch):
  traces = []
  original = train_step._single_step

  def counting_step(*args, **kwargs):
    traces.append(1)  # runs only while tracing
    return original(*args, **kwargs)

  monkeypatch.setattr(train_step, "_single_step", counting_step)

  def run():
    model = train_step.build("aavae", **TINY)
    mesh = parallel.data_mesh()
    state = model.init(jax.random.key(7), mesh=mesh)
    step = train_step.make_train_step(model, mesh=mesh)
    for i in range(4):
      state, _ = step(state, make_batch(seed=i), jax.random.key(8))
    return jax.tree.map(np.asarray, state.params)
  first = run()
  assert len(traces) == 1  # four calls, one trace
  second = run()
  jax.tree.map(np.testing.assert_array_equal, first, second)


def test_scan_steps_per_call_equals_sequential_steps():
  model = train_step.build("vae", **TINY)
  batches = [make_batch(seed=i) for i in range(3)]
  key = jax.random.key(5)
  seq = model.init(jax.random.key(0))
  step = train_step.make_train_step(model)
  for b in batches:
    seq, seq_metrics = step(seq, {"image": b["image"]}, key)
  scanned_step = train_step.make_train_step(model, steps_per_call=3)
  stacked = {"image": jnp.stack([b["image"] for b in batches])}
  scanned, metrics = scanned_step(model.init(jax.random.key(0)), stacked, key)
  assert int(scanned.step) == 3
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5), scanned.params, seq.params)
  np.testing.assert_allclose(metrics["vae/loss"], seq_metrics["vae/loss"], rtol=1e-5)


def test_bad_inputs_raise_one_clear_error():
  model = train_step.build("cgan", **TINY)
  state = model.init(jax.random.key(0))
  step = train_step.make_train_step(model, donate=False)
  with pytest.raises(ValueError, match=r"conditional variant: use a labelled dataset"):
    step(state, {"image": make_batch()["image"]}, jax.random.key(0))
  with pytest.raises(ValueError, match=r"image_shape=\(28, 28, 1\).*set model.image_shape"):
    step(state, {"image": jnp.zeros((8, 32, 32, 3)), "label": jnp.zeros(8, jnp.int32)},
         jax.random.key(0))
  with pytest.raises(ValueError, match=r"batch\['label'\] must have shape"):
    step(state, {"image": jnp.zeros((8, 28, 28, 1)), "label": jnp.zeros((8, 1), jnp.int32)},
         jax.random.key(0))
  svae = train_step.build("svae", **TINY)
  with pytest.raises(ValueError, match="semi-supervised"):
    labelled_only = {k: v for k, v in make_batch().items() if k in ("image", "label")}
    train_step.make_train_step(svae)(svae.init(jax.random.key(0)), labelled_only, jax.random.key(0))
  with pytest.raises(ValueError, match="architecture"):
    train_step.build("gan", architecture="resnet")
  with pytest.raises(ValueError, match="parallelism"):
    train_step.make_train_step(model, parallelism="pmap")


def test_sampler_and_conditional_rows():
  model = train_step.build("cvae", **TINY)
  state = model.init(jax.random.key(0))
  images = model.sample(state, jax.random.key(1), 10, labels=jnp.arange(10))
  assert images.shape == (10, 28, 28, 1)
  assert float(images.min()) >= 0 and float(images.max()) <= 1
  with pytest.raises(ValueError, match="does not generate"):
    ada = train_step.build("ada", **TINY)
    ada.sample(ada.init(jax.random.key(0)), jax.random.key(1), 4)


def test_new_variant_in_a_few_lines():
  """The README example: a least-squares-style GAN generator from library pieces."""
  gan = variants.get("gan")

  def generator_loss(ctx, batch):
    z = ctx.normal((batch["image"].shape[0], ctx.cfg.latent_dim))
    fake_logits = ctx.apply("discriminator", jax.nn.sigmoid(ctx.apply("generator", z)))
    weights = jnp.where(fake_logits < 0, 2.0, 1.0)  # push harder on samples judged fake
    return losses.generator_loss_nonsaturating(fake_logits, weights=weights), {}

  custom = variants.register(dataclasses.replace(
      gan, name="test_weighted_gan", description="GAN with a weighted generator",
      players=(gan.players[0], variants.Player("generator", ("generator",), generator_loss))),
      overwrite=True)
  model = train_step.build("test_weighted_gan", **TINY)
  state, metrics = train_step.make_train_step(model)(model.init(jax.random.key(0)), make_batch(),
                                                     jax.random.key(1))
  assert np.isfinite(metrics["generator/loss"]) and custom.name in variants.names()


def test_sharded_steps_match_single_device_on_8_simulated_devices():
  """Sharded jit and shard_map vs one device, same global batch, GAN- and VAE-family.

  With the default Adam optimizer. (Adam's ``g / (|g| + eps)`` would amplify rounding
  noise in coordinates whose true gradient is zero, e.g. a bias right before batch norm;
  the DCGAN backbones have no such biases, which this test would catch.)
  """
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8",
             JAX_PLATFORMS="cpu")
  script = pathlib.Path(__file__).parent / "helpers" / "multidevice_check.py"
  out = subprocess.run([sys.executable, str(script), "3", "adam", "gan", "iwgan", "vae"],
                       env=env, capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
  assert {(r["variant"], r["mode"]) for r in rows} == {
      (v, m) for v in ("gan", "iwgan", "vae") for m in ("jit", "shard_map")}
  for row in rows:
    assert row["param_diff"] < 1e-5, row
    assert row["batch_stats_diff"] < 1e-5, row
    assert max(row["metric_diff"].values()) < 1e-5 * 600, row  # metrics ~ 1 (GAN) to ~550 (ELBO)


def test_strided_conv_transpose_paths_agree_with_flax():
  """The CPU zero-insertion path and lax.conv_transpose compute nn.ConvTranspose exactly."""
  import flax.linen as nn
  from unigen_jax.models import backbones
  x = jax.random.normal(jax.random.key(0), (2, 4, 4, 32))
  for pad, min_channels in ((((1, 1), (1, 1)), 1), (((1, 2), (1, 2)), 1), (((1, 2), (1, 2)), 10**9)):
    ours = backbones.StridedConvTranspose(16, 3, pad, zero_insert_min_channels=min_channels)
    params = ours.init(jax.random.key(1), x)
    ref = nn.ConvTranspose(16, (3, 3), strides=(2, 2), padding=pad)
    out_ref = ref.apply({"params": params["params"]}, x)
    np.testing.assert_allclose(ours.apply(params, x), out_ref, atol=1e-5)
    g = jax.grad(lambda p: jnp.sum(ours.apply(p, x) ** 2))(params)
    g_ref = jax.grad(lambda p: jnp.sum(ref.apply(p, x) ** 2))(params)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4), g, g_ref)
