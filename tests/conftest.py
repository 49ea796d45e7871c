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
