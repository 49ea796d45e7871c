"""One compiled update step for every variant, on one device or data-parallel over many.

>>> model = build('iwgan', image_shape=(28, 28, 1))
>>> state = model.init(jax.random.key(0))
>>> step = make_train_step(model)                    # jit, batch sharded over all devices
>>> state, metrics = step(state, {'image': images}, jax.random.key(1))

``step(state, batch, key) -> (state, metrics)`` is pure and compiled with
``jax.jit``; ``state`` is donated, so do not reuse the state you passed in. The
RNG of step ``t`` is ``fold_in(key, t)``: pass the *same* key every call (the
run's seed key) and the step number does the rest, which makes a resumed run
bitwise identical to an uninterrupted one. Metrics are scalars on device (no
host synchronisation inside the step).

Parallelism (``parallelism=``):

* ``'jit'`` (default): ``jax.jit`` with the batch sharded along the ``'batch'``
  axis of a ``Mesh`` (``NamedSharding``) and the state replicated; XLA inserts
  the gradient all-reduce. Batch-norm statistics, losses and IWGAN's importance
  weights are those of the *global* batch, exactly as on one device.
* ``'shard_map'``: the explicit per-device program (the modern form of
  ``pmap``): each device computes gradients on its shard and they are averaged
  with ``lax.pmean``; batch norm and IWGAN's weights use cross-device
  collectives over ``'batch'`` so they are global-batch statistics too, and
  random draws are slices of the global draw. It matches the single-device
  step on the same global batch.
* ``'none'``: plain ``jax.jit`` on the default device.

Multi-host: call ``jax.distributed.initialize()`` first (see the README); the
mesh spans every process's devices and each process feeds its own shard with
:func:`unigen_jax.parallel.shard_batch`.
"""

from __future__ import annotations

import functools
from typing import Any, Mapping, Optional, Union

import flax
import jax
import jax.numpy as jnp
import optax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from unigen_jax import parallel
from unigen_jax import variants as variants_lib
from unigen_jax.variants import Context, ModelConfig, Variant

BATCH_AXIS = parallel.BATCH_AXIS


@flax.struct.dataclass
class TrainState:
  """Everything a step changes: step count, parameters, batch statistics, optimizer states.

  ``params`` and ``batch_stats`` map network names to pytrees; ``opt_states``
  maps player names to optax states over that player's networks.
  """
  step: jax.Array
  params: Mapping[str, Any]
  batch_stats: Mapping[str, Any]
  opt_states: Mapping[str, Any]


