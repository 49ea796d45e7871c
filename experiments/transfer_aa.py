r"""Adversary activation (Eq. 17) beyond the paper's pairs: does AA-IWAE beat IWAE?

  python -m experiments.transfer_aa --preset=cpu --mnist_dir=../shared/data/mnist
  python -m experiments.transfer_aa --preset=cpu --mnist_dir=DIR --pairs='avb:aa(avb)'
  python -m experiments.transfer_aa --preset=cpu --mnist_dir=DIR --smoke   # seconds (tests)

The paper transfers the adversarial mechanism to VAE, CVAE and SVAE (Table 3);
``variants.adversary_activated`` builds it for any variant with an ELBO-type objective of
single examples. This experiment asks whether the transfer helps where the paper did not
try it, under Table 3's protocol (``experiments.table3_vae``) at its 1% column:

* **Data**: 600 class-balanced real MNIST training images drawn with the run's seed from
  the 50,000 outside the validation split; validation: a fixed class-balanced 5,000 of
  the 10,000 held-out training images; test: the 10,000 MNIST test images, evaluated
  once per final run.
* **Selection** of the discriminator's learning rate for ``aa(base)`` from Table 3's
  rates on the validation bound (selection seeds only, never the test set).
* **Final runs**, seeds 0..n-1 of the base, its AA version with the chosen rate, and the
  control with a discriminator frozen at initialisation (generated samples weighted ~0.5,
  no adversary); early stopping on the validation ELBO, the best checkpoint is tested.
* **Test metrics**: the single-sample ELBO and the importance-sampled log-likelihood
  estimate with K = ``--importance_samples`` (IWAE's own measure). Paired t-tests by
  seed (the pair shares the training subset), two-sided.

Results: ``results/transfer_aa_<preset>.md`` / ``.json`` / ``.png`` and run records in
``results/transfer_aa_<preset>/runs/`` (``experiments.common``: a table resumes and is
rebuilt from its records).
"""

from __future__ import annotations

import dataclasses
import pathlib
import time

import numpy as np

from experiments import common
from experiments import stats
from experiments import table3_vae

COLUMN = "1%"


@dataclasses.dataclass(frozen=True)
class Preset:
  seeds: int
  selection_seeds: tuple
  selection_rates: tuple
  importance_samples: int


PRESETS = {"cpu": Preset(seeds=3, selection_seeds=(100,), selection_rates=(1e-3, 1e-4, 1e-5, 1e-6),
                         importance_samples=100),
           "paper": Preset(seeds=5, selection_seeds=(100, 101),
                           selection_rates=(1e-3, 1e-4, 1e-5, 1e-6), importance_samples=5000)}


def define_flags(f):
  d = common.flags
  d.DEFINE_enum("preset", "cpu", sorted(PRESETS), "Budget preset (networks and schedules: "
                "experiments.table3_vae's preset of the same name, 1% column).", flag_values=f)
  d.DEFINE_string("mnist_dir", "", "Folder with the four MNIST IDX files.", flag_values=f)
  d.DEFINE_list("pairs", ["iwae:aa(iwae)"], "base:aa(base) pairs.", flag_values=f)
  d.DEFINE_string("workdir", "workdirs/transfer_aa", "Root of the run workdirs.", flag_values=f)
  d.DEFINE_string("out", "", "Table path (default results/transfer_aa_<preset>.md).",
                  flag_values=f)
  d.DEFINE_string("shard", "0/1", "i/n: run every n-th planned run starting at i.",
                  flag_values=f)
  d.DEFINE_bool("train", True, "Train missing runs (False: table from the records only).",
                flag_values=f)
  d.DEFINE_bool("smoke", False, "Shrink the preset to seconds (plumbing only).", flag_values=f)
  d.DEFINE_bool("verify_checksums", True, "Check the MNIST files' SHA-256.", flag_values=f)


def parse_pairs(items) -> list:
  """``['iwae:aa(iwae)', ...]``; the second must be the first plus Eq. 17's discriminator."""
  return common.parse_pairs(
      items, lambda base, aa: "discriminator" in aa.modules and "discriminator" not in base.modules
      and any(p.role == "discriminator" for p in aa.players), "adversary-activated",
      "base:aa(base)", "iwae:aa(iwae)")


def run_name(model: str) -> str:
  return model.replace("(", "-").replace(")", "")


