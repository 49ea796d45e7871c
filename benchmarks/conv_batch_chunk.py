"""Convolutions over chunks of the batch (``model.conv_batch_chunk``): layers and whole steps.

  python -m benchmarks.conv_batch_chunk > benchmarks/RESULTS_conv_batch_chunk.md   # ~20 min

XLA:CPU's convolutions cost more per example as the batch grows
(``RESULTS_layer_scaling.md``). Table 1 times forward + backward (input and kernel gradients
of a sum of squares) of three of the library's CPU conv layers at batch 64 and 256: over the
whole batch, and as unrolled calls over chunks of 64 examples
(``kernels.over_batch_chunks``, the same function). Table 2 times the whole training step of
the two peer-matched conv configurations of ``bench.PEER_MATCHED`` for several chunk sizes
(examples/s, and the compile time, which grows with the number of chunks): how the chunk
sizes of the benchmark's ``_convchunk`` rows were chosen.
"""

import statistics
import sys
import time

import jax
import jax.numpy as jnp

from benchmarks import bench, report
from unigen_jax import train_step
from unigen_jax.models import kernels

LAYERS = {
    "paper DCGAN G transposed conv 7->14 (128->64)":
        ((7, 7, 128), (4, 4, 128, 64),
         lambda x, k: kernels.subpixel_conv_transpose(x, k, ((2, 2), (2, 2)))),
    "PyTorch-GAN G upsample+conv 16->32 (128->64)":
        ((16, 16, 128), (3, 3, 128, 64), kernels.upsample_conv),
    "pythae conv VAE decoder 7->14 (512->256)":
        ((7, 7, 512), (3, 3, 512, 256),
         lambda x, k: kernels.subpixel_conv_transpose(x, k, ((1, 2), (1, 2)))),
}
# {configuration: {batch: chunk sizes}}; 0 = whole-batch convolutions.
STEPS = {"unigen_gan_dcgan32_pytorchgan": {64: (0, 8, 16, 32), 256: (0, 16, 32, 64, 128),
                                           512: (0, 32, 64, 128, 256)},
         "unigen_vae_conv_pythae": {64: (0, 16, 32), 256: (0, 16, 32, 64, 128),
                                    512: (0, 64, 128, 256)}}


def _time(fn, *args, calls=3) -> float:
  jax.block_until_ready(fn(*args))
  times = []
  for _ in range(calls):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def layer_rows():
  rows = []
  for name, (in_shape, k_shape, conv) in LAYERS.items():
    kernel = jax.random.normal(jax.random.key(1), k_shape) * .05
    for batch in (64, 256):
      x = jax.random.normal(jax.random.key(0), (batch,) + in_shape)
      times = []
      for chunk in (0, 64):
        loss = lambda x, k, c=chunk, f=conv: jnp.sum(  # noqa: E731
            kernels.over_batch_chunks(lambda v: f(v, k), x, c) ** 2)
        times.append(_time(jax.jit(jax.grad(loss, argnums=(0, 1))), x, kernel))
      rows.append((name, batch, *times))
  return rows


def step_rows():
  quick = dict(warmup_steps=2, warmup_s=1.0, window_s=2.0, windows=3)
  rows = []
  for name, sweep in STEPS.items():
    variant, cfg = bench.PEER_MATCHED[name]
    for batch, chunks in sweep.items():
      for chunk in chunks:
        r = bench.bench_model(name, train_step.build(variant, **cfg, conv_batch_chunk=chunk),
                              batch, **quick)
        rows.append((name, batch, chunk, r["steps_per_s"] * batch, r["compile_s"]))
        print(f"# {rows[-1]}", flush=True, file=sys.stderr)  # progress
  return rows


def main() -> None:
  env = bench.environment()
  layers = layer_rows()
  steps = step_rows()
  print("# Convolutions over chunks of the batch (`model.conv_batch_chunk`)\n")
  print(f"Produced by `python -m benchmarks.conv_batch_chunk` on an otherwise idle machine. "
        f"{report.machine(env)}; jax {env['jax']}; measured {env['time']}.\n")
  print("## 1. One layer, forward + backward (ms, median of 3 calls)\n")
  print("| layer | batch | whole batch | chunks of 64 | per-example cost vs batch 64, "
        "whole / chunked |")
  print("|---|---|---|---|---|")
  base = {}
  for name, batch, whole, chunked in layers:
    base.setdefault(name, (whole, chunked))
    growth = (f"{whole / base[name][0] / (batch / 64):.2f}x / "
              f"{chunked / base[name][1] / (batch / 64):.2f}x")
    print(f"| {name} | {batch} | {whole * 1e3:.1f} | {chunked * 1e3:.1f} | {growth} |")
  print("\n## 2. The whole training step (examples/s; compile time of the step)\n")
  print("| configuration | batch | conv_batch_chunk | examples/s | vs 0 | compile (s) |")
  print("|---|---|---|---|---|---|")
  plain = {}
  for name, batch, chunk, rate, compile_s in steps:
    if chunk == 0:
      plain[(name, batch)] = rate
    print(f"| {name} | {batch} | {chunk or '0 (whole batch)'} | {rate:,.1f} | "
          f"{rate / plain[(name, batch)]:.2f}x | {compile_s:.1f} |")


if __name__ == "__main__":
  main()
