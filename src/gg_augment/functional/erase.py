"""Erase one rectangle per sample, and the share of the image left."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["erase"]


def erase(x: Tensor, boxes: Tensor, fill: Tensor | float = 0.0) -> tuple[Tensor, Tensor]:
    """Set each sample's box to ``fill``; retention is 1 − box area / image area.

    Args:
        x: images; never modified.
        boxes: integer (y0, x0, y1, x1) per sample, half-open; an empty box erases nothing.
        fill: a float or a tensor broadcastable to ``x`` (e.g. per-pixel noise).

    Shape:
        - x: (B, C, H, W); boxes: (B, 4)
        - output: (B, C, H, W) and retention (B,) in the dtype of ``x``
    """
    batch, _, height, width = x.shape
    boxes = boxes.to(device=x.device, dtype=torch.long)
    rows = torch.arange(height, device=x.device).view(1, height, 1)
    cols = torch.arange(width, device=x.device).view(1, 1, width)
    y0, x0, y1, x1 = boxes.view(batch, 4, 1, 1).unbind(1)
    mask = ((rows >= y0) & (rows < y1) & (cols >= x0) & (cols < x1)).unsqueeze(1)
    if not isinstance(fill, Tensor):
        fill = torch.tensor(float(fill), dtype=x.dtype, device=x.device)
    out = torch.where(mask, fill.to(device=x.device, dtype=x.dtype), x)
    erased = ((y1 - y0).clamp(min=0) * (x1 - x0).clamp(min=0)).view(batch).float()
    retention = (1.0 - erased / (height * width)).to(x.dtype)
    return out, retention
