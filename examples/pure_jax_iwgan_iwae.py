r"""unigen_jax's losses in a foreign, pure-JAX training loop: no Flax, no unigen_jax models.

  python examples/pure_jax_iwgan_iwae.py [--steps=3000]

Two small models, each trained with optax on a toy data set whose truth is known:

* **IWGAN** (Eq. 16) on a ring of 8 Gaussians in 2-D: the generator minimises
  ``losses.generator_loss_importance_weighted``, the discriminator
  ``losses.discriminator_loss`` plus ``losses.r1_penalty`` (Mescheder et al.'s R1).
  Quality: the number of the 8 modes the samples cover and the share of samples near a
  mode. The same run without R1 is printed beside it.
* **IWAE** (K=10) on 16-pixel binary vectors from a mixture of 4 Bernoulli prototypes,
  whose exact log-likelihood is a sum over the 4 components: the model minimises
  ``losses.iwae_negative_bound`` of ``losses.iwae_log_weights``. Quality: the gap between
  the importance-sampled estimate (K=1000) on held-out data and the true log-likelihood.

The networks are plain dicts of arrays and ``jnp`` code: only the losses come from the
library (``import unigen_jax.losses`` pulls in JAX and nothing heavier).
``tests/test_examples.py`` runs this file and asserts the figures it prints.
"""

from __future__ import annotations

import argparse
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax

from unigen_jax import losses


# --- a pure-JAX MLP ------------------------------------------------------------------

def mlp_init(key, sizes):
  params = []
  for n_in, n_out in zip(sizes[:-1], sizes[1:]):
    key, sub = jax.random.split(key)
    params.append({"w": jax.random.normal(sub, (n_in, n_out)) * math.sqrt(2.0 / n_in),
                   "b": jnp.zeros(n_out)})
  return params


def mlp(params, x, activation=jax.nn.leaky_relu):
  for layer in params[:-1]:
    x = activation(x @ layer["w"] + layer["b"])
  return x @ params[-1]["w"] + params[-1]["b"]


# --- IWGAN on a ring of 8 Gaussians ---------------------------------------------------

CENTRES = np.array([[2 * math.cos(2 * math.pi * i / 8), 2 * math.sin(2 * math.pi * i / 8)]
                    for i in range(8)], np.float32)
MODE_STD = 0.05


def ring_batch(key, n):
  k1, k2 = jax.random.split(key)
  centres = jnp.asarray(CENTRES)[jax.random.randint(k1, (n,), 0, 8)]
  return centres + MODE_STD * jax.random.normal(k2, (n, 2))


def mode_coverage(samples: np.ndarray) -> tuple[int, float]:
  """(modes holding >= 1% of the samples within 4 std, share of samples within 4 std of a mode)."""
  distance = np.linalg.norm(samples[:, None, :] - CENTRES[None], axis=-1)
  near = distance.min(1) < 4 * MODE_STD
  nearest = distance.argmin(1)
  counts = np.bincount(nearest[near], minlength=8)
  return int(np.sum(counts >= 0.01 * len(samples))), float(near.mean())


def train_iwgan(steps: int, seed: int = 0, r1_weight: float = 1.0, batch: int = 256):
  key = jax.random.key(seed)
  k_g, k_d, key = jax.random.split(key, 3)
  params = {"g": mlp_init(k_g, [8, 128, 128, 2]), "d": mlp_init(k_d, [2, 128, 128, 1])}
  opt = {name: optax.adam(1e-3, b1=0.5) for name in params}
  opt_state = {name: opt[name].init(params[name]) for name in params}

  def generate(g, z):
    return mlp(g, z, jax.nn.relu)

  def d_loss(d, g, real, z):
    fake = jax.lax.stop_gradient(generate(g, z))
    logits = lambda x: mlp(d, x)[..., 0]  # noqa: E731
    loss = losses.discriminator_loss(logits(real), logits(fake))
    return loss + r1_weight * losses.r1_penalty(logits, real)  # gamma/2 * R1

  def g_loss(g, d, z):
    return losses.generator_loss_importance_weighted(mlp(d, generate(g, z))[..., 0])

  @jax.jit
  def step(params, opt_state, key):
    k_real, k_z1, k_z2 = jax.random.split(key, 3)
    real = ring_batch(k_real, batch)
    grads = jax.grad(d_loss)(params["d"], params["g"], real, jax.random.normal(k_z1, (batch, 8)))
    updates, opt_state["d"] = opt["d"].update(grads, opt_state["d"])
    params["d"] = optax.apply_updates(params["d"], updates)
    grads = jax.grad(g_loss)(params["g"], params["d"], jax.random.normal(k_z2, (batch, 8)))
    updates, opt_state["g"] = opt["g"].update(grads, opt_state["g"])
    params["g"] = optax.apply_updates(params["g"], updates)
    return params, opt_state

  for i in range(steps):
    params, opt_state = step(params, opt_state, jax.random.fold_in(key, i))
  samples = np.asarray(generate(params["g"], jax.random.normal(jax.random.key(99), (4000, 8))))
  modes, quality = mode_coverage(samples)
  return {"modes_covered": modes, "high_quality_share": quality}


