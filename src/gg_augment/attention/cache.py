"""``AttentionCache``: the storage of the approximate G_cut (docs/approximate_gcut.md).

Storage only: buffers, :meth:`~AttentionCache.read`, :meth:`~AttentionCache.write`, the view
check and the state dict. Who writes and when lives in :mod:`.recorder` (the hook on the
model); the DDP merge in :mod:`.distributed`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_int, check_range, check_tensor, pair
from ..functional.geometry import warp_to_original, warp_to_view
from ..view import View, as_view
from .distributed import sync_cache

__all__ = ["AttentionCache"]

# Bilinear interpolation weight on written cells below which a view cell counts as unknown.
_MIN_WEIGHT = 1e-3
# A warped "observed" mask must be 1 up to this slack for an original cell to be updated.
_OBSERVED_SLACK = 1e-4


def _format_bytes(count: int) -> str:
    if count < 1024:
        return f"{count} B"
    size = float(count)
    for unit in ("KiB", "MiB", "GiB"):
        size /= 1024
        if size < 1024 or unit == "GiB":
            break
    return f"{size:.2f} {unit}"


class AttentionCache(nn.Module):
    """One attention map (logits) per training sample, in original-image coordinates.

    An ``nn.Module`` holding only buffers: ``state_dict()`` / ``load_state_dict()`` give an
    exact round trip, ``.to(device)`` moves it, and a :class:`~gg_augment.GCut` that holds it
    includes it in its own state dict. A cell never written holds NaN. Besides the buffers
    the cache keeps a host-side copy of ``seen``, updated from CPU indices as they are written,
    so deciding which samples need the warm-up pass never reads the device.

    Args:
        num_samples: N, the size of the training set (indices are 0..N−1).
        grid_size: (gh, gw) of the stored maps in original coordinates.
        momentum: EMA weight of the old value, in [0, 1]; 0 replaces, 1 keeps the first value.
        dtype: storage dtype of the logits (fp16 halves the memory of fp32; use float32 or
            bfloat16 if the attention logits can exceed fp16's range, ±65504).
        device: where the buffers live.
        validate_args: check index *values* (range) and view-box values; these checks need a
            host synchronisation on CUDA. Shape and dtype checks always run.

    Shape:
        - values: (N, gh, gw); seen (written at least once), updated (since the last
          :meth:`sync`): (N,) bool

    Examples:
        >>> cache = AttentionCache(num_samples=100, grid_size=4)
        >>> cache.write(torch.tensor([3, 5]), torch.randn(2, 4, 4))
        >>> attention, known = cache.read(torch.tensor([3, 4]))
        >>> known.tolist(), int(cache.seen.sum())
        ([True, False], 2)
    """

    values: Tensor
    seen: Tensor
    updated: Tensor

    def __init__(
        self,
        num_samples: int,
        grid_size: int | tuple[int, int] = 12,
        momentum: float = 0.9,
        dtype: torch.dtype = torch.float16,
        device: torch.device | str = "cpu",
        *,
        validate_args: bool = True,
    ) -> None:
        super().__init__()
        num_samples = check_int(num_samples, "num_samples", minimum=1)
        grid = pair(grid_size, "grid_size")
        self.momentum = check_range(momentum, "momentum", 0.0, 1.0)
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise TypeError(f"dtype must be a floating torch.dtype; got {dtype!r}")
        self.validate_args = bool(validate_args)
        self.register_buffer("values", torch.full((num_samples, *grid), float("nan"), dtype=dtype, device=device))
        self.register_buffer("seen", torch.zeros(num_samples, dtype=torch.bool, device=device))
        self.register_buffer("updated", torch.zeros(num_samples, dtype=torch.bool, device=device))
        # The host-side copy of `seen`; None when a write by device indices made it stale.
        self._seen_host: np.ndarray | None = np.zeros(num_samples, dtype=bool)

    @property
    def num_samples(self) -> int:
        return self.values.shape[0]

    @property
    def grid_size(self) -> tuple[int, int]:
        return (self.values.shape[1], self.values.shape[2])

    @property
    def dtype(self) -> torch.dtype:
        return self.values.dtype

    @property
    def device(self) -> torch.device:
        return self.values.device

    @property
    def memory_bytes(self) -> int:
        """Bytes held by the buffers: N·gh·gw·itemsize + 2N."""
        return sum(t.numel() * t.element_size() for t in (self.values, self.seen, self.updated))

    # -- checks ----------------------------------------------------------------------------

    def check_view(self, view: View | Tensor, batch_size: int | None = None) -> View:
        """The view with its index checked against this cache.

        The returned :class:`~gg_augment.View` remembers the check (``View.validated_for``,
        the one memo), so passing it on to :meth:`read`, :meth:`write` or a recording costs
        nothing more. A bare index tensor is checked on every call.

        Args:
            view: a :class:`~gg_augment.View` with ``index``, or a bare index tensor.
            batch_size: B of the images; defaults to the length of the index.

        Raises:
            ValueError, TypeError: naming the field, what was expected and what came.
        """
        checked = as_view(view)
        if checked is None or checked.index is None:
            raise ValueError("the attention cache needs the dataset indices: pass view=View(index=...) (B,); got none")
        if batch_size is None:
            index = check_tensor(checked.index, "view.index")
            if index.ndim != 1:
                raise ValueError(f"view.index must have shape (B,); got {tuple(index.shape)}")
            batch_size = index.shape[0]
        return checked.validated(batch_size, self.num_samples, require_index=True, validate_values=self.validate_args)

    def check_observed(self, observed: Tensor | None, batch_size: int) -> Tensor | None:
        """``observed`` must be None or a (B, gh, gw) bool tensor."""
        if observed is None:
            return None
        observed = check_tensor(observed, "observed")
        if observed.ndim != 3 or observed.shape[0] != batch_size or 0 in observed.shape[1:]:
            raise ValueError(f"observed must have shape ({batch_size}, gh, gw); got {tuple(observed.shape)}")
        if observed.dtype != torch.bool:
            raise TypeError(f"observed must be a bool tensor; got {observed.dtype}")
        return observed

    # -- the host-side record ----------------------------------------------------------------

    def refresh_host_record(self) -> np.ndarray:
        """Copy ``seen`` to the host (one device read; after a load, a reset or a sync)."""
        self._seen_host = self.seen.cpu().numpy().copy()
        return self._seen_host

    def unseen_rows(self, view: View) -> Tensor:
        """Positions in the batch of the samples never written: (k,) int64.

        With a CPU index (the usual case: loaders and samplers produce CPU indices) this reads
        the host-side record only, no device synchronisation. A device index falls back to
        reading ``seen`` from the device (one host sync).
        """
        index = check_tensor(view.index, "view.index")
        if index.device.type == "cpu":
            seen = self._seen_host if self._seen_host is not None else self.refresh_host_record()
            return torch.from_numpy(np.flatnonzero(~seen[index.numpy()]))
        return torch.nonzero(~self.seen.index_select(0, index.to(self.device))).squeeze(1)

    def _mark_written(self, index: Tensor, device_index: Tensor) -> None:
        self.seen.index_fill_(0, device_index, True)
        self.updated.index_fill_(0, device_index, True)
        if index.device.type == "cpu" and self._seen_host is not None:
            self._seen_host[index.numpy()] = True
        else:  # a device index cannot be copied to the host without a sync: refresh lazily
            self._seen_host = None

    # -- write -----------------------------------------------------------------------------

    @torch.no_grad()
    def write(self, view: View | Tensor, logits: Tensor, observed: Tensor | None = None) -> None:
        """Blend attention logits seen in a view into the cache.

        Per original cell, after warping the view's map back: observed cells blend in
        ``new = momentum·old + (1 − momentum)·observed`` (a cell never written takes the
        observed value); cells cut (``observed=False``) or outside the view keep their value.
        Every index of the batch is marked ``seen`` and ``updated``.

        Args:
            view: the batch's :class:`~gg_augment.View` or a bare index tensor.
            logits: attention logits of the view (any floating dtype), e.g.
                ``extractor.extract(x)``; resized (nearest) to the view's grid.
            observed: cells of the view's grid that were visible; None = all. Its (gh, gw)
                is the view's grid; without it the cache's own grid is used.

        Shape:
            - view.index: (B,); logits: (B, h, w); observed: (B, gh, gw) bool
        """
        view = self.check_view(view)
        index = check_tensor(view.index, "view.index")
        batch = index.shape[0]
        logits = check_tensor(logits, "logits")
        if logits.ndim != 3 or logits.shape[0] != batch:
            raise ValueError(f"logits must have shape ({batch}, h, w); got {tuple(logits.shape)}")
        observed = self.check_observed(observed, batch)
        if batch == 0:
            return
        device = self.values.device
        device_index = index.to(device, non_blocking=True)
        view_grid = tuple(observed.shape[1:]) if observed is not None else self.grid_size
        logits = logits.detach().to(device=device, dtype=torch.float32)
        if tuple(logits.shape[1:]) != view_grid:
            logits = F.interpolate(logits.unsqueeze(1), size=view_grid, mode="nearest").squeeze(1)
        if view.is_whole_image and view_grid == self.grid_size:
            fresh = logits
            update = observed.to(device) if observed is not None else torch.ones_like(logits, dtype=torch.bool)
        else:
            seen_mask = observed.to(device=device, dtype=torch.float32) if observed is not None else torch.ones_like(logits)
            warped, inside = warp_to_original(
                torch.stack([logits, seen_mask], dim=1),
                None if view.boxes is None else view.boxes.to(device),
                None if view.flips is None else view.flips.to(device),
                self.grid_size,
            )
            fresh = warped[:, 0]
            update = inside & (warped[:, 1] >= 1.0 - _OBSERVED_SLACK)
        if self.values.dtype in (torch.float16, torch.bfloat16):
            limit = torch.finfo(self.values.dtype).max
            fresh = fresh.clamp(-limit, limit)
        old = self.values.index_select(0, device_index).float()
        blended = torch.where(torch.isnan(old), fresh, self.momentum * old + (1.0 - self.momentum) * fresh)
        new = torch.where(update, blended, old)
        # One fused write per buffer. Duplicate indices in a batch: one of them wins.
        self.values.index_put_((device_index,), new.to(self.values.dtype))
        self._mark_written(index, device_index)

    # -- read ------------------------------------------------------------------------------

    def read(self, view: View | Tensor, grid_size: int | tuple[int, int] | None = None) -> tuple[Tensor, Tensor]:
        """The cached attention of a batch, in each sample's view, as probabilities.

        One ``index_select`` gathers the maps; one batched ``grid_sample`` warps them into
        the views (skipped when the geometry is the identity and the grid matches); view cells
        with no written value nearby take the mean of the known logits; a softmax over the
        view cells normalises them to sum 1.

        Args:
            view: the batch's :class:`~gg_augment.View`, or a bare index tensor.
            grid_size: (gh, gw) of the output; defaults to the cache's grid.

        Returns:
            ``(attention, known)``: float32 probabilities and whether the view held any
            written value; both on the cache's device. Where nothing is known the map is
            uniform.

        Shape:
            - view.index: (B,); view.boxes: (B, 4); view.flips: (B,) bool
            - output: (B, gh, gw) and (B,) bool
        """
        view = self.check_view(view)
        out_size = pair(grid_size, "grid_size") if grid_size is not None else self.grid_size
        index = check_tensor(view.index, "view.index")
        device = self.values.device
        stored = self.values.index_select(0, index.to(device, non_blocking=True)).float()
        written = ~torch.isnan(stored)
        if view.is_whole_image and out_size == self.grid_size:
            known = written
            logits = stored
        else:
            planes = torch.stack([torch.where(written, stored, 0.0), written.float()], dim=1)
            warped = warp_to_view(
                planes,
                None if view.boxes is None else view.boxes.to(device),
                None if view.flips is None else view.flips.to(device),
                out_size,
            )
            weight = warped[:, 1]
            known = weight > _MIN_WEIGHT
            # Normalised interpolation: average only over the written neighbours.
            logits = warped[:, 0] / weight.clamp_min(_MIN_WEIGHT)
        flat_known = known.flatten(1)
        flat = torch.where(flat_known, logits.flatten(1), 0.0)
        count = flat_known.sum(dim=1, keepdim=True)
        mean = flat.sum(dim=1, keepdim=True) / count.clamp_min(1)
        flat = torch.where(flat_known, flat, mean)
        attention = torch.softmax(flat, dim=1).view(index.shape[0], *out_size)
        return attention, count.squeeze(1) > 0

    # -- maintenance -----------------------------------------------------------------------

    def reset(self) -> None:
        """Forget everything (values back to NaN, flags cleared)."""
        self.values.fill_(float("nan"))
        self.seen.zero_()
        self.updated.zero_()
        self._seen_host = np.zeros(self.num_samples, dtype=bool)

    def sync(self, process_group: Any = None, chunk_size: int = 65536) -> None:
        """Make every rank's cache identical; see :func:`~gg_augment.attention.distributed.sync_cache`.

        A collective: call it on every rank at the end of each epoch and before saving.
        """
        sync_cache(self, process_group, chunk_size)

    def _load_from_state_dict(
        self,
        state_dict: dict[str, Any],
        prefix: str,
        local_metadata: dict,
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        for name in ("values", "seen", "updated"):
            key = prefix + name
            if key not in state_dict:
                continue
            tensor = state_dict[key]
            if not isinstance(tensor, Tensor):
                raise TypeError(f"state_dict[{key!r}] must be a torch.Tensor; got {type(tensor).__name__}")
            expected = tuple(getattr(self, name).shape)
            if tuple(tensor.shape) != expected:
                raise ValueError(
                    f"state_dict[{key!r}] must have shape {expected} (num_samples={self.num_samples}, "
                    f"grid_size={self.grid_size}); got {tuple(tensor.shape)}: build the cache with the "
                    "checkpoint's num_samples and grid_size"
                )
            if name == "values" and not tensor.is_floating_point():
                raise TypeError(f"state_dict[{key!r}] must have a floating dtype; got {tensor.dtype}")
            if name != "values" and tensor.dtype != torch.bool:
                raise TypeError(f"state_dict[{key!r}] must be a bool tensor; got {tensor.dtype}")
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )
        self.refresh_host_record()

    def extra_repr(self) -> str:
        return (
            f"num_samples={self.num_samples}, grid_size={self.grid_size}, momentum={self.momentum}, "
            f"dtype={str(self.dtype).removeprefix('torch.')}, device={self.device}, "
            f"seen={int(self.seen.sum())}/{self.num_samples}, memory={_format_bytes(self.memory_bytes)}"
        )
