"""A tiny trained run shared by the serving tests, and the embedded images as PNG files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

TINY_RUN = [
    "--epochs", "1", "--limit-train", "64", "--limit-query", "16", "--limit-database", "32",
    "--code-lengths", "16", "--augment", "gt", "--batch-size", "32", "--no-progress", "--threads", "1",
]


def write_embedded_pngs(folder: Path, count: int, split: str = "train") -> list[Path]:
    """The first ``count`` images of an embedded split as 28×28 grey PNGs (the stored pixels)."""
    from gg_augment.data import load_embedded

    images, _ = load_embedded(split, image_size=28, channels=1, normalize=False).tensors
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"{split}_{i:05d}.png"
        Image.fromarray(images[i, 0].mul(255).round().to(torch.uint8).numpy()).save(path)
        paths.append(path)
    return paths


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """The trainer's ``--out`` folder of a one-epoch 16-bit hashing run on 64 images."""
    from gg_augment.training.cli import main

    out = tmp_path_factory.mktemp("tiny") / "run"
    main("hashing", argv=[*TINY_RUN, "--out", str(out)])
    return out


@pytest.fixture(scope="session")
def train_pngs(tmp_path_factory) -> list[Path]:
    return write_embedded_pngs(tmp_path_factory.mktemp("pngs") / "train", 48)
