r"""Table 3 (and Table 2, right): does adversary activation (Eq. 17) improve the VAE family?

  python -m experiments.table3_vae --preset=cpu --mnist_dir=../shared/data/mnist
  python -m experiments.table3_vae --preset=paper --mnist_dir=DIR        # GPU/TPU
  python -m experiments.table3_vae --preset=cpu --mnist_dir=DIR --smoke  # seconds (tests)

Data: the real MNIST IDX files (``--mnist_dir``; SHA-256 verified). Of the 60,000 training
images, 10,000 (class-balanced, fixed seed) are held out as the **validation** split; the
1% and 10% columns train on 600 / 6,000 class-balanced images drawn from the other 50,000
with the run's seed; the 100% column trains on all 60,000 (its validation images are
training data there, so it selects nothing: a fixed step budget). Semi-supervised rows:
600 / 6,000 labelled images and the rest of the 50,000 unlabelled. Test: the 10,000 MNIST
test images, fixed binarisation, evaluated once per final run.

Protocol (every choice on validation data, the test set once per final configuration):

1. **Selection** of the AA discriminator's learning rate per column (1%, 10%) from
   ``preset.selection_rates`` (the shared rate 1e-3 among them): separate selection seeds,
   the best mean validation bound wins; no test evaluation. The 100% column uses the 10%
   column's choice, AA-SVAE that of AA-VAE in the same column (both have an unconditional
   discriminator).
2. **Final runs** with seeds 0..n-1: every run evaluates the validation bound every
   ``validation_every`` steps, keeps the best checkpoint and stops after ``patience``
   evaluations without improvement (early stopping); the test set is evaluated once, on
   the selected checkpoint.
   The SVAE's classification weight alpha is chosen per column (1%, 10%) from
   ``preset.svae_alphas`` (Kingma et al.'s 0.1 among them) by the best mean **validation
   accuracy** of q(y|x) at the checkpoint each selection run's own validation bound selects
   (the checkpoint a final run would test); AA-SVAE uses the SVAE's alpha of its column.
   The criterion was fixed before any selection run: a semi-supervised model is built for
   its classifier, and the bound cannot see a collapsed one (at alpha 0.1 the 1% classifier
   collapses to one class and such runs have the *best* early validation bounds:
   ``results/svae_alpha_diagnostic.md``). The validation bound of every alpha is printed
   beside its accuracy.
3. **Control**: the AA models with a discriminator frozen at initialisation
   (``discriminator_learning_rate=0``): generated samples enter Eq. 17 with weights near
   0.5 but no adversary. AA > control says the adversarial part adds something.
4. **Statistics**: mean ± sample std (ddof=1); AA vs base (and AA vs control) pairs share
   seeds, hence the training subset: paired t-test, two-sided p-value, on the test bound;
   AA-SVAE vs SVAE also on the test accuracy of q(y|x) (the paper claims both orderings).

Semi-supervised rows follow Kingma et al. (2014)'s summed objective divided by N: per-batch
weights N_l/N (labelled), N_u/N (unlabelled) and alpha (classification; their alpha = 0.1 N
is alpha = 0.1 here), ``model.svae_*`` fields; alpha is chosen on validation (above).

Results: ``results/table3_vae_<preset>.md`` / ``.json`` / ``.png`` and one committed run
record per run in ``results/table3_vae_<preset>/runs/`` (a run whose record exists is not
trained again; see ``experiments.common``).
"""

from __future__ import annotations

import dataclasses
import pathlib
import time

import numpy as np

from experiments import common
from experiments import stats

PAPER = {  # test lower bound at 1% / 10% / 100% (Table 3); SVAE at 1% / 10% labels
    "vae": {"1%": -122.89, "10%": -104.49, "100%": -92.53},
    "aavae": {"1%": -122.15, "10%": -103.05, "100%": -92.42},
    "cvae": {"1%": -125.44, "10%": -102.63, "100%": -93.16},
    "aacvae": {"1%": -122.88, "10%": -101.63, "100%": -92.75},
    "svae": {"1%": -108.22, "10%": -99.44}, "aasvae": {"1%": -107.61, "10%": -98.81}}
PAPER_ACCURACY = {"svae": {"1%": 0.9412, "10%": 0.9768}, "aasvae": {"1%": 0.9425, "10%": 0.9797}}
COLUMNS = ("1%", "10%", "100%")
SVAE_COLUMNS = ("1%", "10%")
FRACTION = {"1%": 0.01, "10%": 0.1, "100%": 1.0}
PAIRS = (("vae", "aavae"), ("cvae", "aacvae"), ("svae", "aasvae"))
CONTROLS = {"aavae": "aavae_frozen", "aacvae": "aacvae_frozen"}
VARIANT_OF = {"aavae_frozen": "aavae", "aacvae_frozen": "aacvae"}
MNIST_TRAIN = 60000
KINGMA_ALPHA = 0.1  # Kingma et al. (2014)'s alpha = 0.1 N, per batch (see the docstring)


