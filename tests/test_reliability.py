"""Runs that cannot corrupt each other: lock, restore-before-commit, torn files, read-only
evaluation, checksums, orphaned outputs, one-line messages (issue: reliability)."""

import errno
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
from unigen_jax import config as config_lib
from unigen_jax import evaluate
from unigen_jax import reporting
from unigen_jax import train
from unigen_jax import workdir as workdir_lib
from tests.test_train_program import REPO, cli, flags_for, restored_params, tiny_config


@pytest.fixture(scope="module")
def idx_data(tmp_path_factory):
  from tests.test_input_pipeline import make_idx_folder
  folder = tmp_path_factory.mktemp("idx")
  make_idx_folder(folder, n_train=200)
  return str(folder)


def _files(root: pathlib.Path) -> dict:
  return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
          for p in root.rglob("*") if p.is_file()}


def _wait_for_rows(path: pathlib.Path, rows: int, proc, timeout=300):
  deadline = time.time() + timeout
  while time.time() < deadline:
    if path.exists() and len(path.read_text().splitlines()) >= rows:
      return
    if proc.poll() is not None:
      raise AssertionError(f"the run ended early: {proc.stderr.read()[-2000:]}")
    time.sleep(0.2)
  raise AssertionError("the run did not start in time")


def _popen(args):
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(REPO))
  return subprocess.Popen([sys.executable, "-m", "unigen_jax.main", *args], cwd=REPO, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_workdir_lock_refuses_a_second_run_and_survives_kill_9(idx_data, tmp_path):
  run = tmp_path / "run"
  args = flags_for("vae", idx_data, run, steps=100000, extra=["--config.log_every=1",
                                                              "--config.checkpoint_every=20"])
  first = _popen(args)
  try:
    _wait_for_rows(run / "metrics.jsonl", 25, first)
    second = cli(flags_for("vae", idx_data, run, steps=50, extra=["--config.seed=1"]),
                 timeout=300)
    assert second.returncode == 2, second.stderr[-2000:]
    assert f"is in use by process {first.pid} on" in second.stderr.strip().splitlines()[-1]
  finally:
    first.send_signal(signal.SIGKILL)  # a lock left by a killed run is released by the kernel
    first.wait()
  saved = sorted(int(p.name) for p in (run / "checkpoints").iterdir() if p.name.isdigit())
  resumed = cli(flags_for("vae", idx_data, run, steps=saved[-1] + 4,
                          extra=["--config.log_every=1", "--config.checkpoint_every=20"]),
                timeout=300)
  assert resumed.returncode == 0, resumed.stderr[-2000:]
  assert f"resumed from the checkpoint at step {saved[-1]}" in resumed.stderr


def test_a_checkpoint_of_another_seed_is_refused(idx_data, tmp_path):
  run = tmp_path / "run"
  train.train_and_evaluate(tiny_config("vae", idx_data, steps=4), str(run))
  stored = json.loads((run / "config.json").read_text())
  stored["seed"] = 1  # as if a run with seed 1 had written config.json last
  (run / "config.json").write_text(json.dumps(stored))
  with pytest.raises(checkpointing.CheckpointError, match="another random seed"):
    train.train_and_evaluate(tiny_config("vae", idx_data, steps=8, seed=1), str(run))
  assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["4"]  # nothing moved


def test_allow_config_change_restores_before_it_commits(idx_data, tmp_path):
  run = tmp_path / "run"
  train.train_and_evaluate(tiny_config("vae", idx_data, steps=4), str(run))
  before = (run / "config.json").read_text()
  files = _files(run / "checkpoints")
  # The misfit is named, found from the checkpoint's metadata before any array is read.
  with pytest.raises(config_lib.ConfigError, match=r"do not fit the changed config.*arrays do not "
                     r"fit this run's state, e\.g\. params\..*kernel: stored float32\[16, 784\], "
                     r"expected float32\[24, 784\]\)\. Nothing was changed: config"):
    train.train_and_evaluate(tiny_config("vae", idx_data, steps=8, **{"model.hidden": (24,)}),
                             str(run), allow_config_change=True)
  assert (run / "config.json").read_text() == before
  assert _files(run / "checkpoints") == files and not (run / "corrupt_checkpoints").exists()
  summary = train.train_and_evaluate(tiny_config("vae", idx_data, steps=6), str(run))
  assert summary["resumed_from"] == 4  # the original command still resumes


def test_a_torn_metrics_line_is_cut_off_and_the_run_goes_on(idx_data, tmp_path):
  run = tmp_path / "run"
  train.train_and_evaluate(tiny_config("vae", idx_data, steps=4), str(run))
  with open(run / "metrics.jsonl", "a") as f:
    f.write('{"step": 5, "elbo": -54')  # killed mid-write
  assert [r["step"] for r in reporting.read_metrics(run / "metrics.jsonl")] == [2, 4]
  summary = train.train_and_evaluate(tiny_config("vae", idx_data, steps=8), str(run))
  assert summary["final_step"] == 8 and (run / "summary.json").exists()
  lines = (run / "metrics.jsonl").read_text().splitlines()
  assert [json.loads(line)["step"] for line in lines] == [2, 4, 6, 8]
  assert "torn last line" in (run / "log.txt").read_text()


def test_evaluation_is_read_only_even_with_a_corrupt_checkpoint(idx_data, tmp_path):
  run = tmp_path / "run"
  train.train_and_evaluate(tiny_config("vae", idx_data, steps=8), str(run))
  for path in (run / "checkpoints" / "8").rglob("*"):
    if path.is_file():
      path.write_bytes(b"garbage")
  before = _files(run)
  warnings = []
  result = evaluate.evaluate_workdir(run, metrics="elbo", log=warnings.append)
  assert result["step"] == 4 and any("step 8 unusable" in w for w in warnings)
  after = {k: v for k, v in _files(run).items() if not k.startswith("evaluations/")}
  assert after == before  # nothing moved, deleted or rewritten
  assert not (run / "corrupt_checkpoints").exists()


def _flip_a_byte(checkpoint: pathlib.Path) -> None:
  data = max((p for p in (checkpoint / "state").rglob("*") if p.is_file() and p.parent.name == "d"),
             key=lambda p: p.stat().st_size)
  raw = bytearray(data.read_bytes())
  raw[len(raw) // 2] ^= 0x10
  data.write_bytes(bytes(raw))


def test_a_flipped_bit_is_caught_by_the_checksum(idx_data, tmp_path):
  run = tmp_path / "run"
  config = tiny_config("gan", idx_data, steps=8)
  train.train_and_evaluate(config, str(run))
  _flip_a_byte(run / "checkpoints" / "8")
  warnings = []
  _, model_cfg = config_lib.resolve_config(config)
  model = train.train_step.Model(train.variants.get("gan"), model_cfg)
  step, _ = checkpointing.load_latest_state(model, run / "checkpoints", warn=warnings.append)
  assert step == 4 and "step 8 unusable" in warnings[0]


def test_outputs_without_checkpoints_are_refused_unless_restart(idx_data, tmp_path):
  run = tmp_path / "run"
  train.train_and_evaluate(tiny_config("vae", idx_data, steps=4), str(run))
  summary = (run / "summary.json").read_text()
  import shutil
  shutil.rmtree(run / "checkpoints")
  with pytest.raises(workdir_lib.WorkdirError, match=r"up to step 4 \(metrics.jsonl, summary.json\) but no checkpoint.*--restart"):
    train.train_and_evaluate(tiny_config("vae", idx_data, steps=4), str(run))
  assert (run / "summary.json").read_text() == summary
  out = train.train_and_evaluate(tiny_config("vae", idx_data, steps=4), str(run), restart=True)
  assert out["resumed_from"] is None
  previous = next(run.glob("previous_*"))
  assert (previous / "summary.json").read_text() == summary


def test_a_run_killed_before_its_first_checkpoint_starts_again_by_itself(idx_data, tmp_path):
  # What a kill -9 at step 6 of 12 leaves when the first checkpoint is due at step 10: the
  # metrics rows, config.json, no checkpoint and no summary.
  config = tiny_config("vae", idx_data, steps=12, checkpoint_every=10)
  reference = train.train_and_evaluate(config, str(tmp_path / "reference"))
  run = tmp_path / "run"
  train.train_and_evaluate(config, str(run))
  import shutil
  shutil.rmtree(run / "checkpoints")
  for name in ("summary.json", "eval.json"):
    (run / name).unlink(missing_ok=True)
  rows = (run / "metrics.jsonl").read_text().splitlines()
  (run / "metrics.jsonl").write_text("\n".join(rows[:3]) + "\n")  # steps 2, 4, 6
  killed_rows = (run / "metrics.jsonl").read_text()

  out = train.train_and_evaluate(config, str(run))  # no --restart needed
  assert out["resumed_from"] is None and out["final_step"] == 12
  previous = next(run.glob("previous_*"))
  assert (previous / "metrics.jsonl").read_text() == killed_rows  # kept, not overwritten
  assert "killed after step 6, before its first checkpoint (due at step 10)" in (run / "log.txt").read_text()
  # Starting again replayed the run: the same parameters as the uninterrupted one.
  _, params = restored_params(run, "vae", config)
  _, expected = restored_params(tmp_path / "reference", "vae", config)
  assert jax.tree.all(jax.tree.map(np.array_equal, params, expected))
  assert out["final_metrics"] == reference["final_metrics"]

  # Killed before its first row: only the empty folders made at the start. Not outputs.
  fresh = tmp_path / "fresh"
  for name in ("best", "checkpoints", "tensorboard"):
    (fresh / name).mkdir(parents=True)
  assert train.train_and_evaluate(config, str(fresh))["final_step"] == 12
  assert not list(fresh.glob("previous_*"))

  # Past the first checkpoint's step (checkpoints deleted by hand), or under a changed
  # config, the outputs are still refused: they may belong to another run.
  def strip(workdir):
    shutil.rmtree(workdir / "checkpoints")
    for name in ("summary.json", "eval.json"):
      (workdir / name).unlink(missing_ok=True)

  strip(run)
  (run / "metrics.jsonl").write_text(killed_rows)
  with pytest.raises(workdir_lib.WorkdirError, match="no checkpoint"):
    train.train_and_evaluate(tiny_config("vae", idx_data, steps=12, checkpoint_every=10, seed=1),
                             str(run), allow_config_change=True)
  late = tiny_config("vae", idx_data, steps=8, checkpoint_every=4)
  train.train_and_evaluate(late, str(tmp_path / "late"))
  strip(tmp_path / "late")
  with pytest.raises(workdir_lib.WorkdirError, match="up to step 8 .*no checkpoint"):
    train.train_and_evaluate(late, str(tmp_path / "late"))


def test_steps_are_honoured_exactly_with_steps_per_call(idx_data, tmp_path):
  config = tiny_config("vae", idx_data, steps=10, steps_per_call=3, log_every=3,
                       checkpoint_every=6)
  summary = train.train_and_evaluate(config, str(tmp_path / "run"))
  assert summary["final_step"] == 10
  step, _ = restored_params(tmp_path / "run", "vae", config)
  assert step == 10


def test_a_full_disk_is_one_clear_error(idx_data, tmp_path, monkeypatch):
  def full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")
  monkeypatch.setattr(checkpointing.Checkpointer, "save", full)
  with pytest.raises(train.StorageError, match=r"cannot write to .*free space.*resumes"):
    train.train_and_evaluate(tiny_config("vae", idx_data, steps=4), str(tmp_path / "run"))


def test_bad_input_gets_one_line_and_exit_2(idx_data, tmp_path):
  # An unknown --config. field: one line, exit 2 (not a traceback).
  out = cli(flags_for("vae", idx_data, tmp_path / "a", extra=["--config.model.widht=4"]),
            timeout=300)
  assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
  assert "widht" in out.stderr
  # A file where the workdir should be.
  (tmp_path / "file").write_text("x")
  out = cli(flags_for("vae", idx_data, tmp_path / "file"), timeout=300)
  assert out.returncode == 2 and "exists and is not a directory" in out.stderr, out.stderr
  # A truncated config.json of an existing run.
  run = tmp_path / "run"
  run.mkdir()
  (run / "config.json").write_text('{"variant": "va')
  out = cli(flags_for("vae", idx_data, run), timeout=300)
  assert out.returncode == 2 and "config.json is unreadable" in out.stderr.strip().splitlines()[-1]
  # A labelled set larger than the data names the field.
  out = cli(flags_for("svae", idx_data, tmp_path / "b", extra=["--config.data.num_labelled=100000"]),
            timeout=300)
  assert out.returncode == 2 and "data.num_labelled=100000" in out.stderr.strip().splitlines()[-1]
  assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_recovering_from_a_truncated_checkpoint_is_quiet(idx_data, tmp_path):
  run = tmp_path / "run"
  assert cli(flags_for("gan", idx_data, run), timeout=300).returncode == 0
  for path in (run / "checkpoints" / "8").rglob("*"):
    if path.is_file():
      path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
  out = cli(flags_for("gan", idx_data, run, steps=12), timeout=300)
  assert out.returncode == 0, out.stderr[-2000:]
  stderr = out.stderr.strip().splitlines()
  assert len(stderr) <= 6, out.stderr  # a warning and the resume line, no tracebacks
  assert any("step 8 unusable" in line and "corrupt_checkpoints" in line for line in stderr)
  assert "checkpoint step 8" in (run / "log.txt").read_text()  # the details are kept


def test_sigterm_during_start_up_says_so(idx_data, tmp_path):
  proc = _popen(flags_for("vae", idx_data, tmp_path / "run"))
  time.sleep(0.5)
  proc.send_signal(signal.SIGTERM)
  _, err = proc.communicate(timeout=300)
  assert proc.returncode == 130, err
  assert "interrupted" in err and "rerun the same command" in err


def test_labels_outside_the_classes_are_refused_at_load(tmp_path):
  from tests.test_input_pipeline import write_idx
  from unigen_jax import input_pipeline
  write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((20, 28, 28), np.uint8), True)
  write_idx(tmp_path / "train-labels-idx1-ubyte", np.r_[np.arange(19) % 10, 12], True)
  with pytest.raises(input_pipeline.DataError, match=r"labels outside \[0, 10\) \(e.g. 12"):
    input_pipeline.load_split("mnist", "train", data_dir=str(tmp_path), verify=False)


@pytest.mark.slow
def test_sigkill_at_random_steps_then_resume_is_bitwise_identical(idx_data, tmp_path):
  steps = 300
  extra = ["--config.log_every=1", "--config.checkpoint_every=7"]
  reference = cli(flags_for("aavae", idx_data, tmp_path / "reference", steps=steps, extra=extra),
                  timeout=900)
  assert reference.returncode == 0, reference.stderr[-2000:]
  run = tmp_path / "killed"
  rng = np.random.default_rng(0)
  kills = 0
  while kills < 6:
    proc = _popen(flags_for("aavae", idx_data, run, steps=steps, extra=extra))
    done = len((run / "metrics.jsonl").read_text().splitlines()) if (run / "metrics.jsonl").exists() else 0
    try:
      _wait_for_rows(run / "metrics.jsonl", done + int(rng.integers(5, 40)), proc)
    except AssertionError:
      break  # finished before the kill
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    kills += 1
  final = cli(flags_for("aavae", idx_data, run, steps=steps, extra=extra), timeout=900)
  assert final.returncode == 0, final.stderr[-2000:]
  assert kills >= 5
  config = tiny_config("aavae", idx_data, steps=steps)
  _, a = restored_params(tmp_path / "reference", "aavae", config)
  _, b = restored_params(run, "aavae", config)
  jax.tree.map(np.testing.assert_array_equal, a, b)


def _selecting_config(idx_data):
  """6 steps, checkpoints every 2, validation every 3 selecting the best checkpoint by the
  bound, and a final evaluation (which reads that best checkpoint)."""
  return tiny_config("vae", idx_data, steps=6, checkpoint_every=2, **{
      "validation.every": 3, "validation.select": "elbo", "validation.num_examples": 16,
      "eval.metrics": "elbo", "eval.num_examples": 16})


def test_a_kill_between_a_best_save_and_the_next_checkpoint_resumes(idx_data, tmp_path,
                                                                    monkeypatch):
  # Validation every 3 steps, checkpoints every 2: the first evaluation (step 3) always saves
  # a best; a kill in the save of checkpoint 4 leaves best/3 ahead of checkpoint 2. Before
  # the fix the resumed run replayed step 3 and failed on 'step 3 already exists'.
  config = _selecting_config(idx_data)
  reference = train.train_and_evaluate(config, str(tmp_path / "reference"))
  run = tmp_path / "run"
  save = train._TrainingLoop._save  # pylint: disable=protected-access

  def killed_at_4(self, state, step, iterator_state):
    if step == 4:
      raise KeyboardInterrupt("killed")
    return save(self, state, step, iterator_state)

  monkeypatch.setattr(train._TrainingLoop, "_save", killed_at_4)  # pylint: disable=protected-access
  with pytest.raises(KeyboardInterrupt):
    train.train_and_evaluate(config, str(run))
  monkeypatch.setattr(train._TrainingLoop, "_save", save)  # pylint: disable=protected-access
  assert sorted(int(p.name) for p in (run / "best").iterdir() if p.name.isdigit()) == [3]
  assert sorted(int(p.name) for p in (run / "checkpoints").iterdir() if p.name.isdigit()) == [2]

  out = train.train_and_evaluate(config, str(run))
  assert out["resumed_from"] == 2 and out["final_step"] == 6
  assert out["validation"] == reference["validation"]
  timeless = lambda result: {k: v for k, v in result.items() if k != "eval_time_s"}  # noqa: E731
  assert timeless(out["eval"]) == timeless(reference["eval"])  # the same best was evaluated
  superseded = list((run / "best_superseded").iterdir())  # kept, not deleted
  assert [p.name.split("_")[1] for p in superseded] == ["3"]
  assert "moved the best checkpoint of step 3" in (run / "log.txt").read_text()
  _, params = restored_params(run, "vae", config)
  _, expected = restored_params(tmp_path / "reference", "vae", config)
  jax.tree.map(np.testing.assert_array_equal, params, expected)


def test_the_final_evaluation_refuses_a_best_of_another_step(idx_data, tmp_path):
  config = _selecting_config(idx_data)
  run = tmp_path / "run"
  out = train.train_and_evaluate(config, str(run))
  best_step = out["validation"]["best_step"]
  import shutil
  shutil.rmtree(run / "best" / str(best_step))  # the selected best is lost
  for name in ("summary.json", "eval.json"):
    (run / name).unlink()
  if best_step == 3:  # nothing older is left: the final evaluation has no best at all
    with pytest.raises(checkpointing.CheckpointError, match="holds no checkpoint"):
      train.train_and_evaluate(config, str(run))
  else:
    with pytest.raises(checkpointing.CheckpointError, match="selection chose step 6"):
      train.train_and_evaluate(config, str(run))


def test_a_state_of_ones_own_with_a_typed_key_round_trips_and_misfits_are_named(tmp_path):
  """The Checkpointer takes any pytree: typed PRNG keys (a common field of a user's TrainState)
  are digested and restored, and a state of other shapes is refused naming the array."""
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  state = {"key": jax.random.key(7), "w": jnp.arange(6.0).reshape(2, 3),
           "h": jnp.ones((4,), jnp.bfloat16), "step": jnp.int32(3)}
  saved = checkpointing.Checkpointer(tmp_path / "checkpoints")
  saved.save(1, state, {"note": "mine"})
  step, restored, meta = saved.restore(state)
  saved.close()
  assert step == 1 and meta["note"] == "mine"
  np.testing.assert_array_equal(jax.random.key_data(restored["key"]),
                                jax.random.key_data(state["key"]))
  np.testing.assert_array_equal(restored["w"], state["w"])
  assert meta["state_sha256"] == checkpointing.state_digest(restored)
  wider = dict(state, w=jnp.zeros((2, 5)))
  reader = checkpointing.Checkpointer(tmp_path / "checkpoints", read_only=True)
  with pytest.raises(checkpointing.CheckpointError,
                     match=r"1 of its arrays do not fit this run's state, e\.g\. w: stored "
                           r"float32\[2, 3\], expected float32\[2, 5\]"):
    reader.restore(wider)
  reader.close()
