"""Builds benchmarks/RESULTS.md from one ``compare_with_peers.sh`` session.

  python -m benchmarks.report benchmarks/results > benchmarks/RESULTS.md

Ratios compare rows measured in the same session, on the same machine, at the same batch.
"""

import json
import os
import pathlib
import sys

# (our row, [peer rows: the fastest of them is the reference], target ratio, what)
PAIRS = [
    ("unigen_vae_mlp_flaxexample", ["flax_vae_example_jit"], 1.0,
     "Flax VAE example MLP 784-500-20 (jitted)"),
    ("unigen_vae_mlp_pythae", ["pythae_vae_mlp_eager", "pythae_vae_mlp_compile"], 1.5,
     "pythae MLP VAE 784-512-16"),
    ("unigen_iwae_mlp_k5_pythae", ["pythae_iwae_mlp_k5_eager", "pythae_iwae_mlp_k5_compile"], 1.5,
     "pythae MLP IWAE K=5"),
    ("unigen_iwae_mlp_k5_pythae_microbatch256", ["pythae_iwae_mlp_k5_eager",
                                                 "pythae_iwae_mlp_k5_compile"], 1.5,
     "same, microbatch_size=256 (gradient accumulated over chunks of 256)"),
    ("unigen_iwae_mlp_k5_pythae_fastlik", ["pythae_iwae_mlp_k5_eager",
                                           "pythae_iwae_mlp_k5_compile"], 1.5,
     "same, fast_likelihood (flat events, explicit softplus)"),
    ("unigen_iwae_mlp_k5_pythae_microbatch256_fastlik", ["pythae_iwae_mlp_k5_eager",
                                                         "pythae_iwae_mlp_k5_compile"], 1.5,
     "same, microbatch_size=256 and fast_likelihood"),
    ("unigen_vae_conv_pythae", ["pythae_vae_conv_eager", "pythae_vae_conv_compile"], 1.5,
     "pythae conv MNIST VAE (17.2M)"),
    ("unigen_vae_conv_pythae_convchunk64", ["pythae_vae_conv_eager", "pythae_vae_conv_compile"],
     1.5, "same, conv_batch_chunk=64 (each convolution over chunks of 64 examples)"),
    ("unigen_gan_dcgan32_pytorchgan", ["torch_dcgan_pytorchgan32_eager",
                                       "torch_dcgan_pytorchgan32_compile"], 1.5,
     "PyTorch-GAN DCGAN 32x32 (one G + one D update, the peer's order)"),
    ("unigen_gan_dcgan32_pytorchgan_convchunk16", ["torch_dcgan_pytorchgan32_eager",
                                                   "torch_dcgan_pytorchgan32_compile"], 1.5,
     "same, conv_batch_chunk=16 (each convolution over chunks of 16 examples)"),
    ("unigen_gan_dcgan32_pytorchgan_dfirst", ["torch_dcgan_pytorchgan32_eager",
                                              "torch_dcgan_pytorchgan32_compile"], 1.5,
     "same, our default order (D first on its own fakes, then G)"),
    ("unigen_gan_dcgan32_pytorchgan_dfirst_convchunk16", ["torch_dcgan_pytorchgan32_eager",
                                                          "torch_dcgan_pytorchgan32_compile"],
     1.5, "same, our default order and conv_batch_chunk=16"),
]


# Why a row can sit below its peer: the per-layer arithmetic, measured, is in these reports.
BELOW_PARITY_NOTE = (
    "Their causes, measured: the convolutions' kernels (XLA:CPU's Eigen convolutions reach "
    "0.32-0.56 of the matmul rate and grow super-linearly with the batch, XLA's own lax "
    "convolutions included: `benchmarks/RESULTS_layer_scaling.md`; over chunks of the batch "
    "(`conv_batch_chunk`) they stay on their fast path: `benchmarks/RESULTS_conv_batch_chunk.md`; "
    "the alternative oneDNN / XNNPACK paths gain nothing: `benchmarks/RESULTS_xla_flags.md`) "
    "and, for IWAE, a whole "
    "step that costs more per example at large batches than its pieces do alone "
    "(`benchmarks/RESULTS_iwae_large_batch.md`), which the options `microbatch_size` and "
    "`fast_likelihood` address: their rows above.")


def paired_rows(rows: dict, peers: dict):
  """``(what, target, batch, ours, fastest peer or None)`` for every measured row of PAIRS."""
  for name, peer_names, target, what in PAIRS:
    for batch in sorted({b for n, b in rows if n == name}):
      candidates = [peers[(p, batch)] for p in peer_names if (p, batch) in peers]
      best = max(candidates, key=lambda r: r["median_steps_per_s"]) if candidates else None
      yield what, target, batch, rows[(name, batch)], best


