"""Shared machinery of the table experiments: planned runs, resumable execution, run records.

A table is a list of :class:`Run` s, each an ordinary training workdir under ``--workdir``
(so an interrupted table resumes where it stopped). When a run is finished its essentials
are written to a **run record** (``<records>/<name>.json``: the evaluation, the validation
summary and curve, the discriminator / importance-weight diagnostics, the data, the
commits, wall time), which is committed with the results. A table is rebuilt from the
records: a run whose record exists and whose config fingerprint matches the planned one
is not trained again, so a table can be finished over several sessions even when the
workdirs of earlier sessions are gone.

Experiment CLIs use absl flags, each in its own ``FlagValues`` (so several experiments can
be imported and called from one process, e.g. by the tests): ``main(argv)`` parses
``argv`` (without the program name).
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import pathlib
import subprocess
import sys
import time
from typing import Callable

import ml_collections
import numpy as np
from absl import flags

from unigen_jax import config as config_lib
from unigen_jax import reporting
from unigen_jax import train

# Training metrics kept in a run record's curve (diagnostics of the adversaries and weights).
CURVE_KEYS = ("d_real", "d_fake", "aa_weight_real", "aa_weight_fake", "iw_ess", "elbo")
RECORD_VERSION = 1
IGNORED_IN_FINGERPRINT = {"log_every", "checkpoint_every", "keep_checkpoints", "sample_every",
                          "num_samples", "progress", "data.prefetch", "data.data_dir",
                          "data.verify_checksums", "eval.data_dir", "eval.classifier_dir"}


class UsageError(ValueError):
  """Bad experiment flags; printed as one line, exit code 2."""


def parse_flags(argv, define: Callable[[flags.FlagValues], None]) -> flags.FlagValues:
  """Parses ``argv`` (no program name) into a fresh FlagValues that ``define`` fills."""
  values = flags.FlagValues()
  define(values)
  if {"--help", "-h", "--helpfull"} & set(argv or []):
    print(values.get_help())
    raise SystemExit(0)
  try:
    values(["experiment"] + list(argv or []))
  except flags.Error as err:
    raise UsageError(str(err)) from None
  return values


def run_main(main: Callable[[list], int]) -> None:
  """Entry point of ``python -m experiments.<name>``: one-line errors, exit codes."""
  try:
    code = main(sys.argv[1:])
  except UsageError as err:
    print(f"error: {err}", file=sys.stderr)
    code = 2
  sys.exit(code)


@dataclasses.dataclass
class Run:
  """One training run of a table: a row (``group``), a column, a seed and its config."""
  name: str
  group: str
  column: str
  seed: int
  config: ml_collections.ConfigDict
  role: str = "final"            # 'final', 'selection' (hyperparameter choice), 'curve'
  # Names of runs (workdirs under the same root) this run may continue: the same config with
  # fewer steps. A finished one is copied in as the start (see ``warm_start``).
  continues: tuple = ()

  def fingerprint(self) -> str:
    """SHA-256 of what makes the run's result: variant, its revision, and the config fields
    that differ from the variant's defaults (paths and logging excluded).

    A field added to the code later, at a default that keeps the old behaviour, does not
    change it; the evaluation classifier enters by its cache name (which holds its content
    hash).
    """
    resolved, _ = config_lib.resolve_config(self.config)
    from unigen_jax import variants  # pylint: disable=g-import-not-at-top
    flat = {k: v for k, v in overrides_of(resolved).items() if k not in IGNORED_IN_FINGERPRINT}
    flat["variant"] = resolved.variant
    flat["revision"] = variants.get(resolved.variant).revision
    flat["eval.classifier"] = pathlib.Path(resolved.eval.classifier_dir).name
    return hashlib.sha256(json.dumps(flat, sort_keys=True).encode()).hexdigest()[:16]


# Flags whose values name this machine's folders or how the work was split: left out of the
# command a table prints (the data folder is printed as DIR).
MACHINE_FLAGS = ("--workdir", "--shard")


def table_command(module: str, argv) -> str:
  """The command a table prints: ``argv`` without machine paths, the data folder as DIR."""
  kept = [a for a in (argv or []) if not a.startswith(MACHINE_FLAGS + ("--mnist_dir",))]
  return " ".join([f"python -m {module}", *kept, "--mnist_dir=DIR"])


def code_version() -> str:
  """``git`` commit of the code (``+dirty`` with uncommitted changes)."""
  root = pathlib.Path(__file__).resolve().parents[1]
  try:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, check=True,
                            capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                           check=True, capture_output=True, text=True).stdout.strip()
  except (OSError, subprocess.CalledProcessError):
    return "unknown (not a git checkout)"
  return commit + ("+dirty" if dirty else "")


def _curve(workdir: pathlib.Path, every: int = 1) -> list:
  rows = reporting.read_metrics(workdir / "metrics.jsonl")
  out = []
  for row in rows:
    keep = {k: v for k, v in row.items() if k.startswith("val/") or k in CURVE_KEYS}
    if any(k.startswith("val/") for k in keep) or row["step"] % every == 0:
      if keep:
        out.append(dict(step=row["step"], **{k: round(v, 6) for k, v in keep.items()}))
  return out


def _complete(summary: dict, config) -> bool:
  if config.eval.metrics and "eval" not in summary:
    return False  # a run without final metrics (a curve run) is complete at its last step
  if summary.get("final_step") == config.steps:
    return True
  return bool((summary.get("validation") or {}).get("stopped_early"))


def execute(runs: list, root: pathlib.Path, records: pathlib.Path, *, train_missing: bool = True,
            log: Callable[[str], None] = lambda s: print(s, file=sys.stderr, flush=True),
            curve_every: int = 100) -> dict:
  """Runs (or reuses) every run; returns ``{name: record}`` (missing ones omitted).

  Reuse order: a committed record with the same config fingerprint; a finished workdir
  (its record is written now); otherwise the run is trained (resumed if its workdir has a
  checkpoint) unless ``train_missing`` is False.
  """
  out = {}
  records.mkdir(parents=True, exist_ok=True)
  for run in runs:
    fingerprint = run.fingerprint()
    record_path = records / f"{run.name}.json"
    if record_path.exists():
      record = json.loads(record_path.read_text())
      if record.get("fingerprint") == fingerprint:
        out[run.name] = record
        continue
      log(f"== {run.name}: its record has another config (fingerprint "
          f"{record.get('fingerprint')} != {fingerprint}); not reused")
    workdir = root / run.name
    if train_missing and not workdir.exists():
      source = warm_start(run, root)
      if source:
        log(f"== {run.name}: starts from the finished run {source} (the same config, "
            "fewer steps; training continues from its last checkpoint)")
    summary_path = workdir / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    if not _complete(summary, run.config):
      if not train_missing:
        continue
      log(f"== {run.name} ({run.role}) -> {workdir}")
      workdir.mkdir(parents=True, exist_ok=True)
      _stamp_code(workdir)
      summary = train.train_and_evaluate(run.config, str(workdir))
    record = {
        "version": RECORD_VERSION, "name": run.name, "group": run.group, "column": run.column,
        "seed": run.seed, "role": run.role, "fingerprint": fingerprint,
        "trained_with_code": ((workdir / "code_version.txt").read_text().strip()
                              if (workdir / "code_version.txt").exists() else "unknown"),
        "recorded_with_code": code_version(), "recorded": time.strftime("%Y-%m-%d %H:%M"),
        "data": summary.get("data"), "final_step": summary.get("final_step"),
        "wall_time_s": summary.get("wall_time_s"), "steps_per_sec": summary.get("steps_per_sec"),
        "validation": summary.get("validation"), "eval": summary.get("eval"),
        "final_metrics": summary.get("final_metrics"),
        "config_overrides": overrides_of(run.config),
        "curve": _curve(workdir, curve_every)}
    if (workdir / WARM_START_FILE).exists():
      record["warm_start"] = json.loads((workdir / WARM_START_FILE).read_text())
    record_path.write_text(json.dumps(record, indent=1, default=str))
    out[run.name] = record
  return out


def _checkpoint_step(workdir: pathlib.Path) -> int | None:
  """The last step checkpointed in ``workdir`` (None without one)."""
  steps = [int(p.name) for p in (workdir / "checkpoints").glob("*") if p.name.isdigit()]
  return max(steps, default=None)


def _stamp_code(workdir: pathlib.Path) -> None:
  """Writes the commit that trains ``workdir`` to its ``code_version.txt``. A workdir resumed
  by other code than the one that trained its checkpoint names both, with the step where
  the new code took over: ``A (steps 0-N), B (after)`` (the record's ``trained_with_code``)."""
  stamp, now_code = workdir / "code_version.txt", code_version()
  if not stamp.exists():
    stamp.write_text(now_code + "\n")
    return
  before, step = stamp.read_text().strip(), _checkpoint_step(workdir)
  last = before.rsplit(", ", 1)[-1].removesuffix(" (after)")
  if last == now_code or step is None:
    return
  if before.endswith(" (after)"):
    stamp.write_text(f"{before.removesuffix(' (after)')} (to step {step}), {now_code} (after)\n")
  else:
    stamp.write_text(f"{before} (steps 0-{step}), {now_code} (after)\n")


WARM_START_FILE = "warm_start.json"


def warm_start(run: Run, root: pathlib.Path) -> str | None:
  """Starts ``run``'s (absent) workdir as a copy of the finished run among ``run.continues``
  with the most steps below ``run.config.steps`` whose config equals ``run.config`` up to
  the fields that may change on resume (``steps``, logging, evaluation). Returns its name.

  Training then resumes from the copy's last checkpoint: the step's RNG is
  ``fold_in(key, step)``, the data order is restored from the checkpoint and a resumed run
  is bitwise the uninterrupted one, so a run continued from N to M steps is the run trained
  for M steps directly, at the cost of M - N steps (tested). The copy's final outputs of
  step N (summary, evaluation) are left out; ``warm_start.json`` says where it started and
  the code stamp names both commits when they differ.
  """
  workdir = root / run.name
  resolved, _ = config_lib.resolve_config(run.config)  # config.json holds the resolved one
  best = None
  for name in run.continues:
    source = root / name
    try:
      summary = json.loads((source / "summary.json").read_text())
      stored = json.loads((source / "config.json").read_text())
    except (OSError, ValueError):
      continue  # absent or unfinished: nothing to continue
    steps = stored.get("steps")
    # summary.json is written when a run ends; one stopped early is no shorter run.
    finished = (summary.get("final_step") == steps
                and not (summary.get("validation") or {}).get("stopped_early"))
    if (finished and isinstance(steps, int) and steps < run.config.steps
        and not config_lib.check_resume_compatible(stored, resolved)
        and (best is None or steps > best[1])):
      best = (name, steps)
  if best is None:
    return None
  name, steps = best
  partial = root / f".{run.name}.partial"
  import shutil  # pylint: disable=g-import-not-at-top
  shutil.rmtree(partial, ignore_errors=True)
  shutil.copytree(root / name, partial,
                  ignore=shutil.ignore_patterns("summary.json", "eval.json", ".lock*"))
  stamp = partial / "code_version.txt"
  before = stamp.read_text().strip() if stamp.exists() else "unknown"
  now_code = code_version()
  stamp.write_text((before if before == now_code
                    else f"{before} (steps 0-{steps}), {now_code} (after)") + "\n")
  (partial / WARM_START_FILE).write_text(json.dumps(
      {"run": name, "step": steps, "trained_with_code": before}, indent=1))
  partial.rename(workdir)  # the workdir appears whole or not at all
  return name


def parse_shard(text: str) -> tuple[int, int]:
  """``--shard=i/n`` -> ``(i, n)`` with ``0 <= i < n``."""
  try:
    shard, shards = (int(x) for x in text.split("/"))
  except ValueError:
    shard, shards = -1, 0
  if shards < 1 or not 0 <= shard < shards:
    raise UsageError(f"--shard={text}: write i/n with 0 <= i < n.")
  return shard, shards


def mnist_train_size(mnist_dir: str, verify: bool) -> int:
  """Images in the MNIST training file of ``mnist_dir`` (read and, with ``verify``,
  SHA-256 checked); a missing or wrong folder is a UsageError naming the fix."""
  from unigen_jax import input_pipeline  # pylint: disable=g-import-not-at-top
  try:
    return len(input_pipeline.load_split("mnist", "train", data_dir=mnist_dir, verify=verify))
  except input_pipeline.DataError as err:
    raise UsageError(str(err)) from None


def share(runs: list, shard: int, shards: int) -> list:
  """This process's part of ``runs`` under ``--shard=shard/shards``: every n-th from i."""
  return [r for i, r in enumerate(runs) if i % shards == shard]


def execute_shared(runs: list, root: pathlib.Path, records: pathlib.Path, shard: int,
                   shards: int, *, train_missing: bool = True) -> dict:
  """Trains this shard's part of ``runs``, waits until the other shards have recorded theirs
  (a stage whose results the next stage chooses from), and returns the records of all."""
  if train_missing:
    execute(share(runs, shard, shards), root, records)
    while shards > 1 and len(execute(runs, root, records, train_missing=False)) < len(runs):
      time.sleep(60)  # another shard is still running its part
  return execute(runs, root, records, train_missing=False)


def band(curves: list, key: str) -> tuple:
  """(steps, mean, sample std) of ``key`` over run-record curves, at the steps every curve has
  (std 0 for a single curve); empty steps when none has it."""
  points = {}
  for curve in curves:
    for row in curve:
      if key in row:
        points.setdefault(row["step"], []).append(row[key])
  steps = sorted(s for s, v in points.items() if len(v) == len(curves))
  mean = np.array([np.mean(points[s]) for s in steps])
  std = np.array([np.std(points[s], ddof=1) if len(points[s]) > 1 else 0.0 for s in steps])
  return steps, mean, std


def overrides_of(config) -> dict:
  """The fields of ``config`` that differ from the variant's defaults (what the run set)."""
  defaults = config_lib.flatten(config_lib.get_config(
      f"{config.variant},{config.data.dataset}"))
  return {k: config_lib.jsonable(v) for k, v in config_lib.flatten(config).items()
          if k in defaults and config_lib.jsonable(defaults[k]) != config_lib.jsonable(v)
          and k not in ("data.data_dir", "eval.data_dir", "eval.classifier_dir", "progress")}


def parse_pairs(items, is_transfer: Callable, transfer_name: str, form: str,
                example: str) -> list:
  """``['base:other', ...]`` -> ``[(base, other), ...]``, every name a registered variant (or
  an ``iw(...)`` / ``aa(...)`` transfer of one) and ``is_transfer(base, other)`` true of the
  two ``Variant`` s; anything else is a UsageError naming the item."""
  from unigen_jax import variants  # pylint: disable=g-import-not-at-top
  pairs = []
  for item in items:
    base, sep, other = item.partition(":")
    if not sep:
      raise UsageError(f"--pairs {item!r}: write {form}, e.g. {example}.")
    try:
      found = [variants.get(name) for name in (base, other)]
    except ValueError as err:
      raise UsageError(f"--pairs {item!r}: {err}") from None
    if not is_transfer(*found):
      raise UsageError(f"--pairs {item!r}: {other!r} is not {transfer_name} {base!r}.")
    pairs.append((base, other))
  return pairs


def run_time_line(records) -> str:
  total = sum((r.get("wall_time_s") or 0.0) for r in records)
  unknown = sum(r.get("wall_time_s") is None for r in records)
  return (f"runs' own wall time {total / 3600:.1f} h summed over {len(records)} runs"
          + (f" ({unknown} without a recorded time, counted as 0)" if unknown else ""))


def write_table(path: pathlib.Path, lines: list, data: dict) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text("\n".join(lines) + "\n")
  path.with_suffix(".json").write_text(json.dumps(data, indent=1, default=str))
  print(path.read_text())


def now() -> str:
  return time.strftime("%Y-%m-%d %H:%M")


def best_of(values: dict, higher_is_better: bool = True):
  """Key of the best mean in ``{key: [values]}``."""
  means = {k: float(np.mean(v)) for k, v in values.items() if len(v)}
  return max(means, key=means.get) if higher_is_better else min(means, key=means.get)


def plan_summary(runs: list, records: dict) -> str:
  done = sum(1 for r in runs if r.name in records)
  return f"{done} of {len(runs)} planned runs done"


def remaining_line(runs: list, records: dict) -> str:
  """What a partial table still trains, and a time estimate from its finished runs.

  A missing run is timed by the mean recorded wall time of the finished runs of its row,
  column and role (the same config up to the seed); failing those, by the finished runs of
  its column and role in other rows (the same budget, another network: a rougher guess, said
  apart); runs with neither are counted, not guessed.
  """
  missing = [r for r in runs if r.name not in records]
  if not missing:
    return "Every planned run is done."
  same_row, same_column = collections.defaultdict(list), collections.defaultdict(list)
  for r in runs:
    wall = records.get(r.name, {}).get("wall_time_s")
    if wall is not None:
      same_row[(r.group, r.column, r.role)].append(wall)
      same_column[(r.column, r.role)].append(wall)
  counts = collections.Counter((r.group, r.column, r.role) for r in missing)
  by_row = by_column = 0.0
  unknown = 0
  for (group, column, role), n in counts.items():
    if same_row[(group, column, role)]:
      by_row += n * np.mean(same_row[(group, column, role)])
    elif same_column[(column, role)]:
      by_column += n * np.mean(same_column[(column, role)])
    else:
      unknown += n
  groups = ", ".join(f"{group} {column}{'' if role == 'final' else ' ' + role} x{n}"
                     for (group, column, role), n in counts.items())
  parts = []
  if by_row:
    parts.append(f"{by_row / 3600:.1f} h timed by finished runs of the same row and column")
  if by_column:
    parts.append(f"{by_column / 3600:.1f} h by other rows of the same column")
  if unknown:
    parts.append(f"{unknown} run{'' if unknown == 1 else 's'} with nothing finished to go by")
  s = "" if len(missing) == 1 else "s"
  return f"To go: {len(missing)} run{s} ({groups}); training time: {'; '.join(parts)}."


def config_for(variant: str, dataset: str, *, seed: int, data_dir: str, width: int,
               batch_size: int, steps: int, log_every: int = 100,
               checkpoint_every: int = 1000) -> ml_collections.ConfigDict:
  """A table run's config from the defaults of ``variant`` on ``dataset``."""
  config = config_lib.get_config(f"{variant},{dataset}")
  config.seed = seed
  config.model.width = width
  config.batch_size = batch_size
  config.steps = steps
  config.data.data_dir = data_dir
  config.log_every = log_every
  config.checkpoint_every = checkpoint_every
  config.keep_checkpoints = 1
  config.sample_every = 0
  config.progress = False
  return config


def wall_hours(records) -> float:
  return sum((r.get("wall_time_s") or 0.0) for r in records) / 3600
