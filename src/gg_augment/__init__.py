"""gg-augment: Gain from Give Up augmentation for image retrieval.

Augmentations return ``(x_aug, retention)``; retention r ∈ [0, 1] is the share of meaning
that survived, and :class:`RetentionWeightedPairwiseLoss` softens similarity targets by it.
"""

from __future__ import annotations

from .attention import (
    AttentionCache,
    AttentionExtractor,
    FeatureMapExtractor,
    ViTTokenExtractor,
    attention_extractor_for,
    resnet_extractor,
    vit_extractor,
)
from .augment import GT, GCut, RandomErasingRetention, RandomResizedCropFlip
from .losses import RetentionWeightedPairwiseLoss
from .models import RetrievalNet, SmallResNet, build_backbone
from .retention import SemanticRetention

__version__ = "0.1.0"

__all__ = [
    "GT",
    "AttentionCache",
    "AttentionExtractor",
    "FeatureMapExtractor",
    "GCut",
    "RandomErasingRetention",
    "RandomResizedCropFlip",
    "RetentionWeightedPairwiseLoss",
    "RetrievalNet",
    "SmallResNet",
    "SemanticRetention",
    "ViTTokenExtractor",
    "attention_extractor_for",
    "build_backbone",
    "resnet_extractor",
    "vit_extractor",
]