def selection_name(model: str, rate: float, column: str, seed: int) -> str:
  """Run name of a discriminator-rate selection run."""
  return f"select_{model}_dlr{rate:g}_{column.rstrip('%')}pct_seed{seed}"


def alpha_selection_name(alpha: float, column: str, seed: int) -> str:
  """Run name of an SVAE alpha selection run."""
  return f"select_svae_alpha{alpha:g}_{column.rstrip('%')}pct_seed{seed}"


@dataclasses.dataclass(frozen=True)
class Preset:
  width: int                  # DCGAN width of encoder, decoder, discriminator (paper: 64)
  svae_width: int             # the semi-supervised rows (10 decoder passes per unlabelled image)
  batch_size: int
  seeds: dict                 # column -> seeds of the final runs
  steps: dict                 # column -> step budget (early stopping may end sooner)
  svae_steps: dict
  validation_every: dict      # column -> steps between validation evaluations
  validation_examples: dict   # column -> class-balanced validation images (None: all 10,000)
  patience: int               # evaluations without improvement before stopping
  selection_rates: tuple      # discriminator learning rates the selection chooses from
  selection_seeds: dict       # column -> seeds of the selection runs (disjoint from final)
  svae_alphas: tuple          # SVAE classification weights the selection chooses from
  svae_selection_seeds: dict  # column -> seeds of the SVAE alpha selection runs
  gap_seeds: int = 0          # seeds of the 1% base-VAE gap diagnostics (0: none)


PRESETS = {
    # A 2-core CPU machine: width 32 (16 for the semi-supervised rows), budgets with early
    # stopping; finishes over several (interrupted) days.
    "cpu": Preset(width=32, svae_width=16, batch_size=64,
                  seeds={"1%": 5, "10%": 5, "100%": 3},
                  steps={"1%": 10000, "10%": 20000, "100%": 20000},
                  svae_steps={"1%": 6000, "10%": 6000},
                  validation_every={"1%": 250, "10%": 500, "100%": 0},
                  validation_examples={"1%": 5000, "10%": None, "100%": None},
                  patience=8, selection_rates=(1e-3, 1e-4, 1e-5, 1e-6),
                  selection_seeds={"1%": (100, 101), "10%": (100,)},
                  svae_alphas=(0.1, 1.0, 10.0, 30.0, 100.0),
                  svae_selection_seeds={"1%": (100,), "10%": (100,)}, gap_seeds=3),
    # The paper's networks (width 64) and long schedules, for GPU/TPU.
    "paper": Preset(width=64, svae_width=64, batch_size=64,
                    seeds={"1%": 5, "10%": 5, "100%": 5},
                    steps={"1%": 20000, "10%": 100000, "100%": 300000},
                    svae_steps={"1%": 100000, "10%": 100000},
                    validation_every={"1%": 250, "10%": 1000, "100%": 0},
                    validation_examples={"1%": None, "10%": None, "100%": None},
                    patience=10, selection_rates=(1e-3, 1e-4, 1e-5, 1e-6),
                    selection_seeds={"1%": (100, 101), "10%": (100, 101)},
                    svae_alphas=(0.1, 1.0, 10.0, 30.0, 100.0),
                    svae_selection_seeds={"1%": (100, 101), "10%": (100, 101)}),
}


def define_flags(f):
  common.flags.DEFINE_enum("preset", "cpu", sorted(PRESETS), "Budget preset.", flag_values=f)
  common.flags.DEFINE_string("mnist_dir", "", "Folder with the four MNIST IDX files.",
                             flag_values=f)
  common.flags.DEFINE_string("workdir", "workdirs/table3", "Root of the run workdirs.",
                             flag_values=f)
  common.flags.DEFINE_string("out", "", "Table path (default results/table3_vae_<preset>.md).",
                             flag_values=f)
  common.flags.DEFINE_list("models", "vae,aavae,cvae,aacvae,svae,aasvae,aavae_frozen,"
                           "aacvae_frozen", "Rows to run.", flag_values=f)
  common.flags.DEFINE_list("columns", list(COLUMNS), "Columns to run.", flag_values=f)
  common.flags.DEFINE_string("shard", "0/1", "i/n: run every n-th planned run starting at i "
                             "(several processes share a table); the table is written from "
                             "the records of all.", flag_values=f)
  common.flags.DEFINE_bool("train", True, "Train missing runs (False: write the table from "
                           "the existing records only).", flag_values=f)
  common.flags.DEFINE_bool("smoke", False, "Shrink the preset to seconds (plumbing only; "
                           "the numbers mean nothing).", flag_values=f)
  common.flags.DEFINE_bool("verify_checksums", True, "Check the MNIST files' SHA-256.",
                           flag_values=f)


def _smoke(preset: Preset) -> Preset:
  return dataclasses.replace(
      preset, width=4, svae_width=4, batch_size=8, seeds={"1%": 2, "10%": 2, "100%": 2},
      steps={c: 6 for c in COLUMNS}, svae_steps={c: 4 for c in SVAE_COLUMNS},
      validation_every={"1%": 3, "10%": 3, "100%": 0},
      validation_examples={c: 20 for c in COLUMNS}, patience=1, selection_rates=(1e-3, 1e-5),
      selection_seeds={"1%": (100,), "10%": (100,)}, svae_alphas=(0.1, 10.0),
      svae_selection_seeds={"1%": (100,), "10%": (100,)})


