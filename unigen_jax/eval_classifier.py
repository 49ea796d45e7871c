"""The evaluation classifier: trained per dataset, stored, and cached by the content it learned from.

The paper scores generated samples with a classifier trained on the real data (its MNIST
classifier: 0.990 test accuracy, real-test-set inception score 9.09) rather than with
ImageNet's Inception network; so does this library. The classifier is the DCGAN
discriminator network with a class head (:class:`unigen_jax.models.Classifier`), trained
with light augmentation (random shifts of up to 2 pixels). Its test accuracy and the
real test set's inception score (the ceiling of any model's score) are stored with it.

:func:`cached_classifier` trains one the first time and reuses it afterwards: the cache
key is a SHA-256 of the training images and labels, every hyperparameter, and
``CLASSIFIER_REVISION``, so two experiments that ask for the same classifier share it and
a change of data or recipe trains a new one.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import pathlib
from typing import Callable, Optional

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from unigen_jax import distributions
from unigen_jax import input_pipeline
from unigen_jax import metrics
from unigen_jax import models
from unigen_jax.model_config import ModelConfig

CLASSIFIER_REVISION = 2  # bump when the recipe below changes what is trained


class ClassifierError(ValueError):
  """No usable evaluation classifier; the message names the fix."""


@dataclasses.dataclass
class EvalClassifier:
  """A trained evaluation classifier and what it scored on its dataset's test split."""
  dataset: str
  width: int
  image_shape: tuple
  num_classes: int
  variables: dict
  test_accuracy: float
  real_inception_score: tuple
  trained_on: str

  @functools.cached_property
  def module(self):
    return _network(self.image_shape, self.width, self.num_classes)

  @functools.cached_property
  def _apply(self):
    def apply(variables, x):
      return self.module.apply(variables, x, train=False, capture_intermediates=False)
    return jax.jit(apply)

  @functools.cached_property
  def _features(self):
    def features(variables, x):
      _, inter = self.module.apply(variables, x, train=False,
                                   capture_intermediates=lambda mdl, _: isinstance(
                                       mdl, models.DCGANDiscriminatorBackbone))
      return jax.tree.leaves(inter)[0]
    return jax.jit(features)

  def logits(self, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
    return np.concatenate([np.asarray(self._apply(self.variables, images[i:i + batch_size]))
                           for i in range(0, len(images), batch_size)])

  def features(self, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
    return np.concatenate([np.asarray(self._features(self.variables, images[i:i + batch_size]))
                           for i in range(0, len(images), batch_size)])

  def summary(self) -> dict:
    return {"test_accuracy": self.test_accuracy,
            "real_inception_score": list(self.real_inception_score),
            "trained_on": self.trained_on}

  def save(self, directory: pathlib.Path) -> None:
    """Writes ``classifier.msgpack`` and ``classifier.json`` atomically (tmp + rename)."""
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    meta = {k: v for k, v in dataclasses.asdict(self).items() if k != "variables"}
    payload = flax.serialization.msgpack_serialize(jax.device_get(self.variables))
    meta["sha256"] = hashlib.sha256(payload).hexdigest()
    for name, data in (("classifier.msgpack", payload),
                       ("classifier.json", json.dumps(meta, indent=2).encode())):
      tmp = directory / (name + ".tmp")
      tmp.write_bytes(data)
      tmp.replace(directory / name)

  @classmethod
  def load(cls, directory: pathlib.Path) -> "EvalClassifier":
    directory = pathlib.Path(directory)
    fix = (f"train one with python -m unigen_jax.evaluate --train_classifier --dataset=... "
           f"--classifier_dir={directory}")
    try:
      meta = json.loads((directory / "classifier.json").read_text())
      payload = (directory / "classifier.msgpack").read_bytes()
      expected = meta.pop("sha256", None)
      if expected is not None and hashlib.sha256(payload).hexdigest() != expected:
        raise ValueError("classifier.msgpack does not match its stored SHA-256 (corrupt)")
      variables = flax.serialization.msgpack_restore(payload)
    except (OSError, ValueError) as err:
      raise ClassifierError(f"no usable evaluation classifier in {directory} "
                            f"({type(err).__name__}: {err}); {fix}") from None
    meta["image_shape"] = tuple(meta["image_shape"])
    meta["real_inception_score"] = tuple(meta["real_inception_score"])
    return cls(variables=variables, **meta)


def _network(image_shape, width: int, num_classes: int):
  """The DCGAN discriminator network with a class head (float32)."""
  return models.Classifier(cfg=ModelConfig(image_shape=tuple(image_shape), width=width,
                                           num_classes=num_classes))


def train_classifier(dataset: str, *, split: str = "train", data_dir: Optional[str] = None,
                     test_dataset: Optional[str] = None, test_split: str = "test",
                     test_data_dir: Optional[str] = None, width: int = 32, steps: int = 2000,
                     batch_size: int = 128, learning_rate: float = 1e-3, seed: int = 0,
                     verify: bool = True,
                     log: Callable[[str], None] = lambda s: None) -> EvalClassifier:
  """Trains the evaluation classifier on ``dataset/split``; scores it on ``test_dataset/test_split``."""
  train_data = input_pipeline.load_split(dataset, split, data_dir=data_dir, verify=verify)
  return _train(train_data, dataset, split, test_dataset=test_dataset or dataset,
                test_split=test_split, test_data_dir=test_data_dir or data_dir, width=width,
                steps=steps, batch_size=batch_size, learning_rate=learning_rate, seed=seed,
                verify=verify, log=log)


def _train(train_data, dataset, split, *, test_dataset, test_split, test_data_dir, width, steps,
           batch_size, learning_rate, seed, verify, log) -> EvalClassifier:
  info = input_pipeline.dataset_info(dataset)
  test_images, test_labels = input_pipeline.load_eval_split(
      test_dataset, test_split, data_dir=test_data_dir, verify=verify)
  module = _network(info.image_shape, width, info.num_classes)
  variables = module.init(jax.random.key(seed), jnp.zeros((2,) + info.image_shape), train=False)
  # Cosine decay to zero: the last steps average out the noise of a constant step size.
  optimizer = optax.adam(optax.cosine_decay_schedule(learning_rate, steps))
  opt_state = optimizer.init(variables["params"])

  @functools.partial(jax.jit, donate_argnums=(0, 1))
  def step(variables, opt_state, images, labels, key):
    shifts = jax.random.randint(key, (2,), -2, 3)
    images = jnp.roll(images, shifts, axis=(1, 2))

    def loss_fn(params):
      logits, updates = module.apply({"params": params, "batch_stats": variables["batch_stats"]},
                                     images, train=True, mutable=["batch_stats"])
      return -jnp.mean(distributions.categorical_log_prob(labels, logits)), updates
    (loss, updates), grads = jax.value_and_grad(loss_fn, has_aux=True)(variables["params"])
    param_updates, opt_state = optimizer.update(grads, opt_state, variables["params"])
    params = optax.apply_updates(variables["params"], param_updates)
    return {"params": params, "batch_stats": updates["batch_stats"]}, opt_state, loss

  iterator = input_pipeline.BatchIterator({"image": train_data.images, "label": train_data.labels},
                                          batch_size, seed, process_index=0, process_count=1)
  for i in range(steps):
    batch = next(iterator)
    variables, opt_state, loss = step(variables, opt_state, batch["image"], batch["label"],
                                      jax.random.fold_in(jax.random.key(seed), i))
    if (i + 1) % 500 == 0:
      log(f"classifier step {i + 1}/{steps}: loss {float(loss):.4f}")
  classifier = EvalClassifier(dataset=dataset, width=width, image_shape=info.image_shape,
                              num_classes=info.num_classes, variables=variables,
                              test_accuracy=0.0, real_inception_score=(0.0, 0.0),
                              trained_on=f"{dataset}/{split}: {len(train_data)} examples, "
                                         f"{steps} steps of batch {batch_size}")
  test_logits = classifier.logits(test_images)
  classifier.test_accuracy = metrics.conditional_accuracy(test_logits, test_labels)
  classifier.real_inception_score = metrics.inception_score(test_logits)
  return classifier


def cached_classifier(cache_root: pathlib.Path, dataset: str, *, split: str = "train",
                      data_dir: Optional[str] = None, test_split: str = "test", width: int = 32,
                      steps: int = 2000, batch_size: int = 128, learning_rate: float = 1e-3,
                      seed: int = 0, verify: bool = True,
                      log: Callable[[str], None] = lambda s: None) -> pathlib.Path:
  """The directory of the classifier for these data and settings, training it on first use.

  The directory is ``cache_root / f"{dataset}-{key[:16]}"`` where ``key`` is the SHA-256 of
  the training split's images and labels, the settings and ``CLASSIFIER_REVISION``.
  """
  train_data = input_pipeline.load_split(dataset, split, data_dir=data_dir, verify=verify)
  digest = hashlib.sha256()
  digest.update(np.ascontiguousarray(train_data.images).tobytes())
  digest.update(np.ascontiguousarray(train_data.labels).tobytes())
  digest.update(json.dumps(dict(dataset=dataset, split=split, test_split=test_split, width=width,
                                steps=steps, batch_size=batch_size, learning_rate=learning_rate,
                                seed=seed, revision=CLASSIFIER_REVISION),
                           sort_keys=True).encode())
  directory = pathlib.Path(cache_root) / f"{dataset}-{digest.hexdigest()[:16]}"
  if (directory / "classifier.json").exists():
    EvalClassifier.load(directory)  # a corrupt cache entry is an error, not a silent retrain
    return directory
  log(f"training the evaluation classifier -> {directory}")
  classifier = _train(train_data, dataset, split, test_dataset=dataset, test_split=test_split,
                      test_data_dir=data_dir, width=width, steps=steps, batch_size=batch_size,
                      learning_rate=learning_rate, seed=seed, verify=verify, log=log)
  classifier.save(directory)
  return directory