def machine(env: dict) -> str:
  """'Machine: <processor>, <platform>; devices [...]' from a bench run's environment."""
  return f"Machine: {env['processor'] or 'x86_64'}, {env['platform']}; devices {env['devices']}"


def load(out: pathlib.Path):
  peers = {}
  if (out / "peers.jsonl").exists():
    for line in (out / "peers.jsonl").read_text().splitlines():
      if line.strip():
        r = json.loads(line)
        peers[(r["name"], r["batch"])] = r
  ours = json.loads((out / "unigen.json").read_text())
  evals = json.loads((out / "unigen_eval.json").read_text()) if (out / "unigen_eval.json").exists() else None
  pythae_nll = None
  if (out / "pythae_nll.json").exists() and (out / "pythae_nll.json").read_text().strip():
    pythae_nll = json.loads((out / "pythae_nll.json").read_text().strip().splitlines()[-1])
  registry = None
  if (out / "registry.json").exists():
    registry = json.loads((out / "registry.json").read_text())
  return peers, ours, evals, pythae_nll, registry


def _flag(value) -> str:
  """A recorded flag value as it is written on the command line (lists comma-separated)."""
  return ",".join(str(v) for v in value) if isinstance(value, (list, tuple)) else str(value)


def repo_relative(path: pathlib.Path) -> str:
  """``path`` relative to the repository (results name no folder of the machine)."""
  root = pathlib.Path(__file__).resolve().parents[1]
  try:
    return path.resolve().relative_to(root).as_posix()
  except ValueError:
    return path.name


def grain_section(path: pathlib.Path) -> list[str]:
  """``benchmarks.pipeline_vs_grain``: the library's iterator against grain, same work."""
  rows = json.loads(path.read_text())
  speed = {(r["pipeline"], r["batch"]): r["examples_per_s"] for r in rows if "batch" in r}
  resume = {r["pipeline"]: r["resume_bitwise"] for r in rows if "resume_bitwise" in r}
  lines = ["## Input pipeline against grain (same work)\n",
           "`pip install grain && python -m benchmarks.pipeline_vs_grain --mnist_dir=DIR "
           f"--out={repo_relative(path)}` (seeded, dynamically binarised batches of the 60,000 "
           "MNIST training images, one process, examples/s over 3 s; resume from a saved "
           "position must give the next 20 batches bitwise).\n",
           "| batch | unigen_jax BatchIterator (examples/s) | grain MapDataset (examples/s) | "
           "ratio |", "|---|---|---|---|"]
  for batch in sorted({b for _, b in speed}):
    ours, grain = speed[("unigen_jax BatchIterator", batch)], speed[("grain MapDataset", batch)]
    lines.append(f"| {batch} | {ours:,.0f} | {grain:,.0f} | {ours / grain:.1f}x |")
  lines.append("\nResume bitwise: " + ", ".join(f"{k} {'yes' if v else 'NO'}"
                                                  for k, v in resume.items()) + ".")
  return lines


def accelerator_section(path: pathlib.Path) -> list[str]:
  """The ``--suite=accelerator`` table: steps/s, examples/s, MFU and memory per row."""
  data = json.loads(path.read_text())
  env, rows = data["environment"], [r for r in data["rows"] if "mfu" in r]
  if not rows:
    return []
  first = rows[0]
  lines = [f"## Accelerator suite: {first['device_kind']} x {first['devices']}\n",
           f"`python -m benchmarks.bench --suite=accelerator --out={repo_relative(path)}`, measured "
           f"{env['time']} (jax {env['jax']}). Every registered variant, data-parallel over all "
           f"devices (sharded jit, global batch); peak: {first['peak_source']}. MFU = XLA's "
           "FLOPs of one step x steps/s / peak of the row's dtype.\n",
           "| variant | dtype | batch | steps/call | steps/s | examples/s | GFLOP/step | MFU | "
           "memory (MB) | compile (s) |",
           "|---|---|---|---|---|---|---|---|---|---|"]
  for r in rows:
    mem = r.get("device_peak_bytes", r.get("xla_estimate_bytes", float("nan"))) / 1e6
    lines.append(f"| {r['variant']} | {r['dtype']} | {r['batch']} | {r['steps_per_call']} | "
                 f"{r['steps_per_s']:.3g} | {r['steps_per_s'] * r['batch']:,.0f} | "
                 f"{r['flops_per_step'] / 1e9:.3g} | {r['mfu']:.3f} | {mem:.0f} | "
                 f"{r['compile_s']:.1f} |")
  return lines


