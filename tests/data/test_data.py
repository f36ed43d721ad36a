"""Tests for gg_augment.data: embedded Fashion-MNIST, CIFAR-10 batches, image lists, splits."""

from __future__ import annotations

import gzip
import importlib.util
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from gg_augment.data import (
    CIFAR10_CLASSES,
    IMAGELIST_PRESETS,
    ImageListDataset,
    IndexedTensorDataset,
    RetrievalSplits,
    embedded_path,
    load_cifar10,
    load_embedded,
    load_imagelist,
    split_class_balanced,
)

from ..conftest import write_cifar_batch, write_image_list

SPLITS = ("query", "train", "database")


@pytest.fixture(scope="module")
def embedded() -> RetrievalSplits:
    return load_embedded()


# --------------------------------------------------------------------------- embedded


def test_embedded_file_is_small_and_licensed() -> None:
    path = embedded_path()
    assert path.stat().st_size <= 8_000_000
    notice = (path.parent / "LICENSE-fashion-mnist.txt").read_text()
    assert "Zalando SE" in notice and "MIT" in notice and "1708.07747" in notice


def test_embedded_sizes_and_class_balance(embedded: RetrievalSplits) -> None:
    assert (len(embedded.query), len(embedded.train)) == (1000, 5000)
    assert len(embedded.database) == 12_000 - 6000
    assert embedded.num_classes == 10 and len(embedded.class_names) == 10
    for name, per_class in (("query", 100), ("train", 500), ("database", 600)):
        labels = getattr(embedded, name).labels
        assert labels.dtype == torch.int64
        assert torch.bincount(labels, minlength=10).tolist() == [per_class] * 10


def test_embedded_items_shapes_and_index(embedded: RetrievalSplits) -> None:
    train = embedded.train
    assert isinstance(train, IndexedTensorDataset)
    assert train.images.shape == (5000, 3, 32, 32) and train.images.dtype == torch.float32
    image, label, index = train[4999]
    assert image.shape == (3, 32, 32) and label.ndim == 0 and index == 4999
    assert train[-1][2] == 4999  # the canonical (non-negative) index keys the cache
    with pytest.raises(IndexError, match="out of range"):
        train[5000]
    images, labels, indices = next(iter(DataLoader(train, batch_size=8, shuffle=False)))
    assert images.shape == (8, 3, 32, 32) and indices.tolist() == list(range(8))
    assert torch.equal(labels, train.labels[:8])


def test_embedded_is_deterministic(embedded: RetrievalSplits) -> None:
    again = load_embedded()
    for name in SPLITS:
        assert torch.equal(getattr(embedded, name).labels, getattr(again, name).labels)
        assert torch.equal(getattr(embedded, name).images, getattr(again, name).images)


def test_embedded_real_pixels() -> None:
    splits = load_embedded(image_size=28, channels=1, normalize=False)
    images = splits.database.images
    assert images.min() >= 0 and images.max() <= 1
    # Fashion-MNIST: mean intensity about 0.29, std about 0.35, dark background.
    assert 0.2 < float(images.mean()) < 0.4
    assert 0.25 < float(images.std()) < 0.45
    per_image_std = images.flatten(1).std(dim=1)
    assert bool((per_image_std > 0.05).all()), "every image must have real structure"
    assert splits.mean == (0.0,) and splits.std == (1.0,)


def test_embedded_normalisation_round_trip(embedded: RetrievalSplits) -> None:
    images = embedded.train.images
    assert abs(float(images.mean())) < 0.05 and abs(float(images.std()) - 1) < 0.05
    assert len(embedded.mean) == 3 and 0.2 < embedded.mean[0] < 0.4
    raw = load_embedded("query", normalize=False).images
    torch.testing.assert_close(embedded.unnormalize(embedded.query.images), raw, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match=r"C = 3"):
        embedded.unnormalize(torch.zeros(2, 1, 4, 4))


@pytest.mark.parametrize(
    ("image_size", "channels", "shape"),
    [(28, 1, (1, 28, 28)), (16, 3, (3, 16, 16)), ((24, 40), 2, (2, 24, 40))],
)
def test_embedded_image_size_and_channels(image_size, channels, shape) -> None:
    query = load_embedded("query", image_size=image_size, channels=channels)
    assert query.images.shape == (1000, *shape)
    # Channels are replicas of the grey image.
    assert torch.equal(query.images[:, :1].expand_as(query.images), query.images)


