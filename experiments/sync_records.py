r"""Brings finished run records from pinned worktrees into this checkout (and commits them).

  git worktree add ../exp_t3 <commit>      # a table runs there: edits here cannot change it
  (cd ../exp_t3 && python -m experiments.table3_vae --preset=cpu --mnist_dir=DIR --shard=0/2 &)
  python -m experiments.sync_records --source=../exp_t3 --commit --watch=300

A long table trains in a ``git worktree`` pinned to one commit, and each finished run writes
its record into *that* worktree's ``results/<table>/runs/``. Machines get replaced; a record
that only exists in a worktree is lost with it. This copies every record of a source that
this checkout lacks (``results/*/runs/*.json``) and, with ``--commit``, commits exactly those
files (and uncommitted records here of the same runs, e.g. written by a table rebuilt here
with ``--train=False`` from the shared workdirs), naming the commits that trained them. A
record that exists here with other content is never overwritten: it is reported, and the
exit code is 1. ``--watch=S`` repeats every S
seconds until interrupted.

The other direction seeds a worktree on a new machine: recreated at its pinned commit, it
lacks every record committed after that commit, and its table would train those runs again;
``--source=<this checkout> --dest=<worktree>`` (without ``--commit``) copies them in first.
"""

from __future__ import annotations

import filecmp
import json
import pathlib
import shutil
import subprocess
import sys
import time

from experiments import common


def define_flags(f):
  common.flags.DEFINE_multi_string("source", [], "A worktree (checkout) whose results/*/runs/ "
                                   "records to bring here; repeat for several.", flag_values=f)
  common.flags.DEFINE_string("dest", ".", "The checkout that receives them.", flag_values=f)
  common.flags.DEFINE_bool("commit", False, "git commit the new records (only them).",
                           flag_values=f)
  common.flags.DEFINE_integer("watch", 0, "Repeat every this many seconds (0: once).",
                              flag_values=f)


# Fields that say when and by which checkout a record was written, not what the run did: a
# table rebuilt elsewhere (``--train=False`` beside the shared workdirs) writes the same run's
# record with other values here.
RECORDING_FIELDS = ("recorded", "recorded_with_code")


def _same_run(a: pathlib.Path, b: pathlib.Path) -> bool:
  try:
    x, y = json.loads(a.read_text()), json.loads(b.read_text())
  except (OSError, ValueError):
    return False
  for field in RECORDING_FIELDS:
    x.pop(field, None)
    y.pop(field, None)
  return x == y


def _tracked(dest: pathlib.Path, path: pathlib.Path) -> bool:
  return subprocess.run(["git", "ls-files", "--error-unmatch", "--", str(path)], cwd=dest,
                        capture_output=True).returncode == 0


def sync(sources, dest: pathlib.Path) -> tuple[list[pathlib.Path], list[str]]:
  """Copies records of ``sources`` missing in ``dest``; returns (records to commit:
  the copied ones and uncommitted records here of the same runs, conflicts: records present
  in both with other content, left untouched)."""
  copied, conflicts = [], []
  for source in sources:
    source = pathlib.Path(source)
    if not (source / "results").is_dir():
      raise common.UsageError(f"--source={source} has no results/ folder: pass the root of a "
                              "checkout (the pinned worktree).")
    for record in sorted(source.glob("results/*/runs/*.json")):
      target = dest / record.relative_to(source)
      if target.exists():
        if filecmp.cmp(record, target, shallow=False) or _same_run(record, target):
          if not _tracked(dest, target) and target not in copied:
            copied.append(target)  # the same run, recorded here but never committed
        else:
          conflicts.append(str(target.relative_to(dest)))
        continue
      try:
        json.loads(record.read_text())
      except (OSError, ValueError):  # being written right now: the next pass takes it
        print(f"not copied yet, not readable JSON: {record}", file=sys.stderr)
        continue
      target.parent.mkdir(parents=True, exist_ok=True)
      shutil.copyfile(record, target)
      copied.append(target)
  return copied, conflicts


def commit(dest: pathlib.Path, copied: list[pathlib.Path]) -> str:
  """Commits exactly ``copied``; returns the message."""
  trained = sorted({json.loads(p.read_text()).get("trained_with_code", "unknown")
                    for p in copied})
  names = " ".join(p.name for p in copied)
  message = f"Run records from the pinned worktrees (trained_with_code {trained}): {names}"
  paths = [str(p.relative_to(dest)) for p in copied]
  subprocess.run(["git", "add", "--"] + paths, cwd=dest, check=True)
  # Only these paths: whatever else is staged in the checkout stays out of this commit.
  subprocess.run(["git", "commit", "-q", "-m", message, "--"] + paths, cwd=dest, check=True)
  return message


def main(argv=None) -> int:
  f = common.parse_flags(argv, define_flags)
  if not f.source:
    raise common.UsageError("pass --source=WORKTREE (one or more).")
  dest = pathlib.Path(f.dest).resolve()
  while True:
    copied, conflicts = sync(f.source, dest)
    for conflict in conflicts:
      print(f"not copied, differs from the record here: {conflict}", file=sys.stderr)
    if copied:
      print(commit(dest, copied) if f.commit else
            "copied or uncommitted here: " + " ".join(str(p.relative_to(dest)) for p in copied),
            flush=True)
    if not f.watch:
      return 1 if conflicts else 0
    time.sleep(f.watch)


if __name__ == "__main__":
  common.run_main(main)
