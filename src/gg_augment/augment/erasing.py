"""``RandomErasingRetention``: random erasing that reports the unerased share."""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import Tensor

from .._checks import check_image_batch, check_interval, check_range
from ..functional._sampling import uniform
from ..functional.erase import erase
from ._base import BatchShape, RetentionAugmentation, param

__all__ = ["RandomErasingRetention"]


class RandomErasingRetention(RetentionAugmentation):
    """Erase one random rectangle per sample (Zhong et al., AAAI 2020); r = unerased share.

    Each sample draws its own area share s ~ U(scale) and log aspect ratio ~ U(log ratio),
    the rectangle is clipped to the image (no retry loop), and its position is uniform. This
    is the peer baseline of G_cut: the same "give up part of the image" without attention.

    Two rules for retention:

    - the default (torchvision's ranges, ``scale=(0.02, 0.33)``, ``min_share=0``): r is the
      unerased share of every erased sample;
    - the authors' (:meth:`authors`: ``p=0.5``, ``scale=(0.02, 0.5)``, ``min_share=0.25``):
      an erasure below a quarter of the image is treated as harmless and keeps r = 1; from a
      quarter up, r = 1 − erased share.

    Args:
        scale: range of the erased area as a share of the image, within [0, 1], max > 0.
        ratio: range of the rectangle's aspect ratio (h / w), positive and finite.
        fill: ``"random"`` (per-pixel N(0, 1), as torchvision's ``value="random"``) or a float.
        min_share: erased shares below this keep r = 1.
        p: probability that a sample is augmented; the others pass with r = 1.
        generator: the source of every random draw (default: torch's global RNG).
        validate_args: check inputs and outputs (host syncs on CUDA; off for torch.compile).

    Shape:
        - x: (B, C, H, W)
        - output: (B, C, H, W) and retention (B,) = 1 − erased area / (H·W)
    """

    def __init__(
        self,
        scale: tuple[float, float] = (0.02, 0.33),
        ratio: tuple[float, float] = (0.3, 3.3),
        fill: str | float = 0.0,
        p: float = 0.5,
        generator: torch.Generator | None = None,
        validate_args: bool = True,
        min_share: float = 0.0,
    ) -> None:
        super().__init__(p=p, generator=generator, validate_args=validate_args)
        self.min_share = check_range(min_share, "min_share", 0.0, 1.0)
        self.scale = check_interval(scale, "scale", 0.0, 1.0)
        if self.scale[1] == 0:
            raise ValueError(f"scale must allow a positive erased share (scale[1] > 0); got {scale!r} (use p=0 to erase nothing)")
        self.ratio = check_interval(ratio, "ratio", 0.0, math.inf, low_inclusive=False)
        if isinstance(fill, str):
            if fill != "random":
                raise ValueError(f"fill must be 'random' or a float; got {fill!r}")
        elif isinstance(fill, bool) or not isinstance(fill, (int, float)):
            raise TypeError(f"fill must be 'random' or a float; got {fill!r}")
        else:
            fill = check_range(fill, "fill", -math.inf, math.inf)
        self.fill: str | float = fill

    def sample(
        self,
        shape: BatchShape,
        device: torch.device,
        generator: torch.Generator | None,
        inputs: Mapping[str, Tensor],
    ) -> dict[str, Tensor]:
        """``boxes`` (B, 4) int64 (y0, x0, y1, x1), empty where not applied; ``applied``;
        ``noise`` (B, C, H, W) for the random fill."""
        batch, channels, height, width = shape
        draws = uniform((batch, 4), device, generator)
        area = (self.scale[0] + (self.scale[1] - self.scale[0]) * draws[:, 0]) * height * width
        log_lo, log_hi = math.log(self.ratio[0]), math.log(self.ratio[1])
        aspect = torch.exp(log_lo + (log_hi - log_lo) * draws[:, 1])
        box_h = torch.sqrt(area * aspect).round().clamp(1, height).long()
        box_w = torch.sqrt(area / aspect).round().clamp(1, width).long()
        y0 = (draws[:, 2] * (height - box_h + 1)).floor().long().clamp(max=height - 1)
        x0 = (draws[:, 3] * (width - box_w + 1)).floor().long().clamp(max=width - 1)
        applied = self.draw_applied(batch, device, generator)
        box_h, box_w = box_h * applied, box_w * applied
        params = {"boxes": torch.stack([y0, x0, y0 + box_h, x0 + box_w], dim=1), "applied": applied}
        if self.fill == "random":
            params["noise"] = torch.randn((batch, channels, height, width), device=device, generator=generator)
        return params

    def check_params(self, x: Tensor, params: dict[str, Tensor]) -> None:
        batch, _, height, width = x.shape
        boxes = param(params, "boxes")
        if boxes.shape != (batch, 4):
            raise ValueError(f"params['boxes'] must have shape ({batch}, 4); got {tuple(boxes.shape)}")
        if boxes.is_floating_point() or boxes.dtype == torch.bool:
            raise TypeError(f"params['boxes'] must have an integer dtype (pixel rows and columns); got {boxes.dtype}")
        if self.fill == "random":
            noise = param(params, "noise")
            if noise.shape != x.shape:
                raise ValueError(f"params['noise'] must have the shape of x {tuple(x.shape)}; got {tuple(noise.shape)}")
        if self.validate_args and batch:
            y0, x0, y1, x1 = boxes.unbind(1)
            inside = (y0 >= 0) & (y0 <= y1) & (y1 <= height) & (x0 >= 0) & (x0 <= x1) & (x1 <= width)
            if not bool(inside.all()):
                raise ValueError(
                    f"params['boxes'] must be (y0, x0, y1, x1) with 0 <= y0 <= y1 <= {height} and "
                    f"0 <= x0 <= x1 <= {width}; got {boxes[~inside][0].tolist()}"
                )

    def transform(self, x: Tensor, params: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """Replay: erase the given boxes (no randomness)."""
        x = check_image_batch(x)
        fill = params["noise"] if isinstance(self.fill, str) else float(self.fill)
        x_erased, retention = erase(x, params["boxes"], fill)
        if self.min_share > 0:
            retention = torch.where(1 - retention >= self.min_share, retention, torch.ones_like(retention))
        return x_erased, retention

    @classmethod
    def authors(
        cls,
        fill: str | float = 0.0,
        generator: torch.Generator | None = None,
        validate_args: bool = True,
    ) -> RandomErasingRetention:
        """The GG authors' erasing baseline: p = 0.5, scale (0.02, 0.5), r = 1 − erased share
        only when that share is at least 0.25 (else r = 1)."""
        return cls(
            scale=(0.02, 0.5), fill=fill, p=0.5, generator=generator, validate_args=validate_args, min_share=0.25
        )

    def extra_repr(self) -> str:
        rule = f", min_share={self.min_share}" if self.min_share else ""
        return f"scale={self.scale}, ratio={self.ratio}, fill={self.fill!r}, p={self.p}{rule}"
