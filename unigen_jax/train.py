"""Training program: ``train_and_evaluate(config, workdir)`` for every registered variant.

Read top to bottom, a run is: resolve the config (every field checked before anything is
compiled or written) -> load the data -> lock the workdir -> restore the newest good
checkpoint (or start) -> record the config -> the loop (steps, metrics, validation,
samples, checkpoints) -> the final evaluation and summary.

Guarantees:

* **Resumable, bitwise.** Restarting the same command in the same workdir continues from
  the newest good checkpoint with the data iterator where it was and produces bitwise the
  same parameters as an uninterrupted run. SIGINT/SIGTERM save a checkpoint and stop.
* **One run per workdir.** An exclusive lock (``W/.lock``) refuses a second process and
  names the one that holds it; a checkpoint written with another seed or by an older
  revision of the variant is refused, never continued.
* **Nothing saved is lost.** A changed config (``allow_config_change``) is written only
  after the checkpoints were restored under it; a corrupt or unrestorable checkpoint is
  moved to ``corrupt_checkpoints/``; a workdir whose checkpoints are gone but whose metrics
  remain is refused (``restart=True`` moves the old outputs to ``previous_<time>/``).

Outputs in ``workdir``: ``config.json``, ``checkpoints/``, ``best/`` (the checkpoint with
the best validation metric, with ``validation.select``), ``metrics.jsonl`` and
``tensorboard/`` (training metrics every ``log_every`` steps, ``val/<metric>`` every
``validation.every``), ``samples/step_XXXXXXX.png``, ``curves.png``, ``summary.json``,
``eval.json`` (with ``config.eval.metrics``), ``report.html`` and ``log.txt`` (details of
anything recovered from).
"""

from __future__ import annotations

import json
import math
import pathlib
import sys
import time
from typing import Optional

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from unigen_jax import checkpointing
from unigen_jax import config as config_lib
from unigen_jax import evaluator as evaluator_lib
from unigen_jax import input_pipeline
from unigen_jax import parallel
from unigen_jax import reporting
from unigen_jax import resume
from unigen_jax import train_step
from unigen_jax import validation as validation_lib
from unigen_jax import variants
from unigen_jax import workdir as workdir_lib

ConfigError = config_lib.ConfigError
resolve_config = config_lib.resolve_config
check_resume_compatible = config_lib.check_resume_compatible


StorageError = workdir_lib.StorageError


class NonFiniteError(FloatingPointError):
  """Training produced NaN or Inf; the last good checkpoint is kept."""


class TrainingInterrupted(KeyboardInterrupt):
  """SIGINT/SIGTERM: a checkpoint was saved (or nothing had started); rerun to resume."""


# --- the program -----------------------------------------------------------------------

def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, *,
                       allow_config_change: bool = False, restart: bool = False) -> dict:
  """Trains ``config.variant`` on ``config.data`` in ``workdir``; returns the summary dict."""
  stop: dict = {}
  started = time.time()
  with workdir_lib.stop_on_signals(stop):
    config, model_cfg = resolve_config(config)
    workdir = pathlib.Path(workdir)
    is_writer = jax.process_index() == 0
    data = _training_data(config)
    _check_interrupted(stop, "while loading the data")
    with resume.workdir_lock(workdir, is_writer), workdir_lib.storage_errors(workdir):
      stored = resume.stored_config(workdir, config, allow_config_change)
      model = train_step.Model(variants.get(config.variant), model_cfg)
      mesh = None if config.parallelism == "none" else parallel.data_mesh()
      run_key = jax.random.key(config.seed)
      state = model.init(jax.random.fold_in(run_key, 0), mesh=mesh)
      checkpoints = checkpointing.Checkpointer(
          workdir / "checkpoints", keep=config.keep_checkpoints, warn=_warn(is_writer),
          log_file=workdir / "log.txt" if is_writer else None)
      try:
        state, resumed_from, meta = resume.restore(checkpoints, state, config, model, run_key,
                                                   workdir, stored, allow_config_change,
                                                   restart, mesh)
        if resumed_from is not None:
          data.iterator.restore(meta["data_iterator"])
          _say(is_writer, f"resumed from the checkpoint at step {resumed_from} in {workdir}")
        if is_writer:
          resume.commit_config(workdir, config)  # only now: the checkpoints fit this config
        _check_interrupted(stop, "while restoring the checkpoints")
        # Wall time before this invocation, from the checkpoint it resumes (None: a checkpoint
        # written before checkpoints carried it; the summary then counts this invocation only).
        earlier = (meta or {}).get("wall_time_s") if resumed_from is not None else 0.0
        loop = _TrainingLoop(config, model, workdir, data, checkpoints, run_key, mesh, stop,
                             is_writer, meta.get("validation") if meta else None,
                             started=started, earlier_wall_time=earlier)
        state = loop.run(state)
      finally:
        checkpoints.close()
      return _finish(config, model, state, workdir, data, loop, resumed_from, is_writer,
                     started)


