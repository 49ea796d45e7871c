"""Checkpoints with orbax: atomic saves, checksums, newest-good restore, and the run's metadata.

A checkpoint holds the ``TrainState`` (every network's parameters and batch
statistics, every player's optimizer state, the step) and JSON metadata: the
run's RNG key data, the data iterator's position, the variant and its revision,
and a SHA-256 of every array of the state. Orbax writes each step into a
temporary directory and renames it when complete, so a save that is interrupted
never replaces the last good checkpoint.

Restoring tries the newest step first. A checkpoint that does not load, holds
non-finite values, or whose arrays do not match their stored SHA-256 (a flipped
bit) is skipped with one line of warning (the details go to the workdir's
``log.txt``) and the previous one is used; a writable checkpointer then moves the
unusable ones to ``corrupt_checkpoints/`` (kept, never deleted). A read-only
checkpointer (evaluation) changes nothing on disk. Arrays that do not fit the state
being restored (another width, another dtype) are found from the checkpoint's
metadata before any array is read, and the error names the first of them.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import pathlib
import time
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp


class CheckpointError(RuntimeError):
  """No checkpoint in the workdir could be restored, or it belongs to another run.

  ``reasons``: when no checkpoint could be restored, why not (per step) without the advice,
  for callers that give their own.
  """
  reasons: Optional[str] = None


def state_digest(state: Any) -> str:
  """SHA-256 over every array of a pytree (shapes, dtypes and bytes, in tree order)."""
  digest = hashlib.sha256()
  for leaf in jax.tree.leaves(state):
    if _is_typed_key(leaf):
      leaf = jax.random.key_data(leaf)  # typed keys do not convert to NumPy
    array = np.asarray(jax.device_get(leaf))
    digest.update(f"{array.dtype.str}{array.shape}".encode())
    digest.update(np.ascontiguousarray(array).tobytes())
  return digest.hexdigest()


@contextlib.contextmanager
def _quiet_orbax():
  """Orbax/TensorStore log every failed read with long tracebacks: keep them off the console."""
  names = ("absl", "orbax", "asyncio", "tensorstore", "jax._src.distributed")
  loggers = [logging.getLogger(n) for n in names]
  levels = [lg.level for lg in loggers]
  for lg in loggers:
    lg.setLevel(logging.CRITICAL)
  try:
    yield
  finally:
    for lg, level in zip(loggers, levels):
      lg.setLevel(level)


class Checkpointer:
  """Saves and restores the train state of one workdir's ``checkpoints/`` (or ``best/``).

  Args:
    directory: the checkpoint directory.
    keep: how many checkpoints to keep.
    read_only: never create, delete, move or write anything (evaluation).
    warn: one-line warnings for the console (default: ``logging.warning``).
    log_file: where the full details of a failed restore are appended.
  """

  def __init__(self, directory: pathlib.Path, keep: int = 3, *, read_only: bool = False,
               warn: Optional[Callable[[str], None]] = None,
               log_file: Optional[pathlib.Path] = None):
    self.directory = pathlib.Path(directory).resolve()
    self.read_only = read_only
    self.warn = warn or logging.warning
    self.log_file = log_file
    options = ocp.CheckpointManagerOptions(
        max_to_keep=None if read_only else keep, create=not read_only, read_only=read_only,
        save_interval_steps=0 if read_only else 1, cleanup_tmp_directories=not read_only,
        # Synchronous: the step donates the state's buffers right after a save.
        enable_async_checkpointing=False)
    with _quiet_orbax():
      self.manager = ocp.CheckpointManager(self.directory, options=options,
                                           item_names=("state", "meta"))

  def steps(self) -> list[int]:
    return sorted(self.manager.all_steps())

  def save(self, step: int, state: Any, meta: dict) -> None:
    if self.read_only:
      raise CheckpointError(f"{self.directory} was opened read-only.")
    meta = dict(meta, state_sha256=state_digest(state))
    try:
      with _quiet_orbax():
        self.manager.save(step, args=ocp.args.Composite(
            state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)), force=True)
        self.manager.wait_until_finished()
    except OSError:
      raise
    except Exception as err:  # pylint: disable=broad-except
      text = str(err)
      if "No space left" in text or "ENOSPC" in text:
        raise OSError(errno.ENOSPC, "No space left on device", str(self.directory)) from None
      self._details(f"saving step {step} failed: {type(err).__name__}: {err}")
      raise CheckpointError(f"saving the checkpoint of step {step} in {self.directory} failed "
                            f"({_one_line(err)}); the previous checkpoints are intact.") from None

  def _details(self, text: str) -> None:
    if self.log_file is not None and not self.read_only:
      with open(self.log_file, "a") as f:
        f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {text}\n")

  def restore_meta(self, step: int) -> dict:
    with _quiet_orbax():
      return self.manager.restore(step, args=ocp.args.Composite(
          meta=ocp.args.JsonRestore()))["meta"]

  def restore(self, abstract_state: Any,
              check_meta: Optional[Callable[[dict], None]] = None
              ) -> Optional[tuple[int, Any, dict]]:
    """(step, state, meta) of the newest checkpoint that loads, or None if there is none.

    ``check_meta(meta)`` may raise :class:`CheckpointError` for a checkpoint of another
    run (different seed, variant revision): that error is raised at once, not skipped.
    """
    steps = self.steps()
    failures = []
    for step in reversed(steps):
      try:
        meta = self.restore_meta(step)
      except Exception as err:  # pylint: disable=broad-except
        failures.append((step, err))
        continue
      if check_meta is not None:
        check_meta(meta)  # another run's checkpoint: an error, never a fallback
      try:
        misfits = self._misfits(step, abstract_state)
        if misfits:
          # Checked before reading: a read that fails on a shape leaves orbax's pending reads
          # behind, and the misfit named here says more than orbax's error would.
          raise CheckpointError(f"{len(misfits)} of its arrays do not fit this run's state, "
                                f"e.g. {misfits[0]}")
        with _quiet_orbax():
          state = self.manager.restore(step, args=ocp.args.Composite(
              state=ocp.args.StandardRestore(abstract_state)))["state"]
        expected = meta.get("state_sha256")
        if expected is not None and state_digest(state) != expected:
          raise CheckpointError("its arrays do not match their stored SHA-256 (corrupt data)")
        for leaf in jax.tree.leaves(state):
          dtype = getattr(leaf, "dtype", None)
          if dtype is None or not jnp.issubdtype(dtype, jnp.floating):
            continue  # integers and typed keys are always finite
          if not np.all(np.isfinite(np.asarray(leaf))):
            raise CheckpointError("non-finite values")
      except CheckpointError as err:
        failures.append((step, err))
        continue
      except Exception as err:  # pylint: disable=broad-except
        failures.append((step, err))
        continue
      if failures:
        self._report(failures, step)
        if not self.read_only:
          self.set_aside([s for s, _ in failures], "corrupt_checkpoints", "unusable")
      return step, state, meta
    if steps:
      self._report(failures, None)
      reasons = "; ".join(f"step {s}: {_one_line(e)}" for s, e in failures)
      error = CheckpointError(
          f"no checkpoint in {self.directory} can be restored ({reasons}). Nothing was changed; "
          "move that directory aside to start this run afresh.")
      error.reasons = reasons
      raise error
    return None

  def _misfits(self, step: int, abstract_state: Any) -> list[str]:
    """The state arrays whose stored shape or dtype differ from ``abstract_state``'s.

    Reads only the checkpoint's tree metadata. Arrays absent from it are listed too; a
    checkpoint whose metadata cannot be read yields none and is left to the restore to judge.
    """
    try:
      with _quiet_orbax():
        stored = ocp.StandardCheckpointHandler().metadata(self.directory / str(step) / "state")
      stored = {leaf.name: leaf for leaf in jax.tree.leaves(
          stored.tree, is_leaf=lambda x: hasattr(x, "shape") and hasattr(x, "name"))
          if hasattr(leaf, "name")}
    except Exception:  # pylint: disable=broad-except
      return []
    names = ocp.tree.get_param_names(abstract_state, include_empty_nodes=False)
    misfits = []
    for name, leaf in zip(jax.tree.leaves(names), jax.tree.leaves(abstract_state)):
      if _is_typed_key(leaf):
        continue  # typed keys are stored as their key data: another shape, left to the restore
      if name not in stored:
        misfits.append(f"{name}: not in the checkpoint")
      elif (tuple(stored[name].shape) != tuple(np.shape(leaf))
            or not _same_dtype(stored[name], leaf)):
        misfits.append(f"{name}: stored {_shape_dtype(stored[name])}, "
                       f"expected {_shape_dtype(leaf)}")
    return misfits

  def _report(self, failures, used_step) -> None:
    for step, err in failures:
      self._details(f"checkpoint step {step} in {self.directory} unusable: "
                    f"{type(err).__name__}: {err}")
    bad = ", ".join(str(s) for s, _ in failures)
    if used_step is not None:
      where = "left in place (read-only)" if self.read_only else "moved to corrupt_checkpoints/"
      self.warn(f"checkpoint(s) at step {bad} unusable ({_one_line(failures[0][1])}); using "
                f"step {used_step}; the unusable ones are {where}"
                + (f"; details in {self.log_file}" if self.log_file and not self.read_only
                   else ""))

  def set_aside(self, steps: list[int], folder: str, what: str, why: str = "") -> None:
    """Moves checkpoints to ``../<folder>/step_<N>_<time>`` (kept, never deleted).

    Unusable ones go to ``corrupt_checkpoints/``; :mod:`unigen_jax.validation` sets aside
    bests a resumed run is about to replay. Each move is a line of the workdir's ``log.txt``:
    "moved the <what> checkpoint of step N to <destination>[ (<why>)]".
    """
    target = self.directory.parent / folder
    target.mkdir(exist_ok=True)
    for step in steps:
      source = self.directory / str(step)
      if source.exists():
        destination = target / f"step_{step}_{int(time.time())}"
        source.rename(destination)
        self._details(f"moved the {what} checkpoint of step {step} to {destination}"
                      + (f" ({why})" if why else ""))
    self.manager.reload()

  def close(self):
    self.manager.close()


def _one_line(err: BaseException) -> str:
  text = str(err).strip().splitlines()
  return f"{type(err).__name__}: {text[0][:160] if text else ''}"


def load_latest_state(model, directory, *, warn=None) -> tuple[int, Any]:
  """(step, state) of the newest good checkpoint of ``model`` in ``directory``, read-only.

  Raises CheckpointError when there is none (e.g. a workdir that never saved).
  """
  directory = pathlib.Path(directory)
  if not directory.is_dir():  # do not create it (the manager would)
    raise CheckpointError(f"{directory.resolve()} holds no checkpoint.")
  checkpointer = Checkpointer(directory, read_only=True, warn=warn)
  try:
    restored = checkpointer.restore(model.init(jax.random.key(0)))
  finally:
    checkpointer.close()
  if restored is None:
    raise CheckpointError(f"{directory.resolve()} holds no checkpoint.")
  return restored[0], restored[1]


def _is_typed_key(leaf: Any) -> bool:
  return jax.dtypes.issubdtype(getattr(leaf, "dtype", None), jax.dtypes.prng_key)


def _same_dtype(stored: Any, leaf: Any) -> bool:
  """False only for two plain dtypes that differ (key arrays and unknowns: the restore judges)."""
  try:
    return np.dtype(stored.dtype) == np.dtype(leaf.dtype)
  except (TypeError, AttributeError):
    return True


def _shape_dtype(array: Any) -> str:
  try:
    dtype = np.dtype(array.dtype).name
  except (TypeError, AttributeError):
    dtype = str(getattr(array, "dtype", "?"))
  return f"{dtype}{list(np.shape(array))}"
