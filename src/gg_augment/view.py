"""``View``: which dataset samples a batch holds, and which crop and flip made each image.

A geometric augmentation (:class:`~gg_augment.RandomResizedCropFlip`) returns the view with
its images; the attention sources and the :class:`~gg_augment.AttentionCache` take it, so the
three pieces of geometry travel as one argument instead of three.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from ._checks import check_flips, check_index, check_tensor, check_view_boxes

__all__ = ["View"]

# index_select and index_put take these; any other integer index is widened once, when checked.
_INDEX_DTYPES = (torch.int32, torch.int64)


@dataclass(frozen=True)
class View:
    """The provenance of a batch of images.

    Attributes:
        index: dataset indices of the samples (the attention cache's keys); None if unknown.
            Keep it on the CPU when you can: the approximate G_cut then decides its warm-up
            from a host-side record, without reading the device.
        boxes: per-sample crop boxes, normalised (y0, x0, y1, x1) of the original image;
            None means the whole image.
        flips: per-sample left-right flips applied after the crop; None means no flips.
        validated_for: the one memo of view checks, set by :meth:`validated` to
            ``(batch_size, num_samples, values_checked)``, so a view checked once is not
            checked (and host-synchronised) again in the same step.

    Shape:
        - index: (B,) integer; boxes: (B, 4) float; flips: (B,) bool

    Examples:
        >>> import torch
        >>> view = View(index=torch.tensor([4, 7]))
        >>> view.is_whole_image, view.select(torch.tensor([1])).index
        (True, tensor([7]))
    """

    index: Tensor | None = None
    boxes: Tensor | None = None
    flips: Tensor | None = None
    validated_for: tuple[int, int | None, bool] | None = field(default=None, compare=False, repr=False)

    @property
    def is_whole_image(self) -> bool:
        """No crop and no flip: the images are the original ones."""
        return self.boxes is None and self.flips is None

    def select(self, rows: Tensor) -> View:
        """The view of a subset of the batch (rows as positions in the batch)."""

        def pick(t: Tensor | None) -> Tensor | None:
            return None if t is None else t.index_select(0, rows.to(t.device))

        # Rows of a checked view are checked too: only the batch size changes.
        memo = self.validated_for
        checked = None if memo is None else (rows.shape[0], memo[1], memo[2])
        return View(pick(self.index), pick(self.boxes), pick(self.flips), checked)

    def _covers(self, batch_size: int, num_samples: int | None, validate_values: bool) -> bool:
        memo = self.validated_for
        if memo is None or memo[0] != batch_size:
            return False
        same_range = num_samples is None or memo[1] == num_samples
        return same_range and (memo[2] or not validate_values or num_samples is None)

    def validated(
        self,
        batch_size: int,
        num_samples: int | None = None,
        *,
        require_index: bool = False,
        validate_values: bool = True,
    ) -> View:
        """This view, checked against a batch of ``batch_size`` images.

        The result remembers the check, so passing it on costs nothing the second time; a
        check against ``num_samples`` also covers a later check without it.

        Args:
            batch_size: B of the images the view describes.
            num_samples: the dataset size the indices must lie below (range check skipped
                when None).
            require_index: raise when ``index`` is None.
            validate_values: read tensor values (index range, box bounds): a host sync on
                CUDA. Shapes and dtypes are always checked.

        Raises:
            ValueError, TypeError: naming the field, what was expected and what came.
        """
        if require_index and self.index is None:
            raise ValueError("view.index must hold the dataset indices of the batch (B,); got None")
        if self._covers(batch_size, num_samples, validate_values):
            return self
        index = self.index
        if index is not None:
            index = check_index(
                index,
                num_samples if num_samples is not None else 0,
                "view.index",
                batch_size=batch_size,
                validate_values=validate_values and num_samples is not None,
            )
            if index.dtype not in _INDEX_DTYPES:  # e.g. uint8: widened, not refused deep in torch
                index = index.long()
        boxes = self.boxes
        if boxes is not None:
            boxes = check_view_boxes(boxes, batch_size, "view.boxes", validate_values=validate_values)
        flips = None if self.flips is None else check_flips(self.flips, batch_size, "view.flips")
        values_checked = validate_values and num_samples is not None
        return View(index, boxes, flips, (batch_size, num_samples, values_checked))


def as_view(view: object, name: str = "view") -> View | None:
    """None, a :class:`View`, or a bare index tensor (the view of whole images)."""
    if view is None or isinstance(view, View):
        return view
    if isinstance(view, Tensor):
        return View(index=check_tensor(view, name))
    raise TypeError(f"{name} must be a gg_augment.View, an index tensor or None; got {type(view).__name__}")