def test_embedded_single_split_matches_full() -> None:
    train = load_embedded("train", image_size=28, channels=1)
    full = load_embedded(image_size=28, channels=1)
    assert isinstance(train, IndexedTensorDataset) and len(train) == 5000
    assert torch.equal(train.images, full.train.images)


def test_embedded_resplit_by_seed(embedded: RetrievalSplits) -> None:
    same = load_embedded(seed=0, image_size=28, channels=1)
    stored = load_embedded(image_size=28, channels=1)
    assert torch.equal(same.query.images, stored.query.images)  # seed=0 is the stored split
    other = load_embedded(seed=1, image_size=28, channels=1)
    assert other.seed == 1 and other.info()["split_from_file"] is False
    assert not torch.equal(other.query.images, stored.query.images)
    for name, per_class in (("query", 100), ("train", 500), ("database", 600)):
        labels = getattr(other, name).labels
        assert torch.bincount(labels, minlength=10).tolist() == [per_class] * 10


def test_embedded_info_is_json(embedded: RetrievalSplits) -> None:
    info = json.loads(json.dumps(embedded.info()))
    assert info["seed"] == 0
    assert info["sizes"] == {"query": 1000, "train": 5000, "database": 6000}
    assert info["dataset"] == "fashion-mnist-embedded"


