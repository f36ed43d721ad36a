"""Shared benchmark plumbing: interleaved timing and atomic result files.

Benchmarks import the library the way a user would; nothing here is imported by ``src``.
"""

from __future__ import annotations

import csv
import io
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

from gg_augment.io import write_atomic

__all__ = ["median", "save_figure", "synchronize", "time_interleaved", "write_atomic", "write_table"]


def synchronize(device: torch.device | str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def time_interleaved(
    candidates: dict[str, Callable[[], object]],
    repeats: int = 7,
    warmup: int = 2,
    device: torch.device | str = "cpu",
) -> dict[str, list[float]]:
    """Seconds per call of each candidate, measured round-robin so drift hits all alike."""
    for fn in candidates.values():
        for _ in range(warmup):
            fn()
    synchronize(device)
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, fn in candidates.items():
            synchronize(device)
            start = time.perf_counter()
            fn()
            synchronize(device)
            times[name].append(time.perf_counter() - start)
    return times


def median(values: list[float]) -> float:
    return statistics.median(values)


def write_table(out_dir: Path, stem: str, rows: list[dict[str, object]], header: str = "") -> str:
    """Write ``stem.csv`` and ``stem.md`` atomically; return the markdown."""
    columns = list(rows[0])
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(out_dir / f"{stem}.csv", buffer.getvalue())

    def fmt(value: object) -> str:
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    lines = [header, ""] if header else []
    lines.append("| " + " | ".join(columns) + " |")
    lines.append("| " + " | ".join("---" for _ in columns) + " |")
    lines += ["| " + " | ".join(fmt(row[c]) for c in columns) + " |" for row in rows]
    markdown = "\n".join(lines) + "\n"
    write_atomic(out_dir / f"{stem}.md", markdown)
    return markdown


def save_figure(fig, path: Path) -> None:
    """Save a matplotlib figure atomically as PNG."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    write_atomic(path, buffer.getvalue())
