"""CPU kernels of the convolution layers: equal functions that XLA:CPU runs fast.

XLA:CPU runs some convolutions far off the speed of a matmul (Eigen's slow paths): the
gradient of a wide stride-2 transposed convolution, and strided convolutions with a tiny
output. The layers of :mod:`unigen_jax.models.backbones` call the entry points here, which
compute the *same function* (tested to 1e-12 in float64) in a form that is fast on CPU:

* :func:`conv_transpose`: stride-2 transposed convolution, as four sub-pixel phase
  convolutions of the undilated input (:func:`subpixel_conv_transpose`);
* :func:`upsample_conv`: nearest x2 upsampling + 3x3 'same' convolution, as the equal 4x4
  transposed convolution (:func:`upsampled_conv_kernel`) in sub-pixel form;
* :func:`conv`: strided convolution with an output of at most 4x4, as patches + one matmul
  (:func:`patches_conv`).

:func:`over_batch_chunks` runs any of them (or an ``nn.Conv``) over chunks of the batch, one
convolution per chunk in the same program (``ModelConfig.conv_batch_chunk``).

The choice is made here, once per process (``method='auto'``: the fast form on the CPU
backend, ``lax`` elsewhere); layers never look at the backend. ``python -m
benchmarks.layer_times`` times both forms of each layer.
"""

from __future__ import annotations

import functools
import math
from typing import Callable

import jax
import jax.numpy as jnp

_DIMENSIONS = ("NHWC", "HWIO", "NHWC")


@functools.lru_cache(maxsize=None)
def _on_cpu() -> bool:
  return jax.default_backend() == "cpu"


def conv_transpose(x: jax.Array, kernel: jax.Array, strides: int, padding,
                   method: str = "auto") -> jax.Array:
  """``lax.conv_transpose(x, kernel, (s, s), padding)``; ``method``: 'auto', 'subpixel', 'lax'.

  'auto' uses the sub-pixel form on CPU for stride 2 with more than one output channel
  (with one channel the lax path is faster) and ``lax.conv_transpose`` otherwise.
  """
  if method not in ("auto", "subpixel", "lax"):
    raise ValueError(f"method={method!r}; use 'auto', 'subpixel' or 'lax'.")
  if method == "auto":
    method = "subpixel" if _on_cpu() and kernel.shape[-1] > 1 else "lax"
  if method == "subpixel" and strides == 2:
    return subpixel_conv_transpose(x, kernel, padding)
  return jax.lax.conv_transpose(x, kernel, (strides, strides), padding,
                                dimension_numbers=_DIMENSIONS)


def upsample_conv(x: jax.Array, kernel: jax.Array, method: str = "subpixel") -> jax.Array:
  """Nearest x2 upsampling then a 3x3 'same' convolution with ``kernel [3, 3, C_in, C_out]``.

  'subpixel' (default, every backend: 2.25x fewer FLOPs) or 'direct' (as written).
  """
  if method == "direct":
    b, h, w, c = x.shape
    up = jnp.broadcast_to(x[:, :, None, :, None, :], (b, h, 2, w, 2, c)).reshape(
        (b, 2 * h, 2 * w, c))
    return jax.lax.conv_general_dilated(up, kernel, (1, 1), ((1, 1), (1, 1)),
                                        dimension_numbers=_DIMENSIONS)
  if method == "subpixel":
    # 'SAME' for kernel 4, stride 2: the dilated input is padded by 2 on each side.
    return subpixel_conv_transpose(x, upsampled_conv_kernel(kernel), ((2, 2), (2, 2)))
  raise ValueError(f"method={method!r}; use 'subpixel' or 'direct'.")


def conv(x: jax.Array, kernel: jax.Array, strides: int, padding,
         method: str = "auto") -> jax.Array:
  """``lax.conv_general_dilated(x, kernel, (s, s), padding)``; 'auto', 'patches' or 'lax'.

  'auto' uses :func:`patches_conv` on CPU when the output is at most 4x4 (20-50x faster
  there for the wide late layers of a conv encoder), ``lax`` otherwise.
  """
  if method not in ("auto", "patches", "lax"):
    raise ValueError(f"method={method!r}; use 'auto', 'patches' or 'lax'.")
  k_h, k_w = kernel.shape[:2]
  out_h = (x.shape[1] + sum(padding[0]) - k_h) // strides + 1
  out_w = (x.shape[2] + sum(padding[1]) - k_w) // strides + 1
  if method == "auto":
    method = "patches" if _on_cpu() and out_h * out_w <= 16 else "lax"
  if method == "patches":
    return patches_conv(x, kernel, strides, padding)
  return jax.lax.conv_general_dilated(x, kernel, (strides, strides), padding,
                                      dimension_numbers=_DIMENSIONS)


