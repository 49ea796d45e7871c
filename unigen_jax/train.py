"""Training program: ``train_and_evaluate(config, workdir)`` for every registered variant.

The run is resumable: restarting the same command in the same workdir continues
from the newest good checkpoint with the data iterator where it was, and
produces bitwise the same parameters as an uninterrupted run. Everything is
validated before anything is compiled or written. Outputs in ``workdir``:

* ``config.json``: the resolved config (written once; a resume must match it);
* ``checkpoints/``: orbax checkpoints every ``checkpoint_every`` steps, on
  SIGINT/SIGTERM and at the end (a checkpoint that cannot be restored is moved to
  ``corrupt_checkpoints/`` and the run resumes from the previous good one);
* ``metrics.jsonl`` and ``tensorboard/``: metrics every ``log_every`` steps;
* ``samples/step_XXXXXXX.png``: sample grids (conditional variants: a row per class);
* ``curves.png``, ``summary.json`` (final metrics, wall time, steps/s, config,
  versions) and, with ``config.eval.metrics``, ``eval.json``.
"""

from __future__ import annotations

import contextlib
import json
import math
import pathlib
import platform
import signal
import sys
import time
from typing import Any, Optional

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from unigen_jax import checkpointing
from unigen_jax import input_pipeline
from unigen_jax import parallel
from unigen_jax import reporting
from unigen_jax import train_step
from unigen_jax import variants
from unigen_jax.configs import default as default_config

# Fields that may change when a run is resumed (they do not change what is computed).
RESUMABLE_FIELDS = {"steps", "log_every", "checkpoint_every", "keep_checkpoints", "sample_every",
                    "num_samples", "progress", "data.prefetch", "data.data_dir"}
RESUMABLE_PREFIXES = ("eval.",)


class ConfigError(ValueError):
  """The config cannot be run; the message names the field and the fix."""


class NonFiniteError(FloatingPointError):
  """Training produced NaN or Inf; the last good checkpoint is kept."""


class TrainingInterrupted(KeyboardInterrupt):
  """SIGINT/SIGTERM: a checkpoint was saved; rerun the same command to resume."""


# --- config validation -----------------------------------------------------------

def _flatten(config: Any, prefix: str = "") -> dict:
  out = {}
  items = config.items() if hasattr(config, "items") else []
  for key, value in items:
    name = f"{prefix}{key}"
    if isinstance(value, (ml_collections.ConfigDict, dict)):
      out.update(_flatten(value, name + "."))
    else:
      out[name] = value
  return out


def _jsonable(value):
  if isinstance(value, tuple):
    return list(value)
  return value


