"""Checkpoints with orbax: atomic saves, newest-good restore, and the run's metadata.

A checkpoint holds the ``TrainState`` (every network's parameters and batch
statistics, every player's optimizer state, the step) and JSON metadata: the
run's RNG key data and the data iterator's position. Orbax writes each step
into a temporary directory and renames it when complete, so a save that is
interrupted never replaces the last good checkpoint. Restoring tries the newest
step first and falls back, with a warning, to older ones that still load.
"""

from __future__ import annotations

import logging
import pathlib
import time
from typing import Any, Optional

import jax
import numpy as np
import orbax.checkpoint as ocp


class CheckpointError(RuntimeError):
  """No checkpoint in the workdir could be restored."""


class Checkpointer:

  def __init__(self, directory: pathlib.Path, keep: int = 3):
    self.directory = pathlib.Path(directory).resolve()
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep, create=True,
        # Synchronous: the step donates the state's buffers right after a save.
        enable_async_checkpointing=False)
    self.manager = ocp.CheckpointManager(self.directory, options=options,
                                         item_names=("state", "meta"))

  def steps(self) -> list[int]:
    return sorted(self.manager.all_steps())

  def save(self, step: int, state: Any, meta: dict) -> None:
    self.manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)), force=True)
    self.manager.wait_until_finished()

  def restore(self, abstract_state: Any) -> Optional[tuple[int, Any, dict]]:
    """(step, state, meta) of the newest checkpoint that loads, or None if there is none."""
    steps = self.steps()
    failures = []
    for step in reversed(steps):
      try:
        restored = self.manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract_state), meta=ocp.args.JsonRestore()))
        state, meta = restored["state"], restored["meta"]
        leaves = jax.tree.leaves(state)
        if not all(bool(np.all(np.isfinite(np.asarray(x)))) for x in leaves
                   if np.issubdtype(np.asarray(x).dtype, np.floating)):
          raise CheckpointError("non-finite values")
      except Exception as err:  # pylint: disable=broad-except
        failures.append(f"step {step}: {type(err).__name__}: {str(err).splitlines()[0][:200]}")
        logging.warning("checkpoint at step %d in %s cannot be restored (%s); trying an older one.",
                        step, self.directory, failures[-1])
        continue
      if failures:
        logging.warning("resumed from the older checkpoint at step %d; unusable: %s", step,
                        "; ".join(failures))
        self._quarantine([s for s in steps if s > step])
      return step, state, meta
    if steps:
      raise CheckpointError(f"no checkpoint in {self.directory} can be restored ("
                            f"{'; '.join(failures)}). Move that directory away to start afresh.")
    return None

  def _quarantine(self, bad_steps: list[int]) -> None:
    """Moves unusable checkpoints to ``../corrupt_checkpoints/`` (kept, never deleted)."""
    target = self.directory.parent / "corrupt_checkpoints"
    target.mkdir(exist_ok=True)
    for step in bad_steps:
      source = self.directory / str(step)
      if source.exists():
        destination = target / f"step_{step}_{int(time.time())}"
        source.rename(destination)
        logging.warning("moved the unusable checkpoint of step %d to %s", step, destination)
    self.manager.reload()

  def close(self):
    self.manager.close()


def load_latest_state(model, directory) -> tuple[int, Any]:
  """(step, state) of the newest good checkpoint of ``model`` in ``directory``.

  Raises CheckpointError when there is none (e.g. a workdir that never saved).
  """
  if not pathlib.Path(directory).is_dir():  # do not create it (the manager would)
    raise CheckpointError(f"{pathlib.Path(directory).resolve()} holds no checkpoint.")
  checkpointer = Checkpointer(directory)
  try:
    restored = checkpointer.restore(model.init(jax.random.key(0)))
  finally:
    checkpointer.close()
  if restored is None:
    raise CheckpointError(f"{pathlib.Path(directory).resolve()} holds no checkpoint.")
  return restored[0], restored[1]