def test_embedded_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="fashion_mnist_subset.npz"):
        load_embedded(root=tmp_path)


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    ("corrupt", "match"),
    [
        ("truncated", "not a readable .npz"),
        ("garbage", "not a readable .npz"),
        ("missing_key", r"missing arrays \['labels'\]"),
        ("shape_mismatch", r"labels must be integer \(12000,\)"),
        ("label_range", r"labels must lie in \[0, 9\]"),
        ("split_codes", "split codes"),
    ],
)
def test_embedded_corrupt_file(tmp_path: Path, raw_arrays, corrupt: str, match: str) -> None:
    path = tmp_path / "fashion_mnist_subset.npz"
    if corrupt == "truncated":
        path.write_bytes(embedded_path().read_bytes()[:100_000])
    elif corrupt == "garbage":
        path.write_bytes(b"this is not a zip archive" * 10)
    else:
        arrays = dict(raw_arrays)
        if corrupt == "missing_key":
            del arrays["labels"]
        elif corrupt == "shape_mismatch":
            arrays["labels"] = arrays["labels"][:-1]
        elif corrupt == "label_range":
            arrays["labels"] = arrays["labels"].copy()
            arrays["labels"][7] = 10
        elif corrupt == "split_codes":
            arrays["split"] = arrays["split"] + 1
        _write_npz(path, arrays)
    with pytest.raises(ValueError, match=match) as info:
        load_embedded(root=tmp_path)
    assert str(path) in str(info.value)
    # root may also name the file itself.
    with pytest.raises(ValueError, match="corrupt embedded dataset"):
        load_embedded(root=path)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"split": "val"}, ValueError, "split must be one of"),
        ({"channels": 0}, ValueError, "channels must be an int >= 1"),
        ({"image_size": 0}, ValueError, "image_size must be >= 1"),
        ({"image_size": 2.5}, TypeError, "image_size must be an int"),
        ({"seed": -1}, ValueError, "seed must be an int >= 0"),
        ({"normalize": 1}, TypeError, "normalize must be a bool"),
        ({"root": 3}, TypeError, "root must be a str or os.PathLike"),
    ],
)
def test_embedded_bad_arguments(kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        load_embedded(**kwargs)


# --------------------------------------------------------------------------- splits


def test_split_class_balanced_is_balanced_disjoint_and_seeded() -> None:
    labels = torch.arange(5).repeat_interleave(torch.tensor([9, 10, 11, 12, 13]))
    query, train, rest = split_class_balanced(labels, (2, 3), seed=7)
    assert torch.bincount(labels[query], minlength=5).tolist() == [2] * 5
    assert torch.bincount(labels[train], minlength=5).tolist() == [3] * 5
    everything = torch.cat([query, train, rest])
    assert torch.equal(everything.sort().values, torch.arange(len(labels)))
    for part in (query, train, rest):
        assert part.dtype == torch.int64 and torch.equal(part, part.sort().values)
    again = split_class_balanced(labels, (2, 3), seed=7)
    assert all(torch.equal(a, b) for a, b in zip((query, train, rest), again))
    other = split_class_balanced(labels, (2, 3), seed=8)
    assert not torch.equal(query, other[0])
    generator = torch.Generator().manual_seed(7)
    assert torch.equal(split_class_balanced(labels, (2, 3), generator=generator)[0], query)
    (only,) = split_class_balanced(labels, (4,), seed=0, rest=False)
    assert len(only) == 20


def test_split_class_balanced_multi_hot_is_random_with_protocol_sizes() -> None:
    labels = (torch.rand(200, 4, generator=torch.Generator().manual_seed(0)) > 0.5).float()
    query, train, rest = split_class_balanced(labels, (5, 10), seed=0)
    assert (len(query), len(train), len(rest)) == (20, 40, 140)
    assert torch.equal(torch.cat([query, train, rest]).sort().values, torch.arange(200))


@pytest.mark.parametrize(
    ("labels", "counts", "kwargs", "error", "match"),
    [
        (torch.tensor([0, 0, 1]), (2,), {}, ValueError, r"class 1: 1"),
        (torch.tensor([0, 1]), (1,), {"num_classes": 3}, ValueError, r"class 2: 0"),
        (torch.tensor([0, 5]), (1,), {"num_classes": 3}, ValueError, r"lie in \[0, 2\]"),
        (torch.tensor([-1, 0]), (1,), {}, ValueError, "non-negative"),
        (torch.tensor([0.0, 1.0]), (1,), {}, TypeError, "integer dtype"),
        (torch.tensor([0, 1]), 1, {}, TypeError, "sequence of ints"),
        (torch.tensor([0, 1]), (-1,), {}, ValueError, r"counts_per_class\[0\] must be an int >= 0"),
        (torch.zeros(4, 2), (3,), {}, ValueError, "asks for 6 samples"),
        (torch.zeros(2, 2, 2), (1,), {}, ValueError, r"shape \(N,\)"),
        (torch.tensor([0, 1]), (1,), {"seed": 1.5}, TypeError, "seed must be an int"),
    ],
)
def test_split_class_balanced_errors(labels, counts, kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        split_class_balanced(labels, counts, **kwargs)


# --------------------------------------------------------------------------- CIFAR-10

@pytest.mark.filterwarnings("error::DeprecationWarning")
def test_cifar10_loads_balanced_split(cifar_root) -> None:
    root, data, labels = cifar_root
    splits = load_cifar10(root, num_query=20, num_train=50, seed=3, normalize=False)
    assert (len(splits.query), len(splits.train), len(splits.database)) == (20, 50, 50)
    assert torch.bincount(splits.query.labels, minlength=10).tolist() == [2] * 10
    assert torch.bincount(splits.train.labels, minlength=10).tolist() == [5] * 10
    assert splits.class_names == CIFAR10_CLASSES and splits.seed == 3
    image, label, index = splits.train[0]
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32 and index == 0
    # Pixels survive the round trip: each loaded image is one of the source rows / 255.
    source = torch.from_numpy(data).float().div(255).view(-1, 3, 32, 32)
    matches = (splits.query.images[:, None] == source[None]).flatten(2).all(2)
    assert bool((matches.sum(1) >= 1).all())
    info = json.loads(json.dumps(splits.info()))
    assert info["sizes"] == {"query": 20, "train": 50, "database": 50}
    assert info["database_mode"] == "rest" and info["seed"] == 3


def test_cifar10_database_all_and_root_forms(cifar_root) -> None:
    root, _, _ = cifar_root
    rest = load_cifar10(root, num_query=20, num_train=50, seed=0)
    every = load_cifar10(root / "cifar-10-batches-py", num_query=20, num_train=50, database="all")
    assert len(every.database) == 100  # everything but the 20 queries
    assert torch.equal(rest.query.images, every.query.images)
    assert abs(float(rest.database.images.mean())) < 0.3  # normalised with pool statistics
    assert len(rest.mean) == 3 and rest.mean[1] > rest.mean[0]  # channel 1 is the inverse


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        ("truncated", "cannot unpickle"),
        ("not_dict", "expected a dict"),
        ("missing_key", "missing key 'labels'"),
        ("wrong_width", r"data must be uint8 \(N, 3072\)"),
        ("label_count", "expected 20 labels"),
        ("label_range", r"labels must lie in \[0, 9\]"),
        ("foreign_global", "is not allowed in a CIFAR batch"),
    ],
)
def test_cifar10_corrupt_batch(cifar_root, damage: str, match: str) -> None:
    root, data, labels = cifar_root
    path = root / "cifar-10-batches-py" / "data_batch_3"
    rows, batch_labels = data[40:60], labels[40:60].tolist()
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:500])
    elif damage == "not_dict":
        path.write_bytes(pickle.dumps([1, 2, 3]))
    elif damage == "missing_key":
        path.write_bytes(pickle.dumps({b"data": rows}))
    elif damage == "wrong_width":
        write_cifar_batch(path, rows[:, :100], batch_labels)
    elif damage == "label_count":
        write_cifar_batch(path, rows, batch_labels[:-1])
    elif damage == "label_range":
        write_cifar_batch(path, rows, [10] * 20)
    elif damage == "foreign_global":
        path.write_bytes(pickle.dumps({b"data": rows, b"labels": Path("x")}))
    with pytest.raises(ValueError, match=match) as info:
        load_cifar10(root, num_query=20, num_train=50)
    assert "data_batch_3" in str(info.value)