# --- before the loop ---------------------------------------------------------------------

def _training_data(config) -> input_pipeline.TrainData:
  variant = variants.get(config.variant)
  return input_pipeline.make_train_data(
      dataset=config.data.dataset, split=config.data.split, data_dir=config.data.data_dir or None,
      source=config.data.source, download=config.data.download, fraction=config.data.fraction,
      num_examples=config.data.num_examples, num_labelled=config.data.num_labelled,
      batch_size=config.batch_size, labelled_batch_size=config.data.labelled_batch_size,
      binarization=config.data.binarization, target_domain=config.data.target_domain or None,
      seed=config.seed, batch_keys=variant.batch_keys, verify=config.data.verify_checksums)


# --- the loop ------------------------------------------------------------------------------

class _TrainingLoop:
  """Steps, metrics, validation, samples and checkpoints of one run (see ``run``)."""

  def __init__(self, config, model, workdir, data, checkpoints, run_key, mesh, stop, is_writer,
               validation_state, *, started: float, earlier_wall_time: float | None):
    self.config, self.model, self.workdir = config, model, workdir
    self.started, self.earlier_wall_time = started, earlier_wall_time
    self.data, self.checkpoints, self.mesh, self.stop = data, checkpoints, mesh, stop
    self.is_writer = is_writer
    self.sync_each_step = mesh is not None and parallel.must_sync_each_step(mesh)
    self.run_key = run_key
    self.step_key = jax.random.fold_in(run_key, 1)
    self.sample_key = jax.random.fold_in(run_key, 2)
    self.validation_key = jax.random.fold_in(run_key, 3)
    self.step_fns: dict = {}
    self.last_metrics: dict = {}
    self.train_seconds = 0.0
    self.trained_steps = 0
    self.validation = validation_lib.Validation(config, model, workdir, is_writer,
                                                validation_state)

  def step_fn(self, n: int):
    """The compiled step for a call of ``n`` steps (the last call may be shorter)."""
    if n not in self.step_fns:
      self.step_fns[n] = train_step.make_train_step(
          self.model, parallelism=self.config.parallelism, mesh=self.mesh, steps_per_call=n)
    return self.step_fns[n]

  def run(self, state):
    config = self.config
    start = int(state.step)
    sizes = _call_sizes(start, config.steps, config.steps_per_call)
    if self.validation.stopped:  # an early-stopped run that is being rerun: nothing to do
      sizes = []
    source = _Groups(self.data.iterator, sizes) if config.steps_per_call > 1 else self.data.iterator
    batches = input_pipeline.Prefetcher(source, place=self._place,
                                        size=max(1, config.data.prefetch))
    writer = reporting.MetricWriter(self.workdir, enabled=self.is_writer)
    progress = self._progress_bar(start)
    pending: list = []
    step = start
    t_first = None
    try:
      for n in sizes:
        state, metrics = self.step_fn(n)(state, next(batches), self.step_key)
        previous, step = step, step + n
        pending.append((step, metrics))
        if t_first is None or self.sync_each_step:
          # Rates are timed from the end of the first (compiling) call. Several CPU devices
          # must not queue steps (parallel.must_sync_each_step).
          jax.block_until_ready(metrics)
        if t_first is None:
          t_first, self.trained_steps = time.time(), 0
        else:
          self.trained_steps += n
        crossed = lambda every: every and step // every > previous // every  # noqa: E731
        last = step >= config.steps
        if crossed(config.log_every) or last or self.stop:
          self._log(writer, pending, step, t_first, progress)
          pending = []
        if progress is not None:
          progress.update(n)
        if config.sample_every and crossed(config.sample_every):
          self._write_samples(state, step)
        if crossed(config.validation.every) or (last and config.validation.every):
          t0 = time.time()
          self.validation.evaluate(state, step, self.validation_key, writer)
          t_first += time.time() - t0  # keep evaluation out of the training rate
        if crossed(config.checkpoint_every) or last or self.stop or self.validation.stopped:
          self._save(state, step, batches.state())
        if self.stop:
          raise TrainingInterrupted(
              f"{self.stop['signal']} at step {step}: checkpoint saved in "
              f"{self.workdir / 'checkpoints'}; rerun the same command to resume.")
        if self.validation.stopped:
          _say(self.is_writer, f"early stop at step {step}: validation "
               f"{config.validation.select} has not improved for {config.validation.patience} "
               f"evaluations (best {self.validation.best:.4f} at step {self.validation.best_step})")
          break
    finally:
      batches.close()
      writer.close()
      if progress is not None:
        progress.close()
      self.validation.close()
    if t_first is not None:
      self.train_seconds = time.time() - t_first
    self.final_step = step
    return state

  def _place(self, batch):
    if self.mesh is None:
      return batch
    leading = np.ndim(batch["image"]) == len(self.model.cfg.image_shape) + 2  # stacked steps
    return parallel.shard_batch(batch, self.mesh, leading_steps=leading)

  def _progress_bar(self, start):
    if not (self.is_writer and self.config.progress):
      return None
    from tqdm import tqdm  # pylint: disable=g-import-not-at-top
    return tqdm(total=self.config.steps, initial=start, desc=self.config.variant, unit="step",
                dynamic_ncols=True, file=sys.stderr)

  def _log(self, writer, pending, step, t_first, progress):
    fetched = jax.device_get(pending)
    bad = _first_nonfinite(fetched)
    if bad:
      at, name, value = bad
      player = f" (the loss of player {name.split('/')[0]!r})" if name.endswith("/loss") else ""
      raise NonFiniteError(
          f"training metric {name!r}{player} = {value} at step {at}; stopped without saving. "
          f"The last good checkpoint ({self.checkpoints.steps()[-1:] or 'none'}) is kept; "
          "lower the learning rate or check the data.")
    self.last_metrics = {k: float(v) for k, v in fetched[-1][1].items()}
    elapsed = time.time() - t_first
    rate = self.trained_steps / elapsed if elapsed > 0 and self.trained_steps else float("nan")
    row = dict(self.last_metrics)
    if math.isfinite(rate):  # no rate before the first timed step
      row.update(steps_per_sec=rate, examples_per_sec=rate * self.config.batch_size)
    writer.write(step, row)
    if progress is not None:
      shown = sorted(self.last_metrics,
                     key=lambda k: (not k.endswith("/loss"), k != "elbo", k))[:4]
      progress.set_postfix({k: f"{self.last_metrics[k]:.3g}" for k in shown}, refresh=False)
      progress.set_postfix_str(progress.postfix + f", {rate * self.config.batch_size:.0f} ex/s")

  def _write_samples(self, state, step):
    if not (self.is_writer and self.model.variant.sampler is not None):
      return
    labels, rows = _sample_labels(self.model, self.config.num_samples)
    n = len(labels) if labels is not None else self.config.num_samples
    images = self.model.sample(state, jax.random.fold_in(self.sample_key, step), n, labels)
    reporting.save_image_grid(self.workdir / "samples" / f"step_{step:07d}.png",
                              np.asarray(images), rows)

  def _save(self, state, step, iterator_state):
    bad = {k for k, v in jax.device_get(_nonfinite_modules(state.params)).items() if v}
    if bad:
      raise NonFiniteError(f"non-finite parameters in {sorted(bad)} at step {step}; not saved. "
                           f"The last good checkpoint ({self.checkpoints.steps()[-1:] or 'none'}) "
                           "is kept.")
    self.checkpoints.save(step, state, self._meta(iterator_state))

  def _meta(self, iterator_state) -> dict:
    return {"data_iterator": iterator_state,
            "rng_key": np.asarray(jax.random.key_data(self.run_key)).tolist(),
            "variant": self.config.variant, "variant_revision": self.model.variant.revision,
            "validation": self.validation.state(),
            "wall_time_s": self.wall_time()}

  def wall_time(self) -> float | None:
    """Seconds the run has taken over all its invocations so far (None when an earlier
    invocation's time is unknown)."""
    if self.earlier_wall_time is None:
      return None
    return self.earlier_wall_time + time.time() - self.started