def resolve_config(config: ml_collections.ConfigDict) -> tuple[ml_collections.ConfigDict,
                                                               variants.ModelConfig]:
  """Checks every field and fills dataset-dependent ones; raises ConfigError before any compile."""
  config = ml_collections.ConfigDict(config.to_dict())  # an unlocked copy
  schema = _flatten(default_config.get_config(config.get("variant", "vae")))
  given = _flatten(config)
  unknown = sorted(set(given) - set(schema))
  if unknown:
    raise ConfigError(f"unknown config field(s) {unknown}; the fields are listed in "
                      "unigen_jax/configs/default.py.")
  missing = sorted(set(schema) - set(given))
  if missing:
    raise ConfigError(f"config is missing field(s) {missing}; start from "
                      "unigen_jax/configs/default.py:get_config.")
  try:
    variant = variants.get(config.variant)
  except ValueError as err:
    raise ConfigError(f"config.variant: {err}") from None
  try:
    info = input_pipeline.dataset_info(config.data.dataset)
  except input_pipeline.DataError as err:
    raise ConfigError(f"config.data.dataset: {err}") from None

  def require(cond, field, message):
    if not cond:
      raise ConfigError(f"config.{field}={_flatten(config).get(field)!r}: {message}")

  for field in ("steps", "batch_size", "log_every", "checkpoint_every", "keep_checkpoints",
                "num_samples", "steps_per_call"):
    require(isinstance(config[field], int) and config[field] >= 1, field, "must be an integer >= 1.")
  require(config.sample_every >= 0, "sample_every", "must be >= 0 (0 disables sample grids).")
  require(config.parallelism in ("jit", "shard_map", "none"), "parallelism",
          "use 'jit', 'shard_map' or 'none'.")
  devices = 1 if config.parallelism == "none" else jax.device_count()
  require(config.batch_size % devices == 0, "batch_size",
          f"must be divisible by the {devices} devices.")
  require(config.data.binarization in ("none", "dynamic", "fixed"), "data.binarization",
          "use 'none', 'dynamic' or 'fixed'.")
  if config.data.fraction is not None:
    require(0 < config.data.fraction <= 1, "data.fraction", "must be in (0, 1].")
  semi = "unlabelled_image" in variant.batch_keys
  if semi:
    require(config.data.num_labelled, "data.num_labelled",
            f"variant {variant.name!r} is semi-supervised: set the size of the labelled set.")
  else:
    require(config.data.num_labelled is None, "data.num_labelled",
            f"only semi-supervised variants (svae, aasvae) use it, not {variant.name!r}.")
  if "target_image" in variant.batch_keys:
    require(config.data.target_domain == "inverted", "data.target_domain",
            f"variant {variant.name!r} adapts between domains: set 'inverted'.")
  if "label" in variant.batch_keys or variant.conditional:
    require(info.num_classes >= 2, "data.dataset",
            f"variant {variant.name!r} is conditional and needs a labelled dataset.")

  model = dict(config.model)
  for field, value in (("image_shape", info.image_shape), ("num_classes", info.num_classes)):
    if model[field] is None:
      model[field] = value
    elif tuple(np.atleast_1d(model[field])) != tuple(np.atleast_1d(value)):
      raise ConfigError(f"config.model.{field}={model[field]} but dataset "
                        f"{info.name!r} has {value}; leave it None to use the dataset's.")
  config.model.image_shape = tuple(model["image_shape"])
  config.model.num_classes = int(model["num_classes"])
  try:
    model_cfg = variant.resolve(variants.ModelConfig(**{**model, "hidden": tuple(model["hidden"])}))
    variant.players_for(model_cfg)  # a bad update_order fails here, before any file is written
  except (TypeError, ValueError) as err:
    raise ConfigError(f"config.model: {err}") from None
  for field in ("latent_dim", "learning_rate", "b1"):  # record the variant's defaults
    config.model[field] = getattr(model_cfg, field)
  if config.eval.metrics:
    from unigen_jax import evaluate  # pylint: disable=g-import-not-at-top
    for metric in config.eval.metrics.split(","):
      require(metric in evaluate.METRICS, "eval.metrics",
              f"unknown metric {metric!r}; available: {sorted(evaluate.METRICS)}.")
  return config, model_cfg


def check_resume_compatible(stored: dict, config: ml_collections.ConfigDict) -> list[str]:
  """Names of fields that differ from the stored config and may not change on resume."""
  now = {k: _jsonable(v) for k, v in _flatten(config).items()}
  then = _flatten(stored)
  # A field added to the config after the run was saved is compatible at its default value:
  # new fields default to the behaviour the code had before they existed.
  defaults = {k: _jsonable(v) for k, v in _flatten(default_config.get_config(config.variant)).items()}
  added_at_default = {k for k in set(now) - set(then) if k in defaults and now[k] == defaults[k]}
  return sorted(k for k in set(now) | set(then)
                if now.get(k) != then.get(k) and k not in RESUMABLE_FIELDS
                and k not in added_at_default and not k.startswith(RESUMABLE_PREFIXES))


# --- helpers ---------------------------------------------------------------------

def _versions() -> dict:
  import flax  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top
  return {"python": sys.version.split()[0], "jax": jax.__version__,
          "jaxlib": jax.lib.__version__ if hasattr(jax.lib, "__version__") else "",
          "flax": flax.__version__, "optax": optax.__version__, "numpy": np.__version__,
          "platform": platform.platform(), "devices": [str(d) for d in jax.devices()]}


@contextlib.contextmanager
def _stop_on_signals(flag: dict):
  """SIGINT/SIGTERM set a flag; the loop saves a checkpoint and stops cleanly."""
  previous = {}

  def handler(signum, _frame):
    flag["signal"] = signal.Signals(signum).name

  for sig in (signal.SIGINT, signal.SIGTERM):
    try:
      previous[sig] = signal.signal(sig, handler)
    except ValueError:  # not the main thread: leave signals alone
      pass
  try:
    yield
  finally:
    for sig, old in previous.items():
      signal.signal(sig, old)


def _say(enabled: bool, message: str) -> None:
  if enabled:
    print(message, file=sys.stderr, flush=True)