class Model:
  """A variant with a resolved config: its networks, optimizers, initialiser and sampler."""

  def __init__(self, variant: Variant, cfg: ModelConfig):
    self.variant = variant
    self.cfg = variant.resolve(cfg)
    self.players = variant.players_for(self.cfg)  # in the configured update order
    self.optimizers = {p.name: variant.optimizer(self.cfg, p) for p in self.players}
    if self.cfg.microbatch_size:
      _check_microbatches(self)

  def modules(self, bn_axis_name: Optional[str] = None):
    return {name: spec.build(self.cfg, bn_axis_name) for name, spec in self.variant.modules.items()}

  def init(self, key: jax.Array, mesh: Optional[jax.sharding.Mesh] = None) -> TrainState:
    """Initial state: every network initialised from ``fold_in(key, index)``.

    Pass the train step's ``mesh`` (``'jit'``/``'shard_map'`` parallelism) to place the
    state replicated on it, as the step returns it; otherwise the step traces a second
    time when it first sees its own output.
    """
    modules = self.modules()
    params, batch_stats = {}, {}
    for index, (name, spec) in enumerate(sorted(self.variant.modules.items())):
      variables = modules[name].init(jax.random.fold_in(key, index),
                                     *spec.example_inputs(self.cfg), train=False)
      params[name] = variables["params"]
      batch_stats[name] = variables.get("batch_stats", {})
    opt_states = {
        p.name: self.optimizers[p.name].init({m: params[m] for m in p.modules})
        for p in self.players}
    state = TrainState(step=jnp.zeros((), jnp.int32), params=params, batch_stats=batch_stats,
                       opt_states=opt_states)
    if mesh is not None:
      state = jax.device_put(state, NamedSharding(mesh, P()))
    return state

  def context(self, state: TrainState, key: jax.Array, *, train: bool = False) -> Context:
    return Context(self.variant, self.cfg, self.modules(), state.params, state.batch_stats, key,
                   train=train)

  @functools.cached_property
  def _sample_fn(self):
    def sample(params, batch_stats, key, labels, n):
      ctx = Context(self.variant, self.cfg, self.modules(), params, batch_stats, key, train=False)
      return self.variant.sampler(ctx, n, labels)
    return jax.jit(sample, static_argnums=4)

  def sample(self, state: TrainState, key: jax.Array, n: int, labels=None) -> jax.Array:
    """``n`` generated images ``[n, H, W, C]`` in [0, 1] (batch norm in inference mode)."""
    if self.variant.sampler is None:
      raise ValueError(f"variant {self.variant.name!r} does not generate images.")
    if labels is not None:
      labels = jnp.asarray(labels, jnp.int32)
    return self._sample_fn(state.params, state.batch_stats, key, labels, n)

  def num_params(self, state: TrainState) -> dict:
    return {name: sum(x.size for x in jax.tree.leaves(p)) for name, p in state.params.items()}


def build(variant: Union[str, Variant], cfg: Optional[Union[ModelConfig, Mapping]] = None,
          **overrides) -> Model:
  """Builds a :class:`Model` from a registered name (or a ``Variant``) and config fields."""
  if isinstance(variant, str):
    variant = variants_lib.get(variant)
  if cfg is None:
    cfg = ModelConfig(**overrides)
  elif isinstance(cfg, Mapping):
    cfg = ModelConfig(**{**dict(cfg), **overrides})
  elif overrides:
    cfg = cfg.replace(**overrides)
  return Model(variant, cfg)


def _player_update(model: Model, modules, player, params, batch_stats, opt_state, batch, key,
                   axis_name, num_shards, received):
  """Gradient of one player's loss w.r.t. its own networks, and the optimizer update."""

  def objective(own_params, key=key, batch=batch):
    ctx = Context(model.variant, model.cfg, modules, {**params, **own_params}, batch_stats, key,
                  train=True, axis_name=axis_name, num_shards=num_shards, received=received)
    loss, metrics = player.loss(ctx, batch)
    return loss, (metrics, ctx.batch_stats, jax.lax.stop_gradient(ctx.handoff))

  own = {m: params[m] for m in player.modules}
  chunks = _num_microbatches(model, batch, axis_name)
  if chunks > 1:
    (loss, metrics), grads = _accumulated_value_and_grad(objective, own, batch, key, chunks)
    new_stats, handoff = batch_stats, {}  # none to update or hand on (_check_microbatches)
  elif axis_name is None:
    (loss, (metrics, new_stats, handoff)), grads = jax.value_and_grad(objective, has_aux=True)(own)
  else:
    # Differentiate w.r.t. a device-varying copy of the (replicated) parameters: each device
    # gets the gradient of its local mean loss (shard_map would otherwise psum it in the
    # transpose), and their pmean is the gradient of the global-batch loss, as with pmap.
    varying = jax.lax.pcast(own, axis_name, to="varying")
    (loss, (metrics, new_stats, handoff)), grads = jax.value_and_grad(objective, has_aux=True)(
        varying)
    grads = jax.lax.pmean(grads, axis_name)
    loss = jax.lax.pmean(loss, axis_name)
  updates, opt_state = model.optimizers[player.name].update(grads, opt_state, own)
  own = optax.apply_updates(own, updates)
  metrics = dict(metrics, **{f"{player.name}/loss": loss})
  return own, new_stats, opt_state, metrics, handoff


