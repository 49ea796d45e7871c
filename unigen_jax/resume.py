"""What a rerun of a workdir may continue: the stored config, the checkpoint's identity, orphans.

The training program (:mod:`unigen_jax.train`) asks this room, before its loop, whether
the workdir holds a run this command may continue, and refuses, naming the fix, whatever
would mix two runs or lose what is saved:

* :func:`workdir_lock`: process 0 holds the workdir's exclusive lock for the whole run;
* :func:`stored_config`: the config a workdir was trained with; a change is refused unless
  ``allow_config_change`` (and ``config.json`` is rewritten by :func:`commit_config` only
  after the checkpoints were restored under the new config);
* :func:`restore`: the newest good checkpoint, refused when it belongs to another variant,
  another revision of the variant or another seed;
* :func:`refuse_orphaned_outputs`: metrics without checkpoints are refused, or moved aside
  with ``restart`` (or by themselves when the run was killed before its first checkpoint was
  due: starting again replays the same run).
"""

from __future__ import annotations

import contextlib
import json
import pathlib
import shutil
import sys
import time
from typing import Optional

import jax
import numpy as np

from unigen_jax import checkpointing
from unigen_jax import config as config_lib
from unigen_jax import reporting
from unigen_jax import workdir as workdir_lib


@contextlib.contextmanager
def workdir_lock(workdir: pathlib.Path, is_writer: bool):
  """Process 0 owns the workdir for the whole run (other hosts write nothing there)."""
  if not is_writer:
    yield
    return
  with workdir_lib.WorkdirLock(workdir):
    yield


def stored_config(workdir: pathlib.Path, config, allow_config_change: bool) -> Optional[dict]:
  """The config the workdir was trained with (None for a new run); refuses a silent change."""
  path = workdir / "config.json"
  if not path.exists():
    return None
  try:
    stored = json.loads(path.read_text())
    if not isinstance(stored, dict):
      raise ValueError("not a JSON object")
  except (OSError, ValueError) as err:
    if allow_config_change:
      return {}
    raise config_lib.ConfigError(f"{path} is unreadable ({type(err).__name__}: {err}): it is truncated or "
                      "corrupt. The checkpoints are untouched; rerun with --allow_config_change "
                      "to restore them under this command's config (config.json is rewritten "
                      "only if they load).") from None
  changed = config_lib.check_resume_compatible(stored, config)
  if changed and not allow_config_change:
    now = config_lib.to_json(config)
    details = ", ".join(f"{k}: {config_lib.flatten(stored).get(k)!r} -> "
                        f"{config_lib.flatten(now).get(k)!r}" for k in changed)
    raise config_lib.ConfigError(f"{workdir} holds a run with a different config ({details}). Use "
                      "another --workdir, or pass --allow_config_change to resume anyway.")
  return stored


def restore(checkpoints, state, config, model, run_key, workdir, stored, allow_config_change,
             restart, mesh):
  """(state, resumed_from, meta) from the newest good checkpoint, or the initial state."""
  key_data = np.asarray(jax.random.key_data(run_key)).tolist()
  changed = bool(stored is not None and config_lib.check_resume_compatible(stored, config))

  def check_meta(meta: dict) -> None:
    where = f"the checkpoint in {workdir / 'checkpoints'}"
    if meta.get("variant", config.variant) != config.variant:
      raise checkpointing.CheckpointError(
          f"{where} belongs to variant {meta['variant']!r}, not {config.variant!r}; use another "
          "--workdir.")
    revision = meta.get("variant_revision", 1)
    if revision != model.variant.revision:
      raise checkpointing.CheckpointError(
          f"{where} was written by revision {revision} of {config.variant!r}; this code is "
          f"revision {model.variant.revision} (it computes something else: see the variant's "
          "declaration). It cannot be resumed; use another --workdir.")
    if not allow_config_change and meta.get("rng_key", key_data) != key_data:
      raise checkpointing.CheckpointError(
          f"{where} was written by a run with another random seed than config.seed="
          f"{config.seed}; was the workdir shared by two runs? Use another --workdir.")

  try:
    restored = checkpoints.restore(state, check_meta=check_meta)
  except checkpointing.CheckpointError as err:
    if changed:
      raise config_lib.ConfigError(f"the checkpoints in {workdir} do not fit the changed config "
                        f"({err.reasons or err}). "
                        "Nothing was changed: config.json and the checkpoints are as they "
                        "were; run the original command to resume, or use another "
                        "--workdir.") from None
    raise
  if restored is None:
    refuse_orphaned_outputs(workdir, restart,
                            config=None if changed or stored is None else config)
    return state, None, None
  if restart:
    raise workdir_lib.WorkdirError(f"{workdir} has checkpoints: --restart only starts over a "
                                   "run whose checkpoints are gone. Use another --workdir.")
  step, state, meta = restored
  if mesh is not None:
    state = jax.device_put(state, jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec()))
  return state, step, meta


