"""The benchmark programs at smoke size: the accelerator suite on 8 simulated CPU devices."""

import json
import math
import os
import pathlib
import subprocess
import sys

import pytest

from benchmarks import report

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("dtypes", [
    ("bfloat16",),
    # Slow: float32 doubles the compiles; float32 steps over 8 devices are also checked by
    # test_train_step.py's sharded tests.
    pytest.param(("float32", "bfloat16"), marks=pytest.mark.slow)])
def test_accelerator_suite_runs_data_parallel_and_reports_mfu(tmp_path, dtypes):
  out = tmp_path / "accelerator.json"
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8",
             JAX_PLATFORMS="cpu")
  done = subprocess.run([sys.executable, "-m", "benchmarks.bench", "--suite=accelerator",
                         "--smoke", "--variants=gan", f"--dtypes={','.join(dtypes)}",
                         f"--out={out}"], cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=600)
  assert done.returncode == 0, done.stderr[-3000:]
  rows = json.loads(out.read_text())["rows"]
  assert {(r["dtype"], r["steps_per_call"]) for r in rows} == {
      (d, n) for d in dtypes for n in (1, 2)}
  for r in rows:
    assert r["devices"] == 8 and r["batch"] == 16 and r["metrics_finite"]
    assert 0 < r["mfu"] < 1 and r["peak_source"].startswith("measured")
    assert r["mfu"] == r["achieved_flops_per_s"] / r["peak_flops_per_s"]
  # One step's FLOPs do not depend on how many steps a call runs (XLA counts a scan body
  # once; the suite takes the FLOPs from the single-step program).
  by = {(r["dtype"], r["steps_per_call"]): r["flops_per_step"] for r in rows}
  assert all(by[(d, 1)] == by[(d, 2)] for d in dtypes)
  table = "\n".join(report.accelerator_section(out))
  assert "| gan | bfloat16 | 16 | 2 |" in table and "cpu x 8" in table


def test_a_multi_step_rows_flops_are_the_single_step_programs_compiled_or_remembered():
  """steps_per_call > 1 with no single-step row before it compiles the single-step program
  for its FLOPs; a single-step row of the same program gives the same count, and a later
  multi-step row takes it without compiling."""
  from benchmarks import bench  # pylint: disable=g-import-not-at-top
  from unigen_jax import train_step  # pylint: disable=g-import-not-at-top
  model = train_step.build("vae", architecture="mlp", hidden=(32,), latent_dim=4)
  quick = dict(warmup_steps=1, warmup_s=0.0, window_s=0.05, windows=1)
  bench._SINGLE_STEP_FLOPS.clear()  # pylint: disable=protected-access
  compiled = bench.bench_model("two", model, 8, steps_per_call=2, **quick)["flops_per_step"]
  bench._SINGLE_STEP_FLOPS.clear()  # pylint: disable=protected-access
  single = bench.bench_model("one", model, 8, steps_per_call=1, **quick)["flops_per_step"]
  assert compiled == single > 0
  bench._SINGLE_STEP_FLOPS[next(iter(bench._SINGLE_STEP_FLOPS))] = 123.0  # pylint: disable=protected-access
  assert bench.bench_model("two", model, 8, steps_per_call=2, **quick)["flops_per_step"] == 123.0
  bench._SINGLE_STEP_FLOPS.clear()  # pylint: disable=protected-access


def test_bad_benchmark_flags_are_one_line_and_exit_2():
  done = subprocess.run([sys.executable, "-m", "benchmarks.bench", "--suite=gpus"], cwd=REPO,
                        env=dict(os.environ, JAX_PLATFORMS="cpu"), capture_output=True,
                        text=True, timeout=300)
  assert done.returncode == 2 and done.stderr.strip().count("\n") == 0, done.stderr
  assert "unknown --suite ['gpus']" in done.stderr


