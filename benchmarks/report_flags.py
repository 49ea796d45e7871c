"""benchmarks/RESULTS_xla_flags.md from one ``xla_cpu_flags.sh`` session.

  python -m benchmarks.report_flags benchmarks/results_xla_flags > benchmarks/RESULTS_xla_flags.md
"""

import json
import pathlib
import sys

from benchmarks import report

SETTINGS = {"default": "(none)", "onednn": "--xla_cpu_use_onednn=true",
            "xnnpack": "--xla_cpu_use_xnnpack=true",
            "onednn_custom_call": "--xla_cpu_experimental_onednn_custom_call=true"}


def main(out_dir: str) -> None:
  out = pathlib.Path(out_dir)
  runs = {}
  env = None
  for path in sorted(out.glob("*.json")):
    data = json.loads(path.read_text())
    setting = next(s for s in sorted(SETTINGS, key=len, reverse=True)
                   if path.name.startswith(s + "_"))
    env = env or data["environment"]
    for r in data["rows"]:
      runs[(r["name"], r["batch"], setting)] = r
  print("# XLA:CPU kernel paths on the conv rows\n")
  print(f"Produced by `bash benchmarks/xla_cpu_flags.sh` (each setting in its own process, "
        f"one session), then `python -m benchmarks.report_flags {out_dir}`. Raw data: "
        f"`{out_dir}/`.\n")
  print(report.machine(env) + "; "
        f"jax {env['jax']} (the newest jax/jaxlib the package registry serves here), Python "
        f"{env['python']}; first file measured {env['time']}.\n")
  print("Steps/s (median of 5 windows of >= 2 s after warm-up, `benchmarks.bench`); in "
        "brackets the ratio to the default setting.\n")
  names = sorted({(n, b) for n, b, _ in runs})
  print("| configuration | batch | " + " | ".join(SETTINGS.values()) + " |")
  print("|---|---|" + "---|" * len(SETTINGS))
  for name, batch in names:
    base = runs.get((name, batch, "default"))
    cells = []
    for setting in SETTINGS:
      r = runs.get((name, batch, setting))
      if r is None:
        cells.append("-")
      elif base is None or setting == "default":
        cells.append(f"{r['steps_per_s']:.3g}")
      else:
        cells.append(f"{r['steps_per_s']:.3g} ({r['steps_per_s'] / base['steps_per_s']:.2f}x)")
    print(f"| {name} | {batch} | " + " | ".join(cells) + " |")
  print("\nRun-to-run drift on this VM is up to ~17% (the peers' README): ratios within "
        "0.85-1.15x are noise.")


if __name__ == "__main__":
  main(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/results_xla_flags")
