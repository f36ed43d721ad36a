"""Per-sample reference implementations: what a batched GG replaces.

They do the same work as the library, one sample at a time, the way augmentation usually
runs inside a ``Dataset.__getitem__``. Used only as the baseline of the speed benchmarks.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def gcut_per_sample(
    x: Tensor,
    attention: Tensor,
    grid_size: tuple[int, int],
    sigma: float = 0.5,
    limit: float = 0.5,
    fill: float = 0.0,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """GCut ("mean" candidates, attention score), one sample per Python iteration."""
    outputs, retentions = [], []
    cells = grid_size[0] * grid_size[1]
    for image, raw in zip(x, attention):
        grid = F.interpolate(raw[None, None].float(), size=grid_size, mode="nearest")[0, 0]
        grid = grid / grid.sum()
        flat = grid.flatten()
        candidates = torch.nonzero(flat > 1.0 / cells).flatten()
        m = candidates.numel()
        max_cut = math.floor(limit * m)
        n = 0
        if m:
            while True:  # the textbook way: redraw until the count fits
                z = abs(torch.randn((), generator=generator).item())
                n = math.floor(z * sigma * m)
                if n <= max_cut:
                    break
        chosen = candidates[torch.randperm(m, generator=generator)[:n]]
        mask = torch.zeros(cells, dtype=torch.bool)
        mask[chosen] = True
        pixel_mask = F.interpolate(mask.view(1, 1, *grid_size).float(), size=image.shape[1:], mode="nearest")[0] > 0.5
        outputs.append(image.masked_fill(pixel_mask, fill))
        retentions.append(1.0 - float(flat[mask].sum()))
    return torch.stack(outputs), torch.tensor(retentions)


def gt_canvas_crop_per_sample(
    x: Tensor, sigma: float = 0.3, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """G_t as the original code and Soft Augmentation do it: paste onto a padded canvas, crop."""
    outputs, retentions = [], []
    _, channels, height, width = x.shape
    for image in x:
        while True:
            dy = round(torch.randn((), generator=generator).item() * sigma * height)
            dx = round(torch.randn((), generator=generator).item() * sigma * width)
            if abs(dy) <= height and abs(dx) <= width:
                break
        fill = torch.randn(channels, 1, 1, generator=generator)
        canvas = fill.expand(channels, 3 * height, 3 * width).clone()
        canvas[:, height : 2 * height, width : 2 * width] = image
        top, left = height - dy, width - dx
        outputs.append(canvas[:, top : top + height, left : left + width])
        retentions.append((height - abs(dy)) * (width - abs(dx)) / (height * width))
    return torch.stack(outputs), torch.tensor(retentions)
