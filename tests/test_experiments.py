"""Experiment scripts: smoke sizes end to end, their protocol, statistics and records."""

import dataclasses
import json
import pathlib
import shutil

import numpy as np
import pytest

from experiments import common
from experiments import kl_directions
from experiments import stats
from experiments import table2_gan
from experiments import table3_vae
from tests.test_input_pipeline import make_idx_folder
from unigen_jax import config as config_lib

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def fake_mnist(tmp_path_factory):
  folder = tmp_path_factory.mktemp("fake_mnist")
  make_idx_folder(folder, n_train=1200, n_test=100)
  return str(folder)


def test_sample_std_and_tests_against_hand_values():
  values = [1.0, 2.0, 4.0]
  mean, std = stats.mean_std(values)
  assert mean == pytest.approx(7 / 3) and std == pytest.approx(np.sqrt(7 / 3))  # ddof=1
  assert np.isnan(stats.mean_std([3.0])[1])
  assert stats.fmt(values) == "2.33 ± 1.53 (n=3)"
  # Paired t-test of differences d = (1, 2, 3): t = mean / (sd / sqrt(n)) = 2 / (1 / sqrt 3).
  from scipy import stats as scipy_stats
  t = 2 / (1 / np.sqrt(3))
  assert stats.paired([2, 4, 6], [1, 2, 3]) == pytest.approx(2 * scipy_stats.t.sf(t, 2))
  # Welch: equal sizes and variances reduce to Student's t with 2n-2 dof.
  a, b = [1.0, 2.0, 3.0], [2.0, 3.0, 4.0]
  t = -1 / np.sqrt(1 / 3 + 1 / 3)
  assert stats.welch(a, b) == pytest.approx(2 * scipy_stats.t.sf(abs(t), 4))
  assert stats.welch([1.0], b) is None and stats.paired([1.0], [2.0]) is None
  assert stats.verdict(+0.5, 0.01) == "yes" and stats.verdict(-0.5, 0.01) == "no (reversed)"
  assert stats.verdict(+0.5, 0.2) == "not significant"
  assert stats.interim("yes", 2, 5) == "interim, 2 of 5 seeds: yes"
  assert stats.interim("not significant", 5, 5) == "not significant"
  # The paper's IS gap (0.11) with a seed std of 0.05 needs ~5 seeds per arm, with 0.1 ~14.
  assert 4 <= stats.seeds_for_power(0.05, 0.11) <= 6
  assert 13 <= stats.seeds_for_power(0.10, 0.11) <= 16


def test_paired_by_seed_uses_the_common_seeds_only():
  # a on seeds 0, 1, 2; b on 2, 1, 5: the pairs are seed 1 (2 vs 1) and seed 2 (3 vs 0.5).
  test = stats.paired_by_seed([1.0, 2.0, 3.0], [0, 1, 2], [0.5, 1.0, 9.0], [2, 1, 5])
  assert test["n"] == 2 and test["diff"] == pytest.approx(1.75)
  assert test["p"] == pytest.approx(stats.paired([2.0, 3.0], [1.0, 0.5]))
  assert stats.paired_by_seed([1.0], [0], [2.0], [1]) is None


def test_kl_directions_smoke(tmp_path):
  assert kl_directions.main([f"--out={tmp_path}", "--preset=smoke"]) == 0
  result = json.loads((tmp_path / "kl_directions.json").read_text())
  # Lemma 1: one generator step moves p_theta towards q^r(x|y=0).
  assert result["lemma1"]["kl_p1_qr"] < result["lemma1"]["kl_p0_qr"]
  assert (tmp_path / "kl_directions.png").stat().st_size > 10000


def test_table3_plan_follows_the_protocol():
  """1% / 10% of the 60,000 from the 50,000 outside validation; SVAE weights per Kingma."""
  plan = table3_vae.Plan(table3_vae.PRESETS["cpu"], "/data", True, False)
  vae = plan.config("vae", "1%", 3)
  assert (vae.data.split, vae.data.num_examples, vae.seed) == ("train_minus_validation", 600, 3)
  assert vae.validation.select == "elbo" and vae.validation.every > 0 and vae.eval.metrics == "elbo"
  assert plan.config("cvae", "10%", 0).data.num_examples == 6000
  full = plan.config("aavae", "100%", 0, discriminator_rate=1e-5)
  assert full.data.split == "train" and full.validation.every == 0
  assert full.model.discriminator_learning_rate == 1e-5
  assert plan.config("aavae_frozen", "1%", 0).model.discriminator_learning_rate == 0.0
  svae = plan.config("svae", "1%", 0)
  assert svae.data.num_labelled == 600 and svae.data.num_examples is None
  assert svae.model.svae_alpha == 0.1
  assert svae.model.svae_labelled_weight == pytest.approx(600 / 50000)
  assert svae.model.svae_unlabelled_weight == pytest.approx(49400 / 50000)
  selection = plan.config("aacvae", "1%", 100, discriminator_rate=1e-4, evaluate_test=False)
  assert selection.eval.metrics == ""  # the test set is never touched by a selection run
  runs = plan.selection_runs(["1%"], {"aavae"})
  assert {r.seed for r in runs} == {100, 101} and all(r.role == "selection" for r in runs)
  assert not {r.seed for r in runs} & set(range(5))  # disjoint from the final seeds
  finals = plan.final_runs(["aavae", "aasvae", "vae"], ["1%"],
                           {("aavae", "1%"): 1e-5, ("svae", "1%"): 30.0})
  assert {r.config.model.discriminator_learning_rate for r in finals if r.group != "vae"} == {1e-5}
  assert {r.config.model.svae_alpha for r in finals if r.group == "aasvae"} == {30.0}
  assert len([r for r in finals if r.group == "vae"]) == 5
  assert len([r for r in finals if r.group == "aasvae"]) == 5


