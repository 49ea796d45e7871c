r"""Multi-process data-parallel training on one machine, checked against one process.

  python -m experiments.multihost_local [--variants=gan,vae] [--steps=200] [--processes=2]
      [--devices_per_process=2] [--optimizer=adam] [--workdir=workdirs/multihost]

For each variant, four runs of the training program (``python -m unigen_jax.main``) on
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

4. **noise floor**: one process again, with half the devices. It is as correct as the
   reference; it differs from it only in the order in which the gradient all-reduce and
   the batch statistics add up, so their difference is what float rounding alone does to
   this training run after ``--steps`` steps.

Then the final checkpoints are loaded in this process and compared leaf by leaf (parameters,
batch statistics, optimizer states). Prints one JSON line per variant with the largest
absolute differences of the multi-process run and of the noise floor from the reference;
exit 1 when, for the parameters, the batch statistics or the optimizer states, the
multi-process difference exceeds ``--floor_factor`` times the floor of that part (or
``--tolerance``, whichever is larger). The two runs execute the same partitioned program,
but the cross-process all-reduce (gloo) may add in another order than the in-process one,
so equality is to float tolerance, and training (Adam especially) amplifies rounding
differences step after step; what was measured is in the README ("Multi-host").
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
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
  d.DEFINE_float("tolerance", 1e-4, "Largest allowed absolute difference of any leaf, unless "
                 "the measured noise floor is larger (see --floor_factor).", flag_values=f)
  d.DEFINE_float("floor_factor", 10.0, "Pass when the multi-process difference is at most this "
                 "times the noise floor: two correct one-process runs on the same global batch "
                 "that differ only in the number of devices (4 vs 2), i.e. in float summation "
                 "order.", flag_values=f)
  d.DEFINE_enum("optimizer", "adam", ["adam", "sgd"], "The variants' optimizer (Adam's "
                "g / sqrt(v) amplifies rounding differences of near-zero gradients).",
                flag_values=f)
  d.DEFINE_string("out", "", "Also append the rows to this markdown table (created with a "
                  "header if missing), e.g. results/multihost_local.md.", flag_values=f)
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
          f"--config.model.optimizer={f.optimizer}", "--config.eval.metrics="]


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
  config.model.optimizer = f.optimizer
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
  floor_run = root / f"{variant}_one_process_fewer_devices"
  started = time.time()
  devices = f.processes * f.devices_per_process
  for workdir, count, tag in ((reference, devices, "reference"),
                              (floor_run, max(1, devices // 2), "floor")):
    with open(log_dir / f"{variant}_{tag}.log", "w") as log:
      done = subprocess.run(_train_args(f, variant, workdir), env=_env(count), stdout=log,
                            stderr=subprocess.STDOUT, timeout=3600,
                            cwd=pathlib.Path(__file__).resolve().parents[1])
    if done.returncode:
      raise RuntimeError(f"{variant}: the one-process {tag} run failed (exit "
                         f"{done.returncode}); see {log_dir / f'{variant}_{tag}.log'}")
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
  floor_step, floor_state = _final_state(variant, f, floor_run)
  assert ref_step == multi_step == floor_step == f.steps, (ref_step, multi_step, floor_step)
  summary = json.loads((multi / "summary.json").read_text())
  diffs = _largest_differences(ref_state, multi_state)
  floor = _largest_differences(ref_state, floor_state)
  allowed = {part: max(f.tolerance, f.floor_factor * floor[part]) for part in floor}
  return {"variant": variant, "processes": f.processes,
          "devices_per_process": f.devices_per_process, "global_batch": f.batch_size,
          "steps": f.steps, "killed_after_checkpoint": killed_at,
          "resumed_from": summary.get("resumed_from"), "optimizer": f.optimizer,
          "max_abs_diff": diffs, "noise_floor": floor,
          "noise_floor_devices": [devices, max(1, devices // 2)], "allowed": allowed,
          "within_tolerance": all(diffs[part] <= allowed[part] for part in diffs),
          "metrics_rows_written_by": "process 0" if (multi / "metrics.jsonl").exists() else None,
          "wall_s": round(time.time() - started, 1)}


def main(argv=None) -> int:
  f = common.parse_flags(argv, define_flags)
  if f.processes < 2 or f.devices_per_process < 1 or f.batch_size % (
      f.processes * f.devices_per_process):
    raise common.UsageError("--processes >= 2, and --batch_size divisible by processes x "
                            "devices_per_process.")
  root = pathlib.Path(f.workdir)
  for pattern in ("*_process", "*_fewer_devices"):
    for sub in root.glob(pattern) if root.exists() else ():
      shutil.rmtree(sub)
  ok, code = True, common.code_version()  # the code that runs (taken at start)
  for variant in f.variants:
    row = run_variant(f, variant, root)
    print(json.dumps(row), flush=True)
    ok &= row["within_tolerance"]
    if f.out:
      append_row(pathlib.Path(f.out), row, argv, code)
  return 0 if ok else 1


def append_row(path: pathlib.Path, row: dict, argv, code: str) -> None:
  """One line of the results table: largest differences from the one-process reference."""
  if not path.exists():
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "# Multi-process training on one machine vs one process\n\n"
        "Rows appended by `python -m experiments.multihost_local ... --out=<this file>` (the "
        "command of each row is in its last column). Largest absolute difference of any "
        "leaf from the one-process reference (all devices in one process, same global "
        "batch), for the multi-process run (one process killed with SIGKILL after a "
        "checkpoint, all resumed) and for the noise floor (one process with half the "
        "devices: float summation order only).\n\n"
        "| variant | optimizer | processes x devices | steps | killed after / resumed from |"
        " multi-process: params / batch stats / optimizer | noise floor: params / batch "
        "stats / optimizer | within | code | command |\n|---|---|---|---|---|---|---|---|---|---|\n")
  d, n = row["max_abs_diff"], row["noise_floor"]
  fmt = lambda x: " / ".join(f"{x[k]:.2g}" for k in ("params", "batch_stats", "opt_states"))  # noqa: E731
  command = "python -m experiments.multihost_local " + " ".join(
      a for a in argv if not a.startswith(("--workdir", "--out")))
  with path.open("a") as out:
    out.write(f"| {row['variant']} | {row['optimizer']} | {row['processes']} x "
              f"{row['devices_per_process']} | {row['steps']} | {row['killed_after_checkpoint']}"
              f" / {row['resumed_from']} | {fmt(d)} | {fmt(n)} | "
              f"{'yes' if row['within_tolerance'] else 'NO'} | {code} | "
              f"`{command.strip()}` |\n")


if __name__ == "__main__":
  common.run_main(main)
