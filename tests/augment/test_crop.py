"""RandomResizedCropFlip and the functional geometry it shares with the attention cache."""

from __future__ import annotations

import math

import pytest
import torch

from gg_augment import RandomResizedCropFlip
from gg_augment.functional import resized_crop_flip, warp_to_original, warp_to_view

from ..conftest import make_generator


def _params(boxes, flips, device):
    return {
        "view_boxes": torch.tensor(boxes, dtype=torch.float32, device=device),
        "flips": torch.tensor(flips, dtype=torch.bool, device=device),
    }


def test_shape_dtype_and_input_unchanged(device, dtype):
    x = torch.randn(5, 3, 20, 24, device=device).to(dtype)
    before = x.clone()
    image, view = RandomResizedCropFlip((8, 10), generator=make_generator(device))(x, index=torch.arange(5, device=device))
    view_boxes, flips = view.boxes, view.flips
    assert torch.equal(view.index, torch.arange(5, device=device))
    assert image.shape == (5, 3, 8, 10) and image.dtype == dtype and image.device == x.device
    assert view_boxes.shape == (5, 4) and view_boxes.dtype == torch.float32
    assert flips.shape == (5,) and flips.dtype == torch.bool
    assert torch.equal(x, before)


def test_same_seed_is_bit_identical_and_replay_is_identical(device):
    x = torch.randn(16, 3, 16, 16, device=device)
    first = RandomResizedCropFlip(12, generator=make_generator(device, 7))(x)
    second = RandomResizedCropFlip(12, generator=make_generator(device, 7))(x)
    assert torch.equal(first.image, second.image)
    assert torch.equal(first.view.boxes, second.view.boxes) and torch.equal(first.view.flips, second.view.flips)
    crop = RandomResizedCropFlip(12)
    replay = crop(x, params={"view_boxes": first.view.boxes, "flips": first.view.flips})
    assert torch.equal(replay.image, first.image)
    assert torch.equal(crop.transform(x, {"view_boxes": first.view.boxes, "flips": first.view.flips}).image, first.image)


def test_full_box_is_the_identity_and_flip_mirrors(device):
    x = torch.randn(2, 3, 9, 13, device=device)
    crop = RandomResizedCropFlip((9, 13))
    same = crop(x, params=_params([[0, 0, 1, 1]] * 2, [False, False], device)).image
    torch.testing.assert_close(same, x, atol=1e-5, rtol=0)
    mirrored = crop(x, params=_params([[0, 0, 1, 1]] * 2, [True, False], device)).image
    torch.testing.assert_close(mirrored[0], x[0].flip(-1), atol=1e-5, rtol=0)
    torch.testing.assert_close(mirrored[1], x[1], atol=1e-5, rtol=0)


def test_crop_of_a_pixel_aligned_box_picks_those_pixels(device):
    x = torch.arange(64.0, device=device).view(1, 1, 8, 8)
    # Rows 2..5, columns 4..7 at the same resolution: an exact copy of that block.
    out = resized_crop_flip(x, torch.tensor([[2 / 8, 4 / 8, 6 / 8, 8 / 8]], device=device), size=(4, 4))
    torch.testing.assert_close(out[0, 0], x[0, 0, 2:6, 4:8], atol=1e-4, rtol=0)


def test_boxes_lie_in_the_image_and_follow_the_scale_and_ratio_law(device):
    scale, ratio = (0.2, 0.9), (0.5, 2.0)
    crop = RandomResizedCropFlip(8, scale=scale, ratio=ratio, generator=make_generator(device, 1))
    params = crop.generate_params((20_000, 3, 24, 32), device)
    boxes = params["view_boxes"].double().cpu()
    y0, x0, y1, x1 = boxes.unbind(1)
    assert bool(((boxes >= 0) & (boxes <= 1)).all())
    assert bool(((y0 < y1) & (x0 < x1)).all())
    area = (y1 - y0) * (x1 - x0)
    assert float(area.min()) >= scale[0] - 1e-5 and float(area.max()) <= scale[1] + 1e-5
    # Area is exactly U(scale): compare empirical quantiles with the uniform ones.
    quantiles = torch.tensor([0.1, 0.25, 0.5, 0.75, 0.9], dtype=torch.float64)
    expected = scale[0] + (scale[1] - scale[0]) * quantiles
    torch.testing.assert_close(torch.quantile(area, quantiles), expected, atol=0.015, rtol=0)
    pixel_ratio = ((x1 - x0) * 32) / ((y1 - y0) * 24)
    assert float(pixel_ratio.min()) >= ratio[0] - 1e-4 and float(pixel_ratio.max()) <= ratio[1] + 1e-4
    # Positions: the box centre spreads over the image, on average in the middle.
    centre = torch.stack([(y0 + y1) / 2, (x0 + x1) / 2], 1)
    torch.testing.assert_close(centre.mean(0), torch.tensor([0.5, 0.5], dtype=torch.float64), atol=0.01, rtol=0)