def test_table3_svae_alpha_selection_runs_change_alpha_only():
  """One selection run per alpha (Kingma's 0.1 among them) and selection seed, on validation
  only; the semi-supervised finals are planned only once their column's alpha is chosen."""
  plan = table3_vae.Plan(table3_vae.PRESETS["cpu"], "/data", True, False)
  runs = plan.svae_selection_runs(["1%", "10%"])
  assert table3_vae.KINGMA_ALPHA in plan.preset.svae_alphas
  assert len(runs) == 2 * len(plan.preset.svae_alphas)
  assert all(r.role == "selection" and r.config.eval.metrics == "" for r in runs)
  assert not {r.seed for r in runs} & set(range(5))
  flat = config_lib.flatten
  for run in runs:
    final = flat(plan.config("svae", run.column, run.seed))
    differs = {k for k, v in flat(run.config).items() if final[k] != v}
    assert differs <= {"model.svae_alpha", "eval.metrics"}, differs
    assert run.config.model.svae_alpha == float(run.group.split("@")[1])
    assert run.config.validation.select == "elbo" and run.config.validation.metrics == ""
  assert plan.final_runs(["svae", "aasvae"], ["1%"], {("aavae", "1%"): 1e-5}) == []
  finals = plan.final_runs(["svae"], ["1%", "10%"], {("svae", "1%"): 10.0})
  assert {(r.column, r.config.model.svae_alpha) for r in finals} == {("1%", 10.0)}


def _selection_record(best_step, bound, accuracy_by_step):
  curve = [{"step": s, "val/elbo": bound - 1.0 if s != best_step else bound,
            "val/svae_accuracy": a} for s, a in accuracy_by_step.items()]
  return {"validation": {"best": bound, "best_step": best_step}, "curve": curve}


def test_table3_svae_alpha_is_chosen_by_validation_accuracy_not_by_the_bound():
  """A collapsed classifier (accuracy 0.1) with the best validation bound loses to a learning
  one; the accuracy is read at the step the run's bound selected, not its last or best one."""
  preset = dataclasses.replace(table3_vae.PRESETS["cpu"], svae_alphas=(0.1, 10.0, 30.0),
                               svae_selection_seeds={"1%": (100, 101)})
  plan = table3_vae.Plan(preset, "/data", True, False)
  name = lambda a, s: f"select_svae_alpha{a:g}_1pct_seed{s}"  # noqa: E731
  records = {
      name(0.1, 100): _selection_record(500, -118.0, {250: 0.1, 500: 0.1}),
      name(0.1, 101): _selection_record(500, -119.0, {250: 0.1, 500: 0.1}),
      # Best accuracy (0.99) at step 250, but its bound selected step 500 (0.80): 0.80 counts.
      name(10.0, 100): _selection_record(500, -135.0, {250: 0.99, 500: 0.80}),
      name(10.0, 101): _selection_record(500, -136.0, {250: 0.99, 500: 0.80}),
      name(30.0, 100): _selection_record(250, -146.0, {250: 0.90, 500: 0.95}),
      name(30.0, 101): _selection_record(250, -147.0, {250: 0.92, 500: 0.95}),
  }
  chosen, lines = table3_vae.choose_alphas(plan, records, ["1%", "10%"])
  assert chosen == {("svae", "1%"): 30.0}  # 10% has no selection records: nothing chosen
  assert lines == ["| svae | 1% | 0.1: 0.1000 / -118.50, 10: 0.8000 / -135.50, "
                   "30: 0.9100 / -146.50 (chosen) |"]
  del records[name(30.0, 101)]
  assert table3_vae.choose_alphas(plan, records, ["1%"])[0] == {}  # a seed missing: wait
  records[name(30.0, 101)] = {"validation": {"best": -1.0, "best_step": 250}, "curve": []}
  with pytest.raises(ValueError, match="no validation accuracy"):
    table3_vae.choose_alphas(plan, records, ["1%"])


def test_table3_plan_reproduces_every_committed_record_fingerprint():
  """The committed Table 3 records were trained from configs this code still plans: a change
  to the plan that would retrain (or silently mix) a finished run fails here."""
  runs_dir = REPO / "results" / "table3_vae_cpu" / "runs"
  records = {p.stem: json.loads(p.read_text()) for p in runs_dir.glob("*.json")}
  if not records:
    pytest.skip("no committed Table 3 records")
  plan = table3_vae.Plan(table3_vae.PRESETS["cpu"], "/data", True, False)
  selection = plan.selection_runs(["1%", "10%"]) + plan.svae_selection_runs(["1%", "10%"])
  chosen, _ = table3_vae.choose_rates(plan, records, ["1%", "10%"])
  chosen.update(table3_vae.choose_alphas(plan, records, ["1%", "10%"])[0])
  finals = plan.final_runs(list(table3_vae.PAPER) + list(table3_vae.CONTROLS.values()),
                           list(table3_vae.COLUMNS), chosen)
  planned = {r.name: r for r in selection + finals + plan.gap_runs()}
  assert set(records) <= set(planned), sorted(set(records) - set(planned))
  for name, record in records.items():
    assert record["fingerprint"] == planned[name].fingerprint(), name


