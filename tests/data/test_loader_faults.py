"""Loader faults: every failure names the file (and the list line), nothing is clipped or misread."""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gg_augment.data import ImageListDataset, load_cifar10, load_imagelist, read_image_list

from ..conftest import write_cifar_batch, write_image_list


def _grey16(path: Path) -> np.ndarray:
    values = (np.arange(32 * 32, dtype=np.uint32).reshape(32, 32) * 64).astype(np.uint16)  # 0 .. 65472
    Image.fromarray(values).save(path)
    assert Image.open(path).mode == "I;16"
    return values


def test_a_16_bit_png_is_scaled_not_clipped(tmp_path):
    values = _grey16(tmp_path / "deep.png")
    Image.fromarray((values // 257).astype(np.uint8)).save(tmp_path / "flat.png")
    path = write_image_list(tmp_path / "list.txt", ["deep.png 1 0", "flat.png 0 1"])
    dataset = ImageListDataset(path, image_size=32, normalize=False)
    deep, flat = dataset[0][0], dataset[1][0]
    assert deep.shape == (3, 32, 32)
    assert float((deep == 1.0).float().mean()) < 0.01  # clipping made 99.6 % of it 1.0
    expected = values.astype(np.float32) / 65535.0
    assert np.abs(deep[0].numpy() - expected).max() <= 1 / 255 + 1e-6
    assert np.abs(deep.numpy() - flat.numpy()).max() <= 1 / 255 + 1e-6


def test_a_32_bit_image_is_refused_naming_it(tmp_path):
    Image.fromarray(np.full((8, 8), 70000, dtype=np.int32)).save(tmp_path / "wide.tif")
    path = write_image_list(tmp_path / "list.txt", ["wide.tif 1"])
    with pytest.raises(ValueError, match=r"cannot read image .*wide\.tif \(line 1 of .*list\.txt\).*no fixed value range"):
        ImageListDataset(path)[0]


@pytest.mark.parametrize("separator", [" ", "\t", "  "])
def test_paths_with_spaces_are_read(tmp_path, separator):
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "my photo.png")
    (tmp_path / "sub dir").mkdir()
    Image.fromarray(np.full((4, 4), 255, np.uint8)).save(tmp_path / "sub dir" / "a b c.png")
    path = write_image_list(
        tmp_path / "list.txt", [f"my photo.png{separator}1 0", f"sub dir/a b c.png{separator}0{separator}1"]
    )
    dataset = ImageListDataset(path, image_size=4, normalize=False, check_files=True)
    assert [p.name for p in dataset.paths] == ["my photo.png", "a b c.png"]
    assert dataset.labels.tolist() == [[1.0, 0.0], [0.0, 1.0]]
    assert float(dataset[1][0].min()) == 1.0


def test_an_ambiguous_line_names_both_readings(tmp_path):
    path = write_image_list(tmp_path / "list.txt", ["a.png 0 1 0", "my photo.png 1 0"])
    with pytest.raises(ValueError, match=r"line 2: labels must be 0 or 1; got 'photo.png' \(or the image path is 'my photo.png' and the line has 2 labels, not 3\)"):
        read_image_list(path)


def test_a_utf8_bom_is_ignored(tmp_path):
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "a.png")
    path = tmp_path / "list.txt"
    path.write_bytes("\ufeffa.png 1 0\n".encode())
    dataset = ImageListDataset(path, image_size=4, check_files=True)
    assert dataset.paths[0].name == "a.png" and dataset[0][0].shape == (3, 4, 4)


