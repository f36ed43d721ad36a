"""SemanticRetention: curves, activation, clamping, errors."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from gg_augment import SemanticRetention


def test_identity_is_the_default(device):
    r = torch.linspace(0, 1, 11, device=device)
    torch.testing.assert_close(SemanticRetention()(r), r)


def test_power_curve_formula(device):
    r = torch.linspace(0, 1, 11, device=device)
    w = SemanticRetention("power", p_min=0.3, k=3)(r)
    torch.testing.assert_close(w, 1 - 0.7 * (1 - r) ** 3)
    assert w[0].item() == pytest.approx(0.3) and w[-1].item() == pytest.approx(1.0)


def test_callable_curve_and_clamp(device):
    w = SemanticRetention(lambda r: 2 * r - 0.5, p_min=0.1)(torch.tensor([0.0, 0.5, 1.0], device=device))
    torch.testing.assert_close(w, torch.tensor([0.1, 0.5, 1.0], device=device))


def test_sigmoid_below_half_is_the_authors_activation(device):
    """Below 0.5: σ(2r) − (σ(1) − 0.5), which lifts low retention (the authors' values)."""
    r = torch.tensor([0.0, 0.25, 0.4, 0.5, 0.51, 0.9], device=device)
    w = SemanticRetention(sigmoid_below_half=True)(r)
    expected = torch.tensor([0.269, 0.391, 0.459, 0.5, 0.51, 0.9], device=device)
    torch.testing.assert_close(w, expected, atol=5e-4, rtol=0)
    assert bool((w[:3] > r[:3]).all())  # lifted, never pushed down


def test_keeps_dtype(device, dtype):
    r = torch.rand(7, device=device).to(dtype)
    assert SemanticRetention("power")(r).dtype == dtype


@given(
    r=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=16),
    curve=st.sampled_from(["identity", "power"]),
    p_min=st.floats(0.0, 1.0),
    k=st.floats(0.1, 5.0),
    sigmoid=st.booleans(),
)
def test_weight_always_in_floor_to_one(r, curve, p_min, k, sigmoid):
    w = SemanticRetention(curve, p_min=p_min, k=k, sigmoid_below_half=sigmoid)(torch.tensor(r))
    assert bool(((w >= p_min - 1e-6) & (w <= 1.0)).all())


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"curve": "cubic"}, ValueError, "curve must be 'identity', 'power' or a callable; got 'cubic'"),
        ({"curve": 3}, TypeError, "curve must be .* got int"),
        ({"p_min": 1.5}, ValueError, r"p_min must lie in \[0, 1\]; got 1.5"),
        ({"k": 0}, ValueError, r"k must be > 0; got 0"),
    ],
)
def test_bad_config_is_rejected(kwargs, error, match):
    with pytest.raises(error, match=match):
        SemanticRetention(**kwargs)


def test_bad_retention_is_rejected():
    with pytest.raises(ValueError, match=r"retention must lie in \[0, 1\]; got values in \[-0.5, 1\]"):
        SemanticRetention()(torch.tensor([-0.5, 1.0]))
    with pytest.raises(ValueError, match=r"retention must have shape \(B,\); got \(2, 2\)"):
        SemanticRetention()(torch.ones(2, 2))
    with pytest.raises(ValueError, match=r"curve\(retention\) must return a tensor of shape \(2,\)"):
        SemanticRetention(lambda r: r.sum())(torch.ones(2))
