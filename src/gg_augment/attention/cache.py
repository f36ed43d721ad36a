"""``AttentionCache``: per-sample attention maps for the approximate G_cut, with no extra pass.

The exact G_cut pays one extra forward pass per step for its attention map. The approximate
G_cut (proposed in the authors' README) reuses maps from earlier epochs instead. This cache
holds one map per training sample, keyed by dataset index, and fills it from the features of
the *normal training forward pass* through a forward hook on the attention layer.

What is stored
    Attention **logits** (the extractor's scores before the softmax: channel mean of a CNN
    feature map, CLS·patch of a ViT) on a gh×gw grid in the **original image's coordinates**,
    ``values`` (N, gh, gw) in fp16 by default. Logits rather than probabilities, because a
    probability map is normalised over the *view* it came from: blending maps of views with
    different extent (random resized crops) in original coordinates would mix incompatible
    scales, while logits are pointwise features of the image content. :meth:`read` applies
    the same softmax that the exact G_cut applies, over the cells of the current view, so it
    returns probabilities that sum to 1. A cell that was never written holds NaN. ``seen``
    (N,) marks samples with at least one written cell and ``updated`` (N,) those written
    since the last :meth:`sync`. Memory: N·gh·gw·2 + 2N bytes in fp16 (shown in the repr).

Write rule (EMA over observed cells)
    After :meth:`expect` announced a batch, the next training forward writes it back: the
    logits are resized (nearest, like :func:`~gg_augment.functional.attention_to_grid`) to
    the view's grid, warped into original coordinates with the view box and flip, and
    blended into the observed cells only::

        new = momentum·old + (1 − momentum)·observed     (a cell never written takes observed)

    Cells that were cut in this step (``observed=False``) and original cells outside the view
    keep their old values: the model did not see them. With a crop, an original cell counts as
    observed when its centre lies in the view and every view cell it interpolates from was
    observed.

Hook firing rule
    The hook writes only when all of these hold: a batch is pending (:meth:`expect` was
    called since the last write), gradients are enabled (``torch.is_grad_enabled()``) and the
    hooked layer is in training mode. The pending state is cleared by the first write. So
    evaluation passes (``model.eval()`` or ``torch.no_grad()``), the exact G_cut's extra pass
    (eval + no_grad) and any second forward pass of the same step never write. The hook uses
    detached features under ``no_grad`` and touches only the cache's own buffers, so autograd
    is unaffected. Under ``torch.compile`` the hook on a submodule may cause a graph break.

Read rule and view geometry
    :meth:`read` gathers the stored maps of the batch (one ``index_select``), warps them into
    each sample's view with one batched ``grid_sample`` and applies the softmax over the view
    cells. View cells with no written value nearby (e.g. a part of the image never observed
    yet) take the mean of the view's known logits, so they are neutral: under ``select="mean"``
    they are never candidates. A sample whose view contains no written value at all is
    reported as not seen, and GCut's ``warmup`` policy takes over for it.

    Views are given as a :class:`~gg_augment.View`: ``boxes`` (B, 4), normalised (y0, x0,
    y1, x1) of the original image, and ``flips`` (B,) bool, mirrored left–right after
    cropping (the convention of
    :class:`~gg_augment.RandomResizedCropFlip` and :mod:`gg_augment.functional.geometry`).
    ``None`` means the whole image without flip; then no resampling happens at all. **Cost
    of leaving them out:** if the pipeline crops or flips but does not pass the boxes, the
    cached map is taken to be in the view's coordinates; it is then misaligned with the view
    by the crop offset and scale, and mirrored for flipped samples. The cuts land partly off
    the salient region and the retention score is computed on the wrong cells; the stored map
    also drifts towards a blur of the views. Pass the boxes whenever the view is not the
    whole image.

Distributed training
    Under DDP each rank writes the indices it sees. :meth:`sync` is a collective: every rank
    must call it, e.g. at the end of each epoch and before saving a checkpoint. Afterwards all
    ranks hold the same cache: a sample written by one rank since the last sync takes that
    rank's map, a sample written by several ranks the cellwise mean of theirs, the others keep
    their (identical) maps. Between syncs a rank reads only what it wrote itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_int, check_range, check_tensor, pair
from ..functional.geometry import warp_to_original, warp_to_view
from ..view import View, as_view
from .extractors import AttentionExtractor, attention_extractor_for

__all__ = ["AttentionCache"]

# Bilinear interpolation weight on written cells below which a view cell counts as unknown.
_MIN_WEIGHT = 1e-3
# A warped "observed" mask must be 1 up to this slack for an original cell to be updated.
_OBSERVED_SLACK = 1e-4


@dataclass
class _Pending:
    view: View
    observed: Tensor | None


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
    """One attention map per training sample, in original-image coordinates (see module docs).

    An ``nn.Module`` holding only buffers: ``state_dict()`` / ``load_state_dict()`` give an
    exact round trip, ``.to(device)`` moves it, and a :class:`~gg_augment.GCut` that holds it
    includes it in its own state dict. Keep it on the model's device: reads and writes then
    never cross devices.

    Args:
        num_samples: N, the size of the training set (indices are 0..N−1).
        grid_size: (gh, gw) of the stored maps in original coordinates.
        momentum: EMA weight of the old value, in [0, 1]; 0 replaces, 1 keeps the first value.
        dtype: storage dtype of the logits (fp16 halves the memory of fp32; use float32 or
            bfloat16 if the attention logits can exceed fp16's range, ±65504).
        device: where the buffers live.
        extractor: an :class:`AttentionExtractor` (or a model) to :meth:`attach` right away.
        validate_args: check index *values* (range) and view-box values; these checks need a
            host synchronisation on CUDA. Shape and dtype checks always run.

    Shape:
        - values: (N, gh, gw); seen, updated: (N,) bool

    Examples:
        >>> from gg_augment import GCut, RetrievalNet, build_backbone
        >>> model = RetrievalNet(*build_backbone("small"), 16)
        >>> cache = AttentionCache(num_samples=100, grid_size=8)
        >>> gcut = GCut(model, cache=cache, grid_size=8)  # attaches the cache to the model
        >>> x, index = torch.randn(4, 3, 32, 32), torch.arange(4)
        >>> x_aug, retention = gcut(x, view=index)  # warm-up: extra pass for unseen samples
        >>> codes = model(x_aug)  # the training forward fills the cache
        >>> int(cache.seen.sum())
        4
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
        extractor: AttentionExtractor | nn.Module | None = None,
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
        self.extractor: AttentionExtractor | None = None
        self._handle: torch.utils.hooks.RemovableHandle | None = None
        self._pending: _Pending | None = None
        self._last_checked: tuple[View, int, View] | None = None
        if extractor is not None:
            self.attach(extractor)

    # -- properties ------------------------------------------------------------------------

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

    @property
    def attached(self) -> bool:
        return self._handle is not None

    @property
    def pending(self) -> bool:
        """Whether a batch announced by :meth:`expect` waits for the training forward."""
        return self._pending is not None

    # -- hook ------------------------------------------------------------------------------

    def attach(self, model_or_extractor: nn.Module | AttentionExtractor, layer: str | nn.Module | None = None) -> AttentionCache:
        """Register the write-back hook on the attention layer of the model being trained.

        Args:
            model_or_extractor: the model (its attention layer is found as in
                :func:`~gg_augment.attention_extractor_for`) or a ready extractor.
            layer: layer name or module, to override the default layer of a model.

        Returns:
            ``self``. A previous hook of this cache is removed first.
        """
        if isinstance(model_or_extractor, AttentionExtractor):
            extractor = model_or_extractor
            if layer is not None:
                extractor = attention_extractor_for(extractor.model, layer)
        elif isinstance(model_or_extractor, nn.Module):
            extractor = attention_extractor_for(model_or_extractor, layer)
        else:
            raise TypeError(
                "model_or_extractor must be an nn.Module or an AttentionExtractor; "
                f"got {type(model_or_extractor).__name__}"
            )
        self.detach()
        self.extractor = extractor
        self._handle = extractor.layer.register_forward_hook(self._on_forward)
        return self

    def detach(self) -> None:
        """Remove the hook (the extractor is kept for reference) and drop any pending batch."""
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
        self._pending = None

    def _on_forward(self, module: nn.Module, _inputs: object, output: object) -> None:
        pending = self._pending
        if pending is None or not torch.is_grad_enabled() or not module.training:
            return
        self._pending = None
        features = output[0] if isinstance(output, (tuple, list)) else output
        if not isinstance(features, Tensor):
            raise TypeError(f"the hooked layer must output a tensor; got {type(features).__name__}")
        announced = pending.view.index.shape[0] if pending.view.index is not None else -1
        if features.shape[0] != announced:
            raise ValueError(
                f"the training forward after cache.expect(...) must see the announced batch: expected "
                f"{announced} samples; got {features.shape[0]} (call expect() right before "
                "the training forward of exactly those samples)"
            )
        extractor = self.extractor
        if extractor is None:  # detach() clears the pending batch, so this cannot happen
            raise RuntimeError("the attention cache's hook fired without an extractor")
        with torch.no_grad():
            self.write(pending.view, extractor.attention_logits(features.detach()), pending.observed)

    # -- argument checks -------------------------------------------------------------------

    def check_view(self, view: View | Tensor, batch_size: int | None = None) -> View:
        """The view with its index checked against this cache (once per view object).

        Args:
            view: a :class:`~gg_augment.View` with ``index``, or a bare index tensor.
            batch_size: B of the images; defaults to the length of the index.

        Raises:
            ValueError, TypeError: naming the field, what was expected and what came.
        """
        last = self._last_checked
        if last is not None and view is last[0] and batch_size in (None, last[1]):
            # GCut reads, then announces, the same view object: check (and sync) once.
            return last[2]
        checked = as_view(view)
        if checked is None or checked.index is None:
            raise ValueError("the attention cache needs the dataset indices: pass view=View(index=...) (B,); got none")
        if batch_size is None:
            index = check_tensor(checked.index, "index")
            if index.ndim != 1:
                raise ValueError(f"index must have shape (B,); got {tuple(index.shape)}")
            batch_size = index.shape[0]
        validated = checked.validated(
            batch_size, self.num_samples, require_index=True, validate_values=self.validate_args
        )
        if isinstance(view, View) and validated is not view:  # remember real checks only
            self._last_checked = (view, batch_size, validated)
        return validated

    def _check_observed(self, observed: Tensor | None, batch_size: int) -> Tensor | None:
        if observed is None:
            return None
        observed = check_tensor(observed, "observed")
        if observed.ndim != 3 or observed.shape[0] != batch_size or 0 in observed.shape[1:]:
            raise ValueError(f"observed must have shape ({batch_size}, gh, gw); got {tuple(observed.shape)}")
        if observed.dtype != torch.bool:
            raise TypeError(f"observed must be a bool tensor; got {observed.dtype}")
        return observed

    # -- write -----------------------------------------------------------------------------

    def expect(self, view: View | Tensor, observed: Tensor | None = None) -> None:
        """Announce the batch that the next training forward will show the model.

        :class:`~gg_augment.GCut` (through its cached attention source) calls this right after
        cutting, with the cells it did not cut as ``observed``. Without GCut (plain training
        that should still fill the cache), call ``cache.expect(view)`` before the forward:
        every cell of the view counts as observed. A second call before the forward replaces
        the first.

        Args:
            view: the batch's :class:`~gg_augment.View` (index, and the crop boxes and flips
                if the images are crops), or a bare index tensor for whole images.
            observed: which cells of the view's grid the model sees; None = all.

        Shape:
            - view.index: (B,); view.boxes: (B, 4); view.flips: (B,) bool;
              observed: (B, gh, gw) bool
        """
        checked = self.check_view(view)
        observed = self._check_observed(observed, check_tensor(checked.index, "index").shape[0])
        if self.extractor is None or not self.attached:
            raise ValueError(
                "cache.expect(...) needs the cache attached to the model being trained: call "
                "cache.attach(model) (GCut(model, cache=...) does it for you)"
            )
        self._pending = _Pending(checked, observed)

    @torch.no_grad()
    def write(self, view: View | Tensor, logits: Tensor, observed: Tensor | None = None) -> None:
        """Blend attention logits seen in a view into the cache (the hook's write, by hand).

        Args:
            view: the batch's :class:`~gg_augment.View` or a bare index tensor.
            logits: attention logits of the view, e.g. ``extractor.features_to_logits(f)``
                or ``extractor.extract(x)``; resized (nearest) to the view's grid.
            observed: cells of the view's grid that were visible; None = all. Its (gh, gw)
                is the view's grid; without it the cache's own grid is used.

        Shape:
            - view.index: (B,); logits: (B, h, w); observed: (B, gh, gw) bool
        """
        view = self.check_view(view)
        index = check_tensor(view.index, "index")
        batch = index.shape[0]
        logits = check_tensor(logits, "logits")
        if logits.ndim != 3 or logits.shape[0] != batch:
            raise ValueError(f"logits must have shape ({batch}, h, w); got {tuple(logits.shape)}")
        observed = self._check_observed(observed, batch)
        if batch == 0:
            return
        device = self.values.device
        index = index.to(device)
        view_grid = tuple(observed.shape[1:]) if observed is not None else self.grid_size
        logits = logits.detach().to(device=device, dtype=torch.float32)
        if tuple(logits.shape[1:]) != view_grid:
            logits = F.interpolate(logits.unsqueeze(1), size=view_grid, mode="nearest").squeeze(1)
        if view.is_whole_image and view_grid == self.grid_size:
            fresh = logits
            update = observed.to(device) if observed is not None else torch.ones_like(logits, dtype=torch.bool)
        else:
            seen_mask = (
                observed.to(device=device, dtype=torch.float32)
                if observed is not None
                else torch.ones_like(logits)
            )
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
        old = self.values.index_select(0, index).float()
        blended = torch.where(
            torch.isnan(old), fresh, self.momentum * old + (1.0 - self.momentum) * fresh
        )
        new = torch.where(update, blended, old)
        # One fused write per buffer. Duplicate indices in a batch: one of them wins.
        self.values.index_put_((index,), new.to(self.values.dtype))
        touched = update.flatten(1).any(dim=1)
        self.seen.index_put_((index,), self.seen.index_select(0, index) | touched)
        self.updated.index_put_((index,), self.updated.index_select(0, index) | touched)

    # -- read ------------------------------------------------------------------------------

    def read(
        self, view: View | Tensor, grid_size: int | tuple[int, int] | None = None
    ) -> tuple[Tensor, Tensor]:
        """The cached attention of a batch, in each sample's view, as probabilities.

        One ``index_select`` gathers the maps; one batched ``grid_sample`` warps them into
        the views (skipped when the geometry is the identity and the grid matches); a softmax
        over the view cells normalises them to sum 1.

        Args:
            view: the batch's :class:`~gg_augment.View` (see the module docs for the cost of
                omitting its boxes when the images are crops), or a bare index tensor.
            grid_size: (gh, gw) of the output; defaults to the cache's grid.

        Returns:
            ``(attention, seen)``: float32 probabilities and whether the view held any
            written value; both on the cache's device. For unseen samples the map is
            uniform.

        Shape:
            - view.index: (B,); view.boxes: (B, 4); view.flips: (B,) bool
            - output: (B, gh, gw) and (B,) bool
        """
        view = self.check_view(view)
        out_size = pair(grid_size, "grid_size") if grid_size is not None else self.grid_size
        index = check_tensor(view.index, "index")
        device = self.values.device
        stored = self.values.index_select(0, index.to(device)).float()
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
        self._pending = None

    @torch.no_grad()
    def sync(self, process_group: object | None = None, chunk_size: int = 65536) -> None:
        """Make every rank's cache identical (a collective: call it on all ranks).

        Call it at the end of each epoch (and before saving a checkpoint). For every sample
        written since the last sync on at least one rank, the ranks that wrote it contribute
        their map (cellwise mean where several did, ignoring cells they never wrote); the
        other samples keep their maps, which are identical on all ranks if the caches started
        identical (fresh, or loaded from the same checkpoint). One ``all_reduce`` of a float32
        (chunk, 2·gh·gw + 1) buffer per chunk of ``chunk_size`` samples. Clears ``updated``.

        Args:
            process_group: the ``torch.distributed`` group; None is the default group.
            chunk_size: samples per collective, to bound the temporary memory.
        """
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            raise RuntimeError("AttentionCache.sync() needs an initialised torch.distributed process group")
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(f"chunk_size must be an int >= 1; got {chunk_size!r}")
        cells = self.grid_size[0] * self.grid_size[1]
        for start in range(0, self.num_samples, chunk_size):
            stop = min(start + chunk_size, self.num_samples)
            values = self.values[start:stop].float().view(-1, cells)
            updated = self.updated[start:stop]
            mine = updated.unsqueeze(1) & ~torch.isnan(values)
            payload = torch.cat(
                [torch.where(mine, values, 0.0), mine.float(), updated.float().unsqueeze(1)], dim=1
            )
            dist.all_reduce(payload, op=dist.ReduceOp.SUM, group=process_group)
            total, count, writers = payload[:, :cells], payload[:, cells : 2 * cells], payload[:, -1:]
            merged = torch.where(count > 0, total / count.clamp_min(1.0), float("nan"))
            merged = torch.where(writers > 0, merged, values)
            self.values[start:stop] = merged.view(-1, *self.grid_size).to(self.values.dtype)
            self.seen[start:stop] |= writers.squeeze(1) > 0
        self.updated.zero_()

    def _load_from_state_dict(
        self,
        state_dict: dict[str, object],
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
        self._pending = None
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    def extra_repr(self) -> str:
        return (
            f"num_samples={self.num_samples}, grid_size={self.grid_size}, momentum={self.momentum}, "
            f"dtype={str(self.dtype).removeprefix('torch.')}, device={self.device}, "
            f"seen={int(self.seen.sum())}/{self.num_samples}, memory={_format_bytes(self.memory_bytes)}, "
            f"extractor={self.extractor!r}, attached={self.attached}"
        )
