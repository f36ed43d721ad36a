"""``RetentionPipeline``: crop → retention augmentation → weight, in one module.

The whole GG augmentation of a training step: an optional geometric view (random resized
crop and flip), the augmentation that gives up part of the image and measures what survived,
and the :class:`~gg_augment.SemanticRetention` curve that turns retention into the loss
weight. Geometry reaches a geometry-aware augmentation (GCut with an attention cache) as a
:class:`~gg_augment.View`, so the user never threads boxes and flips by hand.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._checks import check_image_batch
from .augment._base import RetentionAugmentation
from .augment.crop import RandomResizedCropFlip
from .data.transforms import TrainingTransform
from .retention import SemanticRetention
from .view import View, as_view

__all__ = ["RetentionPipeline"]


class RetentionPipeline(nn.Module):
    """``forward(x, index=None) -> (x_aug, weight)``: the batch's augmentation and loss weights.

    Args:
        augmentation: a retention augmentation (:class:`~gg_augment.GT`,
            :class:`~gg_augment.GCut`, :class:`~gg_augment.RandomErasingRetention`, ...);
            None for a view-only pipeline (every weight 1).
        crop: an optional :class:`~gg_augment.RandomResizedCropFlip`, or a method's whole
            :class:`~gg_augment.data.transforms.TrainingTransform`, applied first; its view
            (boxes, flips and the ``index``) reaches the augmentation when it takes ``view=``.
        curve: retention → weight; ``SemanticRetention()`` (w = r) by default.
        weight_by_retention: False keeps the same images with every weight 1 (the "no
            retention weighting" ablation).

    Shape:
        - x: (B, C, H, W) float; index: (B,) dataset indices (needed by a cached G_cut)
        - output: (B, C, h, w) and weight (B,) float32

    Examples:
        >>> from gg_augment import GT
        >>> g = torch.Generator().manual_seed(0)
        >>> pipeline = RetentionPipeline(GT(sigma=0.2, generator=g), crop=RandomResizedCropFlip(24, generator=g))
        >>> x_aug, weight = pipeline(torch.randn(4, 3, 32, 32), index=torch.arange(4))
        >>> x_aug.shape, weight.shape
        (torch.Size([4, 3, 24, 24]), torch.Size([4]))
    """

    def __init__(
        self,
        augmentation: RetentionAugmentation | None = None,
        *,
        crop: RandomResizedCropFlip | TrainingTransform | None = None,
        curve: SemanticRetention | None = None,
        weight_by_retention: bool = True,
    ) -> None:
        super().__init__()
        if augmentation is not None and not isinstance(augmentation, RetentionAugmentation):
            raise TypeError(
                f"augmentation must be a RetentionAugmentation (GT, GCut, ...) or None; got {type(augmentation).__name__}"
            )
        if crop is not None and not isinstance(crop, (RandomResizedCropFlip, TrainingTransform)):
            raise TypeError(f"crop must be a RandomResizedCropFlip, a TrainingTransform or None; got {type(crop).__name__}")
        if curve is not None and not isinstance(curve, SemanticRetention):
            raise TypeError(f"curve must be a SemanticRetention or None; got {type(curve).__name__}")
        self.crop = crop
        self.augmentation = augmentation
        self.curve = curve if curve is not None else SemanticRetention()
        self.weight_by_retention = bool(weight_by_retention)

    def forward(self, x: Tensor, index: Tensor | None = None) -> tuple[Tensor, Tensor]:
        x = check_image_batch(x)
        view: View | None = as_view(index, "index")
        if self.crop is not None:
            x, view = self.crop(x, index=index)
        ones = torch.ones(x.shape[0], device=x.device)
        if self.augmentation is None:
            return x, ones
        if "view" in self.augmentation.context_keys:
            x, retention = self.augmentation(x, view=view)
        else:
            x, retention = self.augmentation(x)
        if not self.weight_by_retention:
            return x, ones
        return x, self.curve(retention.float())

    def extra_repr(self) -> str:
        return "" if self.weight_by_retention else "weight_by_retention=False"
