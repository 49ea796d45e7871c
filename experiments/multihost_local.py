r"""Multi-process data-parallel training on one machine, checked against one process.

  python -m experiments.multihost_local [--variants=gan,vae] [--steps=200] [--processes=2]
      [--devices_per_process=2] [--workdir=workdirs/multihost]

For each variant, three things run the training program (``python -m unigen_jax.main``) on
the CPU, with the same config and the same global batch:

1. **reference**: one process with ``processes x devices_per_process`` simulated devices;
2. **multi-process**: ``processes`` processes on localhost, each with
   ``devices_per_process`` devices, joined by ``jax.distributed.initialize`` (a local
   coordinator on a free port; gloo CPU collectives). Every process loads its own part of the
   global batch; process 0 holds the workdir lock and writes metrics, samples and the
   summary; the checkpoints go through orbax from every process;
3. **kill and resume**: once the multi-process run has committed a checkpoint at or past half
   of the steps, the last process is killed with SIGKILL, the survivors are killed once they
   have not exited 30 s later (a collective with a dead peer never returns), and all
   processes are started again with the same command: they resume from the newest good
   checkpoint and finish.

Then both final checkpoints are loaded in this process and compared leaf by leaf (parameters,
batch statistics, optimizer states). Prints one JSON line per variant with the largest
absolute differences; exit 1 when one exceeds ``--tolerance``. The two runs execute the same
partitioned program, but the cross-process all-reduce (gloo) may add in another order than
the in-process one, so equality is to float tolerance; what was measured is in the README
("Multi-host").
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

from experiments import common


def define_flags(f):
  d = common.flags
  d.DEFINE_list("variants", ["gan", "vae"], "Variants to run.", flag_values=f)
  d.DEFINE_integer("steps", 200, "Training steps.", flag_values=f)
  d.DEFINE_integer("processes", 2, "Processes on localhost.", flag_values=f)
  d.DEFINE_integer("devices_per_process", 2, "Simulated CPU devices of each process.",
                   flag_values=f)
  d.DEFINE_integer("batch_size", 32, "Global batch (split over all devices).", flag_values=f)
  d.DEFINE_integer("width", 8, "DCGAN width.", flag_values=f)
  d.DEFINE_string("workdir", "workdirs/multihost", "Root of the run workdirs (emptied first).",
                  flag_values=f)
  d.DEFINE_float("tolerance", 1e-4, "Largest allowed absolute difference of any leaf.",
                 flag_values=f)
  d.DEFINE_bool("kill", True, "Kill one process mid-run and resume (False: one clean run).",
                flag_values=f)


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def _env(devices: int) -> dict:
  env = dict(os.environ, JAX_PLATFORMS="cpu",
             XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
  env.pop("JAX_COMPILATION_CACHE_DIR", None)  # no cross-process cache races in this check
  return env


def _train_args(f, variant: str, workdir: pathlib.Path) -> list[str]:
  every = max(1, f.steps // 4)
  return [sys.executable, "-m", "unigen_jax.main",
          f"--config=unigen_jax/configs/default.py:{variant}", f"--workdir={workdir}",
          f"--config.steps={f.steps}", f"--config.batch_size={f.batch_size}",
          f"--config.model.width={f.width}", "--config.progress=False",
          "--config.sample_every=0", f"--config.log_every={every}",
          f"--config.checkpoint_every={every}", "--config.keep_checkpoints=2",
          "--config.eval.metrics="]


def _launch(f, variant, workdir, log_dir, tag) -> list[subprocess.Popen]:
  port = _free_port()
  procs = []
  for i in range(f.processes):
    log = open(log_dir / f"{tag}_process{i}.log", "w")  # pylint: disable=consider-using-with
    procs.append(subprocess.Popen(
        _train_args(f, variant, workdir) + [f"--coordinator_address=localhost:{port}",
                                            f"--num_processes={f.processes}",
                                            f"--process_id={i}"],
        env=_env(f.devices_per_process), stdout=log, stderr=subprocess.STDOUT,
        cwd=pathlib.Path(__file__).resolve().parents[1]))
  return procs


def _committed_steps(workdir: pathlib.Path) -> list[int]:
  root = workdir / "checkpoints"
  if not root.is_dir():
    return []
  return sorted(int(p.name) for p in root.iterdir()
                if p.name.isdigit() and (p / "commit_success.txt").exists())


def _wait(procs, timeout: float) -> list[int]:
  deadline = time.time() + timeout
  for p in procs:
    try:
      p.wait(timeout=max(1.0, deadline - time.time()))
    except subprocess.TimeoutExpired:
      p.kill()
      p.wait()
  return [p.returncode for p in procs]


def _final_state(variant: str, f, workdir: pathlib.Path):
  import jax  # pylint: disable=g-import-not-at-top
  from unigen_jax import checkpointing  # pylint: disable=g-import-not-at-top
  from unigen_jax import config as config_lib  # pylint: disable=g-import-not-at-top
  from unigen_jax import train_step  # pylint: disable=g-import-not-at-top
  from unigen_jax import variants  # pylint: disable=g-import-not-at-top
  config = config_lib.get_config(variant)
  config.model.width = f.width
  _, model_cfg = config_lib.resolve_config(config)
  model = train_step.Model(variants.get(variant), model_cfg)
  step, state = checkpointing.load_latest_state(model, workdir / "checkpoints")
  return step, jax.device_get(state)


def _largest_differences(a, b) -> dict:
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  out = {}
  for part in ("params", "batch_stats", "opt_states"):
    leaves_a, leaves_b = jax.tree.leaves(getattr(a, part)), jax.tree.leaves(getattr(b, part))
    assert len(leaves_a) == len(leaves_b), part
    out[part] = max([float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64))))
                     for x, y in zip(leaves_a, leaves_b) if np.asarray(x).size] or [0.0])
  return out


def run_variant(f, variant: str, root: pathlib.Path) -> dict:
  log_dir = root / "logs"
  log_dir.mkdir(parents=True, exist_ok=True)
  reference, multi = root / f"{variant}_one_process", root / f"{variant}_multi_process"
  started = time.time()
  with open(log_dir / f"{variant}_reference.log", "w") as log:
    done = subprocess.run(_train_args(f, variant, reference),
                          env=_env(f.processes * f.devices_per_process), stdout=log,
                          stderr=subprocess.STDOUT, timeout=3600,
                          cwd=pathlib.Path(__file__).resolve().parents[1])
  if done.returncode:
    raise RuntimeError(f"{variant}: the one-process reference failed (exit {done.returncode}); "
                       f"see {log_dir / f'{variant}_reference.log'}")
  procs = _launch(f, variant, multi, log_dir, f"{variant}_first")
  killed_at = None
  if f.kill:
    while all(p.poll() is None for p in procs):
      committed = [s for s in _committed_steps(multi) if 2 * s >= f.steps and s < f.steps]
      if committed:
        killed_at = committed[-1]
        procs[-1].send_signal(signal.SIGKILL)
        break
      time.sleep(0.05)
  codes = _wait(procs, 30.0 if killed_at is not None else 3600.0)
  if killed_at is not None:
    procs = _launch(f, variant, multi, log_dir, f"{variant}_resumed")
    codes = _wait(procs, 3600.0)
  if any(codes):
    raise RuntimeError(f"{variant}: the multi-process run failed (exit codes {codes}); see "
                       f"{log_dir}")
  ref_step, ref_state = _final_state(variant, f, reference)
  multi_step, multi_state = _final_state(variant, f, multi)
  assert ref_step == multi_step == f.steps, (ref_step, multi_step)
  summary = json.loads((multi / "summary.json").read_text())
  diffs = _largest_differences(ref_state, multi_state)
  return {"variant": variant, "processes": f.processes,
          "devices_per_process": f.devices_per_process, "global_batch": f.batch_size,
          "steps": f.steps, "killed_after_checkpoint": killed_at,
          "resumed_from": summary.get("resumed_from"), "max_abs_diff": diffs,
          "within_tolerance": max(diffs.values()) <= f.tolerance,
          "metrics_rows_written_by": "process 0" if (multi / "metrics.jsonl").exists() else None,
          "wall_s": round(time.time() - started, 1)}


def main(argv=None) -> int:
  f = common.parse_flags(argv, define_flags)
  if f.processes < 2 or f.devices_per_process < 1 or f.batch_size % (
      f.processes * f.devices_per_process):
    raise common.UsageError("--processes >= 2, and --batch_size divisible by processes x "
                            "devices_per_process.")
  root = pathlib.Path(f.workdir)
  for sub in root.glob("*_process") if root.exists() else ():
    for path in sorted(sub.rglob("*"), reverse=True):
      path.unlink() if path.is_file() or path.is_symlink() else path.rmdir()
    sub.rmdir()
  ok = True
  for variant in f.variants:
    row = run_variant(f, variant, root)
    print(json.dumps(row), flush=True)
    ok &= row["within_tolerance"]
  return 0 if ok else 1


if __name__ == "__main__":
  common.run_main(main)
