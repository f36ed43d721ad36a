"""Shared fixtures: every test that takes ``device`` runs on CPU, and on CUDA when present."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import settings
from PIL import Image

from gg_augment.data import embedded_path

# cuBLAS is bit-reproducible only with a fixed workspace; set before CUDA starts (the
# ``deterministic`` fixture's bit-identity tests need it on GPUs).
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

settings.register_profile("ci", max_examples=40, deadline=None, derandomize=True)
settings.load_profile("ci")

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
FLOAT_DTYPES = [torch.float32, torch.float16, torch.bfloat16]


@pytest.fixture(params=DEVICES)
def device(request) -> torch.device:
    # "cuda:0", not "cuda": a tensor's .device always carries the index, and
    # torch.device("cuda") != torch.device("cuda:0").
    return torch.device("cuda", torch.cuda.current_device()) if request.param == "cuda" else torch.device(request.param)


@pytest.fixture(params=FLOAT_DTYPES, ids=lambda d: str(d).removeprefix("torch."))
def dtype(request) -> torch.dtype:
    return request.param


@pytest.fixture
def deterministic():
    """Deterministic kernels for the test (GPU atomics otherwise reorder float sums run to run)."""
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    yield
    torch.use_deterministic_algorithms(previous)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def make_generator(device: torch.device | str, seed: int = 0) -> torch.Generator:
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    return generator


# -- real-format data folders built from the embedded images (no network, ever) -----------


@pytest.fixture(scope="module")
def raw_arrays() -> dict[str, np.ndarray]:
    """The arrays of the shipped npz, untouched, for building fixtures and broken copies."""
    with np.load(embedded_path(), allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


CIFAR_PER_CLASS = 12  # per class over the whole pool: 120 images in six batches of 20


def write_cifar_batch(
    path: Path, data: np.ndarray, labels: list[int], protocol: int = 2, legacy: bool = False
) -> None:
    payload = pickle.dumps({b"batch_label": b"test", b"data": data, b"labels": labels}, protocol)
    if legacy:
        # Real CIFAR files were pickled under NumPy 1.x, which named the numpy.core module.
        assert protocol == 2 and b"numpy._core.multiarray\n" in payload
        payload = payload.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")
    path.write_bytes(payload)


@pytest.fixture
def cifar_root(tmp_path: Path, raw_arrays) -> tuple[Path, np.ndarray, np.ndarray]:
    """A CIFAR-10 folder in the real format, built from embedded images (grey -> RGB, 32 px)."""
    labels_all = raw_arrays["labels"].astype(np.int64)
    chosen = np.concatenate([np.flatnonzero(labels_all == c)[:CIFAR_PER_CLASS] for c in range(10)])
    chosen = chosen[np.random.default_rng(0).permutation(len(chosen))]
    grey = np.pad(raw_arrays["images"][chosen], ((0, 0), (2, 2), (2, 2)))  # 28 -> 32
    rgb = np.stack([grey, 255 - grey, grey // 2], axis=1)  # distinct channels
    data = rgb.reshape(len(chosen), -1).astype(np.uint8)
    labels = labels_all[chosen]
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for i, name in enumerate(names):
        rows = slice(20 * i, 20 * (i + 1))
        # Mix protocols: real files are protocol 2; users may re-save with newer ones.
        write_cifar_batch(
            folder / name, data[rows], labels[rows].tolist(), protocol=2 + i % 4, legacy=i == 4
        )
    return tmp_path, data, labels


def write_image_list(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def image_list_root(tmp_path: Path, raw_arrays) -> tuple[Path, np.ndarray, np.ndarray]:
    """PNG files of embedded images with 5-label multi-hot vectors, plus three list files."""
    images = raw_arrays["images"][:24]
    labels = np.zeros((24, 5), dtype=np.int64)
    labels[np.arange(24), raw_arrays["labels"][:24] % 5] = 1
    labels[::3, 4] = 1  # some samples carry a second label
    (tmp_path / "img").mkdir()
    lines = []
    for i, (image, label) in enumerate(zip(images, labels)):
        Image.fromarray(image, mode="L").save(tmp_path / "img" / f"{i:03d}.png")
        lines.append(f"img/{i:03d}.png " + " ".join(str(v) for v in label))
    write_image_list(tmp_path / "train.txt", lines[:12])
    write_image_list(tmp_path / "test.txt", lines[12:16])
    write_image_list(tmp_path / "database.txt", lines[16:])
    return tmp_path, images, labels
