"""Microbenchmarks of the jitted steps, the input pipeline, FLOP utilisation and evaluation.

  python -m benchmarks.bench --suite=peers --out=benchmarks/results/peers.json
  python -m benchmarks.bench --suite=registry --batches=32,64,128,256,512 --width=32
  python -m benchmarks.bench --suite=pipeline,flops,eval
  python -m benchmarks.bench --suite=batch_sweep --batches=32,64,128,256,512,1024
  python -m benchmarks.bench --suite=accelerator --out=benchmarks/results/accelerator.json

The ``accelerator`` suite is the one command for a GPU/TPU: every registered variant at the
paper's width (64), batch 64 / 256 / 1024, float32 and bfloat16, ``steps_per_call`` 1 and 10,
data-parallel over all devices (sharded ``jax.jit``), with achieved FLOP/s against the
device's peak (MFU: XLA's FLOP count of the compiled step x steps/s / peak) and memory. The
peak comes from a table of known devices, ``--peak_flops``, or (CPU) the measured matmul
rate. ``--smoke`` shrinks any suite to seconds (the tests run it on 8 simulated CPU devices).

Timing protocol (the same as ``../shared/peers/bench_common.py``, so rows are comparable
with the peers measured in the same session): warm-up until >= 3 steps and >= 2 s (this
absorbs compilation), then 5 windows, each running whole steps until >= 2 s have passed
and ending with ``block_until_ready``; steps/s is the median window. A step is the
variant's whole update (for GANs one discriminator and one generator update). Inputs are
a fixed random batch in [0, 1] already on the device (host-to-device transfer is timed
separately by the ``pipeline`` suite). Compile time is that of ``lower().compile()`` of
the first step; memory is XLA's estimate for the compiled step (arguments + outputs +
temporaries) or, on GPU, the allocator's peak.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import platform
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import flags

from benchmarks import report
from unigen_jax import input_pipeline
from unigen_jax import parallel
from unigen_jax import train_step
from unigen_jax import variants

WARMUP_STEPS, WARMUP_S, WINDOW_S, WINDOWS = 3, 2.0, 2.0, 5


def measure(run_step, sync, *, warmup_steps=WARMUP_STEPS, warmup_s=WARMUP_S,
            window_s=WINDOW_S, windows=WINDOWS, always_sync: bool = False) -> dict:
  """Median steps/s over timed windows after a warm-up (see the module docstring)."""
  start, n, slowest = time.perf_counter(), 0, 0.0
  while n < warmup_steps or time.perf_counter() - start < warmup_s:
    t_step = time.perf_counter()
    run_step()
    sync()
    slowest = max(slowest, time.perf_counter() - t_step) if n else 0.0
    n += 1
  # Async dispatch would queue hundreds of slow steps (seconds each) before the window's
  # closing sync; for those, sync every step (pipelining gains nothing there).
  # Several simulated CPU devices (parallel.must_sync_each_step) deadlock with queued steps.
  sync_every_step = slowest > 0.05 or always_sync
  rates = []
  for _ in range(windows):
    k, t0 = 0, time.perf_counter()
    while True:
      run_step()
      k += 1
      if sync_every_step:
        sync()
      if time.perf_counter() - t0 >= window_s:
        sync()  # only when we may stop, so dispatch stays pipelined
        elapsed = time.perf_counter() - t0
        break
    rates.append(k / elapsed)
  return {"steps_per_s": statistics.median(rates), "min": min(rates), "max": max(rates),
          "windows": rates}


def _batch_for(model: train_step.Model, batch_size: int, seed: int = 0) -> dict:
  rng = np.random.default_rng(seed)
  shape = (batch_size,) + model.cfg.image_shape
  batch = {"image": rng.uniform(size=shape).astype(np.float32)}
  keys = model.variant.batch_keys
  if "label" in keys:
    batch["label"] = rng.integers(0, model.cfg.num_classes, batch_size).astype(np.int32)
  if "unlabelled_image" in keys:
    batch["unlabelled_image"] = rng.uniform(size=shape).astype(np.float32)
  if "target_image" in keys:
    batch["target_image"] = rng.uniform(size=shape).astype(np.float32)
  return batch


def _memory_bytes(compiled) -> dict:
  out = {}
  try:
    analysis = compiled.memory_analysis()
    out["xla_estimate_bytes"] = int(analysis.argument_size_in_bytes + analysis.output_size_in_bytes
                                    + analysis.temp_size_in_bytes)
  except Exception:  # pylint: disable=broad-except
    pass
  stats = jax.devices()[0].memory_stats() if hasattr(jax.devices()[0], "memory_stats") else None
  if stats and "peak_bytes_in_use" in stats:
    out["device_peak_bytes"] = int(stats["peak_bytes_in_use"])
  return out


def _flops(compiled) -> float:
  try:
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return float(cost.get("flops", float("nan")))
  except Exception:  # pylint: disable=broad-except
    return float("nan")


# FLOPs of one step by (variant, config without microbatches, batch, mesh): see bench_model.
_SINGLE_STEP_FLOPS: dict = {}


def bench_model(name: str, model: train_step.Model, batch_size: int, steps_per_call: int = 1,
                **measure_kwargs) -> dict:
  """Times one variant's compiled step (single device, donated state)."""
  mesh = parallel.data_mesh()
  state = model.init(jax.random.key(0), mesh=mesh)
  step = train_step.make_train_step(model, mesh=mesh, steps_per_call=steps_per_call)
  host = _batch_for(model, batch_size)
  if steps_per_call > 1:
    host = {k: np.stack([v] * steps_per_call) for k, v in host.items()}
  batch = parallel.shard_batch(host, mesh, leading_steps=steps_per_call > 1)
  key = jax.random.key(1)
  t0 = time.perf_counter()
  compiled = step.lower(state, batch, key).compile()
  compile_s = time.perf_counter() - t0
  holder = {"state": state, "metrics": None}

  def run_step():
    holder["state"], holder["metrics"] = step(holder["state"], batch, key)

  def sync():
    jax.block_until_ready(holder["metrics"])

  result = measure(run_step, sync, always_sync=parallel.must_sync_each_step(mesh),
                   **measure_kwargs)
  for field in ("steps_per_s", "min", "max"):
    result[field] *= steps_per_call  # model steps, not calls
  result["windows"] = [r * steps_per_call for r in result["windows"]]
  # The single-step program without microbatches: its FLOPs are one step's, whatever the row
  # (a row of the same program, timed earlier, already counted them: no second compile).
  plain_cfg = dataclasses.replace(model.cfg, microbatch_size=0)
  plain_key = (model.variant.name, repr(plain_cfg), batch_size, tuple(mesh.shape.items()))
  if steps_per_call == 1 and not model.cfg.microbatch_size:
    flops_per_step = _SINGLE_STEP_FLOPS[plain_key] = _flops(compiled)
  elif plain_key in _SINGLE_STEP_FLOPS:
    flops_per_step = _SINGLE_STEP_FLOPS[plain_key]
  else:
    # XLA's cost analysis counts a loop body once, whatever its trip count: take the FLOPs
    # of one step from the single-step program without microbatches (the same arithmetic).
    single = train_step.make_train_step(train_step.Model(model.variant, plain_cfg), mesh=mesh)
    one = parallel.shard_batch({k: v[0] for k, v in host.items()} if steps_per_call > 1
                               else host, mesh)
    flops_per_step = _SINGLE_STEP_FLOPS[plain_key] = _flops(
        single.lower(holder["state"], one, key).compile())
  result.update(name=name, variant=model.variant.name, batch=batch_size, compile_s=compile_s,
                flops_per_step=flops_per_step,
                num_params=int(sum(model.num_params(holder["state"]).values())),
                steps_per_call=steps_per_call, **_memory_bytes(compiled))
  result["achieved_flops_per_s"] = result["flops_per_step"] * result["steps_per_s"]
  finite = all(np.isfinite(float(v)) for v in jax.device_get(holder["metrics"]).values())
  result["metrics_finite"] = finite
  return result


