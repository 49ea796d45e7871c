"""Multi-process training on one machine (``experiments.multihost_local``): slow.

Two processes on localhost joined by ``jax.distributed`` (gloo CPU collectives, 2 devices
each) train a GAN and a VAE on one global batch; one process is killed with SIGKILL after a
checkpoint and both resume. The final state must equal a one-process run with 4 devices on
the same global batch to float tolerance: at most 10 times what float summation order alone
does (one process with 4 vs 2 devices), or 1e-4 (gloo's all-reduce may add in another order).
"""

import json
import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_two_processes_killed_and_resumed_match_one_process(tmp_path):
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  done = subprocess.run([sys.executable, "-m", "experiments.multihost_local",
                         "--variants=gan,vae", "--steps=60", "--width=4",
                         f"--workdir={tmp_path}"], cwd=REPO, env=env, capture_output=True,
                        text=True, timeout=3000)
  assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
  rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
  assert [r["variant"] for r in rows] == ["gan", "vae"]
  for row in rows:
    assert row["killed_after_checkpoint"] is not None and row["resumed_from"] is not None
    # Within 10x the float noise floor (one process, 4 vs 2 devices) or 1e-4.
    assert row["within_tolerance"], row
    assert row["max_abs_diff"]["params"] <= max(1e-4, 10 * row["noise_floor"]["params"]), row
    # Only process 0 writes the run's files.
    run = tmp_path / f"{row['variant']}_multi_process"
    assert (run / "metrics.jsonl").exists() and (run / "summary.json").exists()
