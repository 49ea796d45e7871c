"""Variants and the compiled update step: every variant trains, losses fall, steps are exact."""

import dataclasses
import json
import os
import pathlib
import re
import subprocess
import sys
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks import bench
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

# Parametrisations run only with `pytest -m slow` (the default suite must stay under 10 minutes
# on 2 cores): each is the costliest compile of its kind, and the default keeps a cheaper case
# of the same mechanism (vae/cvae/iwae/aavae train; gan/iwgan/cgan/... take steps).
SLOW_CASES = {"aasvae", "svae", "avb", "wake_sleep", "aacvae", "aa(avb)", "aa(wake_sleep)",
              # transformed variants: test_transforms checks what the transforms change, and
              # the slow sharded-step test trains every one of them
              "iw(infogan)", "iw(aae)", "iw(ada)", "iw(ali)",
              # their steps are compared bitwise (iwcgan) or sharded (aa(iwae)) in test_transforms
              "iwcgan", "aa(iwae)",
              # their full steps run in other default tests: cgan's bitwise against the
              # reference commit (test_refactor_equivalence), ali's in test_transforms; gan_minimax
              # is gan's step with the minimax generator loss (checked in test_losses_adversarial)
              "cgan", "ali", "gan_minimax"}


def _run_on_8_simulated_devices(*args: str) -> str:
  """stdout of ``python *args`` from the repository root, with 8 simulated CPU devices (a
  fresh process: the device count is fixed when jax starts); fails the test on an error."""
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8",
             JAX_PLATFORMS="cpu")
  out = subprocess.run([sys.executable, *args], cwd=pathlib.Path(__file__).parents[1], env=env,
                       capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  return out.stdout


def with_slow_cases(names):
  """``names`` for ``pytest.mark.parametrize``, those in ``SLOW_CASES`` marked ``slow``."""
  return [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_CASES else n for n in names]


def test_registry_has_every_variant_of_the_paper():
  expected = {"gan", "gan_minimax", "iwgan", "cgan", "iwcgan", "infogan", "ada", "aae", "vae",
              "iwae", "cvae", "svae", "aavae", "aacvae", "aasvae", "wake_sleep", "ali", "avb"}
  assert expected <= set(variants.names())
  with pytest.raises(ValueError, match="unknown variant 'wgan'.*registered variants: aacvae"):
    variants.get("wgan")


@pytest.mark.parametrize(
    "name", with_slow_cases(sorted(set(variants.names()) - set(VAE_FAMILY_LOSS))))
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
  if model.variant.generator_objective == "importance_weighted":
    assert any(k.startswith("iw_ess") for k in metrics), metrics  # Eq. 16's weights in use
  if name.startswith("aa("):
    assert "aa_weight_fake" in metrics  # Eq. 17's weights in use
  # Every network moved.
  for module, params in state.params.items():
    moved = max(float(np.max(np.abs(a - b))) for a, b in
                zip(jax.tree.leaves(params), jax.tree.leaves(before[module])))
    assert moved > 0, module


@pytest.mark.parametrize("name", with_slow_cases(sorted(VAE_FAMILY_LOSS)))
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


@pytest.mark.parametrize("checked", [
    ("iwgan",),
    # Slow: the VAE family's sharded step is also checked by
    # test_microbatches_under_sharded_jit_match_one_device (IWAE over 8 devices).
    pytest.param(("vae",), marks=pytest.mark.slow),
    pytest.param(("cgan:generator_first",), marks=pytest.mark.slow)])
def test_sharded_steps_match_single_device_on_8_simulated_devices(checked):
  """Sharded jit and shard_map vs one device, same global batch: IWGAN (batch norm and Eq.
  16's weights over the global batch), and (slow) the VAE family and the generator-first GAN
  order (its fakes handed on within each shard).

  With the default Adam optimizer. (Adam's ``g / (|g| + eps)`` would amplify rounding
  noise in coordinates whose true gradient is zero, e.g. a bias right before batch norm;
  the DCGAN backbones have no such biases, which this test would catch.)
  """
  script = pathlib.Path(__file__).parent / "helpers" / "multidevice_check.py"
  stdout = _run_on_8_simulated_devices(str(script), "3", "adam", *checked)
  rows = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
  assert {(r["variant"], r["mode"]) for r in rows} == {
      (v, m) for v in checked for m in ("jit", "shard_map")}
  for row in rows:
    assert row["param_diff"] < 1e-5, row
    assert row["batch_stats_diff"] < 1e-5, row
    assert max(row["metric_diff"].values()) < 1e-5 * 600, row  # metrics ~ 1 (GAN) to ~550 (ELBO)


def test_strided_conv_transpose_paths_agree_with_flax():
  """The CPU sub-pixel path and lax.conv_transpose compute nn.ConvTranspose (float32)."""
  import flax.linen as nn
  from unigen_jax.models import backbones, kernels  # noqa: F401  pylint: disable=unused-import
  x = jax.random.normal(jax.random.key(0), (2, 4, 4, 32))
  for pad, method in ((((1, 1), (1, 1)), "subpixel"), (((1, 2), (1, 2)), "subpixel"),
                      (((1, 2), (1, 2)), "lax"), (((1, 2), (1, 2)), "auto")):
    ours = backbones.StridedConvTranspose(16, 3, pad, method=method)
    params = ours.init(jax.random.key(1), x)
    ref = nn.ConvTranspose(16, (3, 3), strides=(2, 2), padding=pad)
    out_ref = ref.apply({"params": params["params"]}, x)
    np.testing.assert_allclose(ours.apply(params, x), out_ref, atol=1e-5)
    g = jax.grad(lambda p: jnp.sum(ours.apply(p, x) ** 2))(params)
    g_ref = jax.grad(lambda p: jnp.sum(ref.apply(p, x) ** 2))(params)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4), g, g_ref)