# pythae's MLP IWAE (K=5): 784-512-16.
_PYTHAE_IWAE = dict(architecture="mlp", hidden=(512,), latent_dim=16, mlp_activation="relu",
                    learning_rate=1e-3, num_importance_samples=5)

# Peer-matched configurations: the peers' exact layer sizes, built from library modules.
PEER_MATCHED = {
    # Flax examples/vae: 784-500-20, ReLU, Bernoulli logits, Adam 1e-3.
    "unigen_vae_mlp_flaxexample": ("vae", dict(architecture="mlp", hidden=(500,), latent_dim=20,
                                               mlp_activation="relu", learning_rate=1e-3)),
    # pythae MLP VAE / IWAE (K=5): 784-512-16.
    "unigen_vae_mlp_pythae": ("vae", dict(architecture="mlp", hidden=(512,), latent_dim=16,
                                          mlp_activation="relu", learning_rate=1e-3)),
    "unigen_iwae_mlp_k5_pythae": ("iwae", _PYTHAE_IWAE),
    # The same, its gradient accumulated over chunks of 256 examples (one chunk up to 256).
    "unigen_iwae_mlp_k5_pythae_microbatch256": ("iwae", dict(_PYTHAE_IWAE, microbatch_size=256)),
    # The same with the flat Bernoulli likelihood and explicit softplus (fast_likelihood: the
    # same function to float rounding), whole batch and over chunks of 256.
    "unigen_iwae_mlp_k5_pythae_fastlik": ("iwae", dict(_PYTHAE_IWAE, fast_likelihood=True)),
    "unigen_iwae_mlp_k5_pythae_microbatch256_fastlik": ("iwae", dict(
        _PYTHAE_IWAE, microbatch_size=256, fast_likelihood=True)),
    # pythae conv MNIST VAE (17.2M parameters).
    "unigen_vae_conv_pythae": ("vae", dict(architecture="conv", latent_dim=16, learning_rate=1e-3)),
    # The same, each convolution over chunks of at most 64 examples (conv_batch_chunk: the
    # same function; 64 the fastest of 16/32/64 at batch 64 and 256 for this network).
    "unigen_vae_conv_pythae_convchunk64": ("vae", dict(architecture="conv", latent_dim=16,
                                                       learning_rate=1e-3, conv_batch_chunk=64)),
    # PyTorch-GAN's DCGAN at 32x32 (G 128-128-64 with upsampling + 3x3 convs, D 16-32-64-128
    # with Dropout2d 0.25, BN eps 0.8, latent 100, Adam 2e-4/0.5): one G update, then one D
    # update on the same (detached) fakes, the peer's order; '_dfirst': our default order
    # (D first on its own fakes, then G), one generator forward pass more.
    "unigen_gan_dcgan32_pytorchgan": ("gan", dict(architecture="dcgan_upsample", width=64,
                                                  image_shape=(32, 32, 1), bn_epsilon=0.8,
                                                  dropout=0.25, update_order="generator_first")),
    "unigen_gan_dcgan32_pytorchgan_dfirst": ("gan", dict(architecture="dcgan_upsample", width=64,
                                                         image_shape=(32, 32, 1), bn_epsilon=0.8,
                                                         dropout=0.25)),
    # The peer's order, each convolution over chunks of at most 16 examples (the fastest of
    # 8/16/32/64 at batches 32-128 for this network).
    "unigen_gan_dcgan32_pytorchgan_convchunk16": ("gan", dict(
        architecture="dcgan_upsample", width=64, image_shape=(32, 32, 1), bn_epsilon=0.8,
        dropout=0.25, update_order="generator_first", conv_batch_chunk=16)),
    # Our default order (D first), each convolution over chunks of at most 16 examples.
    "unigen_gan_dcgan32_pytorchgan_dfirst_convchunk16": ("gan", dict(
        architecture="dcgan_upsample", width=64, image_shape=(32, 32, 1), bn_epsilon=0.8,
        dropout=0.25, conv_batch_chunk=16)),
    # The paper's DCGAN (28x28, width 64): our GAN step, for the FLOP utilisation.
    "unigen_gan_dcgan28": ("gan", dict(width=64)),
    "unigen_iwgan_dcgan28": ("iwgan", dict(width=64)),
}


