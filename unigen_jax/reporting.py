"""What a run writes for people: metrics (JSONL, TensorBoard), sample grids, training curves."""

from __future__ import annotations

import json
import math
import pathlib
from typing import Mapping, Optional

import numpy as np


class MetricWriter:
  """Appends ``{"step": s, **metrics}`` lines to ``metrics.jsonl`` and TensorBoard scalars.

  TensorBoard event files are written with ``tensorboardX`` (no TensorFlow needed).
  Only process 0 should create one (the trainer passes ``enabled=False`` elsewhere). On
  opening, a torn last line (a run killed mid-write) is cut off the file and kept in
  ``log.txt``, so the next row never glues onto it.
  """

  def __init__(self, workdir: pathlib.Path, enabled: bool = True, tensorboard: bool = True):
    self.enabled = enabled
    self.path = pathlib.Path(workdir) / "metrics.jsonl"
    self._tb = None
    if enabled:
      repair_torn_tail(self.path)
      if tensorboard:
        from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
        self._tb = SummaryWriter(str(pathlib.Path(workdir) / "tensorboard"))

  def write(self, step: int, metrics: Mapping[str, float]) -> None:
    if not self.enabled:
      return
    row = {"step": int(step), **{k: float(v) for k, v in metrics.items()}}
    with open(self.path, "a") as f:
      f.write(json.dumps(row) + "\n")
    if self._tb is not None:
      for key, value in metrics.items():
        self._tb.add_scalar(key, float(value), int(step))

  def close(self):
    if self._tb is not None:
      self._tb.close()


def repair_torn_tail(path: pathlib.Path) -> Optional[str]:
  """Cuts an incomplete last line off a JSONL file; returns it (also appended to ``log.txt``)."""
  path = pathlib.Path(path)
  if not path.exists():
    return None
  data = path.read_bytes()
  if not data or data.endswith(b"\n"):
    return None
  cut = data.rfind(b"\n") + 1
  torn = data[cut:].decode("utf-8", "replace")
  with open(path, "r+b") as f:
    f.truncate(cut)
  with open(path.parent / "log.txt", "a") as f:
    f.write(f"removed a torn last line from {path.name}: {torn[:500]!r}\n")
  return torn


def read_metrics(path: pathlib.Path) -> list[dict]:
  """Rows of a metrics.jsonl, one per step, oldest first.

  Rows of the same step are merged (training and validation metrics of one step; a resumed
  run's rewrite of a step wins key by key). A line that is not valid JSON (a torn write) is
  skipped, never fatal.
  """
  by_step: dict = {}
  path = pathlib.Path(path)
  if not path.exists():
    return []
  for line in path.read_text(errors="replace").splitlines():
    if not line.strip():
      continue
    try:
      row = json.loads(line)
      step = int(row["step"])
    except (ValueError, KeyError, TypeError):
      continue
    by_step.setdefault(step, {}).update(row)
  return [by_step[s] for s in sorted(by_step)]


def image_grid(images: np.ndarray, rows: int) -> np.ndarray:
  """Tiles ``[N, H, W, C]`` images in [0, 1] into one uint8 image with ``rows`` rows (2-px gaps)."""
  images = np.clip(np.asarray(images, np.float32), 0.0, 1.0)
  n, h, w, c = images.shape
  cols = math.ceil(n / rows)
  pad = 2
  grid = np.ones((rows * (h + pad) + pad, cols * (w + pad) + pad, c), np.float32)
  for i in range(n):
    r, col = divmod(i, cols)
    grid[pad + r * (h + pad): pad + r * (h + pad) + h,
         pad + col * (w + pad): pad + col * (w + pad) + w] = images[i]
  grid = (grid * 255).round().astype(np.uint8)
  return grid[..., 0] if c == 1 else grid


def save_image_grid(path: pathlib.Path, images: np.ndarray, rows: int, scale: int = 2) -> None:
  from PIL import Image  # pylint: disable=g-import-not-at-top
  grid = image_grid(images, rows)
  image = Image.fromarray(grid)
  if scale > 1:
    image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
  pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
  image.save(path)


def plot_curves(rows: list[dict], path: pathlib.Path, title: str = "",
                keys: Optional[list[str]] = None) -> None:
  """One panel per metric against the step, saved as PNG."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  if not rows:
    return
  keys = keys or sorted({k for r in rows for k in r} - {"step", "steps_per_sec",
                                                       "examples_per_sec"})
  cols = min(3, len(keys))
  nrows = math.ceil(len(keys) / cols)
  fig, axes = plt.subplots(nrows, cols, figsize=(4.5 * cols, 3 * nrows), squeeze=False)
  for ax, key in zip(axes.flat, keys):
    points = [(r["step"], r[key]) for r in rows if key in r and math.isfinite(r[key])]
    if points:
      ax.plot(*zip(*points), lw=1.2)
    ax.set_title(key, fontsize=9)
    ax.set_xlabel("step", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
  for ax in list(axes.flat)[len(keys):]:
    ax.axis("off")
  # Fixed margins in inches, not tight_layout: measuring every panel's text made a
  # 12-panel figure take ~2 s, at the end of every run.
  height, width = 3.0 * nrows, 4.5 * cols
  if title:
    fig.suptitle(title, fontsize=10, y=1 - 0.1 / height)
  fig.subplots_adjust(left=0.55 / width, right=1 - 0.15 / width, bottom=0.45 / height,
                      top=1 - (0.6 if title else 0.3) / height, wspace=0.28, hspace=0.45)
  fig.savefig(path, dpi=110)
  plt.close(fig)


def versions() -> dict:
  """Versions of Python, JAX, Flax, optax, numpy, the platform and devices (for summaries)."""
  import platform  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  import flax  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top
  return {"python": sys.version.split()[0], "jax": jax.__version__,
          "jaxlib": jax.lib.__version__ if hasattr(jax.lib, "__version__") else "",
          "flax": flax.__version__, "optax": optax.__version__, "numpy": np.__version__,
          "platform": platform.platform(), "devices": [str(d) for d in jax.devices()]}
