"""Table 2 (right) and Table 3: test lower bounds of the VAE family and their AA versions.

  python -m experiments.table3_vae --preset=cpu --mnist_test_dir=../shared/data/mnist
  python -m experiments.table3_vae --preset=paper --mnist_dir=/data/mnist   # GPU/TPU
  python -m experiments.table3_vae --preset=smoke --out=/tmp/t3.md           # seconds

Rows: VAE, AA-VAE, CVAE, AA-CVAE with 1%, 10%, 100% of the training data; SVAE and
AA-SVAE with 1% and 10% of it labelled (the rest unlabelled), plus their test accuracy.
AA models generate as many fake samples as real ones per batch (Eq. 17, fake weight 1).
Test lower bound: single-sample ELBO on the test set with fixed binarisation (SVAE:
the M2 bound with the label marginalised by q(y|x)).

Data for the ``cpu`` preset (said in the output too): 1% = 600 class-balanced real
MNIST images from ``mnist_sample``; "10%" = all 5,000 of them (8.3%, the largest
available offline); 100% = full Fashion-MNIST (Debian's ``dataset-fashion-mnist``),
evaluated on its own test set, so that column is not comparable with the paper's MNIST
numbers. SVAE: 600 labelled + 4,400 unlabelled MNIST (1%), and 6,000 labelled + 54,000
unlabelled Fashion-MNIST (10%).
"""

import argparse
import pathlib
import sys
import time

from experiments import common
from unigen_jax import input_pipeline

PAPER = {  # test lower bound at 1% / 10% / 100% (Table 3); SVAE at 1% / 10% labels
    "vae": (-122.89, -104.49, -92.53), "aavae": (-122.15, -103.05, -92.42),
    "cvae": (-125.44, -102.63, -93.16), "aacvae": (-122.88, -101.63, -92.75),
    "svae": (-108.22, -99.44), "aasvae": (-107.61, -98.81)}
PAPER_ACCURACY = {"svae": (0.9412, 0.9768), "aasvae": (0.9425, 0.9797)}
FASHION = "/usr/share/datasets/fashion-mnist"


def data_plan(args, preset_name):
  """{column: data settings} for the preset."""
  if preset_name == "smoke":
    small = dict(dataset="mnist_sample", split="train", data_dir="", eval_dataset="mnist_sample",
                 eval_split="validation", eval_data_dir="")
    return {"1%": dict(small, num_examples=200), "10%": dict(small, num_examples=400),
            "100%": dict(small, num_examples=None)}, {
                "1%": dict(small, num_examples=400, num_labelled=100),
                "10%": dict(small, num_examples=400, num_labelled=200)}
  if preset_name == "paper":
    full = dict(dataset="mnist", split="train", data_dir=args.mnist_dir, eval_dataset="mnist",
                eval_split="test", eval_data_dir=args.mnist_dir)
    return ({"1%": dict(full, fraction=0.01), "10%": dict(full, fraction=0.1),
             "100%": dict(full, fraction=None)},
            {"1%": dict(full, num_labelled=600), "10%": dict(full, num_labelled=6000)})
  sample = dict(dataset="mnist_sample", split="train+validation", data_dir="",
                eval_dataset="mnist", eval_split="test", eval_data_dir=args.mnist_test_dir)
  fashion = dict(dataset="fashion_mnist", split="train", data_dir="",
                 eval_dataset="fashion_mnist", eval_split="test", eval_data_dir="")
  return ({"1%": dict(sample, num_examples=600), "10%": dict(sample, num_examples=None),
           "100%": dict(fashion, num_examples=None)},
          {"1%": dict(sample, num_labelled=600), "10%": dict(fashion, num_labelled=6000)})