def _check_microbatches(model: Model) -> None:
  """Refuses a ``microbatch_size`` where chunking the batch would compute something else."""
  size, variant = model.cfg.microbatch_size, model.variant
  if len(model.players) != 1 or variant.activation_form != "per_example":
    raise ValueError(
        f"microbatch_size={size}: {variant.name!r} is not a single-player mean over independent "
        "examples (its players or its normalised weights couple the examples of a batch), so "
        "a chunked gradient would compute something else. Use microbatch_size=0.")
  if jax.tree.leaves(jax.eval_shape(model.init, jax.random.key(0)).batch_stats):
    raise ValueError(
        f"microbatch_size={size}: the networks use batch norm, whose statistics couple the "
        "examples of a batch. Use architecture='mlp' or microbatch_size=0.")


def microbatch_count(size: int, batch_sizes: dict, *, sharded: bool) -> int:
  """How many chunks ``microbatch_size=size`` cuts a batch of ``batch_sizes`` into.

  Raises ValueError where it cannot: under ``shard_map`` (``sharded``), or where ``size``
  does not divide a batch. One rule for the step and for ``config.resolve_config`` (which
  asks it with the configured batch size, before any file is written).
  """
  if not size or max(batch_sizes.values()) <= size:
    return 1
  if sharded:
    raise ValueError(f"microbatch_size={size} chunks the global batch of a 'jit' or 'none' "
                     "step; parallelism='shard_map' does not support it. Use parallelism='jit' "
                     "or microbatch_size=0.")
  bad = {k: n for k, n in batch_sizes.items() if n % size}
  if bad:
    raise ValueError(f"microbatch_size={size} does not divide the batch sizes {bad}; choose "
                     "a batch size that is a multiple of it.")
  return max(batch_sizes.values()) // size


def _num_microbatches(model: Model, batch, axis_name) -> int:
  """How many chunks ``microbatch_size`` cuts the batch into (the model was checked at build)."""
  return microbatch_count(model.cfg.microbatch_size,
                          {k: jnp.shape(v)[0] for k, v in batch.items()},
                          sharded=axis_name is not None)


