"""The run configuration in one place: its fields, their validation, and resume compatibility.

* :func:`get_config` builds the ml_collections defaults (``unigen_jax/configs/default.py``
  is a thin file over it, for ``--config=unigen_jax/configs/default.py:<variant>[,<dataset>]``).
  The ``model`` fields are generated from :class:`unigen_jax.variants.ModelConfig`, the one
  field list of the networks and losses.
* :func:`resolve_config` checks every field and fills the dataset- and variant-dependent ones
  before anything is compiled or written; a bad value is one :class:`ConfigError` naming the
  field and the fix.
* :func:`check_resume_compatible` names the fields a resumed run may not change.

Defaults follow the paper: GANs use the DCGAN networks and hyperparameters (Adam 2e-4,
beta1 0.5, batch 64, latent 100, grey-level data); the VAE family shares those networks with
Adam 1e-3, latent 20 and dynamically binarised data. Fields left ``None`` take the
variant's default or the dataset's shape.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

import jax
import ml_collections
import numpy as np
from ml_collections.config_dict import placeholder

from unigen_jax import input_pipeline
from unigen_jax import metrics as metric_lib
from unigen_jax import train_step
from unigen_jax import variants

DEFAULT_VARIANT = "vae"  # of ``get_config()`` without an argument

# Fields that may change when a run is resumed (they do not change what is computed).
RESUMABLE_FIELDS = {"steps", "log_every", "checkpoint_every", "keep_checkpoints", "sample_every",
                    "num_samples", "progress", "data.prefetch", "data.data_dir",
                    "data.verify_checksums",
                    # the same function, another speed (e.g. resuming a CPU run on a GPU)
                    "model.conv_batch_chunk"}
RESUMABLE_PREFIXES = ("eval.", "validation.")

# ModelConfig fields the config leaves to the dataset (None: the dataset's value).
_DATASET_FIELDS = {"image_shape": tuple, "num_classes": int}


class ConfigError(ValueError):
  """The config cannot be run; the message names the field and the fix."""


def _model_defaults() -> dict:
  """The ``model`` section: every ModelConfig field with its default (typed placeholders for None)."""
  hints = typing.get_type_hints(variants.ModelConfig)
  out = {}
  for field in dataclasses.fields(variants.ModelConfig):
    if field.name in _DATASET_FIELDS:
      out[field.name] = placeholder(_DATASET_FIELDS[field.name])
    elif field.default is None:
      kind = [t for t in typing.get_args(hints[field.name]) if t is not type(None)][0]
      out[field.name] = placeholder(kind)
    else:
      out[field.name] = field.default
  return out


def get_config(arg: str = DEFAULT_VARIANT) -> ml_collections.ConfigDict:
  """Default config of ``arg`` = ``variant`` or ``variant,dataset`` (default ``mnist_sample``)."""
  parts = [p for p in (arg or DEFAULT_VARIANT).split(",") if p]
  variant_name = parts[0]
  dataset = parts[1] if len(parts) > 1 else "mnist_sample"
  try:
    declared = variants.get(variant_name)
  except ValueError:
    declared = variants.get(DEFAULT_VARIANT)  # resolve_config names the unknown variant
  binarization = declared.data_binarization

  config = ml_collections.ConfigDict()
  config.variant = variant_name
  config.seed = 0
  config.steps = 2000
  config.batch_size = 64
  config.parallelism = "jit"          # 'jit' (sharded jit), 'shard_map' or 'none'
  config.steps_per_call = 1           # >1: several steps per call with lax.scan

  config.model = ml_collections.ConfigDict(_model_defaults())

  config.data = ml_collections.ConfigDict(dict(
      dataset=dataset,
      split="train",                  # mnist_sample: 4,500 images; 'validation' holds 500 out
      data_dir="", source="auto", download=False,
      verify_checksums=True,          # SHA-256 of IDX files whose digests are known (MNIST)
      fraction=placeholder(float),    # class-balanced share of the split (0.01 / 0.1 / 1.0)
      num_examples=placeholder(int),  # or an explicit class-balanced count
      num_labelled=placeholder(int),  # semi-supervised variants: size of the labelled set
      labelled_batch_size=placeholder(int),  # default: batch_size
      binarization=binarization,
      target_domain="inverted" if "target_image" in declared.batch_keys else "",
      prefetch=2))

  config.log_every = 50
  config.checkpoint_every = 500
  config.keep_checkpoints = 3
  config.sample_every = 500
  config.num_samples = 100            # sample grid of 10 x 10 (conditional: a row per class)
  config.progress = True

  # Evaluation on held-out data *during* training (curves, checkpoint selection, early
  # stopping). It reads config.data.dataset / data_dir, split `validation.split`.
  config.validation = ml_collections.ConfigDict(dict(
      every=0,                        # steps between evaluations; 0: none
      split="validation",             # never the test split
      metrics="",                     # "" = the variant's: elbo, or inception_score / cond. acc.
      num_examples=placeholder(int),  # class-balanced subset; None: the whole split
      num_generated=5000,             # samples for inception score / conditional accuracy
      select="",                      # metric whose best value picks the checkpoint evaluated
      patience=0))                    # stop after this many evaluations without improvement

  # Evaluation at the end of training (unigen_jax.evaluate); "" disables it.
  config.eval = ml_collections.ConfigDict(dict(
      dataset=dataset,
      split="validation" if dataset == "mnist_sample" else "test",
      data_dir="", binarization="none" if binarization == "none" else "fixed",
      num_examples=placeholder(int),  # None: the whole split; else a class-balanced subset
      elbo_samples=1, importance_samples=0, batch_size=500,
      num_generated=10000,            # samples for inception score / accuracy / FID
      classifier_dir="",              # evaluation classifier (evaluate --train_classifier)
      metrics=""))                    # comma-separated, e.g. "elbo,iwae"; "" = none
  return config


# --- flattening -----------------------------------------------------------------------

def flatten(config: Any, prefix: str = "") -> dict:
  """``{'model.width': 64, ...}`` of a ConfigDict or nested dict."""
  out = {}
  items = config.items() if hasattr(config, "items") else []
  for key, value in items:
    name = f"{prefix}{key}"
    if isinstance(value, (ml_collections.ConfigDict, dict)):
      out.update(flatten(value, name + "."))
    else:
      out[name] = value
  return out


def jsonable(value):
  if isinstance(value, tuple):
    return list(value)
  return value


def to_json(config: ml_collections.ConfigDict) -> dict:
  import json  # pylint: disable=g-import-not-at-top
  return json.loads(json.dumps(config.to_dict(), default=jsonable))


# --- validation ------------------------------------------------------------------------

def resolve_config(config: ml_collections.ConfigDict) -> tuple[ml_collections.ConfigDict,
                                                               variants.ModelConfig]:
  """Checks every field and fills dataset-dependent ones; raises ConfigError before any compile."""
  config = ml_collections.ConfigDict(config.to_dict())  # an unlocked copy
  schema = flatten(get_config(config.get("variant", DEFAULT_VARIANT)))
  given = flatten(config)
  unknown = sorted(set(given) - set(schema))
  if unknown:
    raise ConfigError(f"unknown config field(s) {unknown}; the fields are listed in "
                      "unigen_jax/config.py (python -m unigen_jax.main --config=... --dry_run "
                      "prints them).")
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
      raise ConfigError(f"config.{field}={flatten(config).get(field)!r}: {message}")

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
  require(config.data.split in info.splits, "data.split",
          f"dataset {info.name!r} has splits {list(info.splits)}.")
  if config.data.fraction is not None:
    require(0 < config.data.fraction <= 1, "data.fraction", "must be in (0, 1].")
  if config.data.num_examples is not None:
    require(config.data.num_examples >= 1, "data.num_examples", "must be >= 1.")
  semi = "unlabelled_image" in variant.batch_keys
  if semi:
    require(config.data.num_labelled, "data.num_labelled",
            f"variant {variant.name!r} is semi-supervised: set the size of the labelled set.")
    require(config.data.num_labelled >= info.num_classes, "data.num_labelled",
            f"must be >= the {info.num_classes} classes (the labelled set is class-balanced).")
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
    model_cfg = variant.resolve(variants.ModelConfig(
        **{k: tuple(v) if isinstance(v, list) else v for k, v in model.items()}))
    variant.players_for(model_cfg)  # a bad update_order fails here, before any file is written
    train_step.Model(variant, model_cfg)  # and so does a microbatch_size it cannot chunk
    train_step.microbatch_count(model_cfg.microbatch_size, {"batch_size": config.batch_size},
                                sharded=config.parallelism == "shard_map")  # nor this batch
  except (TypeError, ValueError) as err:
    raise ConfigError(f"config.model: {err}") from None
  for field in ("latent_dim", "learning_rate", "b1"):  # record the variant's defaults
    config.model[field] = getattr(model_cfg, field)

  for section in ("eval", "validation"):
    names = [m for m in config[section].metrics.split(",") if m]
    for metric in names:
      require(metric in metric_lib.METRICS, f"{section}.metrics",
              f"unknown metric {metric!r}; available: {sorted(metric_lib.METRICS)}.")
      problem = metric_lib.unsupported(metric, variant)
      require(problem is None, f"{section}.metrics", problem or "")
  require(config.validation.every >= 0, "validation.every", "must be >= 0 (0: no validation).")
  require(config.validation.patience >= 0, "validation.patience", "must be >= 0 (0: never stop).")
  if config.validation.every:
    require(config.validation.split in info.splits and config.validation.split != "test",
            "validation.split", f"use a held-out split of {info.name!r} other than 'test' "
            f"({[s for s in info.splits if s != 'test']}).")
    require(config.validation.split != config.data.split, "validation.split",
            f"must differ from the training split data.split={config.data.split!r}.")
    metrics = metric_lib.validation_metrics(config.validation.metrics, variant)
    require(metrics, "validation.metrics",
            f"variant {variant.name!r} has no default validation metric: name one.")
    if config.validation.select:
      require(config.validation.select in metrics, "validation.select",
              f"must be one of the validation metrics {metrics}.")
  else:
    require(not config.validation.select and not config.validation.patience, "validation.select",
            "checkpoint selection and early stopping need validation.every > 0.")
  if config.validation.patience:
    require(config.validation.select, "validation.patience",
            "early stopping needs validation.select (the metric to watch).")
  return config, model_cfg


# --- resuming ----------------------------------------------------------------------------

def check_resume_compatible(stored: dict, config: ml_collections.ConfigDict) -> list[str]:
  """Names of fields that differ from the stored config and may not change on resume."""
  now = {k: jsonable(v) for k, v in flatten(config).items()}
  then = flatten(stored)
  # A field added to the config after the run was saved is compatible at its default value:
  # new fields default to the behaviour the code had before they existed.
  defaults = {k: jsonable(v) for k, v in flatten(get_config(config.variant)).items()}
  added_at_default = {k for k in set(now) - set(then) if k in defaults and now[k] == defaults[k]}
  return sorted(k for k in set(now) | set(then)
                if now.get(k) != then.get(k) and k not in RESUMABLE_FIELDS
                and k not in added_at_default and not k.startswith(RESUMABLE_PREFIXES))
