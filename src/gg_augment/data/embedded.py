"""The Fashion-MNIST subset that ships inside the package, so everything runs offline.

The file ``_embedded/fashion_mnist_subset.npz`` holds 12,000 real Fashion-MNIST images
(1,200 per class, drawn with seed 0 from the 70,000 original training and test images) and
their default retrieval split: 100 query and 500 training images per class, the remaining
6,000 as the database. ``scripts/build_embedded_dataset.py`` rebuilds it from the original
IDX files. Fashion-MNIST is MIT licensed, Copyright (c) 2017 Zalando SE; see
``_embedded/LICENSE-fashion-mnist.txt``.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path
from typing import Literal, overload

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .._checks import check_choice, check_int, pair
from ._validate import as_path, require_file
from .retrieval import IndexedTensorDataset, RetrievalSplits
from .splits import split_class_balanced

__all__ = ["EMBEDDED_FILE", "embedded_path", "load_embedded"]

EMBEDDED_FILE = "fashion_mnist_subset.npz"
_EMBEDDED_DIR = Path(__file__).resolve().parent / "_embedded"
_SPLITS = ("query", "train", "database")
_REQUIRED_KEYS = ("images", "labels", "split", "seed", "class_names")

SplitName = Literal["query", "train", "database"]


def embedded_path(root: str | Path | None = None) -> Path:
    """Where :func:`load_embedded` reads from.

    Args:
        root: A folder holding ``fashion_mnist_subset.npz``, or the path of an ``.npz`` file;
            ``None`` means the copy inside the package.
    """
    if root is None:
        return _EMBEDDED_DIR / EMBEDDED_FILE
    path = as_path(root, "root")
    return path / EMBEDDED_FILE if path.is_dir() else path


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    require_file(path, "embedded dataset file")
    try:
        # allow_pickle=False: the file only ever holds plain arrays, so refuse code execution.
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ValueError(f"expected an .npz archive; got a single {type(loaded).__name__}")
        with loaded as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as err:
        raise ValueError(f"{path}: corrupt embedded dataset: not a readable .npz ({err})") from err
    missing = [key for key in _REQUIRED_KEYS if key not in arrays]
    if missing:
        raise ValueError(
            f"{path}: corrupt embedded dataset: missing arrays {missing}; "
            f"expected {list(_REQUIRED_KEYS)}, found {sorted(arrays)}"
        )
    return arrays


def _check_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    def fail(message: str) -> ValueError:
        return ValueError(f"{path}: corrupt embedded dataset: {message}")

    images, labels, split = arrays["images"], arrays["labels"], arrays["split"]
    class_names, seed = arrays["class_names"], arrays["seed"]
    if images.dtype != np.uint8 or images.ndim != 3 or min(images.shape[1:], default=0) < 1:
        raise fail(f"images must be uint8 (N, H, W); got {images.dtype} {images.shape}")
    count = images.shape[0]
    if count == 0:
        raise fail("images is empty")
    for key, array in (("labels", labels), ("split", split)):
        if array.shape != (count,) or not np.issubdtype(array.dtype, np.integer):
            raise fail(
                f"{key} must be integer ({count},) to match images {images.shape}; "
                f"got {array.dtype} {array.shape}"
            )
    if class_names.ndim != 1 or class_names.size == 0 or class_names.dtype.kind != "U":
        raise fail(
            f"class_names must be a non-empty 1-D string array; got {class_names.dtype} {class_names.shape}"
        )
    num_classes = class_names.shape[0]
    if int(labels.min()) < 0 or int(labels.max()) >= num_classes:
        raise fail(
            f"labels must lie in [0, {num_classes - 1}] for {num_classes} class names; "
            f"got values in [{int(labels.min())}, {int(labels.max())}]"
        )
    if int(split.min()) < 0 or int(split.max()) > 2:
        raise fail(
            "split codes must be 0 (query), 1 (train) or 2 (database); "
            f"got values in [{int(split.min())}, {int(split.max())}]"
        )
    if seed.shape != () or not np.issubdtype(seed.dtype, np.integer):
        raise fail(f"seed must be an integer scalar; got {seed.dtype} {seed.shape}")


def _balanced_count(labels: Tensor, mask: Tensor, num_classes: int, split_name: str) -> int:
    per_class = torch.bincount(labels[mask], minlength=num_classes)
    if bool((per_class != per_class[0]).any()):
        raise ValueError(
            f"cannot re-draw the split with seed=: the stored {split_name} split is not class "
            f"balanced (per-class counts {per_class.tolist()})"
        )
    return int(per_class[0])


@overload
def load_embedded(
    split: None = None,
    *,
    image_size: int | tuple[int, int] = 32,
    channels: int = 3,
    normalize: bool = True,
    root: str | Path | None = None,
    seed: int | None = None,
) -> RetrievalSplits: ...


@overload
def load_embedded(
    split: SplitName,
    *,
    image_size: int | tuple[int, int] = 32,
    channels: int = 3,
    normalize: bool = True,
    root: str | Path | None = None,
    seed: int | None = None,
) -> IndexedTensorDataset: ...


def load_embedded(
    split: SplitName | None = None,
    *,
    image_size: int | tuple[int, int] = 32,
    channels: int = 3,
    normalize: bool = True,
    root: str | Path | None = None,
    seed: int | None = None,
) -> RetrievalSplits | IndexedTensorDataset:
    """Load the embedded Fashion-MNIST retrieval benchmark (no download, well under a second).

    Images are resized once for the whole set (bilinear, antialiased when shrinking),
    replicated to ``channels`` and, with ``normalize=True``, standardised with the mean and std
    of all 12,000 subset images at the output size (one value, as the images are grey). The
    statistics do not depend on the split, and are stored on the result so that
    :meth:`RetrievalSplits.unnormalize` can undo them for plotting.

    Args:
        split: ``None`` for all three sets, or one of ``"query"``, ``"train"``,
            ``"database"`` for that set alone.
        image_size: Output side, or ``(H, W)``; 28 keeps the original pixels.
        channels: Channels after replication (3 for ImageNet-style backbones, 1 for grey).
        normalize: Standardise with the dataset mean and std; otherwise values are in [0, 1].
        root: Folder holding ``fashion_mnist_subset.npz``, or the ``.npz`` path itself;
            defaults to the copy inside the package.
        seed: ``None`` keeps the split stored in the file (drawn with seed 0). An int re-draws
            a class-balanced split of the same sizes with that seed;
            ``seed=0`` reproduces the stored split.

    Returns:
        :class:`RetrievalSplits` whose sets are :class:`IndexedTensorDataset` with float32
        images (N, channels, H, W) and int64 class ids (N,), or the one set named by ``split``.

    Raises:
        FileNotFoundError: If the ``.npz`` file does not exist.
        ValueError: If the file is corrupt (not a zip, missing arrays, shapes that disagree,
            labels out of range) or an argument is out of range.

    Examples:
        >>> splits = load_embedded(image_size=32, channels=3)
        >>> len(splits.query), len(splits.train), len(splits.database)
        (1000, 5000, 6000)
        >>> image, label, index = splits.train[0]
        >>> tuple(image.shape)
        (3, 32, 32)
    """
    if split is not None:
        check_choice(split, "split", _SPLITS)
    height, width = pair(image_size, "image_size")
    channels = check_int(channels, "channels", minimum=1)
    if not isinstance(normalize, bool):
        raise TypeError(f"normalize must be a bool; got {type(normalize).__name__}")
    if seed is not None:
        seed = check_int(seed, "seed", minimum=0)

    path = embedded_path(root)
    arrays = _read_arrays(path)
    _check_arrays(path, arrays)
    class_names = tuple(str(name) for name in arrays["class_names"])
    num_classes = len(class_names)
    labels = torch.from_numpy(arrays["labels"].astype(np.int64))
    codes = torch.from_numpy(arrays["split"].astype(np.int64))

    if seed is None:
        split_seed = int(arrays["seed"])
        indices = [(codes == code).nonzero().flatten() for code in range(3)]
    else:
        split_seed = seed
        counts = tuple(
            _balanced_count(labels, codes == code, num_classes, name)
            for code, name in enumerate(_SPLITS[:2])
        )
        indices = list(split_class_balanced(labels, counts, seed=seed, num_classes=num_classes))

    # One vectorised resize of the whole set; bilinear never overshoots [0, 1].
    images = torch.from_numpy(arrays["images"]).unsqueeze(1).float().div_(255.0)
    if images.shape[-2:] != (height, width):
        shrinking = height < images.shape[-2] or width < images.shape[-1]
        images = F.interpolate(
            images, size=(height, width), mode="bilinear", align_corners=False, antialias=shrinking
        )
    if normalize:
        mean, std = float(images.mean()), float(images.std(unbiased=False))
        images.sub_(mean).div_(std)
    else:
        mean, std = 0.0, 1.0

    # Indexing the expanded view copies each set once, straight into (n, channels, H, W).
    replicated = images.expand(-1, channels, -1, -1)
    if split is not None:
        chosen = indices[_SPLITS.index(split)]
        return IndexedTensorDataset(replicated[chosen], labels[chosen])
    sets = [IndexedTensorDataset(replicated[idx], labels[idx]) for idx in indices]
    return RetrievalSplits(
        query=sets[0],
        train=sets[1],
        database=sets[2],
        num_classes=num_classes,
        class_names=class_names,
        seed=split_seed,
        mean=(mean,) * channels,
        std=(std,) * channels,
        name="fashion-mnist-embedded",
        details={
            "source": "Fashion-MNIST subset embedded in gg_augment (MIT, Zalando SE 2017)",
            "file": path.name,
            "split_from_file": seed is None,
            "image_size": [height, width],
            "channels": channels,
            "normalized": normalize,
        },
    )
