"""A run's data: :class:`RunData` of typed splits, and :class:`EpochBatchSampler`, the one
batch order of both the in-memory and the streaming path.

A split is held in memory (:class:`TensorSplit`: embedded data and CIFAR-10 by default) or
streamed (:class:`StreamSplit`: image lists by default, or ``stream=True``: items decoded in
DataLoader workers, memory bounded by the batch). Both answer the same questions (size,
channels, labels, evaluation batches, training batches), so nothing above this module asks
which one it holds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler, Subset

from ..data.transforms import prepare_images, resize_centre_crop, training_base
from .config import TrainConfig

__all__ = [
    "EpochBatchSampler", "MappedDataset", "RunData", "Split", "StreamSplit", "TensorSplit", "load_data",
    "load_splits", "make_loader", "one_hot_labels", "resize_centre_crop",
]

#: Evaluation batch size (encoding only: no gradients, so larger than training's).
EVAL_BATCH = 512


class EpochBatchSampler(Sampler[list[int]]):
    """Batches of positions for one rank: a permutation cut into equal per-rank shards (DDP
    needs equal step counts), batches of at least 2 samples. Call :meth:`set_epoch` before
    each epoch.

    The permutation comes from ``generator`` when one is given (the in-memory path: the run's
    order generator, on the run's device, whose state the checkpoint keeps), else from
    ``(seed, epoch)`` alone (streaming: a run resumed at an epoch boundary sees the batches an
    uninterrupted one would, whatever the workers did).
    """

    def __init__(
        self, size: int, batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1,
        *, generator: torch.Generator | None = None,
    ) -> None:
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.rank, self.world_size, self.generator = rank, world_size, generator
        self.batches: list[Tensor] = []
        if generator is None:
            self.set_epoch(0)  # drawing from a run's generator waits for the epoch that asks

    def set_epoch(self, epoch: int) -> None:
        """Draw this epoch's batches once; ``len`` and iteration both read them."""
        self.epoch = epoch
        if self.generator is not None:
            order = torch.randperm(self.size, device=self.generator.device, generator=self.generator).cpu()
        else:
            order = torch.randperm(self.size, generator=torch.Generator().manual_seed(self.seed * 1_000_003 + epoch))
        usable = self.size - self.size % self.world_size
        shard = order[:usable][self.rank :: self.world_size]
        batches = [shard[i : i + self.batch_size] for i in range(0, len(shard), self.batch_size)]
        self.batches = [b for b in batches if b.numel() >= 2]

    def __iter__(self) -> Iterator[list[int]]:
        return (b.tolist() for b in self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class Split(Protocol):
    """What the trainer and the evaluation need of a split."""

    labels: Tensor

    def __len__(self) -> int: ...
    @property
    def channels(self) -> int: ...
    def head(self, count: int) -> Split: ...
    def eval_batches(self) -> Iterator[Tensor]: ...
    def batch_sampler(self, batch_size: int, seed: int, rank: int, world_size: int, generator: torch.Generator) -> EpochBatchSampler: ...
    def train_batches(self, sampler: EpochBatchSampler) -> Iterator[tuple[Tensor, Tensor]]: ...


@dataclass
class TensorSplit:
    """A split held in memory: each batch is sliced from the tensor when its step comes."""

    images: Tensor
    labels: Tensor

    def __len__(self) -> int:
        return self.labels.shape[0]

    @property
    def channels(self) -> int:
        return self.images.shape[1]

    def head(self, count: int) -> TensorSplit:
        return TensorSplit(self.images[:count], self.labels[:count])

    def eval_batches(self) -> Iterator[Tensor]:
        return (self.images[i : i + EVAL_BATCH] for i in range(0, self.images.shape[0], EVAL_BATCH))

    def batch_sampler(self, batch_size: int, seed: int, rank: int, world_size: int, generator: torch.Generator) -> EpochBatchSampler:
        """The order from the run's generator (its state is in the checkpoint)."""
        return EpochBatchSampler(len(self), batch_size, seed, rank, world_size, generator=generator)

    def train_batches(self, sampler: EpochBatchSampler) -> Iterator[tuple[Tensor, Tensor]]:
        return ((self.images[index], index) for index in sampler.batches)


@dataclass
class StreamSplit:
    """A lazy split: items are decoded (and resized) in DataLoader workers."""

    dataset: Any
    labels: Tensor
    loader_options: dict[str, Any]
    _train_loader: DataLoader | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return self.labels.shape[0]

    @property
    def channels(self) -> int:
        return int(self.dataset[0][0].shape[0])

    def head(self, count: int) -> StreamSplit:
        return StreamSplit(Subset(self.dataset, range(count)), self.labels[:count], self.loader_options)

    def eval_batches(self) -> Iterator[Tensor]:
        loader = DataLoader(self.dataset, batch_size=EVAL_BATCH, shuffle=False, **self.loader_options)
        return (images for images, *_ in loader)

    def batch_sampler(self, batch_size: int, seed: int, rank: int, world_size: int, generator: torch.Generator) -> EpochBatchSampler:
        """The order from (seed, epoch) alone: independent of what the workers did."""
        return EpochBatchSampler(len(self), batch_size, seed, rank, world_size)

    def train_batches(self, sampler: EpochBatchSampler) -> Iterator[tuple[Tensor, Tensor]]:
        # One loader for the whole run: persistent workers, the sampler re-drawn per epoch.
        if self._train_loader is None or self._train_loader.batch_sampler is not sampler:
            self._train_loader = DataLoader(self.dataset, batch_sampler=sampler, **self.loader_options)
        return ((images, torch.as_tensor(index)) for images, _labels, index in self._train_loader)


@dataclass
class RunData:
    """The three splits of a run, its class count and the split record (for the results)."""

    train: Split
    query: Split
    database: Split
    num_classes: int
    split_info: dict[str, Any]


def load_splits(config: TrainConfig) -> Any:
    """The query / train / database splits the configuration names."""
    from .. import data

    if config.data == "embedded":
        return data.load_embedded(image_size=config.image_size)
    root = config.data_root
    if root is None:
        raise ValueError(f"data_root is needed with data={config.data!r}")
    if config.data == "cifar10":
        return data.load_cifar10(
            root, num_query=config.num_query, num_train=config.num_train, database=config.database, seed=config.seed
        )
    return data.load_imagelist(
        root, root / "train.txt", root / "query.txt", root / "database.txt",
        preset=None if config.imagelist_preset == "auto" else config.imagelist_preset,
        image_size=config.image_size,
    )


def load_data(config: TrainConfig) -> RunData:
    """The three splits, limited as the configuration says, in memory or streamed; labels
    are read without decoding images either way."""
    splits = load_splits(config)
    prepare = _preparations(config)
    limits = {"train": config.limit_train, "query": config.limit_query, "database": config.limit_database}
    made: dict[str, Split] = {}
    for name, limit in limits.items():
        dataset, fn = getattr(splits, name), prepare[name]
        if config.streaming:
            lazy, labels = _limited(dataset, limit)
            if fn is not None:
                lazy = MappedDataset(lazy, fn)
            made[name] = StreamSplit(lazy, labels, _loader_options(config))
        else:
            images, labels = _take(dataset, limit)
            made[name] = TensorSplit(fn(images) if fn is not None else images, labels)
    info = {**splits.info(), "used": {name: len(split) for name, split in made.items()}}
    if config.streaming:
        info["streaming"] = True
    return RunData(made["train"], made["query"], made["database"], splits.num_classes, info)


def _loader_options(config: TrainConfig) -> dict[str, Any]:
    workers = config.workers
    return {"num_workers": workers, "pin_memory": torch.device(config.device).type == "cuda", "persistent_workers": workers > 0}


def make_loader(dataset: Any, config: TrainConfig, *, batch_sampler: Sampler[list[int]] | None = None) -> DataLoader:
    """A DataLoader with the run's workers: per-sample decoding and resizing happen there."""
    if batch_sampler is not None:
        return DataLoader(dataset, batch_sampler=batch_sampler, **_loader_options(config))
    return DataLoader(dataset, batch_size=EVAL_BATCH, shuffle=False, **_loader_options(config))


def _take(dataset: Any, limit: int) -> tuple[Tensor, Tensor]:
    if hasattr(dataset, "tensors"):
        images, labels = dataset.tensors
        return (images[:limit], labels[:limit]) if limit else (images, labels)
    # Image-list datasets load lazily: decode the first ``limit`` items (all for 0) once.
    count = min(limit, len(dataset)) if limit else len(dataset)
    items = [dataset[i] for i in range(count)]
    images = torch.stack([item[0] for item in items])
    labels = torch.stack([torch.as_tensor(item[1]) for item in items])
    return images, labels


def _limited(dataset: Any, limit: int) -> tuple[Any, Tensor]:
    """The first ``limit`` items (all for 0) of a lazy dataset, and their labels, undecoded."""
    if hasattr(dataset, "labels"):
        labels = torch.as_tensor(dataset.labels)
    elif hasattr(dataset, "tensors"):
        labels = dataset.tensors[1]
    else:
        labels = torch.stack([torch.as_tensor(dataset[i][1]) for i in range(len(dataset))])
    if limit and limit < len(dataset):
        return Subset(dataset, range(limit)), labels[:limit]
    return dataset, labels


def _preparations(config: TrainConfig) -> dict[str, Callable[[Tensor], Tensor] | None]:
    """What each split gets when it loads: under the ``flip`` base transform resize + centre
    crop for all; under ``per-method`` the queries and database get it and the training images
    their method's deterministic part (:func:`~gg_augment.data.transforms.training_base`)."""
    settings = config.settings()
    if settings.base_transform == "crop-flip":
        return {"train": None, "query": None, "database": None}
    centre = _Prepare("centre-crop", config.image_size)
    if settings.base_transform == "flip":
        return {"train": centre, "query": centre, "database": centre}
    train = _Prepare(training_base(config.augment, settings.baselines), config.image_size)
    return {"train": train, "query": centre, "database": centre}


class _Prepare:
    """Picklable :func:`~gg_augment.data.transforms.prepare_images` for DataLoader workers."""

    def __init__(self, base: str, size: int) -> None:
        self.base, self.size = base, size

    def __call__(self, images: Tensor) -> Tensor:
        return prepare_images(images, self.base, self.size)


class MappedDataset(Dataset):
    """``dataset`` with ``fn`` applied to each image, in the DataLoader's workers."""

    def __init__(self, dataset: Any, fn: Callable[[Tensor], Tensor]) -> None:
        self.dataset = dataset
        self.fn = fn

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, position: int) -> tuple[Tensor, Tensor, int]:
        image, label, index = self.dataset[position]
        return self.fn(image), label, index


def one_hot_labels(labels: Tensor, num_classes: int) -> Tensor:
    if labels.ndim == 2:
        return (labels != 0).float()
    return F.one_hot(labels.long(), num_classes).float()
