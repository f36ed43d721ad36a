"""The checks every augmentation passes (STYLE §9), parametrized over module, device and dtype."""

from __future__ import annotations

import pytest
import torch

from gg_augment import GT, GCut, RandomErasingRetention

from ..conftest import make_generator

GRID = 4


def _attention(batch: int, device: torch.device) -> torch.Tensor:
    return torch.rand(batch, GRID, GRID, generator=make_generator("cpu", 1)).to(device)


AUGMENTATIONS = {
    "gt-random": lambda **kw: GT(**kw),
    "gt-constant-iou": lambda **kw: GT(fill=0.5, overlap="iou", **kw),
    "gt-reflect": lambda **kw: GT(fill="reflect", sigma=0.2, **kw),
    "erasing-random": lambda **kw: RandomErasingRetention(fill="random", **{"p": 1.0} | kw),
    "erasing-constant": lambda **kw: RandomErasingRetention(fill=0.0, scale=(0.1, 0.5), **{"p": 1.0} | kw),
    "gcut-mean": lambda **kw: GCut(grid_size=GRID, **kw),
    "gcut-topk-area": lambda **kw: GCut(grid_size=GRID, select="topk", score="area", **kw),
}


def _run(name: str, module, x: torch.Tensor, params=None):
    if name.startswith("gcut"):
        return module(x, attention=_attention(x.shape[0], x.device), params=params)
    return module(x, params=params)


def _params(name: str, module, x: torch.Tensor, generator=None):
    if name.startswith("gcut"):
        grid = module.compute_attention(x, _attention(x.shape[0], x.device))
        return module.generate_params(x.shape, x.device, generator, attention=grid)
    return module.generate_params(x.shape, x.device, generator)


@pytest.fixture(params=sorted(AUGMENTATIONS))
def name(request) -> str:
    return request.param


def test_shape_dtype_and_range(name, device, dtype):
    x = torch.randn(6, 3, 16, 16, device=device).to(dtype)
    x_aug, retention = _run(name, AUGMENTATIONS[name](), x)
    assert x_aug.shape == x.shape and x_aug.dtype == dtype and x_aug.device == x.device
    assert retention.shape == (6,) and retention.dtype == dtype and retention.device == x.device
    assert bool(((retention >= 0) & (retention <= 1)).all())


def test_input_unchanged(name, device):
    x = torch.randn(5, 3, 16, 16, device=device)
    before = x.clone()
    x_aug, _ = _run(name, AUGMENTATIONS[name](), x)
    assert torch.equal(x, before)
    assert x_aug.data_ptr() != x.data_ptr()


def test_replay_is_identical(name, device):
    module = AUGMENTATIONS[name]()
    x = torch.randn(8, 3, 16, 16, device=device)
    params = _params(name, module, x)
    first = _run(name, module, x, params)
    second = _run(name, module, x, params)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])


def test_same_generator_seed_is_bit_identical(name, device):
    x = torch.randn(8, 3, 16, 16, device=device)
    out_a = _run(name, AUGMENTATIONS[name](generator=make_generator(device, 7)), x)
    out_b = _run(name, AUGMENTATIONS[name](generator=make_generator(device, 7)), x)
    out_c = _run(name, AUGMENTATIONS[name](generator=make_generator(device, 8)), x)
    assert torch.equal(out_a[0], out_b[0]) and torch.equal(out_a[1], out_b[1])
    assert not torch.equal(out_a[0], out_c[0])


def test_p_zero_is_identity(name, device):
    x = torch.randn(8, 3, 16, 16, device=device)
    x_aug, retention = _run(name, AUGMENTATIONS[name](p=0.0), x)
    assert torch.equal(x_aug, x)
    assert torch.equal(retention, torch.ones_like(retention))


