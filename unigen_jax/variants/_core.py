"""Declarations of model variants: players, their losses, optimizers and schedule.

A *variant* (GAN, IWGAN, VAE, AA-VAE, ...) is a declaration, not a training loop:

* ``modules``: named networks (``ModuleSpec``), each with its own parameters in
  ``state.params[name]``. Variants that share a network share its name, so GAN
  and IWGAN have identical pytrees and AA-VAE is VAE plus a ``discriminator``.
* ``players``: parameter groups that minimise one loss each (``Player``). A
  loss is a function ``loss(ctx, batch) -> (scalar, metrics)`` written with
  :mod:`unigen_jax.losses`; ``ctx`` (a ``Context``) applies networks with the
  current parameters and batch statistics and draws random numbers.
* ``orders``: optional alternative player orders, chosen with
  ``ModelConfig.update_order``. A player's loss may hand arrays to the players after it
  in the same step (``ctx.handoff[name] = ...``; they read ``ctx.received``), e.g. the
  generated batch, so that the next player does not recompute it.
* ``schedule``: ``'alternating'`` (players update in order, each seeing the
  previous players' new parameters, as in DCGAN) or ``'simultaneous'`` (every
  gradient is taken at the same parameters).

The compiled update step in :mod:`unigen_jax.train_step` serves all variants.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from unigen_jax import model_config

Array = jax.Array
Batch = Mapping[str, Array]
LossFn = Callable[["Context", Batch], tuple[Array, dict]]


ModelConfig = model_config.ModelConfig


@dataclasses.dataclass(frozen=True)
class ModuleSpec:
  """A named network: how to build it and example inputs to initialise it.

  ``build(cfg, bn_axis_name)`` returns a Linen module whose ``__call__`` takes
  ``train=`` as a keyword; ``example_inputs(cfg)`` returns the positional
  inputs for ``init`` (batch of 2).
  """
  build: Callable[[ModelConfig, Optional[str]], nn.Module]
  example_inputs: Callable[[ModelConfig], tuple]


@dataclasses.dataclass(frozen=True)
class Player:
  """A parameter group minimising one loss.

  Attributes:
    name: used in metrics (``'<name>/loss'``) and optimizer states.
    modules: names of the networks whose parameters this player updates. Each
      network belongs to exactly one player.
    loss: ``loss(ctx, batch) -> (scalar, metrics)``.
    steps: updates of this player per train step.
    role: ``'discriminator'`` for players that train a discriminator or critic whose
      step size is ``ModelConfig.discriminator_learning_rate``; ``''`` otherwise.
  """
  name: str
  modules: tuple
  loss: LossFn
  steps: int = 1
  role: str = ""


@dataclasses.dataclass(frozen=True)
class Variant:
  """A model of the paper as a declaration (see the module docstring).

  Attributes:
    name: registry key.
    description: one line, with the paper equation.
    family: ``'adversarial'``, ``'variational'`` or ``'symmetric'``.
    modules: ``{name: ModuleSpec}``.
    players: update order for the alternating schedule.
    batch_keys: keys the batch must hold (``'image'`` always; ``'label'`` for
      conditional variants, ``'unlabelled_image'`` for semi-supervised ones,
      ``'target_image'`` for domain adaptation).
    defaults: ``ModelConfig`` fields used where the config says ``None``.
    schedule: ``'alternating'`` or ``'simultaneous'``.
    sampler: ``sampler(ctx, n, labels) -> images [n, H, W, C]`` in [0, 1], or
      None for variants that do not generate.
    conditional: whether ``sampler`` uses labels (one grid row per class).
    orders: ``{name: player names}``: alternative update orders of the same players,
      selected by ``ModelConfig.update_order``.
    likelihood_bound: which test-set likelihood bound the evaluation computes:
      ``'gaussian'`` (a diagonal-Gaussian ``encoder`` and Bernoulli ``decoder``; conditioned
      on the label when ``conditional``), ``'m2'`` (semi-supervised: the label
      marginalised by ``classifier``) or ``None`` (no bound, e.g. GANs, AVB).
    label_classifier: name of the network that predicts labels (``svae_accuracy``), or None.
    sample_classes: ``sample_classes(cfg) -> int``: the number of label values the sampler
      is conditioned on (one grid row each); default ``cfg.num_classes`` when
      ``conditional``.
    revision: bumped when a change alters what a variant computes or its parameter tree, so
      that a checkpoint written by an older revision is refused, not silently resumed.
    data_binarization: the training data it expects by default: ``'dynamic'`` (binary
      images, the VAE family's Bernoulli likelihood) or ``'none'`` (grey levels, GANs).
    generator_objective: how its generator-side players are trained against a binary
      discriminator (``'nonsaturating'``, ``'minimax'`` or ``'importance_weighted'``, Eq. 16;
      their losses read it through ``_specs.generator_term``), or None when it has no such
      player. :func:`importance_weighted` sets it.
    example_objective: ``objective(ctx, x, labels, record_stats=True) -> (per-example loss
      [B], metrics)`` of the wake-direction player ``objective_player`` (its loss is the
      mean), the hook :func:`adversary_activated` weights by a trained discriminator (Eq. 17).
    objective_player: the player ``example_objective`` belongs to.
    activation_form: how :func:`adversary_activated` applies: ``'per_example'`` (through
      ``example_objective``), ``'m2'`` (the semi-supervised M2's labelled, unlabelled and
      generated terms) or None (undefined).
  """
  name: str
  description: str
  family: str
  modules: Mapping[str, ModuleSpec]
  players: Sequence[Player]
  batch_keys: tuple = ("image",)
  defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  schedule: str = "alternating"
  sampler: Optional[Callable] = None
  conditional: bool = False
  orders: Mapping[str, Sequence[str]] = dataclasses.field(default_factory=dict)
  likelihood_bound: Optional[str] = None
  label_classifier: Optional[str] = None
  sample_classes: Optional[Callable[[ModelConfig], int]] = None
  revision: int = 1
  data_binarization: str = "dynamic"
  generator_objective: Optional[str] = None
  example_objective: Optional[Callable] = None
  objective_player: Optional[str] = None
  activation_form: Optional[str] = None

  def __post_init__(self):
    owners = {}
    for player in self.players:
      for module in player.modules:
        if module not in self.modules:
          raise ValueError(f"variant {self.name!r}: player {player.name!r} updates unknown "
                           f"module {module!r}; modules are {sorted(self.modules)}.")
        if module in owners:
          raise ValueError(f"variant {self.name!r}: module {module!r} is updated by both "
                           f"{owners[module]!r} and {player.name!r}; give it one owner.")
        owners[module] = player.name
    if "default" in self.orders:
      raise ValueError(f"variant {self.name!r}: 'default' is the order of `players`; give "
                       "the alternative order another name.")
    if self.schedule not in ("alternating", "simultaneous"):
      raise ValueError(f"schedule={self.schedule!r}; use 'alternating' or 'simultaneous'.")
    if self.generator_objective not in (None, "nonsaturating", "minimax", "importance_weighted"):
      raise ValueError(f"variant {self.name!r}: generator_objective={self.generator_objective!r}; "
                       "use 'nonsaturating', 'minimax', 'importance_weighted' or None.")
    if self.activation_form not in (None, "per_example", "m2"):
      raise ValueError(f"variant {self.name!r}: activation_form={self.activation_form!r}.")
    if self.activation_form == "per_example" and (
        self.example_objective is None
        or self.objective_player not in {p.name for p in self.players}):
      raise ValueError(f"variant {self.name!r}: activation_form='per_example' needs "
                       "example_objective and objective_player naming one of its players.")
    if self.likelihood_bound not in (None, "gaussian", "m2"):
      raise ValueError(f"variant {self.name!r}: likelihood_bound={self.likelihood_bound!r}; "
                       "use 'gaussian', 'm2' or None.")
    for player in self.players:
      if player.role not in ("", "discriminator"):
        raise ValueError(f"variant {self.name!r}: player {player.name!r} has role "
                         f"{player.role!r}; use 'discriminator' or ''.")

  def num_sample_classes(self, cfg: ModelConfig) -> Optional[int]:
    """Label values the sampler takes (one grid row each), or None if it takes none."""
    if not self.conditional:
      return None
    return self.sample_classes(cfg) if self.sample_classes is not None else cfg.num_classes

  def resolve(self, cfg: ModelConfig) -> ModelConfig:
    """Fills the config's ``None`` fields from this variant's defaults."""
    updates = {k: v for k, v in self.defaults.items() if getattr(cfg, k, None) is None}
    return cfg.replace(**updates)

  def players_for(self, cfg: ModelConfig) -> Sequence[Player]:
    """The players in the update order ``cfg.update_order``."""
    if cfg.gradient_penalty != "none" and not any(p.role == "discriminator" for p in self.players):
      raise ValueError(f"gradient_penalty={cfg.gradient_penalty!r}: variant {self.name!r} has no "
                       "discriminator to penalise; set it to 'none'.")
    if cfg.update_order == "default":
      return tuple(self.players)
    if cfg.update_order not in self.orders:
      raise ValueError(f"variant {self.name!r} has no update_order {cfg.update_order!r}; "
                       f"available: {['default', *sorted(self.orders)]}.")
    by_name = {p.name: p for p in self.players}
    names = list(self.orders[cfg.update_order])
    if sorted(names) != sorted(by_name):
      raise ValueError(f"variant {self.name!r}: update_order {cfg.update_order!r} lists players "
                       f"{names}, but the variant's players are {sorted(by_name)}.")
    return tuple(by_name[n] for n in names)

  def optimizer(self, cfg: ModelConfig, player: Player) -> optax.GradientTransformation:
    learning_rate = cfg.learning_rate
    if player.role == "discriminator" and cfg.discriminator_learning_rate is not None:
      learning_rate = cfg.discriminator_learning_rate
      if learning_rate == 0:  # frozen at initialisation: no optimizer state, no update
        return optax.set_to_zero()
    if cfg.optimizer == "sgd":
      return optax.sgd(learning_rate)
    return optax.adam(learning_rate, b1=cfg.b1, b2=cfg.b2)

  def check_batch(self, batch: Batch, cfg: ModelConfig) -> None:
    """Raises one clear error for a batch this variant cannot use."""
    if not isinstance(batch, Mapping):
      raise TypeError(f"a batch is a dict of arrays with keys {self.batch_keys}, got {type(batch).__name__}.")
    missing = [k for k in self.batch_keys if k not in batch]
    if missing:
      hint = ""
      if "label" in missing:
        hint = " It is a conditional variant: use a labelled dataset (mnist, fashion_mnist, ...)."
      if "unlabelled_image" in missing:
        hint = " It is semi-supervised: set the data config's num_labelled to split the data."
      if "target_image" in missing:
        hint = " It adapts between domains: the data config must give a target domain."
      raise ValueError(f"variant {self.name!r} needs batch keys {list(self.batch_keys)}, "
                       f"missing {missing}.{hint}")
    for key in self.batch_keys:
      if key.endswith("image"):
        shape = tuple(jnp.shape(batch[key])[1:])
        if shape != cfg.image_shape:
          raise ValueError(
              f"batch[{key!r}] has images of shape {shape} but the model is built for "
              f"image_shape={cfg.image_shape}; set model.image_shape to the dataset's "
              "(H, W, C) with channels last.")
    if "label" in self.batch_keys:
      if jnp.shape(batch["label"]) != jnp.shape(batch["image"])[:1]:
        raise ValueError(f"batch['label'] must have shape [batch] = {jnp.shape(batch['image'])[:1]}, "
                         f"got {jnp.shape(batch['label'])}.")


class Context:
  """What a player's loss sees: networks bound to the current parameters, and RNG.

  ``apply`` threads batch statistics functionally (updated in ``batch_stats``
  when ``train``). ``handoff`` collects arrays this player passes to the players after
  it in the same step (their gradient is stopped); ``received`` holds those passed to
  it. Random draws (``normal``, ``uniform``, ``randint``, ``bernoulli``) take the *local* batch shape; inside ``shard_map`` they are
  slices of the draw for the global batch, so a sharded step sees the same
  random numbers as a single-device step on the whole batch.
  """

  def __init__(self, variant: Variant, cfg: ModelConfig, modules: Mapping[str, nn.Module],
               params: Mapping[str, Any], batch_stats: Mapping[str, Any], key: Array, *,
               train: bool = True, axis_name: Optional[str] = None, num_shards: int = 1,
               received: Optional[Mapping[str, Array]] = None):
    self.variant = variant
    self.cfg = cfg
    self.modules = modules
    self.params = params
    self.batch_stats = dict(batch_stats)
    self.train = train
    self.axis_name = axis_name
    self.num_shards = num_shards
    self._key = key
    self._draws = 0
    self.received = dict(received or {})
    self.handoff = {}

  def apply(self, name: str, *args, record_stats: bool = True, **kwargs):
    """Applies network ``name``; in training, batch norm uses the batch's statistics.

    ``record_stats=False`` normalises with the batch's statistics but does not record them
    into the running averages used at test time (e.g. for generated samples, so that the
    test-time statistics of an encoder come from real data only).
    """
    if self.train and self.cfg.dropout > 0:
      key = self.next_key()
      if self.axis_name is not None:  # independent masks per shard
        key = jax.random.fold_in(key, jax.lax.axis_index(self.axis_name))
      kwargs["rngs"] = {"dropout": key}
    variables = {"params": self.params[name]}
    stats = self.batch_stats.get(name)
    if stats:
      variables["batch_stats"] = stats
      if self.train:
        out, updated = self.modules[name].apply(variables, *args, train=True,
                                                mutable=["batch_stats"], **kwargs)
        if record_stats:
          self.batch_stats[name] = updated["batch_stats"]
        return out
    return self.modules[name].apply(variables, *args, train=self.train, **kwargs)

  def next_key(self) -> Array:
    self._draws += 1
    return jax.random.fold_in(self._key, self._draws)

  def _draw(self, sample_fn, shape, axis=0):
    """Draws ``shape`` (local) as a slice of the global draw along ``axis``."""
    key = self.next_key()
    if self.axis_name is None:
      return sample_fn(key, tuple(shape))
    shape = list(shape)
    local = shape[axis]
    shape[axis] = local * self.num_shards
    full = sample_fn(key, tuple(shape))
    start = jax.lax.axis_index(self.axis_name) * local
    return jax.lax.dynamic_slice_in_dim(full, start, local, axis=axis)

  def normal(self, shape, axis=0):
    return self._draw(lambda k, s: jax.random.normal(k, s), shape, axis)

  def uniform(self, shape, minval=0.0, maxval=1.0, axis=0):
    return self._draw(lambda k, s: jax.random.uniform(k, s, minval=minval, maxval=maxval),
                      shape, axis)

  def randint(self, shape, maxval, axis=0):
    return self._draw(lambda k, s: jax.random.randint(k, s, 0, maxval), shape, axis)

  def bernoulli(self, probs, axis=0):
    u = self.uniform(probs.shape, axis=axis)
    return (u < probs).astype(probs.dtype)
