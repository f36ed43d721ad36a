"""AttentionCache and the approximate G_cut: read/write geometry, EMA, hook rule, resume, DDP."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from gg_augment import AttentionCache, GCut, RandomResizedCropFlip, RetrievalNet, SmallResNet, View
from gg_augment.attention import CacheRecorder, FeatureMapExtractor, attention_extractor_for

from ..conftest import make_generator

GRID = 6


def _model(device, seed: int = 0) -> RetrievalNet:
    torch.manual_seed(seed)
    return RetrievalNet(SmallResNet(width=4), 32, 8).to(device)


def _smooth(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A smooth logit field over the original image, in normalised coordinates."""
    return 3.0 * torch.exp(-((y - 0.45) ** 2 + (x - 0.3) ** 2) / 0.08) + x


def _field_on_cells(boxes: torch.Tensor, flips: torch.Tensor, size: int) -> torch.Tensor:
    """The smooth field sampled at the cell centres of each view (B, size, size)."""
    centres = (torch.arange(size, device=boxes.device, dtype=torch.float32) + 0.5) / size
    v, u = centres.view(1, -1, 1), centres.view(1, 1, -1)
    u = torch.where(flips.view(-1, 1, 1), 1 - u, u)
    y0, x0, y1, x1 = (b.view(-1, 1, 1) for b in boxes.unbind(1))
    return _smooth(y0 + v * (y1 - y0), x0 + u * (x1 - x0))


class _Counter:
    """Counts model calls and the samples they process."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.calls = 0
        self.samples = 0
        model.register_forward_pre_hook(self._hook)

    def _hook(self, _module, inputs) -> None:
        self.calls += 1
        self.samples += inputs[0].shape[0]


def _train_step(model, optimizer, x_aug, retention) -> None:
    loss = (model(x_aug).pow(2).mean(1) * retention).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def _recorded_step(gcut: GCut, model, optimizer, x, view) -> None:
    """The approximate G_cut's step: cut (no side effects), then train inside the recording."""
    x_aug, retention, drawn, observed = gcut.cut_and_record(x, view)
    with gcut.source.recording(drawn.view, observed, drawn.warmup):  # type: ignore[attr-defined]
        _train_step(model, optimizer, x_aug, retention)


# -- read what was written ---------------------------------------------------------------


def test_identity_read_returns_the_softmax_of_what_was_written(device):
    cache = AttentionCache(10, grid_size=GRID, device=device)
    logits = torch.randn(3, GRID, GRID, device=device)
    index = torch.tensor([7, 2, 4], device=device)
    cache.write(index, logits)
    grid, seen = cache.read(index)
    expected = torch.softmax(logits.half().float().flatten(1), 1).view_as(logits)
    torch.testing.assert_close(grid, expected)
    assert grid.dtype == torch.float32 and seen.tolist() == [True] * 3
    _, seen = cache.read(torch.tensor([0, 7], device=device))
    assert seen.tolist() == [False, True]
    # A cell never written takes the observed value directly.
    assert torch.equal(cache.values[index], logits.half())


