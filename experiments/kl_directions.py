"""The two KL directions on toy data (paper Sec. 3.4 and Fig. 2), with the library's losses.

  python -m experiments.kl_directions [--out=results/kl_directions] [--preset=cpu|smoke]

(a) Mode missing vs mode covering. Data: an equal mixture of N(-2, 0.25^2) and
N(+2, 0.25^2). Both models are *unimodal* linear-Gaussian generators x = a z + b
(+ noise s for the VAE), z ~ N(0, 1), so neither can fit two modes:

* "GAN": generator trained with ``losses.generator_loss_nonsaturating`` against an MLP
  discriminator trained with ``losses.discriminator_loss``: the sleep-phase direction,
  KL(p_theta || q^r) - JSD (Lemma 1). It concentrates on the modes it covers.
* "VAE": decoder N(a z + b, s^2) and Gaussian encoder trained with
  ``losses.gaussian_negative_elbo``: the wake-phase direction, KL(p_data || p_theta)
  up to the encoder gap (Lemma 2). It spreads over both modes.

(b) Lemma 1 picture. On a 1-D grid, a softmax generator p_theta0, data p_data and a
partly trained discriminator D. q^r(x|y=0) ∝ D(x) p_theta0(x) lies between them (the
"mixture posterior"); one gradient step on ``losses.generator_loss_nonsaturating``
moves p_theta towards it (KL(p_theta1 || q^r) < KL(p_theta0 || q^r)).

Writes ``<out>/kl_directions.png`` and ``<out>/kl_directions.json`` (mode masses,
KLs); the numbers in results/kl_directions.md come from this command.
"""

import json
import pathlib
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from experiments import common
from unigen_jax import losses

MODES, MODE_STD = (-2.0, 2.0), 0.25


def sample_data(key, n):
  k1, k2 = jax.random.split(key)
  centres = jnp.where(jax.random.bernoulli(k1, 0.5, (n,)), MODES[1], MODES[0])
  return centres + MODE_STD * jax.random.normal(k2, (n,))


class Discriminator(nn.Module):
  @nn.compact
  def __call__(self, x):
    h = x[:, None]
    for _ in range(2):
      h = nn.leaky_relu(nn.Dense(64)(h), 0.2)
    return nn.Dense(1)(h)[:, 0]


def train_gan(seed, steps, batch=256):
  disc = Discriminator()
  key = jax.random.key(seed)
  gen = {"a": jnp.array(1.0), "b": jnp.array(0.3)}  # starts between the modes, slightly right
  dparams = disc.init(key, jnp.zeros((2,)))
  gopt, dopt = optax.adam(2e-3, b1=0.5), optax.adam(2e-3, b1=0.5)
  gstate, dstate = gopt.init(gen), dopt.init(dparams)

  @jax.jit
  def step(gen, dparams, gstate, dstate, key):
    kd, kz1, kz2 = jax.random.split(key, 3)
    real = sample_data(kd, batch)

    def d_loss(dp):
      fake = gen["a"] * jax.random.normal(kz1, (batch,)) + gen["b"]
      return losses.discriminator_loss(disc.apply(dp, real), disc.apply(dp, fake))
    dgrad = jax.grad(d_loss)(dparams)
    upd, dstate = dopt.update(dgrad, dstate)
    dparams = optax.apply_updates(dparams, upd)

    def g_loss(g):
      fake = g["a"] * jax.random.normal(kz2, (batch,)) + g["b"]
      return losses.generator_loss_nonsaturating(disc.apply(dparams, fake))
    ggrad = jax.grad(g_loss)(gen)
    upd, gstate = gopt.update(ggrad, gstate)
    return optax.apply_updates(gen, upd), dparams, gstate, dstate

  for i in range(steps):
    gen, dparams, gstate, dstate = step(gen, dparams, gstate, dstate, jax.random.fold_in(key, i))
  return {"mean": float(gen["b"]), "std": float(jnp.abs(gen["a"]))}


def train_vae(seed, steps, batch=256):
  key = jax.random.key(seed)
  params = {"a": jnp.array(1.0), "b": jnp.array(0.3), "log_s2": jnp.array(0.0),
            "c": jnp.array(0.1), "d": jnp.array(0.0), "log_e2": jnp.array(0.0)}
  opt = optax.adam(1e-2)
  state = opt.init(params)

  @jax.jit
  def step(params, state, key):
    kd, kz = jax.random.split(key)
    x = sample_data(kd, batch)

    def loss(p):
      mean = (p["c"] * x + p["d"])[:, None]
      log_var = jnp.broadcast_to(p["log_e2"], mean.shape)
      z = mean + jnp.exp(0.5 * log_var) * jax.random.normal(kz, mean.shape)
      return losses.gaussian_negative_elbo(x[:, None], p["a"] * z + p["b"], p["log_s2"],
                                           mean, log_var)
    grads = jax.grad(loss)(params)
    upd, state = opt.update(grads, state)
    return optax.apply_updates(params, upd), state

  for i in range(steps):
    params, state = step(params, state, jax.random.fold_in(key, i))
  std = float(jnp.sqrt(params["a"] ** 2 + jnp.exp(params["log_s2"])))  # marginal of x
  return {"mean": float(params["b"]), "std": std}


