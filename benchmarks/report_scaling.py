"""How single layers' times grow with the batch: two ``layer_times`` runs, one table.

  python -m benchmarks.layer_times --batch=64 --out=benchmarks/results_scaling/layer_times_b64.json
  python -m benchmarks.layer_times --batch=256 --out=benchmarks/results_scaling/layer_times_b256.json
  python -m benchmarks.report_scaling benchmarks/results_scaling/layer_times_b64.json \\
      benchmarks/results_scaling/layer_times_b256.json > benchmarks/RESULTS_layer_scaling.md

Linear cost in the batch means a growth equal to the batch ratio; above it, the per-example
cost rises. Both forms of each layer are shown: XLA's own (``lax``) and the library's CPU
form (``unigen_jax.models.kernels``), so a growth that XLA's kernels share is visible.
"""

import json
import sys


def main(small_path: str, large_path: str) -> None:
  small, large = (json.load(open(p)) for p in (small_path, large_path))
  ratio = large["batch"] / small["batch"]
  print(f"# Layer times against the batch: {small['batch']} -> {large['batch']} "
        f"({ratio:g}x the examples)\n")
  print("Produced by the commands in `benchmarks/report_scaling.py` (backend "
        f"`{small['backend']}`; each time the mean of 3 calls after a warm-up call). Growth = "
        f"time at batch {large['batch']} / time at batch {small['batch']}; linear is "
        f"{ratio:g}.\n")
  print(f"| layer | lax fwd | lax fwd+bwd | CPU form fwd | CPU form fwd+bwd | CPU form fwd+bwd "
        f"at {small['batch']} (ms) |")
  print("|---|---|---|---|---|---|")
  for a, b in zip(small["rows"], large["rows"]):
    assert a["layer"] == b["layer"]
    cells = [f"{b[k] / a[k]:.2f}" for k in ("lax_fwd_s", "lax_fwd_bwd_s", "cpu_form_fwd_s",
                                          "cpu_form_fwd_bwd_s")]
    print(f"| {a['layer']} | " + " | ".join(cells) + f" | {a['cpu_form_fwd_bwd_s'] * 1e3:.1f} |")


if __name__ == "__main__":
  main(sys.argv[1], sys.argv[2])