def _float64_params(module, x, seed=1):
  params = module.init(jax.random.key(seed), x)
  # Non-trivial values everywhere (zero biases would hide a wrong bias path).
  return jax.tree.map(lambda a: a + 0.3 * jax.random.normal(jax.random.key(seed + 1), a.shape,
                                                              a.dtype), params)


@pytest.mark.slow  # every (kernel, padding) pair; the default suite keeps the Flax comparison
def test_subpixel_conv_transpose_equals_lax_for_every_padding():
  """Phase decomposition of a stride-2 transposed conv: kernels 3-5, every (low, high)."""
  from unigen_jax.models import backbones, kernels  # noqa: F401  pylint: disable=unused-import
  rng = np.random.default_rng(0)
  dn = ("NHWC", "HWIO", "NHWC")
  with jax.enable_x64(True):
    for k in (3, 4, 5):
      for low in range(k):
        for high in range(k):
          x = jnp.asarray(rng.normal(size=(2, 3, 4, 3)))
          kernel = jnp.asarray(rng.normal(size=(k, k, 3, 2)))
          pad = ((low, high), (high, low))
          ref = jax.lax.conv_transpose(x, kernel, (2, 2), pad, dimension_numbers=dn)
          ours = kernels.subpixel_conv_transpose(x, kernel, pad)
          assert ours.shape == ref.shape, (k, pad)
          np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12, err_msg=str((k, pad)))


def test_subpixel_conv_transpose_equals_flax_conv_transpose():
  """Four 2x2 phase convolutions compute nn.ConvTranspose(4x4, stride 2, SAME) exactly."""
  import flax.linen as nn
  from unigen_jax.models import backbones, kernels  # noqa: F401  pylint: disable=unused-import
  with jax.enable_x64(True):
    for shape, features in (((2, 7, 7, 5), 3), ((2, 4, 6, 2), 1)):
      x = jax.random.normal(jax.random.key(0), shape, jnp.float64)
      ours = backbones.SubpixelConvTranspose(features, method="subpixel", dtype=jnp.float64)
      params = _float64_params(ours, x)
      ref = nn.ConvTranspose(features, (4, 4), strides=(2, 2), padding="SAME",
                             dtype=jnp.float64, param_dtype=jnp.float64)
      out = ours.apply(params, x)
      assert out.shape == (shape[0], 2 * shape[1], 2 * shape[2], features)
      np.testing.assert_allclose(out, ref.apply(params, x), rtol=1e-12, atol=1e-12)
      loss = lambda m: (lambda p: jnp.sum(jnp.sin(m.apply(p, x))))  # noqa: E731
      g, g_ref = jax.grad(loss(ours))(params), jax.grad(loss(ref))(params)
      jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-11), g, g_ref)


def test_upsample_conv_subpixel_equals_upsample_then_conv():
  """Sub-pixel form of nearest-x2 upsampling + 3x3 conv equals the direct computation."""
  from unigen_jax.models import backbones, kernels  # noqa: F401  pylint: disable=unused-import
  with jax.enable_x64(True):
    x = jax.random.normal(jax.random.key(0), (2, 5, 6, 4), jnp.float64)
    direct = backbones.UpsampleConv(3, method="direct", dtype=jnp.float64)
    sub = backbones.UpsampleConv(3, method="subpixel", dtype=jnp.float64)
    params = _float64_params(direct, x)
    # The direct form, written out with numpy: repeat rows/columns, zero-pad, correlate.
    up = np.repeat(np.repeat(np.asarray(x), 2, 1), 2, 2)
    up = np.pad(up, ((0, 0), (1, 1), (1, 1), (0, 0)))
    k = np.asarray(params["params"]["kernel"])
    ref = sum(np.einsum("bhwc,cd->bhwd", up[:, i:i + 10, j:j + 12], k[i, j])
              for i in range(3) for j in range(3)) + np.asarray(params["params"]["bias"])
    np.testing.assert_allclose(direct.apply(params, x), ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(sub.apply(params, x), ref, rtol=1e-12, atol=1e-12)
    loss = lambda m: (lambda p: jnp.sum(jnp.sin(m.apply(p, x))))  # noqa: E731
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-11),
                 jax.grad(loss(sub))(params), jax.grad(loss(direct))(params))


