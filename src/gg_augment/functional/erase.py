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
    batch, channels, height, width = x.shape
    boxes = boxes.to(device=x.device, dtype=torch.long)
    rows = torch.arange(height, device=x.device).view(1, height)
    cols = torch.arange(width, device=x.device).view(1, width)
    y0, x0, y1, x1 = boxes.unbind(1)
    # The box is a row band times a column band: two small masks, one (B, H, W) product.
    in_rows = (rows >= y0.view(batch, 1)) & (rows < y1.view(batch, 1))
    in_cols = (cols >= x0.view(batch, 1)) & (cols < x1.view(batch, 1))
    if not isinstance(fill, Tensor):
        fill = torch.tensor(float(fill), dtype=x.dtype, device=x.device)
    fill = fill.to(device=x.device, dtype=x.dtype)
    channels_last = not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)
    if channels_last:  # compute on (B, H, W, C) so the result keeps the layout
        mask = in_rows.view(batch, height, 1, 1) & in_cols.view(batch, 1, width, 1)
        fill_last = fill.permute(0, 2, 3, 1) if fill.ndim == 4 else fill
        out = torch.empty_like(x)  # channels_last, like x
        torch.where(mask, fill_last, x.permute(0, 2, 3, 1), out=out.permute(0, 2, 3, 1))
    else:
        mask = in_rows.view(batch, 1, height, 1) & in_cols.view(batch, 1, 1, width)
        out = torch.where(mask, fill, x)
    erased = ((y1 - y0).clamp(min=0) * (x1 - x0).clamp(min=0)).view(batch).float()
    retention = (1.0 - erased / (height * width)).to(x.dtype)
    return out, retention
