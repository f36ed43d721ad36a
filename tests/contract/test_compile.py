"""torch.compile(fullgraph=True): GT, GCut on a given map, erasing, the loss and mAP compile
into one graph each (inductor on CPU) and give eager's results.

Two things keep a graph whole: ``validate_args=False`` (each check is a host sync) and no
``generator=`` (dynamo cannot trace a torch.Generator; the global RNG is used instead).
``fallback_random=True`` makes inductor draw exactly eager's random numbers, so outputs can
be compared bit for bit; without it the compiled draws follow the same distributions.
"""

from __future__ import annotations

import pytest
import torch
from torch._inductor import config as inductor_config

import gg_augment as gg
from gg_augment.hashing import sign_codes
from gg_augment.metrics import mean_average_precision

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _eager_and_compiled(fn, *args, seed=0):
    torch._dynamo.reset()
    torch.manual_seed(seed)
    eager = fn(*args)
    compiled_fn = torch.compile(fn, fullgraph=True)
    with inductor_config.patch(fallback_random=True):
        torch.manual_seed(seed)
        compiled = compiled_fn(*args)
    return eager, compiled


def _assert_same(eager, compiled):
    for a, b in zip(eager if isinstance(eager, tuple) else (eager,), compiled if isinstance(compiled, tuple) else (compiled,), strict=True):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)


@pytest.fixture
def images():
    return torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize(
    "module",
    [
        gg.GT(sigma=0.2, fill="random", validate_args=False),
        gg.RandomErasingRetention(validate_args=False),
        gg.RandomErasingRetention.authors(validate_args=False),
    ],
    ids=["gt", "erasing", "erasing-authors"],
)
def test_random_augmentations_compile_to_one_graph(images, module):
    eager, compiled = _eager_and_compiled(module, images)
    _assert_same(eager, compiled)
    assert not torch.equal(eager[0], images)  # it did augment


def test_gcut_on_a_given_attention_map_compiles(images):
    attention = torch.rand(8, 6, 6, generator=torch.Generator().manual_seed(1))
    gcut = gg.GCut(grid_size=6, validate_args=False)
    eager, compiled = _eager_and_compiled(lambda x, a: gcut(x, attention=a), images, attention)
    _assert_same(eager, compiled)
    assert bool((eager[1] < 1).any())


@pytest.mark.parametrize("similarity", ["hash", "cosine"])
def test_the_loss_and_its_gradient_compile(similarity):
    generator = torch.Generator().manual_seed(0)
    outputs = torch.tanh(torch.randn(16, 12, generator=generator))
    labels, weight = torch.arange(16) % 3, torch.rand(16, generator=generator)
    loss_fn = gg.RetentionWeightedPairwiseLoss(similarity, validate_args=False)

    def loss_and_grad(o, y, w):
        o = o.clone().requires_grad_()
        loss = loss_fn(o, y, w)
        (grad,) = torch.autograd.grad(loss, o)
        return loss, grad

    eager = loss_and_grad(outputs, labels, weight)
    torch._dynamo.reset()
    compiled_loss = torch.compile(loss_fn, fullgraph=True)
    o = outputs.clone().requires_grad_()
    loss = compiled_loss(o, labels, weight)
    (grad,) = torch.autograd.grad(loss, o)
    _assert_same(eager, (loss, grad))


def test_map_compiles():
    generator = torch.Generator().manual_seed(0)
    query, database = sign_codes(torch.randn(30, 16, generator=generator)), sign_codes(torch.randn(80, 16, generator=generator))
    query_labels, database_labels = torch.arange(30) % 4, torch.arange(80) % 4
    fn = lambda q, d, ql, dl: mean_average_precision(q, d, ql, dl, k=20, validate_args=False)  # noqa: E731
    eager, compiled = _eager_and_compiled(fn, query, database, query_labels, database_labels)
    _assert_same(eager, compiled)


def test_compile_benchmark_writes_its_ratios(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    benchmarks = Path(__file__).resolve().parents[2] / "benchmarks"
    finished = subprocess.run(
        [sys.executable, "compile_speed.py", "--batch", "8", "--repeats", "2", "--out", str(tmp_path)],
        cwd=benchmarks, capture_output=True, text=True, timeout=1800,
    )
    assert finished.returncode == 0, finished.stderr[-2000:]
    rows = (tmp_path / "compile_speed.csv").read_text().splitlines()
    assert len(rows) == 6 and rows[0].endswith("eager / compiled")
