"""Run with 8 simulated CPU devices (XLA_FLAGS=--xla_force_host_platform_device_count=8).

For each variant given on the command line: the sharded-jit step and the shard_map step
must match the single-device step on the same global batch (``name:order`` picks an
update order, e.g. ``gan:generator_first``). Prints one JSON line per
(variant, mode) with the largest absolute parameter and metric differences.
"""

import json
import sys

import jax
import jax.numpy as jnp
import numpy as np

from unigen_jax import train_step


def run(variant, parallelism, batch, steps, optimizer):
  name, _, order = variant.partition(":")
  model = train_step.build(name, width=8, hidden=(32,), optimizer=optimizer,
                           update_order=order or "default")
  state = model.init(jax.random.key(0))
  step = train_step.make_train_step(model, parallelism=parallelism, donate=False)
  key = jax.random.key(42)
  for _ in range(steps):
    state, metrics = step(state, batch, key)
  return jax.device_get(state), jax.device_get(metrics)


def main():
  assert jax.device_count() == 8, jax.devices()
  rng = np.random.default_rng(0)
  batch = {"image": jnp.asarray(rng.uniform(size=(16, 28, 28, 1)), jnp.float32),
           "label": jnp.asarray(rng.integers(0, 10, 16), jnp.int32),
           # A target domain for domain adaptation (ADA and its transfers); ignored by others.
           "target_image": jnp.asarray(rng.uniform(size=(16, 28, 28, 1)), jnp.float32)}
  steps, optimizer = int(sys.argv[1]), sys.argv[2]
  for variant in sys.argv[3:]:
    ref_state, ref_metrics = run(variant, "none", batch, steps, optimizer)
    for mode in ("jit", "shard_map"):
      state, metrics = run(variant, mode, batch, steps, optimizer)
      param_diff = max(float(np.max(np.abs(a - b))) for a, b in zip(
          jax.tree.leaves(state.params), jax.tree.leaves(ref_state.params)))
      stats_diff = max([float(np.max(np.abs(a - b))) for a, b in zip(
          jax.tree.leaves(state.batch_stats), jax.tree.leaves(ref_state.batch_stats))] or [0.0])
      metric_diff = {k: abs(float(metrics[k]) - float(ref_metrics[k])) for k in ref_metrics}
      print(json.dumps({"variant": variant, "mode": mode, "optimizer": optimizer, "param_diff": param_diff,
                        "batch_stats_diff": stats_diff, "metric_diff": metric_diff}), flush=True)


if __name__ == "__main__":
  main()
