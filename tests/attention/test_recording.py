"""The approximate G_cut's hand-off: augment (no side effects) → recording → the forward writes.

Also the extra pass's manners (issue 18): frozen BatchNorm stays frozen, hooks do not leak,
views and indices are checked, a wrong channel count is named. And the sync-free step.
"""

from __future__ import annotations

import contextlib

import pytest
import torch
from torch import nn

from gg_augment import (
    AttentionCache,
    AugmentedBatch,
    GCut,
    RandomResizedCropFlip,
    RetentionPipeline,
    RetrievalNet,
    SemanticRetention,
    SmallResNet,
    View,
)

from ..conftest import make_generator

GRID = 4


def _model(device, in_channels: int = 3) -> RetrievalNet:
    torch.manual_seed(0)
    return RetrievalNet(SmallResNet(width=8, in_channels=in_channels), 64, 16).to(device)


def _cached_pipeline(model, device, *, num_samples: int = 16, validate_args: bool = True, **gcut) -> RetentionPipeline:
    cache = AttentionCache(num_samples, grid_size=GRID, device=device, validate_args=validate_args)
    return RetentionPipeline(
        GCut(model, cache=cache, grid_size=GRID, generator=make_generator(device, 1), validate_args=validate_args, **gcut),
        crop=RandomResizedCropFlip(28, scale=(0.5, 1.0), generator=make_generator(device, 2), validate_args=validate_args),
        curve=SemanticRetention(validate_args=validate_args),
    )


def _hooks(model: RetrievalNet) -> int:
    return len(model.backbone.layer4._forward_hooks)


# -- the contract ----------------------------------------------------------------------------


def test_augment_has_no_side_effects_and_recording_writes(device):
    model = _model(device)
    pipeline = _cached_pipeline(model, device)
    cache = pipeline.augmentation.cache
    x, index = torch.randn(4, 3, 32, 32, device=device), torch.tensor([2, 7, 9, 11])
    batch = pipeline.augment(x, index)
    assert isinstance(batch, AugmentedBatch) and batch.images.shape == (4, 3, 28, 28)
    assert batch.warmup is not None and batch.warmup.logits.shape[0] == 4
    assert not bool(cache.seen.any()) and _hooks(model) == 0  # nothing written, nothing attached
    again = pipeline.augment(x, index)  # still every sample unseen: the same warm-up again
    assert again.warmup is not None and again.warmup.view.index.tolist() == [2, 7, 9, 11]
    with pipeline.recording(batch):
        assert cache.seen[index].all()  # the warm-up write comes first, visibly
        model(batch.images)
    assert cache.seen.nonzero().flatten().tolist() == [2, 7, 9, 11] and _hooks(model) == 1
    later = pipeline.augment(x, index)
    assert later.warmup is None  # the cache knows them now: no extra pass


def test_recording_without_a_training_forward_is_not_silent(device):
    model = _model(device)
    pipeline = _cached_pipeline(model, device)
    batch = pipeline.augment(torch.randn(4, 3, 32, 32, device=device), torch.arange(4))
    with pytest.raises(RuntimeError, match="no training forward through 'backbone.layer4' inside recording"):
        with pipeline.recording(batch):
            pass
    with pytest.raises(TypeError, match="batch must be the AugmentedBatch"):
        pipeline.recording((batch.images, batch.weight))  # type: ignore[arg-type]
    with pytest.warns(UserWarning, match="records nothing: the cache is never written"):
        pipeline(torch.randn(4, 3, 32, 32, device=device), torch.arange(4))
    plain = RetentionPipeline(GCut(model, grid_size=GRID))
    assert isinstance(plain.recording(plain.augment(torch.randn(2, 3, 32, 32, device=device))), contextlib.nullcontext)