def test_table3_tests_the_semi_supervised_pair_on_accuracy_and_bound():
  """AA-SVAE vs SVAE is tested on both claimed orderings, the bound and q(y|x)'s accuracy,
  paired by seed; the other pairs on the bound only; the frozen-discriminator control against
  its AA model and against the base."""
  plan = table3_vae.Plan(table3_vae.PRESETS["cpu"], "/data", True, False)
  chosen = {("svae", "1%"): 10.0, ("aavae", "1%"): 1e-6, ("aacvae", "1%"): 1e-6}
  models = ["vae", "aavae", "aavae_frozen", "svae", "aasvae"]
  finals = plan.final_runs(models, ["1%"], chosen)
  svae_acc, aasvae_acc = [0.950, 0.955, 0.951], [0.953, 0.958, 0.955]
  records = {}
  for r in finals:
    if r.seed > 2 and r.group in ("svae", "aasvae"):
      continue  # 3 of 5 seeds done (vae / aavae: all 5)
    ev = {"test_elbo": -100.0 - r.seed + (0.25 if r.group.endswith("_frozen") else
                                           0.5 if r.group.startswith("aa") else 0.0)}
    if r.group in ("svae", "aasvae"):
      ev["svae_accuracy"] = (aasvae_acc if r.group == "aasvae" else svae_acc)[r.seed]
    records[r.name] = {"seed": r.seed, "eval": ev}
  data = {"pairs": []}
  text = "\n".join(table3_vae._comparison_lines(records, finals, models, data))
  diff = np.subtract(aasvae_acc, svae_acc)
  t = diff.mean() / (diff.std(ddof=1) / np.sqrt(3))
  from scipy import stats as scipy_stats  # the paired t-test from its definition
  p = 2 * scipy_stats.t.sf(abs(t), df=2)
  assert f"| aasvae > svae | 1% | test accuracy | +0.0033 (n=3) | {p:.2g} |" in text
  # 3 of the 5 planned seeds: the verdict is marked interim.
  assert ("| aasvae > svae | 1% | test bound (nats) | +0.50 (n=3) | <1e-4 | interim, 3 of 5 "
          "seeds: yes |") in text
  assert "| aavae > vae | 1% | test bound (nats) | +0.50 (n=5) | <1e-4 | yes |" in text
  assert "| aavae > vae | 1% | test accuracy" not in text
  assert "| aavae > aavae_frozen | 1% | test bound (nats) | +0.25 (n=5) | <1e-4 | yes |" in text
  assert "| aavae_frozen > vae | 1% | test bound (nats) | +0.25 (n=5) | <1e-4 | yes |" in text
  assert [(d["better"], d["worse"], d["metric"]) for d in data["pairs"]] == [
      ("aavae", "vae", "test_elbo"), ("aasvae", "svae", "test_elbo"),
      ("aasvae", "svae", "svae_accuracy"), ("aavae", "aavae_frozen", "test_elbo"),
      ("aavae_frozen", "vae", "test_elbo")]


def test_table3_figure_shows_the_semi_supervised_accuracy_beside_its_bound(tmp_path):
  """The semi-supervised rows are compared on q(y|x)'s accuracy too: the figure gives them an
  accuracy panel right after their bound panel (the other rows: the bound only), and draws it."""
  plan = table3_vae.Plan(table3_vae.PRESETS["cpu"], "/data", True, False)
  chosen = {("svae", "1%"): 10.0, ("aavae", "1%"): 1e-6}
  finals = plan.final_runs(["vae", "aavae", "svae", "aasvae"], ["1%"], chosen)
  curve = [{"step": s, "val/elbo": -100.0 + s / 1000, "val/svae_accuracy": 0.9 + s / 1e5}
           for s in (250, 500, 750)]
  records = {r.name: {"seed": r.seed, "curve": curve} for r in finals}
  panels, _ = table3_vae.figure_panels(records, finals)
  assert panels == [("final", "1%", ("vae", "aavae", "aavae_frozen")),
                    ("final", "1%", ("svae", "aasvae")),
                    ("final_accuracy", "1%", ("svae", "aasvae"))]
  no_semi = {k: v for k, v in records.items() if "svae" not in k}
  assert [k for k, _, _ in table3_vae.figure_panels(no_semi, finals)[0]] == ["final"]
  assert table3_vae.plot(tmp_path / "t3.png", records, finals) == "final runs"
  assert (tmp_path / "t3.png").stat().st_size > 0


def test_table3_says_which_runs_the_budget_ended():
  """Per row and validated column: how many runs stopped early and how many had their best
  validation bound at their last evaluation (still improving when the budget ended them)."""
  plan = table3_vae.Plan(table3_vae.PRESETS["cpu"], "/data", True, False)
  finals = plan.final_runs(["vae"], ["1%", "100%"], {})
  budget = table3_vae.PRESETS["cpu"].steps["1%"]
  ended = {0: (budget, budget, False), 1: (budget - 250, budget, False),
           2: (4000, 6000, True)}  # seed: (best step, final step, stopped early)
  records = {}
  for r in finals:
    if r.column == "100%":  # no validation: not a row of this section
      records[r.name] = {"seed": r.seed, "validation": None, "final_step": 20000}
    elif r.seed in ended:
      best, final, stopped = ended[r.seed]
      records[r.name] = {"seed": r.seed, "final_step": final,
                         "validation": {"best_step": best, "stopped_early": stopped}}
  data = {}
  text = "\n".join(table3_vae._ending_lines(records, finals, ["vae"], data))
  assert f"| vae | 1% | 3 | 1 | 1 | {budget}, {budget - 250}, 4000 ({budget}) |" in text
  assert "| vae | 100% |" not in text
  assert data["endings"]["vae@1%"]["best_at_last_evaluation"] == 1
  assert table3_vae._ending_lines({}, finals, ["vae"], {}) == []