def refuse_orphaned_outputs(workdir: pathlib.Path, restart: bool, config=None) -> None:
  """Metrics or a summary without any checkpoint: starting at step 0 would mix two runs.

  One case is not refused: ``config`` (the unchanged config of the stored run) had not yet
  reached its first checkpoint when the run was killed (no summary, every metrics row before
  ``config.checkpoint_every`` and ``config.steps``). Then nothing was lost but those steps, and starting again
  from step 0 replays the same run (same config, same seed): the old outputs are moved
  aside as ``restart`` would, and the run starts over. Interrupted tables of many runs
  (``experiments``) then resume without a hand in between.
  """
  def holds_something(path: pathlib.Path) -> bool:  # best/ is made empty at the start
    return any(path.iterdir()) if path.is_dir() else path.exists() and path.stat().st_size > 0

  outputs = [p for p in ("metrics.jsonl", "summary.json", "eval.json", "best")
             if holds_something(workdir / p)]
  if not outputs:
    return
  rows = reporting.read_metrics(workdir / "metrics.jsonl")
  last = f" up to step {rows[-1]['step']}" if rows else ""
  first_due = None
  if config is not None:
    first_due = min(config.checkpoint_every or config.steps, config.steps)
  killed_before_first_checkpoint = bool(
      first_due and rows and rows[-1]["step"] < first_due
      and not any((workdir / p).exists() for p in ("summary.json", "eval.json")))
  if not (restart or killed_before_first_checkpoint):
    raise workdir_lib.WorkdirError(
        f"{workdir} holds the outputs of a run{last} ({', '.join(outputs)}) but no checkpoint "
        "(checkpoints/ is gone or empty): starting again would mix two runs. Rerun with "
        "--restart to move the old outputs to previous_<time>/ and start from step 0, or use "
        "another --workdir.")
  target = workdir / f"previous_{time.strftime('%Y%m%d-%H%M%S')}"
  target.mkdir()
  for name in ("metrics.jsonl", "summary.json", "eval.json", "best", "best_superseded",
               "samples", "tensorboard",
               "curves.png", "report.html", "evaluations"):
    if (workdir / name).exists():
      shutil.move(str(workdir / name), str(target / name))
  if restart:
    message = f"--restart: moved the previous outputs to {target}"
  else:
    message = (f"the run was killed after step {rows[-1]['step']}, before its first checkpoint "
               f"(due at step {first_due}): "
               f"moved its outputs to {target} and started again from step 0 (same config "
               "and seed)")
  workdir_lib.append_log(workdir, message)
  if jax.process_index() == 0:
    print(message, file=sys.stderr, flush=True)


def commit_config(workdir: pathlib.Path, config) -> None:
  workdir_lib.write_json_atomic(workdir / "config.json", config_lib.to_json(config), indent=2,
                                sort_keys=True)