def test_replayed_params_touch_no_cache(device):
    model = _model(device)
    cache = AttentionCache(8, grid_size=GRID, device=device)
    gcut = GCut(model, cache=cache, grid_size=GRID)
    x = torch.randn(4, 3, 32, 32, device=device)
    _, _, drawn, _ = gcut.cut_and_record(x, torch.arange(4))
    params = gcut.generate_params(x.shape, x.device, attention=drawn.grid)
    gcut(x, params=params, view=torch.arange(4))
    assert not bool(cache.seen.any()) and _hooks(model) == 0


def test_forward_calls_and_cache_match_the_trainer_contract(device):
    """Exact G_cut: 2 forwards per step; approximate: 2 in the warm-up epoch, then 1."""
    model = _model(device)
    calls = []
    model.register_forward_pre_hook(lambda *_: calls.append(1))
    pipeline = _cached_pipeline(model, device, num_samples=8)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    images = torch.randn(8, 3, 32, 32, device=device)
    per_step = []
    for _ in range(2):
        for index in (torch.arange(4), torch.arange(4, 8)):
            before = len(calls)
            batch = pipeline.augment(images[index.to(device)], index)
            with pipeline.recording(batch):
                loss = (model(batch.images).pow(2).mean(1) * batch.weight).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            per_step.append(len(calls) - before)
    assert per_step == [2, 2, 1, 1]


# -- issue 18: the extra pass keeps each submodule's mode ------------------------------------


@pytest.mark.parametrize("source", ["forward", "cache"])
def test_extra_pass_keeps_frozen_batchnorm_frozen(device, source):
    model = _model(device).train()
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for norm in norms:
        norm.eval()
    stats = [norm.running_mean.clone() for norm in norms]
    x = torch.randn(4, 3, 32, 32, device=device)
    if source == "forward":
        GCut(model, grid_size=GRID)(x)
    else:
        _cached_pipeline(model, device).augment(x, torch.arange(4))  # the warm-up pass
    assert model.training and all(not norm.training for norm in norms)
    model(x)  # frozen statistics stay put in the next training forward
    assert all(torch.equal(norm.running_mean, s) for norm, s in zip(norms, stats))


# -- issue 18: hooks ---------------------------------------------------------------------------


def test_hooks_never_leak(device):
    model = _model(device)
    with pytest.raises(ValueError, match="grid_size"):
        GCut(model, cache=AttentionCache(8, grid_size=GRID, device=device), grid_size=1)
    assert _hooks(model) == 0  # a failed construction leaves nothing behind
    x = torch.randn(4, 3, 32, 32, device=device)
    pipelines = [_cached_pipeline(model, device) for _ in range(3)]
    for pipeline in pipelines:
        batch = pipeline.augment(x, torch.arange(4))
        with pipeline.recording(batch):
            model(batch.images)
    assert _hooks(model) == 1  # each recorder replaced the one before on the layer
    first = pipelines[0]
    batch = first.augment(x, torch.arange(4, 8))
    with first.recording(batch):  # the replaced recorder takes the layer back
        model(batch.images)
    assert _hooks(model) == 1 and bool(first.augmentation.cache.seen[4:8].all())


# -- issue 18: indices and views are checked ---------------------------------------------------


def test_pipeline_and_gcut_check_the_index(device):
    model = _model(device)
    pipeline = _cached_pipeline(model, device)
    x = torch.randn(4, 3, 32, 32, device=device)
    with pytest.raises(ValueError, match=r"index must have shape \(4,\) to match x; got \(3\)"):
        pipeline.augment(x, torch.arange(3))
    with pytest.raises(ValueError, match=r"index must have shape \(4,\) to match x; got \(4, 2\)"):
        pipeline.augment(x, torch.zeros(4, 2, dtype=torch.long))
    with pytest.raises(TypeError, match="index must have an integer dtype; got torch.float32"):
        pipeline.augment(x, torch.arange(4).float())
    exact = GCut(model, grid_size=GRID)
    with pytest.raises(ValueError, match=r"view.index must have shape \(4,\) to match x; got \(3\)"):
        exact(x, view=torch.arange(3, device=device))
    with pytest.raises(ValueError, match=r"view.boxes must have shape \(4, 4\)"):
        exact(x, view=View(boxes=torch.rand(2, 4, device=device)))


