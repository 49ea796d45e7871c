"""The training program: CLI end to end, resume, interruption, corruption, config and NaN guards."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from unigen_jax import checkpointing
from unigen_jax import train
from unigen_jax import train_step
from unigen_jax import config as config_lib
from unigen_jax.configs import default

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture
def idx_data(tmp_path_factory):
  from tests.test_input_pipeline import make_idx_folder
  folder = tmp_path_factory.mktemp("idx")
  make_idx_folder(folder, n_train=200)
  return str(folder)


def tiny_config(variant, data_dir, **overrides):
  config = default.get_config(f"{variant},mnist")
  config.data.data_dir = data_dir
  config.data.verify_checksums = False  # random IDX files standing in for MNIST
  # The MLP networks: these tests exercise the training program (checkpoints, resumption,
  # signals, workdirs), not the networks, and MLPs compile in about half the time of the
  # DCGAN ones. Tests of the networks themselves build the DCGAN ones (test_train_step).
  config.model.architecture = "mlp"
  config.model.width = 4
  config.model.hidden = (16,)
  config.batch_size = 8
  config.steps = 8
  config.log_every = 2
  config.checkpoint_every = 4
  config.sample_every = 4
  config.num_samples = 16
  config.progress = False
  for key, value in overrides.items():
    target = config
    *path, leaf = key.split(".")
    for part in path:
      target = target[part]
    target[leaf] = value
  return config


def restored_params(workdir, variant, config):
  _, model_cfg = train.resolve_config(config)
  model = train_step.Model(train_step.variants_lib.get(variant), model_cfg)
  ckpt = checkpointing.Checkpointer(pathlib.Path(workdir) / "checkpoints")
  step, state, _ = ckpt.restore(model.init(jax.random.key(0)))
  ckpt.close()
  return step, jax.tree.map(np.asarray, state.params)


def cli(args, **kwargs):
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(REPO))
  return subprocess.run([sys.executable, "-m", "unigen_jax.main", *args], cwd=REPO, env=env,
                        capture_output=True, text=True, **kwargs)


def flags_for(variant, data_dir, workdir, steps=8, extra=()):
  return [f"--config=unigen_jax/configs/default.py:{variant},mnist", f"--workdir={workdir}",
          f"--config.data.data_dir={data_dir}", "--config.data.verify_checksums=False",
          "--config.model.architecture=mlp", "--config.model.width=4",
          "--config.model.hidden=(16,)", "--config.batch_size=8",
          f"--config.steps={steps}", "--config.log_every=2", "--config.checkpoint_every=4",
          "--config.sample_every=4", "--config.num_samples=16", "--config.progress=False", *extra]


@pytest.mark.parametrize("variant", ["gan", "vae"])
def test_cli_end_to_end(variant, idx_data, tmp_path):
  out = cli(flags_for(variant, idx_data, tmp_path / "run"), timeout=600)
  assert out.returncode == 0, out.stderr[-2000:]
  run = tmp_path / "run"
  summary = json.loads((run / "summary.json").read_text())
  assert summary["final_step"] == 8 and summary["variant"] == variant
  assert summary["versions"]["jax"] == jax.__version__ and summary["steps_per_sec"] > 0
  assert all(np.isfinite(v) for v in summary["final_metrics"].values())
  rows = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
  assert [r["step"] for r in rows] == [2, 4, 6, 8]
  assert (run / "curves.png").stat().st_size > 1000
  assert sorted(p.name for p in (run / "samples").iterdir()) == ["step_0000004.png",
                                                                "step_0000008.png"]
  assert list((run / "tensorboard").iterdir())  # event files, written without TensorFlow
  assert sorted(int(p.name) for p in (run / "checkpoints").iterdir() if p.name.isdigit()) == [4, 8]


def test_cli_on_8_simulated_cpu_devices_does_not_deadlock(idx_data, tmp_path):
  # XLA:CPU's in-process collectives abort ("Termination timeout ... rendezvous") when
  # several launches of a collective program are queued; the loop must wait for each step.
  steps = 60
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(REPO),
             XLA_FLAGS="--xla_force_host_platform_device_count=8")
  args = flags_for("gan", idx_data, tmp_path / "run", steps=steps,
                   extra=("--config.batch_size=16", f"--config.log_every={steps}",
                          f"--config.checkpoint_every={steps}", "--config.sample_every=0",
                          "--config.eval.metrics="))
  out = subprocess.run([sys.executable, "-m", "unigen_jax.main", *args], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-2000:]
  summary = json.loads((tmp_path / "run" / "summary.json").read_text())
  assert summary["final_step"] == steps


def test_resume_is_bitwise_identical(idx_data, tmp_path):
  full = tiny_config("aavae", idx_data, steps=8)
  train.train_and_evaluate(full, str(tmp_path / "full"))
  train.train_and_evaluate(tiny_config("aavae", idx_data, steps=4), str(tmp_path / "split"))
  summary = train.train_and_evaluate(full, str(tmp_path / "split"))  # extends to 8 steps
  assert summary["resumed_from"] == 4
  step_a, a = restored_params(tmp_path / "full", "aavae", full)
  step_b, b = restored_params(tmp_path / "split", "aavae", full)
  assert step_a == step_b == 8
  jax.tree.map(np.testing.assert_array_equal, a, b)


def test_a_resumed_run_reports_the_wall_time_of_all_its_invocations(idx_data, tmp_path):
  first = train.train_and_evaluate(tiny_config("gan", idx_data, steps=4), str(tmp_path))
  assert first["wall_time_s"] == pytest.approx(first["wall_time_this_invocation_s"], abs=0.1)
  saved = checkpointing.Checkpointer(tmp_path / "checkpoints", read_only=True)
  stored = saved.restore_meta(4)["wall_time_s"]  # the run's time when step 4 was saved
  saved.close()
  assert 0 < stored <= first["wall_time_s"]
  second = train.train_and_evaluate(tiny_config("gan", idx_data, steps=8), str(tmp_path))
  assert second["resumed_from"] == 4
  assert second["wall_time_s"] == pytest.approx(
      stored + second["wall_time_this_invocation_s"], abs=0.1)


def test_a_run_resumed_from_a_checkpoint_without_its_time_says_the_time_is_unknown(
    idx_data, tmp_path, monkeypatch):
  meta = train._TrainingLoop._meta  # pylint: disable=protected-access
  monkeypatch.setattr(train._TrainingLoop, "_meta",  # pylint: disable=protected-access
                      lambda self, it: {k: v for k, v in meta(self, it).items()
                                        if k != "wall_time_s"})  # as checkpoints before it
  train.train_and_evaluate(tiny_config("gan", idx_data, steps=4), str(tmp_path))
  monkeypatch.undo()
  second = train.train_and_evaluate(tiny_config("gan", idx_data, steps=8), str(tmp_path))
  assert second["resumed_from"] == 4
  assert second["wall_time_s"] is None and second["wall_time_this_invocation_s"] > 0


def test_sigterm_saves_and_the_rerun_resumes_bitwise(idx_data, tmp_path):
  steps = 400
  config = tiny_config("vae", idx_data, steps=steps, checkpoint_every=1000, log_every=1)
  train.train_and_evaluate(config, str(tmp_path / "reference"))
  killed = tmp_path / "killed"
  args = flags_for("vae", idx_data, killed, steps=steps,
                   extra=["--config.checkpoint_every=1000", "--config.log_every=1"])
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(REPO))
  proc = subprocess.Popen([sys.executable, "-m", "unigen_jax.main", *args], cwd=REPO, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  metrics = killed / "metrics.jsonl"
  deadline = time.time() + 300
  while time.time() < deadline and (not metrics.exists() or len(metrics.read_text().splitlines()) < 20):
    time.sleep(0.2)
  proc.send_signal(signal.SIGTERM)
  _, err = proc.communicate(timeout=300)
  assert proc.returncode == 130, err[-2000:]
  assert "rerun the same command to resume" in err
  saved = [int(p.name) for p in (killed / "checkpoints").iterdir() if p.name.isdigit()]
  assert len(saved) == 1 and 20 <= saved[0] < steps
  out = cli(args, timeout=600)
  assert out.returncode == 0, out.stderr[-2000:]
  assert "resumed from the checkpoint at step" in out.stderr
  _, reference = restored_params(tmp_path / "reference", "vae", config)
  _, resumed = restored_params(killed, "vae", config)
  jax.tree.map(np.testing.assert_array_equal, reference, resumed)


def test_corrupt_checkpoint_falls_back_to_previous_good_one(idx_data, tmp_path, capsys):
  config = tiny_config("gan", idx_data, steps=8)
  train.train_and_evaluate(config, str(tmp_path / "reference"))
  run = tmp_path / "run"
  train.train_and_evaluate(config, str(run))
  # Corrupt every file of the newest checkpoint (step 8); step 4 stays good.
  for path in (run / "checkpoints" / "8").rglob("*"):
    if path.is_file():
      path.write_bytes(b"garbage")
  config12 = tiny_config("gan", idx_data, steps=12)
  summary = train.train_and_evaluate(config12, str(run))
  assert summary["resumed_from"] == 4
  reference = train.train_and_evaluate(config12, str(tmp_path / "reference"))
  assert reference["resumed_from"] == 8
  _, a = restored_params(run, "gan", config12)
  _, b = restored_params(tmp_path / "reference", "gan", config12)
  jax.tree.map(np.testing.assert_array_equal, a, b)


def test_config_errors_name_the_field(idx_data, tmp_path):
  with pytest.raises(train.ConfigError, match=r"config.steps=0: must be an integer >= 1"):
    train.resolve_config(tiny_config("vae", idx_data, steps=0))
  with pytest.raises(train.ConfigError, match=r"data.num_labelled.*semi-supervised"):
    train.resolve_config(tiny_config("svae", idx_data))
  with pytest.raises(train.ConfigError, match=r"only semi-supervised variants"):
    train.resolve_config(tiny_config("vae", idx_data, **{"data.num_labelled": 10}))
  with pytest.raises(train.ConfigError, match=r"unknown variant 'vea'"):
    train.resolve_config(tiny_config("vea", idx_data))
  with pytest.raises(train.ConfigError, match=r"image_shape=\(32, 32, 3\) but dataset 'mnist'"):
    train.resolve_config(tiny_config("vae", idx_data, **{"model.image_shape": (32, 32, 3)}))
  with pytest.raises(train.ConfigError, match=r"model: architecture='resnet'"):
    train.resolve_config(tiny_config("vae", idx_data, **{"model.architecture": "resnet"}))
  config = tiny_config("vae", idx_data)
  config.unlikely_field = 3
  with pytest.raises(train.ConfigError, match=r"unknown config field\(s\) \['unlikely_field'\]"):
    train.resolve_config(config)
  # Nothing was written for any of these.
  assert not list(tmp_path.iterdir())


def test_cli_reports_bad_config_and_data_in_one_line(tmp_path, idx_data):
  out = cli(flags_for("vae", idx_data, tmp_path / "w", extra=["--config.data.fraction=2.0"]),
            timeout=300)
  assert out.returncode == 2 and out.stderr.strip().splitlines()[-1].startswith(
      "error: config.data.fraction=2.0: must be in (0, 1]")
  out = cli(flags_for("vae", str(tmp_path / "empty"), tmp_path / "w2"), timeout=300)
  assert out.returncode == 2 and "does not exist" in out.stderr.strip().splitlines()[-1]
  assert not (tmp_path / "w").exists() and not (tmp_path / "w2").exists()


def test_refuses_to_resume_with_a_different_config(idx_data, tmp_path):
  run = str(tmp_path / "run")
  train.train_and_evaluate(tiny_config("vae", idx_data, steps=4), run)
  before = (tmp_path / "run" / "config.json").read_text()
  with pytest.raises(train.ConfigError, match=r"model.latent_dim: 20 -> 8.*--allow_config_change"):
    train.train_and_evaluate(tiny_config("vae", idx_data, steps=4, **{"model.latent_dim": 8}), run)
  assert (tmp_path / "run" / "config.json").read_text() == before  # nothing overwritten
  # Fields that do not change the computation may change.
  summary = train.train_and_evaluate(tiny_config("vae", idx_data, steps=6, log_every=3), run)
  assert summary["resumed_from"] == 4


def test_run_saved_before_a_config_field_existed_resumes_at_its_default():
  """New fields default to the old behaviour; a non-default value is still a change."""
  config = default.get_config("vae")
  stored = json.loads(json.dumps(config.to_dict(), default=config_lib.jsonable))
  del stored["model"]["dropout"], stored["model"]["bn_epsilon"]  # as saved by older code
  assert train.check_resume_compatible(stored, config) == []
  config.model.bn_epsilon = 0.8
  assert train.check_resume_compatible(stored, config) == ["model.bn_epsilon"]
  stored["model"]["dropout"] = 0.25  # present in the stored run: compared as before
  assert train.check_resume_compatible(stored, config) == ["model.bn_epsilon", "model.dropout"]


def test_nonfinite_training_stops_and_keeps_last_good_checkpoint(idx_data, tmp_path):
  config = tiny_config("vae", idx_data, steps=40, log_every=1, checkpoint_every=1,
                       **{"model.optimizer": "sgd", "model.learning_rate": 1e9})
  with pytest.raises(train.NonFiniteError, match=r"training metric .* at step \d+.*last good checkpoint"):
    train.train_and_evaluate(config, str(tmp_path / "run"))
  ckpt = checkpointing.Checkpointer(tmp_path / "run" / "checkpoints")
  _, model_cfg = train.resolve_config(config)
  model = train_step.Model(train_step.variants_lib.get("vae"), model_cfg)
  restored = ckpt.restore(model.init(jax.random.key(0)))
  ckpt.close()
  if restored is not None:  # every saved checkpoint is finite
    for leaf in jax.tree.leaves(restored[1].params):
      assert np.all(np.isfinite(leaf))


def test_one_page_report_of_a_run(idx_data, tmp_path):
  """report.html puts the curves, the sample grids over time and the evaluation together."""
  run = tmp_path / "run"
  config = tiny_config("vae", idx_data, steps=8, **{"eval.metrics": "elbo",
                                                     "eval.data_dir": idx_data})
  train.train_and_evaluate(config, str(run))
  page = (run / "report.html").read_text()
  assert '<img src="curves.png"' in page and "samples/step_0000004.png" in page
  assert "samples/step_0000008.png" in page and "test_elbo" in page and "mnist/test" in page
  (run / "report.html").unlink()
  from unigen_jax import report
  assert report.main([str(run)]) == 0 and (run / "report.html").exists()
  assert report.main([str(tmp_path / "nothing")]) == 2