def test_table3_gap_diagnostics_change_one_thing_each():
  """The base VAE's 1% gap diagnostics: the table's vae run without early stopping (last step
  tested), and at width 64; nothing else differs. Their rows report the test bound per run."""
  plan = table3_vae.Plan(table3_vae.PRESETS["cpu"], "/data", True, False)
  runs = {r.name: r for r in plan.gap_runs()}
  assert sorted(runs) == sorted([f"gap_vae_{k}_1pct_seed{s}" for k in ("nostop", "width64")
                                 for s in range(3)])
  flat = lambda c: config_lib.flatten(c)  # noqa: E731
  for seed in range(3):
    table = flat(plan.config("vae", "1%", seed))
    nostop = flat(runs[f"gap_vae_nostop_1pct_seed{seed}"].config)
    wide = flat(runs[f"gap_vae_width64_1pct_seed{seed}"].config)
    assert {k for k in table if table[k] != nostop[k]} == {"validation.select", "validation.patience"}
    assert (nostop["validation.select"], nostop["validation.patience"]) == ("", 0)
    assert {k for k in table if table[k] != wide[k]} == {"model.width"} and wide["model.width"] == 64
  assert all(r.role == "diagnostic" for r in runs.values())
  record = lambda name, value, step: {"seed": int(name[-1]), "final_step": step,  # noqa: E731
                                      "eval": {"test_elbo": value}}
  finals = plan.final_runs(["vae"], ["1%"], {})
  records = {finals[0].name: record(finals[0].name, -119.0, 3000),
             finals[1].name: record(finals[1].name, -118.0, 2000),
             "gap_vae_nostop_1pct_seed0": record("gap_vae_nostop_1pct_seed0", -130.0, 10000)}
  data = {}
  lines = table3_vae._gap_lines(records, finals, list(runs.values()), plan.preset, data)
  text = "\n".join(lines)
  assert "| -118.50 ± 0.71 (n=2) | +4.39 | 2500 | -119.00, -118.00 |" in text
  assert "| -130.00 (n=1) | -7.11 | 10000 | -130.00 |" in text
  assert "at the paper's width 64 (early-stopped like the table) | not run (0 of 3)" in text
  assert data["gap_diagnostics"]["vae"]["values"] == [-119.0, -118.0]
  assert ("Without early stopping the test bound moves by -11.00 nats (same seeds [0], range "
          "-11.00 to -11.00); the paper's -122.89 lies between the two.") in text
  assert "At width 64" not in text  # not run: nothing said


def test_table3_smoke_end_to_end(fake_mnist, tmp_path):
  """The paper preset at smoke size: selection on validation, final runs, paired p-values,
  records; nothing written to results/."""
  before = sorted(p.name for p in (REPO / "results").iterdir())
  args = ["--preset=paper", "--smoke", f"--mnist_dir={fake_mnist}", "--verify_checksums=False",
          f"--workdir={tmp_path / 'w'}", "--models=vae,aavae", "--columns=1%"]
  assert table3_vae.main(args) == 0
  assert sorted(p.name for p in (REPO / "results").iterdir()) == before
  out = tmp_path / "w" / "paper_smoke" / "table3_vae_smoke.md"
  text = out.read_text()
  assert "SMOKE: plumbing only" in text and "[-122.89]" in text
  assert str(tmp_path) not in text and fake_mnist not in text  # no path of this machine
  assert "| aavae > vae | 1% |" in text
  assert "| aavae | 1% | 0.001:" in text  # the selection table
  assert "(final runs and selection runs)" in text and out.with_suffix(".png").exists()
  records = sorted((out.with_suffix("") / "runs").glob("*.json"))
  assert len(records) == 2 + 2 * 2  # selection: 2 rates x 1 seed (aavae); 2 rows x 2 seeds
  record = json.loads((out.with_suffix("") / "runs" / "vae_1pct_seed0.json").read_text())
  assert record["eval"]["dataset"] == "mnist/test" and record["validation"]["select"] == "elbo"
  assert record["data"].startswith("mnist/train_minus_validation: 40 examples")
  assert fake_mnist not in json.dumps(record)  # data named by data set and split, not a path
  assert any("val/elbo" in row for row in record["curve"])
  # Records are reused: a second invocation trains nothing and writes the same cells.
  data = json.loads(out.with_suffix(".json").read_text())
  assert table3_vae.main(args + ["--train=False"]) == 0
  assert json.loads(out.with_suffix(".json").read_text())["cells"] == data["cells"]


def test_run_records_are_reused_only_for_the_same_config(fake_mnist, tmp_path):
  plan = table3_vae.Plan(table3_vae._smoke(table3_vae.PRESETS["cpu"]), fake_mnist, False, True,
                         train_size=1200)
  run = plan.final_runs(["vae"], ["1%"], {})[0]
  records = tmp_path / "records"
  assert common.execute([run], tmp_path / "w", records, train_missing=False) == {}
  first = common.execute([run], tmp_path / "w", records)[run.name]
  assert first["fingerprint"] == run.fingerprint() and first["trained_with_code"]
  changed = plan.final_runs(["vae"], ["1%"], {})[0]
  changed.config.model.latent_dim = 8
  assert changed.fingerprint() != run.fingerprint()
  assert common.execute([changed], tmp_path / "w2", records, train_missing=False) == {}


def test_table3_is_written_before_any_run_has_finished(fake_mnist, tmp_path):
  """A table rebuilt mid-way (``--train=False``): cells whose selection has not finished are
  '-', not an error (the semi-supervised rows included)."""
  args = ["--preset=cpu", "--smoke", f"--mnist_dir={fake_mnist}", "--verify_checksums=False",
          f"--workdir={tmp_path / 'w'}", "--models=svae,aasvae", "--train=False"]
  assert table3_vae.main(args) == 0
  text = (tmp_path / "w" / "cpu_smoke" / "table3_vae_smoke.md").read_text()
  assert "0 of " in text and "| aasvae | - [" in text
  assert "| svae | - [-108.22] | - [-99.44] | - |" in text  # the paper's numbers stay visible
  assert "no figure yet" in text  # and no claim of one
  assert not (tmp_path / "w" / "cpu_smoke" / "table3_vae_smoke.png").exists()