def test_ratio_range_without_the_image_aspect_keeps_the_area(device):
    # A 4:1 image with ratios near 1 and a full-area crop: no box of that ratio fits, the
    # ratio is clamped into what fits, the area stays in range.
    crop = RandomResizedCropFlip(4, scale=(0.95, 1.0), ratio=(0.9, 1.1), generator=make_generator(device, 2))
    boxes = crop.generate_params((2_000, 1, 8, 32), device)["view_boxes"].double()
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    assert float(area.min()) >= 0.95 - 1e-5 and float(boxes.max()) <= 1.0


@pytest.mark.parametrize("flip_p", [0.0, 0.3, 1.0])
def test_flip_frequency(device, flip_p):
    crop = RandomResizedCropFlip(4, flip_p=flip_p, generator=make_generator(device, 3))
    flips = crop.generate_params((20_000, 1, 8, 8), device)["flips"]
    assert abs(flips.float().mean().item() - flip_p) < 0.015


@pytest.mark.parametrize("batch", [0, 1])
def test_tiny_batches(device, batch):
    image, view = RandomResizedCropFlip(6, generator=make_generator(device))(torch.randn(batch, 2, 10, 10, device=device))
    assert image.shape == (batch, 2, 6, 6) and view.boxes.shape == (batch, 4) and view.flips.shape == (batch,)
    assert view.index is None


def test_warps_between_view_and_original(device):
    maps = torch.randn(3, 6, 6, device=device)
    flips = torch.tensor([True, False, True], device=device)
    in_view = warp_to_view(maps, None, flips)
    torch.testing.assert_close(in_view[0], maps[0].flip(-1), atol=1e-5, rtol=0)
    torch.testing.assert_close(in_view[1], maps[1], atol=1e-5, rtol=0)
    back, valid = warp_to_original(in_view, None, flips)
    assert bool(valid.all())
    torch.testing.assert_close(back, maps, atol=1e-5, rtol=0)
    # A box over the left half: only original cells whose centre lies in it are valid.
    _, valid = warp_to_original(maps, torch.tensor([[0.0, 0.0, 1.0, 0.5]] * 3, device=device))
    assert bool(valid[:, :, :3].all()) and not bool(valid[:, :, 3:].any())


def test_errors(device):
    with pytest.raises(ValueError, match=r"scale\[0\] must lie in"):
        RandomResizedCropFlip(8, scale=(0.0, 1.0))
    with pytest.raises(ValueError, match="scale must satisfy min <= max"):
        RandomResizedCropFlip(8, scale=(0.9, 0.5))
    with pytest.raises(ValueError, match=r"ratio\[0\] must be > 0"):
        RandomResizedCropFlip(8, ratio=(-1.0, 2.0))
    with pytest.raises(ValueError, match="flip_p must lie in"):
        RandomResizedCropFlip(8, flip_p=1.5)
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        RandomResizedCropFlip(8, generator=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="size must be >= 1"):
        RandomResizedCropFlip(0)
    crop = RandomResizedCropFlip(8)
    x = torch.randn(2, 3, 8, 8, device=device)
    with pytest.raises(ValueError, match=r"params\['view_boxes'\] must have shape \(2, 4\)"):
        crop(x, params=_params([[0, 0, 1, 1]], [False, False], device))
    with pytest.raises(ValueError, match=r"params\['flips'\] must have shape \(2,\)"):
        crop(x, params=_params([[0, 0, 1, 1]] * 2, [False], device))
    with pytest.raises(ValueError, match=r"x must have shape \(B, C, H, W\)"):
        crop(torch.randn(3, 8, 8, device=device))
    if device.type == "cpu" and torch.cuda.is_available():  # pragma: no cover - needs CUDA
        with pytest.raises(ValueError, match="generator must live on the input's device"):
            RandomResizedCropFlip(8, generator=torch.Generator("cpu"))(x.cuda())


def test_repr():
    text = repr(RandomResizedCropFlip(8, scale=(0.5, 1.0), flip_p=0.25))
    assert "size=(8, 8)" in text and "scale=(0.5, 1.0)" in text and "flip_p=0.25" in text
    assert math.isclose(RandomResizedCropFlip(8).ratio[0], 0.75)
