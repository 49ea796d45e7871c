"""Forward and forward+backward time of single layers in their lax form and the CPU form.

  python -m benchmarks.layer_times [--batch=64] [--out=benchmarks/results/layer_times.json]

The layers behind the CPU rewrites in ``unigen_jax.models.backbones`` (same parameters,
same function): stride-2 transposed convolutions (``subpixel_conv_transpose``), strided
convolutions with a tiny output (``patches_conv``) and nearest-upsample + 3x3 convolution
(``UpsampleConv``), at the shapes of the paper's DCGAN, PyTorch-GAN's DCGAN and pythae's
conv VAE. "fwd+bwd" is ``jax.grad`` of a sum of squares with respect to the input and the
kernel (what a training step needs); each time is the mean of 3 calls after one warm-up
call. Also prints the largest difference between the two forms' outputs.
"""

import json
import pathlib
import sys
import time

import jax
import jax.numpy as jnp
from absl import flags

from unigen_jax.models import backbones, kernels  # noqa: F401

DN = ("NHWC", "HWIO", "NHWC")


def _time(fn, *args, calls=3):
  jax.block_until_ready(fn(*args))
  start = time.perf_counter()
  for _ in range(calls):
    out = fn(*args)
  jax.block_until_ready(out)
  return (time.perf_counter() - start) / calls


def _upsample_conv(method):
  def apply(x, kernel):
    module = backbones.UpsampleConv(kernel.shape[-1], use_bias=False, method=method)
    return module.apply({"params": {"kernel": kernel}}, x)
  return apply


def cases(batch):
  """(name, input shape, kernel shape, lax form, CPU form)."""
  out = []
  for where, h, k, c_in, c_out, pad in (
      ("paper DCGAN G, 7->14", 7, 4, 128, 64, ((2, 2), (2, 2))),
      ("pythae conv VAE decoder, 4->7", 4, 3, 1024, 512, ((1, 1), (1, 1))),
      ("pythae conv VAE decoder, 7->14", 7, 3, 512, 256, ((1, 2), (1, 2)))):
    out.append((f"conv_transpose {where}", (batch, h, h, c_in), (k, k, c_in, c_out),
                lambda x, w, pad=pad: jax.lax.conv_transpose(x, w, (2, 2), pad, dimension_numbers=DN),
                lambda x, w, pad=pad: kernels.subpixel_conv_transpose(x, w, pad)))
  for where, h, c_in, c_out in (("pythae conv VAE encoder, 7->3", 7, 256, 512),
                                ("pythae conv VAE encoder, 3->1", 3, 512, 1024)):
    out.append((f"strided conv {where}", (batch, h, h, c_in), (4, 4, c_in, c_out),
                lambda x, w: jax.lax.conv_general_dilated(x, w, (2, 2), ((1, 1), (1, 1)),
                                                          dimension_numbers=DN),
                lambda x, w: kernels.patches_conv(x, w, 2, ((1, 1), (1, 1)))))
  for where, h, c_in, c_out in (("PyTorch-GAN DCGAN G, 8->16", 8, 128, 128),
                                ("PyTorch-GAN DCGAN G, 16->32", 16, 128, 64)):
    out.append((f"upsample+conv3x3 {where}", (batch, h, h, c_in), (3, 3, c_in, c_out),
                _upsample_conv("direct"), _upsample_conv("subpixel")))
  return out


def define_flags(f: flags.FlagValues) -> None:
  flags.DEFINE_integer("batch", 64, "Batch of the layer inputs.", flag_values=f)
  flags.DEFINE_string("out", "", "JSON file of the rows.", flag_values=f)


def main(argv=None) -> int:
  from experiments import common  # pylint: disable=g-import-not-at-top
  try:
    args = common.parse_flags(argv, define_flags)
  except common.UsageError as err:
    print(f"error: {err}", file=sys.stderr)
    return 2
  rows = []
  for name, x_shape, k_shape, lax_form, cpu_form in cases(args.batch):
    x = jax.random.normal(jax.random.key(0), x_shape)
    kernel = 0.02 * jax.random.normal(jax.random.key(1), k_shape)
    row = {"layer": name, "input": list(x_shape), "kernel": list(k_shape)}
    outs = []
    for label, form in (("lax", lax_form), ("cpu_form", cpu_form)):
      fwd = jax.jit(form)
      both = jax.jit(jax.grad(lambda x, w, f=form: jnp.sum(f(x, w) ** 2), argnums=(0, 1)))
      row[f"{label}_fwd_s"] = _time(fwd, x, kernel)
      row[f"{label}_fwd_bwd_s"] = _time(both, x, kernel)
      outs.append(fwd(x, kernel))
    row["max_abs_diff"] = float(jnp.abs(outs[0] - outs[1]).max())
    row["max_abs_output"] = float(jnp.abs(outs[0]).max())
    rows.append(row)
    print(json.dumps(row), flush=True)
  if args.out:
    pathlib.Path(args.out).write_text(json.dumps({"batch": args.batch, "backend": jax.default_backend(),
                                                  "rows": rows}, indent=1))
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
