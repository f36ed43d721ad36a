"""Attention extractors (CNN feature maps, ViT CLS·patch) and the attention cache."""

from __future__ import annotations

from .cache import AttentionCache
from .extractors import (
    AttentionExtractor,
    FeatureMapExtractor,
    ViTTokenExtractor,
    attention_extractor_for,
    resnet_extractor,
    vit_extractor,
)

__all__ = [
    "AttentionCache",
    "AttentionExtractor",
    "FeatureMapExtractor",
    "ViTTokenExtractor",
    "attention_extractor_for",
    "resnet_extractor",
    "vit_extractor",
]
