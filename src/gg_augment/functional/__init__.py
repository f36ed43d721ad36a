"""Stateless functions: given the parameters, deterministic."""

from __future__ import annotations

from .cut import attention_to_grid, candidate_cells, cut_cells, gcut, gcut_retention, upsample_cells
from .erase import erase
from .geometry import resized_crop_flip, warp_to_original, warp_to_view
from .translate import gt, gt_retention, translate

__all__ = [
    "attention_to_grid",
    "candidate_cells",
    "cut_cells",
    "erase",
    "gcut",
    "gcut_retention",
    "gt",
    "gt_retention",
    "resized_crop_flip",
    "translate",
    "upsample_cells",
    "warp_to_original",
    "warp_to_view",
]
