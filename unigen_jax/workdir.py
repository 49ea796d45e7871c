"""A run's directory: an exclusive lock, atomic file writes, and its ``log.txt``.

Only one training process may own a workdir at a time. :class:`WorkdirLock` takes an
``fcntl`` lock on ``W/.lock`` (released by the kernel when the process ends, however it
ends, so a lock left by a killed run is never stale) and writes who holds it; a second run
gets one clear error naming the other process. Under multi-host training only process 0
takes it (the other processes write nothing to the workdir).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import pathlib
import signal
import socket
import sys
import time
from typing import Any


class WorkdirError(RuntimeError):
  """The workdir cannot be used as asked; the message names the fix."""


class StorageError(OSError):
  """The disk is full or not writable; the message names the fix."""


class WorkdirLock:
  """Exclusive, non-blocking lock of a workdir for the life of this object (or ``with``)."""

  def __init__(self, workdir: pathlib.Path):
    self.workdir = pathlib.Path(workdir)
    self.path = self.workdir / ".lock"
    self._fd = None

  def acquire(self) -> "WorkdirLock":
    try:
      self.workdir.mkdir(parents=True, exist_ok=True)
      fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
    except FileExistsError:
      raise WorkdirError(f"--workdir {self.workdir} exists and is not a directory; pass a "
                         "directory path.") from None
    except NotADirectoryError:
      raise WorkdirError(f"--workdir {self.workdir}: a parent of it is a file, not a "
                         "directory; pass a directory path.") from None
    except PermissionError:
      raise WorkdirError(f"--workdir {self.workdir} is not writable (permission denied); pass "
                         "a directory you can write to.") from None
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
      os.close(fd)
      if err.errno not in (errno.EAGAIN, errno.EACCES):
        raise
      holder = self.holder()
      who = (f"process {holder.get('pid')} on {holder.get('host')} since {holder.get('since')} "
             f"({holder.get('command', '?')})") if holder else "another process"
      raise WorkdirError(f"{self.workdir} is in use by {who}. Wait for it to finish, stop it, "
                         "or use another --workdir.") from None
    info = {"pid": os.getpid(), "host": socket.gethostname(),
            "since": time.strftime("%Y-%m-%d %H:%M:%S"), "command": " ".join(sys.argv)[:300]}
    os.ftruncate(fd, 0)
    os.write(fd, json.dumps(info).encode())
    os.fsync(fd)
    self._fd = fd
    return self

  def holder(self) -> dict:
    try:
      return json.loads(self.path.read_text() or "{}")
    except (OSError, ValueError):
      return {}

  def release(self) -> None:
    if self._fd is not None:
      fcntl.flock(self._fd, fcntl.LOCK_UN)
      os.close(self._fd)
      self._fd = None

  def __enter__(self):
    return self.acquire()

  def __exit__(self, *exc):
    self.release()


def write_json_atomic(path: pathlib.Path, data: Any, **kwargs) -> None:
  """Writes JSON to ``path`` through a temporary file and a rename: never half a file."""
  path = pathlib.Path(path)
  tmp = path.with_name(path.name + ".tmp")
  with open(tmp, "w") as f:
    json.dump(data, f, **kwargs)
    f.flush()
    os.fsync(f.fileno())
  tmp.replace(path)


def append_log(workdir: pathlib.Path, message: str) -> None:
  """Appends a time-stamped line to ``W/log.txt`` (details kept out of the console)."""
  with open(pathlib.Path(workdir) / "log.txt", "a") as f:
    f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")


@contextlib.contextmanager
def stop_on_signals(flag: dict):
  """SIGINT/SIGTERM set a flag; the loop saves a checkpoint and stops cleanly."""
  previous = {}

  def handler(signum, _frame):
    flag["signal"] = signal.Signals(signum).name

  for sig in (signal.SIGINT, signal.SIGTERM):
    try:
      previous[sig] = signal.signal(sig, handler)
    except ValueError:  # not the main thread: leave signals alone
      pass
  try:
    yield
  finally:
    for sig, old in previous.items():
      signal.signal(sig, old)


@contextlib.contextmanager
def storage_errors(workdir: pathlib.Path):
  """A full disk or a read-only file system: one clear error, not a cascade of tracebacks."""
  try:
    yield
  except OSError as err:
    if err.errno in (errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EACCES):
      raise StorageError(err.errno, f"cannot write to {workdir} ({err.strerror}): free space or "
                         "fix the permissions, then rerun the same command; it resumes from the "
                         "last checkpoint.") from None
    raise
  except Exception as err:
    if "No space left" in str(err):
      raise StorageError(errno.ENOSPC, f"cannot write to {workdir} (no space left on device): "
                         "free space, then rerun the same command; it resumes from the last "
                         "checkpoint.") from None
    raise
