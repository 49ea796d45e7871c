r"""Mode coverage on synthetic data with known modes: base vs importance-weighted vs adversary-activated.

  python -m experiments.mode_coverage                 # results/mode_coverage.{md,json,png}
  python -m experiments.mode_coverage --smoke         # seconds (tests)

**Data.** ``--modes`` (16) binary prototype images of 8x8 pixels (each pixel a fair coin,
fixed seed; prototypes differ in ~32 pixels), mixed with geometric weights
``w_k ∝ ratio^k`` (ratio 0.75: the commonest mode holds 25% of the data, the rarest
0.35%); an example is its prototype with every pixel flipped with probability 0.05. A
training set of 20,000 examples is drawn once (fixed seed) and shared by every run.

**Models.** The library's variants with MLP networks (``architecture='mlp'``, one hidden
layer of 256), trained by its compiled step (``train_step.make_train_step``) at their
default hyperparameters (GAN family: Adam 2e-4 / 0.5, latent 100; VAE family: Adam 1e-3,
latent 20), batch 64, ``--steps`` steps: GAN vs ``iw(gan)`` (= IWGAN, Eq. 16), VAE vs
``aa(vae)`` (= AA-VAE, Eq. 17), IWAE vs ``aa(iwae)``. Both members of a pair share the
seed, hence the batch order.

**Scores** of 10,000 generated samples (grey levels in [0, 1]): each is assigned to its
nearest prototype by L1 distance; it is *on a mode* when that distance is at most 10
(the 99.9% quantile of the data's own flips is 9). A mode is *covered* when it receives at
least a tenth of its expected share ``w_k`` of the on-mode samples. Reported: modes covered,
the share of samples on a mode (quality), and the total-variation distance between the
on-mode samples' mode frequencies and the true weights (0: the weights are reproduced).
Mean ± sample std (ddof=1) over seeds; paired t-tests by seed, two-sided.
"""

from __future__ import annotations

import json
import pathlib
import time

import numpy as np

from experiments import common
from experiments import stats

PAIRS = (("gan", "iw(gan)"), ("vae", "aa(vae)"), ("iwae", "aa(iwae)"))
SIDE = 8
FLIP = 0.05
ON_MODE_L1 = 10.0


def define_flags(f):
  d = common.flags
  d.DEFINE_integer("modes", 16, "Number of prototypes (modes).", flag_values=f)
  d.DEFINE_float("ratio", 0.75, "Geometric ratio of the mode weights.", flag_values=f)
  d.DEFINE_integer("steps", 20000, "Training steps of every run.", flag_values=f)
  d.DEFINE_integer("seeds", 5, "Seeds per model.", flag_values=f)
  d.DEFINE_integer("samples", 10000, "Generated samples scored per run.", flag_values=f)
  d.DEFINE_string("out", "results/mode_coverage.md", "Table path (+ .json, .png).",
                  flag_values=f)
  d.DEFINE_bool("smoke", False, "Seconds: 2 seeds, 30 steps (plumbing only).", flag_values=f)


def prototypes(modes: int, seed: int = 0) -> np.ndarray:
  return (np.random.default_rng(seed).random((modes, SIDE * SIDE)) < 0.5).astype(np.float32)


def mode_weights(modes: int, ratio: float) -> np.ndarray:
  w = ratio ** np.arange(modes)
  return w / w.sum()


def draw(protos: np.ndarray, weights: np.ndarray, n: int, seed: int) -> np.ndarray:
  rng = np.random.default_rng(seed)
  which = rng.choice(len(protos), size=n, p=weights)
  flips = rng.random((n, protos.shape[1])) < FLIP
  return np.abs(protos[which] - flips).astype(np.float32)


def score(samples: np.ndarray, protos: np.ndarray, weights: np.ndarray) -> dict:
  """Modes covered, share on a mode, TV distance of the mode frequencies (see the docstring)."""
  flat = samples.reshape(len(samples), -1)
  distance = np.abs(flat[:, None, :] - protos[None]).sum(-1)  # [N, modes] L1
  nearest, on_mode = distance.argmin(1), distance.min(1) <= ON_MODE_L1
  counts = np.bincount(nearest[on_mode], minlength=len(protos)).astype(np.float64)
  total = counts.sum()
  freq = counts / total if total else np.zeros_like(counts)
  covered = int(np.sum(counts >= 0.1 * weights * total)) if total else 0
  return {"modes_covered": covered, "on_mode_share": float(on_mode.mean()),
          "tv_distance": float(0.5 * np.abs(freq - weights).sum()) if total else 1.0,
          "mode_frequencies": freq.round(5).tolist()}