def mode_masses(mean, std):
  """Mass of N(mean, std^2) within 3 data-standard-deviations of each mode."""
  from math import erf, sqrt
  cdf = lambda v: 0.5 * (1 + erf((v - mean) / (std * sqrt(2))))  # noqa: E731
  return [cdf(m + 3 * MODE_STD) - cdf(m - 3 * MODE_STD) for m in MODES]


def lemma1_picture():
  grid = np.linspace(-5, 5, 201)
  p_data = np.exp(-0.5 * ((grid - 2.0) / 0.6) ** 2)
  p_data /= p_data.sum()
  theta0 = jnp.asarray(-0.5 * ((grid + 1.5) / 0.8) ** 2)
  p0 = np.asarray(jax.nn.softmax(theta0))
  # A partly trained discriminator: half the optimal logit log(p_data / p_g).
  disc_logits = 0.5 * (np.log(p_data + 1e-30) - np.log(p0 + 1e-30))
  disc_logits = np.clip(disc_logits, -30, 30)
  d = 1 / (1 + np.exp(-disc_logits))
  qr = d * p0 / np.sum(d * p0)  # q^r(x|y=0) ∝ q^r(y=0|x) p_theta0(x)

  def objective(theta):  # exact expectation of the non-saturating generator loss
    return jnp.sum(jax.nn.softmax(theta) * losses.generator_loss_nonsaturating(
        jnp.asarray(disc_logits), reduction="none"))
  theta1 = theta0 - 30.0 * jax.grad(objective)(theta0)
  p1 = np.asarray(jax.nn.softmax(theta1))
  kl = lambda p, q: float(np.sum(p * (np.log(p + 1e-300) - np.log(q + 1e-300))))  # noqa: E731
  return grid, p_data, p0, qr, p1, {"kl_p0_qr": kl(p0, qr), "kl_p1_qr": kl(p1, qr),
                                    "mean_p0": float(grid @ p0), "mean_p1": float(grid @ p1),
                                    "mean_qr": float(grid @ qr), "mean_data": float(grid @ p_data)}


def define_flags(f):
  common.flags.DEFINE_string("out", "results/kl_directions", "Output folder.", flag_values=f)
  common.flags.DEFINE_enum("preset", "cpu", ["smoke", "cpu"], "Budget.", flag_values=f)
  common.flags.DEFINE_integer("seeds", None, "Seeds per model (default: the preset's).",
                              flag_values=f)


def main(argv=None) -> int:
  args = common.parse_flags(argv, define_flags)
  steps = {"smoke": 50, "cpu": 3000}[args.preset]
  seeds = args.seeds or {"smoke": 1, "cpu": 5}[args.preset]
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  runs = {"gan": [], "vae": []}
  for seed in range(seeds):
    for name, fn in (("gan", train_gan), ("vae", train_vae)):
      fit = fn(seed, steps)
      fit["mode_mass"] = mode_masses(fit["mean"], fit["std"])
      runs[name].append(fit)
      print(json.dumps({"model": name, "seed": seed, **fit}), file=sys.stderr, flush=True)
  grid, p_data, p0, qr, p1, lemma = lemma1_picture()
  result = {"preset": args.preset, "steps": steps, "seeds": seeds, "runs": runs, "lemma1": lemma}
  (out / "kl_directions.json").write_text(json.dumps(result, indent=2))
  _plot(out / "kl_directions.png", runs, (grid, p_data, p0, qr, p1, lemma))
  print(json.dumps(result["lemma1"]))
  return 0


def _plot(path, runs, lemma):
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, axes = plt.subplots(1, 2, figsize=(12, 4))
  xs = np.linspace(-4, 4, 400)
  data = sum(0.5 * np.exp(-0.5 * ((xs - m) / MODE_STD) ** 2) / (MODE_STD * np.sqrt(2 * np.pi))
             for m in MODES)
  ax = axes[0]
  ax.fill_between(xs, data, color="0.85", label="data p(x)")
  for name, colour in (("gan", "tab:red"), ("vae", "tab:blue")):
    for i, fit in enumerate(runs[name]):
      dens = np.exp(-0.5 * ((xs - fit["mean"]) / fit["std"]) ** 2) / (fit["std"] * np.sqrt(2 * np.pi))
      ax.plot(xs, dens, color=colour, alpha=0.7,
              label=(f"{name.upper()} objective ({'KL(p_theta||q^r) - JSD' if name == 'gan' else 'ELBO: KL(p_data||p_theta)'})"
                     if i == 0 else None))
  ax.set_title("(a) unimodal models: GAN objective misses a mode, VAE objective covers both",
               fontsize=9)
  ax.legend(fontsize=8)
  grid, p_data, p0, qr, p1, stats = lemma
  ax = axes[1]
  ax.plot(grid, p0, label="p_theta0(x|y=0) (generator)", color="tab:red")
  ax.plot(grid, p_data, label="p(x|y=1) (data)", color="0.4")
  ax.plot(grid, qr, "--", label="q^r(x|y=0) ∝ D(x) p_theta0(x)", color="tab:green")
  ax.plot(grid, p1, label="p_theta1 after one generator step", color="tab:purple")
  ax.set_title(f"(b) Lemma 1: KL(p_theta||q^r) {stats['kl_p0_qr']:.3f} -> {stats['kl_p1_qr']:.3f}",
               fontsize=9)
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


if __name__ == "__main__":
  common.run_main(main)
