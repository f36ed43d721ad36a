"""Where G_cut's attention comes from: one small protocol, four implementations.

A source turns a batch (and the :class:`~gg_augment.View` it was cut from) into the
normalised attention grid that :class:`~gg_augment.GCut` cuts on:

- :class:`ForwardAttention`: one extra forward pass of the model being trained (exact G_cut);
- :class:`CachedAttention`: the maps an :class:`AttentionCache` collected from earlier
  training forwards (approximate G_cut); it owns the warm-up policy for unseen samples;
- :class:`CallableAttention`: any ``attention_fn(x) -> (B, h, w)``;
- :class:`GivenAttention`: a map the caller already has.

Drawing attention has no side effects. :meth:`AttentionSource.draw` returns the grid, the
checked view and, for the cached source's warm-up, the maps its extra pass computed; the
training step hands them back to :meth:`CachedAttention.recording` around its forward, where
the cache is written (see :class:`~gg_augment.RetentionPipeline`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .._checks import check_attention, check_choice, check_generator
from ..functional._sampling import uniform
from ..functional.cut import attention_to_grid
from ..view import View
from .cache import AttentionCache
from .extractors import AttentionExtractor, attention_extractor_for
from .recorder import CacheRecorder, Warmup

__all__ = [
    "AttentionDraw",
    "AttentionSource",
    "CachedAttention",
    "CallableAttention",
    "ForwardAttention",
    "GivenAttention",
    "attention_source_for",
]

WARMUP_POLICIES = ("forward", "skip", "random")


@dataclass(frozen=True)
class AttentionDraw:
    """What a source returns for one batch.

    Attributes:
        grid: (B, gh, gw) float32 probabilities.
        view: the view as checked by the source (pass it on: it is not checked again).
        warmup: maps the cached source's warm-up pass computed, for the recording to write.
    """

    grid: Tensor
    view: View | None
    warmup: Warmup | None = None


class AttentionSource:
    """The protocol: ``grid(x, view, grid_size)``; :meth:`draw` adds what a recording needs.

    Attributes:
        name: the short name shown as ``attention_source`` in GCut's repr.
        default_select: the candidate rule that suits the source's model family (``"mean"``
            for CNN feature maps, ``"topk"`` for ViT tokens).
    """

    name = "source"
    default_select = "mean"
    native_grid = False

    def grid(self, x: Tensor, view: View | None, grid_size: tuple[int, int] | None) -> Tensor:
        """The attention of each image as a float32 probability map over the cut grid.

        ``grid_size=None`` keeps the map's own grid (a ViT's patches; the cache's grid).

        Shape:
            - x: (B, C, H, W)
            - output: (B, gh, gw), each map summing to 1
        """
        raise NotImplementedError

    def draw(self, x: Tensor, view: View | None, grid_size: tuple[int, int] | None) -> AttentionDraw:
        """:meth:`grid` with the view passed on; no side effects."""
        return AttentionDraw(self.grid(x, view, grid_size), view)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _map_to_grid(
    attention: object, batch: int, grid_size: tuple[int, int] | None, *, logits: bool, validate: bool, name: str
) -> Tensor:
    checked = check_attention(attention, batch, name, validate_values=validate and not logits)
    return attention_to_grid(checked.detach(), grid_size, logits=logits)


class GivenAttention(AttentionSource):
    """A map passed in by the caller: non-negative (B, h, w) or (B, 1, h, w), any h, w.

    GCut builds one for every ``attention=`` it receives; the map is resized (nearest) to the
    grid and normalised to sum 1.
    """

    name = "argument"

    def __init__(self, attention: Tensor, *, validate_args: bool = True) -> None:
        self.attention = attention
        self.validate_args = bool(validate_args)

    def grid(self, x: Tensor, view: View | None, grid_size: tuple[int, int] | None) -> Tensor:
        return _map_to_grid(
            self.attention, x.shape[0], grid_size, logits=False, validate=self.validate_args, name="attention"
        )


class MissingAttention(AttentionSource):
    """The source of a GCut built without one: every call must pass ``attention=``."""

    name = "argument"

    def grid(self, x: Tensor, view: View | None, grid_size: tuple[int, int] | None) -> Tensor:
        raise ValueError(
            "GCut has no attention source (no model, attention_fn or cache), so it needs attention= on "
            "every call; got attention=None"
        )


class CallableAttention(AttentionSource):
    """``attention_fn(x) -> (B, h, w)``: a non-negative map, or logits when the callable has
    ``returns_logits = True`` (an :class:`AttentionExtractor` does)."""

    name = "callable"

    def __init__(self, attention_fn: Callable[[Tensor], Tensor], *, validate_args: bool = True) -> None:
        if not callable(attention_fn):
            raise TypeError(f"attention_fn must be callable; got {type(attention_fn).__name__}")
        self.attention_fn = attention_fn
        self.validate_args = bool(validate_args)

    def grid(self, x: Tensor, view: View | None, grid_size: tuple[int, int] | None) -> Tensor:
        logits = bool(getattr(self.attention_fn, "returns_logits", False))
        return _map_to_grid(
            self.attention_fn(x), x.shape[0], grid_size, logits=logits, validate=self.validate_args,
            name="attention_fn(x)",
        )

    def __repr__(self) -> str:
        return f"CallableAttention({getattr(self.attention_fn, '__name__', type(self.attention_fn).__name__)})"


class ForwardAttention(AttentionSource):
    """Exact G_cut: one extra forward pass without gradients, in eval mode, per batch.

    The extractor restores the model's train/eval mode and stops the pass after the hooked
    layer, so the layers after it cost nothing.
    """

    name = "forward"

    def __init__(self, extractor: AttentionExtractor) -> None:
        if not isinstance(extractor, AttentionExtractor):
            raise TypeError(f"extractor must be an AttentionExtractor; got {type(extractor).__name__}")
        self.extractor = extractor
        self.default_select = extractor.default_select
        self.native_grid = extractor.native_grid

    def grid(self, x: Tensor, view: View | None, grid_size: tuple[int, int] | None) -> Tensor:
        return attention_to_grid(self.extractor.extract(x), grid_size, logits=True)

    def __repr__(self) -> str:
        return f"ForwardAttention({self.extractor!r})"


class CachedAttention(AttentionSource):
    """Approximate G_cut: attention from an :class:`AttentionCache`, with no extra pass.

    The cache is filled by the normal training forward inside :meth:`recording`. A sample
    never written yet follows ``warmup``:

    - ``"forward"``: an extra pass for those samples only; the recording also writes its map
      into the cache (the pass is paid for, and the cells cut next are then known too);
    - ``"skip"``: leave it uncut (a uniform map has no candidate above the mean), r = 1;
    - ``"random"``: a random map.

    Which samples were never written is read from the cache's host-side record when the
    view's index is a CPU tensor: no host synchronisation. A sample written before whose
    current view holds none of its written cells (possible with small crops) gets a uniform
    map, as under ``"skip"``.

    Args:
        cache: the storage.
        extractor: the extractor of the model being trained (the hooked layer, and the
            ``"forward"`` warm-up pass).
        warmup: the policy above.
        generator: the generator of the ``"random"`` warm-up maps.
    """

    name = "cache"

    def __init__(
        self,
        cache: AttentionCache,
        extractor: AttentionExtractor,
        *,
        warmup: str = "forward",
        generator: torch.Generator | None = None,
    ) -> None:
        if not isinstance(cache, AttentionCache):
            raise TypeError(f"cache must be an AttentionCache; got {type(cache).__name__}")
        if not isinstance(extractor, AttentionExtractor):
            raise TypeError(
                "the approximate G_cut needs the model being trained: pass model= (or extractor=); "
                f"got extractor={type(extractor).__name__}"
            )
        self.cache = cache
        self.extractor = extractor
        self.default_select = extractor.default_select
        self.native_grid = extractor.native_grid
        self.warmup = check_choice(warmup, "warmup", WARMUP_POLICIES)
        self.generator = check_generator(generator)
        # The hook goes on the layer at the first recording, not here: a constructor that
        # fails later leaves nothing attached.
        self.recorder = CacheRecorder(cache, extractor)

    def grid(self, x: Tensor, view: View | None, grid_size: tuple[int, int] | None) -> Tensor:
        return self.draw(x, view, grid_size).grid

    def draw(self, x: Tensor, view: View | None, grid_size: tuple[int, int] | None) -> AttentionDraw:
        if view is None:
            raise ValueError(
                "GCut with an attention cache needs view= (a gg_augment.View with the dataset "
                "indices, or the index tensor itself); got None"
            )
        view = self.cache.check_view(view, x.shape[0])
        grid_size = grid_size if grid_size is not None else self.cache.grid_size
        grid, _known = self.cache.read(view, grid_size)
        grid = grid.to(x.device)
        # Decided on the host (see the class docs): no device read, whatever the policy.
        unseen = self.cache.unseen_rows(view)
        if self.warmup == "random":
            # Drawn for the whole batch on every call, so the generator advances the same way
            # whatever the cache holds.
            generator = check_generator(self.generator, x.device)
            replacement = uniform(tuple(grid.shape), x.device, generator)
            replacement = replacement / replacement.sum(dim=(1, 2), keepdim=True)
            rows = unseen.to(x.device, non_blocking=True)
            return AttentionDraw(grid.index_copy(0, rows, replacement.index_select(0, rows)), view)
        if unseen.numel() == 0:
            return AttentionDraw(grid, view)
        rows = unseen.to(x.device, non_blocking=True)
        if self.warmup == "skip":
            uniform_rows = torch.full((rows.shape[0], *grid.shape[1:]), 1.0 / (grid.shape[1] * grid.shape[2]), device=x.device)
            return AttentionDraw(grid.index_copy(0, rows, uniform_rows), view)
        # "forward": only the unseen samples pay the extra pass; after the first epoch none do.
        subset = x.index_select(0, rows)
        if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
            subset = subset.contiguous(memory_format=torch.channels_last)
        logits = self.extractor.extract(subset)
        grid = grid.index_copy(0, rows, attention_to_grid(logits, grid_size, logits=True))
        return AttentionDraw(grid, view, Warmup(view.select(unseen), logits))

    @contextmanager
    def recording(
        self, view: View | Tensor, observed: Tensor | None = None, warmup: Warmup | None = None
    ) -> Iterator[None]:
        """The training forward inside writes the cache: see :meth:`CacheRecorder.recording`."""
        with self.recorder.recording(view, observed, warmup):
            yield

    def __repr__(self) -> str:
        return f"CachedAttention(warmup={self.warmup!r}, extractor={self.extractor!r})"


def attention_source_for(
    model: nn.Module | None = None,
    *,
    layer: str | nn.Module | None = None,
    definition: str = "mean",
    temperature: float = 1.0,
    extractor: AttentionExtractor | None = None,
    attention_source: str | None = None,
    attention_fn: Callable[[Tensor], Tensor] | None = None,
    cache: AttentionCache | None = None,
    warmup: str = "forward",
    generator: torch.Generator | None = None,
    validate_args: bool = True,
) -> AttentionSource:
    """Build a source from GCut's short forms.

    ``definition`` and ``temperature`` configure the extractor built from ``model`` (see
    :mod:`gg_augment.attention.extractors`). ``attention_source`` is inferred when None: ``"cache"`` with a cache, ``"callable"`` with
    ``attention_fn``, ``"forward"`` with a model or extractor, else ``"argument"`` (the map
    comes with every call).
    """
    if extractor is None and model is not None:
        extractor = attention_extractor_for(model, layer, definition=definition, temperature=temperature)
    elif extractor is not None and not isinstance(extractor, AttentionExtractor):
        raise TypeError(f"extractor must be an AttentionExtractor; got {type(extractor).__name__}")
    if attention_source is None:
        if cache is not None:
            attention_source = "cache"
        elif attention_fn is not None:
            attention_source = "callable"
        elif extractor is not None:
            attention_source = "forward"
        else:
            attention_source = "argument"
    attention_source = check_choice(attention_source, "attention_source", ("forward", "cache", "callable", "argument"))
    if attention_source == "forward":
        if extractor is None:
            raise ValueError("attention_source='forward' needs model= (or extractor=); got neither")
        return ForwardAttention(extractor)
    if attention_source == "cache":
        if not isinstance(cache, AttentionCache):
            raise TypeError(f"attention_source='cache' needs cache=AttentionCache(...); got {type(cache).__name__}")
        if extractor is None:
            raise ValueError("attention_source='cache' needs the model being trained: pass model= (or extractor=); got neither")
        return CachedAttention(cache, extractor, warmup=warmup, generator=generator)
    if attention_source == "callable":
        if attention_fn is None:
            raise ValueError("attention_source='callable' needs attention_fn=; got None")
        return CallableAttention(attention_fn, validate_args=validate_args)
    return MissingAttention()
