"""Microbenchmarks of the jitted steps, the input pipeline, FLOP utilisation and evaluation.

  python -m benchmarks.bench --suite=peers --out=benchmarks/results/peers.json
  python -m benchmarks.bench --suite=registry --batches=32,64,128,256,512 --width=32
  python -m benchmarks.bench --suite=pipeline,flops,eval

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

import argparse
import json
import pathlib
import platform
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from unigen_jax import input_pipeline
from unigen_jax import parallel
from unigen_jax import train_step
from unigen_jax import variants

WARMUP_STEPS, WARMUP_S, WINDOW_S, WINDOWS = 3, 2.0, 2.0, 5


def measure(run_step, sync, *, warmup_steps=WARMUP_STEPS, warmup_s=WARMUP_S,
            window_s=WINDOW_S, windows=WINDOWS) -> dict:
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
  sync_every_step = slowest > 0.05
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

  result = measure(run_step, sync, **measure_kwargs)
  result["steps_per_s"] *= steps_per_call  # report model steps, not calls
  result.update(name=name, variant=model.variant.name, batch=batch_size, compile_s=compile_s,
                flops_per_step=_flops(compiled) / steps_per_call,
                num_params=int(sum(model.num_params(holder["state"]).values())),
                steps_per_call=steps_per_call, **_memory_bytes(compiled))
  result["achieved_flops_per_s"] = result["flops_per_step"] * result["steps_per_s"]
  finite = all(np.isfinite(float(v)) for v in jax.device_get(holder["metrics"]).values())
  result["metrics_finite"] = finite
  return result


# Peer-matched configurations: the peers' exact layer sizes, built from library modules.
PEER_MATCHED = {
    # Flax examples/vae: 784-500-20, ReLU, Bernoulli logits, Adam 1e-3.
    "unigen_vae_mlp_flaxexample": ("vae", dict(architecture="mlp", hidden=(500,), latent_dim=20,
                                               mlp_activation="relu", learning_rate=1e-3)),
    # pythae MLP VAE / IWAE (K=5): 784-512-16.
    "unigen_vae_mlp_pythae": ("vae", dict(architecture="mlp", hidden=(512,), latent_dim=16,
                                          mlp_activation="relu", learning_rate=1e-3)),
    "unigen_iwae_mlp_k5_pythae": ("iwae", dict(architecture="mlp", hidden=(512,), latent_dim=16,
                                               mlp_activation="relu", learning_rate=1e-3,
                                               num_importance_samples=5)),
    # pythae conv MNIST VAE (17.2M parameters).
    "unigen_vae_conv_pythae": ("vae", dict(architecture="conv", latent_dim=16, learning_rate=1e-3)),
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
    # The paper's DCGAN (28x28, width 64): our GAN step, for the FLOP utilisation.
    "unigen_gan_dcgan28": ("gan", dict(width=64)),
    "unigen_iwgan_dcgan28": ("iwgan", dict(width=64)),
}


def suite_peers(batches, steps_per_call=(1,), **kw) -> list[dict]:
  rows = []
  for name, (variant, cfg) in PEER_MATCHED.items():
    for b in batches:
      for n in steps_per_call:
        rows.append(bench_model(name, train_step.build(variant, **cfg), b, steps_per_call=n,
                                **kw))
        _print_row(rows[-1])
  return rows


def suite_registry(batches, width: int, **kw) -> list[dict]:
  rows = []
  for name in variants.names():
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


def suite_flops() -> list[dict]:
  """FLOP/s of a 2048x2048 float32 matmul: the machine's practical limit for the ratios."""
  n = 2048
  a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
  b = jax.random.normal(jax.random.key(1), (n, n), jnp.float32)
  f = jax.jit(lambda x, y: x @ y)
  holder = {}
  res = measure(lambda: holder.update(c=f(a, b)), lambda: jax.block_until_ready(holder["c"]))
  row = {"name": "matmul_2048_f32", "flops_per_s": 2 * n ** 3 * res["steps_per_s"], **res}
  print(json.dumps({k: v for k, v in row.items() if k != "windows"}), flush=True)
  return [row]


def suite_eval(num_images: int, k: int, batch_size: int) -> list[dict]:
  """Importance-sampled log-likelihood (K samples) throughput, MNIST-sized, pythae MLP size."""
  from unigen_jax import evaluate  # pylint: disable=g-import-not-at-top
  model = train_step.build("vae", architecture="mlp", hidden=(512,), latent_dim=16,
                           mlp_activation="relu")
  state = model.init(jax.random.key(0))
  images = (np.random.default_rng(0).uniform(size=(num_images, 28, 28, 1)) > 0.5).astype(np.float32)
  labels = np.zeros(num_images, np.int32)
  settings = evaluate.EvalSettings(metrics=("elbo", "iwae"), dataset="random", split="-",
                                   importance_samples=k, batch_size=batch_size)
  evaluator = evaluate.Evaluator(model, settings, data=(images, labels))
  evaluator.likelihood_bounds(state, jax.random.key(0),
                              data=(images[:batch_size], labels[:batch_size]))  # compile
  t0 = time.perf_counter()
  out = evaluator.likelihood_bounds(state, jax.random.key(0))
  elapsed = time.perf_counter() - t0
  row = {"name": f"eval_iwae_k{k}_mlp_pythae", "num_images": num_images, "importance_samples": k,
         "seconds": elapsed, "images_per_s": num_images / elapsed,
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


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--suite", default="peers,pipeline,flops",
                      help="comma-separated: peers, registry, pipeline, flops, eval")
  parser.add_argument("--batches", default="64,128")
  parser.add_argument("--width", type=int, default=32, help="DCGAN width for the registry suite")
  parser.add_argument("--only", default="", help="peers suite: run only names containing this")
  parser.add_argument("--skip", default="", help="peers suite: skip names containing this")
  parser.add_argument("--eval_images", type=int, default=10000)
  parser.add_argument("--eval_k", type=int, default=5000)
  parser.add_argument("--eval_batch", type=int, default=100)
  parser.add_argument("--steps_per_call", default="1",
                      help="peers suite: comma-separated steps per compiled call (lax.scan), "
                      "e.g. 1,10 to measure the dispatch saving")
  parser.add_argument("--quick", action="store_true", help="short windows (smoke test only)")
  parser.add_argument("--out", default="")
  args = parser.parse_args(argv)
  batches = [int(b) for b in args.batches.split(",")]
  kw = dict(warmup_steps=1, warmup_s=0.1, window_s=0.2, windows=2) if args.quick else {}
  for name in list(PEER_MATCHED):
    if (args.only and args.only not in name) or (args.skip and args.skip in name):
      PEER_MATCHED.pop(name)
  rows = []
  for suite in args.suite.split(","):
    if suite == "peers":
      rows += suite_peers(batches, [int(n) for n in args.steps_per_call.split(",")], **kw)
    elif suite == "registry":
      rows += suite_registry(batches, args.width, **kw)
    elif suite == "pipeline":
      rows += suite_pipeline(batches)
    elif suite == "flops":
      rows += suite_flops()
    elif suite == "eval":
      rows += suite_eval(args.eval_images, args.eval_k, args.eval_batch)
    else:
      print(f"error: unknown suite {suite!r}", file=sys.stderr)
      return 2
  if args.out:
    path = pathlib.Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"environment": environment(), "args": vars(args), "rows": rows},
                               indent=1))
  return 0


if __name__ == "__main__":
  sys.exit(main())
