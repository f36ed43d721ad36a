"""``RandomResizedCropFlip``: batched on-device random resized crop + horizontal flip.

It returns the per-sample view boxes and flips with the images, so that geometry-aware
consumers (the attention cache of the approximate G_cut) can map between the view and the
original image at no cost to the user.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, NamedTuple

import torch
from torch import Tensor

from .._checks import (
    check_choice,
    check_flips,
    check_image_batch,
    check_interval,
    check_range,
    check_view_boxes,
    pair,
)
from ..functional._sampling import uniform
from ..functional.geometry import resized_crop_flip
from ..view import View
from ._base import BatchShape, RandomAugmentation, param

__all__ = ["RandomResizedCropFlip", "ResizedCropFlipOutput"]


class ResizedCropFlipOutput(NamedTuple):
    """What :class:`RandomResizedCropFlip` returns; unpacks as ``(image, view)``.

    Shape:
        - image: (B, C, h, w)
        - view: a :class:`~gg_augment.View`; ``view.boxes`` (B, 4) float32, normalised
          (y0, x0, y1, x1) of the original image; ``view.flips`` (B,) bool, mirrored
          left–right after cropping; ``view.index`` the ``index=`` given to the call
    """

    image: Tensor
    view: View


class RandomResizedCropFlip(RandomAugmentation[ResizedCropFlipOutput]):
    """Random resized crop and horizontal flip, one box and flip per sample, batched.

    Parameters are drawn on the input's device, one call per kind for the whole batch:

    1. area fraction ``s ~ U(scale)``;
    2. aspect ratio (width/height in pixels) log-uniform on the part of ``ratio`` whose box of
       area ``s`` fits inside the image. For area s the feasible log-ratios form the interval
       [log(s·W/H), log(W/(s·H))], which always contains log(W/H), so the intersection with
       ``[log ratio[0], log ratio[1]]`` is empty only for ratio ranges that exclude the
       image's own aspect; then the draw from ``ratio`` is clamped into the feasible
       interval. No rejection loop, no fallback to a centre crop;
    3. the position uniform over the places where the box fits;
    4. flip with probability ``flip_p``.

    Unlike torchvision's rejection sampler (which re-draws (s, ratio) pairs that do not fit,
    and so thins out large areas), the area is exactly ``U(scale)``. Boxes are continuous,
    not snapped to whole pixels. The crop is then applied with one ``F.affine_grid`` +
    ``F.grid_sample`` (bilinear, ``align_corners=False``, border padding) for the batch; see
    :func:`gg_augment.functional.resized_crop_flip`.

    Args:
        size: output (h, w), or one int for a square.
        scale: range of the crop area as a fraction of the image area, within (0, 1].
        ratio: range of the crop's aspect ratio (width / height), positive.
        flip_p: probability of a left–right flip.
        generator: optional ``torch.Generator`` on the input's device.

    It returns the images with their :class:`~gg_augment.View`, not a retention: a crop
    changes the geometry, and the view lets the attention cache follow it. Pass ``index=``
    (the dataset indices of the batch) to have it in the view.

    Shape:
        - x: (B, C, H, W) float; index: (B,)
        - output: :class:`ResizedCropFlipOutput` ``(image (B, C, h, w), view)``

    Examples:
        >>> g = torch.Generator().manual_seed(0)
        >>> crop = RandomResizedCropFlip(16, generator=g)
        >>> image, view = crop(torch.randn(4, 3, 32, 32), index=torch.arange(4))
        >>> image.shape, view.boxes.shape, view.flips.dtype
        (torch.Size([4, 3, 16, 16]), torch.Size([4, 4]), torch.bool)
    """

    context_keys = ("index",)

    def __init__(
        self,
        size: int | tuple[int, int],
        scale: tuple[float, float] = (0.08, 1.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
        flip_p: float = 0.5,
        generator: torch.Generator | None = None,
        mode: str = "bilinear",
        validate_args: bool = True,
    ) -> None:
        super().__init__(generator, validate_args)
        self.size = pair(size, "size")
        self.scale = check_interval(scale, "scale", 0.0, 1.0, low_inclusive=False)
        self.ratio = check_interval(ratio, "ratio", 0.0, math.inf, low_inclusive=False)
        self.flip_p = check_range(flip_p, "flip_p", 0.0, 1.0)
        self.mode = check_choice(mode, "mode", ("bilinear", "nearest"))

    def sample(
        self,
        shape: BatchShape,
        device: torch.device,
        generator: torch.Generator | None,
        inputs: Mapping[str, Tensor],
    ) -> dict[str, Tensor]:
        """Draw a box and a flip per sample for a batch of shape (B, C, H, W).

        Returns:
            ``view_boxes`` (B, 4) float32 normalised (y0, x0, y1, x1); ``flips`` (B,) bool.
        """
        batch, _, height, width = shape
        aspect = width / height
        # float64 keeps the log/exp round trip from pushing a side past 1 by rounding.
        area = self.scale[0] + (self.scale[1] - self.scale[0]) * uniform((batch,), device, generator).double()
        log_lo, log_hi = math.log(self.ratio[0]), math.log(self.ratio[1])
        fit_lo = torch.log(area * aspect)  # widest box of this area spans the full height
        fit_hi = torch.log(aspect / area)  # tallest box of this area spans the full width
        lo = fit_lo.clamp(min=log_lo)
        hi = fit_hi.clamp(max=log_hi)
        u_ratio = uniform((batch,), device, generator).double()
        inside = lo + (hi - lo) * u_ratio
        fallback = (log_lo + (log_hi - log_lo) * u_ratio).clamp(fit_lo, fit_hi)
        log_ratio = torch.where(lo <= hi, inside, fallback)
        # Normalised sides: bw·bh = area and (bw·W)/(bh·H) = ratio.
        box_w = torch.sqrt(area * torch.exp(log_ratio) / aspect).clamp(max=1.0)
        box_h = (area / box_w).clamp(max=1.0)
        position = uniform((batch, 2), device, generator).double()
        y0 = (1.0 - box_h) * position[:, 0]
        x0 = (1.0 - box_w) * position[:, 1]
        boxes = torch.stack([y0, x0, (y0 + box_h).clamp(max=1.0), (x0 + box_w).clamp(max=1.0)], dim=1)
        flips = uniform((batch,), device, generator) < self.flip_p
        return {"view_boxes": boxes.float(), "flips": flips}

    def check_params(self, x: Tensor, params: dict[str, Tensor]) -> None:
        check_view_boxes(param(params, "view_boxes"), x.shape[0], "params['view_boxes']", validate_values=self.validate_args)
        check_flips(param(params, "flips"), x.shape[0], "params['flips']")

    def transform(self, x: Tensor, params: dict[str, Tensor]) -> ResizedCropFlipOutput:
        """Replay: crop, resize and flip with the given params (no randomness)."""
        x = check_image_batch(x)
        boxes = check_view_boxes(params["view_boxes"], x.shape[0], "params['view_boxes']", validate_values=False)
        flips = check_flips(params["flips"], x.shape[0], "params['flips']")
        image = resized_crop_flip(x, boxes, flips, self.size, mode=self.mode)
        return ResizedCropFlipOutput(image, View(boxes=boxes, flips=flips))

    def finish(self, x: Tensor, params: dict[str, Tensor], context: Mapping[str, Any]) -> ResizedCropFlipOutput:
        image, view = self.transform(x, params)
        index = context.get("index")
        return ResizedCropFlipOutput(image, view if index is None else replace(view, index=index))

    def extra_repr(self) -> str:
        return (
            f"size={self.size}, scale={self.scale}, ratio=({self.ratio[0]:.4g}, {self.ratio[1]:.4g}), "
            f"flip_p={self.flip_p}, mode={self.mode!r}"
        )
