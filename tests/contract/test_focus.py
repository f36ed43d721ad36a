"""benchmarks/focus.py: attention on the foreground, per definition, on feature maps known by hand."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from gg_augment import GCut

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def focus(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks import focus

    return focus


class FixedFeatures(nn.Module):
    """A layer whose (C, h, w) output is the same for every image, whatever the image."""

    def __init__(self, features: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("features", features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features.expand(x.shape[0], *self.features.shape)


def _signed_pair(device, amplitude: float = 1.0) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """A 2x2 map over 4x4 images whose left cells hold +a and -a in two channels: channel
    mean 0 everywhere, energy (a² + a²)/2 = a² on the left, 0 on the right; the garment is
    the left half of the image."""
    features = torch.zeros(2, 2, 2)
    features[0, :, 0], features[1, :, 0] = amplitude, -amplitude
    model = nn.Sequential(FixedFeatures(features)).to(device)
    images = torch.zeros(3, 1, 4, 4, device=device)
    images[..., :2] = 1.0
    return model, images, images[:, 0]


def test_energy_finds_a_garment_the_channel_mean_cannot_see(focus, device):
    model, images, foreground = _signed_pair(device)
    mean = focus.attention_focus(model, "0", images, foreground, "mean")
    energy = focus.attention_focus(model, "0", images, foreground, "energy")
    # Channel mean 0 everywhere: a uniform map, no better than the area, no cell above the mean.
    assert mean["map"] == "2x2" and mean["foreground_area"] == 0.5
    assert mean["attention_on_foreground"] == pytest.approx(0.5) and mean["lift"] == pytest.approx(1.0)
    assert math.isnan(mean["candidate_precision"])
    # Energy 1 on the two left cells, 0 on the right: each left cell has e / (2e + 2).
    e = math.e
    assert energy["attention_on_foreground"] == pytest.approx(e / (e + 1))
    assert energy["lift"] == pytest.approx(2 * e / (e + 1))  # 1.462
    assert energy["candidate_precision"] == 1.0
    assert (energy["definition"], energy["temperature"], energy["layer"]) == ("energy", 1.0, "0")


def test_the_temperature_divides_the_logits_before_the_softmax(focus, device):
    model, images, foreground = _signed_pair(device)
    sharp = focus.attention_focus(model, "0", images, foreground, "energy", temperature=0.5)
    flat = focus.attention_focus(model, "0", images, foreground, "energy", temperature=4.0)
    assert sharp["attention_on_foreground"] == pytest.approx(math.exp(2) / (math.exp(2) + 1))
    assert flat["attention_on_foreground"] == pytest.approx(math.exp(0.25) / (math.exp(0.25) + 1))
    # With two logit levels the cells above the mean are the same at any temperature.
    assert sharp["candidate_precision"] == flat["candidate_precision"] == 1.0


@pytest.mark.parametrize("definition", ["mean", "energy"])
def test_the_map_is_the_one_gcut_cuts_on(focus, device, definition):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.AvgPool2d(4)).to(device)
    images = torch.randn(5, 3, 16, 16, device=device)
    grid = focus.attention_grid(model, "1", images, definition=definition, temperature=0.3)
    gcut = GCut(model, layer="1", definition=definition, temperature=0.3, grid_size=(4, 4))
    assert torch.equal(grid, gcut.compute_attention(images))


def test_batches_do_not_change_the_figures(focus):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2))
    images = torch.rand(7, 1, 8, 8)
    foreground = focus.foreground_mask(images)
    whole = focus.attention_focus(model, "2", images, foreground, "energy")
    assert focus.attention_focus(model, "2", images, foreground, "energy", batch_size=3) == pytest.approx(whole)


def test_the_foreground_is_the_same_for_raw_and_normalised_images(focus):
    raw = torch.zeros(2, 3, 6, 6)
    raw[0, :, 1:4, 2:5] = 0.9
    raw[1, :, 0, 0] = 0.05  # below 0.1 of its own maximum once scaled
    raw[1, :, 3:, :] = 1.0
    mask = focus.foreground_mask(raw)
    assert mask.shape == (2, 6, 6) and mask.dtype == torch.float32
    assert mask[0].sum() == 9 and mask[1].sum() == 18
    assert torch.equal(focus.foreground_mask((raw - 0.3) / 0.2), mask)
    assert torch.equal(focus.foreground_mask(raw[:, 0]), mask)


def test_bad_inputs_name_the_argument(focus):
    model, images, foreground = _signed_pair("cpu")
    with pytest.raises(ValueError, match="foreground must have shape"):
        focus.attention_focus(model, "0", images, foreground[:, :2])
    with pytest.raises(ValueError, match="images must be a \\(N, C, H, W\\)"):
        focus.attention_focus(model, "0", images[:, 0], foreground)
    with pytest.raises(ValueError, match="definition must be one of"):
        focus.attention_focus(model, "0", images, foreground, "max")
    with pytest.raises(ValueError, match="temperature must be"):
        focus.attention_focus(model, "0", images, foreground, "energy", temperature=0.0)
    with pytest.raises(ValueError, match="batch_size must be"):
        focus.attention_focus(model, "0", images, foreground, batch_size=0)
    with pytest.raises(TypeError, match="images must be a float tensor"):
        focus.foreground_mask(torch.zeros(1, 4, 4, dtype=torch.uint8))
    with pytest.raises(ValueError, match="threshold must be"):
        focus.foreground_mask(images, threshold=1.0)
