r"""Table 2 (left, middle): does importance weighting (Eq. 16) improve GANs?

  python -m experiments.table2_gan --preset=cpu --mnist_dir=../shared/data/mnist
  python -m experiments.table2_gan --preset=paper --mnist_dir=DIR        # GPU/TPU
  python -m experiments.table2_gan --preset=cpu --mnist_dir=DIR --smoke  # seconds (tests)
  python -m experiments.table2_gan --preset=cpu --mnist_dir=DIR --pairs='infogan:iw(infogan)' \
      --seeds=3 --out=results/transfer_iw_infogan_cpu.md     # the transfer beyond the paper

GAN vs IWGAN (inception score) and CGAN vs IW-CGAN (conditional-generation accuracy) on
all 60,000 real MNIST training images (``--mnist_dir``, SHA-256 verified), DCGAN networks
and hyperparameters (Adam 2e-4, beta1 0.5, batch 64, latent 100), identical for base and
IW models: the only difference is the generator objective.

Protocol:

1. **The evaluation classifier** (the DCGAN discriminator with a class head) is trained on
   the 60,000 training images and cached by content hash; its test accuracy (the paper's:
   0.990) and the real test set's inception score (the paper's: 9.09) are reported.
2. **Curves** (``curve`` runs, one seed per model, ``preset.curve_steps``): inception
   score and conditional accuracy of 5,000 generated samples every ``eval_every`` steps.
   These metrics use no held-out images, and certainly not the test set. The step count
   of the final runs is chosen from them (``plateau_start``): the first evaluated step S
   from which the curve has stopped rising, i.e. for S and every later evaluated step S'
   up to the start of the curve's last ``plateau_tail`` (a fifth), the least-squares line
   through the points from S' to the end rises by less than ``PLATEAU_TOLERANCE`` over
   that span, half the paper's IW - base gap of the metric (0.055 IS, 0.001 accuracy):
   training longer would change the score by less than the effect under test. The pair
   gets the later S of its two models. If no such step exists (the line through the last
   fifth still rises by the tolerance or more), the table says the curve had not
   plateaued and the finals use the curve's last step. A curve still creeping up counts as
   flat when its line through the last fifth rises by less than the tolerance: training on
   to the curve's end would change the score by less than the effect under test (training
   beyond it might change it more). A preset may pin a metric's final
   step (``final_steps``) to one on the plateau; the table says whether it is on it.

   The rule was a 3-point moving average staying within the tolerance of its maximum until
   2026-12-05. On the 5,000-sample inception-score curves that rule reads noise as a
   trend: one evaluation's IS has a noise std of ~0.03 (successive differences over the
   second half of the committed 120,000-step curves), the 3-point average ~0.017, so over a
   flat stretch its maximum sits ~0.04 above the mean and the average dips more than 0.055
   below that maximum every few evaluations. A line fitted over the whole remaining curve
   averages that noise away. On the 30,000-step accuracy curves the new rule puts the
   plateau at 22,000 steps (the old one at 24,000); the CGAN / IW-CGAN finals, run at 24,000
   before the change, lie on it and are kept (``final_steps`` of the ``cpu`` preset).

   Inception-score curves run 120,000 steps on ``cpu``: at 30,000 the GAN pair was still
   rising by ~0.01 IS per 1,000 steps and the 60,000-step curves (records in git history)
   by ~0.005; on the 120,000-step curves the rule finds the plateau from 83,000 (GAN) and
   96,000 (IWGAN; fitted rise over the last fifth 0.054 against the 0.055 tolerance), so
   the pair's finals run 96,000 steps. The curves are not asymptotic: a 240,000-step
   continuation of both (2026-12-05, commit c27f778) saw the GAN's 10,000-step mean IS dip
   to 6.89 around 150,000 and rise to ~6.98 by 210,000 while IWGAN stayed at 6.74-6.82;
   its records were lost with the machine before they were committed, so it is not part
   of the table, and at ~3 hours per 120,000 steps per core (and finals of that length
   for 10+ seeds) a longer schedule does not fit the ``cpu`` budget. The table compares
   the models at 96,000 steps and says so.
3. **Final runs**, seeds 0..n-1, trained for the chosen steps and scored once at the end
   with 10,000 samples (10 splits); Welch's t-test for IW > base. A final run starts from
   the finished workdir of the same model and seed with fewer steps when one is there
   (``common.warm_start``: bitwise the run trained directly, at the cost of the missing steps). The table reports the
   seed std at convergence and how many seeds a gap of the paper's size (+0.11 IS) needs.
   Seeds per arm on ``cpu``: 5 for CGAN / IW-CGAN, 6 for GAN / IWGAN (``final_seeds``, fixed
   from the 60,000-step finals' seed std before any 96,000-step final ran; never from a
   p-value).
4. **Diagnostics** committed with the results: the effective sample size of the Eq. 16
   weights and D(real) / D(fake) over training (run records and the figure).

Results: ``results/table2_gan_<preset>.md`` / ``.json`` / ``.png``, one sample grid per model
(``results/table2_gan_<preset>/<model>_samples.png``, copied from the lowest finished seed's
workdir, with a ``.json`` note of its source; where that workdir is gone, ``--regrid`` retrains
the same config elsewhere for the grid and the table says so) and the run records in
``results/table2_gan_<preset>/runs/``.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import shutil
import sys

import numpy as np

from experiments import common
from experiments import stats

PAPER = {"gan": (8.34, 0.03), "iwgan": (8.45, 0.04), "cgan": (0.985, 0.002),
         "iwcgan": (0.987, 0.002)}
PAIRS = (("gan", "iwgan"), ("cgan", "iwcgan"))  # the paper's; --pairs runs others
# Half the paper's IW - base gap (8.45 - 8.34 IS; 0.987 - 0.985 accuracy): a curve within it
# of its maximum has stopped rising for the purpose of the comparison.
PLATEAU_TOLERANCE = {"inception_score": 0.055, "conditional_accuracy": 0.001}


def metric_of(model: str) -> str:
  """Label-conditioned generators are scored by conditional accuracy, the others by IS."""
  from unigen_jax import variants  # pylint: disable=g-import-not-at-top
  conditional = "label" in variants.get(model).batch_keys
  return "conditional_accuracy" if conditional else "inception_score"


def run_name(model: str) -> str:
  """A file-name-safe spelling of a variant name: iw(infogan) -> iw-infogan."""
  return model.replace("(", "-").replace(")", "")
PAPER_SVHN = {"gan": "5.18 ± .03", "iwgan": "5.34 ± .03", "cgan": "0.797 ± .005",
              "iwcgan": "0.798 ± .006"}


@dataclasses.dataclass(frozen=True)
class Preset:
  width: int
  batch_size: int
  curve_steps: dict           # metric -> length of the curve runs the steps are chosen from
  eval_every: int
  curve_samples: int          # generated samples per curve point
  final_samples: int          # generated samples of the final score
  seeds: int                  # final runs per model (at least; see --seeds)
  classifier_steps: int
  plateau_tail: float = 0.2   # the plateau must cover at least this last part of the curve
  final_steps: dict = dataclasses.field(default_factory=dict)  # metric -> pinned final step
  final_seeds: dict = dataclasses.field(default_factory=dict)  # metric -> seeds (else seeds)


PRESETS = {
    "cpu": Preset(width=32, batch_size=64,
                  curve_steps={"inception_score": 120000, "conditional_accuracy": 30000},
                  eval_every=1000,
                  curve_samples=5000, final_samples=10000, seeds=5, classifier_steps=4000,
                  # Chosen by the earlier rule (2026-12-04); on the plateau (from 22,000) of
                  # the current one, so the finals run then stay (module docstring).
                  final_steps={"conditional_accuracy": 24000},
                  # Fixed before any 96,000-step final: the 60,000-step finals' pooled seed
                  # std (0.060 IS, 3 seeds per arm) needs 6 seeds per arm for 80% power at
                  # the paper's +0.11 (stats.seeds_for_power).
                  final_seeds={"inception_score": 6}),
    "paper": Preset(width=64, batch_size=64,
                    curve_steps={"inception_score": 100000, "conditional_accuracy": 100000},
                    eval_every=2000,
                    curve_samples=10000, final_samples=50000, seeds=5, classifier_steps=10000),
}


def define_flags(f):
  d = common.flags
  d.DEFINE_enum("preset", "cpu", sorted(PRESETS), "Budget preset.", flag_values=f)
  d.DEFINE_string("mnist_dir", "", "Folder with the four MNIST IDX files.", flag_values=f)
  d.DEFINE_string("workdir", "workdirs/table2", "Root of the run workdirs.", flag_values=f)
  d.DEFINE_string("out", "", "Table path (default results/table2_gan_<preset>.md).",
                  flag_values=f)
  d.DEFINE_list("pairs", [f"{b}:{i}" for b, i in PAIRS], "base:iw pairs to compare (any "
                "variant and its importance-weighted version, e.g. infogan:iw(infogan)).",
                flag_values=f)
  d.DEFINE_list("models", None, "Models to run (default: every model of --pairs).",
                flag_values=f)
  d.DEFINE_integer("seeds", None, "Final runs per model (default: the preset's).",
                   flag_values=f)
  d.DEFINE_string("shard", "0/1", "i/n: run every n-th planned run starting at i.",
                  flag_values=f)
  d.DEFINE_bool("train", True, "Train missing runs (False: table from the records only).",
                flag_values=f)
  d.DEFINE_bool("smoke", False, "Shrink the preset to seconds (plumbing only).",
                flag_values=f)
  d.DEFINE_bool("verify_checksums", True, "Check the MNIST files' SHA-256.", flag_values=f)
  d.DEFINE_bool("regrid", False, "For a model with no sample grid and no final workdir to "
                "copy one from, retrain its lowest finished seed's final config (the same "
                "fingerprint) under <workdir>/<preset>/regrid/ for the grid; its record stays "
                "there, the table's records are untouched.", flag_values=f)


def _smoke(preset: Preset) -> Preset:
  return dataclasses.replace(preset, width=4, batch_size=8,
                             curve_steps={"inception_score": 6, "conditional_accuracy": 6},
                             eval_every=2,
                             curve_samples=100, final_samples=100, seeds=2, classifier_steps=10,
                             final_steps={}, final_seeds={})


def run_config(model, seed, steps, preset, f, classifier_dir, final: bool):
  config = common.config_for(model, "mnist", seed=seed, data_dir=f.mnist_dir, width=preset.width,
                             batch_size=preset.batch_size, steps=steps,
                             log_every=max(1, min(100, steps // 4)),
                             checkpoint_every=max(1, min(2000, steps)))
  config.data.verify_checksums = f.verify_checksums
  config.validation.every = preset.eval_every
  config.validation.split = "validation"  # unused by sample metrics; never the test split
  config.validation.num_generated = preset.curve_samples
  config.eval.classifier_dir = str(classifier_dir)
  if final:
    config.eval.metrics = metric_of(model) + (
        ",inception_score" if metric_of(model) == "conditional_accuracy" else "")
    config.eval.num_generated = preset.final_samples
    config.sample_every = steps  # one grid of the final generator
  return config


def fitted_rise(steps, values) -> float:
  """Rise of the least-squares line through ``(steps, values)`` from the first step to the
  last (its slope times the span)."""
  steps, values = np.asarray(steps, dtype=float), np.asarray(values, dtype=float)
  slope = np.polyfit(steps, values, 1)[0]
  return float(slope * (steps[-1] - steps[0]))


def plateau_start(steps, values, tolerance: float, tail: float) -> tuple[int | None, float]:
  """(S, rise over the last ``tail``): S is the first evaluated step from which the curve has
  stopped rising: for S and every later evaluated step S' at most ``(1 - tail)`` of the way
  along the curve, the least-squares line through the points from S' to the end rises by
  less than ``tolerance``. None when there is no such step (the line through the last
  ``tail`` of the curve rises by the tolerance or more)."""
  steps, values = np.asarray(steps, dtype=float), np.asarray(values, dtype=float)
  candidates = [i for i in range(len(steps) - 2) if steps[i] <= (1 - tail) * steps[-1]]
  if not candidates:
    raise ValueError(f"a curve of {len(steps)} points has no step to test for a plateau.")
  # 1e-9: a perfectly flat curve fits with a slope of rounding size, either sign.
  flat = [fitted_rise(steps[i:], values[i:]) < tolerance - 1e-9 for i in candidates]
  first = None
  for i, ok in zip(reversed(candidates), reversed(flat)):
    if not ok:
      break
    first = int(steps[i])
  return first, fitted_rise(steps[candidates[-1]:], values[candidates[-1]:])


def choose_steps(records: dict, preset: Preset, models, pairs=PAIRS) -> tuple[dict, list, dict]:
  """({pair: steps}, table lines, {pair: plateau shown}): the later of the two models'
  ``plateau_start``; without a plateau the pair gets the curve's last step. A step pinned in
  ``preset.final_steps`` is used instead, and counts as on the plateau only if it lies
  between the plateau's start and the curve's end."""
  chosen, lines, plateaued = {}, [], {}
  for base, iw in pairs:
    if base not in models or iw not in models:
      continue
    curves = [records.get(f"curve_{run_name(m)}_seed100") for m in (base, iw)]
    metric = metric_of(base)
    tolerance, length = PLATEAU_TOLERANCE[metric], preset.curve_steps[metric]
    if any(c is None for c in curves):
      # Said, not dropped: the pair's finals wait for both curves.
      lines += [f"| {m} | {metric} | {length} | - | curve not finished: no step chosen yet |"
                for m in (base, iw)]
      continue
    firsts = []
    for model, record in zip((base, iw), curves):
      points = [(r["step"], r[f"val/{metric}"]) for r in record["curve"] if f"val/{metric}" in r]
      first, tail_rise = plateau_start([s for s, _ in points], [v for _, v in points],
                                       tolerance, preset.plateau_tail)
      firsts.append(first)
      lines.append(f"| {model} | {metric} | {length} | {tail_rise:+.4g} | "
                   + (f"from step {first} |" if first is not None else "**none** |"))
    start = None if None in firsts else int(max(firsts))
    pinned = preset.final_steps.get(metric)
    if pinned is not None:
      plateaued[(base, iw)] = start is not None and start <= pinned <= length
      chosen[(base, iw)] = int(pinned)
    else:
      plateaued[(base, iw)] = start is not None
      chosen[(base, iw)] = start if start is not None else length
  return chosen, lines, plateaued


def main(argv=None) -> int:
  f = common.parse_flags(argv, define_flags)
  preset = PRESETS[f.preset]
  if f.smoke:
    preset = _smoke(preset)
  if not f.mnist_dir:
    raise common.UsageError("pass --mnist_dir: the folder with the four MNIST IDX files "
                            "(README, section Data).")
  pairs = parse_pairs(f.pairs)
  in_pairs = [m for pair in pairs for m in pair]
  f.models = f.models or in_pairs
  unknown = sorted(set(f.models) - set(in_pairs))
  if unknown:
    raise common.UsageError(f"--models {unknown} are in no --pairs ({', '.join(in_pairs)}).")
  shard, shards = common.parse_shard(f.shard)
  tag = f.preset + ("_smoke" if f.smoke else "")
  root = pathlib.Path(f.workdir) / tag
  # A smoke table proves plumbing only: it goes beside its workdirs, never into results/.
  out = pathlib.Path(f.out or (root / "table2_gan_smoke.md" if f.smoke
                               else f"results/table2_gan_{tag}.md"))
  records_dir = out.with_suffix("") / "runs"
  from unigen_jax import eval_classifier  # pylint: disable=g-import-not-at-top
  from unigen_jax import input_pipeline  # pylint: disable=g-import-not-at-top
  # The classifier's weights are committed with the results and seed the cache: retrained on
  # another machine, the same recipe gives other weights (XLA:CPU's float results depend on
  # the CPU), and every final of a table must be scored by one classifier.
  cache, committed = pathlib.Path(f.workdir) / "classifiers", out.with_suffix("") / "classifiers"
  for saved in sorted(committed.glob("*/classifier.json")):
    if not (cache / saved.parent.name).exists():
      shutil.copytree(saved.parent, cache / saved.parent.name)
  try:
    classifier_dir = eval_classifier.cached_classifier(
        cache, "mnist", split="train", data_dir=f.mnist_dir,
        steps=preset.classifier_steps, width=32 if not f.smoke else 4,
        verify=f.verify_checksums, log=lambda s: print(s, file=sys.stderr, flush=True))
  except input_pipeline.DataError as err:
    print(f"error: {err}", file=sys.stderr)
    return 2
  classifier = eval_classifier.EvalClassifier.load(classifier_dir)  # checks its SHA-256
  if not (committed / classifier_dir.name).exists():
    shutil.copytree(classifier_dir, committed / classifier_dir.name)
  from unigen_jax import metrics as metric_lib  # pylint: disable=g-import-not-at-top
  test_images, _ = input_pipeline.load_eval_split("mnist", "test", data_dir=f.mnist_dir,
                                                  verify=f.verify_checksums)
  real = metric_lib.sample_class_diagnostics(classifier.logits(test_images))
  curves = [common.Run(name=f"curve_{run_name(m)}_seed100", group=m, column="curve", seed=100,
                       role="curve", config=run_config(m, 100, preset.curve_steps[metric_of(m)],
                                                       preset, f, classifier_dir, final=False))
            for m in f.models]
  records = common.execute_shared(curves, root, records_dir, shard, shards,
                                  train_missing=f.train)
  chosen, curve_lines, plateaued = choose_steps(records, preset, f.models, pairs)
  finals = []
  for pair, steps in chosen.items():
    for seed in range(f.seeds or preset.final_seeds.get(metric_of(pair[0]), preset.seeds)):
      for model in pair:
        # Finished finals of the same model and seed with fewer steps (e.g. of an earlier
        # step choice) are where this one may start (bitwise the same run, fewer steps).
        shorter = tuple(sorted(p.name for p in root.glob(f"{run_name(model)}_*steps_seed{seed}")
                               if p.is_dir()))
        finals.append(common.Run(name=f"{run_name(model)}_{steps}steps_seed{seed}", group=model,
                                 column=str(steps), seed=seed, continues=shorter,
                                 config=run_config(model, seed, steps, preset, f, classifier_dir,
                                                   final=True)))
  if f.train:
    common.execute(common.share(finals, shard, shards), root, records_dir)
  records.update(common.execute(finals, root, records_dir, train_missing=False))
  excluded = sorted(r.name for r in finals
                    if r.name in records and not scored_by(records[r.name], classifier.summary()))
  for name in excluded:
    print(f"{name}: scored by another classifier instance than {classifier_dir.name}'s "
          "committed weights; left out of the table", file=sys.stderr)
    records.pop(name)
  grids = out.with_suffix("")
  for model in f.models:
    done = sorted((r for r in finals if r.group == model and r.name in records),
                  key=lambda r: r.seed)
    if done:
      copy_grid(done[0], records[done[0].name], root, grids, f.regrid)
  write(out, f, preset, classifier, records, curves, finals, chosen, curve_lines, argv, pairs,
        real, plateaued, excluded)
  return 0


def copy_grid(run, record, root, grids, regrid: bool) -> None:
  """Copies ``run``'s final sample grid beside the table, with a note of where it came from.

  The grid comes from the run's workdir; with ``regrid``, a model whose grid is missing and
  whose workdir is gone (another machine) is retrained from the same config (the fingerprint
  is the record's) in ``root/regrid``: another training of the same seed, not a replay
  (XLA:CPU float results differ by CPU), so the note keeps its own score beside the record's.
  """
  grid = grids / f"{run_name(run.group)}_samples.png"
  note = {"run": run.name, "source": "the final run's workdir"}
  pngs = sorted((root / run.name / "samples").glob("step_*.png"))
  if not pngs and regrid and not grid.exists():
    if run.fingerprint() != record["fingerprint"]:
      raise common.UsageError(f"{run.name}: the plan's config is not its record's; no regrid.")
    again = common.execute([run], root / "regrid", root / "regrid" / "records")[run.name]
    pngs = sorted((root / "regrid" / run.name / "samples").glob("step_*.png"))
    note = {"run": run.name, "source": "a retraining of the final run's config (the same "
            "fingerprint): the run's own workdir was not on the machine that wrote the table",
            "trained_with_code": again["trained_with_code"],
            "score_of_this_training": final_score(again),
            "score_of_the_recorded_run": final_score(record)}
  if pngs:
    grids.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(pngs[-1], grid)
    grid.with_suffix(".json").write_text(json.dumps(note, indent=1))


def final_score(record) -> dict:
  """The final evaluation's headline numbers of a run record (IS, conditional accuracy)."""
  result = record.get("eval") or {}
  return {k: result[k] for k in ("inception_score", "conditional_accuracy") if k in result}


def _score_text(score: dict) -> str:
  parts = []
  if "conditional_accuracy" in score:
    parts.append(f"conditional accuracy {score['conditional_accuracy']:.4f}")
  if "inception_score" in score:
    parts.append(f"IS {score['inception_score'][0]:.2f}")
  return ", ".join(parts) or "no score"


def grid_line(grids: pathlib.Path, models) -> str:
  """Where each model's sample grid came from, and which models have none."""
  described, missing = [], []
  for model in models:
    grid = grids / f"{run_name(model)}_samples.png"
    if not grid.exists():
      missing.append(model)
      continue
    note_path = grid.with_suffix(".json")
    note = json.loads(note_path.read_text()) if note_path.exists() else {}
    if note.get("source", "").startswith("a retraining"):
      described.append(f"{grid.name} (a retraining of {note['run']}'s config on code "
                       f"{note['trained_with_code']}, not the recorded run itself: "
                       f"{_score_text(note['score_of_this_training'])} vs the record's "
                       f"{_score_text(note['score_of_the_recorded_run'])})")
    else:
      described.append(f"{grid.name} ({note.get('run', 'the lowest finished seed')}'s final "
                       "generator)")
  line = f"sample grids: {', '.join(described)}." if described else "no sample grid."
  if missing:
    line += (f" No grid for {', '.join(missing)}: a grid is copied from a final run's workdir "
             "when the table is written on the machine that trained it, and none of their "
             "final runs' workdirs is on this one (`--regrid` retrains one for it).")
  return line


def scored_by(record, classifier_summary) -> bool:
  """Whether a final run was scored by this classifier (its test accuracy and real-test IS,
  which differ between two trainings of the same recipe on different machines)."""
  used = ((record.get("eval") or {}).get("classifier") or {})
  return (used.get("test_accuracy") == classifier_summary["test_accuracy"]
          and list(used.get("real_inception_score") or []) ==
          list(classifier_summary["real_inception_score"]))


def _final_values(records, finals, model):
  got = sorted((records[r.name] for r in finals if r.group == model and r.name in records),
               key=lambda r: r["seed"])
  metric = metric_of(model)
  values = [g["eval"][metric][0] if metric == "inception_score" else g["eval"][metric]
            for g in got]
  return values, [g["seed"] for g in got]


def write(out, f, preset, classifier, records, curves, finals, chosen, curve_lines, argv,
          pairs=PAIRS, real=None, plateaued=None, excluded=()):
  done = [records[r.name] for r in curves + finals if r.name in records]
  command = common.table_command("experiments.table2_gan", argv)
  clf = classifier.summary()
  title = ("Table 2 (left, middle), MNIST" if set(pairs) <= set(PAIRS) else
           "Importance weighting (Eq. 16), base vs IW: "
           + ", ".join(f"{b} / {i}" for b, i in pairs) + ", MNIST")
  lines = [f"# {title}: preset `{f.preset}`"
           + (" (SMOKE: plumbing only, numbers mean nothing)" if f.smoke else ""), "",
           f"Command: `{command}` (DIR: the four MNIST IDX files).  ",
           f"Written {common.now()} by code {common.code_version()}; "
           f"{common.plan_summary(curves + finals, records)}; {common.run_time_line(done)}. "
           f"Trained with code: {sorted({r['trained_with_code'] for r in done}) or '-'}.  ",
           common.remaining_line(curves + finals, records), "",
           f"Training data: MNIST train, all {classifier.trained_on.split(':')[1].split(',')[0].strip()} "
           f"(real). DCGAN networks of width {preset.width} (the paper's: 64), batch "
           f"{preset.batch_size}, Adam 2e-4 / beta1 0.5, identical for base and IW models.", "",
           f"Evaluation classifier: {clf['trained_on']}; MNIST test accuracy "
           f"{clf['test_accuracy']:.4f} (paper's 0.990); inception score of the real MNIST "
           f"test set {clf['real_inception_score'][0]:.2f} ± {clf['real_inception_score'][1]:.2f}"
           " (the ceiling; paper's 9.09). Its weights are committed with the run records "
           "(`classifiers/`), so every session scores with the same classifier."
           + (f" Left out, scored by another classifier instance: {', '.join(excluded)}."
              if excluded else ""), ""]
  if curve_lines:
    lines += ["## Step count, chosen on the curves (generated samples only)", "",
              f"One curve run per model (seed 100, {preset.curve_samples} samples every "
              f"{preset.eval_every} steps). The plateau starts at the first step S such that, "
              "from S and from every later step up to the curve's last "
              f"{preset.plateau_tail:.0%}, the least-squares line through the rest of the "
              "curve rises by less than half the paper's IW - base gap (0.055 IS, 0.001 "
              "accuracy); the pair gets the later start of its two models (a step pinned by "
              "the preset instead, if it lies on the plateau).", "",
              f"| model | metric | curve steps | fitted rise over the last "
              f"{preset.plateau_tail:.0%} | plateau |", "|---|---|---|---|---|"]
    lines += curve_lines + [""]
    for (b, i), s in chosen.items():
      shown = (plateaued or {}).get((b, i), True)
      pinned = preset.final_steps.get(metric_of(b)) is not None
      lines.append(f"- {b} / {i}: {s} steps" + (" (pinned by the preset)" if pinned else "")
                   + ("" if shown else
                      " (**not on a plateau of the curves**: the scores below may still be "
                      "rising)"))
    lines += [""]
  lines += ["## Results", "",
            f"Final runs: scored once at the chosen step with {preset.final_samples} samples "
            "(inception score: 10 splits). Mean ± sample std (ddof=1) over seeds.", "",
            "| model | metric | paper (MNIST, 5 runs) | ours | per seed |",
            "|---|---|---|---|---|"]
  data = {"classifier": clf, "chosen_steps": {f"{b}/{i}": s for (b, i), s in chosen.items()},
          "plateau_shown": {f"{b}/{i}": bool(v) for (b, i), v in (plateaued or {}).items()},
          "cells": {}, "pairs": []}
  for model in f.models:
    values, seeds = _final_values(records, finals, model)
    planned = sum(r.group == model for r in finals)
    if not values:
      lines.append(f"| {model} | {metric_of(model).replace('_', ' ')} | "
                   + (f"{PAPER[model][0]} ± {PAPER[model][1]}" if model in PAPER else "-")
                   + (f" | not run yet (0 of {planned} final runs) | - |" if planned else
                      " | waits for the step choice (curves) | - |"))
      continue
    digits = 2 if metric_of(model) == "inception_score" else 4
    paper = f"{PAPER[model][0]} ± {PAPER[model][1]}" if model in PAPER else "- (not in the paper)"
    data["cells"][model] = {"values": values, "seeds": seeds}
    lines.append(f"| {model} | {metric_of(model).replace('_', ' ')} | {paper} | "
                 f"{stats.fmt(values, digits)}"
                 + (f" ({len(values)} of {planned} runs done)" if len(values) < planned else "")
                 + f" | {', '.join(f'{v:.{digits}f}' for v in values)} |")
  lines += ["", "## Does IW > base hold? (Welch's t-test, two-sided)", "",
            "| pair | difference | p | held at p<0.05? | seed std | seeds for the paper's gap "
            "(80% power) |", "|---|---|---|---|---|---|"]
  for base, iw in pairs:
    a, _ = _final_values(records, finals, iw)
    b, _ = _final_values(records, finals, base)
    if len(a) < 2 or len(b) < 2:
      continue
    diff = float(np.mean(a) - np.mean(b))
    p_value = stats.welch(a, b)
    pooled = float(np.sqrt((np.var(a, ddof=1) + np.var(b, ddof=1)) / 2))
    # Seeds needed for the paper's gap of the same metric (+0.11 IS, +0.002 accuracy).
    gap = (PAPER["iwgan"][0] - PAPER["gan"][0] if metric_of(base) == "inception_score"
           else PAPER["iwcgan"][0] - PAPER["cgan"][0])
    needed = stats.seeds_for_power(pooled, gap) if pooled > 0 else 2
    planned = min(sum(r.group == iw for r in finals), sum(r.group == base for r in finals))
    verdict = stats.interim(stats.verdict(diff, p_value), min(len(a), len(b)), planned)
    lines.append(f"| {iw} > {base} | {diff:+.4f} (n={len(a)}, {len(b)}) | {stats.fmt_p(p_value)} "
                 f"| {verdict} | {pooled:.4f} | {needed} (gap {gap:+.3f}) |")
    data["pairs"].append(dict(better=iw, worse=base, diff=diff, p=p_value, std=pooled,
                              seeds_needed=needed))
  lines += _gap_lines(records, finals, f.models, real, data)
  if set(pairs) & set(PAIRS):
    lines += ["", f"SVHN (paper): GAN {PAPER_SVHN['gan']}, IWGAN {PAPER_SVHN['iwgan']}, CGAN "
            f"{PAPER_SVHN['cgan']}, IW-CGAN {PAPER_SVHN['iwcgan']}: not run (no SVHN offline; "
            "the paper preset reads it through TFDS as `svhn_cropped`)."]
  lines += ["", f"Figure: `{out.with_suffix('.png').name}` (curves with seed bands, IW effective "
            f"sample size, D(real) / D(fake)); run records in `{out.with_suffix('').name}/runs/`; "
            + grid_line(out.with_suffix(""), f.models)]
  common.write_table(out, lines, data)
  plot(out.with_suffix(".png"), records, finals, f.models, pairs,
       curves={r.group: records[r.name] for r in curves if r.name in records}, chosen=chosen)


def _gap_lines(records, finals, models, real, data) -> list:
  """Where the final samples' inception score falls short of the real test set's (records
  that hold ``sample_class_diagnostics``; runs trained before it existed are left out)."""
  rows = []
  for model in models:
    got = [records[r.name]["eval"]["sample_class_diagnostics"] for r in finals
           if r.group == model and r.name in records
           and "sample_class_diagnostics" in (records[r.name]["eval"] or {})]
    if got:
      rows.append((model, got))
  if not rows or real is None:
    return []
  def row(name, ds, n):
    freq = np.array([d["class_frequencies"] for d in ds])
    mean = lambda k: float(np.mean([d[k] for d in ds]))  # noqa: E731
    return (f"| {name} | {n} | {freq.min(1).mean():.3f} - {freq.max(1).mean():.3f} | "
            f"{mean('marginal_entropy'):.3f} | {mean('mean_conditional_entropy'):.3f} | "
            f"{mean('mean_confidence'):.3f} | {mean('one_split_inception_score'):.2f} |")
  lines = ["", "## Where the inception score is lost", "",
           "Over all samples of a run, log IS (one split) = H(class marginal) - mean H(p(y|x)): "
           f"the first term is at most log 10 = {np.log(10):.3f} (classes evenly generated), the "
           "second 0 (every sample classified with certainty). Means over the final runs; the "
           "real MNIST test set through the same classifier for reference.", "",
           "| samples | runs | rarest - commonest class share | H(marginal) | mean H(p(y|x)) "
           "| mean max p(y|x) | IS, one split |", "|---|---|---|---|---|---|---|",
           row("real MNIST test set", [real], "-")]
  lines += [row(model, ds, len(ds)) for model, ds in rows]
  data["sample_class_diagnostics"] = {"real_test": real, **{m: ds for m, ds in rows}}
  return lines


def parse_pairs(items) -> list:
  """``['gan:iwgan', ...]`` -> ``[('gan', 'iwgan'), ...]``; the second must be importance-weighted."""
  return common.parse_pairs(
      items, lambda base, iw: iw.generator_objective == "importance_weighted",
      "importance-weighted", "base:iw(base)", "infogan:iw(infogan)")


SMOOTH = 20  # logged points per moving average in the figure's training-log panels


def _moving_average(values: np.ndarray, window: int = SMOOTH) -> np.ndarray:
  if len(values) < window:
    return values
  return np.convolve(values, np.ones(window) / window, mode="valid")


def plot(path, records, finals, models, pairs=PAIRS, curves=None, chosen=None) -> None:
  """Top row: the final runs (seed bands) and their IW / discriminator logs. Bottom row,
  when curve runs are given: each metric's curve run (every evaluation, and a 10-point
  moving average) with the final runs' step."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  by_metric = lambda m: tuple(x for p in pairs for x in p if metric_of(x) == m)  # noqa: E731
  panels = [("val/inception_score", "inception score (generated samples)",
             by_metric("inception_score")),
            ("val/conditional_accuracy", "conditional accuracy", by_metric("conditional_accuracy")),
            ("iw_ess", f"IW effective sample size of the batch (mean of {SMOOTH} logs)",
             tuple(iw for _, iw in pairs)),
            ("d_fake", f"D(fake), dashed: D(real) (mean of {SMOOTH} logs)",
             tuple(x for p in pairs for x in p))]
  panels = [p for p in panels if p[2]]
  curve_panels = [(key, title, group) for key, title, group in panels[:2] if group
                  and any(m in (curves or {}) for m in group)]
  rows = 2 if curve_panels else 1
  fig, all_axes = plt.subplots(rows, len(panels), figsize=(4.8 * len(panels), 3.6 * rows),
                               squeeze=False)
  axes = all_axes[0]
  color = {m: f"C{i}" for i, m in enumerate(models)}  # one colour per model in every panel
  for ax, (key, title, group) in zip(axes, panels):
    for model in group:
      if model not in models:
        continue
      runs = [records[r.name]["curve"] for r in finals if r.group == model and r.name in records]
      for k, style in ((key, "-"), ("d_real", "--")) if key == "d_fake" else ((key, "-"),):
        steps, mean, std = common.band(runs, k)
        if not steps:
          continue
        if not k.startswith("val/"):  # per-batch training logs: too noisy to read raw
          steps, mean, std = (_moving_average(np.asarray(v, float)) for v in (steps, mean, std))
        ax.plot(steps, mean, style, color=color[model],
                label=f"{model} (n={len(runs)})" if style == "-" else None)
        ax.fill_between(steps, mean - std, mean + std, alpha=0.2, color=color[model])
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("step")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
      ax.legend(fontsize=7)
    else:  # no final run of these models has finished yet
      ax.text(0.5, 0.5, "no finished final runs yet", ha="center", va="center",
              transform=ax.transAxes, fontsize=8, color="0.4")
  if curve_panels:
    for ax in all_axes[1][len(curve_panels):]:
      ax.set_visible(False)
    for ax, (key, title, group) in zip(all_axes[1], curve_panels):
      for model in group:
        if model not in (curves or {}):
          continue
        points = [(r["step"], r[key]) for r in curves[model]["curve"] if key in r]
        steps, values = (np.asarray(v, float) for v in zip(*points))
        ax.plot(steps, values, ".", ms=2, alpha=0.35, color=color.get(model, "0.5"))
        if len(values) >= 10:
          ax.plot(steps[9:], _moving_average(values, window=10), "-", color=color.get(model, "0.5"),
                  label=f"{model}, seed 100 (10-point mean)")
      for (b, i), step in (chosen or {}).items():
        if b in group or i in group:
          ax.axvline(step, ls=":", color="0.3", label=f"final runs' step ({step})")
      ax.set_title(f"step choice: {title}, curve runs", fontsize=9)
      ax.set_xlabel("step")
      ax.grid(alpha=0.3)
      ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


if __name__ == "__main__":
  common.run_main(main)
