"""The benchmark programs at smoke size: the accelerator suite on 8 simulated CPU devices."""

import json
import os
import pathlib
import subprocess
import sys

from benchmarks import report

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_accelerator_suite_runs_data_parallel_and_reports_mfu(tmp_path):
  out = tmp_path / "accelerator.json"
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8",
             JAX_PLATFORMS="cpu")
  done = subprocess.run([sys.executable, "-m", "benchmarks.bench", "--suite=accelerator",
                         "--smoke", "--variants=gan", f"--out={out}"], cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=600)
  assert done.returncode == 0, done.stderr[-3000:]
  rows = json.loads(out.read_text())["rows"]
  assert {(r["dtype"], r["steps_per_call"]) for r in rows} == {
      (d, n) for d in ("float32", "bfloat16") for n in (1, 2)}
  for r in rows:
    assert r["devices"] == 8 and r["batch"] == 16 and r["metrics_finite"]
    assert 0 < r["mfu"] < 1 and r["peak_source"].startswith("measured")
    assert r["mfu"] == r["achieved_flops_per_s"] / r["peak_flops_per_s"]
  # One step's FLOPs do not depend on how many steps a call runs (XLA counts a scan body
  # once; the suite takes the FLOPs from the single-step program).
  by = {(r["dtype"], r["steps_per_call"]): r["flops_per_step"] for r in rows}
  assert by[("float32", 1)] == by[("float32", 2)]
  table = "\n".join(report.accelerator_section(out))
  assert "| gan | bfloat16 | 16 | 2 |" in table and "cpu x 8" in table


def test_bad_benchmark_flags_are_one_line_and_exit_2():
  done = subprocess.run([sys.executable, "-m", "benchmarks.bench", "--suite=gpus"], cwd=REPO,
                        env=dict(os.environ, JAX_PLATFORMS="cpu"), capture_output=True,
                        text=True, timeout=300)
  assert done.returncode == 2 and done.stderr.strip().count("\n") == 0, done.stderr
  assert "unknown --suite ['gpus']" in done.stderr
