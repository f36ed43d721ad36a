"""Attention: extractors (CNN feature maps, ViT CLS·patch), the cache (storage, its recorder
hook, its DDP sync), and the sources G_cut reads."""

from __future__ import annotations

from .cache import AttentionCache
from .extractors import (
    DEFINITIONS,
    AttentionExtractor,
    FeatureMapExtractor,
    ViTTokenExtractor,
    attention_extractor_for,
    resnet_extractor,
    vit_extractor,
)
from .recorder import CacheRecorder, Warmup
from .sources import (
    AttentionDraw,
    AttentionSource,
    CachedAttention,
    CallableAttention,
    ForwardAttention,
    GivenAttention,
    attention_source_for,
)

__all__ = [
    "DEFINITIONS",
    "AttentionCache",
    "AttentionDraw",
    "AttentionExtractor",
    "AttentionSource",
    "CacheRecorder",
    "CachedAttention",
    "CallableAttention",
    "FeatureMapExtractor",
    "ForwardAttention",
    "GivenAttention",
    "ViTTokenExtractor",
    "Warmup",
    "attention_extractor_for",
    "attention_source_for",
    "resnet_extractor",
    "vit_extractor",
]
