"""The pieces a run is built from: data, model, augmentation pipeline, encoding, distribution."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Sampler, Subset

from ..attention import AttentionCache
from ..augment import GT, GCut, RandomErasingRetention, RandomResizedCropFlip, RetentionAugmentation
from ..models import RetrievalNet, build_backbone
from ..pipeline import RetentionPipeline
from ..retention import SemanticRetention
from .config import TrainConfig

__all__ = [
    "Distributed",
    "EpochBatchSampler",
    "MappedDataset",
    "encode_dataset",
    "make_loader",
    "all_gather_cat",
    "build_model",
    "build_pipeline",
    "encode",
    "load_data",
    "load_splits",
    "one_hot_labels",
    "setup_distributed",
]


# -- distributed ------------------------------------------------------------------------------


@dataclass
class Distributed:
    rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: torch.device) -> Distributed:
    """torchrun sets WORLD_SIZE/RANK: gloo on CPU, nccl on GPU."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Distributed()
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda" and device.index is None:
        # One GPU per process: "cuda" then means this rank's GPU (torchrun's LOCAL_RANK), for
        # the model, the generators and every tensor the run creates.
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return Distributed(rank=dist.get_rank(), world_size=dist.get_world_size())


def all_gather_cat(tensor: Tensor, ctx: Distributed) -> Tensor:
    """Concatenate equally-shaped tensors of all ranks (rank order)."""
    if not ctx.enabled:
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(ctx.world_size)]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts)


# -- data -------------------------------------------------------------------------------------


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


def _take(dataset: Any, limit: int) -> tuple[Tensor, Tensor]:
    if hasattr(dataset, "tensors"):
        images, labels = dataset.tensors
    else:
        # Image-list datasets load lazily: stack them once (the examples keep data in memory).
        items = [dataset[i] for i in range(len(dataset))]
        images = torch.stack([item[0] for item in items])
        labels = torch.stack([torch.as_tensor(item[1]) for item in items])
    if limit:
        images, labels = images[:limit], labels[:limit]
    return images, labels


def resize_centre_crop(images: Tensor, size: int) -> Tensor:
    """The authors' base transform: resize to size·256/224, then the centre size×size crop."""
    resized = round(size * 256 / 224)
    if images.shape[-2:] != (resized, resized):
        images = F.interpolate(images, size=(resized, resized), mode="bilinear", align_corners=False, antialias=True)
    top = (resized - size) // 2
    return images[..., top : top + size, top : top + size].contiguous()


class _CentreCrop:
    """Picklable per-sample :func:`resize_centre_crop` for DataLoader workers."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __call__(self, image: Tensor) -> Tensor:
        return resize_centre_crop(image[None], self.size)[0]


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


class EpochBatchSampler(Sampler[list[int]]):
    """Batches of positions for one rank: a permutation seeded by (seed, epoch), cut into
    equal per-rank shards (DDP needs equal step counts), batches of at least 2 samples.

    The order depends on the epoch alone, so a run resumed at an epoch boundary sees exactly
    the batches an uninterrupted one would; call :meth:`set_epoch` before each epoch.
    """

    def __init__(self, size: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1) -> None:
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.rank, self.world_size = rank, world_size
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Draw this epoch's batches once; ``len`` and iteration both read them."""
        self.epoch = epoch
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        order = torch.randperm(self.size, generator=generator)
        usable = self.size - self.size % self.world_size
        shard = order[:usable][self.rank :: self.world_size]
        batches = [shard[i : i + self.batch_size] for i in range(0, len(shard), self.batch_size)]
        self.batches = [b.tolist() for b in batches if b.numel() >= 2]

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def make_loader(dataset: Any, config: TrainConfig, *, batch_sampler: Sampler[list[int]] | None = None) -> DataLoader:
    """A DataLoader with the run's workers: per-sample decoding and resizing happen there."""
    workers = config.workers
    common: dict[str, Any] = {
        "num_workers": workers,
        "pin_memory": torch.device(config.device).type == "cuda",
        "persistent_workers": workers > 0,
    }
    if batch_sampler is not None:
        return DataLoader(dataset, batch_sampler=batch_sampler, **common)
    return DataLoader(dataset, batch_size=512, shuffle=False, **common)


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


def load_data(config: TrainConfig) -> dict[str, Any]:
    """The three splits and the split record.

    In memory (embedded data and CIFAR-10 by default): ``<split>_images`` tensors. Streaming
    (image lists by default, or ``stream=True``): ``<split>_dataset`` lazy datasets whose items
    are decoded in DataLoader workers; memory is then bounded by the batch, not the dataset.
    Labels are tensors either way (``<split>_labels``), read without decoding images.
    """
    splits = load_splits(config)
    if config.streaming:
        data: dict[str, Any] = {"stream": True, "num_classes": splits.num_classes}
        transform = config.settings().base_transform == "flip"
        for name, dataset, limit in (
            ("train", splits.train, config.limit_train),
            ("query", splits.query, config.limit_query),
            ("database", splits.database, config.limit_database),
        ):
            lazy, labels = _limited(dataset, limit)
            if transform:
                lazy = MappedDataset(lazy, _CentreCrop(config.image_size))
            data[f"{name}_dataset"], data[f"{name}_labels"] = lazy, labels
        used = {name: len(data[f"{name}_labels"]) for name in ("train", "query", "database")}
        data["split_info"] = {**splits.info(), "used": used, "streaming": True}
        return data
    train_images, train_labels = _take(splits.train, config.limit_train)
    query_images, query_labels = _take(splits.query, config.limit_query)
    database_images, database_labels = _take(splits.database, config.limit_database)
    if config.settings().base_transform == "flip":
        train_images, query_images, database_images = (
            resize_centre_crop(images, config.image_size) for images in (train_images, query_images, database_images)
        )
    used = {"train": len(train_labels), "query": len(query_labels), "database": len(database_labels)}
    return {
        "stream": False,
        "train_images": train_images, "train_labels": train_labels,
        "query_images": query_images, "query_labels": query_labels,
        "database_images": database_images, "database_labels": database_labels,
        "num_classes": splits.num_classes,
        "split_info": {**splits.info(), "used": used},
    }


