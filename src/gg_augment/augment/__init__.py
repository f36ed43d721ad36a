"""Augmentation modules returning ``(x_aug, retention)``."""

from __future__ import annotations

from ._base import RetentionAugmentation
from .crop import RandomResizedCropFlip, ResizedCropFlipOutput
from .erasing import RandomErasingRetention
from .gcut import GCut
from .gt import GT
from .image_only import ImageOnly
from .per_sample import PerSample

__all__ = [
    "GCut",
    "GT",
    "ImageOnly",
    "PerSample",
    "RandomErasingRetention",
    "RandomResizedCropFlip",
    "ResizedCropFlipOutput",
    "RetentionAugmentation",
]
