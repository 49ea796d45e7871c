"""Settings of a test session.

One persistent XLA compilation cache for the whole session: the pytest-xdist workers and
the training programs the tests start as subprocesses compile many identical steps (every
resume test compiles its run twice). A cached executable is the one XLA would have built,
so results are unchanged; only compile time is saved. The cache lives in
``.pytest_cache/`` (ignored by git) and is bounded, so the lock that ``filelock`` provides
keeps concurrent writers apart. Set ``JAX_COMPILATION_CACHE_DIR`` to use another folder.
"""

import os
import pathlib

_CACHE = pathlib.Path(__file__).resolve().parents[1] / ".pytest_cache" / "jax_compilation_cache"
# Environment first (inherited by subprocesses), before anything imports jax.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(_CACHE))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.1")
os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(4 << 30))

import jax  # noqa: E402  pylint: disable=g-import-not-at-top,wrong-import-position

jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
jax.config.update("jax_persistent_cache_min_compile_time_secs",
                  float(os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"]))
jax.config.update("jax_compilation_cache_max_size",
                  int(os.environ["JAX_COMPILATION_CACHE_MAX_SIZE"]))

# The longest tests (cold, on 2 cores: 30-90 s each) start first, so that pytest-xdist's two
# workers do not end with one of them alone on a long test while the other idles. Order only:
# every test still runs, each in its own fresh state.
LONGEST_FIRST = (
    "test_experiments.py::test_table3_smoke_end_to_end",
    "test_benchmarks.py::test_accelerator_suite_runs_data_parallel_and_reports_mfu",
    "test_train_step.py::test_sharded_steps_match_single_device_on_8_simulated_devices",
    "test_transforms.py::test_transforms_equal_the_hand_written_models_bitwise",
    "test_refactor_equivalence.py::test_fixed_seed_steps_are_bitwise_those_of_the_reference_commit",
    "test_examples.py::test_pure_jax_iwgan_and_iwae_reach_their_quality_figures",
    "test_experiments.py::test_table2_smoke_end_to_end",
    "test_train_step.py::test_generator_first_order_reuses_the_generator_batch_for_the_discriminator",
    "test_experiments.py::test_kl_directions_smoke",
    "test_train_program.py::test_sigterm_saves_and_the_rerun_resumes_bitwise",
)


def pytest_collection_modifyitems(items):
  def rank(item):
    for i, name in enumerate(LONGEST_FIRST):
      if name in item.nodeid:
        return i
    return len(LONGEST_FIRST)
  items.sort(key=rank)  # stable: the rest keep their order
