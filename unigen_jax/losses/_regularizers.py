r"""Gradient penalties of the discriminator: R1, R2 (Mescheder et al., 2018) and WGAN-GP.

The regularisers a GAN user adds to the discriminator objective beside the losses of
:mod:`unigen_jax.losses`. Each takes the discriminator as a *function* of its input
(``discriminator(x) -> logits [...]``; close over parameters, labels or codes) and the
inputs, and returns the per-example penalty with a ``reduction``. Inputs may be a pytree
(e.g. ALI's ``(x, z)`` pairs): the gradient norm runs over all of its leaves.

The gradient is that of the *sum* of the logits with respect to each input, which is each
example's own gradient when the discriminator treats examples independently (with batch
norm in training mode it also carries the batch coupling).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from unigen_jax.losses import _utils

Array = jax.Array
Discriminator = Callable[[Any], Array]


def _squared_gradient_norm(discriminator: Discriminator, inputs) -> Array:
  """Per-example ``||d D / d inputs||^2``, summed over every non-batch axis of every leaf."""
  logits, pullback = jax.vjp(discriminator, inputs)
  batch_ndims = jnp.ndim(logits)
  (grads,) = pullback(jnp.ones_like(logits))
  total = 0.0
  for g in jax.tree.leaves(grads):
    total = total + jnp.sum(jnp.square(g), axis=tuple(range(batch_ndims, jnp.ndim(g))))
  return total


def r1_penalty(discriminator: Discriminator, real, *, reduction: str = "mean") -> Array:
  r"""R1 penalty (Mescheder et al., 2018): the squared gradient norm of D at data.

  .. math::
    R_1(\phi) = \mathbb{E}_{p_{data}}\big[\|\nabla_x l_\phi(x)\|^2\big]

  Added to the discriminator loss as ``(gamma / 2) * r1_penalty(...)``; it pushes the
  discriminator towards zero gradient on the data manifold, which makes the
  simultaneous-gradient dynamics of the GAN game locally convergent.

  Args:
    discriminator: ``x -> logits [...]`` (per-example logits, any batch shape).
    real: data, ``[..., *event]`` (or a pytree of them).
    reduction: ``'mean'``, ``'sum'`` or ``'none'`` (``[...]``).

  Example:
    >>> import jax.numpy as jnp
    >>> from unigen_jax import losses
    >>> w = jnp.array([3.0, 4.0])
    >>> linear = lambda x: x @ w  # gradient w everywhere: ||w||^2 = 25
    >>> print(f"{float(losses.r1_penalty(linear, jnp.ones((5, 2)))):.1f}")
    25.0
  """
  _utils.check_reduction(reduction)
  return _utils.reduce(_squared_gradient_norm(discriminator, real), reduction)


def r2_penalty(discriminator: Discriminator, fake, *, reduction: str = "mean") -> Array:
  r"""R2 penalty (Mescheder et al., 2018): the squared gradient norm of D at generated samples.

  .. math::
    R_2(\phi) = \mathbb{E}_{p_\theta(x|y=0)}\big[\|\nabla_x l_\phi(x)\|^2\big]

  Pass the generated samples with ``stop_gradient`` (the penalty trains the
  discriminator only). Shapes as in :func:`r1_penalty`.

  Example:
    >>> import jax.numpy as jnp
    >>> from unigen_jax import losses
    >>> quadratic = lambda x: jnp.sum(x * x, axis=-1)  # gradient 2x
    >>> print(f"{float(losses.r2_penalty(quadratic, jnp.full((3, 2), 0.5))):.1f}")
    2.0
  """
  _utils.check_reduction(reduction)
  return _utils.reduce(_squared_gradient_norm(discriminator, fake), reduction)


def wgan_gp_penalty(discriminator: Discriminator, real, fake, key: Array, *,
                    target_norm: float = 1.0, reduction: str = "mean") -> Array:
  r"""WGAN-GP gradient penalty (Gulrajani et al., 2017) at random interpolates.

  .. math::
    \mathbb{E}_{\epsilon \sim U[0,1]}\big[(\|\nabla_x l_\phi(\hat x)\|_2 - 1)^2\big],
    \qquad \hat x = \epsilon\,x_{real} + (1-\epsilon)\,x_{fake}

  One :math:`\epsilon` per example (shared by the leaves of a pytree input). Usually
  added with weight 10. ``real`` and ``fake`` must have the same shape.

  Args:
    discriminator: ``x -> logits [...]``.
    real, fake: ``[..., *event]`` each (or pytrees of them), the same shapes.
    key: PRNG key of the interpolation weights.
    target_norm: the gradient norm the penalty pulls towards (1 in the paper).
    reduction: ``'mean'``, ``'sum'`` or ``'none'`` (``[...]``).

  Example:
    >>> import jax, jax.numpy as jnp
    >>> from unigen_jax import losses
    >>> linear = lambda x: x @ jnp.array([0.6, 0.8])  # a 1-Lipschitz critic: no penalty
    >>> x = jnp.ones((4, 2))
    >>> print(f"{float(losses.wgan_gp_penalty(linear, x, -x, jax.random.key(0))):.4f}")
    0.0000
  """
  _utils.check_reduction(reduction)
  real_leaves, fake_leaves = jax.tree.leaves(real), jax.tree.leaves(fake)
  for a, b in zip(real_leaves, fake_leaves):
    _utils.check_same_shape("real", a, "fake", b)
  batch_shape = tuple(jax.eval_shape(discriminator, real).shape)  # no forward pass
  eps = jax.random.uniform(key, batch_shape)

  def mix(a, b):
    e = eps.reshape(batch_shape + (1,) * (jnp.ndim(a) - len(batch_shape)))
    return e * a + (1.0 - e) * b

  interpolates = jax.tree.map(mix, real, fake)
  norm = jnp.sqrt(_squared_gradient_norm(discriminator, interpolates) + 1e-12)
  return _utils.reduce(jnp.square(norm - target_norm), reduction)
