"""gg-augment: Gain from Give Up augmentation for image retrieval.

Retention augmentations return ``(x_aug, retention)``; retention r ∈ [0, 1] is the share of
meaning that survived. :class:`RetentionPipeline` composes crop, augmentation and
:class:`SemanticRetention` into per-sample loss weights, and
:class:`RetentionWeightedPairwiseLoss` softens similarity targets by them.
"""

from __future__ import annotations

from .attention import (
    AttentionCache,
    AttentionExtractor,
    AttentionSource,
    CachedAttention,
    CacheRecorder,
    CallableAttention,
    FeatureMapExtractor,
    ForwardAttention,
    GivenAttention,
    ViTTokenExtractor,
    attention_extractor_for,
    resnet_extractor,
    vit_extractor,
)
from .augment import GT, GCut, ImageOnly, PerSample, RandomErasingRetention, RandomResizedCropFlip
from .losses import RetentionWeightedPairwiseLoss
from .models import RetrievalNet, SmallResNet, build_backbone
from .pipeline import AugmentedBatch, RetentionPipeline
from .retention import SemanticRetention
from .serving import TrainedModel, load_trained_model
from .view import View

__version__ = "0.1.0"

__all__ = [
    "GT",
    "AttentionCache",
    "PerSample",
    "AttentionExtractor",
    "AttentionSource",
    "AugmentedBatch",
    "CacheRecorder",
    "CachedAttention",
    "CallableAttention",
    "FeatureMapExtractor",
    "ForwardAttention",
    "GCut",
    "GivenAttention",
    "ImageOnly",
    "RandomErasingRetention",
    "RandomResizedCropFlip",
    "RetentionPipeline",
    "RetentionWeightedPairwiseLoss",
    "RetrievalNet",
    "SmallResNet",
    "SemanticRetention",
    "TrainedModel",
    "View",
    "ViTTokenExtractor",
    "attention_extractor_for",
    "build_backbone",
    "load_trained_model",
    "resnet_extractor",
    "vit_extractor",
]
