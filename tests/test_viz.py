"""gg_augment.viz draws from real augmentations and metrics, and names bad arguments."""

from __future__ import annotations

import matplotlib
import pytest
import torch

matplotlib.use("Agg")

from gg_augment import GT, GCut, RetrievalNet, build_backbone, viz  # noqa: E402
from gg_augment.data import load_embedded  # noqa: E402
from gg_augment.hashing import sign_codes  # noqa: E402
from gg_augment.io import save_figure  # noqa: E402
from gg_augment.metrics import precision_recall_curve  # noqa: E402


@pytest.fixture(scope="module")
def batch():
    splits = load_embedded()
    images, labels = splits.query.tensors
    return splits, images[:6], labels[:6]


def test_augmented_grid_titles_each_sample_with_its_retention(batch, tmp_path):
    splits, images, _ = batch
    shifted, retention = GT(sigma=0.3, generator=torch.Generator().manual_seed(0))(images)
    fig = viz.augmented_grid(splits.unnormalize(images), splits.unnormalize(shifted), retention, columns=3)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == [f"r = {float(r):.2f}" for r in retention[:3]] + [f"r = {float(r):.2f}" for r in retention[3:]]
    save_figure(fig, tmp_path / "grid.png")
    assert (tmp_path / "grid.png").stat().st_size > 0


def test_attention_overlay_draws_on_the_cut_grid_with_a_colour_bar(batch):
    splits, images, _ = batch
    model = RetrievalNet(*build_backbone("small"), code_length=16).eval()
    gcut = GCut(model, grid_size=8, generator=torch.Generator().manual_seed(0))
    attention = gcut.compute_attention(images)
    params = gcut.generate_params(images.shape, images.device, attention=attention)
    fig = viz.attention_overlay(splits.unnormalize(images), attention, params["cut"])
    image_axes = [ax for ax in fig.axes if ax.images]
    assert len(image_axes) == 6
    assert len(image_axes[0].lines) == 2 * (8 - 1)  # the grid G_cut cuts on
    assert any(ax.get_ylabel() == "attention (grid cell)" for ax in fig.axes)  # the colour bar


def test_precision_recall_figure_plots_each_curve(batch):
    generator = torch.Generator().manual_seed(0)
    codes = sign_codes(torch.randn(40, 16, generator=generator))
    labels = torch.arange(40) % 4
    fig = viz.precision_recall_figure({"random": precision_recall_curve(codes, codes, labels, labels)}, title="t")
    (ax,) = fig.axes
    assert [line.get_label() for line in ax.lines] == ["random"] and ax.get_xlabel() == "recall"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: viz.augmented_grid(torch.rand(2, 3, 8, 8), torch.rand(3, 3, 8, 8), torch.rand(2)), "same batch"),
        (lambda: viz.augmented_grid(torch.rand(2, 8, 8), torch.rand(2, 8, 8), torch.rand(2)), r"images must have shape \(B, 1 or 3"),
        (lambda: viz.attention_overlay(torch.rand(2, 3, 8, 8), torch.rand(3, 4, 4)), r"attention must have shape \(B, g, g\) with B = 2"),
        (lambda: viz.attention_overlay(torch.rand(2, 3, 8, 8), torch.rand(2, 4, 4), torch.ones(2, 3, 3, dtype=torch.bool)), "cut must have"),
        (lambda: viz.precision_recall_figure({}), "at least one"),
    ],
)
def test_bad_arguments_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()
