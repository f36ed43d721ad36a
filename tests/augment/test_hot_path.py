"""The hot path (issue 20) and composition (issue 19): no host reads with validation off, one
fused read with it on, layouts and dtypes kept, fast paths equal to the general ones, GG inside
image-only pipelines, and a clear refusal to export."""

from __future__ import annotations

import io
import warnings

import pytest
import torch

import gg_augment as gg
from gg_augment._checks import (
    check_attention,
    check_image_batch,
    check_index,
    check_retention,
    check_view_boxes,
)
from gg_augment.functional import cut_cells, translate, upsample_cells

from ..conftest import make_generator

HOST_READS = ("item", "tolist", "cpu", "__bool__", "__float__", "__int__")


@pytest.fixture
def host_reads(monkeypatch):
    """Counts the tensor methods that read a value on the host (a sync on CUDA)."""
    calls: list[str] = []
    for name in HOST_READS:
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _name=name, _original=original, **kwargs):
            calls.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    return calls


def _modules(validate_args: bool, generator: torch.Generator) -> dict[str, tuple[torch.nn.Module, dict]]:
    attention = torch.rand(4, 4, 4, generator=torch.Generator().manual_seed(5), device="cpu")
    return {
        "gt": (gg.GT(generator=generator, validate_args=validate_args), {}),
        "gt_const_p": (gg.GT(fill=0.5, p=0.5, generator=generator, validate_args=validate_args), {}),
        "gcut": (gg.GCut(grid_size=4, generator=generator, validate_args=validate_args), {"attention": attention}),
        "erasing": (gg.RandomErasingRetention(p=1.0, generator=generator, validate_args=validate_args), {}),
        "erasing_random": (gg.RandomErasingRetention(fill="random", generator=generator, validate_args=validate_args), {}),
        "crop": (gg.RandomResizedCropFlip(8, generator=generator, validate_args=validate_args), {}),
    }


@pytest.mark.parametrize("name", ["gt", "gt_const_p", "gcut", "erasing", "erasing_random", "crop"])
def test_no_host_read_with_validation_off(name, host_reads):
    module, context = _modules(False, torch.Generator().manual_seed(0))[name]
    x = torch.randn(4, 3, 16, 16)
    module(x, **context)  # the first call fills one-off host-side caches
    host_reads.clear()
    module(x, **context)
    params = module.generate_params(x.shape, attention=module.compute_attention(x, context["attention"])) if name == "gcut" else module.generate_params(x.shape)
    module(x, params=params, **context)
    assert host_reads == []


def test_checks_read_nothing_without_validate_values(host_reads):
    x = torch.randn(4, 3, 8, 8)
    check_image_batch(x, validate_values=False)
    check_attention(torch.rand(4, 3, 3), 4, validate_values=False)
    check_retention(torch.rand(4), 4, validate_values=False)
    check_index(torch.arange(4), 10, validate_values=False)
    check_view_boxes(torch.tensor([[0.0, 0.0, 1.0, 1.0]]).expand(4, 4), 4, validate_values=False)
    assert host_reads == []


def test_default_validation_reads_the_batch_once(host_reads):
    module = gg.GT(generator=torch.Generator().manual_seed(0))
    x = torch.randn(4, 3, 16, 16)
    module(x)
    host_reads.clear()
    module(x)
    assert len(host_reads) == 1  # one fused finiteness reduction, one sync


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_fused_finiteness_check_still_finds_each_bad_value(bad):
    x = torch.randn(4, 3, 16, 16)
    x[2, 1, 5, 7] = bad
    with pytest.raises(ValueError, match=r"x must be finite; got 1 NaN/Inf value"):
        gg.GT()(x)
    big = torch.full((2, 3, 8, 8), 3e38)  # finite values whose sum overflows: not an error
    gg.GT()(big)


def test_fused_range_checks_report_their_argument():
    with pytest.raises(ValueError, match=r"retention must lie in \[0, 1\]; got values in \[-0.5, 1\]"):
        check_retention(torch.tensor([-0.5, 1.0]), 2)
    with pytest.raises(ValueError, match=r"attention must be finite"):
        check_attention(torch.tensor([[[1.0, float("nan")]]]), 1)
    with pytest.raises(ValueError, match=r"attention must be non-negative; got minimum -1"):
        check_attention(torch.tensor([[[1.0, -1.0]]]), 1)
    with pytest.raises(ValueError, match=r"view_boxes must satisfy y0 < y1"):
        check_view_boxes(torch.tensor([[0.5, 0.0, 0.2, 1.0]]), 1)


