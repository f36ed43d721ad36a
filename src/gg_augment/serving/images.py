"""Image files to model inputs, the way the run's training images were prepared."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from torch import Tensor

__all__ = ["IMAGE_SUFFIXES", "centre_crop", "list_images", "load_images"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def list_images(source: str | os.PathLike[str]) -> list[Path]:
    """The images a folder holds (recursively, sorted by path), or those an image list names.

    An image list is a text file with one image per line; the first whitespace-separated
    token is the path (so the deep-hashing ``path 0 1 0 …`` lists work), relative to the
    list's folder. Blank lines and ``#`` comments are skipped.
    """
    source = Path(source)
    if source.is_dir():
        paths = sorted(p for p in source.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not paths:
            raise ValueError(f"{source}: the folder holds no images ({', '.join(IMAGE_SUFFIXES)})")
        return paths
    if not source.is_file():
        raise FileNotFoundError(f"no such image folder or image list: {source}")
    if source.suffix.lower() in IMAGE_SUFFIXES:
        return [source]
    lines = [line.split()[0] for line in source.read_text().splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        raise ValueError(f"{source}: the image list is empty; expected one image path per line")
    return [source.parent / line for line in lines]


def _read(path: Path, channels: int) -> Tensor:
    try:
        with Image.open(path) as image:
            array = np.array(image.convert("L" if channels == 1 else "RGB"), dtype=np.uint8)
    except FileNotFoundError:
        raise FileNotFoundError(f"image not found: {path}") from None
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(f"cannot read image {path}: {error}") from error
    tensor = torch.from_numpy(array)
    return tensor[None] if tensor.ndim == 2 else tensor.permute(2, 0, 1)


def _resize(image: Tensor, size: int) -> Tensor:
    """(C, h, w) in [0, 1] -> (C, size, size): bilinear, antialiased when shrinking, as
    :func:`gg_augment.data.load_embedded` resizes."""
    if tuple(image.shape[-2:]) == (size, size):
        return image
    shrinking = size < image.shape[-2] or size < image.shape[-1]
    return F.interpolate(image[None], size=(size, size), mode="bilinear", align_corners=False, antialias=shrinking)[0]


def centre_crop(images: Tensor, size: int) -> Tensor:
    """The ``paper`` recipe's base transform: resize to size·256/224, then the centre crop."""
    resized = round(size * 256 / 224)
    images = F.interpolate(images, size=(resized, resized), mode="bilinear", align_corners=False, antialias=True)
    top = (resized - size) // 2
    return images[..., top : top + size, top : top + size].contiguous()


def load_images(paths: Sequence[str | os.PathLike[str]], config: Any, split: dict[str, Any]) -> Tensor:
    """Read image files into (N, C, S, S) float images normalised as the run's data.

    Each file is converted to the run's channels (grey or RGB), scaled to [0, 1], resized to
    ``config.image_size`` and standardised with the split's ``mean`` and ``std``; under the
    ``paper`` recipe's base transform it is also resized by 256/224 and centre-cropped.
    """
    mean = torch.tensor(split.get("mean", (0.0, 0.0, 0.0)), dtype=torch.float32)
    std = torch.tensor(split.get("std", (1.0, 1.0, 1.0)), dtype=torch.float32)
    channels = int(split.get("channels", mean.numel()))
    if not paths:
        return torch.empty(0, channels, config.image_size, config.image_size)
    images = torch.stack([_resize(_read(Path(p), channels).float().div_(255.0), config.image_size) for p in paths])
    if config.settings().base_transform == "flip":
        images = centre_crop(images, config.image_size)
    return images.sub_(mean.view(1, -1, 1, 1)).div_(std.view(1, -1, 1, 1))
