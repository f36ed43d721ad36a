"""Pictures of what GG does (matplotlib, the optional ``viz`` extra).

Each function returns a matplotlib ``Figure`` (save it with :func:`gg_augment.io.save_figure`
or ``fig.savefig``) and takes images as (B, C, H, W) tensors already in [0, 1] for display
(un-normalise first, e.g. with ``splits.unnormalize``).

- :func:`augmented_grid`: originals above their augmented versions, each titled with its retention;
- :func:`attention_overlay`: the attention map on the image, drawn on the same grid as the cut,
  with a colour bar, and the cut cells outlined;
- :func:`precision_recall_figure`: precision-recall curves of several models or methods;
- :func:`training_curves_figure`: a run's loss, mean weight and mAP per epoch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ._checks import check_tensor

__all__ = ["attention_overlay", "augmented_grid", "precision_recall_figure", "training_curves_figure"]


def _pyplot() -> Any:
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:  # pragma: no cover - exercised without the extra
        raise ImportError("gg_augment.viz needs matplotlib: pip install 'gg-augment[viz]'") from error
    return plt


def _pictures(images: Tensor, name: str) -> Tensor:
    images = check_tensor(images, name)
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"{name} must have shape (B, 1 or 3, H, W); got {tuple(images.shape)}")
    pictures = images.detach().float().cpu().clamp(0, 1).permute(0, 2, 3, 1)
    return pictures.expand(*pictures.shape[:3], 3) if pictures.shape[-1] == 1 else pictures


def augmented_grid(
    images: Tensor, augmented: Tensor, retention: Tensor, titles: Sequence[str] | None = None, columns: int = 8
) -> Any:
    """Originals (upper row of each pair) over their augmentations, titled ``r = retention``.

    Shape:
        - images, augmented: (B, C, H, W) in [0, 1]; retention: (B,)
    """
    originals, changed = _pictures(images, "images"), _pictures(augmented, "augmented")
    retention = check_tensor(retention, "retention").detach().float().cpu()
    if originals.shape != changed.shape or retention.shape != (originals.shape[0],):
        raise ValueError(
            f"images, augmented and retention must describe the same batch; got {tuple(images.shape)}, "
            f"{tuple(augmented.shape)} and {tuple(retention.shape)}"
        )
    count = originals.shape[0]
    columns = max(1, min(columns, count))
    pair_rows = -(-count // columns)
    plt = _pyplot()
    fig, axes = plt.subplots(2 * pair_rows, columns, figsize=(1.3 * columns, 2.7 * pair_rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i in range(count):
        row, col = 2 * (i // columns), i % columns
        axes[row, col].imshow(originals[i].numpy(), interpolation="nearest")
        if titles is not None:
            axes[row, col].set_title(titles[i], fontsize=7)
        axes[row + 1, col].imshow(changed[i].numpy(), interpolation="nearest")
        axes[row + 1, col].set_title(f"r = {float(retention[i]):.2f}", fontsize=7)
    fig.tight_layout()
    return fig


def attention_overlay(
    images: Tensor, attention: Tensor, cut: Tensor | None = None, titles: Sequence[str] | None = None, columns: int = 8
) -> Any:
    """Each image with its attention on top (one colour scale, with a colour bar), the grid
    lines of the cut, and the cut cells outlined in white.

    Shape:
        - images: (B, C, H, W) in [0, 1]
        - attention: (B, g, g), e.g. ``GCut.compute_attention(x)`` (the grid G_cut cuts on)
        - cut: (B, g, g) bool, e.g. ``GCut.generate_params(...)["cut"]``; optional
    """
    pictures = _pictures(images, "images")
    attention = check_tensor(attention, "attention").detach().float().cpu()
    if attention.ndim != 3 or attention.shape[0] != pictures.shape[0]:
        raise ValueError(f"attention must have shape (B, g, g) with B = {pictures.shape[0]}; got {tuple(attention.shape)}")
    if cut is not None and tuple(cut.shape) != tuple(attention.shape):
        raise ValueError(f"cut must have the attention's shape {tuple(attention.shape)}; got {tuple(cut.shape)}")
    count, height, width = pictures.shape[:3]
    grid_h, grid_w = attention.shape[1:]
    heat = F.interpolate(attention[:, None], size=(height, width), mode="nearest")[:, 0]
    low, high = float(heat.min()), float(heat.max())
    columns = max(1, min(columns, count))
    plt = _pyplot()
    rows = -(-count // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(1.5 * columns + 0.8, 1.6 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    shown = None
    for i in range(count):
        ax = axes[i // columns, i % columns]
        ax.imshow(pictures[i].numpy(), interpolation="nearest")
        shown = ax.imshow(heat[i].numpy(), cmap="inferno", alpha=0.55, vmin=low, vmax=high, interpolation="nearest")
        for k in range(1, grid_w):
            ax.axvline(k * width / grid_w - 0.5, color="white", linewidth=0.3, alpha=0.5)
        for k in range(1, grid_h):
            ax.axhline(k * height / grid_h - 0.5, color="white", linewidth=0.3, alpha=0.5)
        if cut is not None:
            mask = F.interpolate(cut[i][None, None].float().cpu(), size=(height, width), mode="nearest")[0, 0]
            if bool(mask.any()):
                ax.contour(mask.numpy(), levels=[0.5], colors="white", linewidths=1.0)
        if titles is not None:
            ax.set_title(titles[i], fontsize=7)
    fig.colorbar(shown, ax=axes.ravel().tolist(), shrink=0.8, label="attention (grid cell)")
    return fig


def precision_recall_figure(curves: Mapping[str, tuple[Tensor, Tensor]], title: str = "") -> Any:
    """Precision against recall, one line per entry of ``curves``: ``{name: (precision, recall)}``,
    as :func:`gg_augment.metrics.precision_recall_curve` returns them."""
    if not curves:
        raise ValueError("curves must hold at least one (precision, recall) pair; got none")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 3.8))
    for name, (precision, recall) in curves.items():
        precision = check_tensor(precision, f"curves[{name!r}] precision").detach().float().cpu()
        recall = check_tensor(recall, f"curves[{name!r}] recall").detach().float().cpu()
        if precision.shape != recall.shape or precision.ndim != 1:
            raise ValueError(f"curves[{name!r}] must be two 1-D tensors of one length; got {tuple(precision.shape)} and {tuple(recall.shape)}")
        order = torch.argsort(recall)
        ax.plot(recall[order].numpy(), precision[order].numpy(), marker=".", label=name)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def training_curves_figure(histories: Mapping[int, Sequence[Mapping[str, Any]]], title: str = "") -> Any:
    """Loss, mean loss weight and mAP per epoch of a run, one line per code length.

    ``histories``: code length → the run's per-epoch records (``metrics.jsonl``: ``epoch``,
    ``loss``, ``mean_weight`` and, on evaluated epochs, ``map`` and ``train_map``; the
    untrained network's record is drawn at epoch 0 of the mAP panel).
    """
    if not histories:
        raise ValueError("histories must hold at least one code length's records; got none")
    plt = _pyplot()
    figure, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for code_length, history in histories.items():
        trained = [h for h in history if "loss" in h]
        epochs = [h["epoch"] for h in trained]
        axes[0].plot(epochs, [h["loss"] for h in trained], label=f"{code_length}")
        axes[1].plot(epochs, [h["mean_weight"] for h in trained], label=f"{code_length}")
        evaluated = [(h["epoch"], h["map"]) for h in trained if h.get("map") is not None]
        untrained = next((h["untrained_map"] for h in history if "untrained_map" in h), None)
        if untrained is not None:
            evaluated.insert(0, (0, untrained))
        if evaluated:
            line, = axes[2].plot(*zip(*evaluated), marker="o", label=f"{code_length} query")
            seen = [(h["epoch"], h["train_map"]) for h in trained if h.get("train_map") is not None]
            if seen:
                axes[2].plot(*zip(*seen), marker="x", linestyle="--", color=line.get_color(), label=f"{code_length} train")
    from matplotlib.ticker import MaxNLocator

    for axis, name in zip(axes, ("training loss", "mean loss weight", "mAP")):
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_xlabel("epoch")
        axis.set_title(name)
        axis.grid(alpha=0.3)
    axes[2].legend(fontsize=8, title="code length", title_fontsize=8)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return figure
