"""Shared argument checks and reductions for the loss functions.

Checks run on static shapes, so a bad call fails at trace time (inside ``jit``
too) with one message that names the argument and the fix.
"""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp

Array = jax.Array

REDUCTIONS = ("mean", "sum", "none")


def check_reduction(reduction: str) -> None:
  if reduction not in REDUCTIONS:
    raise ValueError(
        f"reduction={reduction!r} is not supported; use one of {REDUCTIONS} "
        "('none' returns per-example values).")


def check_batch_vector(name: str, values: Array) -> None:
  """Requires a rank-1 array ``[B]`` of per-example values (e.g. logits)."""
  shape = jnp.shape(values)
  if len(shape) != 1:
    hint = " (squeeze the trailing axis: x[..., 0])" if len(shape) == 2 and shape[-1] == 1 else ""
    raise ValueError(
        f"{name} must have shape [batch], one value per example, but has shape "
        f"{shape}{hint}.")


def check_same_shape(name_a: str, a: Array, name_b: str, b: Array) -> None:
  if jnp.shape(a) != jnp.shape(b):
    raise ValueError(
        f"{name_a} has shape {jnp.shape(a)} but {name_b} has shape {jnp.shape(b)}; "
        "they must match (one value per example).")


def apply_weights(weights_name: str, weights: Optional[Array], values: Array) -> Array:
  """Multiplies per-example ``values [B]`` by optional ``weights [B]``."""
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
  """Reduction of a loss with two batches (real and fake, source and target).

  'mean' is the sum of the two batch means (two expectations, as in the paper's
  objectives), 'sum' the sum of all terms, 'none' the pair of per-example arrays.
  """
  if reduction == "none":
    return first, second
  return reduce(first, reduction) + reduce(second, reduction)
