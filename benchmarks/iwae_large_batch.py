"""Why the IWAE K=5 MLP step slows per example beyond batch 256: its pieces, timed.

  python -m benchmarks.iwae_large_batch > benchmarks/RESULTS_iwae_large_batch.md

The step of ``unigen_iwae_mlp_k5_pythae`` (784-512-16, K=5) spends its time in (a) the
decoder's three big matmuls over K x B rows and (b) the elementwise Bernoulli log-likelihood
and its gradient over [K, B, 784] logits. Each is timed alone (forward + backward, jitted, a
median of 2-s windows) at B = 256 and 1024, against the same matmuls' arithmetic. Also: the
likelihood in the flat [K, B, 784] layout with the explicit softplus (a numerics change) and
under ``jax.checkpoint`` (recomputed in the backward pass; bitwise the same).

A second table times the whole gradient of the IWAE bound (encoder, K samples, decoder,
likelihood, log-sum-exp; no optimizer), written out here with plain matrices, at B=1024:
vectorised as the library's step is, and with gradient accumulation over cache-sized chunks of
the batch in a ``lax.scan`` (the same mathematics for an objective that is a mean over
examples and a network without batch norm; a different summation order, so not bitwise).
"""

import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import report
from benchmarks.bench import environment
from unigen_jax import distributions

K, D, H, L = 5, 784, 512, 16


def _time(fn, *args, windows=3, window_s=2.0) -> float:
  fn = jax.jit(fn)
  jax.block_until_ready(fn(*args))
  rates = []
  for _ in range(windows):
    start, n = time.perf_counter(), 0
    while time.perf_counter() - start < window_s:
      jax.block_until_ready(fn(*args))
      n += 1
    rates.append((time.perf_counter() - start) / n)
  return statistics.median(rates)


def pieces(batch: int) -> dict:
  rng = np.random.default_rng(0)
  x = jnp.asarray((rng.random((batch, 28, 28, 1)) > 0.5).astype(np.float32))
  w2 = jnp.asarray(rng.normal(size=(H, D)).astype(np.float32) * .05)
  h = jnp.asarray(np.maximum(rng.normal(size=(K * batch, H)), 0).astype(np.float32))
  g = jnp.asarray(rng.normal(size=(K * batch, D)).astype(np.float32))
  logits = jnp.asarray(rng.normal(size=(K * batch, D)).astype(np.float32))

  def likelihood(l, layout="image", fast=False):
    if layout == "image":
      l = l.reshape((K, batch, 28, 28, 1))
      lp = distributions.bernoulli_log_prob(jnp.broadcast_to(x, l.shape), l, event_ndims=3)
    else:
      l = l.reshape((K, batch, D))
      xf = x.reshape((batch, D))
      lp = distributions.bernoulli_log_prob(jnp.broadcast_to(xf, l.shape), l, event_ndims=1,
                                            fast=fast)
    return -jax.nn.logsumexp(lp, axis=0).sum()

  flops = 2 * K * batch * H * D
  rows = {
      "decoder output matmul h @ W (forward)": (_time(lambda h, w: h @ w, h, w2), flops),
      "its weight gradient h^T @ g": (_time(lambda h, g: h.T @ g, h, g), flops),
      "its input gradient g @ W^T": (_time(lambda g, w: g @ w.T, g, w2), flops),
      "likelihood + log-sum-exp, forward + backward (the step's form)":
          (_time(jax.grad(likelihood), logits), None),
      "same under jax.checkpoint (bitwise the same)":
          (_time(jax.grad(jax.checkpoint(likelihood)), logits), None),
      "same, flat [K, B, 784] + explicit softplus (changes rounding)":
          (_time(jax.grad(lambda l: likelihood(l, "flat", True)), logits), None),
  }
  return rows