def train_one(variant: str, seed: int, data: np.ndarray, steps: int, n_samples: int,
              protos: np.ndarray, weights: np.ndarray):
  import jax  # pylint: disable=g-import-not-at-top
  from unigen_jax import train_step  # pylint: disable=g-import-not-at-top
  model = train_step.build(variant, architecture="mlp", hidden=(256,),
                           image_shape=(SIDE, SIDE, 1))
  state = model.init(jax.random.key(seed), mesh=None)
  step = train_step.make_train_step(model, parallelism="none")
  key = jax.random.key(seed)
  rng = np.random.default_rng(seed)
  images = data.reshape(-1, SIDE, SIDE, 1)
  metrics, curve = {}, []
  sample_key = jax.random.fold_in(key, 10**6)
  for i in range(1, steps + 1):
    batch = {"image": images[rng.integers(0, len(images), 64)]}
    state, metrics = step(state, batch, key)
    if i % max(1, steps // 4) == 0 and i < steps:  # has the score settled? (same sample key)
      scored = score(np.asarray(model.sample(state, sample_key, n_samples)), protos, weights)
      curve.append({"step": i, **{k: v for k, v in scored.items() if k != "mode_frequencies"}})
  samples = np.asarray(model.sample(state, sample_key, n_samples))
  last = {k: float(v) for k, v in jax.device_get(metrics).items()}
  return samples, last, curve


def main(argv=None) -> int:
  f = common.parse_flags(argv, define_flags)
  steps, seeds, n = (30, 2, 500) if f.smoke else (f.steps, f.seeds, f.samples)
  if f.modes < 2 or not 0 < f.ratio <= 1 or steps < 1 or seeds < 1:
    raise common.UsageError("--modes >= 2, 0 < --ratio <= 1, --steps >= 1, --seeds >= 1.")
  protos, weights = prototypes(f.modes), mode_weights(f.modes, f.ratio)
  data = draw(protos, weights, 20000, seed=1)
  reference = score(draw(protos, weights, n, seed=2), protos, weights)  # held-out real data
  out = pathlib.Path(f.out)
  results, started, code = {}, time.time(), common.code_version()  # the code that trains
  for pair in PAIRS:
    for variant in pair:
      results[variant] = []
      for seed in range(seeds):
        t0 = time.time()
        samples, last, curve = train_one(variant, seed, data, steps, n, protos, weights)
        row = dict(seed=seed, **score(samples, protos, weights), final_metrics=last,
                   curve=curve, wall_s=round(time.time() - t0, 1))
        results[variant].append(row)
        print(json.dumps({"variant": variant, **{k: v for k, v in row.items()
                                                  if k not in ("mode_frequencies", "curve",
                                                               "final_metrics")}}), flush=True)
        if seed == 0:
          results[variant + "/samples"] = samples[:64].reshape(64, SIDE, SIDE).round(3).tolist()
  write(out, f, steps, seeds, n, weights, reference, results, time.time() - started, argv, code)
  return 0


def write(out, f, steps, seeds, n, weights, reference, results, wall, argv, code):
  command = "python -m experiments.mode_coverage " + " ".join(
      a for a in (argv or []) if not a.startswith("--out"))
  keys = (("modes_covered", f"modes covered (of {f.modes})", 2),
          ("on_mode_share", "share on a mode", 3), ("tv_distance", "TV distance", 3))
  lines = ["# Mode coverage on synthetic data: base vs IW vs AA"
           + (" (SMOKE: plumbing only, numbers mean nothing)" if f.smoke else ""), "",
           f"Command: `{command.strip()}`.  ",
           f"Written {common.now()}; trained and scored by code {code}; {wall / 60:.1f} min.", "",
           f"Data: {f.modes} binary 8x8 prototypes, geometric weights (ratio {f.ratio}: "
           f"{weights[0]:.1%} ... {weights[-1]:.2%}), pixel flips {FLIP}; 20,000 training "
           f"examples. {steps} steps, batch 64, MLP networks (hidden 256), {seeds} seeds per "
           f"model, {n} samples scored per run. Held-out real data scores: "
           f"{reference['modes_covered']} modes covered, share on a mode "
           f"{reference['on_mode_share']:.3f}, TV distance {reference['tv_distance']:.3f} "
           "(the ceiling).", "",
           "| model | " + " | ".join(label for _, label, _ in keys) + " |",
           "|---|" + "---|" * len(keys)]
  data = {"reference": reference, "weights": weights.tolist(), "cells": {}, "pairs": []}
  for base, other in PAIRS:
    for variant in (base, other):
      rows = results[variant]
      cells = [stats.fmt([r[k] for r in rows], d) for k, _, d in keys]
      lines.append(f"| {variant} | " + " | ".join(cells) + " |")
      data["cells"][variant] = rows
  lines += ["", "Settled? Modes covered / TV distance at 1/4, 1/2 and 3/4 of the steps "
            "(mean over seeds; the same sample key as the final score):", ""]
  for variant in (v for pair in PAIRS for v in pair):
    points = [(c["step"], c["modes_covered"], c["tv_distance"]) for c in results[variant][0]["curve"]]
    cells = []
    for i, (step_i, _, _) in enumerate(points):
      cov = np.mean([r["curve"][i]["modes_covered"] for r in results[variant]])
      tv = np.mean([r["curve"][i]["tv_distance"] for r in results[variant]])
      cells.append(f"step {step_i}: {cov:.1f} / {tv:.3f}")
    lines.append(f"- {variant}: " + "; ".join(cells))
  lines += ["", "## Does the transfer change coverage? (paired by seed, two-sided)", "",
            "| comparison | metric | difference | p | significant at p<0.05? |",
            "|---|---|---|---|---|"]
  for base, other in PAIRS:
    for key, label, d in keys:
      a = [r[key] for r in results[other]]
      b = [r[key] for r in results[base]]
      diff = float(np.mean(np.subtract(a, b)))
      p_value = stats.paired(a, b)
      better = -diff if key == "tv_distance" else diff  # lower TV is better
      verdict = stats.verdict(better, p_value)
      lines.append(f"| {other} vs {base} | {label} | {diff:+.{d}f} | {stats.fmt_p(p_value)} | "
                   f"{verdict.replace('yes', 'yes, better').replace('no (reversed)', 'yes, worse')} |")
      data["pairs"].append(dict(model=other, base=base, metric=key, diff=diff, p=p_value))
  lines += ["", f"Figure: `{out.with_suffix('.png').name}` (mode frequencies against the true "
            "weights, log scale; samples of seed 0)."]
  common.write_table(out, lines, data)
  plot(out.with_suffix(".png"), weights, results)


def plot(path, weights, results) -> None:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, axes = plt.subplots(2, len(PAIRS), figsize=(4.6 * len(PAIRS), 7.2))
  modes = np.arange(len(weights))
  for col, pair in enumerate(PAIRS):
    ax = axes[0, col]
    ax.plot(modes, weights, "k--", label="true weights")
    for variant in pair:
      freq = np.array([r["mode_frequencies"] for r in results[variant]])
      mean = freq.mean(0)
      ax.plot(modes, np.maximum(mean, 1e-4), "o-", ms=3, label=f"{variant} (mean of "
              f"{len(freq)})")
    ax.set_yscale("log")
    ax.set_ylim(1e-4, 1)
    ax.set_xlabel("mode (commonest first)")
    ax.set_ylabel("frequency among on-mode samples")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    # 32 samples of each model as 4 rows x 8 columns; a grey line between the two models.
    grids = [np.array(results[v + "/samples"])[:32].reshape(4, 8, SIDE, SIDE)
             .transpose(0, 2, 1, 3).reshape(4 * SIDE, 8 * SIDE) for v in pair]
    tile = np.concatenate([grids[0], np.full((2, 8 * SIDE), 0.5), grids[1]], axis=0)
    axes[1, col].imshow(tile, cmap="gray", vmin=0, vmax=1)
    axes[1, col].set_title(f"seed 0 samples: {pair[0]} (top), {pair[1]} (bottom)", fontsize=8)
    axes[1, col].axis("off")
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


if __name__ == "__main__":
  common.run_main(main)
