"""A refactor does not change numerics: fixed-seed steps are bitwise those of the code before it.

The reference is the commit before the configuration / evaluation / variant-hook
restructuring (``REFERENCE``), checked out from this repository's own history into a
temporary folder and run in a subprocess on the same machine, so the comparison does not
depend on the hardware or the XLA version. The AA models are excluded on purpose: their
revision 2 (Bernoulli samples, batch statistics from real data, a label-conditioned AA-CVAE
discriminator) changes what they compute, and old checkpoints of them are refused.
"""

import json
import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
REFERENCE = "c96849f"  # before the restructuring of this change set
CHANGED_ON_PURPOSE = {"aavae", "aacvae", "aasvae"}
HELPER = REPO / "tests" / "helpers" / "step_digests.py"


def _git(*args, **kwargs):
  return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, **kwargs)


@pytest.fixture(scope="module")
def reference_checkout(tmp_path_factory):
  if _git("cat-file", "-e", f"{REFERENCE}^{{commit}}").returncode != 0:
    pytest.skip(f"not a git checkout with commit {REFERENCE} (e.g. an sdist)")
  target = tmp_path_factory.mktemp("reference")
  archive = subprocess.run(["git", "archive", REFERENCE, "unigen_jax"], cwd=REPO,
                           capture_output=True, check=True)
  subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
  return target


def _digests(checkout: pathlib.Path, variants) -> dict:
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(checkout))
  out = subprocess.run([sys.executable, str(HELPER), *variants], env=env, capture_output=True,
                       text=True, timeout=1200, cwd=checkout)
  assert out.returncode == 0, out.stderr[-3000:]
  return json.loads(out.stdout)


def _compare(reference_checkout, variants):
  before = _digests(reference_checkout, variants)
  after = _digests(REPO, variants)
  assert before.pop("jax") == after.pop("jax")
  assert after == before


def test_fixed_seed_steps_are_bitwise_those_of_the_reference_commit(reference_checkout):
  # The IWAE at the benchmark's MLP size too: the likelihood's layout change (trailing
  # size-1 axes dropped) was bitwise at the tiny size but not in one flat-layout attempt here.
  _compare(reference_checkout, ["vae", "cgan", "iwae@pythae_mlp"])  # the rest: slow test


@pytest.mark.slow
def test_every_unchanged_variant_is_bitwise_that_of_the_reference_commit(reference_checkout):
  from unigen_jax import variants
  # Transformed variants (iw(...), aa(...)) did not exist at the reference commit; the
  # transforms' own tests compare them bitwise with the hand-written declarations.
  declared = {name for name in variants.names() if "(" not in name}
  _compare(reference_checkout, sorted(declared - CHANGED_ON_PURPOSE)
           + ["vae@pythae_mlp", "cvae@pythae_mlp", "svae@pythae_mlp"])
