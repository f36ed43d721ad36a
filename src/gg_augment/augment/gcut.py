"""``GCut``: cut part of what the model looks at, and score what is left."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from .._checks import (
    check_attention,
    check_choice,
    check_image_batch,
    check_range,
    pair,
)
from ..attention.cache import AttentionCache
from ..attention.extractors import AttentionExtractor
from ..attention.sources import (
    AttentionDraw,
    AttentionSource,
    CachedAttention,
    GivenAttention,
    attention_source_for,
)
from ..functional._sampling import truncated_half_normal, uniform
from ..functional.cut import candidate_cells, gcut
from ..view import View, as_view
from ._base import BatchShape, RetentionAugmentation, param

__all__ = ["GCut"]


class GCut(RetentionAugmentation):
    """G_cut: attention-guided cutting on a grid, batched, on the input's device.

    1. Attention A (B, gh, gw) sums to 1 per sample, from the attention source.
    2. Candidates: ``select="mean"`` keeps cells with A > 1/(gh·gw); ``"topk"`` keeps the
       ceil(keep_ratio·gh·gw) highest. m = number of candidates.
    3. n = floor(|z|·sigma·m), z ~ N(0, 1) truncated exactly so that n ≤ floor(limit·m).
    4. n candidates, chosen uniformly, are set to ``fill`` (nearest upsampling to pixels).
    5. Retention: ``score="attention"``: 1 − Σ A over cut cells; ``"area"``: 1 − n/m;
       m = 0 leaves the sample unchanged with r = 1.

    Where the attention comes from is an :class:`~gg_augment.attention.AttentionSource`,
    given as ``source=`` or built from the short forms (``attention_source``, shown in the
    repr, is inferred when None):

    - ``"forward"`` (``GCut(model)``): exact G_cut, one extra forward pass without gradients
      in eval mode (:class:`~gg_augment.attention.ForwardAttention`);
    - ``"cache"`` (``GCut(model, cache=cache)``): approximate G_cut from an
      :class:`~gg_augment.AttentionCache` filled by the training forward; every call needs
      ``view=`` with the dataset indices (:class:`~gg_augment.attention.CachedAttention`,
      which owns the ``warmup`` policy). The cache is written only inside
      ``source.recording(...)``: use :meth:`cut_and_record` (or
      :meth:`RetentionPipeline.augment <gg_augment.RetentionPipeline.augment>`); a plain call
      warns that nothing is written;
    - ``"callable"`` (``attention_fn=``): a non-negative ``(B, h, w)`` map per batch;
    - ``"argument"``: no source; the map comes as ``attention=`` with every call.

    An ``attention=`` passed to ``forward`` always takes precedence over the source.

    Args:
        model: the model being trained (for ``"forward"``/``"cache"``). Held by reference,
            not registered as a submodule.
        source: a ready attention source; excludes the short forms below.
        layer: name of the layer whose output gives the attention; by default ``layer4``
            (torchvision ResNets) or ``encoder`` (torchvision ViT).
        definition: how a CNN feature map becomes attention: ``"mean"`` (the authors'
            channel mean) or ``"energy"`` (attention transfer's Σ_c A_c², scaled by 1/C).
        temperature: the softmax temperature of the model's attention logits, > 0.
        extractor: a ready :class:`AttentionExtractor` instead of ``model``/``layer``.
        attention_source: ``"forward"``, ``"cache"``, ``"callable"`` or ``"argument"``.
        attention_fn: callable attention for ``"callable"``.
        cache: the :class:`~gg_augment.AttentionCache` for ``"cache"``.
        warmup: for ``"cache"``, the policy for samples with no cached value yet:
            ``"forward"``, ``"skip"`` or ``"random"``.
        grid_size: (gh, gw) of the cut grid. None (the default) is the model's own patch grid
            for ViT sources (the authors' 7×7 for ``vit_b_32`` at 224 px: no resizing) and 12×12
            otherwise.
        select: ``"mean"`` or ``"topk"``; None picks the source's default (mean for CNNs,
            top-k for ViTs, mean otherwise).
        keep_ratio: share of cells that are candidates under ``"topk"``.
        sigma: scale of the cut count, as a fraction of m, in [0.01, 100].
        limit: at most floor(limit·m) cells are cut, in (0, 1]; limit·gh·gw must be >= 1.
        fill: value of the cut pixels, finite (0.0 is the mean colour of a normalised input).
        score: ``"attention"`` or ``"area"``.
        p: probability that a sample is augmented; the others pass with r = 1.
        count_rule: ``"truncated"`` (step 3 above) or ``"authors"``, the GG code's rule:
            x = z·floor(sigma·m), redrawn while |x| > limit·m, n = floor(|x|) (drawn here by
            inverse CDF, no loop). It cuts less: mean n/m at m = 4 is 0.110 against 0.192, and
            with sigma = limit = 0.5 an even m never loses m/2 cells.
        generator: the source of every random draw (default: torch's global RNG).
        validate_args: check inputs and outputs (host syncs on CUDA; off for torch.compile).

    Shape:
        - x: (B, C, H, W) float; attention: (B, h, w) or (B, 1, h, w); view: a
          :class:`~gg_augment.View` of B samples (or their (B,) index tensor)
        - output: (B, C, H, W) and retention (B,) in the dtype of x

    Examples:
        >>> g = torch.Generator().manual_seed(0)
        >>> gcut = GCut(grid_size=4, generator=g)
        >>> attention = torch.rand(2, 4, 4)
        >>> x_aug, retention = gcut(torch.randn(2, 3, 16, 16), attention=attention)
        >>> bool(((retention >= 0) & (retention <= 1)).all())
        True
    """

    context_keys = ("attention", "view")

    def __init__(
        self,
        model: nn.Module | None = None,
        *,
        source: AttentionSource | None = None,
        layer: str | nn.Module | None = None,
        definition: str = "mean",
        temperature: float = 1.0,
        extractor: AttentionExtractor | None = None,
        attention_source: str | None = None,
        attention_fn: Callable[[Tensor], Tensor] | None = None,
        cache: AttentionCache | None = None,
        warmup: str = "forward",
        grid_size: int | tuple[int, int] | None = None,
        select: str | None = None,
        keep_ratio: float = 0.5,
        sigma: float = 0.5,
        limit: float = 0.5,
        fill: float = 0.0,
        score: str = "attention",
        p: float = 1.0,
        generator: torch.Generator | None = None,
        validate_args: bool = True,
        count_rule: str = "truncated",
    ) -> None:
        super().__init__(p=p, generator=generator, validate_args=validate_args)
        if source is None:
            source = attention_source_for(
                model, layer=layer, definition=definition, temperature=temperature, extractor=extractor,
                attention_source=attention_source,
                attention_fn=attention_fn, cache=cache, warmup=warmup, generator=self.generator,
                validate_args=self.validate_args,
            )
        elif not isinstance(source, AttentionSource):
            raise TypeError(f"source must be an AttentionSource; got {type(source).__name__}")
        elif any(v is not None for v in (model, layer, extractor, attention_source, attention_fn, cache)):
            raise ValueError("pass either source= or the short forms (model, layer, extractor, attention_source, attention_fn, cache); got both")
        self.source = source
        # Registered so that the cache travels with .to() and the module's state_dict.
        self.cache: AttentionCache | None = getattr(source, "cache", None)
        self.grid_size: tuple[int, int] | None = None
        if grid_size is not None or not source.native_grid:
            self.grid_size = pair(grid_size if grid_size is not None else 12, "grid_size")
            if self.grid_size[0] * self.grid_size[1] < 2:
                raise ValueError(f"grid_size must have at least 2 cells to cut among; got {grid_size!r}")
        self.select = check_choice(select if select is not None else source.default_select, "select", ("mean", "topk"))
        self.keep_ratio = check_range(keep_ratio, "keep_ratio", 0.0, 1.0, low_inclusive=False)
        # Beyond 100 the cut count is already uniform on 0..floor(limit·m) (at 1e300 the sampler
        # would collapse to no cut); below 0.01 a 144-cell grid is almost never cut.
        self.sigma = check_range(sigma, "sigma", 0.01, 100.0)
        self.limit = check_range(limit, "limit", 0.0, 1.0, low_inclusive=False)
        if self.grid_size is not None and self.limit * self.grid_size[0] * self.grid_size[1] < 1:
            raise ValueError(
                f"limit={self.limit} lets no cell be cut on a {self.grid_size[0]}x{self.grid_size[1]} grid "
                "(floor(limit·m) = 0 for every candidate count m); raise limit or the grid size"
            )
        if isinstance(fill, bool) or not isinstance(fill, (int, float)):
            raise TypeError(f"fill must be a float; got {fill!r}")
        self.fill = check_range(fill, "fill", -math.inf, math.inf)
        self.score = check_choice(score, "score", ("attention", "area"))
        self.count_rule = check_choice(count_rule, "count_rule", ("truncated", "authors"))

    @property
    def attention_source(self) -> str:
        """The source's short name: ``"forward"``, ``"cache"``, ``"callable"`` or ``"argument"``."""
        return self.source.name

    def compute_attention(
        self, x: Tensor, attention: Tensor | None = None, view: View | Tensor | None = None
    ) -> Tensor:
        """The normalised attention grid (B, gh, gw), float32: ``attention`` if given, else
        the source's. No side effects (a cached source's warm-up maps are not written)."""
        return self.draw_attention(check_image_batch(x), attention, view).grid

    def draw_attention(
        self, x: Tensor, attention: Tensor | None = None, view: View | Tensor | None = None
    ) -> AttentionDraw:
        """The attention grid with the checked view and any warm-up maps (see
        :class:`~gg_augment.attention.AttentionDraw`). The view must describe the B images
        (a (B,) integer index; boxes and flips of B), whatever the source."""
        checked = as_view(view)
        if checked is not None:
            checked = checked.validated(x.shape[0], validate_values=False)
        source = self.source if attention is None else GivenAttention(attention, validate_args=self.validate_args)
        return source.draw(x, checked, self.grid_size)

    def cut_and_record(
        self, x: Tensor, view: View | Tensor | None = None
    ) -> tuple[Tensor, Tensor, AttentionDraw, Tensor]:
        """``forward(x, view=view)`` that also returns what a recording needs, no side effects.

        Returns:
            ``(x_aug, retention, draw, observed)``: ``draw`` holds the checked view and the
            warm-up maps; ``observed`` (B, gh, gw) bool are the cells left uncut. Pass them to
            ``self.source.recording(draw.view, observed, draw.warmup)`` around the training
            forward (:class:`~gg_augment.RetentionPipeline` does it).
        """
        x = check_image_batch(x, validate_values=self.validate_args)
        self._check_grid_fits(x)
        drawn = self.draw_attention(x, None, view)
        params = self.generate_params(x.shape, x.device, None, attention=drawn.grid)
        x_aug, retention = self.transform(x, params)
        return x_aug, retention, drawn, ~params["cut"]

    # -- sample, then apply ------------------------------------------------------------------

    def _check_grid_fits(self, x: Tensor) -> None:
        if self.grid_size is None:  # the model's own grid is never finer than its input
            return
        gh, gw = self.grid_size
        if gh > x.shape[2] or gw > x.shape[3]:
            raise ValueError(
                f"grid_size {self.grid_size} is finer than the images ({x.shape[2]}x{x.shape[3]}): some cells "
                "would cover no pixel and cutting them would change nothing; use a grid_size no larger "
                "than the image side"
            )

    def sampler_inputs(self, x: Tensor, context: Mapping[str, Any]) -> dict[str, Tensor]:
        self._check_grid_fits(x)
        if isinstance(self.source, CachedAttention) and context.get("attention") is None:
            warnings.warn(
                "GCut with an attention cache was called without a recording: the cache is read but "
                "never written, so every sample stays unseen (with warmup='forward' each step pays "
                "the extra pass). Use RetentionPipeline.augment(...) and `with pipeline.recording(batch):` "
                "around the training forward",
                UserWarning,
                stacklevel=5,  # the caller of gcut(...), past nn.Module.__call__ and forward
            )
        return {"attention": self.compute_attention(x, context.get("attention"), context.get("view"))}

    def check_params(self, x: Tensor, params: dict[str, Tensor]) -> None:
        self._check_grid_fits(x)
        cut = param(params, "cut")
        grid = self.grid_size if self.grid_size is not None else tuple(cut.shape[1:])
        expected = (x.shape[0], *grid)
        if tuple(cut.shape) != expected:
            raise ValueError(f"params['cut'] must have shape {expected} (B, *grid_size); got {tuple(cut.shape)}")
        if cut.dtype != torch.bool:
            raise TypeError(f"params['cut'] must be a bool tensor; got {cut.dtype}")
        if self.score == "attention":
            attention = param(params, "attention")
            if tuple(attention.shape) != expected:
                raise ValueError(f"params['attention'] must have shape {expected}; got {tuple(attention.shape)}")
            check_attention(attention, x.shape[0], "params['attention']", validate_values=self.validate_args)
        candidates = param(params, "candidates")
        if tuple(candidates.shape) != expected or candidates.dtype != torch.bool:
            raise ValueError(
                f"params['candidates'] must be a bool tensor of shape {expected}; got {candidates.dtype} {tuple(candidates.shape)}"
            )
        if self.validate_args and bool((cut & ~candidates).any()):
            raise ValueError("params['cut'] must cut candidate cells only (cut & ~candidates is not empty)")

    def sample(
        self,
        shape: BatchShape,
        device: torch.device,
        generator: torch.Generator | None,
        inputs: Mapping[str, Tensor],
    ) -> dict[str, Tensor]:
        """Choose the cells to cut from a normalised attention grid.

        Call it as ``generate_params(x.shape, x.device, attention=grid)`` with ``grid`` from
        :meth:`compute_attention`.

        Returns:
            ``attention`` (B, gh, gw) float32; ``candidates`` and ``cut`` (B, gh, gw) bool;
            ``num_cut`` (B,) int64; ``applied`` (B,) bool.
        """
        if "attention" not in inputs:
            raise ValueError("GCut.generate_params needs attention= (B, gh, gw), e.g. from compute_attention(x)")
        batch = shape[0]
        attention = check_attention(inputs["attention"], batch, "attention", validate_values=False).to(device).float()
        candidates = candidate_cells(attention, self.select, self.keep_ratio)
        flat_candidates = candidates.flatten(1)
        num_candidates = flat_candidates.sum(dim=1)
        max_cut = torch.floor(self.limit * num_candidates.double())
        if self.count_rule == "authors":
            # |z·floor(σ·m)| ≤ limit·m, as the authors' redraw loop leaves it.
            scale = torch.floor(self.sigma * num_candidates.double())
            upper = torch.where(scale > 0, self.limit * num_candidates / scale.clamp_min(1.0), torch.inf)
        else:
            # n = floor(|z|·σ·m) ≤ floor(limit·m)  ⇔  |z| < (floor(limit·m) + 1) / (σ·m).
            scale = self.sigma * num_candidates.double()
            upper = torch.where(scale > 0, (max_cut + 1) / scale.clamp_min(1e-12), torch.inf)
        magnitude = truncated_half_normal(upper, device, generator)
        num_cut = torch.minimum(torch.floor(magnitude * scale), max_cut).long()
        applied = self.draw_applied(batch, device, generator)
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

    def transform(self, x: Tensor, params: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """Replay: cut the given cells and score them (no randomness)."""
        x = check_image_batch(x)
        cut = params["cut"]
        if cut.ndim != 3 or cut.shape[0] != x.shape[0]:
            raise ValueError(
                f"params['cut'] must have shape ({x.shape[0]}, gh, gw); got {tuple(cut.shape)}"
            )
        return gcut(
            x, cut, params.get("attention"), candidates=params.get("candidates"), fill=self.fill, score=self.score
        )

    def extra_repr(self) -> str:
        parts = [
            f"attention_source={self.attention_source!r}",
            f"source={self.source!r}",
            f"grid_size={self.grid_size if self.grid_size is not None else 'native'}",
            f"select={self.select!r}",
            f"keep_ratio={self.keep_ratio}" if self.select == "topk" else "",
            f"sigma={self.sigma}",
            f"limit={self.limit}",
            f"count_rule={self.count_rule!r}" if self.count_rule != "truncated" else "",
            f"fill={self.fill}",
            f"score={self.score!r}",
            f"p={self.p}",
        ]
        return ", ".join(p for p in parts if p)
