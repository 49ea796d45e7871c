r"""Trains any registered variant on any dataset (also installed as ``unigen-train``).

  python -m unigen_jax.main --config=unigen_jax/configs/default.py:aavae,mnist_sample \
      --workdir=workdirs/aavae [--config.steps=3000 --config.model.width=32 ...]

Rerunning the same command in the same workdir resumes from the last good
checkpoint. ``--dry_run`` validates and prints the resolved config. Multi-host:
``--distributed`` (TPU pods, SLURM) or ``--coordinator_address``,
``--num_processes``, ``--process_id`` (see :mod:`unigen_jax.parallel`).

Exit codes: 0 done; 1 the disk is full or not writable; 2 a usage error (bad config,
data or flags, a workdir in use or holding another run); 3 non-finite values;
130 interrupted (a checkpoint was saved when training had started).
"""

import os
import signal
import sys


def _interrupt_during_start_up(signum, _frame):
  # Nothing has been written yet (training installs its own, saving handler first).
  os.write(2, f"interrupted ({signal.Signals(signum).name}) during start-up: nothing was "
              "trained or saved; rerun the same command.\n".encode())
  os._exit(130)  # pylint: disable=protected-access


# Installed before anything heavy is imported: SIGTERM during start-up ends with a word
# (exit 130) instead of silently; training replaces it with a handler that saves first.
signal.signal(signal.SIGTERM, _interrupt_during_start_up)

import json  # noqa: E402  pylint: disable=g-import-not-at-top,wrong-import-position

from absl import app  # noqa: E402  pylint: disable=wrong-import-position
from absl import flags  # noqa: E402  pylint: disable=wrong-import-position
from absl import logging as absl_logging  # noqa: E402  pylint: disable=wrong-import-position
from ml_collections import config_flags  # noqa: E402  pylint: disable=wrong-import-position

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Config file and argument, e.g. unigen_jax/configs/default.py:aavae.",
    lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics, samples.")
_ALLOW_CONFIG_CHANGE = flags.DEFINE_bool(
    "allow_config_change", False, "Resume a workdir whose stored config differs (config.json "
    "is rewritten only after its checkpoints were restored under the new config).")
_RESTART = flags.DEFINE_bool(
    "restart", False, "Start a workdir whose checkpoints are gone but whose metrics remain "
    "again from step 0, moving the old outputs to previous_<time>/.")
_DRY_RUN = flags.DEFINE_bool("dry_run", False, "Validate and print the resolved config; no training.")
_DISTRIBUTED = flags.DEFINE_bool("distributed", False,
                                 "Call jax.distributed.initialize() (TPU pod slices, SLURM).")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None, "host:port of process 0.")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Number of processes (hosts).")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index.")


def main(argv) -> int:
  try:
    return _main(argv)
  except KeyboardInterrupt as err:
    from unigen_jax import train  # pylint: disable=g-import-not-at-top
    if isinstance(err, train.TrainingInterrupted):
      print(f"interrupted: {err}", file=sys.stderr)
    else:
      print("interrupted (SIGINT) during start-up: nothing was trained or saved; rerun the "
            "same command.", file=sys.stderr)
    return 130


def _main(argv) -> int:
  if len(argv) > 1:
    print(f"error: unexpected arguments {argv[1:]}; flags are --config, --workdir, "
          "--config.<field>=<value>, ... (see --help).", file=sys.stderr)
    return 2
  # Orbax logs every save at INFO through absl; keep the console to warnings and our progress.
  absl_logging.set_verbosity(absl_logging.WARNING)
  if _DISTRIBUTED.value or _COORDINATOR.value:
    from unigen_jax import parallel  # pylint: disable=g-import-not-at-top
    parallel.initialize_distributed(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
  from unigen_jax import checkpointing  # pylint: disable=g-import-not-at-top
  from unigen_jax import input_pipeline  # pylint: disable=g-import-not-at-top
  from unigen_jax import train  # pylint: disable=g-import-not-at-top
  from unigen_jax import workdir as workdir_lib  # pylint: disable=g-import-not-at-top
  from unigen_jax import eval_classifier  # pylint: disable=g-import-not-at-top
  from unigen_jax import evaluator as evaluator_lib  # pylint: disable=g-import-not-at-top
  if _CONFIG.value is None or not _WORKDIR.value and not _DRY_RUN.value:
    print("error: pass --config=<file>[:<arg>] and --workdir=<dir>", file=sys.stderr)
    return 2
  try:
    if _DRY_RUN.value:
      config, model_cfg = train.resolve_config(_CONFIG.value)
      print(config)
      print(json.dumps(model_cfg.__dict__, indent=2, default=str))
      return 0
    summary = train.train_and_evaluate(_CONFIG.value, _WORKDIR.value,
                                       allow_config_change=_ALLOW_CONFIG_CHANGE.value,
                                       restart=_RESTART.value)
  except train.StorageError as err:
    print(f"error: {err.strerror}", file=sys.stderr)
    return 1
  except (train.ConfigError, input_pipeline.DataError, checkpointing.CheckpointError,
          workdir_lib.WorkdirError, evaluator_lib.EvaluationError,
          eval_classifier.ClassifierError) as err:
    print(f"error: {err}", file=sys.stderr)
    return 2
  except train.NonFiniteError as err:
    print(f"error: {err}", file=sys.stderr)
    return 3
  except Exception as err:  # pylint: disable=broad-except
    import jax  # pylint: disable=g-import-not-at-top
    if not isinstance(err, jax.errors.JaxRuntimeError) or jax.process_count() == 1:
      raise
    # Several processes: a collective whose peer died (or was killed) fails here.
    first = str(err).strip().splitlines()[0][:300]
    print(f"error: process {jax.process_index()} of {jax.process_count()}: a step failed, "
          f"probably because another process stopped ({first}). The checkpoints written so "
          "far are intact: rerun the same command on every process to resume.",
          file=sys.stderr)
    return 1
  print(json.dumps({k: summary[k] for k in ("variant", "final_step", "final_metrics",
                                            "steps_per_sec", "wall_time_s")}, indent=2))
  if "eval" in summary:
    print(json.dumps({"eval": summary["eval"]}, indent=2, default=str))
  return 0


def _flag_error_in_one_line(argv):
  """A bad flag or --config.<field> is one line and exit 2, not absl's traceback."""
  try:
    return flags.FLAGS(argv)
  except Exception as err:  # pylint: disable=broad-except
    text = " ".join(str(err).replace("\\n", " ").replace("\\'", "'").split())
    if len(text) > 1 and text[0] == text[-1] == "'":  # a KeyError's repr
      text = text[1:-1]
    print(f"error: {text} (the config fields are listed in unigen_jax/config.py; "
          "--dry_run prints them)", file=sys.stderr)
    sys.exit(2)


def run():
  app.run(lambda argv: sys.exit(main(argv)), flags_parser=_flag_error_in_one_line)


if __name__ == "__main__":
  run()
