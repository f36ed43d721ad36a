"""G_t: per-sample integer translation, and the share of the image it keeps.

Pure functions: given the offsets and fill, the result is deterministic.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["gt", "gt_retention", "translate"]


def _source_index(length: int, shift: Tensor, reflect: bool) -> tuple[Tensor, Tensor]:
    """Per-sample source coordinate of each output coordinate along one axis.

    Args:
        length: the axis length (H or W).
        shift: (B,) integer offsets; output[i] = input[i - shift].
        reflect: mirror out-of-range sources back into the image instead of flagging them.

    Returns:
        (B, length) int64 source indices (clamped in range), and (B, length) bool validity.
    """
    positions = torch.arange(length, device=shift.device)
    source = positions.unsqueeze(0) - shift.unsqueeze(1)
    inside = (source >= 0) & (source < length)
    if reflect and length > 1:
        # Mirror with period 2(length - 1) ("reflect" padding without repeating the edge),
        # which stays valid for any |shift|, not just |shift| < length.
        period = 2 * (length - 1)
        folded = torch.remainder(source, period)
        source = torch.where(folded >= length, period - folded, folded)
    else:
        source = source.clamp(0, length - 1)
    return source, inside


def _pixel_layout(x: Tensor) -> tuple[Tensor, bool] | None:
    """``x`` as contiguous (planes, H, W, K) pixels, and whether it is channels_last.

    Contiguous NCHW is (B·C, H, W, 1); channels_last is (B, H, W, C). Other layouts: None.
    """
    if x.is_contiguous():
        batch, channels, height, width = x.shape
        return x.view(batch * channels, height, width, 1), False
    if x.is_contiguous(memory_format=torch.channels_last):
        return x.permute(0, 2, 3, 1), True
    return None


def _fill_values(fill: Tensor | float | None, x: Tensor) -> Tensor:
    """The fill as (B, C) in the dtype of ``x``, cast exactly as ``torch.where`` would."""
    batch, channels = x.shape[0], x.shape[1]
    if not isinstance(fill, Tensor):
        fill = torch.tensor(0.0 if fill is None else float(fill), device=x.device)
    fill = fill.to(device=x.device, dtype=x.dtype)
    if fill.ndim == 1:
        fill = fill.view(1, channels)
    return fill.expand(batch, channels) if fill.ndim < 2 or fill.shape[0] != batch else fill.view(batch, channels)


def _translate_filled(x: Tensor, shift: Tensor, fill: Tensor | float | None, layout: tuple[Tensor, bool]) -> Tensor:
    """The fill-mode shift as one copy of whole planes plus one in-place ``where``.

    Inside a plane of H·W pixels (rows of W), moving by (dy, dx) moves the flat pixel
    sequence by s = dy·W + dx: every visible output pixel is the source element s places
    back. So a shifted plane is one contiguous window of the batch's own storage, and the
    whole batch one ``index_select`` of whole-plane windows from an overlapping ``unfold``
    view (a copy per plane, at memcpy speed). The pixels whose source is outside the image
    read a neighbouring row or plane there; one ``where`` over a row-and-column-structured
    mask (cheap to predict, unlike a gather) puts the fill on them. Only the first and last
    samples can reach past the storage; they are redone with the gather. Bit-identical to
    the gather version, which stays the path for reflect, autograd and other layouts.
    """
    pixels, channels_last = layout
    batch, channels, height, width = x.shape
    planes, _, _, inner = pixels.shape
    plane_size = height * width * inner
    per_plane = 1 if channels_last else channels
    offset = ((shift[:, 0] * width + shift[:, 1]) * inner).repeat_interleave(per_plane)
    start = torch.arange(planes, device=x.device) * plane_size - offset
    flat = pixels.reshape(-1)
    start = start.clamp(0, flat.numel() - plane_size)
    shifted = flat.unfold(0, plane_size, 1).index_select(0, start).view(planes, height, width, inner)
    rows_inside = _source_index(height, shift[:, 0], False)[1]
    cols_inside = _source_index(width, shift[:, 1], False)[1]
    fill_values = _fill_values(fill, x)
    if channels_last:
        out = shifted.view(batch, height, width, channels)
        inside = (rows_inside.view(batch, height, 1, 1) & cols_inside.view(batch, 1, width, 1))
        torch.where(inside, out, fill_values.view(batch, 1, 1, channels), out=out)
        out = out.permute(0, 3, 1, 2)
    else:
        out = shifted.view(batch, channels, height, width)
        inside = (rows_inside.view(batch, 1, height, 1) & cols_inside.view(batch, 1, 1, width))
        torch.where(inside, out, fill_values.view(batch, channels, 1, 1), out=out)
    # The windows of the first and last samples may have been clamped: redo them exactly.
    ends = [0, batch - 1] if batch > 1 else [0]
    out[ends] = _translate_gathered(x[ends], shift[ends], fill_values[ends], reflect=False)
    return out


def _translate_gathered(x: Tensor, shift: Tensor, fill: Tensor | float | None, *, reflect: bool) -> Tensor:
    """The general path: a row ``index_select``, a column ``gather`` and a fill ``where``."""
    batch, channels, height, width = x.shape
    rows, rows_inside = _source_index(height, shift[:, 0], reflect)
    cols, cols_inside = _source_index(width, shift[:, 1], reflect)
    planes = batch * channels
    # Row shifts move whole image rows: a row-level index_select (memcpy speed) from the
    # input itself. Only the column shift needs an element gather. Two fresh buffers in all:
    # on CPU, first-touch page faults of new buffers cost more than the arithmetic here.
    plane_base = torch.arange(planes, device=x.device).view(batch, channels, 1) * height
    row_index = (plane_base + rows.view(batch, 1, height)).reshape(-1)
    shifted_rows = x.reshape(planes * height, width).index_select(0, row_index)
    out = shifted_rows.view(batch, channels, height, width).gather(
        3, cols.view(batch, 1, 1, width).expand(batch, channels, height, width)
    )
    if reflect:
        return out
    inside = (rows_inside.unsqueeze(2) & cols_inside.unsqueeze(1)).unsqueeze(1)
    if not isinstance(fill, Tensor):
        fill = torch.tensor(0.0 if fill is None else float(fill), device=x.device)
    fill = fill.to(device=x.device, dtype=x.dtype)
    if fill.ndim == 2:
        fill = fill.view(batch, channels, 1, 1)
    elif fill.ndim == 1:
        fill = fill.view(1, channels, 1, 1)
    if out.requires_grad:  # out= does not record autograd history
        return torch.where(inside, out, fill)
    # In place into the gather's fresh buffer: no third buffer.
    return torch.where(inside, out, fill, out=out)




def translate(
    x: Tensor,
    shift: Tensor,
    fill: Tensor | float | None = 0.0,
    *,
    reflect: bool = False,
) -> Tensor:
    """Shift each sample by its own integer (dy, dx) in a single indexing operation.

    A pixel whose source lies outside the image takes ``fill`` (or the mirrored pixel when
    ``reflect``). The input is never modified.

    Args:
        x: images.
        shift: integer offsets (dy, dx); positive dy moves content down, positive dx right.
        fill: a float, or per-sample-and-channel constants. Ignored when ``reflect``.
        reflect: mirror the image at its borders instead of filling.

    Returns:
        The translated batch, same dtype and device as ``x``.

    Shape:
        - x: (B, C, H, W)
        - shift: (B, 2)
        - fill: scalar, (B, C) or (C,)
        - output: (B, C, H, W)

    Examples:
        >>> x = torch.arange(9.).view(1, 1, 3, 3)
        >>> translate(x, torch.tensor([[1, 0]]), fill=-1.0)[0, 0]
        tensor([[-1., -1., -1.],
                [ 0.,  1.,  2.],
                [ 3.,  4.,  5.]])
    """
    shift = shift.to(device=x.device, dtype=torch.long)
    if not reflect and not (x.requires_grad and torch.is_grad_enabled()) and x.numel():
        layout = _pixel_layout(x)
        if layout is not None:
            return _translate_filled(x, shift, fill, layout)
    out = _translate_gathered(x, shift, fill, reflect=reflect)
    if not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return out.contiguous(memory_format=torch.channels_last)
    return out


def gt_retention(shift: Tensor, image_size: tuple[int, int], mode: str = "foreground") -> Tensor:
    """Semantic retention of a translation: how much of the original stays visible.

    ``"foreground"``: r = (H − |dy|)(W − |dx|) / (H·W).
    ``"iou"``: r = I / (2HW − I) with I = (H − |dy|)(W − |dx|), the IoU of the original and
    the shifted frame.

    Shape:
        - shift: (B, 2)
        - output: (B,) float32
    """
    height, width = image_size
    visible_h = (height - shift[:, 0].abs()).clamp(min=0).float()
    visible_w = (width - shift[:, 1].abs()).clamp(min=0).float()
    intersection = visible_h * visible_w
    area = float(height * width)
    if mode == "foreground":
        return intersection / area
    if mode == "iou":
        return intersection / (2 * area - intersection)
    raise ValueError(f"mode must be one of ['foreground', 'iou']; got {mode!r}")


def gt(
    x: Tensor,
    shift: Tensor,
    fill: Tensor | float | None = 0.0,
    *,
    reflect: bool = False,
    overlap: str = "foreground",
) -> tuple[Tensor, Tensor]:
    """Translate and score: ``(translate(x, ...), gt_retention(...))``.

    Retention counts only the original visible area, also when ``reflect`` fills the rest
    with mirrored content (the mirror adds no new meaning).

    Shape:
        - x: (B, C, H, W); shift: (B, 2)
        - output: (B, C, H, W) and retention (B,) in the dtype of ``x``
    """
    retention = gt_retention(shift, (x.shape[2], x.shape[3]), overlap).to(x.dtype)
    return translate(x, shift, fill, reflect=reflect), retention
