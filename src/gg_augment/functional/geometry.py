"""Per-sample crop + horizontal flip, and the map warps that keep cached attention aligned.

Pure functions, batched: every sample has its own view box and flip, and the whole batch is
one ``F.affine_grid`` + ``F.grid_sample``.

**View geometry convention.** A view is described by

- ``view_boxes`` (B, 4): the crop (y0, x0, y1, x1) in normalised coordinates of the
  *original* image, 0 ≤ y0 < y1 ≤ 1 and 0 ≤ x0 < x1 ≤ 1, measured on the pixel *edges*
  (the box (0, 0, 1, 1) is the whole image, as with ``align_corners=False``);
- ``flips`` (B,) bool: the crop was mirrored left–right *after* cropping.

A point at normalised position (v, u) ∈ [0, 1]² of the view comes from the original point
y = y0 + v·(y1 − y0), x = x0 + u'·(x1 − x0), with u' = 1 − u when flipped and u' = u
otherwise. ``None`` for the boxes means the whole image; ``None`` for the flips means no flip.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["resized_crop_flip", "warp_to_original", "warp_to_view"]


def _boxes_and_signs(
    view_boxes: Tensor | None, flips: Tensor | None, batch: int, device: torch.device
) -> tuple[Tensor, Tensor]:
    if view_boxes is None:
        view_boxes = torch.tensor([0.0, 0.0, 1.0, 1.0], device=device).expand(batch, 4)
    boxes = view_boxes.to(device=device, dtype=torch.float32)
    if flips is None:
        sign = torch.ones(batch, device=device)
    else:
        sign = 1.0 - 2.0 * flips.to(device=device, dtype=torch.float32)
    return boxes, sign


def _view_to_original_theta(
    view_boxes: Tensor | None, flips: Tensor | None, batch: int, device: torch.device
) -> Tensor:
    """Affine matrices taking view coordinates to original-image coordinates.

    Both in ``affine_grid``'s normalised [−1, 1] frame (``align_corners=False``): the output
    of ``F.affine_grid(theta, (B, C, h, w))`` samples the original image at each view pixel.

    Shape:
        - view_boxes: (B, 4); flips: (B,) bool
        - output: (B, 2, 3) float32
    """
    boxes, sign = _boxes_and_signs(view_boxes, flips, batch, device)
    y0, x0, y1, x1 = boxes.unbind(1)
    theta = boxes.new_zeros(batch, 2, 3)
    # Row 0 gives the original x from the view (x, y, 1), row 1 the original y.
    theta[:, 0, 0] = sign * (x1 - x0)
    theta[:, 0, 2] = x0 + x1 - 1.0
    theta[:, 1, 1] = y1 - y0
    theta[:, 1, 2] = y0 + y1 - 1.0
    return theta


def _original_to_view_theta(
    view_boxes: Tensor | None, flips: Tensor | None, batch: int, device: torch.device
) -> Tensor:
    """The inverse of :func:`_view_to_original_theta`: original coordinates to view coordinates.

    Shape:
        - view_boxes: (B, 4); flips: (B,) bool
        - output: (B, 2, 3) float32
    """
    forward = _view_to_original_theta(view_boxes, flips, batch, device)
    scale_x, shift_x = forward[:, 0, 0], forward[:, 0, 2]
    scale_y, shift_y = forward[:, 1, 1], forward[:, 1, 2]
    theta = torch.zeros_like(forward)
    theta[:, 0, 0] = 1.0 / scale_x
    theta[:, 0, 2] = -shift_x / scale_x
    theta[:, 1, 1] = 1.0 / scale_y
    theta[:, 1, 2] = -shift_y / scale_y
    return theta


def _axis_aligned_grid(theta: Tensor, out_size: tuple[int, int]) -> Tensor:
    """``F.affine_grid(theta, ..., align_corners=False)`` for theta without rotation or shear.

    Built by broadcasting instead of a batched matmul: for the small grids of attention maps
    the bmm inside affine_grid costs more than everything else in the warp.
    """
    height, width = out_size
    device = theta.device
    xs = (torch.arange(width, device=device, dtype=theta.dtype) * 2 + 1) / width - 1
    ys = (torch.arange(height, device=device, dtype=theta.dtype) * 2 + 1) / height - 1
    grid_x = theta[:, 0, 0].view(-1, 1, 1) * xs.view(1, 1, width) + theta[:, 0, 2].view(-1, 1, 1)
    grid_y = theta[:, 1, 1].view(-1, 1, 1) * ys.view(1, height, 1) + theta[:, 1, 2].view(-1, 1, 1)
    batch = theta.shape[0]
    return torch.stack([grid_x.expand(batch, height, width), grid_y.expand(batch, height, width)], dim=-1)


def _sample(
    maps: Tensor, theta: Tensor, out_size: tuple[int, int], mode: str, use_affine_grid: bool = True
) -> tuple[Tensor, Tensor]:
    """grid_sample of a (B, C, h, w) batch on the grid of ``theta``; also returns that grid."""
    batch, channels = maps.shape[0], maps.shape[1]
    if batch == 0:  # affine_grid refuses an empty batch
        empty = maps.new_zeros(0, channels, *out_size)
        return empty, maps.new_zeros(0, *out_size, 2, dtype=torch.float32)
    if use_affine_grid:
        grid = F.affine_grid(theta, [batch, channels, *out_size], align_corners=False)
    else:
        grid = _axis_aligned_grid(theta, out_size)
    compute_dtype = maps.dtype if maps.is_floating_point() else torch.float32
    sampled = F.grid_sample(
        maps.to(compute_dtype),
        grid.to(compute_dtype),
        mode=mode,
        padding_mode="border",
        align_corners=False,
    )
    return sampled, grid


def resized_crop_flip(
    x: Tensor,
    view_boxes: Tensor,
    flips: Tensor | None = None,
    size: int | tuple[int, int] | None = None,
    mode: str = "bilinear",
) -> Tensor:
    """Crop each sample to its own box, resize it to ``size`` and mirror it where flipped.

    One ``affine_grid`` + ``grid_sample`` (``align_corners=False``, border padding, so a box
    touching the image edge never blends in zeros) for the whole batch. Shrinking uses plain
    bilinear sampling without antialiasing, as GPU augmentation libraries do; the box
    (0, 0, 1, 1) without flip at the input size returns the input up to float rounding.

    Args:
        x: images; never modified.
        view_boxes: normalised (y0, x0, y1, x1) per sample (see the module docstring).
        flips: mirror left–right after cropping; None means no flips.
        size: output (h, w), or one int for a square; None keeps the input size.
        mode: ``"bilinear"`` or ``"nearest"``.

    Shape:
        - x: (B, C, H, W); view_boxes: (B, 4); flips: (B,) bool
        - output: (B, C, h, w), dtype of x

    Examples:
        >>> x = torch.arange(16.).view(1, 1, 4, 4)
        >>> resized_crop_flip(x, torch.tensor([[0.0, 0.0, 0.5, 0.5]]), size=2)[0, 0]
        tensor([[0., 1.],
                [4., 5.]])
    """
    if size is None:
        out_size = (x.shape[2], x.shape[3])
    elif isinstance(size, int):
        out_size = (size, size)
    else:
        out_size = (int(size[0]), int(size[1]))
    theta = _view_to_original_theta(view_boxes, flips, x.shape[0], x.device)
    sampled, _ = _sample(x, theta, out_size, mode)
    if not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return sampled.to(x.dtype).contiguous(memory_format=torch.channels_last)
    return sampled.to(x.dtype)


def _as_channels(maps: Tensor) -> tuple[Tensor, bool]:
    if maps.ndim == 3:
        return maps.unsqueeze(1), True
    if maps.ndim == 4:
        return maps, False
    raise ValueError(f"maps must have shape (B, h, w) or (B, C, h, w); got {tuple(maps.shape)}")


def warp_to_view(
    maps: Tensor,
    view_boxes: Tensor | None = None,
    flips: Tensor | None = None,
    out_size: tuple[int, int] | None = None,
    mode: str = "bilinear",
) -> Tensor:
    """Resample maps stored in original-image coordinates into each sample's view.

    Cell centres of the output grid are mapped into the original image and sampled there
    (bilinear by default, border padding): the map a model would produce on the view, if the
    map is a smooth function of position.

    Shape:
        - maps: (B, h, w) or (B, C, h, w) in original coordinates
        - output: (B, oh, ow) or (B, C, oh, ow) in view coordinates, float
    """
    maps4, squeeze = _as_channels(maps)
    size = (out_size[0], out_size[1]) if out_size is not None else (maps4.shape[2], maps4.shape[3])
    theta = _view_to_original_theta(view_boxes, flips, maps4.shape[0], maps4.device)
    sampled, _ = _sample(maps4.float(), theta, size, mode, use_affine_grid=False)
    return sampled.squeeze(1) if squeeze else sampled


def warp_to_original(
    maps: Tensor,
    view_boxes: Tensor | None = None,
    flips: Tensor | None = None,
    out_size: tuple[int, int] | None = None,
    mode: str = "bilinear",
) -> tuple[Tensor, Tensor]:
    """Resample maps given in view coordinates back into original-image coordinates.

    Each cell centre of the original grid is mapped into the view and sampled there. Cells
    whose centre falls outside the view were not seen; they come back with ``valid=False``
    (and a border-clamped value that callers should ignore).

    Returns:
        ``(maps_in_original_coordinates, valid)``.

    Shape:
        - maps: (B, h, w) or (B, C, h, w) in view coordinates
        - output: (B, oh, ow) or (B, C, oh, ow) float, and valid (B, oh, ow) bool
    """
    maps4, squeeze = _as_channels(maps)
    size = (out_size[0], out_size[1]) if out_size is not None else (maps4.shape[2], maps4.shape[3])
    theta = _original_to_view_theta(view_boxes, flips, maps4.shape[0], maps4.device)
    sampled, grid = _sample(maps4.float(), theta, size, mode, use_affine_grid=False)
    # A small slack keeps cells whose centre lies on the view's edge (rounding of the grid).
    valid = (grid.abs() <= 1.0 + 1e-5).all(dim=-1)
    return (sampled.squeeze(1) if squeeze else sampled), valid