def suite_peers(batches, steps_per_call=(1,), **kw) -> list[dict]:
  """The peer-matched configurations (``PEER_MATCHED``) at each batch size."""
  rows = []
  for name, (variant, cfg) in PEER_MATCHED.items():
    for b in batches:
      for n in steps_per_call:
        rows.append(bench_model(name, train_step.build(variant, **cfg), b, steps_per_call=n,
                                **kw))
        _print_row(rows[-1])
  return rows


def suite_registry(batches, width: int, names=None, **kw) -> list[dict]:
  rows = []
  for name in names or variants.names():
    if name.startswith("test_"):
      continue
    for b in batches:
      cfg = dict(width=width)
      if name in ("svae", "aasvae"):
        pass  # the unlabelled half is the same size as the labelled one here
      rows.append(bench_model(f"registry_{name}_w{width}", train_step.build(name, **cfg), b, **kw))
      _print_row(rows[-1])
  return rows


def suite_pipeline(batches) -> list[dict]:
  """Examples/s of the input pipeline: host batches, and host batches placed on the device."""
  rows = []
  images = np.random.default_rng(0).integers(0, 256, (60000, 28, 28, 1), dtype=np.uint8)
  mesh = parallel.data_mesh()
  for b in batches:
    for binarization in ("none", "dynamic"):
      it = input_pipeline.BatchIterator({"image": images}, b, 0, binarization=binarization,
                                        process_index=0, process_count=1)
      res = measure(lambda: next(it), lambda: None)
      pre = input_pipeline.Prefetcher(
          input_pipeline.BatchIterator({"image": images}, b, 0, binarization=binarization,
                                       process_index=0, process_count=1),
          place=lambda x: parallel.shard_batch(x, mesh), size=2)
      holder = {}
      res_dev = measure(lambda: holder.update(b=next(pre)),
                        lambda: jax.block_until_ready(holder["b"]))
      pre.close()
      row = {"name": f"pipeline_{binarization}", "batch": b,
             "host_examples_per_s": res["steps_per_s"] * b,
             "on_device_examples_per_s": res_dev["steps_per_s"] * b}
      rows.append(row)
      print(json.dumps(row), flush=True)
  return rows


