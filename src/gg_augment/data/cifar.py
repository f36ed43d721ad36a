"""CIFAR-10 from the python pickle batches, split the deep-hashing way.

The usual protocol pools all 60,000 images (training and test batches), draws 100 queries and
500 training images per class, and searches either the rest (59,000 - 5,000 = 54,000 images)
or everything but the queries (59,000). Nothing is downloaded: point ``root`` at an existing
``cifar-10-batches-py`` folder.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from .._checks import check_choice, check_int
from ._validate import as_path, require_file
from .retrieval import IndexedTensorDataset, RetrievalSplits
from .splits import split_class_balanced

__all__ = ["CIFAR10_CLASSES", "load_cifar10"]

CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_BATCHES = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch")
_PIXELS = 3 * 32 * 32

# The batches are pickles; only the globals needed to rebuild numpy arrays may be loaded, so
# a tampered file cannot run code.
_ALLOWED_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    # Pickle protocol 5 rebuilds arrays from an in-band buffer through _frombuffer.
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    # Python 3 writes bytes under protocol 2 as _codecs.encode(str, "latin1").
    ("_codecs", "encode"),
}


class _ArrayOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR batch")
        # Files pickled under NumPy 1.x name numpy.core, which NumPy 2 renamed (and warns on).
        if module.startswith("numpy.core.") and hasattr(np, "_core"):
            module = "numpy._core." + module.removeprefix("numpy.core.")
        return super().find_class(module, name)


def _find_folder(root: Path) -> Path:
    if not root.exists():
        raise FileNotFoundError(f"CIFAR-10 root not found: {root}")
    for folder in (root / CIFAR10_FOLDER, root):
        if (folder / CIFAR10_BATCHES[0]).exists():
            return folder
    raise FileNotFoundError(
        f"CIFAR-10 batches not found: expected {root / CIFAR10_FOLDER / CIFAR10_BATCHES[0]} "
        f"or {root / CIFAR10_BATCHES[0]}"
    )


def _entry(batch: dict, key: str) -> object:
    # Real batches have bytes keys (pickled under Python 2); accept str keys too.
    for candidate in (key.encode(), key):
        if candidate in batch:
            return batch[candidate]
    raise KeyError(key)


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    require_file(path, "CIFAR-10 batch file")
    try:
        with path.open("rb") as handle:
            batch = _ArrayOnlyUnpickler(handle, encoding="bytes").load()
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        ImportError,
        IndexError,
        KeyError,
    ) as err:
        raise ValueError(f"{path}: corrupt CIFAR-10 batch: cannot unpickle ({err!r})") from err
    if not isinstance(batch, dict):
        raise ValueError(
            f"{path}: corrupt CIFAR-10 batch: expected a dict; got {type(batch).__name__}"
        )
    try:
        data, labels = _entry(batch, "data"), _entry(batch, "labels")
    except KeyError as err:
        found = sorted(str(k) for k in batch)
        raise ValueError(
            f"{path}: corrupt CIFAR-10 batch: missing key {err.args[0]!r} "
            f"(expected b'data' and b'labels'; found {found})"
        ) from None
    try:
        data = np.asarray(data)
    except (ValueError, TypeError, OverflowError, RecursionError, MemoryError) as err:
        raise ValueError(
            f"{path}: corrupt CIFAR-10 batch: data is not an array ({type(err).__name__}: {err})"
        ) from None
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != _PIXELS:
        raise ValueError(
            f"{path}: corrupt CIFAR-10 batch: data must be uint8 (N, {_PIXELS}); "
            f"got {data.dtype} {data.shape}"
        )
    try:
        raw = np.asarray(labels)
    except (TypeError, ValueError, OverflowError, RecursionError, MemoryError) as err:
        raise ValueError(
            f"{path}: corrupt CIFAR-10 batch: labels are not integers ({type(err).__name__}: {err})"
        ) from None
    # Cast only what is integral already: np.asarray(..., int64) would truncate 1.5 to 1.
    integral = raw.dtype.kind in "iu" or (
        raw.dtype.kind == "f" and bool(np.isfinite(raw).all()) and bool((raw == np.round(raw)).all())
    )
    if not integral:
        sample = raw.ravel()[:3].tolist() if raw.dtype.kind != "O" else "nested or mixed values"
        raise ValueError(
            f"{path}: corrupt CIFAR-10 batch: labels are not integers (dtype {raw.dtype}; e.g. {sample})"
        )
    labels = raw.astype(np.int64)
    if labels.shape != (data.shape[0],):
        raise ValueError(
            f"{path}: corrupt CIFAR-10 batch: expected {data.shape[0]} labels to match data; "
            f"got shape {labels.shape}"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= len(CIFAR10_CLASSES)):
        raise ValueError(
            f"{path}: corrupt CIFAR-10 batch: labels must lie in [0, 9]; "
            f"got values in [{labels.min()}, {labels.max()}]"
        )
    return data, labels


def _channel_stats(data: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    # Exact statistics from 256-bin histograms: no float copy of the whole set is needed.
    planes = data.reshape(data.shape[0], 3, -1)
    values = np.arange(256, dtype=np.float64)
    means, stds = [], []
    for channel in range(3):
        histogram = np.bincount(planes[:, channel].ravel(), minlength=256).astype(np.float64)
        total = histogram.sum()
        mean = (histogram * values).sum() / total
        variance = (histogram * (values - mean) ** 2).sum() / total
        means.append(mean / 255.0)
        stds.append(float(np.sqrt(variance)) / 255.0)
    return tuple(float(m) for m in means), tuple(float(s) for s in stds)


def load_cifar10(
    root: str | Path,
    *,
    num_query: int = 1000,
    num_train: int = 5000,
    database: str = "rest",
    seed: int = 0,
    normalize: bool = True,
) -> RetrievalSplits:
    """Load CIFAR-10 from its python batches and split it for retrieval.

    All batches are pooled in the order ``data_batch_1`` ... ``data_batch_5``, ``test_batch``
    (pool index = position in that order). Queries and training images are then drawn class
    balanced with ``seed`` (``num_query / 10`` and ``num_train / 10`` per class).

    Args:
        root: The ``cifar-10-batches-py`` folder, or the folder that contains it.
        num_query: Query images in total; a multiple of 10.
        num_train: Training images in total; a multiple of 10.
        database: ``"rest"`` - the images that are neither query nor train (54,000 by
            default); ``"all"`` - every image but the queries (59,000), as in DPSH.
        seed: Seed of the split.
        normalize: Standardise each channel with the mean and std of all pooled images;
            otherwise values are in [0, 1].

    Returns:
        :class:`RetrievalSplits` of :class:`IndexedTensorDataset` with float32 images
        (N, 3, 32, 32) and int64 class ids. The full default split holds about 0.8 GB of
        float32 pixels.

    Raises:
        FileNotFoundError: If ``root`` or a batch file is missing.
        ValueError: If a batch is corrupt (cannot be unpickled, missing keys, wrong sizes,
            labels out of range), a count is not a multiple of 10 or too large.

    Examples:
        >>> splits = load_cifar10("~/data/cifar10", database="all")  # doctest: +SKIP
        >>> splits.info()["sizes"]  # doctest: +SKIP
        {'query': 1000, 'train': 5000, 'database': 59000}
    """
    root = as_path(root, "root")
    num_query = check_int(num_query, "num_query", minimum=0)
    num_train = check_int(num_train, "num_train", minimum=0)
    check_choice(database, "database", ("rest", "all"))
    seed = check_int(seed, "seed", minimum=0)
    if not isinstance(normalize, bool):
        raise TypeError(f"normalize must be a bool; got {type(normalize).__name__}")
    num_classes = len(CIFAR10_CLASSES)
    for name, value in (("num_query", num_query), ("num_train", num_train)):
        if value % num_classes:
            raise ValueError(
                f"{name} must be a multiple of {num_classes} to draw it class balanced; got {value}"
            )

    folder = _find_folder(root)
    batches = [_read_batch(folder / name) for name in CIFAR10_BATCHES]
    data = np.concatenate([batch[0] for batch in batches])
    labels = torch.from_numpy(np.concatenate([batch[1] for batch in batches]))

    query_idx, train_idx, rest_idx = split_class_balanced(
        labels,
        (num_query // num_classes, num_train // num_classes),
        seed=seed,
        num_classes=num_classes,
    )
    if database == "all":
        keep = torch.ones(labels.shape[0], dtype=torch.bool)
        keep[query_idx] = False
        database_idx = keep.nonzero().flatten()
    else:
        database_idx = rest_idx

    if normalize:
        mean, std = _channel_stats(data)
    else:
        mean, std = (0.0,) * 3, (1.0,) * 3
    pixels = torch.from_numpy(data).view(-1, 3, 32, 32)
    mean_t = torch.tensor(mean).view(3, 1, 1)
    std_t = torch.tensor(std).view(3, 1, 1)

    def make(indices: torch.Tensor) -> IndexedTensorDataset:
        # Convert per split from uint8, so a float copy of the whole pool never exists.
        images = pixels[indices].float().div_(255.0).sub_(mean_t).div_(std_t)
        return IndexedTensorDataset(images, labels[indices])

    return RetrievalSplits(
        query=make(query_idx),
        train=make(train_idx),
        database=make(database_idx),
        num_classes=num_classes,
        class_names=CIFAR10_CLASSES,
        seed=seed,
        mean=mean,
        std=std,
        name="cifar10",
        details={
            "source": str(folder),
            "database_mode": database,
            "pool_order": list(CIFAR10_BATCHES),
            "normalized": normalize,
        },
    )
