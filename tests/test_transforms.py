"""Importance weighting and adversary activation as transforms over variants (Sec. 4)."""

import json
import os
import pathlib
import subprocess
import sys

import jax
import numpy as np
import pytest

from unigen_jax import config as config_lib
from unigen_jax import train_step
from unigen_jax import variants
from tests.test_refactor_equivalence import _digests, _git, REPO
from tests.test_train_step import TINY, make_batch

# The hand-written models the transforms replaced: IWGAN / IW-CGAN as of the reference of
# test_refactor_equivalence, AA-VAE / AA-CVAE / AA-SVAE (revision 2) as of this commit.
AA_REFERENCE = "44e42d6"
NEW = ["iw(infogan)", "iw(aae)", "iw(ali)", "iw(ada)", "aa(iwae)", "aa(avb)", "aa(wake_sleep)"]


@pytest.fixture(scope="module")
def aa_reference(tmp_path_factory):
  if _git("cat-file", "-e", f"{AA_REFERENCE}^{{commit}}").returncode != 0:
    pytest.skip(f"not a git checkout with commit {AA_REFERENCE}")
  target = tmp_path_factory.mktemp("aa_reference")
  archive = subprocess.run(["git", "archive", AA_REFERENCE, "unigen_jax"], cwd=REPO,
                           capture_output=True, check=True)
  subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
  return target


PAPER_TRANSFERS = {"iw(gan)": "iwgan", "iw(cgan)": "iwcgan", "aa(vae)": "aavae",
                   "aa(cvae)": "aacvae", "aa(svae)": "aasvae"}


def test_transforms_equal_the_hand_written_models_bitwise(aa_reference):
  """importance_weighted(gan) is IWGAN, adversary_activated(vae) is AA-VAE, bit for bit (the
  other three of the paper's five: the slow test below)."""
  _compare_with_hand_written(aa_reference, ("iw(gan)", "aa(vae)"))


@pytest.mark.slow
def test_all_five_paper_transfers_equal_the_hand_written_models_bitwise(aa_reference):
  _compare_with_hand_written(aa_reference, tuple(PAPER_TRANSFERS))


def _compare_with_hand_written(aa_reference, names):
  pairs = {name: PAPER_TRANSFERS[name] for name in names}
  built = _digests(REPO, list(pairs))
  hand_written = _digests(aa_reference, list(pairs.values()))
  for transformed, original in pairs.items():
    assert built[transformed] == hand_written[original], transformed


def test_undefined_transfers_say_why():
  with pytest.raises(ValueError, match="importance weighting .* undefined for 'vae'"):
    variants.get("iw(vae)")
  with pytest.raises(ValueError, match="adversary activation .* undefined for 'gan'"):
    variants.get("aa(gan)")
  with pytest.raises(ValueError, match="'aavae' is adversary-activated already"):
    variants.adversary_activated(variants.get("aavae"))
  with pytest.raises(ValueError, match="'iwgan' is importance-weighted already"):
    variants.importance_weighted(variants.get("iwgan"))


def test_new_transferred_variants_are_registered():
  """They train through tests/test_train_step.py (every registered variant takes steps there)."""
  assert set(NEW) <= set(variants.names())
  for name in NEW:
    model = train_step.build(name, **TINY)
    if name.startswith("aa("):
      assert "discriminator" in model.variant.modules
      assert model.variant.players[-1].role == "discriminator"
    else:
      assert model.variant.generator_objective == "importance_weighted"


def test_importance_weighting_changes_only_the_generator_side():
  """IW-ALI differs from ALI only in the inference/generation player's gradients."""
  batch = make_batch()
  out = {}
  for name in ("ali", "iw(ali)"):
    model = train_step.build(name, **TINY)
    state = model.init(jax.random.key(0))
    out[name], _ = train_step.make_train_step(model, donate=False)(state, batch, jax.random.key(1))
  jax.tree.map(np.testing.assert_array_equal, out["ali"].params["joint_discriminator"],
               out["iw(ali)"].params["joint_discriminator"])
  assert not np.allclose(jax.tree.leaves(out["ali"].params["generator"])[0],
                         jax.tree.leaves(out["iw(ali)"].params["generator"])[0])


def test_transforms_compose_with_the_config_and_the_command_line(tmp_path):
  config = config_lib.get_config("iw(infogan),mnist")
  resolved, model_cfg = config_lib.resolve_config(config)
  assert resolved.variant == "iw(infogan)" and resolved.data.binarization == "none"
  assert config_lib.get_config("aa(iwae)").data.binarization == "dynamic"
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(REPO))
  out = subprocess.run([sys.executable, "-m", "unigen_jax.main",
                        "--config=unigen_jax/configs/default.py:aa(iwae)", "--dry_run"],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0 and "variant: aa(iwae)" in out.stdout, out.stderr[-2000:]


def _check_sharded(checked):
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8",
             JAX_PLATFORMS="cpu")
  script = pathlib.Path(__file__).parent / "helpers" / "multidevice_check.py"
  out = subprocess.run([sys.executable, str(script), "2", "sgd", *checked], env=env,
                       capture_output=True, text=True, timeout=900)
  assert out.returncode == 0, out.stderr[-3000:]
  rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
  assert {(r["variant"], r["mode"]) for r in rows} == {
      (v, m) for v in checked for m in ("jit", "shard_map")}
  for row in rows:
    assert row["param_diff"] < 1e-6 and row["batch_stats_diff"] < 1e-5, row


# Slow: 8-device compiles of seven variants. The default suite keeps IWGAN's sharded step
# (test_train_step), whose Eq. 16 weights are normalised over the whole global batch; AA's
# Eq. 17 weights are per example, with no batch-wide normaliser to get wrong across shards.
@pytest.mark.slow
def test_every_new_transferred_variant_takes_sharded_steps():
  """New transferred variants: sharded jit and shard_map match one device (8 devices).

  With plain SGD, so the step's mathematics is compared and a difference is a real one
  (Adam's first step ``g / (|g| + eps)`` turns rounding noise of near-zero gradients into
  differences of up to the learning rate; ALI's encoder has such coordinates, with or
  without the importance weights: 5e-5 after two Adam steps, 7e-9 with SGD).
  """
  _check_sharded(NEW)


def test_every_registered_variant_is_in_the_readme_table():
  """The README's variant table lists every declared and every transformed variant."""
  text = (REPO / "README.md").read_text()
  rows = {line.split("`")[1] for line in text.splitlines() if line.startswith("| `")}
  # A fresh process: other tests register variants of their own in this one.
  names = json.loads(subprocess.run(
      [sys.executable, "-c", "import json; from unigen_jax import variants; "
       "print(json.dumps(variants.names()))"], cwd=REPO, capture_output=True, text=True,
      check=True).stdout)
  missing = [n for n in names if n not in rows]
  assert not missing, f"add these to the README's variant table: {missing}"
  assert set(NEW) <= rows
