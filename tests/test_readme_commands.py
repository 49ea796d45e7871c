"""The README's two set-up commands, exactly as written, in a fresh venv with its own pip.

Slow (a full install from the package registry): ``python -m pytest -m slow
tests/test_readme_commands.py``. The commands are read from the README, so the test checks
what a new user copies; only the venv's location changes, and the main job runs at a tiny
size (``--steps=4 --width=4``; the flags are the quickstart's own).
"""

import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]


def readme_commands() -> dict:
  text = (REPO / "README.md").read_text()
  blocks = re.findall(r"```bash\n(python3 -m venv .venv && [^\n]+)\n```", text)
  commands = {}
  for block in blocks:
    if "experiments.quickstart" in block:
      commands["main"] = block
    elif "pytest" in block:
      commands["tests"] = block
  return commands


def test_readme_has_the_two_commands_ci_runs_the_test_one():
  commands = readme_commands()
  assert set(commands) == {"main", "tests"}
  ci = (REPO / ".ci" / "run").read_text()
  assert commands["tests"] in ci  # .ci/run calls exactly the README's test command
  for command in commands.values():
    # Extras without '_', '-' or '.': pip 23 does not match a normalised extra name.
    for extra in re.findall(r'\.\[([^\]]+)\]', command):
      assert re.fullmatch(r"[a-z0-9,]+", extra), extra


@pytest.mark.slow
def test_readme_commands_work_in_a_fresh_venv_with_its_own_pip(tmp_path):
  clone = tmp_path / "clone"
  subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
  # Uncommitted changes of this checkout are what is being tested: copy the tracked files.
  tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True,
                           check=True).stdout.split()
  for name in tracked:
    if (REPO / name).is_file():
      (clone / name).parent.mkdir(parents=True, exist_ok=True)
      shutil.copy2(REPO / name, clone / name)
  env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
  env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if ".venv" not in p)
  commands = readme_commands()
  main = commands["main"] + " --steps=4 --width=4 --workdir=workdirs/readme"
  out = subprocess.run(["bash", "-c", main], cwd=clone, env=env, capture_output=True, text=True,
                       timeout=3000)
  assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
  assert "does not provide the extra" not in out.stdout + out.stderr
  assert (clone / "workdirs" / "readme" / "comparison.md").exists()
  pip = subprocess.run([str(clone / ".venv" / "bin" / "pip"), "--version"], capture_output=True,
                       text=True).stdout
  print(f"fresh venv pip: {pip}; python: {sys.version.split()[0]}")
  tests = commands["tests"].replace("python -m pytest -q -n auto",
                                    "python -m pytest -q --collect-only")
  out = subprocess.run(["bash", "-c", tests], cwd=clone, env=env, capture_output=True, text=True,
                       timeout=3000)
  assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
  assert "does not provide the extra" not in out.stdout + out.stderr
  assert re.search(r"\d+ tests collected", out.stdout)