def suite_flops(quiet: bool = False, **kw) -> list[dict]:
  """FLOP/s of a 2048x2048 float32 matmul: the machine's practical limit for the ratios."""
  n = 2048
  a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
  b = jax.random.normal(jax.random.key(1), (n, n), jnp.float32)
  f = jax.jit(lambda x, y: x @ y)
  holder = {}
  res = measure(lambda: holder.update(c=f(a, b)), lambda: jax.block_until_ready(holder["c"]),
                **kw)
  row = {"name": "matmul_2048_f32", "flops_per_s": 2 * n ** 3 * res["steps_per_s"], **res}
  if not quiet:
    print(json.dumps({k: v for k, v in row.items() if k != "windows"}), flush=True)
  return [row]


def _dense_flops(params) -> float:
  """Multiply-add FLOPs of one example through a network's Dense layers (2 x kernel size)."""
  kernels = [leaf for path, leaf in jax.tree_util.tree_leaves_with_path(params)
             if "kernel" in jax.tree_util.keystr(path)]
  return float(sum(2 * k.size for k in kernels))


def suite_eval(num_images: int, k: int, batch_size: int, **kw) -> list[dict]:
  """Importance-sampled log-likelihood (K samples) throughput, MNIST-sized, pythae MLP size.

  The row's roofline: FLOPs per image = encoder once + decoder K times (the Dense layers'
  multiply-adds, i.e. the matmuls; the softplus and log-sum-exp are not counted) against a
  2048x2048 float32 matmul measured in the same invocation.
  """
  from unigen_jax import evaluator as evaluator_lib  # pylint: disable=g-import-not-at-top
  model = train_step.build("vae", architecture="mlp", hidden=(512,), latent_dim=16,
                           mlp_activation="relu")
  state = model.init(jax.random.key(0))
  images = (np.random.default_rng(0).uniform(size=(num_images, 28, 28, 1)) > 0.5).astype(np.float32)
  labels = np.zeros(num_images, np.int32)
  settings = evaluator_lib.EvalSettings(metrics=("iwae",), dataset="random", split="-",
                                        importance_samples=k, batch_size=batch_size)
  evaluator = evaluator_lib.Evaluator(model, settings, data=(images, labels))
  evaluator.likelihood_bounds(state, jax.random.key(0),
                              data=(images[:batch_size], labels[:batch_size]))  # compile
  t0 = time.perf_counter()
  out = evaluator.likelihood_bounds(state, jax.random.key(0))
  elapsed = time.perf_counter() - t0
  flops_per_image = (_dense_flops(state.params["encoder"])
                     + k * _dense_flops(state.params["decoder"]))
  matmul = suite_flops(quiet=True, **kw)[0]["flops_per_s"]
  images_per_s = num_images / elapsed
  row = {"name": f"eval_iwae_k{k}_mlp_pythae", "num_images": num_images, "importance_samples": k,
         "images_per_call": batch_size, "seconds": elapsed, "images_per_s": images_per_s,
         "gflop_per_image": flops_per_image / 1e9, "matmul_flops_per_s": matmul,
         "fraction_of_matmul": images_per_s * flops_per_image / matmul,
         "finite": bool(np.isfinite(out["iwae"]))}
  print(json.dumps(row), flush=True)
  return [row]


