"""``CacheRecorder``: the hook that writes the training forward's attention into the cache.

The hook lives on the attention layer of the model being trained, one per layer (attaching
another recorder to the same layer replaces the previous one), and writes only inside
:meth:`CacheRecorder.recording`, which arms it for exactly one training forward. Nothing is
carried from one call to the next: what to write travels in the arguments of ``recording``.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..view import View
from .cache import AttentionCache
from .extractors import AttentionExtractor

__all__ = ["CacheRecorder", "Warmup"]

# The recorder whose hook sits on each layer: attaching a second one replaces the first, so
# building GCut(model, cache=...) again and again never stacks hooks (or keeps old caches alive).
_RECORDER_ON_LAYER: weakref.WeakKeyDictionary[nn.Module, CacheRecorder] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class Warmup:
    """The maps the warm-up pass computed while sampling, written by the next recording.

    Attributes:
        view: the (checked) view of the rows that paid the extra pass.
        logits: their attention logits (k, h, w), over the whole view.
    """

    view: View
    logits: Tensor


@dataclass(frozen=True)
class _Armed:
    view: View
    observed: Tensor | None


class CacheRecorder:
    """Write what the training forward sees into an :class:`AttentionCache`.

    Args:
        cache: the storage.
        extractor: the attention extractor of the model being trained (its ``layer`` is
            hooked, its reduction turns the features into logits).

    Examples:
        >>> from gg_augment import AttentionCache, RetrievalNet, build_backbone, attention_extractor_for
        >>> model = RetrievalNet(*build_backbone("small"), 16)
        >>> cache = AttentionCache(8, grid_size=4)
        >>> recorder = CacheRecorder(cache, attention_extractor_for(model))
        >>> with recorder.recording(torch.arange(2)):
        ...     codes = model(torch.randn(2, 3, 32, 32))
        >>> cache.seen[:3].tolist()
        [True, True, False]
    """

    def __init__(self, cache: AttentionCache, extractor: AttentionExtractor) -> None:
        if not isinstance(cache, AttentionCache):
            raise TypeError(f"cache must be an AttentionCache; got {type(cache).__name__}")
        if not isinstance(extractor, AttentionExtractor):
            raise TypeError(f"extractor must be an AttentionExtractor; got {type(extractor).__name__}")
        self.cache = cache
        self.extractor = extractor
        self._handle: torch.utils.hooks.RemovableHandle | None = None
        self._armed: _Armed | None = None

    @property
    def attached(self) -> bool:
        """Whether this recorder's hook is on the layer (another recorder may have replaced it)."""
        return self._handle is not None and _RECORDER_ON_LAYER.get(self.extractor.layer) is self

    def attach(self) -> None:
        """Put the hook on the layer, replacing any other recorder's; attached lazily by
        :meth:`recording`, so constructors leave no hook behind."""
        if self.attached:
            return
        layer = self.extractor.layer
        previous = _RECORDER_ON_LAYER.get(layer)
        if previous is not None:
            previous.detach()
        self._handle = layer.register_forward_hook(self._on_forward)
        _RECORDER_ON_LAYER[layer] = self

    def detach(self) -> None:
        """Remove the hook."""
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
        if _RECORDER_ON_LAYER.get(self.extractor.layer) is self:
            del _RECORDER_ON_LAYER[self.extractor.layer]

    @contextmanager
    def recording(
        self, view: View | Tensor, observed: Tensor | None = None, warmup: Warmup | None = None
    ) -> Iterator[None]:
        """Write the warm-up maps now, then the attention of the one training forward inside.

        The training forward must run the hooked layer with gradients enabled and the layer
        in training mode; evaluation passes and ``no_grad`` passes inside are ignored, and a
        second training forward inside writes nothing. Leaving the block without a training
        forward (and without an exception) raises ``RuntimeError``: the cache would silently
        stay empty.

        Args:
            view: the batch's :class:`~gg_augment.View` (or index tensor) as the model sees it.
            observed: (B, gh, gw) bool, the view cells the model sees (not cut); None = all.
            warmup: the warm-up pass's maps, written before the forward (the EMA order of the
                old hidden-state design, so results are unchanged).
        """
        if self._armed is not None:
            raise RuntimeError("recording(...) blocks of one recorder cannot nest")
        checked = self.cache.check_view(view)
        if checked.index is None:  # check_view refuses this already; the check keeps the type narrow
            raise ValueError("recording needs the dataset indices: pass view=View(index=...)")
        armed = _Armed(checked, self.cache.check_observed(observed, checked.index.shape[0]))
        if warmup is not None:
            self.cache.write(warmup.view, warmup.logits)
        self.attach()
        self._armed = armed
        try:
            yield
        finally:
            fired = self._armed is None
            self._armed = None
        if not fired:
            raise RuntimeError(
                f"no training forward through {self.extractor.layer_name!r} inside recording(...): the cache "
                "was not written. Run model(x_aug) inside the block, in train mode with gradients enabled"
            )

    def _on_forward(self, module: nn.Module, _inputs: object, output: object) -> None:
        armed = self._armed
        if armed is None or not torch.is_grad_enabled() or not module.training:
            return
        self._armed = None
        features = output[0] if isinstance(output, (tuple, list)) else output
        if not isinstance(features, Tensor):
            raise TypeError(f"the hooked layer must output a tensor; got {type(features).__name__}")
        expected = armed.view.index.shape[0] if armed.view.index is not None else -1
        if features.shape[0] != expected:
            raise ValueError(
                f"the training forward inside recording(...) must see the recorded batch: expected "
                f"{expected} samples; got {features.shape[0]}"
            )
        with torch.no_grad():
            self.cache.write(armed.view, self.extractor.attention_logits(features.detach()), armed.observed)

    def __repr__(self) -> str:
        return f"CacheRecorder(extractor={self.extractor!r}, attached={self.attached})"
