"""AA-VAE / AA-CVAE with a slower discriminator: does AA > base appear when D does not saturate?

  python -m experiments.aa_discriminator --preset=cpu --mnist_test_dir=../shared/data/mnist
  python -m experiments.aa_discriminator --preset=smoke --out=/tmp/aa          # seconds

With the preset's shared learning rate (Adam 1e-3 for every player) the AA discriminator
saturates (D(fake) ~ 1e-5 at the end), so the weights q^r(y|x) of Eq. 17 become those of
the perfect discriminator and AA-VAE collapses to the VAE (Lemma 2). This sweep trains
the AA models with ``model.discriminator_learning_rate`` set per ``--runs`` entry
(``aa_model:rate``), beside the base model and the AA model at the shared rate, on one
Table 3 column, with the same seeds; 1e-12 is the control "discriminator frozen at its
initialisation" (weights ~0.5 on real and generated samples alike: generated samples as
extra data without the adversary).

Every run goes through ``experiments.table3_vae`` (its tables are written to
``<out>/``; finished runs in the workdirs are reused, not retrained). Writes
``<out>.md`` (test bound per setting and the discriminator's final mean outputs on the
real and generated batches) and ``<out>.png``.
"""

import argparse
import json
import pathlib
import sys

import numpy as np

from experiments import common
from experiments import table3_vae
from unigen_jax import reporting

BASE = {"aavae": "vae", "aacvae": "cvae"}
COLUMN_DIR = {"1%": "1pct", "10%": "10pct", "100%": "100pct"}


def final_weights(workdir: pathlib.Path) -> tuple[float, float]:
  """Mean D(x) on the real and the generated batch at the last logged step."""
  last = reporting.read_metrics(workdir / "metrics.jsonl")[-1]
  return float(last["aa_weight_real"]), float(last["aa_weight_fake"])


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--preset", default="cpu", choices=sorted(common.PRESETS))
  parser.add_argument("--mnist_test_dir", default="")
  parser.add_argument("--runs", default="aavae:1e-5,aavae:1e-6,aavae:1e-12,aacvae:1e-6",
                      help="aa_model:discriminator_learning_rate entries")
  parser.add_argument("--column", default="1%", choices=sorted(COLUMN_DIR))
  parser.add_argument("--seeds", type=int, default=3)
  parser.add_argument("--workdir", default="workdirs/table3",
                      help="shared-rate runs here, rate r in <workdir>_dlr<r>")
  parser.add_argument("--out", default="results/aa_discriminator")
  args = parser.parse_args(argv)
  rates = {}  # aa model -> its discriminator rates
  for item in args.runs.split(","):
    model, _, rate = item.partition(":")
    if model not in BASE or not rate:
      print(f"error: --runs entry {item!r}: write aa_model:rate with aa_model in "
            f"{sorted(BASE)}, e.g. aavae:1e-6", file=sys.stderr)
      return 2
    try:
      if not float(rate) > 0:
        raise ValueError
    except ValueError:
      print(f"error: --runs entry {item!r}: the rate must be a positive number", file=sys.stderr)
      return 2
    rates.setdefault(model, []).append(rate)
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  common_args = [f"--preset={args.preset}", f"--columns={args.column}", f"--seeds={args.seeds}"]
  if args.mnist_test_dir:
    common_args.append(f"--mnist_test_dir={args.mnist_test_dir}")
  cells = {}  # (model, rate or 'shared') -> dict(elbo=[...], weights=[(real, fake)])
  steps = None

  def collect(table: pathlib.Path, workdir: str, models, rate):
    nonlocal steps
    records = json.loads(table.with_suffix(".json").read_text())
    steps = records["steps"]
    for model in models:
      runs_ = records["runs"][model][args.column]
      cell = {"elbo": [r["test_elbo"] for r in runs_]}
      if model in BASE:
        cell["weights"] = [final_weights(pathlib.Path(workdir) / args.preset /
                                         f"{model}_{COLUMN_DIR[args.column]}_seed{s}")
                           for s in range(args.seeds)]
      cells[(model, rate)] = cell

  for model in rates:
    table = out / f"{BASE[model]}_{model}_shared_rate.md"
    code = table3_vae.main(common_args + [f"--models={BASE[model]},{model}",
                                          f"--workdir={args.workdir}", f"--out={table}"])
    if code:
      return code
    collect(table, args.workdir, (BASE[model], model), "shared")
  for model, rate in ((m, r) for m, model_rates in rates.items() for r in model_rates):
    table = out / f"{model}_dlr{rate}.md"
    workdir = f"{args.workdir}_dlr{rate}"
    code = table3_vae.main(common_args + [f"--models={model}", f"--workdir={workdir}",
                                          f"--set=model.discriminator_learning_rate={rate}",
                                          f"--out={table}"])
    if code:
      return code
    collect(table, workdir, (model,), rate)

  lines = ["# AA models with a slower discriminator", "",
           f"Command: `python -m experiments.aa_discriminator {' '.join(argv or sys.argv[1:])}`  ",
           f"Finished {common.now()} (code {common.code_version()}); preset `{args.preset}`, "
           f"column {args.column}, {args.seeds} seeds x {steps} steps per cell; per-setting "
           f"tables (commands, data, wall time) in `{out}/`.", "",
           "Test lower bound (higher is better), mean ± std over seeds; D(real) / D(fake): the "
           "discriminator's mean output on the real and the generated batch at the last logged "
           "step (the Eq. 17 weights q^r(y|x)), mean over seeds.", "",
           "| model | discriminator learning rate | test bound | vs base (nats) | D(real) | D(fake) |",
           "|---|---|---|---|---|---|"]
  for model, model_rates in rates.items():
    base = BASE[model]
    base_mean = common.mean_std(cells[(base, "shared")]["elbo"])[0]
    lines.append(f"| {base} | - | {common.fmt(cells[(base, 'shared')]['elbo'])} | | | |")
    for rate in ["shared"] + model_rates:
      cell = cells[(model, rate)]
      real, fake = np.mean(np.asarray(cell["weights"]), axis=0)
      label = "shared (1e-3)" if rate == "shared" else rate
      diff = common.mean_std(cell["elbo"])[0] - base_mean
      lines.append(f"| {model} | {label} | {common.fmt(cell['elbo'])} | {diff:+.2f} | "
                   f"{real:.3g} | {fake:.3g} |")
  figure = out.with_suffix(".png")
  _plot(cells, rates, figure)
  lines += ["", f"![test bound against the discriminator's learning rate]({figure.name})"]
  common.write_table(out.with_suffix(".md"), lines,
                     {"preset": args.preset, "column": args.column, "seeds": args.seeds,
                      "steps": steps, "code": common.code_version(),
                      "cells": {f"{m}@{r}": c for (m, r), c in cells.items()}})
  return 0