# PyTorch-GAN's DCGAN at 32x32: the settings of the benchmark's peer-matched row (its update
# order aside), so these tests check the network that row times.
PYTORCH_GAN_DCGAN = bench.PEER_MATCHED["unigen_gan_dcgan32_pytorchgan_dfirst"][1]


def test_pytorch_gan_matched_dcgan_has_the_peer_layer_sizes():
  """PyTorch-GAN's DCGAN at 32x32: D 98,113 parameters (exactly), G 1,049,985 minus the 192
  conv biases that sit right before batch norm."""
  model = train_step.build("gan", **PYTORCH_GAN_DCGAN)
  shapes = jax.eval_shape(model.init, jax.random.key(0))
  assert model.num_params(shapes) == {"discriminator": 98113, "generator": 1049985 - 192}
  with pytest.raises(ValueError, match="only used by architecture='dcgan_upsample'"):
    train_step.build("gan", dropout=0.25)


@pytest.mark.slow  # two width-64 compiles (~12 s in the suite); the layer sizes stay default
def test_pytorch_gan_matched_dcgan_uses_dropout_only_in_training():
  model = train_step.build("gan", **PYTORCH_GAN_DCGAN)
  x = jax.random.uniform(jax.random.key(1), (4, 32, 32, 1))
  disc = model.modules()["discriminator"]
  variables = disc.init(jax.random.key(0), x, train=False)
  # Compiled once each (op-by-op, a width-64 network takes ~10 s more here).
  train = jax.jit(lambda seed: disc.apply(variables, x, train=True, mutable=["batch_stats"],
                                          rngs={"dropout": jax.random.key(seed)})[0])
  assert not np.allclose(train(0), train(1))  # different masks
  np.testing.assert_array_equal(train(0), train(0))
  test = jax.jit(lambda: disc.apply(variables, x, train=False))
  np.testing.assert_array_equal(test(), test())


@pytest.mark.slow  # a width-64 step at 32x32: the benchmark's PyTorch-GAN row times it
def test_pytorch_gan_matched_dcgan_takes_a_finite_step():
  model = train_step.build("gan", **PYTORCH_GAN_DCGAN)
  batch = {"image": np.asarray(jax.random.uniform(jax.random.key(1), (4, 32, 32, 1)))}
  _, metrics = train_step.make_train_step(model)(model.init(jax.random.key(0)), batch,
                                                 jax.random.key(2))
  assert all(np.isfinite(float(v)) for v in metrics.values())


def test_patches_conv_equals_strided_lax_conv():
  """Strided conv as patches + matmul (the CPU path of small-output layers) is exact."""
  from unigen_jax.models import backbones, kernels  # noqa: F401  pylint: disable=unused-import
  rng = np.random.default_rng(0)
  with jax.enable_x64(True):
    for size, k, stride, pad in ((3, 4, 2, 1), (7, 4, 2, 1), (8, 3, 2, 0), (5, 3, 1, 1)):
      x = jnp.asarray(rng.normal(size=(2, size, size, 3)))
      kernel = jnp.asarray(rng.normal(size=(k, k, 3, 4)))
      padding = ((pad, pad), (pad, pad))
      ref = jax.lax.conv_general_dilated(x, kernel, (stride, stride), padding,
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))
      np.testing.assert_allclose(kernels.patches_conv(x, kernel, stride, padding), ref,
                                 rtol=1e-12, atol=1e-12)
    x = jnp.asarray(rng.normal(size=(2, 3, 3, 3)))
    conv = backbones.StridedConv(4, 4, 2, 1, method="patches", dtype=jnp.float64)
    params = _float64_params(conv, x)
    lax_conv = conv.clone(method="lax")
    loss = lambda m: (lambda p: jnp.sum(jnp.sin(m.apply(p, x))))  # noqa: E731
    np.testing.assert_allclose(conv.apply(params, x), lax_conv.apply(params, x), atol=1e-12)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-11),
                 jax.grad(loss(conv))(params), jax.grad(loss(lax_conv))(params))


def test_fast_paths_keep_the_parameter_tree_names():
  """Checkpoints written before the CPU fast paths still load: same names and shapes."""
  model = train_step.build("vae", architecture="conv", latent_dim=16, conv_channels=(8, 16),
                           deconv_start=(7, 7, 16), deconv_channels=(8,))
  state = jax.eval_shape(model.init, jax.random.key(0))  # names and shapes: nothing to compute
  enc = state.params["encoder"]["ConvStackEncoderBackbone_0"]
  assert sorted(enc) == ["BatchNorm_0", "BatchNorm_1", "Conv_0", "Conv_1"]
  assert enc["Conv_1"]["kernel"].shape == (4, 4, 8, 16) and "bias" not in enc["Conv_1"]
  gen = jax.eval_shape(train_step.build("gan", width=8).init, jax.random.key(0)).params["generator"]
  assert sorted(gen["DCGANGeneratorBackbone_0"]) == [
      "BatchNorm_0", "BatchNorm_1", "ConvTranspose_0", "ConvTranspose_1", "Dense_0"]