def _print_row(row):
  print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()
                    if k != "windows"}), flush=True)


def environment() -> dict:
  import flax  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top
  return {"python": sys.version.split()[0], "jax": jax.__version__, "flax": flax.__version__,
          "optax": optax.__version__, "devices": [str(d) for d in jax.devices()],
          "platform": platform.platform(), "processor": platform.processor(),
          "time": time.strftime("%Y-%m-%d %H:%M:%S")}


# Dense peak FLOP/s of known accelerators (vendor data sheets; float32 / bfloat16 without
# sparsity). The MFU column divides by the one of the row's dtype.
PEAK_FLOPS = {
    "H200": {"float32": 67e12, "bfloat16": 989e12},
    "H100": {"float32": 67e12, "bfloat16": 989e12},
    "A100": {"float32": 19.5e12, "bfloat16": 312e12},
    "L4": {"float32": 30.3e12, "bfloat16": 121e12},
    "TPU v4": {"float32": 275e12, "bfloat16": 275e12},
    "TPU v5 lite": {"float32": 197e12, "bfloat16": 197e12},
    "TPU v5p": {"float32": 459e12, "bfloat16": 459e12},
}


def device_peak_flops(dtype: str, override: float = 0.0, **kw) -> tuple[float, str]:
  """Peak FLOP/s of all devices together for ``dtype``, and where the figure comes from."""
  devices = jax.devices()
  if override:
    return override * len(devices), "--peak_flops"
  kind = devices[0].device_kind
  for name, peaks in PEAK_FLOPS.items():
    if name.lower() in kind.lower():
      return peaks[dtype] * len(devices), f"data sheet of {name}"
  if devices[0].platform == "cpu":
    rate = suite_flops(quiet=True, **kw)[0]["flops_per_s"]
    return rate, "measured 2048x2048 float32 matmul (all cores)"
  return float("nan"), f"unknown device kind {kind!r} (pass --peak_flops)"


def suite_accelerator(batches, steps_per_call, dtypes, width, peak_override=0.0,
                      names=None, **kw) -> list[dict]:
  """Every registered variant, data-parallel over all devices: steps/s, MFU, memory."""
  rows = []
  peaks = {}
  for d in dtypes:
    peaks[d] = (peaks[dtypes[0]] if peaks and jax.devices()[0].platform == "cpu"
                else device_peak_flops(d, peak_override, **kw))
  for name in names or variants.names():
    if name.startswith("test_"):
      continue
    for dtype in dtypes:
      for b in batches:
        if b % jax.device_count():
          continue  # the global batch is split evenly over the devices
        for n in steps_per_call:
          model = train_step.build(name, width=width, dtype=dtype)
          row = bench_model(f"accelerator_{name}_w{width}_{dtype}", model, b, steps_per_call=n,
                            **kw)
          peak, source = peaks[dtype]
          row.update(dtype=dtype, devices=jax.device_count(),
                     device_kind=jax.devices()[0].device_kind, peak_flops_per_s=peak,
                     peak_source=source, mfu=row["achieved_flops_per_s"] / peak)
          rows.append(row)
          _print_row(row)
  return rows


def suite_batch_sweep(batches, steps_per_call=(1,), **kw) -> list[dict]:
  """The peer-matched steps over a batch sweep: examples/s per row shows a falling curve."""
  rows = suite_peers(batches, steps_per_call, **kw)
  for row in rows:
    row["examples_per_s"] = row["steps_per_s"] * row["batch"]
  return rows


SUITES = ("peers", "registry", "pipeline", "flops", "eval", "batch_sweep", "accelerator")