def test_eval_row_reports_its_roofline_fraction_from_the_dense_flops():
  from benchmarks import bench  # pylint: disable=g-import-not-at-top
  rows = bench.suite_eval(4, 10, 2, warmup_steps=1, warmup_s=0.0, window_s=0.05, windows=1)
  r = rows[0]
  # MLP 784-512-16 (encoder 784-512-(2x16)), decoder 16-512-784: 2 x kernel sizes.
  encoder = 2 * (784 * 512 + 512 * 32)
  decoder = 2 * (16 * 512 + 512 * 784)
  assert r["gflop_per_image"] * 1e9 == encoder + 10 * decoder
  assert r["finite"] and r["images_per_s"] > 0
  # Equal up to float association (the row stores GFLOP, the fraction used FLOP).
  assert math.isclose(r["fraction_of_matmul"],
                      r["images_per_s"] * r["gflop_per_image"] * 1e9 / r["matmul_flops_per_s"],
                      rel_tol=1e-12)
  text = "\n".join(report.eval_section({"rows": rows}, None))
  assert "of the matmul rate" in text and f"{r['images_per_s']:.2f} images/s" in text


def test_batch_sweep_suite_runs_and_reports_examples_per_second(tmp_path):
  out = tmp_path / "sweep.json"
  done = subprocess.run([sys.executable, "-m", "benchmarks.bench", "--suite=batch_sweep",
                         "--only=unigen_vae_mlp_pythae", "--batches=8,16", "--smoke",
                         f"--out={out}"], cwd=REPO, capture_output=True, text=True, timeout=600)
  assert done.returncode == 0, done.stderr[-3000:]
  rows = json.loads(out.read_text())["rows"]
  assert [r["batch"] for r in rows] == [8, 16]
  for r in rows:
    assert r["examples_per_s"] == r["steps_per_s"] * r["batch"] > 0


def test_results_report_gives_every_batch_of_the_sweep_its_ratio(tmp_path, capsys):
  """RESULTS.md's main table: one row per (configuration, batch) measured, examples/s, the
  ratio to the fastest peer, and the rows under 1.0x named with where their cause is shown."""
  env = {"processor": "x86_64", "platform": "Linux", "devices": ["cpu:0"], "jax": "0.10.2",
         "flax": "0.12.8", "optax": "0.2.8", "python": "3.11.7", "time": "2026-12-03 12:00:00"}
  ours = [{"name": n, "batch": b, "steps_per_s": s, "compile_s": 1.0, "num_params": 10,
           "xla_estimate_bytes": 1e6} for n, b, s in (
               ("unigen_iwae_mlp_k5_pythae", 32, 200.0), ("unigen_iwae_mlp_k5_pythae", 1024, 9.0),
               ("unigen_iwae_mlp_k5_pythae_microbatch256", 32, 110.0),
               ("unigen_iwae_mlp_k5_pythae_microbatch256", 1024, 13.2))]
  (tmp_path / "unigen.json").write_text(json.dumps({"environment": env, "rows": ours}))
  peers = [{"name": n, "batch": b, "median_steps_per_s": s} for n, b, s in (
      ("pythae_iwae_mlp_k5_eager", 32, 50.0), ("pythae_iwae_mlp_k5_compile", 32, 100.0),
      ("pythae_iwae_mlp_k5_compile", 1024, 12.0))]
  (tmp_path / "peers.jsonl").write_text("\n".join(json.dumps(p) for p in peers) + "\n")
  report.main(str(tmp_path))
  text = capsys.readouterr().out
  assert ("| pythae MLP IWAE K=5 | 32 | 200 | 6,400 | pythae_iwae_mlp_k5_compile | 100 | 2.00x | "
          "yes | >= 1.5x | yes |") in text
  assert ("| pythae MLP IWAE K=5 | 1024 | 9 | 9,216 | pythae_iwae_mlp_k5_compile | 12 | 0.75x | "
          "NO | >= 1.5x | NO |") in text
  assert "Rows below 1.0x: pythae MLP IWAE K=5 at batch 1024 (0.75x)." in text
  assert "RESULTS_layer_scaling.md" in text
  # Only the configuration that never falls under its peer is listed, with its range.
  assert ("At or above 1.0x at every batch measured: same, microbatch_size=256 (gradient "
          "accumulated over chunks of 256) (1.10-1.10x).") in text