def test_table2_smoke_end_to_end(fake_mnist, tmp_path):
  args = ["--preset=cpu", "--smoke", f"--mnist_dir={fake_mnist}", "--verify_checksums=False",
          f"--workdir={tmp_path / 'w'}", "--models=gan,iwgan"]
  assert table2_gan.main(args) == 0
  out = tmp_path / "w" / "cpu_smoke" / "table2_gan_smoke.md"
  text = out.read_text()
  assert "SMOKE: plumbing only" in text and "| gan | inception score | 8.34" in text
  assert str(tmp_path) not in text and fake_mnist not in text  # no path of this machine
  assert "| iwgan > gan |" in text and "Welch" in text
  assert (out.with_suffix("") / "gan_samples.png").exists() and out.with_suffix(".png").exists()
  iw = json.loads(next((out.with_suffix("") / "runs").glob("iwgan_*steps_seed0.json")).read_text())
  assert len(list((out.with_suffix("") / "runs").glob("*gan_*steps_seed*.json"))) == 2 * 2
  assert any("iw_ess" in row for row in iw["curve"]) and any("d_fake" in row for row in iw["curve"])
  # The final evaluation says where the score is lost (class balance vs confidence).
  assert set(iw["eval"]["sample_class_diagnostics"]) >= {"class_frequencies", "marginal_entropy"}
  assert "## Where the inception score is lost" in text and "| real MNIST test set | - |" in text
  # The classifier is cached by content: a second call finds it.
  cached = list((tmp_path / "w" / "classifiers").iterdir())
  assert len(cached) == 1 and cached[0].name.startswith("mnist-")
  assert "No grid for" not in text
  # Rewritten on a machine without the IWGAN workdirs: the table says which grid is missing.
  (out.with_suffix("") / "iwgan_samples.png").unlink()
  for workdir in (tmp_path / "w" / "cpu_smoke").glob("iwgan_*"):
    shutil.rmtree(workdir)
  assert table2_gan.main(args + ["--train=False"]) == 0
  text = out.read_text()
  assert "sample grids: gan_samples.png (gan_2steps_seed0's final generator)." in text
  assert "No grid for iwgan: " in text
  # --regrid retrains seed 0's config elsewhere for the grid; the table's records stay as they
  # were and the grid line says it is a retraining, with both scores.
  records = {p.name: p.read_bytes() for p in (out.with_suffix("") / "runs").iterdir()}
  assert table2_gan.main(args + ["--train=False", "--regrid"]) == 0
  text = out.read_text()
  assert (out.with_suffix("") / "iwgan_samples.png").exists() and "No grid" not in text
  assert "iwgan_samples.png (a retraining of iwgan_2steps_seed0's config on code " in text
  assert "not the recorded run itself: IS " in text and " vs the record's IS " in text
  assert {p.name: p.read_bytes() for p in (out.with_suffix("") / "runs").iterdir()} == records
  assert (tmp_path / "w" / "cpu_smoke" / "regrid" / "iwgan_2steps_seed0").is_dir()
  # Its weights go with the records, and seed an empty cache (another machine) next time.
  saved = out.with_suffix("") / "classifiers" / cached[0].name
  assert (saved / "classifier.msgpack").read_bytes() == (cached[0] / "classifier.msgpack").read_bytes()
  summary = json.loads((saved / "classifier.json").read_text())
  assert table2_gan.scored_by(iw, summary)
  assert not table2_gan.scored_by(iw, dict(summary, test_accuracy=summary["test_accuracy"] + 1e-4))


def test_table2_pairs_beyond_the_paper():
  """--pairs takes any variant and its iw(...) version: names, metrics and refusals."""
  assert table2_gan.parse_pairs(["gan:iwgan", "infogan:iw(infogan)", "cgan:iw(cgan)"]) == [
      ("gan", "iwgan"), ("infogan", "iw(infogan)"), ("cgan", "iw(cgan)")]
  assert table2_gan.run_name("iw(infogan)") == "iw-infogan"
  assert table2_gan.metric_of("iw(infogan)") == "inception_score"  # codes are not labels
  assert table2_gan.metric_of("iw(cgan)") == "conditional_accuracy"
  with pytest.raises(common.UsageError, match="not importance-weighted"):
    table2_gan.parse_pairs(["gan:cgan"])
  with pytest.raises(common.UsageError, match="unknown variant"):
    table2_gan.parse_pairs(["gan:iw(nothing)"])
  with pytest.raises(common.UsageError, match=r"write base:iw\(base\)"):
    table2_gan.parse_pairs(["gan"])


def test_transfer_aa_plan_follows_the_protocol(fake_mnist):
  """Selection runs train no test metric; finals are base / AA / frozen control per seed,
  paired by seed (one data subset), the AA run with the chosen rate."""
  from experiments import transfer_aa
  plan = transfer_aa.TransferPlan(
      table3_vae.Plan(table3_vae.PRESETS["cpu"], fake_mnist, False, False, train_size=60000),
      transfer_aa.PRESETS["cpu"], transfer_aa.parse_pairs(["iwae:aa(iwae)"]), 100)
  selection = plan.selection()
  assert [r.name for r in selection] == [f"select_aa-iwae_dlr{r:g}_1pct_seed100"
                                         for r in (1e-3, 1e-4, 1e-5, 1e-6)]
  assert all(r.config.eval.metrics == "" and r.config.validation.select == "elbo"
             for r in selection)
  assert plan.finals({}) == []  # nothing before the selection has finished
  finals = plan.finals({"aa(iwae)": 1e-5})
  assert [r.group for r in finals[:3]] == ["iwae", "aa(iwae)", "aa(iwae) frozen"]
  assert len(finals) == 3 * 3
  for run in finals:
    assert run.config.data.num_examples == 600 and run.config.data.split == "train_minus_validation"
    assert run.config.eval.metrics == "elbo,iwae" and run.config.eval.importance_samples == 100
  rates = {r.group: r.config.model.discriminator_learning_rate for r in finals[:3]}
  assert rates == {"iwae": None, "aa(iwae)": 1e-5, "aa(iwae) frozen": 0.0}
  with pytest.raises(common.UsageError, match="not adversary-activated"):
    transfer_aa.parse_pairs(["iwae:vae"])


