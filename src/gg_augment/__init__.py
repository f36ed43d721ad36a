"""gg-augment: Gain from Give Up augmentation for image retrieval."""

from __future__ import annotations

__version__ = "0.1.0"
__all__: list[str] = []
