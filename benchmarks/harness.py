"""The one harness of the benchmark scripts: device-synced, interleaved timing and result files.

Every benchmark times its candidates round-robin (with a rotating start, so machine drift
and caches hit all alike) and writes markdown, CSV and (where it draws one) PNG, each file
atomically. Benchmarks import the library the way a user would; nothing here is imported by
``src``.
"""

from __future__ import annotations

import csv
import io
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from gg_augment.io import save_figure, write_atomic

__all__ = [
    "horizontal_bars",
    "interleave",
    "markdown_table",
    "median",
    "summary",
    "synchronize",
    "timed",
    "write_results",
]


def synchronize(device: torch.device | str) -> None:
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: torch.device | str) -> float:
    """Seconds of one call, synchronised with the device on both sides."""
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start


def interleave(
    candidates: dict[str, Callable[[], object]],
    repeats: int,
    device: torch.device | str = "cpu",
    warmup: int = 2,
) -> dict[str, list[float]]:
    """Seconds per call of each candidate, round-robin with a rotating start."""
    names = list(candidates)
    for name in names:
        for _ in range(warmup):
            candidates[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(repeats):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            times[name].append(timed(candidates[name], device))
    return times


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def summary(values: Sequence[float]) -> tuple[float, float, float]:
    """Median, first and third quartile, in milliseconds."""
    ms = sorted(v * 1000 for v in values)
    if len(ms) < 4:
        return statistics.median(ms), ms[0], ms[-1]
    q1, _, q3 = statistics.quantiles(ms, n=4)
    return statistics.median(ms), q1, q3


def markdown_table(rows: Sequence[dict[str, Any]], header: str = "") -> str:
    """A markdown table of ``rows`` (floats to 4 significant digits), under ``header``."""
    columns = list(rows[0])

    def fmt(value: object) -> str:
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    lines = [header, ""] if header else []
    lines.append("| " + " | ".join(columns) + " |")
    lines.append("| " + " | ".join("---" for _ in columns) + " |")
    lines += ["| " + " | ".join(fmt(row[c]) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_results(
    out_dir: Path,
    stem: str,
    rows: Sequence[dict[str, Any]],
    markdown: str | None = None,
    figure: Any = None,
) -> str:
    """Write ``stem.csv``, ``stem.md`` (``markdown``, or the rows' table) and ``stem.png``.

    Returns the markdown. Each file is written atomically; the figure is closed after saving.
    """
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(out_dir / f"{stem}.csv", buffer.getvalue())
    if markdown is None:
        markdown = markdown_table(rows)
    write_atomic(out_dir / f"{stem}.md", markdown)
    if figure is not None:
        import matplotlib.pyplot as plt

        save_figure(figure, out_dir / f"{stem}.png")
        plt.close(figure)
    return markdown


def horizontal_bars(labels: Sequence[str], values: Sequence[float], xlabel: str, title: str, reference: float | None = None) -> Any:
    """A horizontal bar chart (first label on top); bars on either side of ``reference`` are
    green (>=) or red (<), and a vertical line marks it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 0.45 * len(labels) + 1.2))
    if reference is None:
        colours = [f"C{i}" for i in range(len(values))]
    else:
        colours = ["C2" if v >= reference else "C3" for v in values]
        ax.axvline(reference, color="black", linewidth=0.8)
    ax.barh(list(labels)[::-1], list(values)[::-1], color=colours[::-1])
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig
