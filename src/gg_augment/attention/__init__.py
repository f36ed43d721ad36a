"""Attention: extractors (CNN feature maps, ViT CLS·patch), the cache, and the sources G_cut reads."""

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
from .sources import (
    AttentionSource,
    CachedAttention,
    CallableAttention,
    ForwardAttention,
    GivenAttention,
    attention_source_for,
)

__all__ = [
    "AttentionCache",
    "AttentionExtractor",
    "AttentionSource",
    "CachedAttention",
    "CallableAttention",
    "FeatureMapExtractor",
    "ForwardAttention",
    "GivenAttention",
    "ViTTokenExtractor",
    "attention_extractor_for",
    "attention_source_for",
    "resnet_extractor",
    "vit_extractor",
]
