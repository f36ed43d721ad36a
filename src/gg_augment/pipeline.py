"""``RetentionPipeline``: crop → retention augmentation → weight, in one module.

The whole GG augmentation of a training step: an optional geometric view (random resized
crop and flip), the augmentation that gives up part of the image and measures what survived,
and the :class:`~gg_augment.SemanticRetention` curve that turns retention into the loss
weight. Geometry reaches a geometry-aware augmentation (GCut with an attention cache) as a
:class:`~gg_augment.View`, so the user never threads boxes and flips by hand.

A training step with the approximate G_cut shows its one hand-off to the cache::

    batch = pipeline.augment(images, index)    # no side effects
    with pipeline.recording(batch):            # writes the warm-up maps, then this forward's
        outputs = model(batch.images)
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ._checks import check_image_batch, check_index
from .attention.recorder import Warmup
from .attention.sources import CachedAttention
from .augment._base import RetentionAugmentation
from .augment.crop import RandomResizedCropFlip
from .augment.gcut import GCut
from .data.transforms import TrainingTransform
from .retention import SemanticRetention
from .view import View

__all__ = ["AugmentedBatch", "RetentionPipeline"]


@dataclass(frozen=True)
class AugmentedBatch:
    """One augmented batch and what its recording needs.

    Attributes:
        images: (B, C, h, w) the augmented images, for the training forward.
        weight: (B,) float32 loss weights.
        view: the batch's checked :class:`~gg_augment.View` (index, crop boxes, flips), or
            None when no index was given and nothing was cropped.
        observed: (B, gh, gw) bool, the cells a G_cut left uncut; None without a G_cut.
        warmup: maps the cached G_cut's warm-up pass computed, written by the recording.
    """

    images: Tensor
    weight: Tensor
    view: View | None = None
    observed: Tensor | None = None
    warmup: Warmup | None = None


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

    @property
    def cached_source(self) -> CachedAttention | None:
        """The attention cache's source when the augmentation is an approximate G_cut."""
        source = getattr(self.augmentation, "source", None)
        return source if isinstance(source, CachedAttention) else None

    def augment(self, x: Tensor, index: Tensor | None = None) -> AugmentedBatch:
        """The batch's augmentation, with what :meth:`recording` needs; no side effects.

        Args:
            x: images (B, C, H, W), floating point.
            index: (B,) integer dataset indices; needed by a cached G_cut. Pass the loader's
                CPU tensor: the cache then decides its warm-up without reading the device.
        """
        x = check_image_batch(x)
        view: View | None = None
        if index is not None:
            index = check_index(index, 0, "index", batch_size=x.shape[0], validate_values=False)
            view = View(index=index).validated(x.shape[0], validate_values=False)
        if self.crop is not None:
            x, cropped = self.crop(x)
            # A TrainingTransform without a crop (or after a rotation, which no box describes)
            # gives no geometry; the batch keeps its index-only view.
            if cropped is not None and not cropped.is_whole_image:
                view = View(None if view is None else view.index, cropped.boxes, cropped.flips)
                view = view.validated(x.shape[0], validate_values=False)
        ones = torch.ones(x.shape[0], device=x.device)
        if self.augmentation is None:
            return AugmentedBatch(x, ones, view)
        observed = warmup = None
        if isinstance(self.augmentation, GCut):
            x, retention, drawn, observed = self.augmentation.cut_and_record(x, view)
            view, warmup = drawn.view, drawn.warmup
        elif "view" in self.augmentation.context_keys:
            x, retention = self.augmentation(x, view=view)
        else:
            x, retention = self.augmentation(x)
        weight = self.curve(retention.float()) if self.weight_by_retention else ones
        return AugmentedBatch(x, weight, view, observed, warmup)

    def recording(self, batch: AugmentedBatch) -> contextlib.AbstractContextManager[None]:
        """Around the training forward of ``batch``: writes the cache (warm-up maps first, then
        the forward's attention of the uncut cells). A null context without a cached G_cut."""
        if not isinstance(batch, AugmentedBatch):
            raise TypeError(f"batch must be the AugmentedBatch from pipeline.augment(); got {type(batch).__name__}")
        source = self.cached_source
        if source is None:
            return contextlib.nullcontext()
        if batch.view is None:
            raise ValueError("a cached G_cut records by dataset index: augment the batch with pipeline.augment(x, index)")
        return source.recording(batch.view, batch.observed, batch.warmup)

    def forward(self, x: Tensor, index: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``augment(x, index)`` as ``(images, weight)``, for training without a cache.

        With a cached G_cut nothing is recorded, so the cache is never filled: every call
        warns (use :meth:`augment` and :meth:`recording`).
        """
        if self.cached_source is not None:
            warnings.warn(
                "RetentionPipeline(...)(x, index) with a cached G_cut records nothing: the cache is never "
                "written. Use `batch = pipeline.augment(x, index)` and `with pipeline.recording(batch): "
                "model(batch.images)`",
                UserWarning,
                stacklevel=4,  # the caller of pipeline(...), past nn.Module.__call__
            )
        batch = self.augment(x, index)
        return batch.images, batch.weight

    def extra_repr(self) -> str:
        return "" if self.weight_by_retention else "weight_by_retention=False"