def _plot(cells, rates, path: pathlib.Path) -> None:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 4))
  for i, (model, model_rates) in enumerate(rates.items()):
    color = f"C{i}"
    settings = ["shared"] + model_rates
    xs = [1e-3 if r == "shared" else float(r) for r in settings]
    order = np.argsort(xs)
    xs = np.asarray(xs)[order]
    stats = np.asarray([common.mean_std(cells[(model, settings[j])]["elbo"]) for j in order])
    ax.errorbar(xs, stats[:, 0], yerr=stats[:, 1], marker="o", color=color, capsize=3,
                label=model)
    base_mean, base_std = common.mean_std(cells[(BASE[model], "shared")]["elbo"])
    ax.axhline(base_mean, color=color, ls="--", lw=1, label=f"{BASE[model]} (no discriminator)")
    ax.axhspan(base_mean - base_std, base_mean + base_std, color=color, alpha=0.1)
    weights = np.asarray([np.mean(np.asarray(cells[(model, settings[j])]["weights"]), axis=0)
                          for j in order])
    bx.plot(xs, weights[:, 0], marker="o", color=color, label=f"{model}: D(real)")
    bx.plot(xs, weights[:, 1], marker="s", ls=":", color=color, label=f"{model}: D(fake)")
  for axis in (ax, bx):
    axis.set_xscale("log")
    axis.set_xlabel("discriminator learning rate (others: 1e-3)")
  ax.set_ylabel("test lower bound (nats)")
  ax.set_title("test bound (mean ± std over seeds)")
  bx.set_yscale("log")
  bx.set_ylabel("mean D(x) at the end of training")
  bx.set_title("Eq. 17 weights q^r(y|x)")
  ax.legend(fontsize=8)
  bx.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


if __name__ == "__main__":
  sys.exit(main())