def test_a_latin1_list_is_named_with_its_line(tmp_path):
    path = tmp_path / "list.txt"
    path.write_bytes("a.png 1 0\nb.png 0 1\ncaf\u00e9.png 1 1\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"list\.txt, line 3: the list is not UTF-8 text \(byte 0xe9"):
        read_image_list(path)


def test_crlf_lines_and_minus_one_labels(tmp_path):
    path = tmp_path / "list.txt"
    path.write_bytes(b"a.png 1 0\r\nb.png 0 1\r\n")
    assert read_image_list(path)[1].tolist() == [[1.0, 0.0], [0.0, 1.0]]
    path.write_bytes(b"a.png 1 0\nb.png -1 1\n")
    with pytest.raises(ValueError, match=r"line 2: labels must be 0 or 1; got '-1'"):
        read_image_list(path)


def test_a_decompression_bomb_names_path_and_line(tmp_path, monkeypatch):
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(tmp_path / "bomb.png")
    path = write_image_list(tmp_path / "list.txt", ["", "bomb.png 1"])
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 64x64 > 2x the limit: PIL refuses it
    with pytest.raises(ValueError, match=r"cannot read image .*bomb\.png \(line 2 of .*list\.txt\): DecompressionBombError"):
        ImageListDataset(path)[0]


@pytest.mark.parametrize("damage", ["truncated", "directory", "null byte"])
def test_unreadable_images_name_path_and_line(tmp_path, damage):
    Image.fromarray(np.arange(64 * 64, dtype=np.uint32).reshape(64, 64).astype(np.uint8)).save(tmp_path / "x.png")
    name = "x.png"
    if damage == "truncated":
        data = (tmp_path / "x.png").read_bytes()
        (tmp_path / "x.png").write_bytes(data[: len(data) // 2])
    elif damage == "directory":
        name = "folder"
        (tmp_path / name).mkdir()
    else:
        name = "x\x00.png"
    path = write_image_list(tmp_path / "list.txt", ["ok.png 0", f"{name} 1"])
    with pytest.raises(ValueError, match=r"cannot read image .* \(line 2 of .*list\.txt\)"):
        ImageListDataset(path)[1]


@pytest.mark.skipif(sys.version_info < (3, 11), reason="exception notes are Python 3.11+")
def test_a_failing_transform_is_noted_with_the_line(tmp_path):
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "a.png")
    path = write_image_list(tmp_path / "list.txt", ["a.png 1"])

    def broken(image):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom") as info:
        ImageListDataset(path, transform=broken)[0]
    assert any("a.png (line 1 of" in note for note in info.value.__notes__)


def test_load_imagelist_accepts_a_root_with_spaces(tmp_path):
    root = tmp_path / "my data"
    root.mkdir()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(root / "a b.png")
    for name in ("train.txt", "test.txt", "db.txt"):
        write_image_list(root / name, ["a b.png 1 0", "a b.png 0 1"])
    splits = load_imagelist(root, "train.txt", "test.txt", "db.txt", image_size=4)
    assert splits.train[1][0].shape == (3, 4, 4)


# -- CIFAR-10 ----------------------------------------------------------------------------------


def _nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("data", _nested(200), "data is not an array"),
        ("labels", _nested(200), "labels are not integers"),
        ("labels", [1.5] * 20, r"labels are not integers \(dtype float64"),
        ("labels", ["1"] * 20, "labels are not integers"),
        ("labels", [None] * 20, "labels are not integers"),
        ("labels", [2**70] * 20, "labels are not integers"),
    ],
)
def test_a_cifar_batch_with_odd_values_is_named(cifar_root, key, value, match):
    root, data, labels = cifar_root
    path = root / "cifar-10-batches-py" / "data_batch_2"
    batch = {b"data": data[20:40], b"labels": labels[20:40].tolist()}
    batch[key.encode()] = value
    path.write_bytes(pickle.dumps(batch, 2))
    with pytest.raises(ValueError, match=match) as info:
        load_cifar10(root, num_query=20, num_train=50)
    assert "data_batch_2: corrupt CIFAR-10 batch" in str(info.value)


def test_cifar_float_labels_that_are_whole_numbers_still_load(cifar_root):
    root, data, labels = cifar_root
    write_cifar_batch(root / "cifar-10-batches-py" / "data_batch_2", data[20:40], [float(v) for v in labels[20:40]])
    splits = load_cifar10(root, num_query=20, num_train=50)
    assert splits.num_classes == 10
