r"""Input pipeline: this library's vectorised iterator against a grain pipeline, same work.

  pip install grain && python -m benchmarks.pipeline_vs_grain --mnist_dir=DIR [--out=FILE.json]

Both produce seeded, dynamically binarised batches of the 60,000 MNIST training images
(shuffle per epoch, drop the remainder, one Bernoulli draw per pixel) and can resume from a
saved position: ours with ``BatchIterator.state()``, grain with ``get_state()``. Timed in one
process: examples/s over 3 s after one warm-up batch; then each resumes from a position
after 10 batches and must give bitwise the same next 20 batches. The grain pipeline is
``MapDataset.source(indices).shuffle(seed).repeat().batch(...).random_map(binarise)``, the
form the grain documentation pairs with ``tfds.data_source``.

Result (``benchmarks/RESULTS.md``, section "Input pipeline against grain"; 2026-12-02, grain
0.2.18): both resume bitwise, grain is 13-17x slower here (26k vs 335-449k examples/s; its
per-element shuffle and batching run in Python), which would make it the bottleneck of the
fastest steps; the library keeps its own iterator.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

from experiments import common


def define_flags(f):
  common.flags.DEFINE_string("mnist_dir", "", "Folder with the MNIST IDX files.", flag_values=f)
  common.flags.DEFINE_list("batches", ["64", "256"], "Batch sizes.", flag_values=f)
  common.flags.DEFINE_float("seconds", 3.0, "Timing window per row.", flag_values=f)
  common.flags.DEFINE_string("out", "", "Write the rows as JSON here.", flag_values=f)


def grain_iterator(images, labels, batch, seed):
  import grain  # pylint: disable=g-import-not-at-top

  def binarise(idx, rng):
    return {"image": (rng.random((len(idx),) + images.shape[1:], dtype=np.float32)
                      < images[idx].astype(np.float32) / 255.0).astype(np.float32),
            "label": labels[idx]}

  dataset = (grain.MapDataset.source(np.arange(len(labels))).shuffle(seed=seed).repeat(None)
             .batch(batch, drop_remainder=True, batch_fn=np.asarray)
             .random_map(binarise, seed=seed))
  return iter(dataset.to_iter_dataset())


def _rate(iterator, batch, seconds):
  next(iterator)
  start, n = time.perf_counter(), 0
  while time.perf_counter() - start < seconds:
    next(iterator)
    n += 1
  return n * batch / (time.perf_counter() - start)


def main(argv=None) -> int:
  from unigen_jax import input_pipeline  # pylint: disable=g-import-not-at-top
  f = common.parse_flags(argv, define_flags)
  if not f.mnist_dir:
    raise common.UsageError("pass --mnist_dir (the MNIST IDX files).")
  data = input_pipeline.load_split("mnist", "train", data_dir=f.mnist_dir)
  images, labels = data.images, data.labels
  rows = []
  for batch in (int(b) for b in f.batches):
    ours = input_pipeline.BatchIterator({"image": images, "label": labels}, batch, 0,
                                        binarization="dynamic", process_index=0, process_count=1)
    rows.append({"pipeline": "unigen_jax BatchIterator", "batch": batch,
                 "examples_per_s": _rate(ours, batch, f.seconds)})
    rows.append({"pipeline": "grain MapDataset", "batch": batch,
                 "examples_per_s": _rate(grain_iterator(images, labels, batch, 0), batch,
                                         f.seconds)})
  for name, make, get, put in (
      ("unigen_jax BatchIterator",
       lambda: input_pipeline.BatchIterator({"image": images}, 64, 0, binarization="dynamic",
                                            process_index=0, process_count=1),
       lambda it: it.state(), lambda it, s: it.restore(s)),
      ("grain MapDataset", lambda: grain_iterator(images, labels, 64, 0),
       lambda it: it.get_state(), lambda it, s: it.set_state(s))):
    first = make()
    for _ in range(10):
      next(first)
    state = get(first)
    expected = [next(first)["image"] for _ in range(20)]
    second = make()
    put(second, state)
    same = all(np.array_equal(a, next(second)["image"]) for a in expected)
    rows.append({"pipeline": name, "resume_bitwise": same})
  for row in rows:
    print(json.dumps(row), flush=True)
  if f.out:
    with open(f.out, "w") as out:
      json.dump(rows, out, indent=1)
  return 0


if __name__ == "__main__":
  sys.path.insert(0, ".")
  common.run_main(main)
