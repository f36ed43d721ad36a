"""Retrieval datasets: the embedded Fashion-MNIST subset, CIFAR-10, image lists, and splits.

Every loader returns :class:`RetrievalSplits` (query, train, database) whose items are
``(image, label, index)``; the dataset index keys per-sample state such as the attention
cache. :meth:`RetrievalSplits.info` gives the split seed and sizes to store with every result.
Nothing here touches the network.
"""

from __future__ import annotations

from .cifar import CIFAR10_CLASSES, load_cifar10
from .embedded import EMBEDDED_FILE, embedded_path, load_embedded
from .imagelist import (
    IMAGELIST_PRESETS,
    IMAGENET_MEAN,
    IMAGENET_STD,
    ImageListDataset,
    ImageListPreset,
    load_imagelist,
    read_image_list,
)
from .retrieval import IndexedTensorDataset, RetrievalSplits
from .splits import split_class_balanced

__all__ = [
    "CIFAR10_CLASSES",
    "EMBEDDED_FILE",
    "IMAGELIST_PRESETS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ImageListDataset",
    "ImageListPreset",
    "IndexedTensorDataset",
    "RetrievalSplits",
    "embedded_path",
    "load_cifar10",
    "load_embedded",
    "load_imagelist",
    "read_image_list",
    "split_class_balanced",
]