# --- after the loop ------------------------------------------------------------------------

def _finish(config, model, state, workdir, data, loop, resumed_from, is_writer,
            started) -> dict:
  """Final evaluation (on the best checkpoint when one was selected), samples, summary."""
  step = loop.final_step
  train_time = loop.train_seconds
  steps_per_sec = loop.trained_steps / train_time if train_time > 0 else float("nan")
  summary = {
      "variant": config.variant, "final_step": step, "resumed_from": resumed_from,
      "final_metrics": loop.last_metrics, "wall_time_s": None, "steps_per_sec": steps_per_sec,
      "examples_per_sec": steps_per_sec * config.batch_size, "data": data.description,
      "num_params": model.num_params(state), "validation": loop.validation.summary(),
      "config": config_lib.to_json(config), "versions": reporting.versions()}
  if config.eval.metrics:
    evaluated = state
    if config.validation.select and loop.validation.best_step is not None:
      best_step, evaluated = checkpointing.load_latest_state(model, workdir / "best")
      if best_step != loop.validation.best_step:  # never evaluate another step as the best
        raise checkpointing.CheckpointError(
            f"{workdir / 'best'} holds step {best_step} as its newest good checkpoint, but the "
            f"selection chose step {loop.validation.best_step}, whose checkpoint is missing or "
            f"unusable (details in {workdir / 'log.txt'}); nothing was evaluated. Rerun with "
            "--restart to train this run afresh (its outputs are kept in previous_<time>/).")
    evaluator = evaluator_lib.Evaluator(model, evaluator_lib.EvalSettings.from_config(config))
    summary["eval"] = evaluator_lib.final_report(evaluator, evaluated, config.seed)
    _say(is_writer, f"eval on {summary['eval'].get('dataset', 'generated samples')} "
         f"(step {summary['eval']['step']}): " + json.dumps(
             {k: v for k, v in summary["eval"].items() if k not in ("classifier",)}))
  # wall_time_s covers every invocation of the run (a resumed run adds the time stored in its
  # checkpoint); None when resumed from a checkpoint that predates that field.
  summary["wall_time_s"] = loop.wall_time()
  summary["wall_time_this_invocation_s"] = time.time() - started
  if is_writer:
    if "eval" in summary:
      workdir_lib.write_json_atomic(workdir / "eval.json", summary["eval"], indent=2)
    if config.sample_every:
      loop._write_samples(state, step)  # pylint: disable=protected-access
    workdir_lib.write_json_atomic(workdir / "summary.json", summary, indent=2,
                                  default=config_lib.jsonable)
    from unigen_jax import report  # pylint: disable=g-import-not-at-top
    report.write_report(workdir)  # also draws curves.png from metrics.jsonl
  return summary


