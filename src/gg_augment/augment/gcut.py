"""``GCut``: cut part of what the model looks at, and score what is left."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from .._checks import (
    check_attention,
    check_choice,
    check_image_batch,
    check_positive,
    check_range,
    pair,
)
from ..attention.extractors import AttentionExtractor, attention_extractor_for
from ..functional._sampling import bernoulli_mask, truncated_half_normal, uniform
from ..functional.cut import attention_to_grid, candidate_cells, gcut, gcut_retention
from ._base import RetentionAugmentation

if TYPE_CHECKING:
    from ..attention.cache import AttentionCache

__all__ = ["GCut"]

_SOURCES = ("forward", "cache", "callable", "argument")


class GCut(RetentionAugmentation):
    """G_cut: attention-guided cutting on a grid, batched, on the input's device.

    1. Attention A (B, gh, gw) sums to 1 per sample: from the model (CNN: channel mean of the
       last feature map; ViT: CLS·patch), from ``attention_fn``, or passed in ``attention=``.
    2. Candidates: ``select="mean"`` keeps cells with A > 1/(gh·gw); ``"topk"`` keeps the
       ceil(keep_ratio·gh·gw) highest. m = number of candidates.
    3. n = floor(|z|·sigma·m), z ~ N(0, 1) truncated exactly so that n ≤ floor(limit·m).
    4. n candidates, chosen uniformly, are set to ``fill`` (nearest upsampling to pixels).
    5. Retention: ``score="attention"``: 1 − Σ A over cut cells; ``"area"``: 1 − n/m;
       m = 0 leaves the sample unchanged with r = 1.

    Where the attention comes from (``attention_source``):
        - ``"forward"``: exact G_cut. One extra forward pass of ``model`` without gradients, in
          eval mode; the model's mode is restored and the pass stops after the hooked layer.
        - ``"cache"``: approximate G_cut from an :class:`~gg_augment.AttentionCache` filled by
          the normal training forward pass (no extra pass); needs ``index=`` per call, and
          ``view_boxes=``/``flips=`` when the batch is a crop/flip view (e.g. the output of
          :class:`~gg_augment.RandomResizedCropFlip`). Given a model (or extractor) and a
          cache that is not attached yet, GCut attaches the cache to the model's attention
          layer, so that the next training forward writes back the cells it did not cut.
        - ``"callable"``: ``attention_fn(x) -> (B, h, w)`` non-negative map.
        - ``"argument"``: the map must be passed as ``attention=`` on every call.
        An ``attention=`` passed to ``forward`` always takes precedence.

    Args:
        model: the model being trained (for ``"forward"``/``"cache"``). Held by reference,
            not registered as a submodule.
        layer: name of the layer whose output gives the attention; by default ``layer4``
            (torchvision ResNets) or ``encoder`` (torchvision ViT).
        extractor: a ready :class:`AttentionExtractor` instead of ``model``/``layer``.
        attention_source: see above; inferred when None.
        attention_fn: callable attention for ``"callable"``.
        cache: the :class:`~gg_augment.AttentionCache` for ``"cache"``.
        warmup: for ``"cache"``, what to do with samples whose view has no cached value yet:
            ``"forward"`` (an extra pass for those samples only, whose attention also seeds
            the cache), ``"skip"`` (uncut, r = 1) or ``"random"`` (a random map).
        grid_size: (gh, gw) of the cut grid.
        select: ``"mean"`` or ``"topk"``; None picks the extractor's default (mean for CNNs,
            top-k for ViTs, mean otherwise).
        keep_ratio: share of cells that are candidates under ``"topk"``.
        sigma: scale of the cut count, as a fraction of m.
        limit: at most floor(limit·m) cells are cut, in (0, 1].
        fill: value of the cut pixels (0.0 is the mean colour of a normalised input).
        score: ``"attention"`` or ``"area"``.
        p, generator, validate_args: see :class:`RetentionAugmentation`.

    Shape:
        - x: (B, C, H, W) float; attention: (B, h, w) or (B, 1, h, w)
        - output: (B, C, H, W) and retention (B,) in the dtype of x

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> gcut = GCut(grid_size=4, generator=g)
        >>> attention = torch.rand(2, 4, 4)
        >>> x_aug, retention = gcut(torch.randn(2, 3, 16, 16), attention=attention)
        >>> bool(((retention >= 0) & (retention <= 1)).all())
        True
    """

    def __init__(
        self,
        model: nn.Module | None = None,
        *,
        layer: str | nn.Module | None = None,
        extractor: AttentionExtractor | None = None,
        attention_source: str | None = None,
        attention_fn: Callable[[Tensor], Tensor] | None = None,
        cache: AttentionCache | None = None,
        warmup: str = "forward",
        grid_size: int | tuple[int, int] = 12,
        select: str | None = None,
        keep_ratio: float = 0.5,
        sigma: float = 0.5,
        limit: float = 0.5,
        fill: float = 0.0,
        score: str = "attention",
        p: float = 1.0,
        generator: torch.Generator | None = None,
        validate_args: bool = True,
    ) -> None:
        super().__init__(p=p, generator=generator, validate_args=validate_args)
        if extractor is None and model is not None:
            extractor = attention_extractor_for(model, layer)
        elif extractor is not None and not isinstance(extractor, AttentionExtractor):
            raise TypeError(f"extractor must be an AttentionExtractor; got {type(extractor).__name__}")
        if attention_fn is not None and not callable(attention_fn):
            raise TypeError(f"attention_fn must be callable; got {type(attention_fn).__name__}")
        if attention_source is None:
            if cache is not None:
                attention_source = "cache"
            elif attention_fn is not None:
                attention_source = "callable"
            elif extractor is not None:
                attention_source = "forward"
            else:
                attention_source = "argument"
        self.attention_source = check_choice(attention_source, "attention_source", _SOURCES)
        if self.attention_source == "forward" and extractor is None:
            raise ValueError("attention_source='forward' needs model= (or extractor=); got neither")
        if self.attention_source == "callable" and attention_fn is None:
            raise ValueError("attention_source='callable' needs attention_fn=; got None")
        if self.attention_source == "cache":
            # Imported here: the cache module depends on this one's functional helpers.
            from ..attention.cache import AttentionCache

            if not isinstance(cache, AttentionCache):
                raise TypeError(
                    f"attention_source='cache' needs cache=AttentionCache(...); got {type(cache).__name__}"
                )
        self.warmup = check_choice(warmup, "warmup", ("forward", "skip", "random"))
        if self.attention_source == "cache":
            if not cache.attached:  # type: ignore[union-attr]
                if extractor is None:
                    raise ValueError(
                        "attention_source='cache' needs the cache attached to the model being trained: "
                        "pass model= (or extractor=), or call cache.attach(model) first"
                    )
                cache.attach(extractor)  # type: ignore[union-attr]
            if extractor is None:
                extractor = cache.extractor  # type: ignore[union-attr]
        self.extractor = extractor
        self.attention_fn = attention_fn
        self.cache = cache
        self.grid_size = pair(grid_size, "grid_size")
        if select is None:
            select = extractor.default_select if extractor is not None else "mean"
        self.select = check_choice(select, "select", ("mean", "topk"))
        self.keep_ratio = check_range(keep_ratio, "keep_ratio", 0.0, 1.0, low_inclusive=False)
        self.sigma = check_positive(sigma, "sigma")
        self.limit = check_range(limit, "limit", 0.0, 1.0, low_inclusive=False)
        if isinstance(fill, bool) or not isinstance(fill, (int, float)):
            raise TypeError(f"fill must be a float; got {fill!r}")
        self.fill = float(fill)
        self.score = check_choice(score, "score", ("attention", "area"))

    # -- attention -----------------------------------------------------------------------

    def _grid_from_map(self, attention: Tensor, batch: int, *, logits: bool, name: str) -> Tensor:
        attention = check_attention(
            attention, batch, name, validate_values=self.validate_args and not logits
        )
        return attention_to_grid(attention.detach(), self.grid_size, logits=logits)

    def compute_attention(
        self,
        x: Tensor,
        attention: Tensor | None = None,
        index: Tensor | None = None,
        view_boxes: Tensor | None = None,
        flips: Tensor | None = None,
    ) -> Tensor:
        """The normalised attention grid (B, gh, gw), float32, from the configured source."""
        batch = x.shape[0]
        if attention is not None:
            return self._grid_from_map(attention, batch, logits=False, name="attention")
        if self.attention_source == "callable":
            produced = self.attention_fn(x)  # type: ignore[misc]
            logits = bool(getattr(self.attention_fn, "returns_logits", False))
            return self._grid_from_map(produced, batch, logits=logits, name="attention_fn(x)")
        if self.attention_source == "forward":
            return attention_to_grid(self.extractor.extract(x), self.grid_size, logits=True)  # type: ignore[union-attr]
        if self.attention_source == "cache":
            if index is None:
                raise ValueError("attention_source='cache' needs index= (dataset indices, shape (B,)); got None")
            index, view_boxes, flips = self.cache._check_geometry(index, view_boxes, flips, batch)  # type: ignore[union-attr]
            return self._attention_from_cache(x, index, view_boxes, flips)
        raise ValueError(
            "GCut(attention_source='argument') needs attention= on every call; got attention=None"
        )

    def _attention_from_cache(
        self, x: Tensor, index: Tensor, view_boxes: Tensor | None, flips: Tensor | None
    ) -> Tensor:
        """Cached attention for validated index/geometry; the warm-up policy for unseen views."""
        cache = self.cache
        grid, seen = cache._read(index, view_boxes, flips, self.grid_size)  # type: ignore[union-attr]
        grid, seen = grid.to(x.device), seen.to(x.device)
        if self.warmup == "forward":
            # Only the unseen samples pay the extra pass; after the first epoch (almost) none
            # do. This branch syncs on `seen.all()` once per step, the one deliberate host
            # synchronisation of the cache path, the price of an exact warm-up.
            if not bool(seen.all()):
                unseen = torch.nonzero(~seen).squeeze(1)
                logits = self.extractor.extract(x.index_select(0, unseen))  # type: ignore[union-attr]
                fresh = attention_to_grid(logits, self.grid_size, logits=True)
                grid = grid.index_copy(0, unseen, fresh)
                # The pass is paid for: seed the cache with the full map of the view, so the
                # cells cut below (not observed by the training forward) are known next time.
                cache._write(  # type: ignore[union-attr]
                    index.index_select(0, unseen.to(index.device)),
                    logits,
                    None if view_boxes is None else view_boxes.index_select(0, unseen.to(view_boxes.device)),
                    None if flips is None else flips.index_select(0, unseen.to(flips.device)),
                    None,
                )
        elif self.warmup == "random":
            random_grid = uniform((x.shape[0], *self.grid_size), x.device, self._generator_for(x.device, None))
            random_grid = random_grid / random_grid.sum(dim=(1, 2), keepdim=True)
            grid = torch.where(seen.view(-1, 1, 1), grid, random_grid)
        else:  # "skip": a uniform map has no candidate above the mean, so nothing is cut.
            uniform_grid = torch.full_like(grid, 1.0 / (self.grid_size[0] * self.grid_size[1]))
            grid = torch.where(seen.view(-1, 1, 1), grid, uniform_grid)
        return grid

    # -- sample, then apply ------------------------------------------------------------------

    def generate_params(
        self, attention: Tensor, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """Choose the cells to cut from a normalised attention grid.

        Args:
            attention: (B, gh, gw) probability map, e.g. from :meth:`compute_attention`.

        Returns:
            ``attention`` (B, gh, gw) float32; ``candidates`` and ``cut`` (B, gh, gw) bool;
            ``num_cut`` (B,) int64; ``applied`` (B,) bool.
        """
        batch = attention.shape[0]
        device = attention.device
        generator = self._generator_for(device, generator)
        attention = attention.float()
        candidates = candidate_cells(attention, self.select, self.keep_ratio)
        flat_candidates = candidates.flatten(1)
        num_candidates = flat_candidates.sum(dim=1)
        max_cut = torch.floor(self.limit * num_candidates.double())
        # n = floor(|z|·σ·m) ≤ floor(limit·m)  ⇔  |z| < (floor(limit·m) + 1) / (σ·m).
        scale = self.sigma * num_candidates.double()
        upper = torch.where(scale > 0, (max_cut + 1) / scale.clamp_min(1e-12), torch.inf)
        magnitude = truncated_half_normal(upper, device, generator)
        num_cut = torch.minimum(torch.floor(magnitude * scale), max_cut).long()
        applied = bernoulli_mask(self.p, batch, device, generator)
        num_cut = num_cut * applied
        # A uniformly random n-subset of the candidates: rank candidates by random keys.
        keys = uniform(tuple(flat_candidates.shape), device, generator)
        keys = keys.masked_fill(~flat_candidates, 2.0)
        order = torch.argsort(keys, dim=1)
        rank = torch.empty_like(order)
        cells = flat_candidates.shape[1]
        rank.scatter_(1, order, torch.arange(cells, device=device).expand(batch, cells))
        cut = (rank < num_cut.unsqueeze(1)) & flat_candidates
        return {
            "attention": attention,
            "candidates": candidates,
            "cut": cut.view_as(candidates),
            "num_cut": num_cut,
            "applied": applied,
        }

    def apply(self, x: Tensor, params: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """Replay: cut the given cells and score them (no randomness)."""
        x = check_image_batch(x)
        cut = params["cut"]
        if cut.ndim != 3 or cut.shape[0] != x.shape[0]:
            raise ValueError(
                f"params['cut'] must have shape ({x.shape[0]}, gh, gw); got {tuple(cut.shape)}"
            )
        retention = gcut_retention(
            cut, params.get("attention"), candidates=params.get("candidates"), score=self.score
        )
        return gcut(x, cut, self.fill), retention.to(x.dtype)

    def forward(
        self,
        x: Tensor,
        attention: Tensor | None = None,
        index: Tensor | None = None,
        view_boxes: Tensor | None = None,
        params: dict[str, Tensor] | None = None,
        *,
        flips: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Cut and score a batch.

        Args:
            x: images.
            attention: a non-negative map that overrides the configured source.
            index: dataset indices of the samples (the cache's keys).
            view_boxes: per-sample crop boxes (y0, x0, y1, x1) in [0, 1] of the original
                image, for the cache's geometry alignment; None = the whole image.
            params: replay a previous draw instead of sampling.
            flips: per-sample left–right flips applied after the crop; None = no flips.

        Shape:
            - x: (B, C, H, W); attention: (B, h, w); index: (B,); view_boxes: (B, 4);
              flips: (B,) bool
            - output: (B, C, H, W) and retention (B,)
        """
        x = check_image_batch(x)
        uses_cache = self.attention_source == "cache" and index is not None
        if uses_cache:
            # Validate once; the cache's read and expect below reuse the checked tensors.
            index, view_boxes, flips = self.cache._check_geometry(index, view_boxes, flips, x.shape[0])  # type: ignore[union-attr]
        if params is None:
            if uses_cache and attention is None:
                grid = self._attention_from_cache(x, index, view_boxes, flips)  # type: ignore[arg-type]
            else:
                grid = self.compute_attention(x, attention, index, view_boxes, flips)
            params = self.generate_params(grid)
        x_aug, retention = self.apply(x, params)
        if uses_cache:
            # The training forward pass that follows observes every cell that was not cut.
            self.cache._set_pending(index, view_boxes, flips, ~params["cut"])  # type: ignore[union-attr]
        return x_aug, retention

    def extra_repr(self) -> str:
        parts = [f"attention_source={self.attention_source!r}"]
        if self.extractor is not None:
            parts.append(f"extractor={self.extractor!r}")
        if self.attention_source == "cache":
            parts.append(f"warmup={self.warmup!r}")
        parts += [
            f"grid_size={self.grid_size}",
            f"select={self.select!r}",
            f"keep_ratio={self.keep_ratio}" if self.select == "topk" else "",
            f"sigma={self.sigma}",
            f"limit={self.limit}",
            f"fill={self.fill}",
            f"score={self.score!r}",
            f"p={self.p}",
        ]
        return ", ".join(p for p in parts if p)