@pytest.mark.slow
def test_transfer_aa_smoke_end_to_end(fake_mnist, tmp_path):
  """AA-IWAE vs IWAE under Table 3's protocol: selection, base / AA / frozen control, p-values."""
  from experiments import transfer_aa
  args = ["--preset=cpu", "--smoke", f"--mnist_dir={fake_mnist}", "--verify_checksums=False",
          f"--workdir={tmp_path / 'w'}"]
  assert transfer_aa.main(args) == 0
  out = tmp_path / "w" / "cpu_smoke" / "transfer_aa_smoke.md"
  text = out.read_text()
  assert "transferred to iwae" in text and "| aa(iwae) > iwae | estimate K=4 |" in text
  assert str(tmp_path) not in text and fake_mnist not in text  # no path of this machine
  assert "| aa(iwae) > aa(iwae) frozen |" in text and "| aa(iwae) | 0.001:" in text
  records = sorted(p.name for p in (out.with_suffix("") / "runs").glob("*.json"))
  assert len(records) == 2 + 3 * 2  # 2 rates x 1 selection seed; 3 rows x 2 seeds
  record = json.loads((out.with_suffix("") / "runs" / "aa-iwae_1pct_seed0.json").read_text())
  assert record["eval"]["dataset"] == "mnist/test" and "test_log_likelihood_iwae" in record["eval"]
  frozen = json.loads((out.with_suffix("") / "runs" / "aa-iwae_frozen_1pct_seed1.json").read_text())
  assert frozen["config_overrides"]["model.discriminator_learning_rate"] == 0.0
  with pytest.raises(common.UsageError, match="not adversary-activated"):
    transfer_aa.main(args + ["--pairs=iwae:vae"])


def test_mode_coverage_scores_against_known_modes():
  from experiments import mode_coverage as mc
  protos, weights = mc.prototypes(16), mc.mode_weights(16, 0.75)
  assert weights[0] == pytest.approx(0.25 / (1 - 0.75 ** 16)) and weights.sum() == pytest.approx(1)
  real = mc.score(mc.draw(protos, weights, 20000, seed=3), protos, weights)
  assert real["modes_covered"] == 16 and real["on_mode_share"] > 0.999
  assert real["tv_distance"] < 0.02
  # Every sample on mode 0: one mode covered, TV = 1 - w_0 exactly.
  collapsed = mc.score(np.repeat(protos[:1], 100, axis=0), protos, weights)
  assert collapsed["modes_covered"] == 1 and collapsed["on_mode_share"] == 1.0
  assert collapsed["tv_distance"] == pytest.approx(1 - weights[0])
  # Grey noise is on no mode.
  assert mc.score(np.full((50, 64), 0.5, np.float32), protos, weights)["on_mode_share"] == 0.0


@pytest.mark.slow
def test_mode_coverage_smoke_end_to_end(tmp_path):
  from experiments import mode_coverage as mc
  assert mc.main(["--smoke", f"--out={tmp_path / 'mc.md'}"]) == 0
  text = (tmp_path / "mc.md").read_text()
  assert "SMOKE" in text and "| iw(gan) vs gan | modes covered" in text
  assert (tmp_path / "mc.png").stat().st_size > 1000


def test_experiment_flags_errors_are_one_line():
  with pytest.raises(common.UsageError, match="--mnist_dir"):
    table3_vae.main(["--preset=cpu"])
  with pytest.raises(common.UsageError, match="Unknown command line flag 'colums'"):
    table3_vae.main(["--colums=1%"])
  with pytest.raises(common.UsageError, match=r"--models \['wgan'\] are in no --pairs"):
    table2_gan.main(["--mnist_dir=x", "--models=gan,wgan"])
  for bad in ("2/2", "1", "a/b", "0/0"):
    with pytest.raises(common.UsageError, match="write i/n with 0 <= i < n"):
      common.parse_shard(bad)
  assert common.parse_shard("1/3") == (1, 3)
  with pytest.raises(common.UsageError, match="does not exist|not found|no such"):
    table3_vae.main(["--mnist_dir=/nonexistent/mnist"])


def test_fitted_rise_is_the_least_squares_slope_times_the_span():
  assert table2_gan.fitted_rise([0, 1, 2], [0.0, 3.0, 0.0]) == pytest.approx(0.0)
  # Points on a line: its exact rise. Slope of y = (1, 2, 4) over x = (0, 1, 2): 1.5.
  assert table2_gan.fitted_rise([10, 20, 30], [1.0, 3.0, 5.0]) == pytest.approx(4.0)
  assert table2_gan.fitted_rise([0, 1, 2], [1.0, 2.0, 4.0]) == pytest.approx(3.0)


def test_plateau_start_is_where_the_fitted_rise_to_the_end_stays_below_the_tolerance():
  steps = list(range(1000, 11000, 1000))
  flat_after_4 = [1, 2, 3, 4, 4, 4, 4, 4, 4, 4]
  # From 4000 the rest is flat (rise 0); from 3000 the line through 3, 4, 4, ... rises.
  assert table2_gan.plateau_start(steps, flat_after_4, 0.1, 0.2) == (4000, pytest.approx(0))
  # A looser tolerance admits 3000 (rise over 3000-10000 of 3, 4 x 7: 0.583), not 2000.
  rise_from_3000 = table2_gan.fitted_rise(steps[2:], flat_after_4[2:])
  assert rise_from_3000 == pytest.approx(0.5833, abs=1e-4)
  assert table2_gan.plateau_start(steps, flat_after_4, 0.6, 0.2)[0] == 3000
  # Still rising by 0.1 per 1,000 steps at the end: no plateau, and the rise of the last
  # candidate's line (8000-10000: 0.2) is reported.
  rising = [4, 5, 6, 6.1, 6.2, 6.3, 6.4, 6.5, 6.6, 6.7]
  start, tail_rise = table2_gan.plateau_start(steps, rising, 0.055, 0.2)
  assert start is None and tail_rise == pytest.approx(0.2)
  # "Stays": a flat stretch followed by a late rise is no plateau from the flat stretch.
  late = [4, 4, 4, 4, 4, 4, 4, 5, 6, 7]
  assert table2_gan.plateau_start(steps, late, 0.1, 0.2)[0] is None