def test_over_batch_chunks_is_the_same_function_over_contiguous_chunks():
  """``kernels.over_batch_chunks``: ``fn`` over equal chunks of at most ``chunk`` examples
  (contiguous slices on one device) equals ``fn`` over the batch (float64, to 1e-12);
  gradients too, for several chunks of 2 and for the MAX_CHUNKS cap (10 chunks of 4)."""
  from unigen_jax.models import kernels
  rng = np.random.default_rng(0)
  with jax.enable_x64(True):
    kernel = jnp.asarray(rng.normal(size=(4, 4, 3, 5)))
    conv = lambda k: (lambda v: kernels.conv_transpose(v, k, 2, ((2, 2), (2, 2)), "subpixel"))  # noqa: E731
    # (batch, chunk) -> chunk sizes: 8 in 4 chunks of 2; 7 (prime) in 7 of 1; one call;
    # at most MAX_CHUNKS = 16 chunks: 40 in 10 of 4 (not 40 of 1), 17 (prime) in one.
    # Gradients (~6 s each, op by op) for the several-chunk case and the capped one.
    assert kernels.MAX_CHUNKS == 16
    for batch, chunk, sizes, check_grads in ((8, 3, [2] * 4, True), (7, 2, [1] * 7, False),
                                             (6, 6, [6], False), (40, 1, [4] * 10, True),
                                             (17, 1, [17], False)):
      x = jnp.asarray(rng.normal(size=(batch, 5, 5, 3)))
      seen = []
      out = kernels.over_batch_chunks(lambda v: seen.append(v) or conv(kernel)(v), x, chunk)
      assert [v.shape[0] for v in seen] == sizes
      assert jax.device_count() == 1  # one block: chunk j is the j-th slice of B / n examples
      for j, v in enumerate(seen):
        np.testing.assert_array_equal(v, x[j * len(v):(j + 1) * len(v)])
      np.testing.assert_allclose(out, conv(kernel)(x), rtol=1e-12, atol=1e-12)
      if not check_grads:
        continue
      loss = lambda k, x, c: jnp.sum(jnp.sin(kernels.over_batch_chunks(conv(k), x, c)))  # noqa: E731
      for a, b in zip(jax.grad(loss, argnums=(0, 1))(kernel, x, chunk),
                      jax.grad(loss, argnums=(0, 1))(kernel, x, 0)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
  with pytest.raises(ValueError, match="chunk must be >= 0"):
    kernels.over_batch_chunks(conv(kernel), x, -1)


CHUNKED_ARCHITECTURES = {
    "dcgan": ("gan", dict(width=4), (28, 28, 1)),
    "dcgan_upsample": ("gan", dict(architecture="dcgan_upsample", width=8,
                                   image_shape=(32, 32, 1)), (32, 32, 1)),
    "conv": ("vae", dict(architecture="conv", latent_dim=4, conv_channels=(8, 16),
                         deconv_start=(7, 7, 16), deconv_channels=(8,)), (28, 28, 1)),
}


# Slow (45-60 s each on 2 cores): the default suite checks chunking by
# test_over_batch_chunks_is_the_same_function_over_contiguous_chunks (float64, gradients
# included) and the chunked DCGAN step by test_conv_batch_chunk_reaches_every_convolution_of_the_step.
@pytest.mark.slow
@pytest.mark.parametrize("architecture", ["dcgan", "conv", "dcgan_upsample"])
def test_conv_batch_chunk_computes_the_same_networks_in_float64(architecture):
  """Every conv backbone with ``batch_chunk``: the same outputs and parameter gradients as
  without (float64, to 1e-10) in training mode, i.e. with batch norm over the whole batch:
  generator -> discriminator (GANs), decoder -> encoder (the conv VAE's)."""
  from unigen_jax.models import backbones
  _, kw, shape = CHUNKED_ARCHITECTURES[architecture]
  f64 = dict(dtype=jnp.float64)
  if architecture == "dcgan":
    first = lambda c: backbones.DCGANGeneratorBackbone(shape, 4, batch_chunk=c, **f64)  # noqa: E731
    second = lambda c: backbones.DCGANDiscriminatorBackbone(shape, 4, batch_chunk=c, **f64)  # noqa: E731
  elif architecture == "dcgan_upsample":
    first = lambda c: backbones.UpsampleGeneratorBackbone(shape, 8, 0.8, batch_chunk=c, **f64)  # noqa: E731
    second = lambda c: backbones.UpsampleDiscriminatorBackbone(8, 0.0, 0.8, batch_chunk=c, **f64)  # noqa: E731
  else:
    first = lambda c: backbones.ConvStackDecoderBackbone(shape, (7, 7, 16), (8,),  # noqa: E731
                                                         batch_chunk=c, **f64)
    second = lambda c: backbones.ConvStackEncoderBackbone((8, 16), batch_chunk=c, **f64)  # noqa: E731
  inputs = (8, 6)
  with jax.enable_x64(True):
    x = jax.random.normal(jax.random.key(0), inputs, jnp.float64)
    params_a = first(0).init(jax.random.key(1), x, True)
    mid = first(0).apply(params_a, x, True, mutable=["batch_stats"])[0]
    params_b = second(0).init(jax.random.key(2), mid, True)
    params = jax.tree.map(lambda a: a.astype(jnp.float64) + 0.1, (params_a, params_b))

    def loss(params, c):
      h, stats_a = first(c).apply(params[0], x, True, mutable=["batch_stats"])
      out, stats_b = second(c).apply(params[1], h, True, mutable=["batch_stats"])
      return jnp.sum(jnp.sin(out)), (out, stats_a, stats_b)

    (value, aux), grads = jax.value_and_grad(loss, has_aux=True)(params, 0)
    (value_c, aux_c), grads_c = jax.value_and_grad(loss, has_aux=True)(params, 3)
    assert aux[0].dtype == jnp.float64
    check = lambda a, b: np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-10)  # noqa: E731
    check(value, value_c)
    jax.tree.map(check, aux, aux_c)
    jax.tree.map(check, grads, grads_c)