def _iwae_loss(p, x, eps, flat):
  """Negative K-sample bound of MLP 784-512-16 (ReLU), as the library's IWAE step computes it."""
  h = jax.nn.relu(x.reshape(x.shape[0], -1) @ p["e1"])
  out = h @ p["e2"]
  mean, log_var = out[:, :L], out[:, L:]
  z = mean + jnp.exp(0.5 * log_var) * eps  # [K, B, L]
  logits = jax.nn.relu(z.reshape(-1, L) @ p["d1"]) @ p["d2"]
  batch = x.shape[0]
  if flat:
    l = logits.reshape(K, batch, D)
    xf = jnp.broadcast_to(x.reshape(batch, D), l.shape)
    log_lik = distributions.bernoulli_log_prob(xf, l, event_ndims=1, fast=True)
  else:
    l = logits.reshape((K,) + x.shape)
    log_lik = distributions.bernoulli_log_prob(jnp.broadcast_to(x, l.shape), l, event_ndims=3)
  log_prior = -0.5 * jnp.sum(z ** 2, -1)
  log_post = -0.5 * jnp.sum(log_var + (z - mean) ** 2 / jnp.exp(log_var), -1)
  return -jnp.mean(jax.nn.logsumexp(log_lik + log_prior - log_post, axis=0))


def _accumulated_grad(p, x, eps, chunk, flat):
  n = x.shape[0] // chunk
  xs = x.reshape((n, chunk) + x.shape[1:])
  es = eps.reshape(K, n, chunk, L).transpose(1, 0, 2, 3)

  def body(total, inputs):
    return jax.tree.map(jnp.add, total, jax.grad(_iwae_loss)(p, *inputs, flat)), None

  total, _ = jax.lax.scan(body, jax.tree.map(jnp.zeros_like, p), (xs, es))
  return jax.tree.map(lambda g: g / n, total)


def whole_gradient(batch: int) -> dict:
  rng = np.random.default_rng(0)
  normal = lambda *shape: jnp.asarray(  # noqa: E731
      rng.normal(size=shape).astype(np.float32) / np.sqrt(shape[0]))
  p = dict(e1=normal(D, H), e2=normal(H, 2 * L), d1=normal(L, H), d2=normal(H, D))
  x = jnp.asarray((rng.random((batch, 28, 28, 1)) > 0.5).astype(np.float32))
  eps = jnp.asarray(rng.normal(size=(K, batch, L)).astype(np.float32))
  rows = {}
  for flat, form in ((False, "the step's likelihood"), (True, "flat + explicit softplus")):
    rows[f"vectorised, {form}"] = _time(lambda p, f=flat: jax.grad(_iwae_loss)(p, x, eps, f), p)
    rows[f"chunks of 256 in a scan, {form}"] = _time(
        lambda p, f=flat: _accumulated_grad(p, x, eps, 256, f), p)
  return rows


def main() -> None:
  env = environment()
  results = {b: pieces(b) for b in (256, 1024)}
  print("# IWAE K=5 (MLP 784-512-16) at large batches: where the time goes\n")
  print("Produced by `python -m benchmarks.iwae_large_batch` on an otherwise idle machine. "
        f"{report.machine(env)}; jax {env['jax']}; measured {env['time']}.\n")
  print("| piece | B=256 ms | B=256 ns per element or GFLOP/s | B=1024 ms | "
        "B=1024 ns per element or GFLOP/s | per-example cost 1024 vs 256 |")
  print("|---|---|---|---|---|---|")
  for name in results[256]:
    cells = []
    for b in (256, 1024):
      seconds, flops = results[b][name]
      rate = (f"{flops / seconds / 1e9:.0f} GFLOP/s" if flops
              else f"{seconds / (K * b * D) * 1e9:.2f} ns/element")
      cells += [f"{seconds * 1e3:.2f}", rate]
    growth = (results[1024][name][0] / 1024) / (results[256][name][0] / 256)
    print(f"| {name} | " + " | ".join(cells) + f" | {growth:.2f}x |")
  print("\n## The whole gradient of the bound at B=1024\n")
  print("| form | ms | examples/s |")
  print("|---|---|---|")
  for name, seconds in whole_gradient(1024).items():
    print(f"| {name} | {seconds * 1e3:.1f} | {1024 / seconds:,.0f} |")


if __name__ == "__main__":
  main()