def test_plateau_start_finds_a_noisy_plateau_and_rejects_a_noisy_creep():
  """The inception-score curves' noise (one evaluation: std ~0.03 IS) around a flat
  plateau after a rise: the plateau's start is found near the knee, where the earlier rule
  (a 3-point moving average within 0.055 of its maximum) found none. A creep of 0.3 IS over
  the last half (0.12 over the last fifth) under the same noise is no plateau: the line
  through the last fifth (48 points) has a standard error of ~0.015 in its rise, so the
  rule resolves creeps of ~0.055 + 2 x 0.015 and more."""
  rng = np.random.default_rng(0)
  steps = np.arange(1000, 240001, 1000)
  knee = 100000
  base = 6.9 - 0.8 * np.exp(-steps / 25000.0) - 0.1 * np.clip((knee - steps) / knee, 0, None)
  noisy = base + rng.normal(0, 0.03, steps.size)
  start, tail_rise = table2_gan.plateau_start(steps, noisy, 0.055, 0.2)
  assert start is not None and 40000 <= start <= 130000 and abs(tail_rise) < 0.055
  smooth = np.convolve(noisy, np.ones(3) / 3, mode="valid")  # the earlier rule fails here:
  assert (smooth[-48:] < smooth.max() - 0.055).any()         # dips in the last fifth
  creep = base + 0.3 * np.clip((steps - 120000) / 120000, 0, None)
  assert table2_gan.plateau_start(steps, creep + rng.normal(0, 0.03, steps.size), 0.055,
                                  0.2)[0] is None


def test_the_step_choice_claims_a_plateau_only_with_a_fifth_of_the_curve_after_it():
  preset = table2_gan._smoke(table2_gan.PRESETS["cpu"])
  preset = table2_gan.dataclasses.replace(
      preset, curve_steps={"inception_score": 10000, "conditional_accuracy": 10000},
      final_steps={})
  steps = list(range(1000, 11000, 1000))
  flat = [4, 5, 6, 6.5, 6.5, 6.5, 6.5, 6.5, 6.5, 6.5]
  later = [4, 5, 6, 6.3, 6.5, 6.5, 6.5, 6.5, 6.5, 6.5]
  rising = [4, 5, 6, 6.1, 6.2, 6.3, 6.4, 6.5, 6.6, 6.7]  # +0.1 per 1,000 steps to the end
  record = lambda v: {"curve": [{"step": s, "val/inception_score": x} for s, x in zip(steps, v)]}  # noqa: E731
  chosen, lines, plateaued = table2_gan.choose_steps(
      {"curve_gan_seed100": record(flat), "curve_iwgan_seed100": record(later)}, preset,
      ["gan", "iwgan"])  # the pair gets the later start of its two models
  assert chosen == {("gan", "iwgan"): 5000} and plateaued[("gan", "iwgan")] and len(lines) == 2
  chosen, _, plateaued = table2_gan.choose_steps(
      {"curve_gan_seed100": record(flat), "curve_iwgan_seed100": record(rising)}, preset,
      ["gan", "iwgan"])
  assert chosen == {("gan", "iwgan"): 10000} and not plateaued[("gan", "iwgan")]
  # A pinned step is used; it counts as on the plateau only between its start and the end.
  for pinned, on in ((8000, True), (4000, False)):
    pinned_preset = table2_gan.dataclasses.replace(preset,
                                                   final_steps={"inception_score": pinned})
    chosen, _, plateaued = table2_gan.choose_steps(
        {"curve_gan_seed100": record(flat), "curve_iwgan_seed100": record(later)},
        pinned_preset, ["gan", "iwgan"])
    assert chosen == {("gan", "iwgan"): pinned} and plateaued[("gan", "iwgan")] == on
  # A pair with an unfinished curve gets no step, and the table says why instead of
  # dropping its rows.
  chosen, lines, _ = table2_gan.choose_steps({"curve_gan_seed100": record(flat)}, preset,
                                             ["gan", "iwgan"])
  assert chosen == {} and len(lines) == 2
  assert all("curve not finished" in line for line in lines)


def test_a_run_continued_from_a_finished_shorter_run_is_the_run_trained_directly(
    fake_mnist, tmp_path):
  """``common.warm_start``: 4 steps, then continued to 8, equals 8 steps from scratch."""
  def run(name, steps, continues=()):
    config = common.config_for("vae", "mnist", seed=3, data_dir=fake_mnist, width=4,
                               batch_size=8, steps=steps, log_every=1, checkpoint_every=2)
    config.data.verify_checksums = False
    config.eval.num_examples = 50
    config.eval.metrics = "elbo"  # like a table's final run: evaluated and sampled at its end
    config.sample_every = steps
    return common.Run(name=name, group="vae", column="c", seed=3, config=config,
                      continues=continues)
  direct = common.execute([run("direct", 8)], tmp_path / "a", tmp_path / "ra")["direct"]
  short = common.execute([run("short", 4)], tmp_path / "b", tmp_path / "rb")["short"]
  # A run of another config (latent size) is no start for it: trained from scratch instead.
  other = run("other", 2)
  other.config.model.latent_dim = 3
  common.execute([other], tmp_path / "b", tmp_path / "rb")
  longer = common.execute([run("longer", 8, ("short", "other", "absent"))], tmp_path / "b",
                          tmp_path / "rb")["longer"]
  assert longer["warm_start"]["run"] == "short" and longer["warm_start"]["step"] == 4
  assert longer["final_step"] == 8 and short["final_step"] == 4 and short["eval"]["metrics"] == ["elbo"]
  untimed = lambda e: {k: v for k, v in e.items() if not k.endswith("time_s")}  # noqa: E731
  assert untimed(longer["eval"]) == untimed(direct["eval"]) and "elbo" in str(direct["eval"])
  assert longer["final_metrics"] == direct["final_metrics"]
  assert longer["curve"] == direct["curve"]  # steps 1-4 copied, 5-8 trained: bitwise equal
  assert longer["fingerprint"] == direct["fingerprint"]
  # The shorter run's workdir and record are untouched.
  assert json.loads((tmp_path / "b" / "short" / "summary.json").read_text())["final_step"] == 4


