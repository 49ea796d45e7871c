"""Data parallelism with JAX's own primitives: a 1-D ``Mesh``, ``NamedSharding``, ``jax.distributed``.

No communication layer of our own: the sharded-jit step lets XLA insert the
collectives; the ``shard_map`` step uses ``lax.pmean``/``psum``.

Multi-host (every process runs the same command):

* TPU pod slice: ``jax.distributed.initialize()`` with no arguments (the TPU
  runtime provides coordinator and process ids), then the usual entry point;
  e.g. ``gcloud compute tpus tpu-vm ssh NAME --worker=all --command="python -m
  unigen_jax.main ..."``.
* Several GPU hosts: set ``coordinator_address`` (``host0:1234``),
  ``num_processes`` and ``process_id`` per host (or run under SLURM, which
  ``jax.distributed.initialize()`` detects), e.g. on host ``i`` of ``N``:
  ``python -m unigen_jax.main --distributed --coordinator=host0:1234
  --num_processes=N --process_id=i ...``.

:func:`initialize_distributed` wraps this; :func:`data_mesh` then spans every
device of every process, and each process feeds only its own shard of the
global batch (:func:`shard_batch`).
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

import jax
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

BATCH_AXIS = "batch"


def initialize_distributed(coordinator_address: Optional[str] = None,
                           num_processes: Optional[int] = None,
                           process_id: Optional[int] = None) -> None:
  """Starts multi-host JAX (``jax.distributed.initialize``); a no-op for one process."""
  if num_processes == 1:
    return
  jax.distributed.initialize(coordinator_address=coordinator_address,
                             num_processes=num_processes, process_id=process_id)


def data_mesh(devices=None) -> jax.sharding.Mesh:
  """A 1-D mesh with axis ``'batch'`` over ``devices`` (default: all devices of all hosts)."""
  # Auto axes: the step's in/out shardings place the data and XLA propagates the rest
  # (explicit-sharding types would make every shape in the models carry a spec).
  auto = (jax.sharding.AxisType.Auto,)
  if devices is None:
    return jax.make_mesh((jax.device_count(),), (BATCH_AXIS,), axis_types=auto)
  return jax.sharding.Mesh(np.asarray(devices), (BATCH_AXIS,), axis_types=auto)


def must_sync_each_step(mesh: Optional[jax.sharding.Mesh] = None) -> bool:
  """Whether a caller must wait for each step before dispatching the next one.

  XLA:CPU runs the collectives of several local devices in process, on one shared thread
  pool: with several launches of a collective program in flight (asynchronous dispatch),
  devices that are already in step ``t+1`` block pool threads at its all-reduce while the
  devices still in step ``t`` wait for a thread, and the rendezvous aborts the process
  after its timeout. Accelerators and a single CPU device do not need this.
  """
  devices = mesh.devices.flat if mesh is not None else jax.local_devices()
  local = [d for d in devices if d.process_index == jax.process_index()]
  return len(local) > 1 and local[0].platform == "cpu"


def batch_sharding(mesh: jax.sharding.Mesh, leading_steps: bool = False) -> NamedSharding:
  return NamedSharding(mesh, P(None, BATCH_AXIS) if leading_steps else P(BATCH_AXIS))


def shard_batch(local_batch: Mapping[str, Any], mesh: jax.sharding.Mesh,
                leading_steps: bool = False) -> dict:
  """Places this process's part of the global batch on the mesh, sharded along ``'batch'``.

  With one process the local batch *is* the global batch. With several, each
  process passes its own ``global_batch / process_count`` examples and the
  result is one global array (``jax.make_array_from_process_local_data``).
  """
  sharding = batch_sharding(mesh, leading_steps)
  if jax.process_count() == 1:
    return jax.device_put(dict(local_batch), sharding)
  return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v))
          for k, v in local_batch.items()}
