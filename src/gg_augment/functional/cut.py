"""G_cut: attention-guided cutting on a coarse grid, and the retention it leaves.

Pure functions. The random choice of cells lives in ``gg_augment.augment.GCut``'s parameter
sampler; everything here is deterministic given the attention and the cut mask.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "attention_to_grid",
    "candidate_cells",
    "cut_cells",
    "gcut",
    "gcut_retention",
    "upsample_cells",
]


def attention_to_grid(
    attention: Tensor, grid_size: tuple[int, int] | None, *, logits: bool = False
) -> Tensor:
    """Resize a map to the cut grid (nearest) and normalise it to sum 1 per sample.

    Args:
        attention: raw scores. With ``logits=False`` a non-negative map (normalised by its
            sum; an all-zero map becomes uniform, i.e. "no preference"). With ``logits=True``
            any real scores, normalised by a softmax over the cells (the CNN and ViT
            extractors' rule).
        grid_size: (gh, gw); None keeps the map's own grid (a ViT's patch grid).

    Returns:
        A float32 probability map over the grid cells.

    Shape:
        - attention: (B, h, w)
        - output: (B, gh, gw)
    """
    batch = attention.shape[0]
    grid = attention.float()
    if grid_size is None:
        grid_size = (grid.shape[1], grid.shape[2])
    if tuple(grid.shape[1:]) != tuple(grid_size):
        grid = F.interpolate(grid.unsqueeze(1), size=grid_size, mode="nearest").squeeze(1)
    flat = grid.flatten(1)
    if logits:
        flat = torch.softmax(flat, dim=1)
    else:
        total = flat.sum(dim=1, keepdim=True)
        uniform = torch.full_like(flat, 1.0 / flat.shape[1])
        flat = torch.where(total > 0, flat / total.clamp_min(torch.finfo(flat.dtype).tiny), uniform)
    return flat.view(batch, *grid_size)


def candidate_cells(attention: Tensor, select: str = "mean", keep_ratio: float = 0.5) -> Tensor:
    """The salient cells a cut may remove.

    ``"mean"``: cells with A > 1/(gh·gw). ``"topk"``: the floor(keep_ratio·gh·gw) cells (at
    least one) with the highest A, the authors' int(0.5·49) = 24 on a 7×7 ViT grid (ties go to
    the lower cell index, so the choice is deterministic).

    Shape:
        - attention: (B, gh, gw), normalised
        - output: (B, gh, gw) bool
    """
    batch = attention.shape[0]
    flat = attention.flatten(1)
    cells = flat.shape[1]
    if select == "mean":
        candidates = flat > 1.0 / cells
    elif select == "topk":
        k = min(cells, max(1, math.floor(keep_ratio * cells)))
        order = torch.argsort(flat, dim=1, descending=True, stable=True)
        rank = torch.empty_like(order)
        rank.scatter_(1, order, torch.arange(cells, device=flat.device).expand(batch, cells))
        candidates = rank < k
    else:
        raise ValueError(f"select must be one of ['mean', 'topk']; got {select!r}")
    return candidates.view_as(attention)


def _nearest_source_index(in_size: int, out_size: int, device: torch.device) -> Tensor:
    source = torch.arange(in_size, device=device, dtype=torch.float32).view(1, 1, in_size)
    return F.interpolate(source, size=out_size, mode="nearest").view(out_size).long()


def upsample_cells(cells: Tensor, image_size: tuple[int, int]) -> Tensor:
    """Nearest upsampling of a grid mask to pixels, exactly as ``F.interpolate(mode="nearest")``.

    Shape:
        - cells: (B, gh, gw) bool
        - output: (B, 1, H, W) bool
    """
    height, width = image_size
    batch, gh, gw = cells.shape
    # Take the source indices from interpolate itself: its float scale rounding differs from
    # exact integer arithmetic for some sizes, and the cells must cover the same pixels.
    rows = _nearest_source_index(gh, height, cells.device)
    cols = _nearest_source_index(gw, width, cells.device)
    cell_of_pixel = (rows.unsqueeze(1) * gw + cols.unsqueeze(0)).flatten()
    return cells.reshape(batch, gh * gw)[:, cell_of_pixel].view(batch, 1, height, width)


def cut_cells(x: Tensor, cut: Tensor, fill: float | Tensor = 0.0) -> Tensor:
    """Set the pixels of the cut cells to ``fill``. The input is never modified.

    Args:
        x: images.
        cut: which grid cells to cut.
        fill: a float or a per-channel (C,) or per-sample-and-channel (B, C) tensor.

    Shape:
        - x: (B, C, H, W)
        - cut: (B, gh, gw) bool
        - output: (B, C, H, W)

    Examples:
        >>> x = torch.ones(1, 1, 4, 4)
        >>> cut = torch.tensor([[[True, False], [False, False]]])
        >>> cut_cells(x, cut)[0, 0]
        tensor([[0., 0., 1., 1.],
                [0., 0., 1., 1.],
                [1., 1., 1., 1.],
                [1., 1., 1., 1.]])
    """
    batch, channels, height, width = x.shape
    gh, gw = cut.shape[1], cut.shape[2]
    if isinstance(fill, Tensor):
        fill_values = fill.to(device=x.device, dtype=x.dtype)
        if fill_values.ndim == 1:
            fill_values = fill_values.view(1, -1)
    else:
        fill_values = torch.tensor(float(fill), dtype=x.dtype, device=x.device)
    if _cells_tile(gh, height) and _cells_tile(gw, width):
        # Every cell is an sh×sw block: expanding the grid mask is a plain copy of B·H·W
        # bools (no per-pixel index), and block-shaped runs keep where()'s branches predictable.
        sh, sw = height // gh, width // gw
        mask = cut.view(batch, gh, 1, gw, 1).expand(batch, gh, sh, gw, sw).reshape(batch, height, width)
    else:
        mask = upsample_cells(cut, (height, width)).view(batch, height, width)
    if not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        # Compute on (B, H, W, C) pixels so that the result keeps x's layout.
        out = torch.empty_like(x)
        fill_last = fill_values.view(*fill_values.shape[:1], 1, 1, -1) if fill_values.ndim else fill_values
        torch.where(mask.unsqueeze(3), fill_last, x.permute(0, 2, 3, 1), out=out.permute(0, 2, 3, 1))
        return out
    fill_first = fill_values.view(*fill_values.shape[:1], -1, 1, 1) if fill_values.ndim else fill_values
    # where() with a 0-d fill is about twice as fast as masked_fill on a broadcast mask on CPU.
    return torch.where(mask.unsqueeze(1), fill_first, x)


@functools.lru_cache(maxsize=256)
def _cells_tile(cells: int, size: int) -> bool:
    """Whether nearest upsampling of ``cells`` to ``size`` gives equal blocks (i // (size/cells)).

    Checked against ``F.interpolate`` itself on the host: its float scale can differ from
    integer arithmetic, and the cells must cover the same pixels either way.
    """
    if size % cells:
        return False
    nearest = _nearest_source_index(cells, size, torch.device("cpu"))
    return bool(torch.equal(nearest, torch.arange(size) // (size // cells)))


def gcut(
    x: Tensor,
    cut: Tensor,
    attention: Tensor | None = None,
    *,
    candidates: Tensor | None = None,
    fill: float | Tensor = 0.0,
    score: str = "attention",
) -> tuple[Tensor, Tensor]:
    """G_cut given its draw: cut the cells and score what is left.

    Args:
        x: images.
        cut: which grid cells to cut.
        attention: the normalised grid the cut was drawn on (for ``score="attention"``).
        candidates: the candidate cells (for ``score="area"``).
        fill: see :func:`cut_cells`.
        score: see :func:`gcut_retention`.

    Returns:
        ``(x_cut, retention)``, retention in the dtype of ``x``.

    Shape:
        - x: (B, C, H, W); cut, candidates: (B, gh, gw) bool; attention: (B, gh, gw)
        - output: (B, C, H, W) and (B,)
    """
    retention = gcut_retention(cut, attention, candidates=candidates, score=score)
    return cut_cells(x, cut, fill), retention.to(x.dtype)


def gcut_retention(
    cut: Tensor,
    attention: Tensor | None = None,
    *,
    candidates: Tensor | None = None,
    score: str = "attention",
) -> Tensor:
    """Retention after a cut.

    ``"attention"``: r = 1 − Σ A over the cut cells (A normalised over the grid).
    ``"area"``: r = 1 − n/m, with n cut cells out of m candidates; r = 1 when m = 0.

    Shape:
        - cut, candidates: (B, gh, gw) bool; attention: (B, gh, gw)
        - output: (B,) float32, clamped to [0, 1] against rounding
    """
    if score == "attention":
        if attention is None:
            raise ValueError("score='attention' needs the attention map; got attention=None")
        removed = (attention.float() * cut).flatten(1).sum(dim=1)
        return (1.0 - removed).clamp(0.0, 1.0)
    if score == "area":
        if candidates is None:
            raise ValueError("score='area' needs the candidate mask; got candidates=None")
        num_cut = cut.flatten(1).sum(dim=1).float()
        num_candidates = candidates.flatten(1).sum(dim=1).float()
        return torch.where(num_candidates > 0, 1.0 - num_cut / num_candidates.clamp_min(1.0), 1.0)
    raise ValueError(f"score must be one of ['attention', 'area']; got {score!r}")