def _accumulated_value_and_grad(objective, own, batch, key, chunks):
  """``(loss, metrics), grads`` of ``objective`` as means over ``chunks`` equal chunks of the batch.

  ``objective(own, key, batch) -> (loss, (metrics, ...))``; chunk ``i`` draws its noise from
  ``fold_in(key, i)``.
  """
  split = jax.tree.map(lambda x: x.reshape((chunks, x.shape[0] // chunks) + x.shape[1:]), batch)

  def body(total, inputs):
    index, chunk = inputs
    (loss, (metrics, *_)), grads = jax.value_and_grad(objective, has_aux=True)(
        own, jax.random.fold_in(key, index), chunk)
    return jax.tree.map(jnp.add, total, grads), (loss, metrics)

  total, (losses, metrics) = jax.lax.scan(body, jax.tree.map(jnp.zeros_like, own),
                                          (jnp.arange(chunks), split))
  mean = lambda x: jnp.mean(x, axis=0)  # noqa: E731  every chunk holds as many examples
  return (mean(losses), jax.tree.map(mean, metrics)), jax.tree.map(lambda g: g / chunks, total)


def _single_step(model: Model, modules, state: TrainState, batch, key, axis_name=None,
                 num_shards=1):
  key = jax.random.fold_in(key, state.step)
  params, batch_stats = dict(state.params), dict(state.batch_stats)
  opt_states = dict(state.opt_states)
  metrics = {}
  pending = []
  handed = {}  # arrays earlier players pass on (Context.handoff), e.g. the generated batch
  for index, player in enumerate(model.players):
    for repeat in range(player.steps):
      player_key = jax.random.fold_in(jax.random.fold_in(key, index), repeat)
      own, batch_stats, opt_state, player_metrics, handoff = _player_update(
          model, modules, player, params, batch_stats, opt_states[player.name], batch,
          player_key, axis_name, num_shards, handed)
      handed = {**handed, **handoff}
      opt_states[player.name] = opt_state
      metrics.update(player_metrics)
      if model.variant.schedule == "alternating":
        params.update(own)  # the next player sees the new parameters
      else:
        pending.append(own)
  for own in pending:  # simultaneous: every gradient was taken at the old parameters
    params.update(own)
  if axis_name is not None:
    metrics = jax.lax.pmean(metrics, axis_name)
  new_state = state.replace(step=state.step + 1, params=params, batch_stats=batch_stats,
                            opt_states=opt_states)
  return new_state, metrics


def make_train_step(model: Model, *, parallelism: str = "jit",
                    mesh: Optional[jax.sharding.Mesh] = None, steps_per_call: int = 1,
                    donate: bool = True):
  """Returns the compiled ``step(state, batch, key) -> (state, metrics)``.

  Args:
    model: from :func:`build`.
    parallelism: ``'jit'`` (sharded jit over ``mesh``), ``'shard_map'``
      (explicit per-device program with ``lax.pmean``) or ``'none'``.
    mesh: a 1-D mesh with axis ``'batch'``; default all devices of all hosts
      (:func:`unigen_jax.parallel.data_mesh`).
    steps_per_call: ``n > 1`` runs ``n`` steps per call with ``lax.scan`` over
      a batch with a leading axis ``n`` (amortises dispatch on small models);
      metrics are those of the last step.
    donate: donate the input state's buffers (``donate_argnums=0``).
  """
  if parallelism not in ("jit", "shard_map", "none"):
    raise ValueError(f"parallelism={parallelism!r}; use 'jit', 'shard_map' or 'none'.")
  if steps_per_call < 1:
    raise ValueError(f"steps_per_call must be >= 1, got {steps_per_call}.")
  if parallelism != "none" and mesh is None:
    mesh = parallel.data_mesh()
  num_shards = 1 if parallelism == "none" else mesh.shape[BATCH_AXIS]

  if parallelism == "shard_map":
    modules = model.modules(bn_axis_name=BATCH_AXIS)
    one_step = jax.shard_map(
        functools.partial(_single_step, model, modules, axis_name=BATCH_AXIS,
                          num_shards=num_shards),
        mesh=mesh, in_specs=(P(), P(BATCH_AXIS), P()), out_specs=(P(), P()))
  else:
    modules = model.modules()
    one_step = functools.partial(_single_step, model, modules)

  def step(state, batch, key):
    example = jax.tree.map(lambda x: x[0], batch) if steps_per_call > 1 else batch
    model.variant.check_batch(example, model.cfg)
    sizes = {k: jnp.shape(v)[0] for k, v in example.items()}
    bad = {k: n for k, n in sizes.items() if n % num_shards}
    if bad:
      raise ValueError(f"batch sizes {bad} are not divisible by the {num_shards} devices of "
                       "the mesh; use a global batch size that is a multiple of it.")
    if steps_per_call == 1:
      return one_step(state, batch, key)
    return _scan(one_step, state, batch, key)

  donate_argnums = (0,) if donate else ()
  if parallelism == "none":
    return jax.jit(step, donate_argnums=donate_argnums)
  replicated = NamedSharding(mesh, P())
  batch_spec = P(None, BATCH_AXIS) if steps_per_call > 1 else P(BATCH_AXIS)
  return jax.jit(step, in_shardings=(replicated, NamedSharding(mesh, batch_spec), replicated),
                 out_shardings=(replicated, replicated), donate_argnums=donate_argnums)


def _scan(one_step, state, batches, key):
  def body(carry, batch):
    new_state, metrics = one_step(carry, batch, key)
    return new_state, metrics
  state, metrics = jax.lax.scan(body, state, batches)
  return state, jax.tree.map(lambda m: m[-1], metrics)