def main(out_dir: str) -> None:
  out = pathlib.Path(out_dir)
  peers, ours, evals, pythae_nll, registry = load(out)
  env = ours["environment"]
  rows = {(r["name"], r["batch"]): r for r in ours["rows"] if "batch" in r and "steps_per_s" in r}
  print("# Benchmarks: unigen_jax steps next to peer implementations\n")
  print("Produced by `bash benchmarks/compare_with_peers.sh` (peers' `run.sh` from "
        "`../shared/peers`, then `python -m benchmarks.bench`, in the same session), then "
        "`python -m benchmarks.report benchmarks/results`. Raw data: `benchmarks/results/`.\n")
  print(machine(env) + "; "
        f"jax {env['jax']}, flax {env['flax']}, optax {env['optax']}, Python {env['python']}; "
        f"measured {env['time']}. Peers: see `benchmarks/results/peers.txt` and "
        "`../shared/peers/README.md` (torch 2.13.0 CPU, pythae 0.1.2, jax 0.10.2).\n")
  peers_file = out / "peers.jsonl"
  if peers_file.exists():
    import datetime  # pylint: disable=g-import-not-at-top
    when = datetime.datetime.fromtimestamp(peers_file.stat().st_mtime).strftime("%Y-%m-%d %H:%M")
    print(f"Peer rows finished at {when}; unigen_jax rows were measured at {env['time']} on the "
          "same machine by the same script (a later invocation with `SKIP_PEERS=1` re-measures "
          "only unigen_jax).\n")
  print("Protocol: warm-up >= 3 steps and >= 2 s, then the median of 5 windows of >= 2 s "
        "(`block_until_ready` at the end of each); a step is forward + loss + backward + "
        "optimizer update; float32; one fixed random batch; host-to-device transfer not "
        "timed. Run-to-run drift on this VM is up to ~17% (peers' README): ratios under "
        "1.15 are within noise.\n")
  print("## Steps/s against peers (same layer sizes), over the batch sweep\n")
  print("| configuration | batch | unigen_jax steps/s | examples/s | peer (fastest of eager / "
        "compile) | peer steps/s | ratio | >= 1.0x | target | met |")
  print("|---|---|---|---|---|---|---|---|---|---|")
  below, ratios_of = [], {}
  for what, target, batch, mine, best in paired_rows(rows, peers):
    if best is None:
      print(f"| {what} | {batch} | {mine['steps_per_s']:.3g} | "
            f"{mine['steps_per_s'] * batch:,.0f} | not measured | - | - | - | >= {target}x | - |")
      continue
    ratio = mine["steps_per_s"] / best["median_steps_per_s"]
    ratios_of.setdefault(what, []).append(ratio)
    if ratio < 1.0:
      below.append((what, batch, ratio))
    print(f"| {what} | {batch} | {mine['steps_per_s']:.3g} | "
          f"{mine['steps_per_s'] * batch:,.0f} | {best['name']} | "
          f"{best['median_steps_per_s']:.3g} | {ratio:.2f}x | {'yes' if ratio >= 1.0 else 'NO'} "
          f"| >= {target}x | {'yes' if ratio >= target else 'NO'} |")
  print()
  if below:
    print("Rows below 1.0x: " + "; ".join(f"{what} at batch {b} ({r:.2f}x)"
                                          for what, b, r in below) + ". " + BELOW_PARITY_NOTE)
  else:
    print("Every row is at or above 1.0x its fastest peer at every batch.")
  # Per configuration, so a user sees which settings never fall behind the peer.
  everywhere = [f"{what} ({min(r):.2f}-{max(r):.2f}x)" for what, r in ratios_of.items()
                if min(r) >= 1.0]
  print("\nAt or above 1.0x at every batch measured: " + ("; ".join(everywhere) + "."
                                                         if everywhere else "none."))
  matmul = next((r for r in ours["rows"] if r["name"] == "matmul_2048_f32"), None)
  print("\n## Achieved FLOP/s against a 2048x2048 float32 matmul\n")
  if matmul:
    print(f"Matmul: {matmul['flops_per_s'] / 1e9:.1f} GFLOP/s (median of 5 windows), the "
          "practical limit. FLOPs per step from XLA's cost analysis of the compiled step, i.e. "
          "the FLOPs actually executed (the sub-pixel forms execute fewer than the layers as "
          "written: see the analysis).\n")
    print("| step | batch | GFLOP/step | steps/s | GFLOP/s | fraction of matmul | target |")
    print("|---|---|---|---|---|---|---|")
    for name in ("unigen_gan_dcgan28", "unigen_iwgan_dcgan28", "unigen_gan_dcgan32_pytorchgan",
                 "unigen_gan_dcgan32_pytorchgan_dfirst",
                 "unigen_vae_conv_pythae", "unigen_vae_mlp_pythae"):
      for batch in sorted({b for n, b in rows if n == name}):
        r = rows.get((name, batch))
        if r:
          frac = r["achieved_flops_per_s"] / matmul["flops_per_s"]
          target = ">= 0.6" if "mlp" not in name else "-"
          print(f"| {name} | {batch} | {r['flops_per_step'] / 1e9:.3g} | {r['steps_per_s']:.3g} | "
                f"{r['achieved_flops_per_s'] / 1e9:.1f} | {frac:.2f} | {target} |")
  print("\n## Compile time and memory of the first step\n")
  print("| step | batch | compile (s) | XLA memory estimate (MB) | parameters |")
  print("|---|---|---|---|---|")
  for (name, batch), r in sorted(rows.items()):
    mem = r.get("device_peak_bytes", r.get("xla_estimate_bytes", float("nan"))) / 1e6
    print(f"| {name} | {batch} | {r['compile_s']:.2f} | {mem:.1f} | {r['num_params']:,} |")
  if registry:
    reg = [r for r in registry["rows"] if "steps_per_s" in r]
    batches = sorted({r["batch"] for r in reg})
    args = registry["args"]
    print("\n## Every registered variant\n")
    print(f"`python -m benchmarks.bench --suite=registry --batches={_flag(args['batches'])} "
          f"--width={args['width']} --out=benchmarks/results/registry.json`, measured "
          f"{registry['environment']['time']} (same protocol; DCGAN networks of width "
          f"{args['width']}, 28x28x1, every variant's default hyperparameters; semi-supervised "
          "variants get an unlabelled batch as large as the labelled one). Cells: steps/s "
          "(examples/s), compile s, XLA memory estimate MB.\n")
    print("| variant | " + " | ".join(f"batch {b}" for b in batches) + " |")
    print("|---|" + "---|" * len(batches))
    by = {(r["variant"], r["batch"]): r for r in reg}
    for variant in sorted({r["variant"] for r in reg}):
      cells = []
      for b in batches:
        r = by.get((variant, b))
        if r is None:
          cells.append("-")
          continue
        mem = r.get("device_peak_bytes", r.get("xla_estimate_bytes", float("nan"))) / 1e6
        cells.append(f"{r['steps_per_s']:.3g} ({r['steps_per_s'] * b:,.0f}), "
                     f"{r['compile_s']:.1f} s, {mem:.0f} MB")
      print(f"| {variant} | " + " | ".join(cells) + " |")
  if (out / "accelerator.json").exists():
    print()
    print("\n".join(accelerator_section(out / "accelerator.json")))
  pipe = [r for r in ours["rows"] if r["name"].startswith("pipeline_")]
  if pipe:
    print("\n## Input pipeline (MNIST-sized uint8 arrays in memory)\n")
    print("| binarisation | batch | host examples/s | placed on device (prefetched) examples/s |")
    print("|---|---|---|---|")
    for r in pipe:
      print(f"| {r['name'].split('_', 1)[1]} | {r['batch']} | {r['host_examples_per_s']:,.0f} | "
            f"{r['on_device_examples_per_s']:,.0f} |")
    fastest_step = max(r["steps_per_s"] * r["batch"] for r in rows.values())
    print(f"\nThe fastest step above consumes {fastest_step:,.0f} examples/s: the pipeline is "
          "not the bottleneck.")
  if (out / "pipeline_vs_grain.json").exists():
    print()
    print("\n".join(grain_section(out / "pipeline_vs_grain.json")))
  if evals:
    print("\n".join(eval_section(evals, pythae_nll)))