# The most chunks over_batch_chunks cuts a batch into (see there).
MAX_CHUNKS = 16


def over_batch_chunks(fn: Callable[[jax.Array], jax.Array], x: jax.Array,
                      chunk: int) -> jax.Array:
  """``fn(x)`` for a function that acts on each example alone (a convolution), computed as
  one call of ``fn`` per chunk of at most ``chunk`` examples, unrolled in the program.

  Why: XLA:CPU's convolutions cost more per example as the batch grows (their forward and,
  above all, their gradients: ``benchmarks/RESULTS_layer_scaling.md``), while the same
  convolutions over chunks of 16-64 examples stay on their fast path. The chunks are unrolled
  Python calls, not a ``lax.scan``: a convolution inside an XLA loop leaves the fast path
  (``benchmarks/chunked_layers.py``). The result is the same function; the gradient of a
  shared kernel is summed over the chunks, so it rounds differently from one convolution.

  The batch ``B`` is cut into ``n`` equal chunks, ``n`` the smallest divisor of ``B`` with
  ``B / n <= chunk``, but never more than ``MAX_CHUNKS`` (then the largest divisor of ``B`` up
  to it, and chunks of more than ``chunk`` examples): the program, its compile time and its
  memory grow with the number of chunks (64 chunks of a DCGAN step: 491 s of compilation and
  0.07x the speed of 16, ``benchmarks/RESULTS.md``).

  Which examples a chunk holds: the batch is seen as ``g = gcd(jax.device_count(), B / n)``
  equal blocks (one per device when the batch is sharded over them), and chunk ``j`` takes
  the ``j``-th run of ``B / (g n)`` consecutive examples of every block. On one device
  (``g = 1``) a chunk is one contiguous slice of the batch and costs no strided gather (the
  conv VAE's step at batches 256-1024 +5-8%, the PyTorch-GAN DCGAN's +0-4% against chunks of
  one-example runs: ``benchmarks/results_conv_chunk_layout/README.md``); under a
  batch-sharded ``jit`` each device holds one block, so every chunk spans every device and each
  device convolves its own examples (no collective beyond the whole-batch step's: tested on 8
  simulated devices). Correct for any batch and device count; other shardings move data.

  Args:
    fn: ``[b, ...] -> [b, ...]``, acting on every example independently.
    x: ``[B, ...]``.
    chunk: the most examples per call; ``0`` or ``>= B``: one call, ``fn(x)``.

  Returns:
    ``fn(x)``, shape ``[B, ...]``.
  """
  if chunk < 0:
    raise ValueError(f"chunk must be >= 0 (0: the whole batch at once), got {chunk}.")
  batch = x.shape[0]
  if chunk == 0 or batch <= chunk:
    return fn(x)
  divisors = [n for n in range(1, MAX_CHUNKS + 1) if batch % n == 0]  # 1 always divides
  num_chunks = min((n for n in divisors if n * chunk >= batch), default=divisors[-1])
  if num_chunks == 1:
    return fn(x)
  blocks = math.gcd(jax.device_count(), batch // num_chunks)
  run = batch // (blocks * num_chunks)
  runs = x.reshape((blocks, num_chunks, run) + x.shape[1:])
  outputs = [fn(runs[:, j].reshape((blocks * run,) + x.shape[1:])) for j in range(num_chunks)]
  outputs = jnp.stack([y.reshape((blocks, run) + y.shape[1:]) for y in outputs], axis=1)
  return outputs.reshape((batch,) + outputs.shape[3:])


def upsampled_conv_kernel(kernel: jax.Array) -> jax.Array:
  """The 4x4 stride-2 transposed-convolution kernel equal to nearest-x2 upsampling followed
  by this 3x3 'same' convolution.

  Upsampling repeats each input pixel over a 2x2 block (a transposed convolution with a
  2x2 box kernel); convolving that with the 3x3 kernel adds neighbouring taps, along each
  axis ``[k0, k0 + k1, k1 + k2, k2]``. Row ``2i + a`` of the upsampled image reads input
  rows ``i - 1, i, i`` (``a = 0``) or ``i, i, i + 1`` (``a = 1``): the transposed
  convolution's even and odd taps.
  """
  def box(k, axis):
    k0, k1, k2 = (jnp.take(k, i, axis=axis) for i in range(3))
    return jnp.stack([k0, k0 + k1, k1 + k2, k2], axis=axis)
  return box(box(kernel, 0), 1)


def _phase_plan(size: int, k: int, low: int, high: int):
  """Along one axis of a stride-2 transposed convolution (kernel ``k``, padding ``(low, high)``
  of the zero-dilated input): the output size and, per output phase ``a`` (0: even, 1: odd
  positions), ``(kernel taps, pad_low, pad_high, outputs)`` of the ordinary convolution
  of the *undilated* input that produces that phase. Output ``2m + a`` reads dilated
  position ``2m + a + t - low`` with tap ``t``, which is an input pixel only when it is
  even: only the taps with ``a + t - low`` even contribute, at input ``m + (a + t - low) / 2``.
  """
  out = (size - 1) * 2 + 1 + low + high - k + 1
  plan = []
  for a in (0, 1):
    taps = [t for t in range(k) if (a + t - low) % 2 == 0]
    n = (out - a + 1) // 2
    pad_low = -((a + taps[0] - low) // 2) if taps else 0
    pad_high = n - size - pad_low + len(taps) - 1
    plan.append((taps, pad_low, pad_high, n))
  return out, plan


def subpixel_conv_transpose(x: jax.Array, kernel: jax.Array, padding) -> jax.Array:
  """``lax.conv_transpose(x, kernel, (2, 2), padding)`` (NHWC/HWIO, explicit padding) as
  four ordinary convolutions of the undilated input, one per output phase, interleaved.

  The zeros a transposed convolution inserts between input pixels are never multiplied
  (a quarter of the FLOPs), and every convolution is a plain stride-1 one, which XLA:CPU
  differentiates on its fast path. Same function up to float rounding (tested to 1e-12 in
  float64 against ``lax.conv_transpose`` for kernels 3-5 and all paddings).
  """
  b, h, w, _ = x.shape
  k_h, k_w, _, features = kernel.shape
  out_h, rows = _phase_plan(h, k_h, *padding[0])
  out_w, cols = _phase_plan(w, k_w, *padding[1])
  n_rows, n_cols = rows[0][3], cols[0][3]  # the even phase is the longer one
  grid = []
  for row_taps, row_low, row_high, row_n in rows:
    line = []
    for col_taps, col_low, col_high, col_n in cols:
      if not row_taps or not col_taps or row_n <= 0 or col_n <= 0:
        y = jnp.zeros((b, max(row_n, 0), max(col_n, 0), features), x.dtype)
      else:
        y = jax.lax.conv_general_dilated(
            x, kernel[jnp.asarray(row_taps)][:, jnp.asarray(col_taps)], (1, 1),
            ((row_low, row_high), (col_low, col_high)),
            dimension_numbers=("NHWC", "HWIO", "NHWC"))
      # The odd phase may be one shorter: pad it to the even one's length, crop below.
      line.append(jnp.pad(y, ((0, 0), (0, n_rows - y.shape[1]), (0, n_cols - y.shape[2]),
                              (0, 0))))
    grid.append(jnp.stack(line, axis=3))  # [B, n_rows, n_cols, 2 (col phase), C]
  y = jnp.stack(grid, axis=2)  # [B, n_rows, 2 (row phase), n_cols, 2, C]
  return y.reshape(b, 2 * n_rows, 2 * n_cols, features)[:, :out_h, :out_w]


def patches_conv(x: jax.Array, kernel: jax.Array, strides: int, padding) -> jax.Array:
  """A strided convolution written as patch extraction (strided slices) and one matmul.

  ``lax.conv_general_dilated(x, kernel, (s, s), padding)`` up to float rounding. XLA:CPU
  runs wide stride-2 convolutions with a tiny output badly (4x4, 512 -> 1024 channels
  from 3x3 to 1x1 at batch 64: 2.1 s forward against 0.014 s as a matmul); with the
  patches the work is one large dot and its gradient, on the fast path.
  """
  k_h, k_w, c_in, features = kernel.shape
  x = jnp.pad(x, ((0, 0), tuple(padding[0]), tuple(padding[1]), (0, 0)))
  out_h = (x.shape[1] - k_h) // strides + 1
  out_w = (x.shape[2] - k_w) // strides + 1
  patches = jnp.concatenate(
      [x[:, i:i + strides * (out_h - 1) + 1:strides, j:j + strides * (out_w - 1) + 1:strides]
       for i in range(k_h) for j in range(k_w)], axis=-1)  # [B, out_h, out_w, k_h k_w C_in]
  return jnp.einsum("bhwk,kc->bhwc", patches, kernel.reshape(k_h * k_w * c_in, features))
