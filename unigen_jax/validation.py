"""Evaluation on held-out data during training: curves, the best checkpoint, early stopping.

Every ``validation.every`` steps a :class:`unigen_jax.evaluator.Evaluator` scores the
current state on the ``validation.split`` of the training data set (never the test split)
and the values go to ``metrics.jsonl`` as ``val/<metric>``. With ``validation.select`` the
checkpoint with the best value is kept in ``W/best/`` (the final evaluation uses it); with
``validation.patience`` training stops after that many evaluations without improvement.
The state of the selection (best value and step, evaluations since) travels in every
checkpoint's metadata, so a resumed run selects exactly as an uninterrupted one.

A kill between a new best's save and the next regular checkpoint leaves ``W/best/`` ahead of
the checkpoint the run resumes from: a best of a step the restored selection has not seen.
On resume such checkpoints are moved to ``W/best_superseded/`` (kept, never deleted) and the
replayed steps select and save again; ``W/best/`` keeps the last two bests, so the one the
restored selection names survives that kill.
"""

from __future__ import annotations

from typing import Optional

from unigen_jax import checkpointing
from unigen_jax import evaluator as evaluator_lib
from unigen_jax import metrics as metric_lib


class Validation:
  """Evaluation on held-out data every ``validation.every`` steps; keeps the best checkpoint."""

  def __init__(self, config, model, workdir, is_writer, state: Optional[dict]):
    v = config.validation
    self.enabled = bool(v.every)
    self.select = v.select
    self.patience = v.patience
    self.workdir, self.is_writer = workdir, is_writer
    state = state or {}
    self.best = state.get("best")
    self.best_step = state.get("best_step")
    self.since_best = state.get("since_best", 0)
    self.stopped = bool(state.get("stopped", False))
    self.evaluations = state.get("evaluations", 0)
    self.evaluator = None
    self.best_checkpoints = None
    if not self.enabled:
      return
    names = metric_lib.validation_metrics(v.metrics, model.variant)
    settings = evaluator_lib.EvalSettings(
        metrics=tuple(names), dataset=config.data.dataset, split=v.split,
        data_dir=config.data.data_dir, binarization=config.eval.binarization,
        num_examples=v.num_examples, batch_size=config.eval.batch_size,
        num_generated=v.num_generated, classifier_dir=config.eval.classifier_dir,
        verify=config.data.verify_checksums)
    self.evaluator = evaluator_lib.Evaluator(model, settings)
    if self.select and is_writer:
      # keep=2: the best the last regular checkpoint names must outlive a kill that comes
      # after the next best's save and before the next regular checkpoint.
      self.best_checkpoints = checkpointing.Checkpointer(
          workdir / "best", keep=2, log_file=workdir / "log.txt")
      self._set_aside_bests_after(self.best_step)

  def _set_aside_bests_after(self, best_step: Optional[int]) -> None:
    """Moves bests the restored selection has not seen to ``best_superseded/`` (kept).

    They were saved after the checkpoint this run resumes from, by steps it is about to
    replay; left in place, the replay's save of the same step would fail, and a step it
    does not select again would pass for the best.
    """
    ahead = [s for s in self.best_checkpoints.steps() if best_step is None or s > best_step]
    if ahead:
      self.best_checkpoints.set_aside(
          ahead, "best_superseded", "best",
          "saved after the checkpoint this run resumed from; its steps are replayed")

  def state(self) -> dict:
    return {"best": self.best, "best_step": self.best_step, "since_best": self.since_best,
            "stopped": self.stopped, "evaluations": self.evaluations}

  def evaluate(self, state, step, key, writer) -> None:
    result = self.evaluator(state, key)
    values = {k: v for k, v in result.items() if k not in ("step", "eval_time_s")}
    writer.write(step, {f"val/{k}": v for k, v in values.items()})
    self.evaluations += 1
    if not self.select:
      return
    value = values[self.select]
    better = (self.best is None or
              (value > self.best if metric_lib.HIGHER_IS_BETTER[self.select] else value < self.best))
    if better:
      self.best, self.best_step, self.since_best = float(value), int(step), 0
      if self.best_checkpoints is not None:
        self.best_checkpoints.save(step, state, {"validation": {self.select: float(value)}})
    else:
      self.since_best += 1
      if self.patience and self.since_best >= self.patience:
        self.stopped = True

  def summary(self) -> Optional[dict]:
    if not self.enabled:
      return None
    return {"metrics": list(self.evaluator.settings.metrics),
            "data": self.evaluator.describe().get("dataset"), "select": self.select or None,
            "best": self.best, "best_step": self.best_step, "stopped_early": self.stopped,
            "evaluations": self.evaluations}

  def close(self):
    if self.best_checkpoints is not None:
      self.best_checkpoints.close()
