"""GCut: candidates, cut-count law, retention, attention sources, errors."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given
from hypothesis import strategies as st
from torch import nn

from gg_augment import GCut
from gg_augment.functional import attention_to_grid, candidate_cells, cut_cells, upsample_cells

from ..conftest import make_generator


def _peaked_attention(batch: int, grid: int, device, seed: int = 0) -> torch.Tensor:
    generator = make_generator("cpu", seed)
    return torch.rand(batch, grid, grid, generator=generator).pow(3).to(device)


def test_cuts_only_candidates_never_more_than_the_limit(device):
    module = GCut(grid_size=8, limit=0.3, sigma=2.0, generator=make_generator(device, 4))
    attention = _peaked_attention(512, 8, device)
    x = torch.zeros(512, 1, 8, 8, device=device)
    grid = module.compute_attention(x, attention)
    params = module.generate_params(x.shape, device, attention=grid)
    cut, candidates = params["cut"], params["candidates"]
    assert not bool((cut & ~candidates).any())
    m = candidates.flatten(1).sum(1)
    n = cut.flatten(1).sum(1)
    assert torch.equal(n, params["num_cut"])
    assert bool((n <= torch.floor(0.3 * m.double()).long()).all())
    # sigma=2 pushes many draws against the limit: the limit is reached, never passed.
    assert bool((n == torch.floor(0.3 * m.double()).long()).any())


def test_retention_is_one_minus_the_removed_attention(device):
    module = GCut(grid_size=6, generator=make_generator(device, 1))
    x = torch.ones(64, 2, 24, 24, device=device)
    attention = _peaked_attention(64, 6, device)
    grid = module.compute_attention(x, attention)
    params = module.generate_params(x.shape, device, attention=grid)
    x_aug, retention = module(x, params=params)
    expected = 1 - (grid * params["cut"]).flatten(1).sum(1)
    torch.testing.assert_close(retention, expected)
    # Pixels cut are exactly the nearest upsampling of the cut cells.
    pixel_mask = F.interpolate(params["cut"].float().unsqueeze(1), size=(24, 24), mode="nearest")
    torch.testing.assert_close(x_aug, (1 - pixel_mask).expand_as(x))


def test_area_score(device):
    module = GCut(grid_size=5, score="area", generator=make_generator(device, 2))
    attention = _peaked_attention(128, 5, device)
    x_aug, retention = module(torch.randn(128, 1, 10, 10, device=device), attention=attention)
    grid = attention_to_grid(attention, (5, 5))
    params = module.generate_params((128, 1, 10, 10), device, make_generator(device, 2), attention=grid)
    m = params["candidates"].flatten(1).sum(1).float()
    n = params["num_cut"].float()
    torch.testing.assert_close(retention, torch.where(m > 0, 1 - n / m.clamp_min(1), 1.0))


@pytest.mark.parametrize(("sigma", "limit"), [(0.5, 0.5), (0.3, 1.0), (1.0, 0.25)])
def test_cut_count_follows_the_truncated_half_normal_law(device, sigma, limit):
    grid_side = 6
    # One hot cell pattern repeated: every sample has the same m.
    attention = torch.ones(20_000, grid_side, grid_side, device=device)
    attention[:, :3, :] = 5.0  # 18 cells above the mean
    module = GCut(grid_size=grid_side, sigma=sigma, limit=limit, generator=make_generator(device, 3))
    params = module.generate_params((20_000, 1, 6, 6), device, attention=attention_to_grid(attention, (grid_side, grid_side)))
    m = 18
    max_cut = math.floor(limit * m)
    counts = torch.bincount(params["num_cut"].cpu(), minlength=max_cut + 1).double()
    assert counts.numel() == max_cut + 1
    empirical = counts / counts.sum()

    def mass_below(t: float) -> float:  # P(|z|·σ·m < t)
        return math.erf(t / (sigma * m) / math.sqrt(2))

    expected = torch.tensor(
        [(mass_below(k + 1) - mass_below(k)) / mass_below(max_cut + 1) for k in range(max_cut + 1)],
        dtype=torch.float64,
    )
    assert (empirical - expected).abs().max().item() < 0.015


def test_cut_cells_are_uniform_among_candidates(device):
    attention = torch.zeros(20_000, 4, 4, device=device)
    attention[:, 0, :] = 1.0  # 4 candidates
    module = GCut(grid_size=4, sigma=1.0, limit=1.0, generator=make_generator(device, 8))
    params = module.generate_params((20_000, 1, 4, 4), device, attention=attention_to_grid(attention, (4, 4)))
    cut = params["cut"][params["num_cut"] == 1].float()
    frequency = cut[:, 0, :].mean(0)
    torch.testing.assert_close(frequency, torch.full_like(frequency, 0.25), atol=0.03, rtol=0)


def test_sample_without_candidates_is_unchanged(device):
    module = GCut(grid_size=4)
    x = torch.randn(3, 3, 8, 8, device=device)
    uniform = torch.ones(3, 4, 4, device=device)
    x_aug, retention = module(x, attention=uniform)
    assert torch.equal(x_aug, x)
    assert torch.equal(retention, torch.ones(3, device=device))


def test_all_zero_attention_means_no_preference(device):
    x_aug, retention = GCut(grid_size=3)(torch.randn(2, 1, 6, 6, device=device), attention=torch.zeros(2, 3, 3, device=device))
    assert torch.equal(retention, torch.ones(2, device=device))


def test_topk_candidates_and_tie_break():
    attention = torch.tensor([[[0.4, 0.1], [0.1, 0.4]]])
    assert candidate_cells(attention, "topk", 0.5).tolist() == [[[True, False], [False, True]]]
    ties = torch.full((1, 2, 2), 0.25)
    assert candidate_cells(ties, "topk", 0.25).tolist() == [[[True, False], [False, False]]]
    assert candidate_cells(ties, "mean").sum() == 0


@pytest.mark.parametrize(("grid", "size"), [((12, 12), (32, 32)), ((12, 12), (224, 224)), ((7, 5), (30, 17)), ((14, 14), (224, 224))])
def test_upsampling_matches_interpolate_nearest(grid, size):
    cells = torch.rand(3, *grid, generator=make_generator("cpu", 0)) > 0.5
    ours = upsample_cells(cells, size)
    reference = F.interpolate(cells.float().unsqueeze(1), size=size, mode="nearest") > 0.5
    assert torch.equal(ours, reference)


def test_per_channel_fill_tensor(device):
    x = torch.zeros(1, 3, 4, 4, device=device)
    cut = torch.tensor([[[True, False], [False, False]]], device=device)
    out = cut_cells(x, cut, torch.tensor([1.0, 2.0, 3.0]))
    assert out[0, :, 0, 0].tolist() == [1.0, 2.0, 3.0] and out[0, :, 3, 3].tolist() == [0.0, 0.0, 0.0]


@given(
    grid=st.integers(2, 10),
    sigma=st.floats(0.05, 3.0),
    limit=st.floats(0.05, 1.0),
    select=st.sampled_from(["mean", "topk"]),
    score=st.sampled_from(["attention", "area"]),
    seed=st.integers(0, 2**16),
)
def test_retention_always_in_unit_interval(grid, sigma, limit, select, score, seed):
    assume(limit * grid * grid >= 1)  # below, no cell can ever be cut and GCut refuses the limit
    generator = torch.Generator().manual_seed(seed)
    attention = torch.rand(8, grid, grid, generator=generator).pow(4)
    module = GCut(grid_size=grid, sigma=sigma, limit=limit, select=select, score=score, generator=generator)
    x_aug, retention = module(torch.randn(8, 1, 2 * grid, 2 * grid), attention=attention)
    assert bool(((retention >= 0) & (retention <= 1)).all())


# -- attention sources --------------------------------------------------------------------------


class TinyCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.head(self.features(x))


def test_forward_source_uses_the_model_and_restores_its_mode(device):
    model = TinyCNN().to(device)
    model.train()
    module = GCut(model, layer="features", grid_size=4, generator=make_generator(device, 0))
    bn = model.features[1]
    running_before = bn.running_mean.clone()
    x = torch.randn(4, 3, 16, 16, device=device)
    x_aug, retention = module(x)
    assert model.training  # restored
    assert model.calls == 1  # one extra pass
    assert torch.equal(bn.running_mean, running_before)  # eval mode: statistics untouched
    assert module.attention_source == "forward" and "attention_source='forward'" in repr(module)
    model.eval()
    module(x)
    assert not model.training


def test_forward_source_runs_without_gradients_and_stops_after_the_layer(device):
    model = TinyCNN().to(device)
    head_calls = []
    model.head.register_forward_hook(lambda *_: head_calls.append(1))
    seen_grad = []
    model.features.register_forward_hook(lambda _m, _i, out: seen_grad.append(out.requires_grad))
    GCut(model, layer="features", grid_size=4)(torch.randn(2, 3, 8, 8, device=device))
    assert seen_grad == [False]
    assert head_calls == []


def test_callable_source(device):
    calls = []

    def attention_fn(x):
        calls.append(x.shape)
        return x.abs().mean(1)

    module = GCut(attention_fn=attention_fn, grid_size=4)
    x_aug, retention = module(torch.randn(3, 3, 8, 8, device=device))
    assert calls == [torch.Size([3, 3, 8, 8])] and module.attention_source == "callable"


def test_argument_source_requires_attention():
    with pytest.raises(ValueError, match="needs attention= on every call"):
        GCut(grid_size=4)(torch.randn(2, 3, 8, 8))


@pytest.mark.parametrize(
    ("attention", "match"),
    [
        (torch.tensor(float("nan")).expand(2, 4, 4), r"attention must be finite; got 32 NaN/Inf"),
        (torch.full((2, 4, 4), float("inf")), "attention must be finite"),
        (-torch.ones(2, 4, 4), "attention must be non-negative; got minimum -1"),
        (torch.ones(3, 4, 4), "attention batch size must match x: expected 2; got 3"),
        (torch.ones(2, 4), r"attention must have shape \(B, h, w\) or \(B, 1, h, w\); got \(2, 4\)"),
    ],
)
def test_bad_attention_is_rejected(attention, match):
    with pytest.raises(ValueError, match=match):
        GCut(grid_size=4)(torch.randn(2, 3, 8, 8), attention=attention)


def test_integer_attention_is_rejected():
    with pytest.raises(TypeError, match="attention must have a floating dtype; got torch.int64"):
        GCut(grid_size=4)(torch.randn(2, 3, 8, 8), attention=torch.ones(2, 4, 4, dtype=torch.long))


def test_nan_from_attention_fn_is_rejected():
    module = GCut(attention_fn=lambda x: torch.full((x.shape[0], 3, 3), float("nan")), grid_size=3)
    with pytest.raises(ValueError, match=r"attention_fn\(x\) must be finite"):
        module(torch.randn(2, 1, 6, 6))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"sigma": 0}, ValueError, r"sigma must lie in \[0.01, 100\]; got 0"),
        ({"limit": 0.0}, ValueError, r"limit must lie in \(0, 1\]; got 0.0"),
        ({"limit": 1.2}, ValueError, r"limit must lie in \(0, 1\]; got 1.2"),
        ({"keep_ratio": 0}, ValueError, r"keep_ratio must lie in \(0, 1\]"),
        ({"select": "max"}, ValueError, r"select must be one of \['mean', 'topk'\]; got 'max'"),
        ({"score": "iou"}, ValueError, "score must be one of"),
        ({"grid_size": 0}, ValueError, "grid_size must be >= 1"),
        ({"grid_size": (2, 2, 2)}, TypeError, "grid_size must be an int or a pair of ints"),
        ({"attention_source": "forward"}, ValueError, "attention_source='forward' needs model="),
        ({"attention_source": "magic"}, ValueError, "attention_source must be one of"),
        ({"fill": "black"}, TypeError, "fill must be a float; got 'black'"),
        ({"attention_fn": 3}, TypeError, "attention_fn must be callable; got int"),
    ],
)
def test_bad_config_is_rejected(kwargs, error, match):
    with pytest.raises(error, match=match):
        GCut(**kwargs)


def test_unknown_layer_names_the_choices():
    with pytest.raises(ValueError, match="layer 'layer9' not found in TinyCNN; some layer names"):
        GCut(TinyCNN(), layer="layer9")


def test_vit_default_grid_is_the_patch_grid_with_the_authors_top_k():
    """vit_b_32 geometry at 224 px: a 7×7 patch grid, softmax over patches, top int(0.5·49) = 24."""
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    vit = torchvision.models.VisionTransformer(
        image_size=224, patch_size=32, num_layers=1, num_heads=2, hidden_dim=32, mlp_dim=64
    )
    gcut = GCut(vit, generator=make_generator("cpu", 0))
    assert gcut.grid_size is None and gcut.select == "topk" and "grid_size=native" in repr(gcut)
    x = torch.randn(3, 3, 224, 224)
    grid = gcut.compute_attention(x)
    assert grid.shape == (3, 7, 7)
    torch.testing.assert_close(grid.sum(dim=(1, 2)), torch.ones(3))
    params = gcut.generate_params(x.shape, attention=grid)
    assert params["candidates"].flatten(1).sum(1).tolist() == [24, 24, 24]
    x_aug, retention = gcut(x, params=params)
    assert bool(((retention > 0) & (retention <= 1)).all())
    # An explicit grid still resizes, as before.
    assert GCut(vit, grid_size=12).compute_attention(x).shape == (3, 12, 12)