class TransferPlan:
  """The runs: selection of each AA model's discriminator rate, then base / AA / control."""

  def __init__(self, plan: table3_vae.Plan, preset: Preset, pairs, importance_samples: int):
    self.plan, self.preset, self.pairs = plan, preset, pairs
    self.importance_samples = importance_samples

  def config(self, model, seed, *, rate=None, frozen=False, test=True):
    config = self.plan.config(model, COLUMN, seed, discriminator_rate=rate, evaluate_test=test)
    if frozen:
      config.model.discriminator_learning_rate = 0.0
    if test:
      config.eval.metrics = "elbo,iwae"
      config.eval.importance_samples = self.importance_samples
    return config

  def selection(self) -> list:
    return [common.Run(name=table3_vae.selection_name(run_name(aa), rate, COLUMN, seed),
                       group=f"{aa}@{rate:g}", column=COLUMN, seed=seed, role="selection",
                       config=self.config(aa, seed, rate=rate, test=False))
            for _, aa in self.pairs for rate in self.preset.selection_rates
            for seed in self.preset.selection_seeds]

  def choose(self, records) -> tuple[dict, list]:
    chosen, lines = {}, []
    for _, aa in self.pairs:
      grid = table3_vae.grid_records(
          records, self.preset.selection_rates, self.preset.selection_seeds,
          lambda rate, seed: table3_vae.selection_name(run_name(aa), rate, COLUMN, seed))  # pylint: disable=cell-var-from-loop
      if grid is None:
        continue  # its selection has not finished
      values = {rate: [r["validation"]["best"] for r in runs] for rate, runs in grid.items()}
      best = common.best_of(values)
      chosen[aa] = best
      lines.append(f"| {aa} | " + ", ".join(
          f"{rate:g}: {np.mean(v):.2f}" + (" (chosen)" if rate == best else "")
          for rate, v in values.items()) + " |")
    return chosen, lines

  def finals(self, chosen) -> list:
    runs = []
    for base, aa in self.pairs:
      if aa not in chosen:
        continue  # its selection has not finished
      for seed in range(self.preset.seeds):
        runs.append(common.Run(name=f"{run_name(base)}_1pct_seed{seed}", group=base,
                               column=COLUMN, seed=seed, config=self.config(base, seed)))
        runs.append(common.Run(name=f"{run_name(aa)}_1pct_seed{seed}", group=aa, column=COLUMN,
                               seed=seed, config=self.config(aa, seed, rate=chosen[aa])))
        runs.append(common.Run(name=f"{run_name(aa)}_frozen_1pct_seed{seed}",
                               group=f"{aa} frozen", column=COLUMN, seed=seed,
                               config=self.config(aa, seed, frozen=True)))
    return runs


def main(argv=None) -> int:
  f = common.parse_flags(argv, define_flags)
  preset = PRESETS[f.preset]
  base_preset = table3_vae.PRESETS[f.preset]
  if f.smoke:
    preset = dataclasses.replace(preset, seeds=2, selection_rates=(1e-3, 1e-5),
                                 importance_samples=4)
    base_preset = table3_vae._smoke(base_preset)  # pylint: disable=protected-access
  if not f.mnist_dir:
    raise common.UsageError("pass --mnist_dir: the folder with the four MNIST IDX files "
                            "(README, section Data).")
  pairs = parse_pairs(f.pairs)
  shard, shards = common.parse_shard(f.shard)
  train_size = common.mnist_train_size(f.mnist_dir, f.verify_checksums)
  plan = TransferPlan(table3_vae.Plan(base_preset, f.mnist_dir, f.verify_checksums, f.smoke,
                                      train_size), preset, pairs, preset.importance_samples)
  tag = f.preset + ("_smoke" if f.smoke else "")
  root = pathlib.Path(f.workdir) / tag
  out = pathlib.Path(f.out or (root / "transfer_aa_smoke.md" if f.smoke
                               else f"results/transfer_aa_{tag}.md"))
  records_dir = out.with_suffix("") / "runs"
  started = time.time()
  selection = plan.selection()
  records = common.execute_shared(selection, root, records_dir, shard, shards,
                                  train_missing=f.train)
  chosen, selection_lines = plan.choose(records)
  finals = plan.finals(chosen)
  if f.train:
    common.execute(common.share(finals, shard, shards), root, records_dir)
  records.update(common.execute(finals, root, records_dir, train_missing=False))
  write(out, f, plan, records, selection, finals, chosen, selection_lines,
        time.time() - started, argv)
  return 0


def _values(records, finals, group, key):
  runs = sorted((r for r in finals if r.group == group and r.name in records),
                key=lambda r: r.seed)
  return [records[r.name]["eval"][key] for r in runs], [r.seed for r in runs]