class Plan:
  """The runs of the table for a preset and the data at hand."""

  def __init__(self, preset: Preset, mnist_dir: str, verify: bool, smoke: bool,
               train_size: int = MNIST_TRAIN):
    self.preset, self.mnist_dir, self.verify, self.smoke = preset, mnist_dir, verify, smoke
    self.train_size = train_size

  def count(self, column: str) -> int:
    """Training images of a column: the paper's fraction of the 60,000."""
    if self.smoke:
      return {"1%": 40, "10%": 80, "100%": None}[column]
    return int(round(FRACTION[column] * self.train_size))

  def config(self, row: str, column: str, seed: int, *, discriminator_rate=None,
             svae_alpha: float = KINGMA_ALPHA, evaluate_test: bool = True):
    p = self.preset
    variant = VARIANT_OF.get(row, row)
    semi = row in ("svae", "aasvae")
    steps = (p.svae_steps if semi else p.steps)[column]
    config = common.config_for(variant, "mnist", seed=seed, data_dir=self.mnist_dir,
                               width=p.svae_width if semi else p.width,
                               batch_size=p.batch_size, steps=steps,
                               log_every=max(1, min(100, steps // 4)),
                               checkpoint_every=max(1, min(1000, steps)))
    config.data.verify_checksums = self.verify
    if column == "100%":
      config.data.split = "train"  # all 60,000: nothing held out, nothing selected
    else:
      config.data.split = "train_minus_validation"
      config.validation.every = p.validation_every[column]
      config.validation.num_examples = p.validation_examples[column]
      config.validation.select = "elbo"
      config.validation.patience = p.patience
    if semi:
      pool = self.train_size - (0 if column == "100%" else min(10000, self.train_size // 6))
      labelled = self.count(column)
      config.data.num_labelled = labelled
      config.model.svae_alpha = svae_alpha
      config.model.svae_labelled_weight = labelled / pool
      config.model.svae_unlabelled_weight = (pool - labelled) / pool
    elif column != "100%":
      config.data.num_examples = self.count(column)
    if row in VARIANT_OF:
      config.model.discriminator_learning_rate = 0.0  # frozen at initialisation: the control
    elif discriminator_rate is not None:
      config.model.discriminator_learning_rate = discriminator_rate
    config.eval.metrics = ("elbo,svae_accuracy" if semi else "elbo") if evaluate_test else ""
    return config

  def gap_runs(self) -> list:
    """Why the base VAE's 1% bound differs from the paper's: the same run (seeds 0..) (a)
    without early stopping, the whole step budget, tested at its last step, and (b) with the
    paper's width 64, early-stopped like the table. Their own configurations, each tested
    once; they choose nothing."""
    runs = []
    for seed in range(self.preset.gap_seeds):
      full = self.config("vae", "1%", seed)
      full.validation.select, full.validation.patience = "", 0  # the last step is tested
      wide = self.config("vae", "1%", seed)
      wide.model.width = 64
      runs += [common.Run(name=f"gap_vae_nostop_1pct_seed{seed}", group="vae_nostop",
                          column="1%", seed=seed, role="diagnostic", config=full),
               common.Run(name=f"gap_vae_width64_1pct_seed{seed}", group="vae_width64",
                          column="1%", seed=seed, role="diagnostic", config=wide)]
    return runs

  def selection_runs(self, columns, models=("aavae", "aacvae")) -> list:
    """Selection runs of the discriminator rate of ``models`` (AA-SVAE uses AA-VAE's)."""
    runs = []
    for column in columns:
      if column not in self.preset.selection_seeds:
        continue
      for model in ("aavae", "aacvae"):
        if model not in models:
          continue
        for rate in self.preset.selection_rates:
          for seed in self.preset.selection_seeds[column]:
            runs.append(common.Run(
                name=selection_name(model, rate, column, seed),
                group=f"{model}@{rate:g}", column=column, seed=seed, role="selection",
                config=self.config(model, column, seed, discriminator_rate=rate,
                                   evaluate_test=False)))
    return runs

  def svae_selection_runs(self, columns) -> list:
    """Selection runs of the SVAE's alpha (AA-SVAE uses the SVAE's)."""
    runs = []
    for column in columns:
      for alpha in self.preset.svae_alphas:
        for seed in self.preset.svae_selection_seeds.get(column, ()):
          runs.append(common.Run(
              name=alpha_selection_name(alpha, column, seed),
              group=f"svae@{alpha:g}", column=column, seed=seed, role="selection",
              config=self.config("svae", column, seed, svae_alpha=alpha, evaluate_test=False)))
    return runs

  def final_runs(self, models, columns, chosen: dict) -> list:
    """``chosen``: {(model, column): value} from the selections: the discriminator rate of
    'aavae' / 'aacvae', the alpha of 'svae'; a run whose choice is missing is not planned."""
    runs = []
    for model in models:
      semi = model in ("svae", "aasvae")
      for column in (SVAE_COLUMNS if semi else COLUMNS):
        if column not in columns:
          continue
        rate, extra = None, {}
        if model in ("aavae", "aacvae", "aasvae"):
          source = "aavae" if model == "aasvae" else model
          rate = chosen.get((source, column if column != "100%" else "10%"))
          if rate is None:
            continue  # its selection has not finished
        if semi:
          extra["svae_alpha"] = chosen.get(("svae", column))
          if extra["svae_alpha"] is None:
            continue  # the alpha selection has not finished
        for seed in range(self.preset.seeds[column]):
          runs.append(common.Run(
              name=f"{model}_{column.rstrip('%')}pct_seed{seed}", group=model, column=column,
              seed=seed, config=self.config(model, column, seed, discriminator_rate=rate,
                                            **extra)))
    return runs


def grid_records(records: dict, grid, seeds, name) -> dict | None:
  """{value: [records of its selection runs, one per seed]} over ``grid``; None while any of
  them is missing (the choice waits for the whole grid). ``name(value, seed)``: run name."""
  out = {}
  for value in grid:
    runs = [records.get(name(value, seed)) for seed in seeds]
    if any(r is None for r in runs):
      return None
    out[value] = runs
  return out


def choose_rates(plan: Plan, records: dict, columns) -> tuple[dict, list]:
  """{(model, column): rate} chosen by the best mean validation bound; and the table lines."""
  chosen, lines = {}, []
  for column in columns:
    if column not in plan.preset.selection_seeds:
      continue
    for model in ("aavae", "aacvae"):
      grid = grid_records(records, plan.preset.selection_rates,
                           plan.preset.selection_seeds[column],
                           lambda rate, seed: selection_name(model, rate, column, seed))  # pylint: disable=cell-var-from-loop
      if grid is None:
        continue
      values = {rate: [r["validation"]["best"] for r in runs] for rate, runs in grid.items()}
      best = common.best_of(values)
      chosen[(model, column)] = best
      cells = ", ".join(f"{rate:g}: {np.mean(v):.2f}" + (" (chosen)" if rate == best else "")
                        for rate, v in values.items())
      lines.append(f"| {model} | {column} | {cells} |")
  return chosen, lines


def validation_at_selected_step(record: dict, metric: str):
  """``val/<metric>`` of a run at the step its validation bound selected (None if absent)."""
  step = (record.get("validation") or {}).get("best_step")
  for row in record.get("curve", ()):
    if row["step"] == step and f"val/{metric}" in row:
      return row[f"val/{metric}"]
  return None


def choose_alphas(plan: Plan, records: dict, columns) -> tuple[dict, list]:
  """{('svae', column): alpha} chosen by the best mean validation accuracy of q(y|x) at each
  selection run's selected checkpoint; and the table lines (accuracy and bound per alpha)."""
  chosen, lines = {}, []
  for column in columns:
    seeds = plan.preset.svae_selection_seeds.get(column)
    if not seeds:
      continue
    grid = grid_records(records, plan.preset.svae_alphas, seeds,
                         lambda alpha, seed: alpha_selection_name(alpha, column, seed))  # pylint: disable=cell-var-from-loop
    if grid is None:
      continue
    accuracy = {a: [validation_at_selected_step(r, "svae_accuracy") for r in runs]
                for a, runs in grid.items()}
    bound = {a: [r["validation"]["best"] for r in runs] for a, runs in grid.items()}
    for alpha, values in accuracy.items():
      if any(v is None for v in values):
        raise ValueError(f"an SVAE selection run of alpha {alpha:g} ({column}) has no validation "
                         "accuracy at its selected step; rerun it (validation.metrics must "
                         "include svae_accuracy).")
    best = common.best_of(accuracy)
    chosen[("svae", column)] = best
    cells = ", ".join(f"{alpha:g}: {np.mean(accuracy[alpha]):.4f} / {np.mean(bound[alpha]):.2f}"
                      + (" (chosen)" if alpha == best else "") for alpha in accuracy)
    lines.append(f"| svae | {column} | {cells} |")
  return chosen, lines


def main(argv=None) -> int:
  f = common.parse_flags(argv, define_flags)
  preset = PRESETS[f.preset]
  if f.smoke:
    preset = _smoke(preset)
  if not f.mnist_dir:
    raise common.UsageError("pass --mnist_dir: the folder with the four MNIST IDX files "
                            "(README, section Data).")
  unknown = sorted(set(f.models) - set(PAPER) - set(CONTROLS.values()))
  if unknown or not set(f.columns) <= set(COLUMNS):
    raise common.UsageError(f"unknown --models {unknown} or --columns {f.columns}.")
  shard, shards = common.parse_shard(f.shard)
  train_size = common.mnist_train_size(f.mnist_dir, f.verify_checksums)
  plan = Plan(preset, f.mnist_dir, f.verify_checksums, f.smoke, train_size)
  tag = f.preset + ("_smoke" if f.smoke else "")
  root = pathlib.Path(f.workdir) / tag
  # A smoke table proves plumbing only: it goes beside its workdirs, never into results/.
  out = pathlib.Path(f.out or (root / "table3_vae_smoke.md" if f.smoke
                               else f"results/table3_vae_{tag}.md"))
  records_dir = out.with_suffix("") / "runs"
  started = time.time()

  # Stages, cheapest first, so that an interrupted table has whole columns: each stage's
  # selection runs (all shards wait for them), then its final runs.
  stages = [("1%", "plain"), ("10%", "plain"), ("1%", "semi"), ("100%", "plain"),
            ("10%", "semi")]
  semi_rows = {"svae", "aasvae"}
  finals, selection, gaps = [], [], []
  for column, kind in stages:
    if column not in f.columns:
      continue
    models = [m for m in f.models if (m in semi_rows) == (kind == "semi")]
    if not models:
      continue
    source_column = "10%" if column == "100%" else column
    selected = {"aasvae": "aavae"}
    needs = {selected.get(m, m) for m in models} & {"aavae", "aacvae"}
    stage_selection = [r for r in plan.selection_runs([source_column], needs)
                       if r.name not in {s.name for s in selection}]
    if kind == "semi":
      stage_selection += plan.svae_selection_runs([column])
    selection += stage_selection
    common.execute_shared(stage_selection, root, records_dir, shard, shards,
                          train_missing=f.train)
    records = common.execute(selection, root, records_dir, train_missing=False)
    chosen_all, _ = choose_rates(plan, records, ["1%", "10%"])
    chosen_all.update(choose_alphas(plan, records, ["1%", "10%"])[0])
    stage_finals = plan.final_runs(models, [column], chosen_all)
    finals += stage_finals
    stage_gaps = plan.gap_runs() if (column, kind) == ("1%", "plain") and "vae" in models else []
    gaps += stage_gaps  # cheap (the 1% column): right after its finals
    if f.train:
      common.execute(common.share(stage_finals + stage_gaps, shard, shards), root, records_dir)
  records = common.execute(selection + finals + gaps, root, records_dir, train_missing=False)
  chosen, selection_lines = choose_rates(plan, records, ["1%", "10%"])
  alphas, alpha_lines = choose_alphas(plan, records, ["1%", "10%"])
  write(out, f, plan, records, finals, selection, selection_lines, chosen,
        time.time() - started, argv, gaps, alphas, alpha_lines)
  return 0


def _values(records, finals, model, column, key="test_elbo"):
  runs = sorted((r for r in finals if r.group == model and r.column == column),
                key=lambda r: r.seed)
  got = [records[r.name] for r in runs if r.name in records]
  return [g["eval"][key] for g in got], [g["seed"] for g in got], len(runs)


def _ending_lines(records, finals, models, table_data) -> list:
  """How the final runs of the validated columns ended: by early stopping, or by the step
  budget. A run whose best validation bound is at its last evaluation was still improving
  when the budget ended it, so its cell may move with a longer budget."""
  rows = []
  for model in models:
    for column in COLUMNS:
      runs = sorted((r for r in finals if r.group == model and r.column == column
                     and r.name in records and records[r.name].get("validation")),
                    key=lambda r: r.seed)
      if not runs:
        continue
      validation = [records[r.name]["validation"] for r in runs]
      stopped = sum(bool(v.get("stopped_early")) for v in validation)
      at_last = sum(v.get("best_step") == records[r.name]["final_step"]
                    for v, r in zip(validation, runs))
      budget = runs[0].config.steps
      best_steps = [v.get("best_step") for v in validation]
      rows.append(f"| {model} | {column} | {len(runs)} | {stopped} | {at_last} | "
                  f"{', '.join(str(b) for b in best_steps)} ({budget}) |")
      table_data.setdefault("endings", {})[f"{model}@{column}"] = {
          "runs": len(runs), "stopped_early": stopped, "best_at_last_evaluation": at_last,
          "best_steps": best_steps, "budget": budget}
  if not rows:
    return []
  return ["", "## How the final runs ended (columns with validation)", "",
          "Early stopping ends a run after the preset's patience of evaluations without "
          "improvement; otherwise the step budget ends it. A run whose best validation bound "
          "is at its last evaluation was still improving at the budget: its cell may move "
          "with a longer one.", "",
          "| model | column | runs | stopped early | best at the last evaluation | "
          "best step per seed (budget) |", "|---|---|---|---|---|---|"] + rows


def _comparison_lines(records, finals, models, table_data) -> list:
  """AA vs base (and vs the frozen control) per column, paired by seed: the test bound for
  every pair, and the test accuracy of q(y|x) too for the semi-supervised pair (the paper
  claims both orderings for AA-SVAE)."""
  lines = ["", "## Does AA > base hold? (paired by seed, two-sided paired t-test)", "",
           "| comparison | column | metric | difference | p | held at p<0.05? |",
           "|---|---|---|---|---|---|"]
  comparisons = [(aa, base) for base, aa in PAIRS] + [(aa, ctl) for aa, ctl in CONTROLS.items()]
  comparisons += [(ctl, aa.replace("aa", "", 1)) for aa, ctl in CONTROLS.items()]
  metrics = {"test_elbo": ("test bound (nats)", 2), "svae_accuracy": ("test accuracy", 4)}
  for better, worse in comparisons:
    if better not in models or worse not in models:
      continue
    keys = ["test_elbo"] + (["svae_accuracy"] if worse == "svae" else [])
    for column in COLUMNS:
      for key in keys:
        values_b, seeds_b, planned_b = _values(records, finals, better, column, key)
        values_w, seeds_w, planned_w = _values(records, finals, worse, column, key)
        test = stats.paired_by_seed(values_b, seeds_b, values_w, seeds_w)
        if test is None:
          continue
        label, digits = metrics[key]
        verdict = stats.interim(stats.verdict(test["diff"], test["p"]), test["n"],
                                min(planned_b, planned_w))
        lines.append(f"| {better} > {worse} | {column} | {label} | {test['diff']:+.{digits}f} "
                     f"(n={test['n']}) | {stats.fmt_p(test['p'])} | {verdict} |")
        table_data["pairs"].append(dict(better=better, worse=worse, column=column, metric=key,
                                        **test))
  return lines


def _gap_lines(records, finals, gaps, preset, table_data) -> list:
  """The base VAE's 1% test bound under the table's protocol beside the same runs without
  early stopping and at the paper's width: how much the stopping rule and the width move it."""
  if not gaps:
    return []
  rows = [("vae: the table's run (width "
           f"{preset.width}, early-stopped, best validation checkpoint tested)", "vae", finals),
          (f"the same without early stopping: all {preset.steps['1%']} steps, last step tested",
           "vae_nostop", gaps),
          ("the same at the paper's width 64 (early-stopped like the table)", "vae_width64", gaps)]
  lines = ["", "## The base VAE at 1% against the paper's -122.89", "",
           "Diagnostic runs (seeds 0.., the table's training subsets; each configuration tested "
           "once, none chooses anything): how far the stopping rule and the network width move "
           "the test bound.", "",
           "| run | test bound | vs the paper | steps trained (mean) | per seed |",
           "|---|---|---|---|---|"]
  cells = table_data["gap_diagnostics"] = {}
  by_seed = {}  # group -> {seed: test bound}
  for label, group, runs in rows:
    values, seeds, planned = _values(records, runs, group, "1%")
    if not values:
      lines.append(f"| {label} | not run (0 of {planned}) | - | - | - |")
      continue
    steps = float(np.mean([records[r.name]["final_step"] for r in runs
                           if r.group == group and r.column == "1%" and r.name in records]))
    cells[group] = {"values": values, "seeds": seeds, "mean_final_step": steps}
    by_seed[group] = dict(zip(seeds, values))
    lines.append(f"| {label} | {stats.fmt(values, 2)} | {np.mean(values) - PAPER['vae']['1%']:+.2f} "
                 f"| {steps:.0f} | {', '.join(f'{v:.2f}' for v in values)} |")
  # Each diagnostic against the table's run of the same seed (same training subset).
  base = by_seed.get("vae", {})
  said = {"vae_nostop": "Without early stopping", "vae_width64": "At width 64"}
  notes = []
  for group, words in said.items():
    other = by_seed.get(group, {})
    seeds = sorted(set(base) & set(other))
    if not seeds:
      continue
    diffs = [other[s] - base[s] for s in seeds]
    low, high = sorted((np.mean([base[s] for s in seeds]), np.mean([other[s] for s in seeds])))
    where = ("between the two" if low <= PAPER["vae"]["1%"] <= high else
             "outside both")
    notes.append(f"{words} the test bound moves by {np.mean(diffs):+.2f} nats (same seeds "
                 f"{seeds}, range {min(diffs):+.2f} to {max(diffs):+.2f}); the paper's -122.89 "
                 f"lies {where}.")
    cells[group]["paired_difference"] = float(np.mean(diffs))
  if notes:
    lines += [""] + [" ".join(notes)]
  return lines


def write(out, f, plan, records, finals, selection, selection_lines, chosen, wall, argv,
          gaps=(), alphas=None, alpha_lines=()):
  p = plan.preset
  done = [records[r.name] for r in finals + selection + list(gaps) if r.name in records]
  command = common.table_command("experiments.table3_vae", argv)
  lines = [f"# Table 3 (and Table 2, right): preset `{f.preset}`"
           + (" (SMOKE: plumbing only, numbers mean nothing)" if f.smoke else ""), "",
           f"Command: `{command}` (DIR: the four MNIST IDX files).  ",
           f"Written {common.now()} by code {common.code_version()}; "
           f"{common.plan_summary(finals + selection + list(gaps), records)}; "
           f"{common.run_time_line(done)}. "
           f"Trained with code: {sorted({r['trained_with_code'] for r in done}) or '-'}.  ",
           common.remaining_line(finals + selection + list(gaps), records), "",
           f"Networks: DCGAN encoder/decoder/discriminator of width {p.width} "
           f"(semi-supervised rows {p.svae_width}; the paper's: 64), latent 20, batch "
           f"{p.batch_size}, Adam 1e-3; dynamic binarisation for training, one fixed binarisation"
           " of the evaluation images. Test lower bound: single-sample ELBO (SVAE: the M2 bound"
           " with the label marginalised by q(y|x)), in nats, higher is better.", "",
           "## Data", "",
           f"- Training (MNIST, real): 1% = {plan.count('1%')} and 10% = {plan.count('10%')} "
           "class-balanced images of the 50,000 training images outside the validation split, "
           "drawn with the run's seed (the AA run and its base share it); 100% = all "
           f"{plan.train_size} training images.",
           "- Validation (MNIST, real): 10,000 class-balanced training images held out with a "
           f"fixed seed; 1% column: a fixed class-balanced {p.validation_examples['1%']} of them.",
           "- Test (MNIST, real): the 10,000 test images, evaluated once per final run.",
           f"- Budgets: {p.steps} steps (semi-supervised {p.svae_steps}); validation every "
           f"{p.validation_every} steps; early stop after {p.patience} evaluations without "
           "improvement; the checkpoint with the best validation bound is tested. 100%: the "
           "full budget, the last checkpoint (no held-out data).", ""]
  lines += ["## Test lower bound", "",
            "Mean ± sample std (ddof=1) over seeds, n = seeds done; paper in brackets.", "",
            "| model | 1% | 10% | 100% |", "|---|---|---|---|"]
  rows = [m for m in ("vae", "aavae", "aavae_frozen", "cvae", "aacvae", "aacvae_frozen", "svae",
                      "aasvae") if m in f.models]
  table_data = {"cells": {}, "pairs": [], "selection": {f"{k[0]}@{k[1]}": v
                                                        for k, v in chosen.items()}}
  table_data["selection"].update({f"svae_alpha@{c}": v for (_, c), v in (alphas or {}).items()})
  for model in rows:
    cells = []
    for column in COLUMNS:
      values, seeds, planned = _values(records, finals, model, column)
      paper = PAPER.get(model, {}).get(column)
      if planned == 0 and not values:  # not in the table, or its selection has not finished
        cells.append("-" + (f" [{paper}]" if paper is not None else ""))
        continue
      text = stats.fmt(values) if values else "not run"
      if values and len(values) < planned:
        text += f" ({len(values)} of {planned} seeds)"
      cells.append(text + (f" [{paper}]" if paper is not None else ""))
      table_data["cells"][f"{model}@{column}"] = {"test_elbo": values, "seeds": seeds}
    label = model.replace("_frozen", " (frozen D: control)")
    lines.append(f"| {label} | " + " | ".join(cells) + " |")
  semi_rows = [m for m in ("svae", "aasvae") if m in f.models]
  if semi_rows:
    lines += ["", "## Semi-supervised test accuracy", "", "| model | 1% labels | 10% labels |",
              "|---|---|---|"]
    for model in semi_rows:
      cells = []
      for column in SVAE_COLUMNS:
        values, seeds, planned = _values(records, finals, model, column, "svae_accuracy")
        if planned == 0 and not values:  # its selection has not finished: nothing planned
          cells.append(f"- [{PAPER_ACCURACY[model][column]}]")
          continue
        text = stats.fmt(values, 4) if values else "not run"
        if values and len(values) < planned:
          text += f" ({len(values)} of {planned} seeds)"
        cells.append(f"{text} [{PAPER_ACCURACY[model][column]}]")
        table_data["cells"][f"{model}@{column}"]["svae_accuracy"] = values
      lines.append(f"| {model} | " + " | ".join(cells) + " |")
  lines += _comparison_lines(records, finals, f.models, table_data)
  lines += _ending_lines(records, finals, rows, table_data)
  if selection_lines:
    lines += ["", "## Discriminator learning rate, chosen on validation", "",
              "Mean best validation bound of the selection runs (seeds "
              f"{p.selection_seeds}), per rate; the 100% column uses the 10% choice, AA-SVAE "
              "the AA-VAE choice of its column.", "",
              "| model | column | validation bound per rate |", "|---|---|---|"] + selection_lines
    edge = sorted(f"{m} {c}" for (m, c), rate in chosen.items()
                  if rate == min(p.selection_rates))
    if edge:
      lines += ["", f"At the grid's lowest rate ({min(p.selection_rates):g}): {', '.join(edge)}. "
                "The next step down is a discriminator that does not learn at all, which is the "
                "frozen-discriminator control (rate 0) of the table: AA vs control says whether "
                "the adversary's learning adds anything at such a rate."]
  if alpha_lines:
    lines += ["", "## SVAE alpha, chosen on validation", "",
              "Per alpha: mean validation accuracy of q(y|x) / mean validation bound at the "
              "checkpoint each selection run's validation bound selected (seeds "
              f"{p.svae_selection_seeds}); the best accuracy is chosen (criterion fixed before "
              "the runs: the bound cannot see a collapsed classifier); AA-SVAE uses the SVAE's "
              f"alpha. Kingma et al. (2014)'s alpha is {KINGMA_ALPHA:g} in this per-batch form.",
              "", "| model | column | validation accuracy / bound per alpha |", "|---|---|---|"]
    lines += list(alpha_lines)
  base = _values(records, finals, "vae", "1%")[0]
  if base:
    gap = float(np.mean(base)) - PAPER["vae"]["1%"]
    lines += ["", f"Base VAE at 1%: {np.mean(base):.2f} vs the paper's -122.89 "
              f"({gap:+.2f} nats; the issue's tolerance is 3)."
              + (" The next section measures what moves it." if gaps else "")]
  lines += _gap_lines(records, finals, gaps, p, table_data)
  drawn = plot(out.with_suffix(".png"), records, finals, selection)
  lines += ["", "Per-run values, curves and diagnostics: the run records in "
            f"`{out.with_suffix('').name}/runs/`"
            + (f"; figure: `{out.with_suffix('.png').name}` ({drawn})." if drawn else
               "; no figure yet (no finished run to draw).")]
  common.write_table(out, lines, table_data)


def figure_panels(records, finals, selection=()) -> tuple[list, dict]:
  """The figure's panels, in order, as ``(kind, column, models)``; and the finished selection
  runs by ``(model, column)`` and rate. Kinds: ``'final'`` (validation bound of the final
  runs), ``'final_accuracy'`` (their classifier's validation accuracy: semi-supervised rows,
  right after their bound) and ``'selection'`` (one line per rate or alpha)."""
  panels = []
  for c in ("1%", "10%"):
    for ms in (("vae", "aavae", "aavae_frozen"), ("cvae", "aacvae", "aacvae_frozen"),
               ("svae", "aasvae")):
      if any(r.name in records and r.column == c and r.group in ms for r in finals):
        panels.append(("final", c, ms))
        if ms[0] == "svae":  # the table compares the semi-supervised rows on accuracy too
          panels.append(("final_accuracy", c, ms))
  by_rate = {}  # (model, column) -> {rate: [its finished selection runs]}
  for run in selection:
    if run.name in records:
      model, rate = run.group.split("@")
      by_rate.setdefault((model, run.column), {}).setdefault(float(rate), []).append(run)
  panels += [("selection", c, m) for (m, c) in sorted(by_rate, key=lambda k: (k[1], k[0]))]
  return panels, by_rate


def plot(path, records, finals, selection=()) -> str:
  """Validation bound against steps: base vs AA vs control (final runs, mean over seeds with
  a band; the semi-supervised rows also their classifier's validation accuracy) and, per
  selection, one line per discriminator rate or alpha (mean over selection seeds).
  Returns what was drawn ('' when nothing was)."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  panels, by_rate = figure_panels(records, finals, selection)
  if not panels:
    return ""
  # A grid of at most 4 panels a row: one row of 12 panels was too wide to read.
  ncols = min(4, len(panels))
  nrows = -(-len(panels) // ncols)
  fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 3.6 * nrows), squeeze=False)
  for ax in axes.flat[len(panels):]:
    ax.set_visible(False)
  colors = {}
  for ax, (kind, column, models) in zip(axes.flat, panels):
    key = "val/elbo"
    if kind in ("final", "final_accuracy"):
      groups = [(model, [records[r.name]["curve"] for r in finals
                         if r.group == model and r.column == column and r.name in records])
                for model in models]
      if kind == "final":
        title = f"{column} column, {models[0].upper()} rows: validation bound"
      else:
        key = "val/svae_accuracy"
        title = f"{column} column, {models[0].upper()} rows: validation accuracy of q(y|x)"
    else:
      # The SVAE's alpha is chosen by validation accuracy, the discriminator rate by the bound.
      what, key = ("alpha", "val/svae_accuracy") if models == "svae" else ("D rate", "val/elbo")
      groups = [(f"{what} {rate:g}", [records[r.name]["curve"] for r in runs])
                for rate, runs in sorted(by_rate[(models, column)].items(), reverse=True)]
      title = (f"{models} {column}: selection runs' validation "
               + ("accuracy" if models == "svae" else "bound"))
    for label, curves in groups:
      if not curves:
        continue
      steps, mean, std = common.band(curves, key)
      if not steps:
        continue
      # One colour per model (final panels) or per rate (selection panels) across panels.
      color = colors.setdefault(label.split(" (")[0], f"C{len(colors) % 10}")
      ax.plot(steps, mean, color=color, label=f"{label} (n={len(curves)})")
      ax.fill_between(steps, mean - std, mean + std, alpha=0.2, color=color)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("step")
    ax.grid(alpha=0.3)
    if ax.get_lines():
      ax.legend(fontsize=7)
    lows = [line.get_ydata().max() for line in ax.get_lines()]
    if lows and key == "val/elbo":
      ax.set_ylim(min(lows) - 15, max(lows) + 2)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
  drawn = {"final": "final runs", "final_accuracy": "final runs", "selection": "selection runs"}
  return " and ".join(sorted({drawn[k] for k, _, _ in panels}))


if __name__ == "__main__":
  common.run_main(main)
