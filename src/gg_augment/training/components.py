"""The pieces a run is built from: data, model, augmentation pipeline, encoding, distribution."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from ..attention import AttentionCache
from ..augment import GT, GCut, RandomErasingRetention, RandomResizedCropFlip, RetentionAugmentation
from ..models import RetrievalNet, build_backbone
from ..pipeline import RetentionPipeline
from ..retention import SemanticRetention
from .config import TrainConfig

__all__ = [
    "Distributed",
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


def load_data(config: TrainConfig) -> dict[str, Any]:
    """Train, query and database tensors (after the ``limit_*`` cuts) and the split record."""
    splits = load_splits(config)
    train_images, train_labels = _take(splits.train, config.limit_train)
    query_images, query_labels = _take(splits.query, config.limit_query)
    database_images, database_labels = _take(splits.database, config.limit_database)
    if config.settings().base_transform == "flip":
        train_images, query_images, database_images = (
            resize_centre_crop(images, config.image_size) for images in (train_images, query_images, database_images)
        )
    used = {"train": len(train_labels), "query": len(query_labels), "database": len(database_labels)}
    return {
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
    """Backbone + code head. ``head="logits"`` puts the head on a pretrained CNN's ImageNet
    logits (the authors' Linear(1000 → K)); without ImageNet weights it falls back to features."""
    logits = config.settings().head == "logits" and config.pretrained and config.arch != "small"
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
    curve = SemanticRetention()
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
        curve = SemanticRetention("power", p_min=0.0, k=2.0)
    elif method == "gt":
        augmentation = GT(sigma=settings.gt_sigma, fill="random", generator=generator)
    elif method == "gcut":
        augmentation = GCut(
            model, layer=config.attention_layer, grid_size=config.cut_grid, score=config.gcut_score,
            generator=generator,
        )
    elif method == "gcut-approx":
        cache_grid = config.cut_grid or config.patch_grid or 8
        cache = AttentionCache(num_train, grid_size=cache_grid, momentum=config.cache_momentum, device=config.device)
        augmentation = GCut(
            model, layer=config.attention_layer, cache=cache, grid_size=config.cut_grid,
            score=config.gcut_score, generator=generator,
        )
    pipeline = RetentionPipeline(augmentation, crop=crop, curve=curve, weight_by_retention=not config.no_retention)
    return pipeline, cache


@torch.no_grad()
def encode(model: nn.Module, images: Tensor, device: torch.device, batch_size: int = 512) -> Tensor:
    """Eval-mode outputs for ``images``, in batches; the model's mode is restored."""
    was_training = model.training
    model.eval()
    outputs = [model(images[i : i + batch_size].to(device)) for i in range(0, images.shape[0], batch_size)]
    model.train(was_training)
    return torch.cat(outputs) if outputs else torch.empty(0)