def eval_section(evals: dict, pythae_nll) -> list[str]:
  """The evaluation rows: images/s, the roofline fraction, and pythae's get_nll beside them."""
  e = evals["rows"][0]
  lines = ["", "## Evaluation: importance-sampled log-likelihood, K = 5000", "",
           f"unigen_jax (`Evaluator.likelihood_bounds`, MLP 784-512-16, {e.get('images_per_call', 100)} "
           f"images per call): {e['num_images']} images in {e['seconds']:.1f} s = "
           f"**{e['images_per_s']:.2f} images/s**."]
  if "fraction_of_matmul" in e:
    lines += ["", f"Roofline: {e['gflop_per_image']:.2f} GFLOP per image (the encoder once and the "
              f"decoder K times: its matmuls; softplus and log-sum-exp not counted) at "
              f"{e['images_per_s']:.2f} images/s = {e['images_per_s'] * e['gflop_per_image']:.1f} "
              f"GFLOP/s against a 2048x2048 float32 matmul at "
              f"{e['matmul_flops_per_s'] / 1e9:.1f} GFLOP/s measured in the same invocation: "
              f"**{e['fraction_of_matmul']:.2f} of the matmul rate** (target >= 0.7: "
              f"{'met' if e['fraction_of_matmul'] >= 0.7 else 'NOT met'})."]
  if pythae_nll:
    ratio = e["images_per_s"] / pythae_nll["images_per_s"]
    lines += ["", f"pythae `VAE.get_nll` (same model size, n_samples=5000, batch_size=100): "
              f"{pythae_nll['num_images']} images in {pythae_nll['seconds']:.1f} s = "
              f"{pythae_nll['images_per_s']:.2f} images/s.", "",
              f"Ratio: **{ratio:.1f}x**. Both measured on subsets of the 10,000 images "
              "(throughput is per image and constant); the whole 10,000-image test set takes "
              f"{10000 / e['images_per_s'] / 60:.1f} min here."]
  return lines


