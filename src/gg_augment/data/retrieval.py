"""Containers shared by every loader: an index-returning dataset and the three retrieval splits."""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import Tensor
from torch.utils.data import Dataset

from .._checks import check_tensor

__all__ = ["IndexedTensorDataset", "RetrievalSplits"]


def canonical_position(index: int, size: int) -> int:
    """The non-negative position of ``dataset[index]``: the key per-sample state is stored under.

    Negative positions are folded, so ``dataset[-1]`` and ``dataset[size - 1]`` report the same
    index to the attention cache.
    """
    position = operator.index(index)
    if position < 0:
        position += size
    if not 0 <= position < size:
        raise IndexError(f"index {index} is out of range for a dataset of size {size}")
    return position


class IndexedTensorDataset(Dataset):
    """In-memory images and labels whose items carry their own dataset index.

    Like :class:`torch.utils.data.TensorDataset`, but ``dataset[i]`` returns
    ``(image, label, i)``. The index survives shuffling and batching, so per-sample state such
    as the G_cut ``AttentionCache`` (keyed by dataset index) can be read and written for the
    samples of each batch.

    Args:
        images: Image tensor (N, C, H, W), usually float32 and normalised.
        labels: Class ids (N,) or multi-hot labels (N, L).

    Shape:
        - images: (N, C, H, W)
        - labels: (N,) or (N, L)
        - item: ``(image (C, H, W), label () or (L,), index int)``

    Examples:
        >>> dataset = IndexedTensorDataset(torch.zeros(4, 3, 8, 8), torch.arange(4))
        >>> image, label, index = dataset[2]
        >>> tuple(image.shape), int(label), index
        ((3, 8, 8), 2, 2)
    """

    def __init__(self, images: Tensor, labels: Tensor) -> None:
        images = check_tensor(images, "images")
        labels = check_tensor(labels, "labels")
        if images.ndim != 4:
            raise ValueError(f"images must have shape (N, C, H, W); got {tuple(images.shape)}")
        if labels.ndim not in (1, 2):
            raise ValueError(
                f"labels must have shape (N,) class ids or (N, L) multi-hot; got {tuple(labels.shape)}"
            )
        if labels.shape[0] != images.shape[0]:
            raise ValueError(
                f"labels must have one entry per image: expected {images.shape[0]}; "
                f"got {labels.shape[0]}"
            )
        self.images = images
        self.labels = labels

    @property
    def tensors(self) -> tuple[Tensor, Tensor]:
        """``(images, labels)``, as on :class:`~torch.utils.data.TensorDataset`."""
        return self.images, self.labels

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor, int]:
        position = canonical_position(index, len(self))
        return self.images[position], self.labels[position], position

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(images={tuple(self.images.shape)} {self.images.dtype}, "
            f"labels={tuple(self.labels.shape)} {self.labels.dtype})"
        )


class SizedDataset(Protocol):
    """A map-style dataset with a length (``TensorDataset`` and the image-list datasets)."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Any: ...


@dataclass(eq=False)
class RetrievalSplits:
    """Query, training and database sets of one retrieval benchmark, with their provenance.

    Attributes:
        query: Query set; its items are ``(image, label, index)``.
        train: Training set; ``index`` keys per-sample state such as the attention cache.
        database: Retrieval database searched for every query.
        num_classes: Number of classes (class ids) or label columns (multi-hot).
        class_names: One name per class or label column.
        seed: Seed of the split, or ``None`` when list files fixed the split.
        mean: Per-channel mean subtracted from the images (zeros when not normalised).
        std: Per-channel std the images were divided by (ones when not normalised).
        name: Short dataset name written into :meth:`info`.
        details: Extra JSON-serialisable provenance (source files, options).

    Examples:
        >>> from gg_augment.data import load_embedded
        >>> splits = load_embedded()
        >>> splits.info()["sizes"]["query"]
        1000
    """

    query: SizedDataset
    train: SizedDataset
    database: SizedDataset
    num_classes: int
    class_names: tuple[str, ...]
    seed: int | None
    mean: tuple[float, ...]
    std: tuple[float, ...]
    name: str = "dataset"
    details: dict[str, Any] = field(default_factory=dict)

    def info(self) -> dict[str, Any]:
        """A JSON-serialisable record of the split: write it next to every result.

        Returns:
            ``{"dataset", "seed", "sizes": {"query", "train", "database"}, "num_classes",
            "mean", "std", **details}``.
        """
        return {
            "dataset": self.name,
            "seed": self.seed,
            "sizes": {
                "query": len(self.query),
                "train": len(self.train),
                "database": len(self.database),
            },
            "num_classes": self.num_classes,
            "mean": [float(m) for m in self.mean],
            "std": [float(s) for s in self.std],
            **self.details,
        }

    def unnormalize(self, images: Tensor) -> Tensor:
        """Undo the normalisation, e.g. before plotting: ``images * std + mean``.

        Args:
            images: Normalised images (C, H, W) or (B, C, H, W) with ``len(mean)`` channels.

        Returns:
            Images in the loader's [0, 1] range, on the device and dtype of ``images``.
        """
        images = check_tensor(images, "images")
        channels = len(self.mean)
        if images.ndim not in (3, 4) or images.shape[-3] != channels:
            raise ValueError(
                f"images must have shape (C, H, W) or (B, C, H, W) with C = {channels}; "
                f"got {tuple(images.shape)}"
            )
        shape = (channels, 1, 1)
        mean = torch.tensor(self.mean, dtype=images.dtype, device=images.device).view(shape)
        std = torch.tensor(self.std, dtype=images.dtype, device=images.device).view(shape)
        return images * std + mean