def test_cifar10_missing_files_and_bad_arguments(cifar_root) -> None:
    root, _, _ = cifar_root
    with pytest.raises(FileNotFoundError, match="CIFAR-10 root not found"):
        load_cifar10(root / "absent")
    (root / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="CIFAR-10 batches not found"):
        load_cifar10(root / "empty")
    (root / "cifar-10-batches-py" / "test_batch").unlink()
    with pytest.raises(FileNotFoundError, match="test_batch"):
        load_cifar10(root, num_query=20, num_train=50)
    with pytest.raises(ValueError, match="num_query must be a multiple of 10"):
        load_cifar10(root, num_query=25)
    with pytest.raises(ValueError, match="database must be one of"):
        load_cifar10(root, database="some")


def test_cifar10_too_many_per_class(cifar_root) -> None:
    root, _, _ = cifar_root
    with pytest.raises(ValueError, match="every class needs sum"):
        load_cifar10(root, num_query=100, num_train=500)


# --------------------------------------------------------------------------- image lists


def test_imagelist_loads_images_and_labels(image_list_root) -> None:
    root, images, labels = image_list_root
    splits = load_imagelist(
        root, "train.txt", "test.txt", "database.txt", image_size=28, normalize=False
    )
    assert (len(splits.train), len(splits.query), len(splits.database)) == (12, 4, 8)
    assert splits.num_classes == 5 and splits.seed is None
    image, label, index = splits.query[1]
    assert image.shape == (3, 28, 28) and image.dtype == torch.float32 and index == 1
    expected = torch.from_numpy(images[13]).float() / 255
    for channel in range(3):  # grey PNG converted to RGB
        torch.testing.assert_close(image[channel], expected)
    assert torch.equal(label, torch.from_numpy(labels[13]).float())
    assert splits.train.labels.shape == (12, 5)
    batch = next(iter(DataLoader(splits.database, batch_size=4)))
    assert batch[0].shape == (4, 3, 28, 28) and batch[2].tolist() == [0, 1, 2, 3]
    info = json.loads(json.dumps(splits.info()))
    assert info["sizes"] == {"query": 4, "train": 12, "database": 8} and info["seed"] is None


def test_imagelist_resize_normalise_and_transform(image_list_root) -> None:
    root, _, _ = image_list_root
    dataset = ImageListDataset(root / "train.txt", image_size=(16, 20))
    image, _, _ = dataset[0]
    assert image.shape == (3, 16, 20) and float(image.min()) < 0  # ImageNet-normalised
    custom = ImageListDataset(root / "train.txt", transform=lambda img: torch.zeros(1, 2, 2))
    assert custom[3][0].shape == (1, 2, 2) and custom[3][2] == 3


def test_imagelist_accepts_float_labels_and_blank_lines(tmp_path: Path) -> None:
    path = write_image_list(tmp_path / "list.txt", ["a.png 1.0 0.0", "", "b.png 0 1"])
    dataset = ImageListDataset(path)
    assert len(dataset) == 2 and dataset.labels.tolist() == [[1.0, 0.0], [0.0, 1.0]]


