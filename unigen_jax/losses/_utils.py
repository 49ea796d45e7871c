"""Shared argument checks and reductions of the loss functions.

Checks run on static shapes, so a bad call fails at trace time (inside ``jit`` too) with
one ``ValueError`` that names the argument and the fix. Per-example values may have any
batch shape ``[...]``; reductions run over all of its axes.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
from jax.experimental import checkify

Array = jax.Array

REDUCTIONS = ("mean", "sum", "none")


class TwoBatch(NamedTuple):
  """Per-example terms of a loss over two batches (``reduction='none'``).

  ``real`` and ``fake`` (source and target, prior and posterior, ...) keep their own batch
  shapes, which may differ. With ``'mean'`` the same losses return the scalar
  ``mean(real) + mean(fake)`` (the two expectations of the paper's objective), with
  ``'sum'`` the sum of every term.
  """
  real: Array
  fake: Array


def check_reduction(reduction: str) -> None:
  if reduction not in REDUCTIONS:
    raise ValueError(
        f"reduction={reduction!r} is not supported; use one of {REDUCTIONS} "
        "('none' returns per-example values).")


def check_same_shape(name_a: str, a: Array, name_b: str, b: Array) -> None:
  if jnp.shape(a) != jnp.shape(b):
    raise ValueError(
        f"{name_a} has shape {jnp.shape(a)} but {name_b} has shape {jnp.shape(b)}; "
        "they must match (one value per example).")


def check_trailing(name: str, values: Array, what: str, batch_shape=None) -> None:
  """``values`` is ``[..., n]`` (``what`` names the trailing axis) with batch ``batch_shape``."""
  shape = jnp.shape(values)
  if len(shape) < 1:
    raise ValueError(f"{name} must have a trailing {what} axis, got a scalar.")
  if batch_shape is not None and shape[:-1] != tuple(batch_shape):
    raise ValueError(f"{name} must have shape [*batch, {what}] with batch {tuple(batch_shape)}, "
                     f"got {shape}.")


def check_integer(name: str, values: Array) -> None:
  if not jnp.issubdtype(jnp.result_type(values), jnp.integer):
    raise ValueError(f"{name} must be integers (class indices), got dtype "
                     f"{jnp.result_type(values)}.")


def check_label_values(name: str, labels: Array, num_classes: int, validate: bool) -> None:
  """With ``validate``, a runtime check that labels are in ``[0, num_classes)``.

  A label of -1 would silently pick the last class and one >= ``num_classes`` gives NaN.
  The check is a ``checkify.check``: eagerly it raises at once; under ``jit`` wrap the
  function with ``checkify.checkify`` (see :func:`unigen_jax.losses.checked`).
  """
  if validate:
    checkify.check(jnp.all((labels >= 0) & (labels < num_classes)),
                   f"{name} must be in [0, {num_classes}); got values from {{lo}} to {{hi}}",
                   lo=jnp.min(labels), hi=jnp.max(labels))


def apply_weights(weights_name: str, weights: Optional[Array], values: Array) -> Array:
  """Multiplies per-example ``values`` by optional ``weights`` of the same shape."""
  if weights is None:
    return values
  if jnp.shape(weights) != jnp.shape(values):
    raise ValueError(
        f"{weights_name} has shape {jnp.shape(weights)} but there are "
        f"{jnp.shape(values)} per-example values; pass one weight per example.")
  return values * weights


def reduce(values: Array, reduction: str) -> Array:
  """Reduces per-example values: 'mean' and 'sum' over all axes, 'none' keeps them."""
  if reduction == "mean":
    return jnp.mean(values)
  if reduction == "sum":
    return jnp.sum(values)
  return values


def reduce_two_sided(first: Array, second: Array, reduction: str):
  """Reduction of a loss over two batches: see :class:`TwoBatch`."""
  if reduction == "none":
    return TwoBatch(first, second)
  return reduce(first, reduction) + reduce(second, reduction)


def checked(fn):
  """``fn`` with its runtime checks (``validate=True`` label checks) turned into errors under jit.

  ``checked(jax.jit(f))(*args)`` raises ``JaxRuntimeError`` naming the bad labels; this is
  ``checkify.checkify(fn, errors=checkify.user_checks)`` followed by ``err.throw()``.
  """
  checkified = checkify.checkify(fn, errors=checkify.user_checks)

  def run(*args, **kwargs):
    err, out = checkified(*args, **kwargs)
    err.throw()
    return out
  return run