def test_p_half_leaves_about_half_untouched(name, device):
    x = torch.randn(400, 1, 16, 16, device=device)
    x_aug, _ = _run(name, AUGMENTATIONS[name](p=0.5, generator=make_generator(device, 3)), x)
    unchanged = (x_aug == x).flatten(1).all(dim=1).float().mean()
    # At least the ~50% not drawn are untouched; a drawn sample may also be a no-op (n = 0).
    assert 0.4 < float(unchanged) < 0.8


@pytest.mark.parametrize("batch", [0, 1])
def test_tiny_batches(name, device, batch):
    x = torch.randn(batch, 3, 16, 16, device=device)
    x_aug, retention = _run(name, AUGMENTATIONS[name](), x)
    assert x_aug.shape == x.shape and retention.shape == (batch,)


def test_generator_on_wrong_device_is_rejected(name):
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA to have two device types")
    module = AUGMENTATIONS[name](generator=make_generator("cpu"))
    with pytest.raises(ValueError, match="generator must live on the input's device"):
        _run(name, module, torch.randn(2, 3, 16, 16, device="cuda"))


@pytest.mark.parametrize(
    ("x", "error", "match"),
    [
        (torch.randn(3, 16, 16), ValueError, r"x must have shape \(B, C, H, W\); got \(3, 16, 16\)"),
        (torch.zeros(2, 3, 16, 16, dtype=torch.uint8), TypeError, "x must have a floating dtype.*uint8"),
        ([[1.0]], TypeError, "x must be a torch.Tensor; got list"),
    ],
)
def test_bad_images_are_rejected(name, x, error, match):
    module = AUGMENTATIONS[name]()
    with pytest.raises(error, match=match):
        if name.startswith("gcut"):
            module(x, attention=torch.rand(2, GRID, GRID))
        else:
            module(x)


@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_bad_probability_is_rejected(name, p):
    with pytest.raises(ValueError, match=r"p must lie in \[0, 1\]"):
        AUGMENTATIONS[name](p=p)


def test_unknown_keywords_are_rejected(name):
    module = AUGMENTATIONS[name]()
    with pytest.raises(TypeError, match=r"got unexpected keyword\(s\) \['index'\]"):
        _run_with(module, name, torch.randn(2, 3, 16, 16), index=torch.arange(2))


def _run_with(module, name: str, x: torch.Tensor, **context):
    if name.startswith("gcut"):
        context["attention"] = _attention(x.shape[0], x.device)
    return module(x, **context)


def test_erasing_retention_is_the_unerased_share(device):
    module = RandomErasingRetention(scale=(0.05, 0.6), ratio=(0.2, 5.0), fill=0.0, p=1.0, generator=make_generator(device, 4))
    x = torch.ones(500, 1, 20, 24, device=device)
    x_aug, retention = module(x)
    torch.testing.assert_close(retention, x_aug.flatten(1).mean(1))
    erased = 1 - retention
    # Area share follows U(scale) up to the clipping of very elongated boxes and rounding.
    assert 0.03 <= float(erased.min()) and float(erased.max()) <= 0.65
    assert abs(float(erased.mean()) - 0.325) < 0.05


def test_erasing_authors_rule_ignores_erasures_below_a_quarter(device):
    module = RandomErasingRetention.authors(generator=make_generator(device, 6))
    assert (module.p, module.scale, module.min_share) == (0.5, (0.02, 0.5), 0.25)
    x = torch.ones(4000, 1, 20, 20, device=device)
    x_aug, retention = module(x)
    erased = 1 - x_aug.flatten(1).mean(1)
    small = erased < 0.25
    assert bool(small.any()) and bool((~small).any())
    # Below a quarter: r = 1 even though pixels were erased; from a quarter up: r = 1 - share.
    assert torch.equal(retention[small], torch.ones_like(retention[small]))
    torch.testing.assert_close(retention[~small], 1 - erased[~small])
    assert abs(float((erased > 0).float().mean()) - 0.5) < 0.03  # p = 0.5
    assert float(erased.max()) <= 0.5 + 0.05
