"""The run's parts built from its configuration: model, augmentation pipeline, optimizer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import torch
from torch import nn

from ..attention import AttentionCache
from ..augment import GT, GCut, RandomErasingRetention, RandomResizedCropFlip, RetentionAugmentation
from ..data.transforms import TrainingTransform, paper_training_transform
from ..models import RetrievalNet, build_backbone
from ..pipeline import RetentionPipeline
from ..protocol import authors_head_init, cosine_t_max
from ..retention import SemanticRetention
from .config import TrainConfig

__all__ = ["build_model", "build_optimizer", "build_pipeline", "frozen_imagenet_model", "method_transform"]


def build_model(config: TrainConfig, code_length: int, in_channels: int) -> RetrievalNet:
    """Backbone + code head. ``head="logits"`` puts the head on the backbone's ImageNet
    classifier (the authors' Linear(1000 → K)); the small CNN has none and keeps features."""
    settings = config.settings()
    logits = settings.head == "logits" and config.arch != "small"
    backbone, width = build_backbone(config.arch, config.pretrained, config.image_size, in_channels, logits=logits)
    head_init = authors_head_init(config.arch) if settings.head_init == "authors" else settings.head_init
    return RetrievalNet(backbone, width, code_length, hashing=config.hashing, head_init=head_init)


def build_optimizer(
    config: TrainConfig, model: nn.Module
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """The recipe's optimizer (weight decay 1e-5) and its cosine schedule (T_max: the epochs, or
    the authors' 150)."""
    settings = config.settings()
    optimizer_class = torch.optim.RMSprop if settings.optimizer == "rmsprop" else torch.optim.Adam
    optimizer = optimizer_class(model.parameters(), lr=settings.lr, weight_decay=1e-5)
    t_max = cosine_t_max(settings.cosine_tmax, config.epochs)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=t_max, eta_min=settings.lr_min)
    return optimizer, scheduler


def method_transform(
    config: TrainConfig, generator: torch.Generator | None = None,
    mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
) -> TrainingTransform:
    """The method's own training transform (``base_transform="per-method"``, and ``other``)."""
    settings = config.settings()
    return paper_training_transform(
        config.augment, config.image_size, baselines=settings.baselines, crop_scale=settings.crop_scale,
        mean=mean, std=std, generator=generator,
    )


def _crop(
    config: TrainConfig, generator: torch.Generator, mean: Sequence[float] | None, std: Sequence[float] | None
) -> RandomResizedCropFlip | TrainingTransform | None:
    """Crop + flip under every method but ``none``; the ``flip`` base transform is a flip only
    (its centre crop is done when the data loads); ``per-method`` is each method's own."""
    settings, method = config.settings(), config.augment
    if method == "other" or settings.base_transform == "per-method":
        return method_transform(config, generator, mean, std)
    if method == "standard" or (method != "none" and settings.base_transform == "crop-flip"):
        return RandomResizedCropFlip(config.image_size, scale=(settings.crop_scale, 1.0), generator=generator)
    if method != "none":
        return RandomResizedCropFlip(config.image_size, scale=(1.0, 1.0), ratio=(1.0, 1.0), generator=generator)
    return None


def _curve(config: TrainConfig) -> SemanticRetention:
    # "method": power for softcrop (Soft Augmentation's own curve), identity for the rest.
    name = config.curve if config.curve != "method" else ("power" if config.augment == "softcrop" else "identity")
    if name == "authors":
        return SemanticRetention("identity", sigmoid_below_half=True)
    return SemanticRetention(name, p_min=0.0, k=2.0)


def build_pipeline(
    config: TrainConfig, model: nn.Module, num_train: int, generator: torch.Generator,
    mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
) -> tuple[RetentionPipeline, AttentionCache | None]:
    """The run's augmentation: crop + flip (every method but ``none``), then the method.

    ``mean``/``std``: what the training images were normalised with (the authors' erasing
    baseline trains on un-normalised pixels; ``other`` rotates in black). Returns the pipeline and, for ``gcut-approx``, its attention cache (the trainer saves
    it and syncs it across ranks).
    """
    method, sigma = config.augment, config.settings().gt_sigma
    augmentation: RetentionAugmentation | None = None
    cache = None
    if method == "erasing":
        authors = config.erasing_rule == "authors"
        augmentation = RandomErasingRetention.authors(generator=generator) if authors else RandomErasingRetention(p=0.5, generator=generator)
    elif method in ("gt", "softcrop"):  # softcrop: Soft Augmentation's crop, G_t on the power curve
        augmentation = GT(sigma=sigma, fill="random", generator=generator)
    elif method == "gcut":
        attention_model = model if config.attention_model == "trained" else frozen_imagenet_model(config, model)
        augmentation = GCut(
            attention_model, layer=config.attention_layer, grid_size=config.cut_grid, score=config.gcut_score,
            limit=config.gcut_limit, generator=generator, count_rule=config.settings().cut_count,
            definition=config.attention_definition, temperature=config.attention_temperature,
        )
    elif method == "gcut-approx":
        cache = AttentionCache(num_train, grid_size=config.attention_grid, momentum=config.cache_momentum, device=config.device)
        augmentation = GCut(
            model, layer=config.attention_layer, cache=cache, grid_size=config.cut_grid,
            score=config.gcut_score, limit=config.gcut_limit, generator=generator, count_rule=config.settings().cut_count,
            definition=config.attention_definition, temperature=config.attention_temperature,
        )
    pipeline = RetentionPipeline(
        augmentation, crop=_crop(config, generator, mean, std), curve=_curve(config), weight_by_retention=not config.no_retention
    )
    return pipeline, cache


def frozen_imagenet_model(config: TrainConfig, like: nn.Module) -> RetrievalNet:
    """A frozen copy of the architecture with its ImageNet weights, on ``like``'s device: the
    attention G_cut reads stays that of the pretrained model while the trained one drifts
    (``attention_model="imagenet"``). Same layer names as the trained model."""
    teacher = build_model(replace(config, pretrained=True), 1, 3)
    teacher.requires_grad_(False).eval()
    device = next(like.parameters()).device
    return teacher.to(device)