def test_conv_batch_chunk_reaches_every_convolution_of_the_step():
  """``model.conv_batch_chunk`` in a variant's step: the same parameter tree and initial
  values (bitwise), 4x the convolutions (batch 8 in 4 chunks of 2), the same metrics up to
  float32 rounding."""
  batch = make_batch(n=8)
  convolutions, results = [], []
  for chunk in (0, 3):
    model = train_step.build("gan", **TINY, conv_batch_chunk=chunk)
    state = model.init(jax.random.key(0))
    step = train_step.make_train_step(model, donate=False)
    convolutions.append(step.lower(state, batch, jax.random.key(1)).as_text().count(
        "stablehlo.convolution"))
    results.append((state,) + step(state, batch, jax.random.key(1)))
  (init, _, metrics), (init_c, _, metrics_c) = results
  assert jax.tree.structure(init.params) == jax.tree.structure(init_c.params)
  jax.tree.map(np.testing.assert_array_equal, init.params, init_c.params)
  assert convolutions[0] > 0 and convolutions[1] == 4 * convolutions[0], convolutions
  for key in metrics:
    np.testing.assert_allclose(metrics_c[key], metrics[key], rtol=1e-5, atol=1e-6)


@pytest.mark.slow  # 50 s of 8-device compiles; the sharded steps without chunks stay default
def test_conv_batch_chunk_under_sharded_jit_matches_one_device_without_more_communication():
  """``conv_batch_chunk`` with the batch sharded over 8 simulated devices: the same update as
  on one device, and (chunks of 16 = a run of 2 examples of every device's block) no
  collective beyond those of the whole-batch step: each device convolves its own examples."""
  script = '''
import jax, numpy as np, re, sys
sys.path.insert(0, "tests")
from test_train_step import make_batch
from unigen_jax import parallel, train_step
batch = make_batch(n=64)
mesh = parallel.data_mesh()
assert mesh.shape["batch"] == 8
host = {k: np.asarray(v) for k, v in batch.items()}
for chunk in (0, 16):
  model = train_step.build("gan", width=4, conv_batch_chunk=chunk)
  one, _ = train_step.make_train_step(model, parallelism="none")(
      model.init(jax.random.key(0)), batch, jax.random.key(1))
  step = train_step.make_train_step(model, mesh=mesh)
  state, sharded_batch = model.init(jax.random.key(0), mesh=mesh), parallel.shard_batch(host, mesh)
  hlo = step.lower(state, sharded_batch, jax.random.key(1)).compile().as_text()
  collectives = sum(len(re.findall(rf"\\b{op}(-start)?\\(", hlo)) for op in (
      "all-gather", "all-to-all", "collective-permute", "all-reduce"))
  sharded, _ = step(state, sharded_batch, jax.random.key(1))
  diff = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
             for a, b in zip(jax.tree.leaves(one.params), jax.tree.leaves(sharded.params)))
  print(chunk, diff, collectives)
'''
  stdout = _run_on_8_simulated_devices("-c", script)
  rows = {int(c): (float(d), int(n)) for c, d, n in
          (line.split() for line in stdout.splitlines())}
  assert set(rows) == {0, 16}
  assert rows[0][1] > 0, rows  # the gradient all-reduce is there
  assert rows[16][1] == rows[0][1], rows
  assert rows[0][0] < 1e-5 and rows[16][0] < 1e-5, rows  # float rounding of sharded sums