def one_hot_labels(labels: Tensor, num_classes: int) -> Tensor:
    if labels.ndim == 2:
        return (labels != 0).float()
    return F.one_hot(labels.long(), num_classes).float()


# -- model and augmentation -------------------------------------------------------------------


def build_model(config: TrainConfig, code_length: int, in_channels: int) -> RetrievalNet:
    """Backbone + code head. ``head="logits"`` puts the head on the backbone's ImageNet
    classifier (the authors' Linear(1000 → K)); the small CNN has none and keeps features."""
    logits = config.settings().head == "logits" and config.arch != "small"
    backbone, width = build_backbone(config.arch, config.pretrained, config.image_size, in_channels, logits=logits)
    return RetrievalNet(backbone, width, code_length, hashing=config.hashing)


def build_pipeline(
    config: TrainConfig, model: nn.Module, num_train: int, generator: torch.Generator
) -> tuple[RetentionPipeline, AttentionCache | None]:
    """The run's augmentation: crop + flip (every method but ``none``), then the method.

    Returns the pipeline and, for ``gcut-approx``, its attention cache (the trainer saves
    it and syncs it across ranks).
    """
    settings = config.settings()
    method = config.augment
    crop = None
    if method == "standard" or (method != "none" and settings.base_transform == "crop-flip"):
        crop = RandomResizedCropFlip(config.image_size, scale=(settings.crop_scale, 1.0), generator=generator)
    elif method != "none":  # the authors' base transform: flip only (the centre crop is done at load)
        crop = RandomResizedCropFlip(config.image_size, scale=(1.0, 1.0), ratio=(1.0, 1.0), generator=generator)
    # "method": power for softcrop (Soft Augmentation's own curve), identity for the rest.
    curve_name = config.curve if config.curve != "method" else ("power" if method == "softcrop" else "identity")
    if curve_name == "authors":
        curve = SemanticRetention("identity", sigmoid_below_half=True)
    else:
        curve = SemanticRetention(curve_name, p_min=0.0, k=2.0)
    augmentation: RetentionAugmentation | None = None
    cache = None
    if method == "erasing":
        if config.erasing_rule == "authors":
            augmentation = RandomErasingRetention.authors(generator=generator)
        else:
            augmentation = RandomErasingRetention(p=0.5, generator=generator)
    elif method == "softcrop":
        # Soft Augmentation's crop: aggressive translation, weight on the power curve.
        augmentation = GT(sigma=settings.gt_sigma, fill="random", generator=generator)
    elif method == "gt":
        augmentation = GT(sigma=settings.gt_sigma, fill="random", generator=generator)
    elif method == "gcut":
        attention_model = model if config.attention_model == "trained" else frozen_imagenet_model(config, model)
        augmentation = GCut(
            attention_model, layer=config.attention_layer, grid_size=config.cut_grid, score=config.gcut_score,
            limit=config.gcut_limit, generator=generator,
        )
    elif method == "gcut-approx":
        cache_grid = config.cut_grid or config.patch_grid or 8
        cache = AttentionCache(num_train, grid_size=cache_grid, momentum=config.cache_momentum, device=config.device)
        augmentation = GCut(
            model, layer=config.attention_layer, cache=cache, grid_size=config.cut_grid,
            score=config.gcut_score, limit=config.gcut_limit, generator=generator,
        )
    pipeline = RetentionPipeline(augmentation, crop=crop, curve=curve, weight_by_retention=not config.no_retention)
    return pipeline, cache


def frozen_imagenet_model(config: TrainConfig, like: nn.Module) -> RetrievalNet:
    """A frozen copy of the architecture with its ImageNet weights, on ``like``'s device: the
    attention G_cut reads stays that of the pretrained model while the trained one drifts
    (``attention_model="imagenet"``). Same layer names as the trained model."""
    teacher = build_model(replace(config, pretrained=True), 1, 3)
    teacher.requires_grad_(False).eval()
    device = next(like.parameters()).device
    return teacher.to(device)


@torch.no_grad()
def encode_dataset(model: nn.Module, loader: DataLoader, device: torch.device) -> Tensor:
    """Eval-mode outputs for every item of a loader, batch by batch; the mode is restored."""
    was_training = model.training
    model.eval()
    outputs = [model(images.to(device, non_blocking=True)) for images, *_ in loader]
    model.train(was_training)
    return torch.cat(outputs) if outputs else torch.empty(0)


@torch.no_grad()
def encode(model: nn.Module, images: Tensor, device: torch.device, batch_size: int = 512) -> Tensor:
    """Eval-mode outputs for ``images``, in batches; the model's mode is restored."""
    was_training = model.training
    model.eval()
    outputs = [model(images[i : i + batch_size].to(device)) for i in range(0, images.shape[0], batch_size)]
    model.train(was_training)
    return torch.cat(outputs) if outputs else torch.empty(0)
