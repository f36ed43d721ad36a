"""Retrieval datasets: the embedded Fashion-MNIST subset, CIFAR-10, image lists, and splits.

Every loader returns :class:`RetrievalSplits` (query, train, database) whose items are
``(image, label, index)``; the dataset index keys per-sample state such as the attention
cache. :meth:`RetrievalSplits.info` gives the split seed and sizes to store with every result.
:mod:`.transforms` holds the per-method training transforms of the authors' protocol.
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
from .transforms import (
    BASELINE_TREATMENTS,
    TRAINING_METHODS,
    TrainingTransform,
    paper_training_transform,
    resize_centre_crop,
)

__all__ = [
    "BASELINE_TREATMENTS",
    "CIFAR10_CLASSES",
    "EMBEDDED_FILE",
    "IMAGELIST_PRESETS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ImageListDataset",
    "ImageListPreset",
    "IndexedTensorDataset",
    "RetrievalSplits",
    "TRAINING_METHODS",
    "TrainingTransform",
    "embedded_path",
    "load_cifar10",
    "load_embedded",
    "load_imagelist",
    "paper_training_transform",
    "read_image_list",
    "resize_centre_crop",
    "split_class_balanced",
]