def test_conv_batch_chunk_is_checked_and_may_change_on_resume():
  from unigen_jax import config as config_lib
  with pytest.raises(ValueError, match="conv_batch_chunk must be >= 0"):
    train_step.build("gan", conv_batch_chunk=-1)
  config = config_lib.get_config("gan")
  stored = config_lib.to_json(config)
  config.model.conv_batch_chunk = 32  # the same function: e.g. a CPU run resumed on a GPU
  assert config_lib.check_resume_compatible(stored, config) == []
  config.model.width = 32
  assert config_lib.check_resume_compatible(stored, config) == ["model.width"]


@pytest.mark.parametrize("conditional", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_generator_first_order_reuses_the_generator_batch_for_the_discriminator(conditional):
  """``update_order='generator_first'`` equals the hand-written PyTorch-DCGAN order.

  Reference with plain gradient descent: the generator steps on D(G(z)); the discriminator
  then steps on the real batch and the *same* fakes G(z) of the generator before its
  update. The step's RNG contract: player ``i`` uses ``fold_in(fold_in(fold_in(key, step),
  i), repeat)`` and its context's first draw is ``fold_in(player_key, 1)``.
  """
  name, lr = ("cgan" if conditional else "gan"), 0.05
  model = train_step.build(name, **TINY, optimizer="sgd", learning_rate=lr,
                           update_order="generator_first")
  assert [p.name for p in model.players] == ["generator", "discriminator"]
  state, batch, key = model.init(jax.random.key(0)), make_batch(), jax.random.key(4)
  new, metrics = train_step.make_train_step(model, parallelism="none", donate=False)(
      state, batch, key)

  modules = model.modules()
  player_key = jax.random.fold_in(jax.random.fold_in(jax.random.fold_in(key, 0), 0), 0)
  draws = iter(jax.random.fold_in(player_key, i) for i in (1, 2))
  labels = jax.random.randint(next(draws), (8,), 0, 10) if conditional else None  # drawn first
  z = jax.random.normal(next(draws), (8, model.cfg.latent_dim))

  def apply_with_stats(net, params, *args):
    variables = {"params": params, "batch_stats": state.batch_stats[net]}
    args = args + ((labels,) if conditional and args[-1] is not batch["label"] else ())
    return modules[net].apply(variables, *args, train=True, mutable=["batch_stats"])

  def apply(net, params, *args):
    return apply_with_stats(net, params, *args)[0]

  def generate(g_params):
    return jax.nn.sigmoid(apply("generator", g_params, z))

  def generator_loss(g_params):
    return losses.generator_loss_nonsaturating(
        apply("discriminator", state.params["discriminator"], generate(g_params)))

  fakes = generate(state.params["generator"])  # the generator before its update

  def discriminator_loss(d_params):
    real_args = (batch["image"], batch["label"]) if conditional else (batch["image"],)
    return losses.discriminator_loss(apply("discriminator", d_params, *real_args),
                                     apply("discriminator", d_params, fakes))

  for net, loss_fn in (("generator", generator_loss), ("discriminator", discriminator_loss)):
    grads = jax.grad(loss_fn)(state.params[net])
    expected = jax.tree.map(lambda p, g: p - lr * g, state.params[net], grads)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
                 new.params[net], expected)
  np.testing.assert_allclose(metrics["discriminator/loss"],
                             discriminator_loss(state.params["discriminator"]), rtol=1e-5)

  # The default order (discriminator first, its own fakes) is a different update, and the
  # fused order compiles one generator forward pass fewer.
  default = train_step.build(name, **TINY, optimizer="sgd", learning_rate=lr)
  flops = {}
  for label, m in (("generator_first", model), ("default", default)):
    compiled = train_step.make_train_step(m, parallelism="none", donate=False).lower(
        state, batch, key).compile()
    cost = compiled.cost_analysis()
    flops[label] = float((cost[0] if isinstance(cost, (list, tuple)) else cost)["flops"])
  # A training-mode forward pass: outputs and the batch-norm running averages.
  generator_forward = jax.jit(lambda g: apply_with_stats("generator", g, z)).lower(
      state.params["generator"]).compile().cost_analysis()
  generator_forward = float((generator_forward[0] if isinstance(generator_forward, (list, tuple))
                             else generator_forward)["flops"])
  # At least the generator forward pass is saved; XLA also shares the discriminator's pass
  # on the fakes, which both updates run with the same parameters (no dropout here).
  saved = flops["default"] - flops["generator_first"]
  assert saved > 0.9 * generator_forward, (flops, generator_forward)


def test_unknown_update_order_is_one_clear_error():
  with pytest.raises(ValueError, match="no update_order 'generator_first'.*available: \\['default'\\]"):
    train_step.build("vae", **TINY, update_order="generator_first")
  gan = variants.get("gan")
  frozen = dataclasses.replace(gan, name="gan_d_only", players=gan.players[:1])
  with pytest.raises(ValueError, match="lists players \\['generator', 'discriminator'\\]"):
    train_step.build(frozen, **TINY, update_order="generator_first")