# --- IWAE on a mixture of Bernoulli prototypes ------------------------------------------

def bernoulli_mixture(seed: int = 0, pixels: int = 16, components: int = 4):
  rng = np.random.default_rng(seed)
  prototypes = np.where(rng.random((components, pixels)) < 0.5, 0.9, 0.1).astype(np.float32)
  return prototypes


def sample_mixture(prototypes, n, seed):
  rng = np.random.default_rng(seed)
  which = rng.integers(0, len(prototypes), n)
  return (rng.random((n, prototypes.shape[1])) < prototypes[which]).astype(np.float32)


def true_log_likelihood(x, prototypes):
  log_p = x @ np.log(prototypes).T + (1 - x) @ np.log(1 - prototypes).T  # [N, C]
  return np.logaddexp.reduce(log_p, axis=1) - math.log(len(prototypes))


def train_iwae(steps: int, seed: int = 0, k: int = 10, latent: int = 2, batch: int = 128):
  prototypes = bernoulli_mixture()
  train_x = jnp.asarray(sample_mixture(prototypes, 20000, seed=1))
  test_x = sample_mixture(prototypes, 2000, seed=2)
  pixels = prototypes.shape[1]
  key = jax.random.key(seed)
  k_e, k_d, key = jax.random.split(key, 3)
  params = {"enc": mlp_init(k_e, [pixels, 64, 2 * latent]), "dec": mlp_init(k_d, [latent, 64, pixels])}
  optimizer = optax.adam(3e-3)
  opt_state = optimizer.init(params)

  def log_weights(params, x, key, num):
    mean, log_var = jnp.split(mlp(params["enc"], x, jax.nn.tanh), 2, axis=-1)
    eps = jax.random.normal(key, (num,) + mean.shape)
    z = mean + jnp.exp(0.5 * log_var) * eps  # [K, B, D]
    logits = mlp(params["dec"], z, jax.nn.tanh)  # [K, B, pixels]
    ll = jnp.sum(x * jax.nn.log_sigmoid(logits) + (1 - x) * jax.nn.log_sigmoid(-logits), -1)
    return losses.iwae_log_weights(ll, z, mean, log_var)

  @jax.jit
  def step(params, opt_state, key):
    k_batch, k_z = jax.random.split(key)
    x = train_x[jax.random.randint(k_batch, (batch,), 0, train_x.shape[0])]
    loss, grads = jax.value_and_grad(
        lambda p: losses.iwae_negative_bound(log_weights(p, x, k_z, k)))(params)
    updates, opt_state = optimizer.update(grads, opt_state)
    return optax.apply_updates(params, updates), opt_state, loss

  for i in range(steps):
    params, opt_state, _ = step(params, opt_state, jax.random.fold_in(key, i))
  estimate = float(-losses.iwae_negative_bound(
      log_weights(params, jnp.asarray(test_x), jax.random.key(7), 1000)))
  elbo = float(-losses.iwae_negative_bound(log_weights(params, jnp.asarray(test_x),
                                                       jax.random.key(8), 1)))
  truth = float(np.mean(true_log_likelihood(test_x, prototypes)))
  return {"test_log_likelihood_k1000": estimate, "test_elbo": elbo, "true_log_likelihood": truth,
          "gap_nats": truth - estimate}


def main(argv=None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--steps", type=int, default=3000)
  parser.add_argument("--no_comparison", action="store_true",
                      help="skip the IWGAN run without R1")
  args = parser.parse_args(argv)
  result = {"iwgan_with_r1": train_iwgan(args.steps)}
  if not args.no_comparison:
    result["iwgan_without_r1"] = train_iwgan(args.steps, r1_weight=0.0)
  result["iwae_k10"] = train_iwae(args.steps)
  print(json.dumps(result, indent=2))
  return result


if __name__ == "__main__":
  main()