# --- helpers ---------------------------------------------------------------------------------

def _call_sizes(start: int, steps: int, per_call: int) -> list[int]:
  """Steps per call from ``start`` to exactly ``steps`` (the last call may be shorter)."""
  return [min(per_call, steps - s) for s in range(start, steps, per_call)]


class _Groups:
  """Stacks the next ``n`` batches for each call size ``n`` (``lax.scan`` over steps)."""

  def __init__(self, iterator, sizes):
    self.iterator, self.sizes = iterator, iter(sizes)

  def __next__(self):
    n = next(self.sizes)
    if n == 1:  # a last call of one step takes a plain batch (the one-step function)
      return next(self.iterator)
    group = [next(self.iterator) for _ in range(n)]
    return {k: np.stack([g[k] for g in group]) for k in group[0]}

  def state(self):
    return self.iterator.state()


def _check_interrupted(stop: dict, phase: str) -> None:
  if stop:
    raise TrainingInterrupted(f"{stop['signal']} {phase}, before any training step: nothing was "
                              "trained or saved; rerun the same command to start.")


def _warn(enabled: bool):
  return lambda message: _say(enabled, f"warning: {message}")


def _say(enabled: bool, message: str) -> None:
  if enabled:
    print(message, file=sys.stderr, flush=True)


def _first_nonfinite(pending: list) -> Optional[tuple[int, str, float]]:
  for step, metrics in pending:
    for key, value in metrics.items():
      if not math.isfinite(float(value)):
        return step, key, float(value)
  return None


@jax.jit
def _nonfinite_modules(params):
  return {name: jnp.logical_not(jnp.all(jnp.asarray(
      [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(p)] or [True])))
          for name, p in params.items()}


def _sample_labels(model: train_step.Model, n: int):
  classes = model.variant.num_sample_classes(model.cfg)
  if classes is None:
    return None, max(1, int(math.sqrt(n)))
  per_row = max(1, n // classes)
  return np.repeat(np.arange(classes), per_row), classes