@pytest.mark.parametrize("name", ["gan", "aavae", pytest.param("aae", marks=pytest.mark.slow)])
def test_discriminator_learning_rate_sets_the_discriminator_players_step_size(name):
  """Adam's first update is ``lr * g / (|g| + eps)``: at most ``lr`` per coordinate, and
  close to it where the gradient is not tiny."""
  model = train_step.build(name, **TINY, learning_rate=1e-3, discriminator_learning_rate=1e-5)
  state = model.init(jax.random.key(0))
  new, _ = train_step.make_train_step(model, donate=False)(state, make_batch(), jax.random.key(1))
  def largest_step(player, new, old):
    return max(float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
               for m in player.modules
               for a, b in zip(jax.tree.leaves(new.params[m]), jax.tree.leaves(old.params[m])))

  assert {p.role for p in model.players} == {"discriminator", ""}
  for player in model.players:
    lr = 1e-5 if player.role == "discriminator" else 1e-3
    step = largest_step(player, new, state)
    assert 0.5 * lr < step <= lr * 1.01, (player.name, step, lr)  # float32 differences
  # 0 freezes the discriminator at its initialisation (the AA control); the others still move.
  frozen = train_step.build(name, **TINY, learning_rate=1e-3, discriminator_learning_rate=0.0)
  state = frozen.init(jax.random.key(0))
  new, _ = train_step.make_train_step(frozen, donate=False)(state, make_batch(), jax.random.key(1))
  for player in frozen.players:
    moved = largest_step(player, new, state)
    assert (moved == 0.0) if player.role == "discriminator" else moved > 1e-4, player.name
  with pytest.raises(ValueError, match="discriminator_learning_rate must be >= 0"):
    train_step.build(name, **TINY, discriminator_learning_rate=-1e-3)


MLP_IWAE = dict(architecture="mlp", hidden=(32,), latent_dim=4, optimizer="sgd",
                learning_rate=0.1)


def test_microbatches_take_the_mean_gradient_over_chunks():
  """``microbatch_size``: the step's SGD update is the mean of the chunks' gradients, each
  chunk's noise from ``fold_in(player_key, chunk)``; at one chunk it is the plain step."""
  batch = make_batch(n=8)
  model = train_step.build("iwae", **MLP_IWAE, microbatch_size=4)
  state = model.init(jax.random.key(0))
  before = jax.tree.map(np.asarray, state.params)
  new_state, metrics = train_step.make_train_step(model, donate=False)(state, batch,
                                                                      jax.random.key(1))
  player = model.players[0]
  player_key = jax.random.fold_in(jax.random.fold_in(jax.random.fold_in(jax.random.key(1), 0),
                                                     0), 0)
  grads, losses = [], []
  for i in range(2):
    chunk = jax.tree.map(lambda x: x[4 * i:4 * (i + 1)], batch)

    def loss(own):
      ctx = train_step.Context(model.variant, model.cfg, model.modules(), own, state.batch_stats,
                               jax.random.fold_in(player_key, i), train=True)
      return player.loss(ctx, chunk)[0]
    value, grad = jax.jit(jax.value_and_grad(loss))(before)  # jit'd: one compile, not per op
    grads.append(grad)
    losses.append(float(value))
  expected = jax.tree.map(lambda p, a, b: p - 0.1 * (a + b) / 2, before, *grads)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
               new_state.params, expected)
  np.testing.assert_allclose(float(metrics["vae/loss"]), np.mean(losses), rtol=1e-6)
  # One chunk (microbatch_size >= batch) is the plain step, bitwise.
  plain, whole = (train_step.build("iwae", **MLP_IWAE, microbatch_size=m) for m in (0, 8))
  a = train_step.make_train_step(plain)(plain.init(jax.random.key(0)), batch, jax.random.key(1))
  b = train_step.make_train_step(whole)(whole.init(jax.random.key(0)), batch, jax.random.key(1))
  jax.tree.map(np.testing.assert_array_equal, a[0].params, b[0].params)


def test_microbatches_are_refused_where_examples_are_coupled():
  batch = make_batch(n=8)
  for name, match in (("iwgan", "couple the examples"), ("vae", "batch norm")):
    with pytest.raises(ValueError, match=match):  # at build: before any step or file
      train_step.build(name, **TINY, microbatch_size=4)
  model = train_step.build("iwae", **MLP_IWAE, microbatch_size=3)
  with pytest.raises(ValueError, match="does not divide"):
    train_step.make_train_step(model)(model.init(jax.random.key(0)), batch, jax.random.key(1))
  with pytest.raises(ValueError, match="microbatch_size must be >= 0"):
    train_step.build("iwae", microbatch_size=-1)
  model = train_step.build("iwae", **MLP_IWAE, microbatch_size=4)
  with pytest.raises(ValueError, match="does not support it"):
    train_step.make_train_step(model, parallelism="shard_map")(
        model.init(jax.random.key(0)), batch, jax.random.key(1))