@pytest.mark.parametrize("name", ["gt", "gt_const_p", "gcut", "erasing", "erasing_random", "crop"])
def test_layout_and_dtype_are_kept(name, device, dtype):
    x = torch.randn(4, 3, 16, 16, device=device).to(dtype)
    outputs = []
    for layout in (torch.contiguous_format, torch.channels_last):
        module, context = _modules(True, make_generator(device, 3))[name]
        context = {k: v.to(device) for k, v in context.items()}
        out = module(x.contiguous(memory_format=layout), **context)[0]
        assert out.dtype == dtype and out.is_contiguous(memory_format=layout)
        outputs.append(out)
    assert torch.equal(outputs[0], outputs[1])  # same draw, same values, whatever the layout


@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (3, 2, 5, 7), (2, 3, 16, 12), (5, 1, 9, 1)])
def test_window_translate_equals_the_gather(shape, device, dtype):
    generator = torch.Generator().manual_seed(sum(shape))
    x = torch.randn(shape, generator=generator).to(device=device, dtype=dtype)
    batch, channels, height, width = shape
    shift = torch.stack(
        [torch.randint(-2 * height, 2 * height + 1, (batch,), generator=generator),
         torch.randint(-2 * width, 2 * width + 1, (batch,), generator=generator)], 1
    ).to(device)
    for fill in (0.0, -2.5, torch.randn(batch, channels, generator=generator)):
        fast = translate(x, shift, fill)
        with torch.enable_grad():  # autograd takes the general gather path
            general = translate(x.clone().requires_grad_(True), shift, fill).detach()
        assert torch.equal(fast, general)
        assert torch.equal(fast.signbit(), general.signbit())


@pytest.mark.parametrize(("size", "grid"), [((16, 16), (4, 4)), ((12, 18), (3, 6)), ((13, 9), (4, 3)), ((36, 36), (12, 12))])
def test_grid_mask_cut_equals_the_pixel_mask(size, grid, device):
    generator = torch.Generator().manual_seed(size[0])
    x = torch.randn(3, 2, *size, generator=generator).to(device)
    cut = (torch.rand(3, *grid, generator=generator) > 0.5).to(device)
    expected = torch.where(upsample_cells(cut, size), torch.tensor(0.5, device=device), x)
    assert torch.equal(cut_cells(x, cut, 0.5), expected)


# -- composition (issue 19) ---------------------------------------------------------------------


def test_image_only_inside_v2_compose_with_transforms_after():
    v2 = pytest.importorskip("torchvision.transforms.v2")
    gt = gg.ImageOnly(gg.GT(sigma=0.2, generator=torch.Generator().manual_seed(0)))
    pipeline = v2.Compose([gt, v2.RandomHorizontalFlip(p=1.0), v2.Normalize([0.0] * 3, [2.0] * 3)])
    x = torch.randn(6, 3, 16, 16)
    out = pipeline(x)
    shifted, retention = gg.GT(sigma=0.2, generator=torch.Generator().manual_seed(0))(x)
    assert torch.equal(out, shifted.flip(-1) / 2.0)
    assert torch.equal(gt.take_retention(batch_size=6), retention)
    with pytest.raises(RuntimeError, match="no retention kept"):
        gt.take_retention()


def test_image_only_inside_v2_random_apply_on_both_branches():
    v2 = pytest.importorskip("torchvision.transforms.v2")
    tv_tensors = pytest.importorskip("torchvision.tv_tensors")
    gt = gg.ImageOnly(gg.GT(sigma=0.3))
    pipeline = v2.Compose([v2.RandomApply([gt], p=0.5), v2.RandomVerticalFlip(p=1.0)])
    torch.manual_seed(0)
    ran = skipped = 0
    for _ in range(12):
        x = tv_tensors.Image(torch.randn(4, 3, 8, 8))
        out = pipeline(x)
        assert isinstance(out, tv_tensors.Image) and out.shape == x.shape
        retention = gt.take_retention(batch_size=4)
        if bool((retention == 1).all()) and torch.equal(out, x.flip(-2)):
            skipped += 1
        else:
            ran += 1
    assert ran and skipped