def main_sweep(out_dir: str) -> None:
  """A batch sweep of peer-matched rows and their peers from one session: ratio per batch."""
  out = pathlib.Path(out_dir)
  peers, ours, _, _, _ = load(out)
  env = ours["environment"]
  rows = {(r["name"], r["batch"]): r for r in ours["rows"] if "steps_per_s" in r}
  print("# Batch sweep: unigen_jax steps next to peer implementations\n")
  command = os.environ.get("SWEEP_COMMAND", "bash benchmarks/mlp_sweep_vs_peers.sh")
  print(f"Produced by `{command}` (the peers' `run.sh`, then "
        f"`python -m benchmarks.bench --suite=batch_sweep`, one session), then `python -m "
        f"benchmarks.report {out_dir} sweep`. Raw data: `{out_dir}/`.\n")
  print(machine(env) + "; "
        f"jax {env['jax']}, Python {env['python']}; unigen_jax rows measured {env['time']}.\n")
  print("| configuration | batch | unigen_jax steps/s | examples/s | peer (fastest) | peer "
        "steps/s | ratio |")
  print("|---|---|---|---|---|---|---|")
  for what, _, batch, r, best in paired_rows(rows, peers):
    if best is not None:
      print(f"| {what} | {batch} | {r['steps_per_s']:.3g} | {r['steps_per_s'] * batch:,.0f} | "
            f"{best['name']} | {best['median_steps_per_s']:.3g} | "
            f"{r['steps_per_s'] / best['median_steps_per_s']:.2f}x |")
  print("\nRun-to-run drift on this VM is up to ~17% (the peers' README): ratios within "
        "0.85-1.15x are noise.")


def main_eval(out_dir: str) -> None:
  """RESULTS_eval.md: the evaluation rows of one ``eval_vs_pythae.sh`` session."""
  out = pathlib.Path(out_dir)
  evals = json.loads((out / "unigen_eval.json").read_text())
  pythae_nll = json.loads((out / "pythae_nll.json").read_text().strip().splitlines()[-1])
  env = evals["environment"]
  print("# Evaluation benchmark: unigen_jax next to pythae\n")
  print("Produced by `bash benchmarks/eval_vs_pythae.sh` (one session: `python -m "
        "benchmarks.bench --suite=eval`, then pythae's `get_nll` through "
        "`benchmarks/pythae_nll_driver.py`), then `python -m benchmarks.report "
        f"{out_dir} eval`. Raw data: `{out_dir}/`. The evaluation section of `RESULTS.md` is "
        "the same measurement, made inside the peers' run of `compare_with_peers.sh`.\n")
  print(machine(env) + "; "
        f"jax {env['jax']}, Python {env['python']}; measured {env['time']}; pythae with torch "
        f"{pythae_nll.get('torch', '?')}.")
  print("\n".join(eval_section(evals, pythae_nll)))


if __name__ == "__main__":
  if len(sys.argv) > 2 and sys.argv[2] == "eval":
    main_eval(sys.argv[1])
  elif len(sys.argv) > 2 and sys.argv[2] == "sweep":
    main_sweep(sys.argv[1])
  else:
    main(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/results")