def write(out, f, plan, records, selection, finals, chosen, selection_lines, wall, argv):
  del wall
  p = plan.plan.preset
  done = [records[r.name] for r in selection + finals if r.name in records]
  command = common.table_command("experiments.transfer_aa", argv)
  k = plan.importance_samples
  lines = [f"# Adversary activation (Eq. 17) transferred to "
           f"{', '.join(b for b, _ in plan.pairs)}: preset `{f.preset}`"
           + (" (SMOKE: plumbing only, numbers mean nothing)" if f.smoke else ""), "",
           f"Command: `{command}` (DIR: the four MNIST IDX files).  ",
           f"Written {common.now()} by code {common.code_version()}; "
           f"{common.plan_summary(selection + finals, records)}; {common.run_time_line(done)}. "
           f"Trained with code: {sorted({r['trained_with_code'] for r in done}) or '-'}.  ",
           common.remaining_line(selection + finals, records), "",
           f"Protocol: Table 3's 1% column (`experiments.table3_vae`, preset `{f.preset}`): "
           f"DCGAN networks of width {p.width}, latent 20, batch {p.batch_size}, Adam 1e-3; "
           f"training data MNIST train, {plan.plan.count(COLUMN)} class-balanced images of the "
           "50,000 outside the validation split (the run's seed: a pair shares them); "
           f"validation every {p.validation_every[COLUMN]} steps on "
           f"{p.validation_examples[COLUMN]} of the 10,000 held-out MNIST training images, "
           f"early stop after {p.patience} evaluations without improvement, budget "
           f"{p.steps[COLUMN]} steps; MNIST test (10,000 images) once per final run.", "",
           "## Test bounds (nats, higher is better; mean ± sample std over seeds)", "",
           f"| model | ELBO | log-likelihood estimate (K={k}) | per seed (estimate) |",
           "|---|---|---|---|"]
  data = {"chosen_rates": chosen, "cells": {}, "pairs": []}
  groups = [g for base, aa in plan.pairs for g in (base, aa, f"{aa} frozen")]
  for group in groups:
    elbo, seeds = _values(records, finals, group, "test_elbo")
    if not elbo:
      continue
    iwae, _ = _values(records, finals, group, "test_log_likelihood_iwae")
    label = group.replace(" frozen", " (frozen D: control)")
    lines.append(f"| {label} | {stats.fmt(elbo)} | {stats.fmt(iwae)} | "
                 f"{', '.join(f'{v:.2f}' for v in iwae)} |")
    data["cells"][group] = {"test_elbo": elbo, "test_log_likelihood_iwae": iwae, "seeds": seeds}
  lines += ["", "## Does the transfer help? (paired by seed, two-sided paired t-test)", "",
            "| comparison | metric | difference (nats) | p | held at p<0.05? |",
            "|---|---|---|---|---|"]
  for base, aa in plan.pairs:
    for better, worse in ((aa, base), (aa, f"{aa} frozen"), (f"{aa} frozen", base)):
      for key, label in (("test_log_likelihood_iwae", f"estimate K={k}"), ("test_elbo", "ELBO")):
        test = stats.paired_by_seed(*_values(records, finals, better, key),
                                    *_values(records, finals, worse, key))
        if test is None:
          continue
        lines.append(f"| {better} > {worse} | {label} | {test['diff']:+.2f} (n={test['n']}) | "
                     f"{stats.fmt_p(test['p'])} | {stats.verdict(test['diff'], test['p'])} |")
        data["pairs"].append(dict(better=better, worse=worse, metric=key, **test))
  if selection_lines:
    lines += ["", "## Discriminator learning rate, chosen on validation", "",
              f"Best validation ELBO of the selection runs (seeds {plan.preset.selection_seeds})"
              " per rate.", "", "| model | validation bound per rate |", "|---|---|"]
    lines += selection_lines
  lines += ["", f"Figure: `{out.with_suffix('.png').name}` (validation ELBO against steps); run "
            f"records: `{out.with_suffix('').name}/runs/`."]
  common.write_table(out, lines, data)
  plot(out.with_suffix(".png"), records, finals, groups)


def plot(path, records, finals, groups) -> None:
  """Validation ELBO against steps: mean over seeds with a ±1 sample-std band."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, ax = plt.subplots(figsize=(5.5, 3.8))
  for group in groups:
    curves = [records[r.name]["curve"] for r in finals if r.group == group and r.name in records]
    steps, mean, std = common.band(curves, "val/elbo")
    if not steps:
      continue
    ax.plot(steps, mean, label=f"{group} (n={len(curves)})")
    ax.fill_between(steps, mean - std, mean + std, alpha=0.2)
  ax.set_xlabel("step")
  ax.set_ylabel("validation ELBO (nats)")
  ax.grid(alpha=0.3)
  if ax.get_lines():
    ax.legend(fontsize=7)
    top = max(line.get_ydata().max() for line in ax.get_lines())
    ax.set_ylim(top - 20, top + 2)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


if __name__ == "__main__":
  common.run_main(main)
