"""One page per run: ``python -m unigen_jax.report W`` (also ``unigen-report W``) writes ``W/report.html``.

The page puts together what a run wrote in separate files: its settings and data, the
training and validation curves, the sample grids over time, the final evaluation and
any later evaluations (``W/evaluations/``). Training writes it at the end of every run;
the command rewrites it for a run in progress or an older one. Images are linked
relatively, so the folder can be copied or served as it is.
"""

from __future__ import annotations

import html
import json
import pathlib
import sys

from unigen_jax import reporting


def _read_json(path: pathlib.Path):
  try:
    return json.loads(path.read_text())
  except (OSError, ValueError):
    return None


def _table(rows) -> str:
  cells = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_fmt(v))}</td></tr>"
                  for k, v in rows)
  return f"<table>{cells}</table>"


def _fmt(value) -> str:
  if isinstance(value, float):
    return f"{value:.6g}"
  if isinstance(value, (list, tuple)) and value and all(isinstance(v, float) for v in value):
    return " ± ".join(f"{v:.4g}" for v in value)
  if isinstance(value, dict):
    return ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items())
  return str(value)


def write_report(workdir: pathlib.Path) -> pathlib.Path:
  """Writes ``workdir/report.html`` from what the run has written so far; returns its path."""
  workdir = pathlib.Path(workdir)
  config = _read_json(workdir / "config.json") or {}
  summary = _read_json(workdir / "summary.json") or {}
  rows = reporting.read_metrics(workdir / "metrics.jsonl")
  if rows:
    reporting.plot_curves(rows, workdir / "curves.png",
                          title=f"{config.get('variant', '')} on "
                                f"{config.get('data', {}).get('dataset', '')}")
  variant = config.get("variant", "run")
  title = variant if workdir.name == variant else f"{variant}: {workdir.name}"
  parts = [f"<h1>{html.escape(title)}</h1>"]
  facts = [("variant", config.get("variant")), ("seed", config.get("seed")),
           ("data", summary.get("data") or config.get("data", {}).get("dataset")),
           ("steps", f"{summary.get('final_step', rows[-1]['step'] if rows else 0)} of "
                     f"{config.get('steps')}"),
           ("steps/s", summary.get("steps_per_sec")), ("wall time (s)", summary.get("wall_time_s"))]
  if summary.get("validation"):
    facts.append(("validation", summary["validation"]))
  parts += ["<h2>Run</h2>", _table([(k, v) for k, v in facts if v is not None])]
  if summary.get("final_metrics"):
    parts += ["<h2>Final training metrics</h2>", _table(sorted(summary["final_metrics"].items()))]
  evaluations = []
  if (workdir / "eval.json").exists():
    evaluations.append(("end of training", _read_json(workdir / "eval.json")))
  for path in sorted((workdir / "evaluations").glob("*.json")):
    evaluations.append((path.stem, _read_json(path)))
  for name, result in evaluations:
    if result:
      parts += [f"<h2>Evaluation: {html.escape(name)}</h2>",
                _table([(k, v) for k, v in result.items() if k != "classifier"])]
      png = workdir / "evaluations" / f"{name}.png"
      if png.exists():
        parts.append(f'<img src="evaluations/{png.name}" alt="samples">')
  if (workdir / "curves.png").exists():
    parts += ["<h2>Curves</h2>", '<img src="curves.png" alt="training and validation curves">']
  grids = sorted((workdir / "samples").glob("step_*.png"))
  if grids:
    parts.append("<h2>Samples over training</h2><div class='grids'>")
    for grid in grids:
      step = int(grid.stem.split("_")[1])
      parts.append(f"<figure><img src='samples/{grid.name}' alt='step {step}'>"
                   f"<figcaption>step {step}</figcaption></figure>")
    parts.append("</div>")
  style = ("body{font-family:sans-serif;max-width:1400px;margin:1em auto;padding:0 1em}"
           "table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #ccc;"
           "padding:2px 8px;text-align:left;font-size:90%}img{max-width:100%}"
           ".grids{display:flex;flex-wrap:wrap;gap:8px}figure{margin:0}"
           "figure img{width:220px}figcaption{text-align:center;font-size:80%}")
  page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
          f"<style>{style}</style></head><body>{''.join(parts)}</body></html>\n")
  out = workdir / "report.html"
  out.write_text(page)
  return out


def main(argv=None) -> int:
  argv = sys.argv[1:] if argv is None else argv
  if len(argv) != 1 or argv[0].startswith("-"):
    print("usage: python -m unigen_jax.report WORKDIR", file=sys.stderr)
    return 2
  workdir = pathlib.Path(argv[0])
  if not (workdir / "config.json").exists():
    print(f"error: {workdir} has no config.json: is it a training workdir?", file=sys.stderr)
    return 2
  print(write_report(workdir))
  return 0


def run():
  sys.exit(main())


if __name__ == "__main__":
  run()