def test_a_uint8_index_works(device):
    model = _model(device)
    pipeline = _cached_pipeline(model, device)
    batch = pipeline.augment(torch.randn(4, 3, 32, 32, device=device), torch.tensor([1, 2, 3, 5], dtype=torch.uint8))
    with pipeline.recording(batch):
        model(batch.images)
    assert pipeline.augmentation.cache.seen.nonzero().flatten().tolist() == [1, 2, 3, 5]
    assert batch.view is not None and batch.view.index.dtype == torch.int64


def test_wrong_channel_count_in_the_extra_pass_is_named(device):
    model = _model(device)  # takes 3 channels
    with pytest.raises(ValueError, match=r"x has 1 channel\(s\) but RetrievalNet takes 3"):
        GCut(model, grid_size=GRID)(torch.randn(2, 1, 32, 32, device=device))


# -- issue 20: the cached step without a host sync -------------------------------------------


_SYNCING = ("item", "tolist", "cpu", "__bool__", "__float__", "__int__")


@contextlib.contextmanager
def _count_host_reads(counts: list[str]):
    """Count the Tensor calls that read a value to the host (a sync on CUDA)."""
    originals = {name: getattr(torch.Tensor, name) for name in _SYNCING}

    def wrap(name, original):
        def counted(self, *args, **kwargs):
            counts.append(name)
            return original(self, *args, **kwargs)

        return counted

    try:
        for name, original in originals.items():
            setattr(torch.Tensor, name, wrap(name, original))
        yield
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)


def test_steady_and_warmup_cached_steps_read_nothing_from_the_device(device):
    model = _model(device)
    pipeline = _cached_pipeline(model, device, num_samples=8, validate_args=False)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    images = torch.randn(8, 3, 32, 32, device=device)
    per_step = []
    for index in (torch.arange(4), torch.arange(4, 8), torch.arange(4), torch.tensor([5, 1, 6, 2])):
        x = images[index.to(device)]
        counts: list[str] = []
        with _count_host_reads(counts):
            batch = pipeline.augment(x, index)
            with pipeline.recording(batch):
                loss = (model(batch.images).pow(2).mean(1) * batch.weight).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        per_step.append(counts)
    assert per_step == [[], [], [], []]  # warm-up steps (two first) and steady-state steps
    if device.type == "cuda":
        torch.cuda.set_sync_debug_mode("error")
        try:
            batch = pipeline.augment(images[:4], torch.arange(4))
            with pipeline.recording(batch):
                model(batch.images).sum().backward()
        finally:
            torch.cuda.set_sync_debug_mode("default")


def test_cache_keeps_what_flows_through_it(device):
    """A channels_last batch keeps its memory format in the warm-up pass; bf16 features write."""
    model = _model(device).to(memory_format=torch.channels_last)
    seen_formats = []
    model.register_forward_pre_hook(lambda _m, inputs: seen_formats.append(inputs[0].is_contiguous(memory_format=torch.channels_last)))
    pipeline = RetentionPipeline(GCut(model, cache=AttentionCache(8, grid_size=GRID, device=device), grid_size=GRID))
    x = torch.randn(4, 3, 32, 32, device=device).contiguous(memory_format=torch.channels_last)
    batch = pipeline.augment(x, torch.tensor([0, 2, 4, 6]))
    assert seen_formats == [True]  # the warm-up pass saw rows of x in x's memory format
    cache = AttentionCache(4, grid_size=GRID, device=device, dtype=torch.bfloat16)
    cache.write(torch.arange(4), torch.randn(4, GRID, GRID, device=device, dtype=torch.bfloat16))
    assert cache.values.dtype == torch.bfloat16 and bool(cache.seen.all())
    assert batch.warmup is not None and batch.warmup.logits.shape == (4, 4, 4)