def test_a_run_resumed_by_other_code_names_both_commits(fake_mnist, tmp_path):
  """A workdir trained to step 2 by commit ``aaaaaaa`` and continued to 4 by this checkout:
  its record says which code trained which steps (not only the first commit)."""
  def run(steps):
    config = common.config_for("vae", "mnist", seed=0, data_dir=fake_mnist, width=4,
                               batch_size=8, steps=steps, log_every=1, checkpoint_every=2)
    config.data.verify_checksums = False
    return common.Run(name="curve", group="vae", column="curve", seed=0, config=config,
                      role="curve")
  common.execute([run(2)], tmp_path / "w", tmp_path / "r")
  (tmp_path / "w" / "curve" / "code_version.txt").write_text("aaaaaaa\n")
  record = common.execute([run(4)], tmp_path / "w", tmp_path / "r")["curve"]
  now = common.code_version()
  assert record["final_step"] == 4
  assert record["trained_with_code"] == f"aaaaaaa (steps 0-2), {now} (after)"
  # Continued again by a third commit: the earlier ranges stay, the new one is appended.
  (tmp_path / "w" / "curve" / "code_version.txt").write_text("aaaaaaa (steps 0-2), bbbbbbb (after)\n")
  record = common.execute([run(6)], tmp_path / "w", tmp_path / "r")["curve"]
  assert record["trained_with_code"] == (
      f"aaaaaaa (steps 0-2), bbbbbbb (to step 4), {now} (after)")
  # Resumed by the code that trained it: the stamp is unchanged.
  stamp = f"{now}\n"
  (tmp_path / "w" / "curve" / "code_version.txt").write_text(stamp)
  common.execute([run(8)], tmp_path / "w", tmp_path / "r")
  assert (tmp_path / "w" / "curve" / "code_version.txt").read_text() == stamp


def test_a_finished_run_without_final_metrics_is_not_started_again(fake_mnist, tmp_path):
  """A curve run (no ``eval.metrics``) is complete at its last step: a rerun of the table
  writes its record from the workdir instead of resuming it (which rewrote its summary with
  the wall time of a zero-step invocation)."""
  config = common.config_for("vae", "mnist", seed=0, data_dir=fake_mnist, width=4,
                             batch_size=8, steps=2, log_every=1, checkpoint_every=2)
  config.data.verify_checksums = False
  run = common.Run(name="curve", group="vae", column="curve", seed=0, config=config,
                   role="curve")
  first = common.execute([run], tmp_path / "w", tmp_path / "r1")["curve"]
  summary = (tmp_path / "w" / "curve" / "summary.json").read_text()
  again = common.execute([run], tmp_path / "w", tmp_path / "r2")["curve"]
  assert (tmp_path / "w" / "curve" / "summary.json").read_text() == summary
  assert again["wall_time_s"] == first["wall_time_s"] and again["eval"] is None


def test_the_run_time_line_names_runs_without_a_recorded_time():
  line = common.run_time_line([{"wall_time_s": 5400.0}, {"wall_time_s": None}])
  assert line == ("runs' own wall time 1.5 h summed over 2 runs (1 without a recorded time, "
                  "counted as 0)")
  assert common.run_time_line([{"wall_time_s": 3600.0}]) == (
      "runs' own wall time 1.0 h summed over 1 runs")


def test_the_remaining_line_times_missing_runs_by_their_finished_siblings():
  def run(name, group, column, role="final"):
    return common.Run(name=name, group=group, column=column, seed=0, config=None, role=role)
  runs = [run("a0", "vae", "1%"), run("a1", "vae", "1%"), run("a2", "vae", "1%"),
          run("b0", "aavae", "1%"), run("c0", "vae", "10%"), run("c1", "vae", "10%"),
          run("s0", "vae", "10%", role="selection"), run("d0", "vae", "100%")]
  records = {"a0": {"wall_time_s": 1800.0}, "c0": {"wall_time_s": 7200.0},
             "s0": {"wall_time_s": 60.0}}
  # a1, a2 at a0's half hour, c1 at c0's two hours; b0 (no finished aavae 1%) at the 1%
  # column's vae half hour, said apart; d0 has nothing in its column: counted, not guessed;
  # the 10% selection run's minute times no final.
  assert common.remaining_line(runs, records) == (
      "To go: 5 runs (vae 1% x2, aavae 1% x1, vae 10% x1, vae 100% x1); training time: 3.0 h "
      "timed by finished runs of the same row and column; 0.5 h by other rows of the same "
      "column; 1 run with nothing finished to go by.")
  assert common.remaining_line(runs[3:4], {}) == (
      "To go: 1 run (aavae 1% x1); training time: 1 run with nothing finished to go by.")
  assert common.remaining_line(runs[:1], records) == "Every planned run is done."


def test_table3_svae_smoke_selects_alpha_then_trains_finals(fake_mnist, tmp_path):
  """The semi-supervised stage at smoke size: the alpha selection runs (validation only), the
  choice and its section, then the SVAE finals with the chosen alpha and a test accuracy."""
  args = ["--preset=cpu", "--smoke", f"--mnist_dir={fake_mnist}", "--verify_checksums=False",
          f"--workdir={tmp_path / 'w'}", "--models=svae", "--columns=1%"]
  assert table3_vae.main(args) == 0
  out = tmp_path / "w" / "cpu_smoke" / "table3_vae_smoke.md"
  text = out.read_text()
  assert "## SVAE alpha, chosen on validation" in text and "| svae | 1% | 0.1: " in text
  data = json.loads(out.with_suffix(".json").read_text())
  alpha = data["selection"]["svae_alpha@1%"]
  runs = out.with_suffix("") / "runs"
  selection = [json.loads(p.read_text()) for p in runs.glob("select_svae_*.json")]
  assert len(selection) == 2 and all("eval" not in r or not r["eval"] for r in selection)
  assert all(any("val/svae_accuracy" in row for row in r["curve"]) for r in selection)
  final = json.loads((runs / "svae_1pct_seed0.json").read_text())
  assert final["config_overrides"]["model.svae_alpha"] == alpha
  assert 0.0 <= final["eval"]["svae_accuracy"] <= 1.0
  assert len(data["cells"]["svae@1%"]["svae_accuracy"]) == 2