def test_image_only_inside_kornia_augmentation_sequential():
    K = pytest.importorskip("kornia.augmentation")
    erasing = gg.ImageOnly(gg.RandomErasingRetention(p=1.0, generator=torch.Generator().manual_seed(1)))
    gt = gg.ImageOnly(gg.GT(sigma=0.2, generator=torch.Generator().manual_seed(2)))
    pipeline = K.AugmentationSequential(K.RandomHorizontalFlip(p=1.0), erasing, gt, K.RandomVerticalFlip(p=1.0))
    x = torch.randn(5, 3, 16, 16)
    out = pipeline(x)
    erased, r_erase = gg.RandomErasingRetention(p=1.0, generator=torch.Generator().manual_seed(1))(x.flip(-1))
    shifted, r_shift = gg.GT(sigma=0.2, generator=torch.Generator().manual_seed(2))(erased)
    assert torch.equal(out, shifted.flip(-2))
    assert torch.equal(erasing.take_retention(), r_erase) and torch.equal(gt.take_retention(), r_shift)


def test_image_only_multiplies_retention_until_taken():
    gt = gg.ImageOnly(gg.GT(sigma=0.3, generator=torch.Generator().manual_seed(0)))
    reference = gg.GT(sigma=0.3, generator=torch.Generator().manual_seed(0))
    x = torch.randn(4, 3, 16, 16)
    gt(gt(x))
    first = reference(x)
    second = reference(first[0])
    assert torch.equal(gt.take_retention(), first[1] * second[1])
    with pytest.raises(ValueError, match="batch_size must match the kept retention: expected 4; got 3"):
        gt(x)
        gt.take_retention(batch_size=3)


# -- export --------------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [lambda: gg.GT(), lambda: gg.RandomErasingRetention(), lambda: gg.RandomResizedCropFlip(8)], ids=["gt", "erasing", "crop"])
def test_export_is_refused_with_what_to_do(make):
    x = torch.randn(2, 3, 16, 16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(RuntimeError, match=r"cannot be exported with torch.jit.trace.*Export the model alone"):
            torch.jit.trace(make(), (x,))
        with pytest.raises(RuntimeError, match=r"cannot be exported with torch.jit.script.*Export the model alone"):
            torch.jit.script(make())
        with pytest.raises(RuntimeError, match=r"cannot be exported with torch.export.*Export the model alone"):
            torch.export.export(make(), (x,))
        pytest.importorskip("onnxscript")
        with pytest.raises(RuntimeError, match=r"Export the model alone"):
            torch.onnx.export(make(), (x,), io.BytesIO())


def test_hot_path_benchmark_writes_its_ratios(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    pytest.importorskip("matplotlib")
    benchmarks = Path(__file__).resolve().parents[2] / "benchmarks"
    finished = subprocess.run(
        [sys.executable, "hot_path.py", "--batch", "4", "--size", "16", "--grid", "4", "--repeats", "2", "--out", str(tmp_path)],
        cwd=benchmarks, capture_output=True, text=True,
    )
    assert finished.returncode == 0, finished.stderr[-2000:]
    import csv

    rows = {row["variant"]: row for row in csv.DictReader((tmp_path / "hot_path.csv").open())}
    assert float(rows["copy (x.clone())"]["x_copy"]) == 1.0
    assert rows["GT, validation off"]["host_reads_per_call"] == "0" and rows["GT"]["host_reads_per_call"] == "1"
    assert (tmp_path / "hot_path.png").stat().st_size > 0
    assert "GT / copy <= 5" in (tmp_path / "hot_path_targets.md").read_text()


@pytest.mark.slow
def test_hot_path_benchmark_times_training_steps_and_retrieval(tmp_path):
    import csv
    import subprocess
    import sys
    from pathlib import Path

    pytest.importorskip("matplotlib")
    benchmarks = Path(__file__).resolve().parents[2] / "benchmarks"
    finished = subprocess.run(
        [sys.executable, "hot_path.py", "--batch", "4", "--size", "16", "--grid", "4", "--repeats", "2",
         "--train-steps", "1", "--retrieval-database", "3000", "--out", str(tmp_path)],
        cwd=benchmarks, capture_output=True, text=True,
    )
    assert finished.returncode == 0, finished.stderr[-2000:]
    rows = {row["what"]: row for row in csv.DictReader((tmp_path / "hot_path_steps.csv").open())}
    for method in ("standard", "gt", "gcut-exact", "gcut-approx"):
        for precision in ("fp32", "bf16"):
            assert float(rows[f"training step: {method}, {precision}"]["images_per_s"]) > 0
    maps = {row["map"] for name, row in rows.items() if name.startswith("mAP@1000")}
    assert len(maps) == 1, maps            # every engine ranks to the same mAP
