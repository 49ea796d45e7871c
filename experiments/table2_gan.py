"""Table 2 (left, middle): GAN vs IWGAN inception score, CGAN vs IW-CGAN conditional accuracy.

  python -m experiments.table2_gan --preset=cpu --mnist_test_dir=../shared/data/mnist
  python -m experiments.table2_gan --preset=paper --mnist_dir=/data/mnist   # GPU/TPU
  python -m experiments.table2_gan --preset=smoke --out=/tmp/t2.md           # seconds

Base and IW models share every hyperparameter (the paper did not tune the IW ones): the
only difference is the generator objective (``generator_loss_importance_weighted``).
Mean ± std over seeds; writes ``--out`` (markdown) and the same name ``.json``.
"""

import argparse
import pathlib
import sys
import time

from experiments import common

PAPER = {"gan": ("8.34 ± .03", "inception score"), "iwgan": ("8.45 ± .04", "inception score"),
         "cgan": ("0.985 ± .002", "conditional accuracy"),
         "iwcgan": ("0.987 ± .002", "conditional accuracy")}
PAPER_SVHN = {"gan": "5.18 ± .03", "iwgan": "5.34 ± .03", "cgan": "0.797 ± .005",
              "iwcgan": "0.798 ± .006"}


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--preset", default="cpu", choices=sorted(common.PRESETS))
  parser.add_argument("--workdir", default="workdirs/table2")
  parser.add_argument("--out", default=None, help="default results/table2_gan_<preset>.md")
  parser.add_argument("--mnist_test_dir", default="", help="real MNIST t10k-* files (cpu preset)")
  parser.add_argument("--mnist_dir", default="", help="full MNIST IDX folder (paper preset)")
  parser.add_argument("--seeds", type=int, default=None)
  parser.add_argument("--steps", type=int, default=None)
  parser.add_argument("--models", default="gan,iwgan,cgan,iwcgan")
  args = parser.parse_args(argv)
  models = args.models.split(",")
  preset = common.PRESETS[args.preset]
  seeds = args.seeds or preset.gan_seeds
  steps = args.steps or preset.gan_steps
  root = pathlib.Path(args.workdir) / args.preset
  if args.preset == "paper":
    data = dict(dataset="mnist", split="train", data_dir=args.mnist_dir, eval_dataset="mnist",
                eval_split="test", eval_data_dir=args.mnist_dir)
  elif args.preset == "cpu":
    if not args.mnist_test_dir:
      print("error: the cpu preset evaluates on the real MNIST test set: pass "
            "--mnist_test_dir (e.g. ../shared/data/mnist)", file=sys.stderr)
      return 2
    data = dict(dataset="mnist_sample", split="train+validation", data_dir="",
                eval_dataset="mnist", eval_split="test", eval_data_dir=args.mnist_test_dir)
  else:
    data = dict(dataset="mnist_sample", split="train", data_dir="",
                eval_dataset="mnist_sample", eval_split="validation", eval_data_dir="")
  started = time.time()
  classifier_dir = common.classifier_for(
      root, preset, dataset=data["dataset"], split=data["split"], data_dir=data["data_dir"] or None,
      test_dataset=data["eval_dataset"], test_split=data["eval_split"],
      test_data_dir=data["eval_data_dir"] or None)
  records = {"preset": args.preset, "seeds": seeds, "steps": steps, "runs": {},
             "code": common.code_version()}
  summaries = []
  for variant, metric in (("gan", "inception_score"), ("iwgan", "inception_score"),
                          ("cgan", "conditional_accuracy"), ("iwcgan", "conditional_accuracy")):
    if variant not in models:
      continue
    for seed in range(seeds):
      config = common.base_config(variant, preset, seed=seed, **data)
      config.steps = steps
      config.eval.metrics = metric
      config.eval.classifier_dir = str(classifier_dir)
      summary = common.run(config, root / f"{variant}_seed{seed}")
      summaries.append(summary)
      records["runs"].setdefault(variant, []).append(summary["eval"])
  wall = time.time() - started
  clf = next(iter(records["runs"].values()))[0]["classifier"]
  lines = [f"# Table 2 (left, middle), MNIST: preset `{args.preset}`", "",
           f"Command: `python -m experiments.table2_gan {' '.join(argv or sys.argv[1:])}`  ",
           f"Finished {common.now()} (code {records['code']}); this invocation "
           f"{wall / 60:.1f} min, {common.run_time_line(summaries)}; {seeds} seed(s) x {steps} "
           f"steps per model; DCGAN networks of width {preset.width}, batch {preset.batch_size}, "
           "Adam 2e-4 / beta1 0.5, identical for base and IW models.", "",
           f"Training data: {data['dataset']}/{data['split']}. Evaluation: "
           f"{data['eval_dataset']}/{data['eval_split']}; evaluation classifier "
           f"({clf['trained_on']}) test accuracy {clf['test_accuracy']:.4f}, real-data inception "
           f"score {clf['real_inception_score'][0]:.2f} (the ceiling; paper's: 9.09).", "",
           "| model | metric | paper (MNIST) | ours, mean ± std over seeds | per seed |",
           "|---|---|---|---|---|"]
  for variant, (paper, metric) in PAPER.items():
    if variant not in records["runs"]:
      continue
    runs = records["runs"][variant]
    values = [r["inception_score"][0] if metric == "inception score"
              else r["conditional_accuracy"] for r in runs]
    records.setdefault("summary", {})[variant] = common.mean_std(values)
    digits = 2 if metric == "inception score" else 3
    lines.append(f"| {variant} | {metric} | {paper} | {common.fmt(values, digits)} | "
                 f"{', '.join(f'{v:.{digits}f}' for v in values)} |")
  s = records["summary"]
  verdicts = []
  for base, iw, what in (("gan", "iwgan", "inception score"), ("cgan", "iwcgan", "conditional accuracy")):
    if base in s and iw in s:
      verdicts.append(f"{what}: {'yes' if s[iw][0] > s[base][0] else 'no'} "
                      f"({s[iw][0] - s[base][0]:+.4f})")
  lines += ["", "IW > base? " + "; ".join(verdicts) + ". Differences smaller than the seed std "
            "are not evidence either way.", "",
           f"SVHN (paper): GAN {PAPER_SVHN['gan']}, IWGAN {PAPER_SVHN['iwgan']}, CGAN "
           f"{PAPER_SVHN['cgan']}, IW-CGAN {PAPER_SVHN['iwcgan']}: not run here (no SVHN offline; "
           "the paper preset takes `--config.data.dataset=svhn_cropped` through TFDS)."]
  out = pathlib.Path(args.out or f"results/table2_gan_{args.preset}.md")
  common.write_table(out, lines, records)
  return 0


if __name__ == "__main__":
  sys.exit(main())
