"""``ImageOnly``: a retention augmentation that fits image-only pipelines (v2, Kornia)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ._base import RetentionAugmentation

__all__ = ["ImageOnly"]


class ImageOnly(nn.Module):
    """Return the augmented batch alone and keep its retention aside for the loss.

    torchvision v2 ``Compose``/``RandomApply`` and Kornia ``AugmentationSequential`` pass one
    image tensor from step to step, so a module returning ``(x_aug, retention)`` must sit last.
    Wrapped in ``ImageOnly`` it can sit anywhere: the transforms after it see a tensor, and
    :meth:`take_retention` hands the retention to the loss after the pipeline ran.

    - A call multiplies the kept retention by the call's own (two GG steps keep the share
      both left); :meth:`take_retention` returns it and starts afresh.
    - A call that did not happen (``RandomApply`` skipped it) leaves r = 1, so
      ``take_retention(batch_size=B)`` is right on both branches.
    - Transforms placed after it (flips, colour, normalisation) do not change r; geometric ones
      that crop further are not accounted for.

    The kept tensor lives in the module, so use it where the pipeline runs on whole batches in
    the training process (on the device, after the DataLoader); in DataLoader workers use
    :class:`~gg_augment.PerSample` instead. Not thread-safe: one pipeline call at a time.

    Args:
        augmentation: a retention augmentation that needs no per-call context (GT,
            RandomErasingRetention, or a GCut with its own attention source).

    Shape:
        - x: (B, C, H, W); output: (B, C, H, W), a ``tv_tensors.Image`` stays one
        - :meth:`take_retention`: (B,) in the dtype of x

    Examples:
        >>> from torchvision.transforms import v2
        >>> gt = ImageOnly(GT(sigma=0.1))
        >>> pipeline = v2.Compose([v2.RandomApply([gt], p=0.5), v2.RandomHorizontalFlip()])
        >>> x_aug = pipeline(torch.randn(8, 3, 32, 32))
        >>> gt.take_retention(batch_size=8).shape
        torch.Size([8])
    """

    def __init__(self, augmentation: RetentionAugmentation) -> None:
        super().__init__()
        if not isinstance(augmentation, RetentionAugmentation):
            raise TypeError(
                f"augmentation must be a retention augmentation such as GT; got {type(augmentation).__name__}"
            )
        self.augmentation = augmentation
        self._retention: Tensor | None = None

    def forward(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor):
            raise TypeError(f"x must be a (B, C, H, W) tensor; got {type(x).__name__}")
        augmented, retention = self.augmentation(x.as_subclass(Tensor))
        self._retention = retention if self._retention is None else self._retention * retention
        out: Any = augmented
        if type(x) is not Tensor:  # a tv_tensors.Image (or another subclass) keeps its type
            out = augmented.as_subclass(type(x))
        return out

    def take_retention(
        self,
        batch_size: int | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> Tensor:
        """The retention kept since the last take, then forget it.

        When the module did not run since the last take, r = 1 for every sample: give
        ``batch_size`` (and ``device``/``dtype``) for that case; without it, a skipped call
        is a ``RuntimeError``.
        """
        kept, self._retention = self._retention, None
        if kept is not None:
            if batch_size is not None and kept.shape[0] != batch_size:
                raise ValueError(
                    f"batch_size must match the kept retention: expected {kept.shape[0]}; got {batch_size} "
                    "(was take_retention skipped after an earlier batch?)"
                )
            return kept
        if batch_size is None:
            raise RuntimeError(
                "no retention kept: the augmentation did not run since the last take; pass batch_size= "
                "to get r = 1 for a skipped call (e.g. under v2.RandomApply)"
            )
        return torch.ones(batch_size, device=device, dtype=dtype)

    def extra_repr(self) -> str:
        return "returns the image; retention via take_retention()"