def test_microbatches_under_sharded_jit_match_one_device():
  """``microbatch_size`` with the batch sharded over 8 simulated devices ('jit'): the same
  update as on one device (the chunks are those of the global batch)."""
  script = '''
import jax, numpy as np, sys
sys.path.insert(0, "tests")
from test_train_step import MLP_IWAE, make_batch
from unigen_jax import parallel, train_step
model = train_step.build("iwae", **MLP_IWAE, microbatch_size=4)
batch = make_batch(n=16)
one, _ = train_step.make_train_step(model, parallelism="none")(
    model.init(jax.random.key(0)), batch, jax.random.key(1))
mesh = parallel.data_mesh()
assert mesh.shape["batch"] == 8
host = {k: np.asarray(v) for k, v in batch.items()}
sharded, _ = train_step.make_train_step(model, mesh=mesh)(
    model.init(jax.random.key(0), mesh=mesh), parallel.shard_batch(host, mesh), jax.random.key(1))
print(max(float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
          for a, b in zip(jax.tree.leaves(one.params), jax.tree.leaves(sharded.params))))
'''
  stdout = _run_on_8_simulated_devices("-c", script)
  assert float(stdout.split()[-1]) < 1e-5  # float rounding of the sharded sums


def test_microbatch_config_errors_come_before_any_file():
  """The training program's config check names the field (one line, exit 2 in the CLI)."""
  from unigen_jax import config as config_lib
  cases = (("gan,mnist", {}, "config.model: microbatch_size=4: 'gan'"),
           # the step's own rule (train_step.microbatch_count), asked with the config's batch
           ("iwae,mnist", {"parallelism": "shard_map"},
            "config.model: microbatch_size=4 chunks the global batch of a 'jit' or 'none' step; "
            "parallelism='shard_map' does not support it"),
           ("iwae,mnist", {"batch_size": 6},
            "config.model: microbatch_size=4 does not divide the batch sizes {'batch_size': 6}"))
  for arg, overrides, message in cases:
    config = config_lib.get_config(arg)
    config.model.microbatch_size = 4
    config.model.architecture = "mlp"
    for field, value in overrides.items():
      config[field] = value
    with pytest.raises(config_lib.ConfigError, match=re.escape(message)):
      config_lib.resolve_config(config)


def test_fast_likelihood_is_the_bernoulli_log_likelihood_and_off_by_default():
  """``_specs.bernoulli_log_likelihood``: both forms equal a float64 numpy reference;
  the default is exactly ``distributions.bernoulli_log_prob`` (earlier steps unchanged)."""
  from unigen_jax import distributions
  from unigen_jax.variants import _specs
  rng = np.random.default_rng(0)
  x = (rng.uniform(size=(3, 28, 28, 1)) > 0.5).astype(np.float32)
  logits = (rng.normal(size=(5, 3, 28, 28, 1)) * 4).astype(np.float32)  # [K, B, image]
  x64, l64 = x.astype(np.float64), logits.astype(np.float64)
  reference = np.sum(x64 * l64 - np.logaddexp(0.0, l64), axis=(2, 3, 4))
  ctx = lambda fast: types.SimpleNamespace(cfg=variants.ModelConfig(fast_likelihood=fast))  # noqa: E731
  assert not variants.ModelConfig().fast_likelihood
  for fast in (False, True):
    got = jax.jit(lambda a, b, f=fast: _specs.bernoulli_log_likelihood(
        ctx(f), jnp.broadcast_to(a, b.shape), b, event_ndims=3))(x, logits)
    assert got.shape == (5, 3)
    np.testing.assert_allclose(got, reference, rtol=2e-6)
  default = _specs.bernoulli_log_likelihood(ctx(False), x, logits[0])
  np.testing.assert_array_equal(default, distributions.bernoulli_log_prob(x, logits[0]))
  for fast in (False, True):  # same refusal of mismatched shapes, flattened or not
    with pytest.raises(ValueError, match="must match"):
      _specs.bernoulli_log_likelihood(ctx(fast), x.reshape(3, 784), logits[0])


@pytest.mark.parametrize("name", ["vae", "iwae"])
def test_fast_likelihood_step_is_the_default_step_to_float_rounding(name):
  """One SGD step with ``fast_likelihood``: the default step's update and metrics to float
  rounding (another summation order and softplus form, the same function)."""
  states = {}
  for fast in (False, True):
    model = train_step.build(name, **MLP_IWAE, fast_likelihood=fast)
    states[fast] = train_step.make_train_step(model, donate=False)(
        model.init(jax.random.key(0)), make_batch(), jax.random.key(1))
  (plain, plain_metrics), (fast, fast_metrics) = states[False], states[True]
  for a, b in zip(jax.tree.leaves(plain.params), jax.tree.leaves(fast.params)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)  # float32 sums over K x 784
  for key in plain_metrics:
    np.testing.assert_allclose(plain_metrics[key], fast_metrics[key], rtol=1e-5)
  assert any(not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(plain.params),
                                                       jax.tree.leaves(fast.params)))
