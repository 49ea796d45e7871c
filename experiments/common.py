"""Shared machinery of the table experiments: presets, resumable runs, aggregation.

Every run is an ordinary ``unigen_jax.train.train_and_evaluate`` in its own workdir under
``--workdir`` (so an interrupted table resumes where it stopped), with the evaluation in
the config. Presets:

* ``smoke``: seconds; tiny networks on a few hundred ``mnist_sample`` images, evaluated on
  its held-out split. Run by the test suite: it checks the plumbing, not the numbers.
* ``cpu``: what a 2-core machine does in about two hours per table: DCGAN networks of
  width 32 (the paper's are 64), real MNIST training data from ``mnist_sample``
  (the 1% protocol exactly: 600 class-balanced images; the largest available fraction is
  all 5,000 = 8.3%, stated as such), evaluation on the real 10,000-image MNIST test set
  (``--mnist_test_dir``), and Fashion-MNIST (Debian package) for the full-size row.
* ``paper``: the paper's setting for GPU/TPU: width 64, full MNIST (``--mnist_dir`` with
  the four IDX files, or TFDS), 5 seeds, long schedules.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import sys
import time
from typing import Optional

import numpy as np

from unigen_jax import evaluate
from unigen_jax import train
from unigen_jax.configs import default


@dataclasses.dataclass
class Preset:
  width: int
  gan_steps: int
  vae_steps: int
  batch_size: int
  gan_seeds: int
  vae_seeds: int
  eval_examples: Optional[int]
  num_generated: int
  classifier_steps: int
  log_every: int


PRESETS = {
    "smoke": Preset(width=4, gan_steps=4, vae_steps=4, batch_size=16, gan_seeds=1, vae_seeds=1,
                    eval_examples=50, num_generated=100, classifier_steps=10, log_every=2),
    "cpu": Preset(width=32, gan_steps=3000, vae_steps=3000, batch_size=64, gan_seeds=5,
                  vae_seeds=1, eval_examples=None, num_generated=10000, classifier_steps=1500,
                  log_every=100),
    "paper": Preset(width=64, gan_steps=50000, vae_steps=50000, batch_size=64, gan_seeds=5,
                    vae_seeds=5, eval_examples=None, num_generated=50000, classifier_steps=10000,
                    log_every=500),
}


def base_config(variant: str, preset: Preset, *, seed: int, dataset: str, split: str,
                data_dir: str, eval_dataset: str, eval_split: str, eval_data_dir: str):
  config = default.get_config(f"{variant},{dataset}")
  config.seed = seed
  config.model.width = preset.width
  config.batch_size = preset.batch_size
  config.data.split = split
  config.data.data_dir = data_dir
  config.log_every = preset.log_every
  config.checkpoint_every = max(preset.log_every, 500)
  config.sample_every = 0 if preset is PRESETS["smoke"] else 1000
  config.progress = preset is not PRESETS["smoke"]
  config.eval.dataset, config.eval.split, config.eval.data_dir = eval_dataset, eval_split, eval_data_dir
  config.eval.num_examples = preset.eval_examples
  config.eval.num_generated = preset.num_generated
  return config


def apply_overrides(config, overrides) -> list[str]:
  """Sets ``field.path=value`` strings on ``config`` (values as Python literals); returns them.

  An unknown field or an unparsable value is one clear error (``SystemExit`` with code 2).
  """
  import ast  # pylint: disable=g-import-not-at-top
  applied = []
  for item in overrides or ():
    path, sep, text = item.partition("=")
    if not sep:
      raise SystemExit(f"error: --set {item!r}: write field.path=value, e.g. "
                       "model.discriminator_learning_rate=1e-5")
    *parents, leaf = path.split(".")
    node = config
    for name in parents:
      node = node.get(name) if hasattr(node, "get") else None
    if node is None or leaf not in node:
      raise SystemExit(f"error: --set {item!r}: the config has no field {path!r}")
    try:
      value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
      value = text  # a bare string
    node[leaf] = value
    applied.append(f"{path}={value!r}")
  return applied


def run(config, workdir: pathlib.Path) -> dict:
  """Trains (or resumes) one run; returns its summary with the evaluation."""
  print(f"== {config.variant} seed {config.seed} -> {workdir}", file=sys.stderr, flush=True)
  summary_path = workdir / "summary.json"
  if summary_path.exists():
    summary = json.loads(summary_path.read_text())
    if summary.get("final_step") == config.steps and "eval" in summary:
      return summary  # finished earlier: reuse
  return train.train_and_evaluate(config, str(workdir))


def classifier_for(root: pathlib.Path, preset: Preset, *, dataset: str, split: str,
                   data_dir: Optional[str], test_dataset: str, test_split: str,
                   test_data_dir: Optional[str]) -> pathlib.Path:
  """Trains (once) and caches the evaluation classifier of a dataset."""
  directory = root / "classifiers" / f"{dataset}_{preset.classifier_steps}"
  if not (directory / "classifier.json").exists():
    print(f"== evaluation classifier -> {directory}", file=sys.stderr, flush=True)
    clf = evaluate.train_classifier(dataset, split=split, data_dir=data_dir,
                                    test_dataset=test_dataset, test_split=test_split,
                                    test_data_dir=test_data_dir, steps=preset.classifier_steps,
                                    width=32 if preset is not PRESETS["smoke"] else 4)
    clf.save(directory)
  return directory


def mean_std(values) -> tuple[float, float]:
  values = np.asarray(values, np.float64)
  return float(values.mean()), float(values.std()) if len(values) > 1 else 0.0


def fmt(values, digits=2) -> str:
  mean, std = mean_std(values)
  return f"{mean:.{digits}f} ± {std:.{digits}f}" if len(values) > 1 else f"{mean:.{digits}f}"


def write_table(path: pathlib.Path, lines: list[str], records: dict) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text("\n".join(lines) + "\n")
  path.with_suffix(".json").write_text(json.dumps(records, indent=2, default=str))
  print(path.read_text())


def now() -> str:
  return time.strftime("%Y-%m-%d %H:%M")


def code_version() -> str:
  """``git`` commit of the code that writes the table (``+dirty`` with uncommitted changes)."""
  import subprocess  # pylint: disable=g-import-not-at-top
  root = pathlib.Path(__file__).resolve().parents[1]
  try:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, check=True,
                            capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                           check=True, capture_output=True, text=True).stdout.strip()
  except (OSError, subprocess.CalledProcessError):
    return "unknown (not a git checkout)"
  return commit + ("+dirty" if dirty else "")


def run_time_line(summaries) -> str:
  """Training + evaluation time of the runs themselves (a table may reuse finished runs)."""
  total = sum(s.get("wall_time_s", 0.0) for s in summaries)
  resumed = sum(1 for s in summaries if s.get("resumed_from"))
  return (f"runs' own wall time {total / 60:.1f} min summed over {len(summaries)} runs"
          + (f" ({resumed} resumed from a checkpoint: only the resumed part counted)"
             if resumed else ""))
