r"""Evaluating model states: an :class:`Evaluator` per model and evaluation data.

The metrics (pure functions) are in :mod:`unigen_jax.metrics`; the evaluation classifier
in :mod:`unigen_jax.eval_classifier`. An :class:`Evaluator` loads its data once, compiles
its functions once (the parameters are arguments, never constants), and is then called
on any number of states: at the end of training, every ``validation.every`` steps during
it, or on a saved run by :mod:`unigen_jax.evaluate` (the command line).

What each variant supports comes from its declaration (``Variant.likelihood_bound``,
``label_classifier``, ``sampler``, ``num_sample_classes``); nothing here switches on
variant names.
"""

from __future__ import annotations

import dataclasses
import pathlib
import time
from typing import Optional

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

  def __call__(self, state, key, num_generated: Optional[int] = None,
               diagnostics: bool = False) -> dict:
    """Every metric of the settings; ``diagnostics`` adds ``sample_class_diagnostics`` (a dict:
    :func:`unigen_jax.metrics.sample_class_diagnostics` of the same samples) to the result."""
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
      if diagnostics:
        result["sample_class_diagnostics"] = metric_lib.sample_class_diagnostics(logits)
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
  raw = evaluator(state, jax.random.key(seed + 1), diagnostics=True)
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