@pytest.mark.parametrize(
    ("lines", "match"),
    [
        (
            ["a.png 0 1 0", "b.png 1 0 0", "c.png 0 1"],
            r"line 3: label vector has 2 entries; expected 3",
        ),
        (["a.png 0 1", "b.png 1 0", "c.png 0 2"], r"line 3: labels must be 0 or 1; got '2'"),
        (["a.png 0 1", "b.png x 0"], r"line 2: labels must be 0 or 1; got 'x'"),
        (["a.png 0 1", "b.png"], r"line 2: expected an image path followed by a 0/1 label"),
        (["", "   "], "image list is empty"),
    ],
)
def test_imagelist_bad_lines(tmp_path: Path, lines: list[str], match: str) -> None:
    path = write_image_list(tmp_path / "list.txt", lines)
    with pytest.raises(ValueError, match=match):
        ImageListDataset(path)


def test_imagelist_label_count_must_match_preset(image_list_root) -> None:
    root, _, _ = image_list_root
    assert IMAGELIST_PRESETS["nus-wide-21"].num_classes == 21
    assert IMAGELIST_PRESETS["imagenet-100"].num_classes == 100
    assert IMAGELIST_PRESETS["coco"].num_classes == 80
    with pytest.raises(ValueError, match="line 1: expected 21 labels per line; got 5"):
        load_imagelist(root, "train.txt", "test.txt", "database.txt", preset="nus-wide-21")
    with pytest.raises(ValueError, match="preset must be one of"):
        load_imagelist(root, "train.txt", "test.txt", "database.txt", preset="nus-wide")
    # Without a preset the training list fixes the count for the other two lists.
    write_image_list(root / "query6.txt", ["img/000.png 0 1 0 0 0 1"])
    with pytest.raises(ValueError, match="expected 5 labels per line; got 6"):
        load_imagelist(root, "train.txt", "query6.txt", "database.txt")


def test_imagelist_missing_files(image_list_root) -> None:
    root, _, _ = image_list_root
    (root / "img" / "002.png").unlink()
    dataset = ImageListDataset(root / "train.txt")
    with pytest.raises(FileNotFoundError, match=r"002\.png \(line 3 of"):
        dataset[2]
    with pytest.raises(FileNotFoundError, match=r"002\.png"):
        ImageListDataset(root / "train.txt", check_files=True)
    with pytest.raises(FileNotFoundError, match="image list file not found"):
        ImageListDataset(root / "nope.txt")
    (root / "img" / "003.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"cannot read image .*003\.png"):
        dataset[3]


# --------------------------------------------------------------------------- build script


@pytest.fixture(scope="module")
def build_script():
    path = Path(__file__).resolve().parents[2] / "scripts" / "build_embedded_dataset.py"
    spec = importlib.util.spec_from_file_location("build_embedded_dataset", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    header = bytes([0, 0, type_code, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def test_build_script_reads_idx(tmp_path: Path, build_script) -> None:
    images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    plain = tmp_path / "images-idx3-ubyte"
    plain.write_bytes(_idx_bytes(images))
    zipped = tmp_path / "images-idx3-ubyte.gz"
    zipped.write_bytes(gzip.compress(_idx_bytes(images)))
    np.testing.assert_array_equal(build_script.read_idx(plain), images)
    np.testing.assert_array_equal(build_script.read_idx(zipped), images)
    wide = np.array([[1, -2], [300, 4]], dtype=np.int32)
    wide_path = tmp_path / "wide-idx2-int"
    wide_path.write_bytes(_idx_bytes(wide, type_code=0x0C))
    np.testing.assert_array_equal(build_script.read_idx(wide_path), wide)


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        (lambda raw: b"\x01" + raw[1:], "bad IDX magic number"),
        (lambda raw: raw[:2] + b"\x07" + raw[3:], "unknown IDX type byte 0x07"),
        (lambda raw: raw[:-5], "payload size mismatch"),
        (lambda raw: raw[:6], "header truncated"),
        (lambda raw: raw[:3], "too short for an IDX header"),
        (lambda raw: gzip.compress(raw)[:-20], "corrupt gzip stream"),
    ],
)
def test_build_script_rejects_corrupt_idx(tmp_path: Path, build_script, damage, match) -> None:
    path = tmp_path / "labels-idx1-ubyte"
    path.write_bytes(damage(_idx_bytes(np.arange(10, dtype=np.uint8))))
    with pytest.raises(ValueError, match=match) as info:
        build_script.read_idx(path)
    assert str(path) in str(info.value)
