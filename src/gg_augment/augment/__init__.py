"""Augmentation modules returning ``(x_aug, retention)``."""

from __future__ import annotations

from ._base import RetentionAugmentation
from .crop import RandomResizedCropFlip, ResizedCropFlipOutput
from .erasing import RandomErasingRetention
from .gcut import GCut
from .gt import GT

__all__ = [
    "GCut",
    "GT",
    "RandomErasingRetention",
    "RandomResizedCropFlip",
    "ResizedCropFlipOutput",
    "RetentionAugmentation",
]
