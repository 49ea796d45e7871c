"""The README's main job: a few minutes of VAE and AA-VAE on real MNIST data, offline.

  python -m experiments.quickstart [--workdir=workdirs/quickstart] [--steps=1500]
      [--mnist_test_dir=../shared/data/mnist]

Both models share every setting (DCGAN-architecture networks of width 32, latent
20, Adam 1e-3, batch 64, dynamically binarised ``mnist_sample`` train split of
4,500 images); AA-VAE adds the discriminator of Eq. 17 and generates one fake
sample per real one. Each run writes its own workdir (checkpoints, metrics,
sample grids, curves, summary.json); this script then evaluates both on the 500
held-out ``mnist_sample`` validation images (fixed binarisation; ELBO and the
IWAE estimate with K=100) -- and on the real 10,000-image MNIST test set when
``--mnist_test_dir`` is given -- and writes ``comparison.md`` and
``comparison.png``. Rerunning resumes any unfinished run.
"""

import argparse
import json
import pathlib
import sys

import numpy as np

from unigen_jax import checkpointing
from unigen_jax import evaluate
from unigen_jax import reporting
from unigen_jax import train
from unigen_jax import train_step
from unigen_jax.configs import default


def quickstart_config(variant: str, steps: int):
  config = default.get_config(f"{variant},mnist_sample")
  config.steps = steps
  config.model.width = 32
  config.log_every = 50
  config.checkpoint_every = 500
  config.sample_every = 500
  config.eval.metrics = "elbo,iwae"
  config.eval.importance_samples = 100
  return config


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--workdir", default="workdirs/quickstart")
  parser.add_argument("--steps", type=int, default=1500)
  parser.add_argument("--mnist_test_dir", default="",
                      help="folder with the real MNIST t10k-* files for a second evaluation")
  args = parser.parse_args(argv)
  root = pathlib.Path(args.workdir)
  results = {}
  for variant in ("vae", "aavae"):
    config = quickstart_config(variant, args.steps)
    print(f"== {variant}: {config.steps} steps -> {root / variant}", file=sys.stderr, flush=True)
    try:
      summary = train.train_and_evaluate(config, str(root / variant))
    except (train.ConfigError, train.input_pipeline.DataError) as err:
      print(f"error: {err}", file=sys.stderr)
      return 2
    results[variant] = {"summary": summary, "eval": {"mnist_sample/validation": summary["eval"]}}
    if args.mnist_test_dir:
      config.eval.dataset, config.eval.split = "mnist", "test"
      config.eval.data_dir = args.mnist_test_dir
      resolved, model_cfg = train.resolve_config(config)
      model = train_step.Model(train.variants.get(variant), model_cfg)
      _, state = checkpointing.load_latest_state(model, root / variant / "checkpoints")
      results[variant]["eval"]["mnist/test"] = evaluate.evaluate_model(
          model, state, resolved, workdir=None, write=False)
  write_comparison(root, results, args)
  print((root / "comparison.md").read_text())
  return 0


def write_comparison(root: pathlib.Path, results: dict, args) -> None:
  lines = ["# Quickstart: VAE vs AA-VAE on the offline MNIST sample", "",
           f"Command: `python -m experiments.quickstart --workdir={args.workdir} "
           f"--steps={args.steps}" + (f" --mnist_test_dir={args.mnist_test_dir}`" if
                                      args.mnist_test_dir else "`"), "",
           "| model | eval data | test ELBO | IWAE log-lik. (K=100) | train steps/s | wall time (s) |",
           "|---|---|---|---|---|---|"]
  for variant, res in results.items():
    s = res["summary"]
    for data, ev in res["eval"].items():
      lines.append(f"| {variant} | {data} ({ev['num_examples']} images, {ev['binarization']} "
                   f"binarisation) | {ev['test_elbo']:.2f} | {ev['test_log_likelihood_iwae']:.2f} | "
                   f"{s['steps_per_sec']:.1f} | {s['wall_time_s']:.0f} |")
  lines += ["", "Both runs: " + results["vae"]["summary"]["data"] + ".",
            f"{args.steps} steps on 4,500 images is far from the paper's setting (Table 3); "
            "see experiments/ and results/ for the protocol runs.", ""]
  (root / "comparison.md").write_text("\n".join(lines))
  _plot(root, results)


def _plot(root: pathlib.Path, results: dict) -> None:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top
  fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
  for variant in results:
    rows = reporting.read_metrics(root / variant / "metrics.jsonl")
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
  sys.exit(main())
