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


def test_every_install_hint_names_a_declared_extra():
  """Error messages and docs that say `pip install -e '.[X]'` name extras that exist."""
  import configparser  # pylint: disable=g-import-not-at-top
  cfg = configparser.ConfigParser()
  cfg.read(REPO / "setup.cfg")
  declared = set(cfg["options.extras_require"])
  files = [REPO / "README.md", REPO / ".ci" / "run", *REPO.glob("unigen_jax/**/*.py"),
           *REPO.glob("experiments/*.py"), *REPO.glob("benchmarks/*.py"),
           *REPO.glob("tests/*.py"), *REPO.glob("examples/*.py")]
  bad = []
  for path in files:
    for extras in re.findall(r"\.\[([a-z0-9_,-]+)\]", path.read_text()):
      bad += [f"{path.relative_to(REPO)}: [{e}]" for e in extras.split(",") if e not in declared]
  assert not bad, f"install hints naming undeclared extras (declared: {sorted(declared)}): {bad}"


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


@pytest.mark.slow
def test_base_install_without_extras_gives_the_losses_models_and_step(tmp_path):
  """`pip install .` (no extras) in a fresh venv: the losses import nothing heavy, and the
  models, variants and the compiled step work without the training extras."""
  venv = tmp_path / "venv"
  env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
  subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=env)
  done = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(REPO)], env=env,
                        capture_output=True, text=True, timeout=3000)
  assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
  code = ("import sys, time; t = time.perf_counter(); import unigen_jax.losses; "
          "dt = time.perf_counter() - t; heavy = sorted(m for m in ('tensorflow_datasets', "
          "'tensorflow', 'orbax', 'matplotlib', 'tensorboardX', 'flax', 'optax', "
          "'ml_collections', 'absl', 'grain') if m in sys.modules); "
          "import jax; from unigen_jax import train_step; model = train_step.build('iwgan', "
          "width=4); state = model.init(jax.random.key(0)); import numpy as np; "
          "step = train_step.make_train_step(model); "
          "state, m = step(state, {'image': np.zeros((8, 28, 28, 1), np.float32)}, "
          "jax.random.key(1)); print(heavy, round(dt, 2), sorted(m))")
  out = subprocess.run([str(venv / "bin" / "python"), "-c", code], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  heavy, rest = out.stdout.split("]", 1)
  assert heavy == "[", out.stdout  # nothing heavy imported by the losses
  assert "generator/loss" in rest and "iw_ess" in rest
  missing = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "import importlib.util as u; print([m for m in ('ml_collections', "
                            "'matplotlib', 'tensorboardX', 'tensorflow_datasets', 'mlxtend') "
                            "if u.find_spec(m)])"], capture_output=True, text=True, env=env)
  assert missing.stdout.strip() == "[]", missing.stdout  # the extras were not installed
  print(f"base install: import unigen_jax.losses {rest.split()[0]} s")
