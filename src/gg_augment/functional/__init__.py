"""Stateless functions: given the parameters, deterministic."""

from __future__ import annotations

from .cut import attention_to_grid, candidate_cells, gcut, gcut_retention, upsample_cells
from .erase import erase
from .translate import gt, gt_retention, translate

__all__ = [
    "attention_to_grid",
    "candidate_cells",
    "erase",
    "gcut",
    "gcut_retention",
    "gt",
    "gt_retention",
    "translate",
    "upsample_cells",
]
