"""experiments.sync_records: records come home from pinned worktrees, nothing is overwritten."""

import json
import subprocess

import pytest

from experiments import common
from experiments import sync_records


def _git(cwd, *args):
  return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                        text=True).stdout


def _record(path, **fields):
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(json.dumps(dict({"trained_with_code": "abc1234"}, **fields)))


def test_new_records_are_copied_and_committed_alone(tmp_path):
  source, dest = tmp_path / "worktree", tmp_path / "main"
  dest.mkdir()
  _git(dest, "init", "-q")
  _git(dest, "config", "user.email", "t@example.com")
  _git(dest, "config", "user.name", "t")
  _record(dest / "results/t3/runs/old.json", value=1)
  (dest / "other.txt").write_text("staged, not a record")
  _git(dest, "add", ".")
  _git(dest, "commit", "-q", "-m", "start")
  _record(source / "results/t3/runs/old.json", value=1)          # the same: nothing to do
  _record(source / "results/t3/runs/new.json", value=2)          # missing here: copied
  _record(source / "results/t2/runs/curve.json", value=3, trained_with_code="def5678")
  (dest / "other.txt").write_text("changed and staged")
  _git(dest, "add", "other.txt")
  assert sync_records.main([f"--source={source}", f"--dest={dest}", "--commit"]) == 0
  assert json.loads((dest / "results/t3/runs/new.json").read_text())["value"] == 2
  message = _git(dest, "log", "-1", "--format=%s")
  assert "['abc1234', 'def5678']" in message and "new.json" in message and "curve.json" in message
  assert sorted(_git(dest, "show", "--name-only", "--format=", "HEAD").split()) == [
      "results/t2/runs/curve.json", "results/t3/runs/new.json"]
  assert _git(dest, "diff", "--cached", "--name-only").split() == ["other.txt"]  # still staged
  # A second pass finds nothing new and commits nothing.
  assert sync_records.main([f"--source={source}", f"--dest={dest}", "--commit"]) == 0
  assert _git(dest, "log", "-1", "--format=%s") == message
  # The same run recorded here by another checkout (a table rebuilt with --train=False),
  # never committed: not a conflict; it is committed as it is, not replaced.
  _record(source / "results/t3/runs/rebuilt.json", value=4, recorded="10:00",
          recorded_with_code="abc1234")
  _record(dest / "results/t3/runs/rebuilt.json", value=4, recorded="10:05",
          recorded_with_code="fff0000")
  assert sync_records.main([f"--source={source}", f"--dest={dest}", "--commit"]) == 0
  assert _git(dest, "show", "--name-only", "--format=", "HEAD").split() == [
      "results/t3/runs/rebuilt.json"]
  assert json.loads((dest / "results/t3/runs/rebuilt.json").read_text())["recorded"] == "10:05"
  head = _git(dest, "rev-parse", "HEAD")
  assert sync_records.main([f"--source={source}", f"--dest={dest}", "--commit"]) == 0
  assert _git(dest, "rev-parse", "HEAD") == head  # committed now: nothing more to do


def test_a_differing_record_is_never_overwritten(tmp_path, capsys):
  source, dest = tmp_path / "worktree", tmp_path / "main"
  _record(dest / "results/t3/runs/run.json", value=1)
  _record(source / "results/t3/runs/run.json", value=2)
  (source / "results/t3/runs/partial.json").write_text('{"trained_with')  # being written
  assert sync_records.main([f"--source={source}", f"--dest={dest}"]) == 1
  assert json.loads((dest / "results/t3/runs/run.json").read_text())["value"] == 1
  assert not (dest / "results/t3/runs/partial.json").exists()
  err = capsys.readouterr().err
  assert "differs from the record here: results/t3/runs/run.json" in err
  assert "not readable JSON" in err


def test_a_source_that_is_no_checkout_is_one_clear_error(tmp_path):
  with pytest.raises(common.UsageError, match="no results/ folder"):
    sync_records.main([f"--source={tmp_path / 'nowhere'}", f"--dest={tmp_path}"])
  with pytest.raises(common.UsageError, match="--source"):
    sync_records.main([f"--dest={tmp_path}"])


def test_a_worktree_recreated_at_its_pinned_commit_is_seeded_with_later_records(tmp_path):
  """A new machine: the worktree at the table's pinned commit lacks the records committed
  since; syncing from the checkout copies them in (so the table reuses them instead of
  training them again), and syncing back afterwards commits nothing."""
  main = tmp_path / "main"
  main.mkdir()
  for args in (("init", "-q"), ("config", "user.email", "t@example.com"),
               ("config", "user.name", "t")):
    _git(main, *args)
  _record(main / "results/t3/runs/first.json", value=1)
  _git(main, "add", ".")
  _git(main, "commit", "-q", "-m", "pinned")
  pinned = _git(main, "rev-parse", "HEAD").strip()
  _record(main / "results/t3/runs/later.json", value=2)  # finished and committed after the pin
  _git(main, "add", ".")
  _git(main, "commit", "-q", "-m", "later record")
  worktree = tmp_path / "exp_t3"
  _git(main, "worktree", "add", "-q", "--detach", str(worktree), pinned)
  assert not (worktree / "results/t3/runs/later.json").exists()
  assert sync_records.main([f"--source={main}", f"--dest={worktree}"]) == 0
  assert json.loads((worktree / "results/t3/runs/later.json").read_text())["value"] == 2
  assert _git(worktree, "rev-parse", "HEAD").strip() == pinned  # the pinned code, unchanged
  head = _git(main, "rev-parse", "HEAD")
  assert sync_records.main([f"--source={worktree}", f"--dest={main}", "--commit"]) == 0
  assert _git(main, "rev-parse", "HEAD") == head