def _first_nonfinite(pending: list[tuple[int, dict]]) -> Optional[tuple[int, str, float]]:
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
  if not model.variant.conditional:
    return None, max(1, int(math.sqrt(n)))
  classes = model.cfg.infogan_categories if model.variant.name == "infogan" else model.cfg.num_classes
  per_row = max(1, n // classes)
  return np.repeat(np.arange(classes), per_row), classes


# --- the program -----------------------------------------------------------------

def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, *,
                       allow_config_change: bool = False) -> dict:
  """Trains ``config.variant`` on ``config.data`` in ``workdir``; returns the summary dict."""
  config, model_cfg = resolve_config(config)
  workdir = pathlib.Path(workdir)
  is_writer = jax.process_index() == 0
  config_path = workdir / "config.json"
  config_json = json.loads(json.dumps(config.to_dict(), default=_jsonable))
  if config_path.exists():
    stored = json.loads(config_path.read_text())
    changed = check_resume_compatible(stored, config)
    if changed and not allow_config_change:
      details = ", ".join(f"{k}: {_flatten(stored).get(k)!r} -> {_flatten(config_json).get(k)!r}"
                          for k in changed)
      raise ConfigError(f"{workdir} holds a run with a different config ({details}). Use "
                        "another --workdir, or pass --allow_config_change to resume anyway.")

  data = input_pipeline.make_train_data(
      dataset=config.data.dataset, split=config.data.split, data_dir=config.data.data_dir or None,
      source=config.data.source, download=config.data.download, fraction=config.data.fraction,
      num_examples=config.data.num_examples, num_labelled=config.data.num_labelled,
      batch_size=config.batch_size, labelled_batch_size=config.data.labelled_batch_size,
      binarization=config.data.binarization, target_domain=config.data.target_domain or None,
      seed=config.seed, batch_keys=variants.get(config.variant).batch_keys)

  if is_writer:
    workdir.mkdir(parents=True, exist_ok=True)
    if not config_path.exists() or allow_config_change:
      tmp = config_path.with_suffix(".json.tmp")
      tmp.write_text(json.dumps(config_json, indent=2, sort_keys=True))
      tmp.replace(config_path)
  _say(is_writer, f"data: {data.description}")

  model = train_step.Model(variants.get(config.variant), model_cfg)
  mesh = None if config.parallelism == "none" else parallel.data_mesh()
  run_key = jax.random.key(config.seed)
  state = model.init(jax.random.fold_in(run_key, 0), mesh=mesh)
  step_key = jax.random.fold_in(run_key, 1)
  sample_key = jax.random.fold_in(run_key, 2)

  checkpoints = checkpointing.Checkpointer(workdir / "checkpoints", keep=config.keep_checkpoints)
  restored = checkpoints.restore(state)
  resumed_from = None
  if restored is not None:
    resumed_from, state, meta = restored
    if mesh is not None:
      state = jax.device_put(state, jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec()))
    data.iterator.restore(meta["data_iterator"])
    _say(is_writer, f"resumed from the checkpoint at step {resumed_from} in {workdir}")
  start = int(state.step)

  step_fn = train_step.make_train_step(model, parallelism=config.parallelism, mesh=mesh,
                                       steps_per_call=config.steps_per_call)

  def place(batch):
    return batch if mesh is None else parallel.shard_batch(
        batch, mesh, leading_steps=config.steps_per_call > 1)

  def stacked(iterator):
    while True:
      group = [next(iterator) for _ in range(config.steps_per_call)]
      yield {k: np.stack([g[k] for g in group]) for k in group[0]}

  class _Stacked:  # keeps the iterator's state() for the prefetcher
    def __init__(self, it):
      self.it, self.gen = it, stacked(it)

    def __next__(self):
      return next(self.gen)

    def state(self):
      return self.it.state()

  source = data.iterator if config.steps_per_call == 1 else _Stacked(data.iterator)
  batches = input_pipeline.Prefetcher(source, place=place, size=max(1, config.data.prefetch))
  writer = reporting.MetricWriter(workdir, enabled=is_writer)

  def save(step):
    bad = {k for k, v in jax.device_get(_nonfinite_modules(state.params)).items() if v}
    if bad:
      raise NonFiniteError(f"non-finite parameters in {sorted(bad)} at step {step}; not saved. "
                           f"The last good checkpoint ({checkpoints.steps()[-1:] or 'none'}) is kept.")
    checkpoints.save(step, state, {"data_iterator": batches.state(),
                                   "rng_key": np.asarray(jax.random.key_data(run_key)).tolist(),
                                   "variant": config.variant})

  def write_samples(step):
    if not (is_writer and model.variant.sampler is not None):
      return
    labels, rows = _sample_labels(model, config.num_samples)
    n = len(labels) if labels is not None else config.num_samples
    images = model.sample(state, jax.random.fold_in(sample_key, step), n, labels)
    reporting.save_image_grid(workdir / "samples" / f"step_{step:07d}.png",
                              np.asarray(images), rows)

  stop = {}
  pending: list[tuple[int, dict]] = []
  last_metrics: dict = {}
  timing = {"t0": None, "steps0": 0}
  progress = None
  if is_writer and config.progress:
    from tqdm import tqdm  # pylint: disable=g-import-not-at-top
    progress = tqdm(total=config.steps, initial=start, desc=config.variant, unit="step",
                    dynamic_ncols=True, file=sys.stderr)
  wall_start = time.time()
  step = start
  try:
    with _stop_on_signals(stop):
      while step < config.steps:
        state, metrics = step_fn(state, next(batches), step_key)
        step += config.steps_per_call
        pending.append((step, metrics))
        if timing["t0"] is None:  # time from the end of the first (compiling) call
          jax.block_until_ready(metrics)
          timing["t0"], timing["steps0"] = time.time(), step
        boundary = lambda every: step % every < config.steps_per_call  # noqa: E731
        if boundary(config.log_every) or step >= config.steps or stop:
          fetched = jax.device_get(pending)
          bad = _first_nonfinite(fetched)
          if bad:
            raise NonFiniteError(
                f"{bad[1]} = {bad[2]} at step {bad[0]} (player {bad[1].split('/')[0]!r}); "
                f"stopped. The last good checkpoint ({checkpoints.steps()[-1:] or 'none'}) is "
                "kept; lower the learning rate or check the data.")
          last_metrics = {k: float(v) for k, v in fetched[-1][1].items()}
          elapsed = time.time() - timing["t0"]
          rate = (step - timing["steps0"]) / elapsed if elapsed > 0 else float("nan")
          row = dict(last_metrics, steps_per_sec=rate,
                     examples_per_sec=rate * config.batch_size)
          writer.write(step, row)
          pending = []
          if progress is not None:
            shown = sorted(last_metrics, key=lambda k: (not k.endswith("/loss"), k != "elbo", k))
            progress.set_postfix({k: f"{last_metrics[k]:.3g}" for k in shown[:4]}, refresh=False)
            progress.set_postfix_str(progress.postfix + f", {rate * config.batch_size:.0f} ex/s")
        if progress is not None:
          progress.update(config.steps_per_call)
        if config.sample_every and boundary(config.sample_every):
          write_samples(step)
        if boundary(config.checkpoint_every) or step >= config.steps or stop:
          save(step)
        if stop:
          raise TrainingInterrupted(
              f"{stop['signal']} at step {step}: checkpoint saved in {workdir / 'checkpoints'}; "
              "rerun the same command to resume.")
  finally:
    batches.close()
    writer.close()
    if progress is not None:
      progress.close()
    checkpoints.close()

  wall = time.time() - wall_start
  train_time = time.time() - timing["t0"] if timing["t0"] else float("nan")
  steps_per_sec = (step - timing["steps0"]) / train_time if train_time > 0 else float("nan")
  summary = {
      "variant": config.variant, "workdir": str(workdir), "final_step": step,
      "resumed_from": resumed_from, "final_metrics": last_metrics,
      "wall_time_s": wall, "steps_per_sec": steps_per_sec,
      "examples_per_sec": steps_per_sec * config.batch_size,
      "data": data.description, "num_params": model.num_params(state),
      "config": config_json, "versions": _versions()}
  if config.eval.metrics:
    from unigen_jax import evaluate  # pylint: disable=g-import-not-at-top
    summary["eval"] = evaluate.evaluate_model(model, state, config, workdir=workdir,
                                              write=is_writer)
  if is_writer:
    if config.sample_every:
      write_samples(step)
    reporting.plot_curves(reporting.read_metrics(workdir / "metrics.jsonl"), workdir / "curves.png",
                          title=f"{config.variant} on {config.data.dataset}")
    (workdir / "summary.json").write_text(json.dumps(summary, indent=2, default=_jsonable))
  return summary
