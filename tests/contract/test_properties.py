"""Property suite over the public modules: for any shape, dtype, batch size (0, 1, many),
generator and values (NaN/Inf included), the outcome is either a ValueError/TypeError naming an
argument, or a finite output with retention/weights in [0, 1] and the input unchanged."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import gg_augment as gg
from gg_augment.metrics import mean_average_precision

POISONS = [None, float("nan"), float("inf"), float("-inf")]
DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]


def _poisoned(t: torch.Tensor, poison: float | None) -> torch.Tensor:
    if poison is not None and t.numel():
        t = t.clone()
        t.view(-1)[0] = poison
    return t


def _augmentations(height: int, width: int, seed: int | None):
    def generator():
        return None if seed is None else torch.Generator().manual_seed(seed)

    grid = (min(height, 4), min(width, 4))
    return {
        "GT": (gg.GT(sigma=0.2, generator=generator()), {}),
        "GT reflect": (gg.GT(fill="reflect", generator=generator()), {}),
        "erasing": (gg.RandomErasingRetention(p=1.0, fill="random", generator=generator()), {}),
        "GCut": (gg.GCut(grid_size=grid, generator=generator()), {"attention": True}),
        "GCut area": (gg.GCut(grid_size=grid, score="area", select="topk", generator=generator()), {"attention": True}),
    }


@given(
    batch=st.sampled_from([0, 1, 5]),
    channels=st.integers(1, 3),
    height=st.integers(2, 20),
    width=st.integers(2, 20),
    dtype=st.sampled_from(DTYPES),
    poison=st.sampled_from(POISONS),
    seed=st.one_of(st.none(), st.integers(0, 2**16)),
)
def test_retention_augmentations(batch, channels, height, width, dtype, poison, seed):
    x = _poisoned(torch.randn(batch, channels, height, width).to(dtype), poison)
    before = x.clone()
    for name, (module, needs) in _augmentations(height, width, seed).items():
        kwargs = {"attention": torch.rand(batch, 3, 3)} if needs else {}
        if poison is not None and batch:
            with pytest.raises(ValueError, match="x must be finite"):
                module(x, **kwargs)
            continue
        x_aug, retention = module(x, **kwargs)
        assert torch.equal(x, before), name
        assert x_aug.shape == x.shape and x_aug.dtype == dtype, name
        assert retention.shape == (batch,) and retention.dtype == dtype, name
        assert bool(torch.isfinite(x_aug).all()), name
        assert bool(((retention >= 0) & (retention <= 1)).all()), name


@given(
    batch=st.sampled_from([0, 1, 6]),
    size=st.integers(2, 24),
    dtype=st.sampled_from(DTYPES),
    poison=st.sampled_from(POISONS),
    seed=st.integers(0, 2**16),
)
def test_crop_and_pipeline(batch, size, dtype, poison, seed):
    x = _poisoned(torch.randn(batch, 2, 16, 16).to(dtype), poison)
    before = x.clone()
    generator = torch.Generator().manual_seed(seed)
    pipeline = gg.RetentionPipeline(
        gg.GT(sigma=0.3, generator=generator), crop=gg.RandomResizedCropFlip(size, generator=generator)
    )
    if poison is not None and batch:
        with pytest.raises(ValueError, match="x must be finite"):
            pipeline(x, torch.arange(batch))
        return
    x_aug, weight = pipeline(x, torch.arange(batch))
    assert torch.equal(x, before)
    assert x_aug.shape == (batch, 2, size, size) and weight.shape == (batch,)
    assert bool(torch.isfinite(x_aug).all())
    assert bool(((weight >= 0) & (weight <= 1)).all())


@given(
    values=st.lists(st.one_of(st.floats(-0.5, 1.5), st.sampled_from([float("nan"), float("inf")])), max_size=8),
    curve=st.sampled_from(["identity", "power"]),
    p_min=st.floats(0, 1),
)
def test_semantic_retention(values, curve, p_min):
    retention = torch.tensor(values, dtype=torch.float32)
    module = gg.SemanticRetention(curve, p_min=p_min)
    valid = bool(((retention >= 0) & (retention <= 1)).all())  # as stored in float32; NaN is False
    if not valid:
        with pytest.raises(ValueError, match="retention must"):
            module(retention)
        return
    weight = module(retention)
    assert weight.shape == retention.shape
    assert bool(((weight >= p_min - 1e-6) & (weight <= 1)).all())


@given(
    batch=st.sampled_from([0, 1, 2, 7]),
    code_length=st.integers(1, 16),
    multi_hot=st.booleans(),
    poison=st.sampled_from(POISONS),
    weight_kind=st.sampled_from(["none", "unit", "out of range", "nan"]),
    dtype=st.sampled_from([torch.float32, torch.float64, torch.bfloat16]),
)
def test_loss(batch, code_length, multi_hot, poison, weight_kind, dtype):
    outputs = _poisoned(torch.tanh(torch.randn(batch, code_length)).to(dtype), poison)
    labels = (torch.rand(batch, 3) > 0.5).float() if multi_hot else torch.randint(0, 3, (batch,))
    weight = {
        "none": None,
        "unit": torch.rand(batch),
        "out of range": torch.rand(batch) + 1.5,
        "nan": torch.full((batch,), float("nan")),
    }[weight_kind]
    loss_fn = gg.RetentionWeightedPairwiseLoss()
    bad_outputs = poison is not None and batch
    bad_weight = weight_kind in ("out of range", "nan") and batch
    if bad_outputs or bad_weight:
        with pytest.raises(ValueError, match="outputs must be finite" if bad_outputs else "weight must"):
            loss_fn(outputs, labels, weight)
        return
    loss = loss_fn(outputs, labels, weight)
    assert loss.ndim == 0 and bool(torch.isfinite(loss))


@given(
    num_query=st.integers(0, 6),
    num_database=st.integers(1, 12),
    bits=st.integers(1, 16),
    k=st.one_of(st.none(), st.integers(1, 20)),
    multi_hot=st.booleans(),
)
def test_map(num_query, num_database, bits, k, multi_hot):
    def codes(n):
        return torch.randint(0, 2, (n, bits)).float() * 2 - 1

    def labels(n):
        return (torch.rand(n, 4) > 0.5).float() if multi_hot else torch.randint(0, 3, (n,))

    query, database = codes(num_query), codes(num_database)
    if num_query == 0:
        with pytest.raises(ValueError, match="query"):
            mean_average_precision(query, database, labels(0), labels(num_database), k=k)
        return
    value = float(mean_average_precision(query, database, labels(num_query), labels(num_database), k=k))
    assert 0.0 <= value <= 1.0
