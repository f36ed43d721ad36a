"""RetentionPipeline, View and the attention sources: the pieces the redesign split out of GCut."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gg_augment import (
    GT,
    AttentionCache,
    CachedAttention,
    CallableAttention,
    ForwardAttention,
    GCut,
    GivenAttention,
    RandomErasingRetention,
    RandomResizedCropFlip,
    RetentionPipeline,
    RetrievalNet,
    SemanticRetention,
    SmallResNet,
    View,
    attention_extractor_for,
)

from .conftest import make_generator

GRID = 4


def _model(device) -> RetrievalNet:
    torch.manual_seed(0)
    return RetrievalNet(SmallResNet(width=8), 64, 16).to(device)


# -- View ----------------------------------------------------------------------------------


def test_view_validation_names_the_field(device):
    index = torch.arange(3, device=device)
    with pytest.raises(ValueError, match=r"index must have shape \(3,\) to match x; got \(2\)"):
        View(index[:2]).validated(3, 10)
    with pytest.raises(ValueError, match=r"view.boxes must have shape \(3, 4\)"):
        View(index, boxes=torch.rand(2, 4, device=device)).validated(3, 10)
    with pytest.raises(TypeError, match="view.flips must be a bool tensor"):
        View(index, flips=torch.zeros(3, device=device)).validated(3, 10)
    with pytest.raises(ValueError, match=r"index must lie in \[0, 1\]"):
        View(index).validated(3, 2)
    with pytest.raises(ValueError, match="view.index must hold the dataset indices"):
        View().validated(3, 10, require_index=True)


def test_view_select_keeps_rows_of_every_field(device):
    view = View(
        torch.tensor([5, 6, 7], device=device),
        torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.1, 0.1, 0.9, 0.9], [0.2, 0.0, 1.0, 0.5]], device=device),
        torch.tensor([True, False, True], device=device),
    )
    picked = view.select(torch.tensor([2, 0], device=device))
    assert picked.index.tolist() == [7, 5]
    assert picked.flips.tolist() == [True, True]
    assert torch.equal(picked.boxes, view.boxes[[2, 0]])
    assert not view.is_whole_image and View(view.index).is_whole_image


# -- sources -------------------------------------------------------------------------------


def test_sources_agree_on_the_same_map(device):
    """Given, callable and forward sources yield the same grid for the same attention."""
    model = _model(device).eval()
    extractor = attention_extractor_for(model)
    x = torch.randn(6, 3, 32, 32, device=device)
    forward = ForwardAttention(extractor).grid(x, None, (GRID, GRID))
    from_callable = CallableAttention(extractor).grid(x, None, (GRID, GRID))  # extractors return logits
    torch.testing.assert_close(forward, from_callable)
    positive = torch.rand(6, 8, 8, device=device)
    given = GivenAttention(positive).grid(x, None, (GRID, GRID))
    via_fn = CallableAttention(lambda images: positive).grid(x, None, (GRID, GRID))
    torch.testing.assert_close(given, via_fn)
    for grid in (forward, given):
        assert grid.shape == (6, GRID, GRID)
        torch.testing.assert_close(grid.sum(dim=(1, 2)), torch.ones(6, device=device))


def test_gcut_accepts_a_ready_source(device):
    model = _model(device)
    cache = AttentionCache(8, grid_size=GRID, device=device)
    source = CachedAttention(cache, attention_extractor_for(model), warmup="skip")
    gcut = GCut(source=source, grid_size=GRID)
    assert gcut.attention_source == "cache" and gcut.cache is cache
    assert "attention_source='cache'" in repr(gcut) and "warmup='skip'" in repr(gcut)
    with pytest.warns(UserWarning, match="without a recording: the cache is read but never written"):
        x_aug, retention = gcut(torch.randn(4, 3, 32, 32, device=device), view=torch.arange(4, device=device))
    # warmup="skip": nothing is cached yet, so nothing is cut.
    assert torch.equal(retention, torch.ones(4, device=device))
    with pytest.raises(ValueError, match="either source= or the short forms"):
        GCut(model, source=source)
    with pytest.raises(TypeError, match="source must be an AttentionSource"):
        GCut(source="cache")  # type: ignore[arg-type]


def test_cached_step_checks_each_view_once(device, monkeypatch):
    """Read, warm-up write and recording share one checked view: one value check per step."""
    model = _model(device)
    cache = AttentionCache(8, grid_size=GRID, device=device)
    pipeline = RetentionPipeline(GCut(model, cache=cache, grid_size=GRID), crop=RandomResizedCropFlip(28))
    import gg_augment.view as view_module

    calls = []
    original = view_module.check_index

    def counting(*args, **kwargs):
        calls.append(kwargs.get("validate_values"))
        return original(*args, **kwargs)

    monkeypatch.setattr(view_module, "check_index", counting)
    batch = pipeline.augment(torch.randn(4, 3, 32, 32, device=device), torch.arange(4))
    with pipeline.recording(batch):
        model(batch.images)
    assert calls.count(True) == 1  # the range check (a host sync on CUDA) runs once
    assert batch.view is not None and batch.view.validated_for == (4, 8, True)


# -- pipeline ------------------------------------------------------------------------------


def test_pipeline_is_crop_then_augmentation_then_curve(device):
    x = torch.randn(8, 3, 32, 32, device=device)
    curve = SemanticRetention("power", p_min=0.1, k=2.0)
    pipeline = RetentionPipeline(
        GT(sigma=0.2, generator=make_generator(device, 1)),
        crop=RandomResizedCropFlip(24, generator=make_generator(device, 2)),
        curve=curve,
    )
    x_aug, weight = pipeline(x, torch.arange(8, device=device))
    # The same draws by hand.
    image, _ = RandomResizedCropFlip(24, generator=make_generator(device, 2))(x)
    by_hand, retention = GT(sigma=0.2, generator=make_generator(device, 1))(image)
    assert torch.equal(x_aug, by_hand)
    torch.testing.assert_close(weight, curve(retention.float()))
    assert weight.dtype == torch.float32 and x_aug.shape == (8, 3, 24, 24)


def test_pipeline_passes_the_view_to_a_cached_gcut(device):
    model = _model(device)
    cache = AttentionCache(16, grid_size=GRID, device=device)
    pipeline = RetentionPipeline(
        GCut(model, cache=cache, grid_size=GRID, generator=make_generator(device, 3)),
        crop=RandomResizedCropFlip(32, scale=(0.5, 1.0), generator=make_generator(device, 4)),
    )
    index = torch.tensor([3, 9, 12, 0])
    batch = pipeline.augment(torch.randn(4, 3, 32, 32, device=device), index)
    assert batch.view is not None and batch.view.boxes is not None and batch.observed is not None
    assert batch.observed.shape == (4, GRID, GRID) and batch.warmup is not None
    assert not bool(cache.seen.any())  # sampling has no side effects
    with pipeline.recording(batch):
        model(batch.images)  # the warm-up maps, then the uncut cells of this forward
    assert cache.seen.nonzero().flatten().tolist() == [0, 3, 9, 12]
    assert bool(((batch.weight >= 0) & (batch.weight <= 1)).all())
    with pytest.raises(ValueError, match="needs view="):
        RetentionPipeline(GCut(model, cache=AttentionCache(16, grid_size=GRID, device=device), grid_size=GRID)).augment(
            torch.randn(4, 3, 32, 32, device=device)
        )


def test_pipeline_without_retention_weighting_keeps_the_images(device):
    x = torch.randn(6, 3, 16, 16, device=device)
    weighted = RetentionPipeline(RandomErasingRetention(p=1.0, generator=make_generator(device, 5)))
    plain = RetentionPipeline(RandomErasingRetention(p=1.0, generator=make_generator(device, 5)), weight_by_retention=False)
    a, weight_a = weighted(x)
    b, weight_b = plain(x)
    assert torch.equal(a, b)
    assert bool((weight_a < 1).any()) and torch.equal(weight_b, torch.ones(6, device=device))
    only_crop = RetentionPipeline(crop=RandomResizedCropFlip(12))
    image, weight = only_crop(x)
    assert image.shape == (6, 3, 12, 12) and torch.equal(weight, torch.ones(6, device=device))


def test_pipeline_rejects_what_it_cannot_compose():
    with pytest.raises(TypeError, match="augmentation must be a RetentionAugmentation"):
        RetentionPipeline(nn.Identity())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="crop must be a RandomResizedCropFlip"):
        RetentionPipeline(crop=GT())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="curve must be a SemanticRetention"):
        RetentionPipeline(GT(), curve=lambda r: r)  # type: ignore[arg-type]


def test_module_apply_reaches_every_submodule():
    """nn.Module.apply(fn) must still work on modules that hold our augmentations."""
    seen = []
    pipeline = RetentionPipeline(GT(), crop=RandomResizedCropFlip(8))
    pipeline.apply(lambda module: seen.append(type(module).__name__))
    assert seen == ["RandomResizedCropFlip", "GT", "SemanticRetention", "RetentionPipeline"]
