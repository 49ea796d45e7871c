r"""Evaluation: the paper's four metrics as jitted, batched functions, and a CLI.

* **Test-set lower bound** (Tables 2-3): the ELBO (averaged over ``S`` single-sample
  estimates, analytic KL) and the importance-sampled log-likelihood
  :math:`\log \frac1K \sum_k p(x, z_k)/q(z_k|x)` with ``K`` up to 5000, streamed in
  chunks of ``K`` with a running log-sum-exp so memory stays bounded. SVAE models
  report the M2 bound of unlabelled data (the label marginalised by q(y|x)); CVAE
  models condition on the true label (a bound on log p(x|y)).
* **Inception score** (Salimans et al. 2016) with the usual 10 splits, from an
  evaluation classifier the library trains per dataset (as the paper does, rather
  than ImageNet Inception); its test accuracy and the real test set's score (the
  ceiling) are stored with it. Nothing is fetched from a hub.
* **Conditional-generation accuracy** (Hu et al. 2017): the evaluation classifier
  agrees with the conditioning label; and a classifier-feature Fréchet distance.
* **SVAE accuracy**: the model's own q(y|x) on the test set.

``python -m unigen_jax.evaluate --workdir=W`` evaluates the newest checkpoint of a
training workdir and writes ``W/eval.json`` and ``W/eval_samples.png``;
``python -m unigen_jax.evaluate --train_classifier --dataset=mnist_sample
--classifier_dir=C`` trains and saves an evaluation classifier.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import pathlib
import sys
import time
from typing import Callable, Optional

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from unigen_jax import checkpointing
from unigen_jax import distributions
from unigen_jax import input_pipeline
from unigen_jax import losses
from unigen_jax import models

METRICS = ("elbo", "iwae", "svae_accuracy", "inception_score", "conditional_accuracy", "fid")


class EvaluationError(ValueError):
  """An evaluation cannot run as asked; the message names the fix."""


# --- sample-quality metrics --------------------------------------------------------

def inception_score(logits: np.ndarray, num_splits: int = 10) -> tuple[float, float]:
  r"""Inception score :math:`\exp \mathbb{E}_x \mathrm{KL}(p(y|x)\|p(y))`, mean and std over splits.

  Args:
    logits: classifier logits of the samples, ``[N, C]``.
    num_splits: the samples are split into this many equal parts (10 as usual).
  """
  logits = np.asarray(logits, np.float64)
  if logits.ndim != 2 or len(logits) < num_splits:
    raise EvaluationError(f"inception score needs logits [N >= {num_splits}, C], got {logits.shape}.")
  log_p = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)
  scores = []
  for part in np.array_split(log_p, num_splits):
    log_marginal = np.logaddexp.reduce(part, axis=0) - math.log(len(part))
    kl = np.sum(np.exp(part) * (part - log_marginal), axis=1)
    scores.append(math.exp(float(np.mean(kl))))
  return float(np.mean(scores)), float(np.std(scores))


def conditional_accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
  """Fraction of conditional samples the evaluation classifier assigns to their conditioning label."""
  return float(np.mean(np.argmax(np.asarray(logits), axis=1) == np.asarray(labels)))


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
  r""":math:`\|\mu_a-\mu_b\|^2 + \mathrm{tr}(\Sigma_a + \Sigma_b - 2(\Sigma_a^{1/2}\Sigma_b\Sigma_a^{1/2})^{1/2})`."""
  a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
  mu_a, mu_b = a.mean(0), b.mean(0)
  cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
  w, v = np.linalg.eigh(cov_a)
  sqrt_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
  middle = np.linalg.eigvalsh(sqrt_a @ cov_b @ sqrt_a)
  trace_sqrt = np.sum(np.sqrt(np.clip(middle, 0, None)))
  return float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_sqrt)


# --- likelihood bounds ----------------------------------------------------------------

Encode = Callable[[jax.Array], tuple[jax.Array, jax.Array]]
LogLikelihood = Callable[[jax.Array, jax.Array], jax.Array]  # (x [B,...], z [K,B,D]) -> [K,B]


def elbo_estimate(x: jax.Array, key: jax.Array, encode: Encode, log_likelihood: LogLikelihood,
                  num_samples: int = 1) -> jax.Array:
  """Per-example ELBO ``[B]``: ``num_samples`` reparameterised samples, analytic KL (Eq. 11)."""
  mean, log_var = encode(x)
  z = distributions.sample_diag_gaussian(key, mean, log_var, num_samples=num_samples)
  ll = jnp.mean(log_likelihood(x, z), axis=0)
  return -losses.negative_elbo(ll, mean, log_var, reduction="none")


def importance_sampled_log_likelihood(x: jax.Array, key: jax.Array, encode: Encode,
                                      log_likelihood: LogLikelihood, num_samples: int,
                                      chunk_size: int = 100) -> jax.Array:
  r"""Per-example :math:`\log \frac1K\sum_k w_k` (IWAE estimate) with ``K = num_samples``.

  Samples are drawn in chunks of ``chunk_size`` and combined with a running
  log-sum-exp (``lax.scan``), so ``K = 5000`` needs the memory of one chunk.
  """
  if num_samples % chunk_size:
    chunk_size = math.gcd(num_samples, chunk_size)
  mean, log_var = encode(x)
  num_chunks = num_samples // chunk_size

  def body(carry, chunk_key):
    running_max, running_sum = carry
    z = distributions.sample_diag_gaussian(chunk_key, mean, log_var, num_samples=chunk_size)
    log_w = losses.iwae_log_weights(log_likelihood(x, z), z, mean, log_var)  # [chunk, B]
    new_max = jnp.maximum(running_max, jnp.max(log_w, axis=0))
    running_sum = (running_sum * jnp.exp(running_max - new_max)
                   + jnp.sum(jnp.exp(log_w - new_max), axis=0))
    return (new_max, running_sum), None

  init = (jnp.full(mean.shape[:1], -jnp.inf), jnp.zeros(mean.shape[:1]))
  (final_max, total), _ = jax.lax.scan(body, init, jax.random.split(key, num_chunks))
  return final_max + jnp.log(total) - math.log(num_samples)


# --- evaluation classifiers -------------------------------------------------------------

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
    return models.Classifier(image_shape=self.image_shape, width=self.width,
                             num_outputs=self.num_classes)

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

  def save(self, directory: pathlib.Path) -> None:
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    meta = {k: v for k, v in dataclasses.asdict(self).items() if k != "variables"}
    tmp = directory / "classifier.msgpack.tmp"
    tmp.write_bytes(flax.serialization.msgpack_serialize(jax.device_get(self.variables)))
    tmp.replace(directory / "classifier.msgpack")
    (directory / "classifier.json").write_text(json.dumps(meta, indent=2))

  @classmethod
  def load(cls, directory: pathlib.Path) -> "EvalClassifier":
    directory = pathlib.Path(directory)
    try:
      meta = json.loads((directory / "classifier.json").read_text())
      variables = flax.serialization.msgpack_restore((directory / "classifier.msgpack").read_bytes())
    except (OSError, ValueError) as err:
      raise EvaluationError(
          f"no usable evaluation classifier in {directory} ({type(err).__name__}: {err}); train "
          f"one with python -m unigen_jax.evaluate --train_classifier --dataset=... "
          f"--classifier_dir={directory}") from None
    meta["image_shape"] = tuple(meta["image_shape"])
    meta["real_inception_score"] = tuple(meta["real_inception_score"])
    return cls(variables=variables, **meta)


def train_classifier(dataset: str, *, split: str = "train", data_dir: Optional[str] = None,
                     test_dataset: Optional[str] = None, test_split: str = "test",
                     test_data_dir: Optional[str] = None, width: int = 32, steps: int = 2000,
                     batch_size: int = 128, learning_rate: float = 1e-3, seed: int = 0,
                     log: Callable[[str], None] = lambda s: None) -> EvalClassifier:
  """Trains the evaluation classifier (the DCGAN discriminator network with a class head).

  Light augmentation (random shifts of up to 2 pixels) regularises it on small
  training sets such as ``mnist_sample``.
  """
  train_data = input_pipeline.load_split(dataset, split, data_dir=data_dir)
  info = input_pipeline.dataset_info(dataset)
  test_images, test_labels = input_pipeline.load_eval_split(
      test_dataset or dataset, test_split, data_dir=test_data_dir or data_dir)
  module = models.Classifier(image_shape=info.image_shape, width=width,
                             num_outputs=info.num_classes)
  variables = module.init(jax.random.key(seed), jnp.zeros((2,) + info.image_shape), train=False)
  optimizer = optax.adam(learning_rate)
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
                              trained_on=f"{dataset}/{split}: {len(train_data)} examples")
  test_logits = classifier.logits(test_images)
  classifier.test_accuracy = conditional_accuracy(test_logits, test_labels)
  classifier.real_inception_score = inception_score(test_logits)
  return classifier


# --- evaluating a trained model ----------------------------------------------------------

def _bernoulli_ll(decode):
  def log_likelihood(x, z):
    k, b = z.shape[:2]
    logits = decode(z.reshape((k * b,) + z.shape[2:])).reshape((k, b) + x.shape[1:])
    return distributions.bernoulli_log_prob(jnp.broadcast_to(x, logits.shape), logits,
                                            event_ndims=x.ndim - 1)
  return log_likelihood


def _likelihood_fns(model, state, labels=None):
  """(encode, log_likelihood) of a Gaussian-encoder model, in inference mode."""
  variant = model.variant
  if "encoder" not in variant.modules or "decoder" not in variant.modules or variant.name == "avb":
    raise EvaluationError(f"variant {variant.name!r} has no Gaussian encoder and Bernoulli "
                          "decoder: its likelihood bound is not defined here.")
  ctx = model.context(state, jax.random.key(0))
  return _conditioned_fns(ctx, labels if variant.conditional else None)


def _conditioned_fns(ctx, labels):
  """(encode, log_likelihood); with ``labels [B]``, both networks see them (repeated for K)."""
  if labels is None:
    return (lambda x: ctx.apply("encoder", x)), _bernoulli_ll(lambda z: ctx.apply("decoder", z))
  encode = lambda x: ctx.apply("encoder", x, labels)  # noqa: E731
  decode = lambda z: ctx.apply("decoder", z, jnp.tile(labels, z.shape[0] // labels.shape[0]))  # noqa: E731
  return encode, _bernoulli_ll(decode)


def _svae_bound(model, state, x, key, num_samples):
  """M2 bound of unlabelled x: sum_y q(y|x) L(x, y) + H(q(y|x)), per example."""
  ctx = model.context(state, key)
  num_classes = model.cfg.num_classes
  b = x.shape[0]
  x_rep = jnp.repeat(x, num_classes, axis=0)
  y_rep = jnp.tile(jnp.arange(num_classes), b)
  elbo = elbo_estimate(x_rep, key, *_conditioned_fns(ctx, y_rep), num_samples)
  logits = ctx.apply("classifier", x)
  # U(x) = sum_y q(y|x) (ELBO(x, y) + log p(y)) + H(q(y|x)); the loss adds the uniform log p(y).
  return -losses.semi_supervised_unlabelled_loss(-elbo.reshape(b, num_classes), logits,
                                                 reduction="none")


def likelihood_metrics(model, state, images, labels, *, key, elbo_samples=1,
                       importance_samples=0, batch_size=500, chunk_size=100) -> dict:
  """Test-set ELBO (and IWAE estimate) averaged over ``images``; batched, jitted."""
  is_svae = "classifier" in model.variant.modules and "unlabelled_image" in model.variant.batch_keys

  @jax.jit
  def batch_bounds(x, y, batch_key):
    if is_svae:
      return {"elbo": _svae_bound(model, state, x, batch_key, elbo_samples)}
    encode, ll = _likelihood_fns(model, state, y if model.variant.conditional else None)
    out = {"elbo": elbo_estimate(x, batch_key, encode, ll, elbo_samples)}
    if importance_samples:
      out["iwae"] = importance_sampled_log_likelihood(
          x, jax.random.fold_in(batch_key, 1), encode, ll, importance_samples, chunk_size)
    return out

  totals, count = {}, 0
  for start in range(0, len(images), batch_size):
    x = jnp.asarray(images[start:start + batch_size])
    y = jnp.asarray(labels[start:start + batch_size])
    bounds = batch_bounds(x, y, jax.random.fold_in(key, start))
    for name, values in jax.device_get(bounds).items():
      totals[name] = totals.get(name, 0.0) + float(np.sum(values))
    count += len(x)
  return {name: total / count for name, total in totals.items()}


def evaluate_model(model, state, config, *, workdir: Optional[pathlib.Path] = None,
                   write: bool = True, classifier: Optional[EvalClassifier] = None,
                   log: Callable[[str], None] = lambda s: print(s, file=sys.stderr)) -> dict:
  """Runs ``config.eval.metrics`` on ``state``; writes ``eval.json`` into ``workdir``."""
  ev = config.eval
  metrics = [m for m in ev.metrics.split(",") if m]
  images, labels = input_pipeline.load_eval_split(
      ev.dataset, ev.split, data_dir=ev.data_dir or None, binarization=ev.binarization,
      seed=config.seed)
  if ev.num_examples:
    images, labels = images[:ev.num_examples], labels[:ev.num_examples]
  result = {"dataset": f"{ev.dataset}/{ev.split}", "num_examples": int(len(images)),
            "binarization": ev.binarization, "step": int(state.step)}
  key = jax.random.key(config.seed + 1)
  start = time.time()
  if "elbo" in metrics or "iwae" in metrics:
    bounds = likelihood_metrics(model, state, images, labels, key=key,
                                elbo_samples=ev.elbo_samples,
                                importance_samples=ev.importance_samples if "iwae" in metrics else 0,
                                batch_size=ev.batch_size)
    result["test_elbo"] = bounds["elbo"]
    result["elbo_samples"] = ev.elbo_samples
    if "iwae" in bounds:
      result["test_log_likelihood_iwae"] = bounds["iwae"]
      result["importance_samples"] = ev.importance_samples
  if "svae_accuracy" in metrics:
    ctx = model.context(state, key)
    logits = jax.jit(lambda x: ctx.apply("classifier", x))
    predictions = np.concatenate([np.argmax(np.asarray(logits(images[i:i + ev.batch_size])), 1)
                                  for i in range(0, len(images), ev.batch_size)])
    result["svae_accuracy"] = float(np.mean(predictions == labels))
  sample_metrics = {"inception_score", "conditional_accuracy", "fid"} & set(metrics)
  if sample_metrics:
    if classifier is None:
      if not ev.classifier_dir:
        raise EvaluationError("inception score, conditional accuracy and FID need an evaluation "
                              "classifier: set config.eval.classifier_dir (train one with "
                              "python -m unigen_jax.evaluate --train_classifier).")
      classifier = EvalClassifier.load(pathlib.Path(ev.classifier_dir))
    n = ev.num_generated
    gen_labels = None
    if model.variant.conditional:
      gen_labels = np.arange(n) % model.cfg.num_classes
    samples = np.concatenate([
        np.asarray(model.sample(state, jax.random.fold_in(key, 10 + i), len(chunk), chunk)
                   if gen_labels is not None else
                   model.sample(state, jax.random.fold_in(key, 10 + i), len(chunk)))
        for i, chunk in enumerate(np.array_split(
            gen_labels if gen_labels is not None else np.zeros(n), max(1, n // 1000)))])
    gen_logits = classifier.logits(samples)
    result["classifier"] = {"test_accuracy": classifier.test_accuracy,
                            "real_inception_score": list(classifier.real_inception_score),
                            "trained_on": classifier.trained_on}
    if "inception_score" in metrics:
      result["inception_score"] = list(inception_score(gen_logits))
    if "conditional_accuracy" in metrics:
      if gen_labels is None:
        raise EvaluationError(f"conditional accuracy needs a conditional variant, not "
                              f"{model.variant.name!r}.")
      result["conditional_accuracy"] = conditional_accuracy(gen_logits, gen_labels)
    if "fid" in metrics:
      result["classifier_fid"] = frechet_distance(classifier.features(samples),
                                                  classifier.features(images))
    result["num_generated"] = n
  result["eval_time_s"] = time.time() - start
  if write and workdir is not None:
    workdir = pathlib.Path(workdir)
    (workdir / "eval.json").write_text(json.dumps(result, indent=2))
  log(f"eval: {json.dumps(result)}")
  return result


def main(argv=None) -> int:
  import argparse  # pylint: disable=g-import-not-at-top
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--workdir", help="a training workdir (its config.json and checkpoints)")
  parser.add_argument("--metrics", default=None, help="comma-separated; default: config.eval.metrics "
                      "or the variant family's (elbo for VAEs, inception_score for GANs)")
  parser.add_argument("--importance_samples", type=int, default=None)
  parser.add_argument("--eval_data_dir", default=None, help="overrides config.eval.data_dir")
  parser.add_argument("--classifier_dir", default=None)
  parser.add_argument("--train_classifier", action="store_true")
  parser.add_argument("--dataset", default="mnist_sample")
  parser.add_argument("--split", default="train+validation")
  parser.add_argument("--data_dir", default=None)
  parser.add_argument("--test_dataset", default=None)
  parser.add_argument("--test_split", default="test")
  parser.add_argument("--test_data_dir", default=None)
  parser.add_argument("--steps", type=int, default=2000)
  args = parser.parse_args(argv)
  log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
  try:
    if args.train_classifier:
      if not args.classifier_dir:
        raise EvaluationError("--train_classifier needs --classifier_dir (where to save it).")
      clf = train_classifier(args.dataset, split=args.split, data_dir=args.data_dir,
                             test_dataset=args.test_dataset, test_split=args.test_split,
                             test_data_dir=args.test_data_dir, steps=args.steps, log=log)
      clf.save(pathlib.Path(args.classifier_dir))
      print(json.dumps({"test_accuracy": clf.test_accuracy,
                        "real_inception_score": clf.real_inception_score,
                        "trained_on": clf.trained_on}))
      return 0
    if not args.workdir:
      raise EvaluationError("pass --workdir (a training run) or --train_classifier.")
    return _evaluate_workdir(args, log)
  except (EvaluationError, input_pipeline.DataError, ValueError,
          checkpointing.CheckpointError) as err:
    # ValueError covers train.ConfigError.
    print(f"error: {err}", file=sys.stderr)
    return 2


def _evaluate_workdir(args, log) -> int:
  import ml_collections  # pylint: disable=g-import-not-at-top
  from unigen_jax import reporting, train, train_step  # pylint: disable=g-import-not-at-top
  workdir = pathlib.Path(args.workdir)
  if not (workdir / "config.json").exists():
    raise EvaluationError(f"{workdir} has no config.json: is it a training workdir?")
  config = ml_collections.ConfigDict(json.loads((workdir / "config.json").read_text()))
  # Evaluation settings do not change the trained model: fill any that an older run lacks.
  from unigen_jax.configs import default  # pylint: disable=g-import-not-at-top
  for field, value in default.get_config(config.variant).eval.items():
    if field not in config.eval:
      config.eval[field] = value
  config.model.image_shape = tuple(config.model.image_shape)
  config.model.hidden = tuple(config.model.hidden)
  if args.metrics is not None:
    config.eval.metrics = args.metrics
  elif not config.eval.metrics:
    family = train.variants.get(config.variant).family
    config.eval.metrics = "elbo" if family == "variational" else "inception_score"
  if args.importance_samples is not None:
    config.eval.importance_samples = args.importance_samples
  if args.eval_data_dir is not None:
    config.eval.data_dir = args.eval_data_dir
  if args.classifier_dir is not None:
    config.eval.classifier_dir = args.classifier_dir
  config, model_cfg = train.resolve_config(config)
  model = train_step.Model(train.variants.get(config.variant), model_cfg)
  _, state = checkpointing.load_latest_state(model, workdir / "checkpoints")
  evaluate_model(model, state, config, workdir=workdir, log=log)
  if model.variant.sampler is not None:
    labels = np.repeat(np.arange(model.cfg.num_classes), 10) if model.variant.conditional else None
    images = model.sample(state, jax.random.key(123), 100, labels)
    reporting.save_image_grid(workdir / "eval_samples.png", np.asarray(images), 10)
  print((workdir / "eval.json").read_text())
  return 0


if __name__ == "__main__":
  sys.exit(main())
