"""The study's pictures, drawn from a table's visible cells (so ``--replot`` can redraw a JSON):
mAP bars with the seed std as error bars; ablations and paired comparisons as Δ bars with
±2 standard errors; the gap table as train and query curves per epoch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .stats import parse_cell

__all__ = ["plot", "replot"]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _gap(rows: list[dict[str, Any]], title: str) -> Any:
    fig, ax = _pyplot().subplots(figsize=(7.5, 4.5))
    for i, method in enumerate(dict.fromkeys(r["method"] for r in rows)):
        own = [r for r in rows if r["method"] == method]
        epochs = [r["epoch"] for r in own]
        query = [parse_cell(r["query mAP"]) for r in own]
        train = [parse_cell(r["train mAP"]) for r in own]
        ax.plot(epochs, [q[0] for q in query if q], color=f"C{i}", label=method)
        ax.plot(epochs, [t[0] for t in train if t], color=f"C{i}", linestyle="--", alpha=0.6)
    ax.set_xlabel("epoch")
    ax.set_ylabel("mAP (solid: query images, dashed: training images)")
    ax.legend(fontsize=7, ncol=2)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def _delta_bars(labels: list[str], cells: list[tuple[float, float]], xlabel: str, title: str) -> Any:
    fig, ax = _pyplot().subplots(figsize=(7.5, 0.32 * len(cells) + 1.2))
    y = list(range(len(cells)))[::-1]
    means = [c[0] for c in cells]
    ax.barh(y, means, xerr=[2 * c[1] for c in cells], color=["C2" if m > 0 else "C3" for m in means], capsize=3)
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=7)
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def _efficiency(rows: list[dict[str, Any]], title: str) -> Any:
    panels = [k for k in rows[0] if k.startswith(("epoch time (s)", "forward calls", "mAP"))]
    fig, axes = _pyplot().subplots(1, len(panels), figsize=(3.2 * len(panels), 3.4))
    for ax, column in zip(axes, panels, strict=True):
        cells = [parse_cell(r[column]) or (float("nan"), 0.0) for r in rows]
        ax.bar([str(r["method"]) for r in rows], [c[0] for c in cells], yerr=[c[1] for c in cells], capsize=3,
               color=[f"C{i}" for i in range(len(rows))])
        ax.set_title(column, fontsize=8)
        ax.tick_params(axis="x", labelsize=7, rotation=20)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def _map_bars(rows: list[dict[str, Any]], title: str) -> Any:
    value_columns = [k for k in rows[0] if k not in ("method", "variant") and "Δ" not in k and parse_cell(rows[0][k])]
    fig, ax = _pyplot().subplots(figsize=(max(6.5, 1.1 * len(rows) + 2), 4))
    width = 0.8 / len(value_columns)
    low, high = 1.0, 0.0
    for i, column in enumerate(value_columns):
        cells = [parse_cell(r[column]) or (float("nan"), 0.0) for r in rows]
        ax.bar([j + i * width for j in range(len(rows))], [c[0] for c in cells], width, yerr=[c[1] for c in cells],
               capsize=2, label=column)
        low = min(low, *(c[0] - c[1] for c in cells))
        high = max(high, *(c[0] + c[1] for c in cells))
    labels = [str(r.get("method", r.get("variant"))) for r in rows]
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(rows))])
    ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylim(max(0.0, low - 0.05), min(1.0, high + 0.03))
    ax.set_ylabel("mAP (mean over seeds, error bar: seed std)")
    ax.set_title(title, fontsize=9)
    if len(value_columns) > 1:
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot(table: str, rows: list[dict[str, Any]], title: str) -> Any:
    """The picture of one table's rows."""
    if table == "gap":
        return _gap(rows, title)
    if table == "ablation":
        paired = [(r["variant"], parse_cell(r["paired Δ"]), r["vs"]) for r in rows]
        kept = [(f"{name}  (vs {ref})", c) for name, c, ref in paired if c is not None and name != f"{ref}, limit 0.5"]
        return _delta_bars([k[0] for k in kept], [k[1] for k in kept],
                           "paired Δ mAP vs the reference run (mean, error bar ±2 s.e.)", title)
    if table == "approximate":
        cells = [parse_cell(r["paired Δ"]) or (float("nan"), 0.0) for r in rows]
        return _delta_bars([f"{r['code length']} bits" for r in rows], cells,
                           "paired Δ mAP, approximate − exact G_cut (mean, error bar ±2 s.e.)", title)
    if table == "efficiency":
        return _efficiency(rows, title)
    return _map_bars(rows, title)


def replot(folder: Path) -> list[Path]:
    """Redraw every table's PNG under ``folder`` from its JSON (no runs needed)."""
    from gg_augment.io import save_figure

    from .tables import TABLES

    drawn = []
    for path in sorted(folder.glob("*.json")):
        record = json.loads(path.read_text())
        if record.get("rows") and record.get("table") in TABLES:
            figure = plot(record["table"], record["rows"], f"{record['table']} ({record['preset']})")
            save_figure(figure, path.with_suffix(".png"))
            _pyplot().close(figure)
            drawn.append(path.with_suffix(".png"))
    return drawn