def configure(variant, preset, seed, steps, data):
  config = common.base_config(variant, preset, seed=seed, dataset=data["dataset"],
                              split=data["split"], data_dir=data["data_dir"],
                              eval_dataset=data["eval_dataset"], eval_split=data["eval_split"],
                              eval_data_dir=data["eval_data_dir"])
  config.steps = steps
  config.data.num_examples = data.get("num_examples")
  config.data.fraction = data.get("fraction")
  config.eval.metrics = "elbo"
  if variant in ("svae", "aasvae"):
    labelled = data["num_labelled"]
    config.data.num_labelled = labelled
    total = data.get("num_examples") or (5000 if data["dataset"] == "mnist_sample" else 60000)
    # Kingma et al. (2014): alpha = 0.1 x (unlabelled / labelled) with per-batch means.
    config.model.svae_alpha = 0.1 * (total - labelled) / labelled
    config.eval.metrics = "elbo,svae_accuracy"
  return config


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--preset", default="cpu", choices=sorted(common.PRESETS))
  parser.add_argument("--workdir", default="workdirs/table3")
  parser.add_argument("--out", default=None, help="default results/table3_vae_<preset>.md")
  parser.add_argument("--mnist_test_dir", default="")
  parser.add_argument("--mnist_dir", default="")
  parser.add_argument("--seeds", type=int, default=None)
  parser.add_argument("--steps", type=int, default=None)
  parser.add_argument("--models", default="vae,aavae,cvae,aacvae,svae,aasvae")
  parser.add_argument("--columns", default="1%,10%,100%", help="data fractions to run")
  parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                      help="config override for every run, e.g. "
                      "model.discriminator_learning_rate=1e-5 (use its own --workdir)")
  args = parser.parse_args(argv)
  preset = common.PRESETS[args.preset]
  if args.preset == "cpu":
    if not args.mnist_test_dir:
      print("error: the cpu preset evaluates on the real MNIST test set: pass --mnist_test_dir",
            file=sys.stderr)
      return 2
    if "100%" in args.columns and not pathlib.Path(FASHION).exists():
      print(f"error: the cpu preset's 100% column uses Fashion-MNIST from {FASHION}: "
            "apt-get install dataset-fashion-mnist", file=sys.stderr)
      return 2
  seeds = args.seeds or preset.vae_seeds
  steps = args.steps or preset.vae_steps
  root = pathlib.Path(args.workdir) / args.preset
  columns, svae_columns = data_plan(args, args.preset)
  wanted = args.columns.split(",")
  columns = {c: d for c, d in columns.items() if c in wanted}
  svae_columns = {c: d for c, d in svae_columns.items() if c in wanted}
  models = args.models.split(",")
  started = time.time()
  records = {"preset": args.preset, "seeds": seeds, "steps": steps, "runs": {},
             "code": common.code_version()}
  summaries = []
  overrides = []
  for model in models:
    plan = svae_columns if model in ("svae", "aasvae") else columns
    for column, data in plan.items():
      for seed in range(seeds):
        config = configure(model, preset, seed, steps, data)
        overrides = common.apply_overrides(config, args.set)
        try:
          summary = common.run(config, root / f"{model}_{column.rstrip('%')}pct_seed{seed}")
          summaries.append(summary)
        except input_pipeline.DataError as err:
          print(f"error: {err}", file=sys.stderr)
          return 2
        records["runs"].setdefault(model, {}).setdefault(column, []).append(
            dict(summary["eval"], data=summary["data"]))
  wall = time.time() - started
  lines = [f"# Table 3 (and Table 2, right): preset `{args.preset}`", "",
           f"Command: `python -m experiments.table3_vae {' '.join(argv or sys.argv[1:])}`  ",
           f"Finished {common.now()} (code {records['code']}); this invocation "
           f"{wall / 60:.1f} min, {common.run_time_line(summaries)}; {seeds} seed(s) x {steps} "
           f"steps per cell; DCGAN networks of width {preset.width}, latent 20, batch "
           f"{preset.batch_size}, Adam 1e-3, dynamic binarisation for training, fixed for test"
           + (f"; overrides: {', '.join(overrides)}" if args.set else "") + ".",
           "", "Test lower bound (higher is better); paper's value in brackets.", "",
           "| model | 1% | 10% | 100% |", "|---|---|---|---|"]
  for model in models:
    cells = []
    for i, column in enumerate(("1%", "10%", "100%")):
      runs = records["runs"][model].get(column)
      if runs is None:
        cells.append("-")
        continue
      paper = PAPER[model][i] if i < len(PAPER[model]) else None
      cells.append(f"{common.fmt([r['test_elbo'] for r in runs])}"
                   + (f" [{paper}]" if paper is not None else ""))
    lines.append(f"| {model} | " + " | ".join(cells) + " |")
  if any(m in models for m in ("svae", "aasvae")):
    lines += ["", "Semi-supervised test accuracy (paper in brackets):", "",
              "| model | 1% labels | 10% labels |", "|---|---|---|"]
    for model in ("svae", "aasvae"):
      if model in models:
        runs = records["runs"][model]
        cells = [f"{common.fmt([r['svae_accuracy'] for r in runs[c]], 4)} "
                 f"[{PAPER_ACCURACY[model][i]}]" if c in runs else "-"
                 for i, c in enumerate(("1%", "10%"))]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
  lines += ["", "Data per column:"]
  for model in dict.fromkeys(models[:1] + [m for m in models if m == "svae"]):
    for column, runs in records["runs"][model].items():
      lines.append(f"- {model} {column}: {runs[0]['data']}; evaluated on {runs[0]['dataset']} "
                   f"({runs[0]['num_examples']} images)")
  pairs = [("vae", "aavae"), ("cvae", "aacvae"), ("svae", "aasvae")]
  lines += ["", "AA > base (test bound)?"]
  for base, aa in pairs:
    if base in models and aa in models:
      for column in records["runs"][base]:
        b = common.mean_std([r["test_elbo"] for r in records["runs"][base][column]])[0]
        a = common.mean_std([r["test_elbo"] for r in records["runs"][aa][column]])[0]
        lines.append(f"- {aa} vs {base}, {column}: {'yes' if a > b else 'no'} ({a - b:+.2f} nats)")
  out = pathlib.Path(args.out or f"results/table3_vae_{args.preset}.md")
  common.write_table(out, lines, records)
  return 0


if __name__ == "__main__":
  sys.exit(main())
