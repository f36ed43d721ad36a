"""GT: offsets distribution, retention formulas, fill modes, errors."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

from gg_augment import GT
from gg_augment.functional import gt, gt_retention, translate

from ..conftest import make_generator


def _discrete_truncated_normal(std: float, bound: int) -> tuple[float, float]:
    """Mean and std of round(N(0, std²)) restricted to |k| <= bound (GT's offset law)."""
    ks = torch.arange(-bound, bound + 1, dtype=torch.float64)
    cdf = torch.special.ndtr
    mass = cdf((ks + 0.5) / std) - cdf((ks - 0.5) / std)
    mass = mass / mass.sum()
    mean = float((mass * ks).sum())
    return mean, math.sqrt(float((mass * (ks - mean) ** 2).sum()))


@pytest.mark.parametrize(("sigma", "max_shift"), [(0.3, 1.0), (0.3, 0.4), (0.15, 0.25)])
def test_offsets_follow_the_truncated_normal(device, sigma, max_shift):
    height, width = 40, 24
    module = GT(sigma=sigma, max_shift=max_shift, generator=make_generator(device, 11))
    shift = module.generate_params((40_000, 1, height, width), device)["shift"].cpu().double()
    for axis, side in enumerate((height, width)):
        offsets = shift[:, axis]
        bound = math.floor(max_shift * side)
        assert offsets.abs().max() <= bound
        _, expected_std = _discrete_truncated_normal(sigma * side, bound)
        assert offsets.std().item() == pytest.approx(expected_std, rel=0.03)
        assert abs(offsets.mean().item()) < 0.05 * sigma * side
        # The whole law, not just its moments: each offset's frequency against its probability.
        ks = torch.arange(-bound, bound + 1, dtype=torch.float64)
        cdf = torch.special.ndtr
        mass = cdf((ks + 0.5) / (sigma * side)) - cdf((ks - 0.5) / (sigma * side))
        mass = mass / mass.sum()
        counts = torch.bincount((offsets + bound).long(), minlength=2 * bound + 1).double()
        assert (counts / counts.sum() - mass).abs().max().item() < 0.01
        if max_shift < 1.0:
            # Truncation is exact, not clamping: the bound holds no spike of clamped mass.
            at_bound = (offsets.abs() == bound).double().mean().item()
            assert at_bound == pytest.approx(float(mass[0] + mass[-1]), abs=0.01)


def test_retention_equals_measured_visible_share(device):
    x = torch.ones(64, 1, 20, 30, device=device)
    module = GT(sigma=0.4, fill=0.0, generator=make_generator(device, 5))
    x_aug, retention = module(x)
    visible = x_aug.flatten(1).mean(dim=1)
    torch.testing.assert_close(retention, visible)


def test_iou_mode_matches_its_formula(device):
    shift = torch.tensor([[3, -4], [0, 0], [-10, 10]], device=device)
    intersection = torch.tensor([(10 - 3) * (10 - 4), 100, 0], device=device).float()
    expected = intersection / (200 - intersection)
    torch.testing.assert_close(gt_retention(shift, (10, 10), "iou"), expected)


def test_translate_moves_content_and_fills(device):
    x = torch.arange(16.0, device=device).view(1, 1, 4, 4)
    out = translate(x, torch.tensor([[1, -2]], device=device), fill=-1.0)
    expected = torch.tensor(
        [[-1, -1, -1, -1], [2, 3, -1, -1], [6, 7, -1, -1], [10, 11, -1, -1]],
        dtype=torch.float32,
        device=device,
    )
    torch.testing.assert_close(out[0, 0], expected)


def test_translate_matches_a_per_sample_roll(device):
    generator = make_generator(device, 2)
    x = torch.randn(16, 3, 9, 13, device=device, generator=generator)
    shift = torch.randint(-12, 13, (16, 2), device=device, generator=generator)
    fill = torch.randn(16, 3, device=device, generator=generator)
    out = translate(x, shift, fill)
    for i in range(16):  # the reference is allowed a loop
        dy, dx = shift[i].tolist()
        ref = torch.empty_like(x[i])
        ref[:] = fill[i].view(3, 1, 1)
        src = x[i]
        ys, yd = (slice(0, 9 - dy), slice(dy, 9)) if dy >= 0 else (slice(-dy, 9), slice(0, 9 + dy))
        xs, xd = (slice(0, 13 - dx), slice(dx, 13)) if dx >= 0 else (slice(-dx, 13), slice(0, 13 + dx))
        if abs(dy) < 9 and abs(dx) < 13:
            ref[:, yd, xd] = src[:, ys, xs]
        torch.testing.assert_close(out[i], ref)


def test_reflect_mode_mirrors_and_keeps_foreground_retention(device):
    x = torch.arange(5.0, device=device).view(1, 1, 1, 5).expand(1, 1, 3, 5)
    out, retention = gt(x, torch.tensor([[0, 2]], device=device), reflect=True)
    torch.testing.assert_close(out[0, 0, 0], torch.tensor([2.0, 1.0, 0.0, 1.0, 2.0], device=device))
    assert retention.item() == pytest.approx(3 / 5)


def test_reflect_mode_handles_shifts_as_large_as_the_image(device):
    x = torch.randn(4, 2, 6, 6, device=device)
    shift = torch.tensor([[6, -6], [-6, 6], [5, 0], [0, -11]], device=device)
    out, retention = gt(x, shift, reflect=True)
    assert torch.isfinite(out).all()
    assert set(out.flatten().tolist()) <= set(x.flatten().tolist())
    torch.testing.assert_close(retention[:2], torch.zeros(2, device=device))


def test_random_fill_is_per_sample_and_channel(device):
    module = GT(sigma=0.5, fill="random", fill_scale=2.0, generator=make_generator(device, 9))
    params = module.generate_params((5000, 3, 8, 8), device)
    fill = params["fill"]
    assert fill.shape == (5000, 3)
    assert fill.std().item() == pytest.approx(2.0, rel=0.05)


@given(
    dy=st.integers(-70, 70),
    dx=st.integers(-70, 70),
    height=st.integers(1, 64),
    width=st.integers(1, 64),
    mode=st.sampled_from(["foreground", "iou"]),
)
def test_retention_is_always_in_unit_interval(dy, dx, height, width, mode):
    retention = gt_retention(torch.tensor([[dy, dx]]), (height, width), mode)
    assert 0.0 <= retention.item() <= 1.0


@given(
    height=st.integers(1, 40),
    width=st.integers(1, 40),
    mode=st.sampled_from(["foreground", "iou"]),
    reflect=st.booleans(),
)
def test_zero_shift_keeps_everything(height, width, mode, reflect):
    x = torch.randn(2, 3, height, width)
    out, retention = gt(x, torch.zeros(2, 2, dtype=torch.long), 0.0, reflect=reflect, overlap=mode)
    assert torch.equal(out, x)
    assert torch.equal(retention, torch.ones(2))


@given(sigma=st.floats(0.01, 2.0), max_shift=st.floats(0.05, 1.0), seed=st.integers(0, 2**16))
def test_module_retention_in_unit_interval_for_any_config(sigma, max_shift, seed):
    assume(max_shift * 12 >= 1)  # below, no whole-pixel shift fits and GT refuses the call
    module = GT(sigma=sigma, max_shift=max_shift, generator=torch.Generator().manual_seed(seed))
    _, retention = module(torch.randn(16, 1, 12, 7))
    assert bool(((retention >= 0) & (retention <= 1)).all())


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"sigma": 0.0}, ValueError, r"sigma must lie in \[0.001, 10\]; got 0.0"),
        ({"sigma": -1}, ValueError, "sigma must lie in"),
        ({"max_shift": 1.5}, ValueError, r"max_shift must lie in \(0, 1\]; got 1.5"),
        ({"fill": "zeros"}, ValueError, r"fill must be one of \['random', 'reflect'\]; got 'zeros'"),
        ({"fill": None}, TypeError, "fill must be 'random', 'reflect' or a float; got None"),
        ({"overlap": "area"}, ValueError, "overlap must be one of"),
        ({"sigma": "big"}, TypeError, "sigma must be a real number; got str"),
    ],
)
def test_bad_config_is_rejected(kwargs, error, match):
    with pytest.raises(error, match=match):
        GT(**kwargs)


def test_replay_params_of_wrong_batch_are_rejected():
    module = GT()
    params = module.generate_params((4, 3, 8, 8))
    with pytest.raises(ValueError, match=r"params\['shift'\] must have shape \(3, 2\)"):
        module(torch.randn(3, 3, 8, 8), params=params)


def test_gradients_flow_through_the_translation():
    x = torch.randn(2, 1, 5, 5, requires_grad=True)
    out = translate(x, torch.tensor([[1, 0], [0, -2]]), fill=0.0)
    out.sum().backward()
    # Every source pixel that stays visible receives gradient 1, the rest 0.
    assert x.grad[0, 0, :4].eq(1).all() and x.grad[0, 0, 4].eq(0).all()
    assert x.grad[1, 0, :, 2:].eq(1).all() and x.grad[1, 0, :, :2].eq(0).all()