def test_write_through_identity_read_through_a_flipped_view(device):
    cache = AttentionCache(4, grid_size=GRID, device=device)
    cache.write(torch.arange(2, device=device), torch.randn(2, GRID, GRID, device=device))
    plain, _ = cache.read(torch.arange(2, device=device))
    flipped, _ = cache.read(
        View(
            torch.arange(2, device=device),
            boxes=torch.tensor([[0.0, 0.0, 1.0, 1.0]] * 2, device=device),
            flips=torch.tensor([True, False], device=device),
        )
    )
    torch.testing.assert_close(flipped[0], plain[0].flip(-1), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(flipped[1], plain[1], atol=1e-6, rtol=1e-5)


def test_write_through_a_view_lands_in_original_coordinates(device):
    size = 12
    cache = AttentionCache(3, grid_size=size, dtype=torch.float32, device=device)
    boxes = torch.tensor([[0.1, 0.2, 0.7, 0.9], [0.0, 0.0, 1.0, 1.0], [0.3, 0.05, 0.95, 0.6]], device=device)
    flips = torch.tensor([False, True, True], device=device)
    index = torch.arange(3, device=device)
    cache.write(View(index, boxes, flips), _field_on_cells(boxes, flips, size))
    full = torch.tensor([[0.0, 0.0, 1.0, 1.0]] * 3, device=device)
    truth = _field_on_cells(full, torch.zeros(3, dtype=torch.bool, device=device), size)
    centres = (torch.arange(size, device=device) + 0.5) / size
    y, x = centres.view(1, -1, 1), centres.view(1, 1, -1)
    y0, x0, y1, x1 = (b.view(-1, 1, 1) for b in boxes.unbind(1))
    inside = (y >= y0) & (y <= y1) & (x >= x0) & (x <= x1)
    stored = cache.values
    assert torch.equal(~torch.isnan(stored), inside)  # cells outside the view stay unwritten
    # Bilinear resampling of a smooth field: close to the field itself.
    torch.testing.assert_close(stored[inside], truth[inside], atol=0.15, rtol=0)


def test_write_and_read_through_the_same_view(device):
    size = 12
    cache = AttentionCache(3, grid_size=size, dtype=torch.float32, device=device)
    boxes = torch.tensor([[0.1, 0.2, 0.7, 0.9], [0.0, 0.0, 1.0, 1.0], [0.3, 0.05, 0.95, 0.6]], device=device)
    flips = torch.tensor([False, True, True], device=device)
    index = torch.arange(3, device=device)
    view_logits = _field_on_cells(boxes, flips, size)
    cache.write(View(index, boxes, flips), view_logits)
    grid, seen = cache.read(View(index, boxes, flips))
    assert bool(seen.all())
    expected = torch.softmax(view_logits.flatten(1), 1).view_as(view_logits)
    torch.testing.assert_close(grid, expected, atol=0.004, rtol=0.1)
    # Written through the identity, read through a crop: the field on the crop's cells.
    other = AttentionCache(3, grid_size=size, dtype=torch.float32, device=device)
    full = torch.tensor([[0.0, 0.0, 1.0, 1.0]] * 3, device=device)
    other.write(index, _field_on_cells(full, torch.zeros_like(flips), size))
    grid, _ = other.read(View(index, boxes, flips))
    torch.testing.assert_close(grid, expected, atol=0.004, rtol=0.1)


def test_read_resizes_to_another_grid_and_fills_unwritten_cells_neutrally(device):
    cache = AttentionCache(2, grid_size=4, device=device)
    observed = torch.zeros(1, 4, 4, dtype=torch.bool, device=device)
    observed[0, :2] = True  # only the top half was ever seen
    cache.write(torch.tensor([1], device=device), torch.randn(1, 4, 4, device=device), observed=observed)
    grid, seen = cache.read(torch.tensor([1], device=device), grid_size=(8, 8))
    assert grid.shape == (1, 8, 8) and bool(seen.all())
    torch.testing.assert_close(grid.sum(), torch.tensor(1.0, device=device))
    # Cells far from any written one hold the mean known logit: equal to each other, never
    # above the mean mass (row 4 still interpolates from the written row 1 of the 4x4 grid).
    bottom = grid[0, 5:]
    assert torch.allclose(bottom, bottom[0, 0].expand_as(bottom)) and float(bottom[0, 0]) <= 1 / 64


# -- EMA and unobserved cells ------------------------------------------------------------


def test_ema_blends_observed_cells_and_keeps_cut_ones(device):
    momentum = 0.7
    cache = AttentionCache(5, grid_size=GRID, momentum=momentum, device=device)
    index = torch.tensor([3, 0], device=device)
    first, second = torch.randn(2, GRID, GRID, device=device), torch.randn(2, GRID, GRID, device=device)
    observed = torch.rand(2, GRID, GRID, generator=make_generator("cpu", 1)).to(device) > 0.4
    cache.write(index, first)
    cache.write(index, second, observed=observed)
    old = first.half().float()
    hand = torch.where(observed, (momentum * old + (1 - momentum) * second).half(), first.half())
    assert torch.equal(cache.values[index], hand)
    assert torch.isnan(cache.values[1]).all()  # other samples untouched


def test_hook_writes_the_training_forward_only(device):
    model = _model(device)
    cache = AttentionCache(16, grid_size=8, momentum=0.5, dtype=torch.float32, device=device)
    recorder = CacheRecorder(cache, attention_extractor_for(model))
    features = {}
    model.backbone.layer4.register_forward_hook(lambda _m, _i, out: features.__setitem__("x", out.detach()))
    x = torch.randn(4, 3, 16, 16, device=device)
    index = torch.tensor([1, 5, 9, 13], device=device)

    model.train()
    model(x)  # outside a recording: no write
    assert not recorder.attached and not bool(cache.seen.any())
    with pytest.raises(RuntimeError, match="no training forward through 'backbone.layer4' inside recording"):
        with recorder.recording(index):
            with torch.no_grad():
                model(x)  # no gradients: not a training pass
            model.eval()
            model(x)  # eval mode: not a training pass
    assert not bool(cache.seen.any())

    model.train()
    observed = torch.ones(4, 8, 8, dtype=torch.bool, device=device)
    observed[:, :2] = False
    with recorder.recording(index, observed=observed):
        out = model(x)
        expected = F.interpolate(features["x"].mean(1, keepdim=True), size=(8, 8), mode="nearest")[:, 0]
        model(x)  # a second forward of the same step does not write again
    stored = cache.values[index]
    torch.testing.assert_close(stored[:, 2:], expected[:, 2:])
    assert torch.isnan(stored[:, :2]).all()
    out.sum().backward()  # the graph is intact

    cache.reset()
    model(x)  # the hook stays, unarmed: no write
    assert recorder.attached and not bool(cache.seen.any())
    assert len(model.backbone.layer4._forward_hooks) == 2  # the test's and the recorder's
    recorder.detach()
    assert len(model.backbone.layer4._forward_hooks) == 1


def test_hook_leaves_gradients_unchanged(device):
    model = _model(device)
    twin = copy.deepcopy(model)
    cache = AttentionCache(8, grid_size=4, device=device)
    x = torch.randn(4, 3, 16, 16, device=device)
    with CacheRecorder(cache, attention_extractor_for(model)).recording(torch.arange(4, device=device)):
        model(x).pow(2).sum().backward()
    twin(x).pow(2).sum().backward()
    for a, b in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(a.grad, b.grad)
    assert bool(cache.seen[:4].all())


# -- forward passes per step ---------------------------------------------------------------


def _epochs(module_factory, device, epochs: int, crop: bool = False):
    model = _model(device)
    module = module_factory(model)
    counter = _Counter(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    generator = make_generator(device, 5)
    images = torch.randn(24, 3, 16, 16, device=device, generator=generator)
    resize = RandomResizedCropFlip(16, scale=(0.5, 1.0), generator=make_generator(device, 6)) if crop else None
    per_epoch = []
    for _ in range(epochs):
        calls = []
        for start in range(0, 24, 8):
            index = torch.arange(start, start + 8, device=device)
            before = counter.calls
            x, view = (images[index], View(index)) if resize is None else resize(images[index], index=index)
            if module.attention_source == "cache":
                _recorded_step(module, model, optimizer, x, view)
            else:
                x_aug, retention = module(x)
                _train_step(model, optimizer, x_aug, retention)
            calls.append(counter.calls - before)
        per_epoch.append(calls)
    return per_epoch, counter, module


def test_exact_gcut_costs_two_forward_passes_per_step(device):
    per_epoch, _, _ = _epochs(lambda m: GCut(m, grid_size=GRID, generator=make_generator(device)), device, 2)
    assert per_epoch == [[2, 2, 2], [2, 2, 2]]


@pytest.mark.parametrize("crop", [False, True])
def test_approximate_gcut_costs_one_forward_pass_after_warmup(device, crop):
    def factory(model):
        cache = AttentionCache(24, grid_size=GRID, device=device)
        return GCut(model, cache=cache, grid_size=GRID, generator=make_generator(device))

    per_epoch, _, module = _epochs(factory, device, 3, crop=crop)
    assert per_epoch[0] == [2, 2, 2]  # warm-up: every sample is new
    if not crop:
        assert per_epoch[1:] == [[1, 1, 1], [1, 1, 1]]
    else:  # a crop may show a region never observed; after two epochs none is left here
        assert per_epoch[2] == [1, 1, 1]
    assert "attention_source='cache'" in repr(module) and "memory=" in repr(module)


def test_warmup_pass_runs_on_the_unseen_samples_only(device):
    model = _model(device)
    cache = AttentionCache(16, grid_size=GRID, device=device)
    module = GCut(model, cache=cache, grid_size=GRID, generator=make_generator(device))
    cache.write(torch.arange(5, device=device), torch.randn(5, GRID, GRID, device=device))
    counter = _Counter(model)
    x = torch.randn(8, 3, 16, 16, device=device)
    before = cache.values.clone()
    x_aug, retention, drawn, observed = module.cut_and_record(x, torch.arange(8))
    assert (counter.calls, counter.samples) == (1, 3)  # the extra pass saw samples 5, 6, 7
    assert torch.equal(cache.values.nan_to_num(7.0), before.nan_to_num(7.0))  # sampling wrote nothing
    assert drawn.warmup is not None and drawn.warmup.view.index.tolist() == [5, 6, 7]
    with module.source.recording(drawn.view, observed, drawn.warmup):
        # The warm-up seeded the cache for the full view, cut cells included, before the forward.
        assert not torch.isnan(cache.values[5:8]).any() and torch.isnan(cache.values[8:]).all()
        model(x_aug).sum().backward()
    assert counter.calls == 2 and bool(cache.seen[:8].all())


@pytest.mark.parametrize("warmup", ["skip", "random"])
def test_other_warmup_policies_need_no_extra_pass(device, warmup):
    model = _model(device)
    cache = AttentionCache(8, grid_size=GRID, device=device)
    module = GCut(model, cache=cache, warmup=warmup, grid_size=GRID, generator=make_generator(device))
    counter = _Counter(model)
    x = torch.randn(8, 3, 16, 16, device=device)
    x_aug, retention, _, _ = module.cut_and_record(x, torch.arange(8, device=device))
    assert counter.calls == 0
    if warmup == "skip":
        assert torch.equal(x_aug, x) and torch.equal(retention, torch.ones(8, device=device))


# -- state, resume -------------------------------------------------------------------------


def test_state_dict_round_trip_is_exact(device):
    cache = AttentionCache(6, grid_size=GRID, device=device)
    cache.write(torch.tensor([0, 4], device=device), torch.randn(2, GRID, GRID, device=device) * 100)
    state = cache.state_dict()
    assert set(state) == {"values", "seen", "updated"}
    clone = AttentionCache(6, grid_size=GRID, device=device)
    clone.load_state_dict(state)
    assert torch.equal(clone.values.view(torch.int16), cache.values.view(torch.int16))  # NaN bits too
    assert torch.equal(clone.seen, cache.seen) and torch.equal(clone.updated, cache.updated)
    with pytest.raises(ValueError, match=r"must have shape \(7, 6, 6\) \(num_samples=7"):
        AttentionCache(7, grid_size=GRID, device=device).load_state_dict(state)
    with pytest.raises(ValueError, match="grid_size"):
        AttentionCache(6, grid_size=4, device=device).load_state_dict(state)
    model = _model(device)
    gcut = GCut(model, cache=AttentionCache(6, grid_size=GRID, device=device), grid_size=GRID)
    assert "cache.values" in gcut.state_dict()


def _resumable_run(device, steps: int, state: dict | None = None, stop_after: int | None = None):
    model = _model(device, seed=1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    cache = AttentionCache(32, grid_size=GRID, device=device)
    crop_generator, cut_generator, order_generator = (make_generator(device, s) for s in (11, 12, 13))
    crop = RandomResizedCropFlip(16, scale=(0.4, 1.0), generator=crop_generator)
    gcut = GCut(model, cache=cache, grid_size=GRID, generator=cut_generator)
    images = torch.randn(32, 3, 16, 16, generator=make_generator("cpu", 3)).to(device)
    done = 0
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        cache.load_state_dict(state["cache"])
        for generator, saved in zip((crop_generator, cut_generator, order_generator), state["generators"]):
            generator.set_state(saved)
        done = state["done"]
    for step in range(done, steps):
        index = torch.randperm(32, device=device, generator=order_generator)[:8]
        image, view = crop(images[index], index=index)
        _recorded_step(gcut, model, optimizer, image, view)
        if stop_after is not None and step + 1 == stop_after:
            return {
                "model": copy.deepcopy(model.state_dict()),
                "optimizer": copy.deepcopy(optimizer.state_dict()),
                "cache": copy.deepcopy(cache.state_dict()),
                "generators": [g.get_state() for g in (crop_generator, cut_generator, order_generator)],
                "done": step + 1,
            }
    return cache, model


def test_stop_and_resume_gives_a_bit_identical_cache(device, deterministic):
    straight_cache, straight_model = _resumable_run(device, 8)
    state = _resumable_run(device, 8, stop_after=4)
    resumed_cache, resumed_model = _resumable_run(device, 8, state=state)
    assert torch.equal(resumed_cache.values.view(torch.int16), straight_cache.values.view(torch.int16))
    assert torch.equal(resumed_cache.seen, straight_cache.seen)
    for a, b in zip(resumed_model.parameters(), straight_model.parameters()):
        assert torch.equal(a, b)


def test_to_and_repr(device):
    cache = AttentionCache(1000, grid_size=12).to(device)
    assert cache.device.type == device.type and cache.values.dtype == torch.float16
    assert cache.memory_bytes == 1000 * 144 * 2 + 2 * 1000
    assert "memory=283.20 KiB" in repr(cache) and "seen=0/1000" in repr(cache)


# -- errors --------------------------------------------------------------------------------


def test_errors(device):
    cache = AttentionCache(10, grid_size=GRID, device=device)
    index = torch.arange(4, device=device)
    with pytest.raises(ValueError, match=r"index must lie in \[0, 9\]; got values in \[0, 10\]"):
        cache.read(torch.tensor([0, 10], device=device))
    with pytest.raises(ValueError, match=r"index must lie in \[0, 9\]"):
        cache.write(torch.tensor([-1], device=device), torch.zeros(1, GRID, GRID, device=device))
    with pytest.raises(TypeError, match="index must have an integer dtype"):
        cache.read(index.float())
    with pytest.raises(ValueError, match=r"view.boxes must have shape \(4, 4\)"):
        cache.read(View(index, boxes=torch.rand(3, 4, device=device)))
    with pytest.raises(ValueError, match=r"view.boxes must lie in \[0, 1\]"):
        cache.read(View(index, boxes=torch.tensor([[0.0, 0.0, 1.2, 1.0]] * 4, device=device)))
    with pytest.raises(ValueError, match="y0 < y1 and x0 < x1"):
        cache.read(View(index, boxes=torch.tensor([[0.0, 0.6, 1.0, 0.6]] * 4, device=device)))
    with pytest.raises(TypeError, match="view.flips must be a bool tensor"):
        cache.read(View(index, flips=torch.zeros(4, device=device)))
    with pytest.raises(ValueError, match="needs the dataset indices"):
        cache.read(View(boxes=torch.rand(4, 4, device=device)))
    with pytest.raises(ValueError, match=r"observed must have shape \(4, gh, gw\)"):
        cache.write(index, torch.zeros(4, GRID, GRID, device=device), observed=torch.ones(3, GRID, GRID, dtype=torch.bool, device=device))
    with pytest.raises(ValueError, match="num_samples must be an int >= 1"):
        AttentionCache(0)
    with pytest.raises(ValueError, match=r"momentum must lie in \[0, 1\]"):
        AttentionCache(4, momentum=1.5)
    with pytest.raises(TypeError, match="dtype must be a floating torch.dtype"):
        AttentionCache(4, dtype=torch.int64)
    with pytest.raises(TypeError, match="extractor must be an AttentionExtractor"):
        CacheRecorder(cache, "resnet")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs the model being trained"):
        GCut(cache=AttentionCache(4))
    with pytest.raises(RuntimeError, match="process group"):
        cache.sync()

    model = _model(device)
    gcut = GCut(model, cache=cache, grid_size=GRID)
    x = torch.randn(4, 3, 16, 16, device=device)
    with pytest.raises(ValueError, match=r"index must have shape \(4,\) to match x; got \(3\)"):
        gcut.cut_and_record(x, torch.arange(3, device=device))
    with pytest.raises(ValueError, match=r"index must lie in \[0, 9\]"):
        gcut.cut_and_record(x, torch.tensor([0, 1, 2, 12], device=device))
    with pytest.raises(ValueError, match=r"view.boxes must lie in \[0, 1\]"):
        gcut.cut_and_record(x, View(index, boxes=torch.tensor([[-0.1, 0.0, 1.0, 1.0]] * 4, device=device)))
    with pytest.raises(ValueError, match="y0 < y1 and x0 < x1"):
        gcut.cut_and_record(x, View(index, boxes=torch.tensor([[0.0, 0.5, 1.0, 0.2]] * 4, device=device)))
    with pytest.raises(ValueError, match="needs view="):
        gcut.cut_and_record(x)
    with pytest.raises(TypeError, match=r"unexpected keyword\(s\) \['index'\]; it accepts: attention, view"):
        gcut(x, index=index)
    with pytest.raises(ValueError, match="must see the recorded batch: expected 4 samples; got 2"):
        with gcut.source.recording(index):  # type: ignore[attr-defined]
            model(x[:2])
    assert FeatureMapExtractor is type(gcut.source.extractor)  # type: ignore[attr-defined]


# -- distributed ---------------------------------------------------------------------------


def _ddp_worker(rank: int, world_size: int, init_file: str, out_dir: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        cache = AttentionCache(8, grid_size=3, momentum=0.5)
        base = torch.arange(18, dtype=torch.float32).view(2, 3, 3)
        cache.write(torch.tensor([0, 1]), base)  # the same on both ranks
        cache.sync()
        own = torch.tensor([[2, 3], [4, 5]])[rank]
        cache.write(own, torch.full((2, 3, 3), 10.0 + rank))
        cache.write(torch.tensor([6]), torch.full((1, 3, 3), 2.0 + 4 * rank))  # both ranks
        if rank == 1:
            observed = torch.zeros(1, 3, 3, dtype=torch.bool)
            observed[0, 0] = True
            cache.write(torch.tensor([0]), torch.full((1, 3, 3), 100.0), observed=observed)
        cache.sync()
        torch.save(cache.state_dict(), f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_sync_makes_ranks_identical(tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(_ddp_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    states = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    assert torch.equal(states[0]["values"].view(torch.int16), states[1]["values"].view(torch.int16))
    values = states[0]["values"].float()
    assert torch.equal(values[2], torch.full((3, 3), 10.0)) and torch.equal(values[4], torch.full((3, 3), 11.0))
    assert torch.equal(values[6], torch.full((3, 3), 4.0))  # written on both: the mean of 2 and 6
    expected_first = torch.arange(9, dtype=torch.float32).view(3, 3)
    expected_first[0] = 0.5 * expected_first[0] + 0.5 * 100.0  # rank 1's partial update
    assert torch.equal(values[0], expected_first)
    assert torch.equal(values[1], torch.arange(9, 18, dtype=torch.float32).view(3, 3))
    assert torch.isnan(values[7]).all()
    assert states[0]["seen"].tolist() == [True] * 7 + [False]
    assert not states[0]["updated"].any() and torch.equal(states[0]["seen"], states[1]["seen"])
