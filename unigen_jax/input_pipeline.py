"""The input pipeline: subsets, binarisation, seeded resumable batches, prefetching.

Datasets and splits come from :mod:`unigen_jax.data_sources` (re-exported here:
``load_split``, ``DataError``, ...). Images come out as float32 NHWC in [0, 1], labels
int32. Binarisation: ``'none'`` (grey levels, the Bernoulli likelihood's continuous
relaxation), ``'dynamic'`` (a fresh Bernoulli sample every time an example is drawn) or
``'fixed'`` (one seeded sample at load time). The paper's VAE experiments use
``'dynamic'``; the GAN experiments ``'none'``.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
from typing import Any, Mapping, Optional, Sequence

import jax
import numpy as np

from unigen_jax.data_sources import DATASETS  # noqa: F401  (re-exported)
from unigen_jax.data_sources import DataError
from unigen_jax.data_sources import DatasetInfo  # noqa: F401
from unigen_jax.data_sources import HELD_OUT_SPLITS  # noqa: F401
from unigen_jax.data_sources import ImageData  # noqa: F401
from unigen_jax.data_sources import VALIDATION_SIZE  # noqa: F401
from unigen_jax.data_sources import check_labels  # noqa: F401
from unigen_jax.data_sources import class_balanced_indices
from unigen_jax.data_sources import dataset_info
from unigen_jax.data_sources import load_idx_folder  # noqa: F401
from unigen_jax.data_sources import load_split
from unigen_jax.data_sources import read_idx  # noqa: F401


# --- subsets ----------------------------------------------------------------------

def subset_count(num_examples: int, fraction: Optional[float] = None,
                 count: Optional[int] = None) -> int:
  """Resolves a subset size from a fraction (the paper's 1%, 10%, 100%) or a count."""
  if fraction is not None and count is not None:
    raise DataError("give the training subset as a fraction or a count, not both.")
  if count is not None:
    return int(count)
  if fraction is None:
    return num_examples
  if not 0 < fraction <= 1:
    raise DataError(f"fraction={fraction} must be in (0, 1].")
  return max(1, int(round(fraction * num_examples)))


def semi_supervised_split(labels: np.ndarray, num_labelled: int, seed: int,
                          num_classes: Optional[int] = None) -> tuple[np.ndarray, np.ndarray]:
  """(labelled indices, unlabelled indices): a class-balanced labelled set and all the rest."""
  if num_labelled >= len(labels):
    raise DataError(f"data.num_labelled={num_labelled} must be smaller than the {len(labels)} "
                    "training examples (the rest are the unlabelled data).")
  labelled = class_balanced_indices(labels, num_labelled, seed, num_classes)
  unlabelled = np.setdiff1d(np.arange(len(labels)), labelled)
  if len(unlabelled) == 0:
    raise DataError("every example is labelled: lower num_labelled to leave unlabelled data.")
  return labelled, unlabelled


def binarize_fixed(images: np.ndarray, seed: int) -> np.ndarray:
  """One seeded Bernoulli sample per pixel, stored as uint8 0/255."""
  rng = np.random.default_rng(seed)
  return ((rng.random(images.shape, dtype=np.float32) * 255.0) < images).astype(np.uint8) * 255


# --- batches ----------------------------------------------------------------------

class BatchIterator:
  """Infinite, seeded, drop-remainder batches of in-memory arrays, resumable.

  Epoch ``e`` uses the permutation ``default_rng([seed, e])``; a batch is a
  contiguous slice of it, and process ``p`` of ``P`` takes its ``1/P`` part of each
  global batch (each host reads its own shard). Images (keys ending in
  ``image``) become float32 in [0, 1]; with ``binarization='dynamic'`` each is a
  fresh Bernoulli sample, seeded by (seed, epoch, batch). ``state()`` /
  ``restore(state)`` give the position for checkpoints. All work is vectorised
  numpy on whole batches.
  """

  def __init__(self, arrays: Mapping[str, np.ndarray], global_batch_size: int, seed: int, *,
               binarization: str = "none", process_index: Optional[int] = None,
               process_count: Optional[int] = None):
    sizes = {len(v) for v in arrays.values()}
    if len(sizes) != 1:
      raise DataError(f"arrays of a batch iterator must have equal lengths, got {sizes}.")
    self.num_examples = sizes.pop()
    if binarization not in ("none", "dynamic"):
      raise DataError(f"binarization={binarization!r} here; 'fixed' is applied at load time.")
    process_index = jax.process_index() if process_index is None else process_index
    process_count = jax.process_count() if process_count is None else process_count
    if global_batch_size % process_count:
      raise DataError(f"global batch {global_batch_size} is not divisible by the "
                      f"{process_count} processes.")
    if global_batch_size > self.num_examples:
      raise DataError(f"batch size {global_batch_size} exceeds the {self.num_examples} examples "
                      "available; lower the batch size or use more data.")
    self.arrays = dict(arrays)
    self.global_batch_size = global_batch_size
    self.seed = seed
    self.binarization = binarization
    self.local = slice(process_index * global_batch_size // process_count,
                       (process_index + 1) * global_batch_size // process_count)
    self.batches_per_epoch = self.num_examples // global_batch_size
    self.epoch, self.position = 0, 0
    self._perm_epoch, self._perm = -1, None

  def state(self) -> dict:
    return {"epoch": self.epoch, "position": self.position}

  def restore(self, state: Mapping[str, int]) -> None:
    self.epoch, self.position = int(state["epoch"]), int(state["position"])

  def __iter__(self):
    return self

  def __next__(self) -> dict:
    if self._perm_epoch != self.epoch:
      self._perm = np.random.default_rng([self.seed, self.epoch]).permutation(self.num_examples)
      self._perm_epoch = self.epoch
    start = self.position * self.global_batch_size
    indices = self._perm[start:start + self.global_batch_size][self.local]
    batch = {}
    for key, values in self.arrays.items():
      picked = values[indices]
      if key.endswith("image"):
        picked = picked.astype(np.float32) * (1.0 / 255.0)
        if self.binarization == "dynamic":
          # The noise of the whole global batch, of which this process takes its part: the
          # processes' parts are then exactly the one-process batch (not one noise pattern
          # repeated on every host).
          rng = np.random.default_rng([self.seed, self.epoch, self.position, 1])
          noise = rng.random((self.global_batch_size,) + picked.shape[1:], dtype=np.float32)
          picked = (noise[self.local] < picked).astype(np.float32)
      batch[key] = picked
    self.position += 1
    if self.position == self.batches_per_epoch:
      self.epoch, self.position = self.epoch + 1, 0
    return batch


class ZipIterator:
  """Joins several batch iterators into one batch dict (e.g. labelled + unlabelled streams)."""

  def __init__(self, iterators: Mapping[str, BatchIterator]):
    self.iterators = dict(iterators)

  def state(self) -> dict:
    return {name: it.state() for name, it in self.iterators.items()}

  def restore(self, state) -> None:
    for name, it in self.iterators.items():
      it.restore(state[name])

  def __iter__(self):
    return self

  def __next__(self) -> dict:
    batch = {}
    for it in self.iterators.values():
      batch.update(next(it))
    return batch


class Prefetcher:
  """Prepares the next ``size`` batches in a background thread and puts them on devices.

  ``place(batch)`` places a host batch (e.g. ``parallel.shard_batch`` with the
  step's mesh). ``state()`` is the iterator position *after the last batch
  handed out*, not after the prefetched ones, so a checkpoint resumes exactly.
  """

  def __init__(self, iterator, place=lambda b: b, size: int = 2):
    self.iterator = iterator
    self.place = place
    self._queue: queue.Queue = queue.Queue(maxsize=size)
    self._state = iterator.state()
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._fill, daemon=True)
    self._thread.start()

  def _fill(self):
    try:
      while not self._stop.is_set():
        batch = next(self.iterator)
        item = (self.iterator.state(), self.place(batch))
        while not self._stop.is_set():
          try:
            self._queue.put(item, timeout=0.1)
            break
          except queue.Full:
            continue
    except Exception as err:  # pylint: disable=broad-except
      self._queue.put(err)

  def __iter__(self):
    return self

  def __next__(self):
    item = self._queue.get()
    if isinstance(item, Exception):
      raise item
    self._state, batch = item
    return batch

  def state(self):
    return self._state

  def close(self):
    self._stop.set()
    self._thread.join(timeout=5)


# --- assembling a training stream ---------------------------------------------------

@dataclasses.dataclass
class TrainData:
  """What the trainer needs: the iterator, and facts to validate the model against."""
  iterator: Any
  image_shape: tuple
  num_classes: int
  num_examples: int
  num_labelled: Optional[int]
  description: str


def make_train_data(*, dataset: str, split: str = "train", data_dir: Optional[str] = None,
                    source: str = "auto", download: bool = False,
                    fraction: Optional[float] = None, num_examples: Optional[int] = None,
                    num_labelled: Optional[int] = None, batch_size: int = 64,
                    labelled_batch_size: Optional[int] = None, binarization: str = "none",
                    target_domain: Optional[str] = None, seed: int = 0,
                    batch_keys: Sequence[str] = ("image",), verify: bool = True) -> TrainData:
  """Loads, subsets and batches a training split for a variant with the given ``batch_keys``.

  * ``fraction``/``num_examples``: class-balanced, seeded subset (the paper's 1%, 10%, 100%).
  * ``num_labelled``: semi-supervised split of that subset into a class-balanced
    labelled set (``image``, ``label``) and the rest unlabelled (``unlabelled_image``).
  * ``target_domain='inverted'``: a second domain for adaptation (``target_image``):
    intensity-inverted images of a disjoint half of the subset.
  """
  info = dataset_info(dataset)
  if binarization not in ("none", "dynamic", "fixed"):
    raise DataError(f"binarization={binarization!r}; use 'none', 'dynamic' or 'fixed'.")
  data = load_split(dataset, split, data_dir=data_dir, source=source, download=download,
                    verify=verify)
  images, labels = data.images, data.labels
  count = subset_count(len(labels), fraction, num_examples)
  if count > len(labels):
    raise DataError(f"data.num_examples={count} is more than the {len(labels)} examples of "
                    f"{dataset}/{split}; lower it or use a larger split.")
  if count < len(labels):
    keep = class_balanced_indices(labels, count, seed, info.num_classes)
    images, labels = images[keep], labels[keep]
  if binarization == "fixed":
    images = binarize_fixed(images, seed)
  stream_binarization = "dynamic" if binarization == "dynamic" else "none"
  description = (f"{dataset}/{split}: {len(labels)} examples ({data.source}), "
                 f"binarization={binarization}")

  def stream(arrays, size, offset):
    return BatchIterator(arrays, size, seed + offset, binarization=stream_binarization)

  if "unlabelled_image" in batch_keys:
    if not num_labelled:
      raise DataError("a semi-supervised variant needs num_labelled (the size of the "
                      "class-balanced labelled set; the rest of the data is unlabelled).")
    lab, unl = semi_supervised_split(labels, num_labelled, seed, info.num_classes)
    iterator = ZipIterator({
        "labelled": stream({"image": images[lab], "label": labels[lab]},
                           labelled_batch_size or batch_size, 0),
        "unlabelled": stream({"unlabelled_image": images[unl]}, batch_size, 1)})
    description += f"; {len(lab)} labelled, {len(unl)} unlabelled"
  elif "target_image" in batch_keys:
    if target_domain != "inverted":
      raise DataError("domain adaptation needs target_domain='inverted' (the only built-in "
                      "target domain: intensity-inverted images of a disjoint half).")
    order = np.random.default_rng(seed).permutation(len(labels))
    src, tgt = order[: len(order) // 2], order[len(order) // 2:]
    iterator = ZipIterator({
        "source": stream({"image": images[src], "label": labels[src]}, batch_size, 0),
        "target": stream({"target_image": 255 - images[tgt]}, batch_size, 1)})
    description += "; target domain: inverted intensities"
  else:
    arrays = {"image": images}
    if "label" in batch_keys:
      arrays["label"] = labels
    iterator = stream(arrays, batch_size, 0)
  return TrainData(iterator, info.image_shape, info.num_classes, len(labels),
                   num_labelled, description)


def load_eval_split(dataset: str, split: str, *, data_dir: Optional[str] = None,
                    source: str = "auto", binarization: str = "none", seed: int = 0,
                    num_examples: Optional[int] = None,
                    verify: bool = True) -> tuple[np.ndarray, np.ndarray]:
  """An evaluation split as float32 images in [0, 1] and int32 labels.

  ``binarization='fixed'`` gives a seeded Bernoulli sample (the usual test-set
  protocol for likelihood bounds on grey-level MNIST). ``num_examples`` takes a
  class-balanced subset chosen with a fixed seed (the same for every run), never the
  first images of a split that may be sorted by class.
  """
  data = load_split(dataset, split, data_dir=data_dir, source=source, verify=verify)
  images, labels = data.images, data.labels
  if num_examples is not None and num_examples < len(labels):
    keep = class_balanced_indices(labels, num_examples, 0, dataset_info(dataset).num_classes)
    images, labels = images[keep], labels[keep]
  if binarization == "fixed":
    images = binarize_fixed(images, seed)
  elif binarization != "none":
    raise DataError(f"evaluation binarization={binarization!r}; use 'none' or 'fixed'.")
  return images.astype(np.float32) / 255.0, labels