def define_flags(f: flags.FlagValues) -> None:
  d = flags
  d.DEFINE_list("suite", ["peers", "pipeline", "flops"], f"Suites to run: {', '.join(SUITES)}.",
                flag_values=f)
  d.DEFINE_list("batches", None, "Global batch sizes (default: 64,128; accelerator: "
                "64,256,1024; smoke: 16).", flag_values=f)
  d.DEFINE_integer("width", None, "DCGAN width (registry: 32, accelerator: the paper's 64).",
                   flag_values=f)
  d.DEFINE_string("only", "", "peers / batch_sweep: only the names containing this.",
                  flag_values=f)
  d.DEFINE_string("skip", "", "peers / batch_sweep: skip the names containing this.",
                  flag_values=f)
  d.DEFINE_list("variants", None, "registry / accelerator: these variants only.", flag_values=f)
  d.DEFINE_list("dtypes", ["float32", "bfloat16"], "accelerator: compute dtypes.",
                flag_values=f)
  d.DEFINE_float("peak_flops", 0.0, "accelerator: peak FLOP/s of one device (default: the "
                 "data-sheet table, or the measured matmul rate on CPU).", flag_values=f)
  d.DEFINE_integer("eval_images", 10000, "eval: images.", flag_values=f)
  d.DEFINE_integer("eval_k", 5000, "eval: importance samples K.", flag_values=f)
  d.DEFINE_integer("eval_batch", 100, "eval: images per call.", flag_values=f)
  d.DEFINE_list("steps_per_call", None, "Steps per compiled call (lax.scan), e.g. 1,10 "
                "(default 1; accelerator: 1,10).", flag_values=f)
  d.DEFINE_bool("quick", False, "Short timing windows.", flag_values=f)
  d.DEFINE_bool("smoke", False, "Seconds: short windows, width 4, batch 16, one variant per "
                "family in the accelerator suite (plumbing only, the numbers mean nothing).",
                flag_values=f)
  d.DEFINE_string("out", "", "JSON file of the rows and the environment.", flag_values=f)


def main(argv=None) -> int:
  from experiments import common  # pylint: disable=g-import-not-at-top
  try:
    f = common.parse_flags(argv, define_flags)
  except common.UsageError as err:
    print(f"error: {err}", file=sys.stderr)
    return 2
  unknown = [s for s in f.suite if s not in SUITES]
  if unknown:
    print(f"error: unknown --suite {unknown}; choose from {', '.join(SUITES)}", file=sys.stderr)
    return 2
  quick = f.quick or f.smoke
  kw = dict(warmup_steps=1, warmup_s=0.1, window_s=0.2, windows=2) if quick else {}
  try:
    batches = [int(b) for b in f.batches] if f.batches else None
    steps_per_call = [int(n) for n in f.steps_per_call] if f.steps_per_call else None
  except ValueError as err:
    print(f"error: --batches / --steps_per_call take integers ({err})", file=sys.stderr)
    return 2
  for name in list(PEER_MATCHED):
    if (f.only and f.only not in name) or (f.skip and f.skip in name):
      PEER_MATCHED.pop(name)
  rows = []
  for suite in f.suite:
    if suite in ("peers", "batch_sweep"):
      default = [32, 64, 128, 256, 512, 1024] if suite == "batch_sweep" else [64, 128]
      run = suite_batch_sweep if suite == "batch_sweep" else suite_peers
      rows += run(batches or ([16] if f.smoke else default), steps_per_call or [1], **kw)
    elif suite == "registry":
      rows += suite_registry(batches or [64, 128], f.width or (4 if f.smoke else 32),
                             names=f.variants, **kw)
    elif suite == "pipeline":
      rows += suite_pipeline(batches or [64, 128])
    elif suite == "flops":
      rows += suite_flops()
    elif suite == "eval":
      rows += suite_eval(f.eval_images, f.eval_k, f.eval_batch, **kw)
    elif suite == "accelerator":
      names = f.variants or (["gan", "vae", "aa(iwae)"] if f.smoke else None)
      rows += suite_accelerator(batches or ([16] if f.smoke else [64, 256, 1024]),
                                steps_per_call or ([1, 2] if f.smoke else [1, 10]), f.dtypes,
                                f.width or (4 if f.smoke else 64), f.peak_flops, names, **kw)
  if f.out:
    path = pathlib.Path(f.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    settings = {name: f[name].value for name in f}
    settings["out"] = report.repo_relative(path)  # no folder of this machine in the results
    path.write_text(json.dumps({"environment": environment(), "args": settings, "rows": rows},
                               indent=1, default=str))
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
