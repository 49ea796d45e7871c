"""Seconds per step of the pythae-matched conv VAE (17.2M parameters), three timed steps.

  python -m benchmarks.conv_vae_step_time [--batch=64]

Used for RESULTS.md: in this session the standard protocol's window loop queued hundreds
of these multi-second steps asynchronously before syncing (fixed since in bench.measure),
so this row was timed here instead; prints one JSON line.
"""
import argparse
import json
import time

import jax
import numpy as np

from unigen_jax import parallel
from unigen_jax import train_step

parser = argparse.ArgumentParser()
parser.add_argument("--batch", type=int, default=64)
args = parser.parse_args()
model = train_step.build("vae", architecture="conv", latent_dim=16, learning_rate=1e-3)
mesh = parallel.data_mesh()
state = model.init(jax.random.key(0), mesh=mesh)
step = train_step.make_train_step(model, mesh=mesh)
batch = parallel.shard_batch(
    {"image": np.random.default_rng(0).uniform(size=(args.batch, 28, 28, 1)).astype(np.float32)}, mesh)
key = jax.random.key(1)
cost = step.lower(state, batch, key).compile().cost_analysis()
cost = cost[0] if isinstance(cost, (list, tuple)) else cost
t0 = time.perf_counter()
state, metrics = step(state, batch, key)
jax.block_until_ready(metrics)
first = time.perf_counter() - t0
times = []
for _ in range(3):
  t0 = time.perf_counter()
  state, metrics = step(state, batch, key)
  jax.block_until_ready(metrics)
  times.append(time.perf_counter() - t0)
print(json.dumps({"name": "unigen_vae_conv_pythae", "batch": args.batch, "first_step_s": first,
                  "step_s": times, "steps_per_s": 1 / float(np.median(times)),
                  "flops_per_step": float(cost["flops"])}))
