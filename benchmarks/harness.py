"""The one harness of the benchmark scripts: timing, rotation, provenance, peak memory, result files.

Every benchmark times its candidates round-robin (with a rotating start, so machine drift
and caches hit all alike), measures peak memory one way (:func:`reset_peak_memory` then
:func:`peak_memory`, in the keys the trainer's ``final.json`` uses), records where and how it
ran (:func:`provenance`) and writes markdown, CSV, JSON and (where it draws one) PNG, each file
atomically (:func:`write_results`). Benchmarks import the library the way a user would;
nothing here is imported by ``src``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from gg_augment.io import save_figure, write_atomic

__all__ = [
    "command_line",
    "commit",
    "fresh_process",
    "horizontal_bars",
    "interleave",
    "machine",
    "markdown_table",
    "median",
    "peak_memory",
    "provenance",
    "provenance_lines",
    "reset_peak_memory",
    "rotations",
    "summary",
    "synchronize",
    "timed",
    "write_results",
]


# -- timing ----------------------------------------------------------------------------------


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


def rotations(names: Sequence[str], rounds: int) -> Iterator[list[str]]:
    """The order of each round-robin round: every name once, the start rotating by one a round."""
    names = list(names)
    for round_index in range(rounds):
        shift = round_index % len(names)
        yield names[shift:] + names[:shift]


def interleave(
    candidates: dict[str, Callable[[], object]],
    repeats: int,
    device: torch.device | str = "cpu",
    warmup: int = 2,
) -> dict[str, list[float]]:
    """Seconds per call of each candidate, round-robin with a rotating start."""
    for name in candidates:
        for _ in range(warmup):
            candidates[name]()
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for order in rotations(list(candidates), repeats):
        for name in order:
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


# -- peak memory -----------------------------------------------------------------------------


def _proc_status_kib(field_name: str) -> int | None:
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def reset_peak_memory(device: torch.device | str) -> bool:
    """Start a new peak: CUDA's allocator statistics, or the process's peak RSS (Linux >= 4.0
    resets VmHWM to the current RSS when 5 is written to clear_refs). Returns False where the
    CPU peak cannot be reset (it then covers the whole process's life)."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return True
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        return False
    return _proc_status_kib("VmHWM") is not None


def peak_memory(device: torch.device | str, children: bool = False) -> dict[str, Any]:
    """Peak memory since the last :func:`reset_peak_memory` (or the process start), in the
    trainer's ``final.json`` keys: ``peak_memory_mib`` and ``peak_memory_kind``.

    CUDA: the allocator's peak of allocated bytes. CPU: the peak RSS of this process (VmHWM,
    else ``getrusage``'s high-water mark), and with ``children`` also ``children_peak_mib``, the
    largest finished child's (DataLoader workers). ``current_mib`` is the RSS now, the baseline
    a caller subtracts to get what a block added.
    """
    device = torch.device(device)
    if device.type == "cuda":
        return {"peak_memory_mib": torch.cuda.max_memory_allocated(device) / 2**20, "peak_memory_kind": "cuda max allocated"}
    import resource

    high_water = _proc_status_kib("VmHWM")
    kind = "process peak RSS (VmHWM)"
    if high_water is None:
        high_water, kind = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "process max RSS (getrusage)"
    record: dict[str, Any] = {"peak_memory_mib": high_water / 1024, "peak_memory_kind": kind}
    current = _proc_status_kib("VmRSS")
    record["current_mib"] = (current if current is not None else high_water) / 1024
    if children:
        record["children_peak_mib"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return record


def fresh_process(command: Sequence[str], import_from: Path | None = None) -> dict[str, Any]:
    """Run ``command`` in a fresh process, so that its peak memory is its own, and return the
    JSON object it prints on its last line of stdout. ``import_from``: a folder the process
    imports modules from (put first on its ``PYTHONPATH``). Raises RuntimeError with the end of
    its stderr when it fails."""
    env = None
    if import_from is not None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(import_from), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(list(command), capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:3])} ... failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- provenance ------------------------------------------------------------------------------


def machine() -> str:
    gpu = f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return f"{platform.machine()}, {os.cpu_count()} CPU cores{gpu}, torch {torch.__version__}, Python {platform.python_version()}"


def commit() -> str:
    """The checkout's short commit, with ``+local changes`` when tracked files differ from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, check=True).stdout
        return head + ("+local changes" if dirty.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def provenance(command: str, started: float) -> dict[str, Any]:
    """Where and how a result was made: command, commit, machine, torch and wall seconds since
    ``started`` (a ``time.perf_counter()`` value)."""
    return {
        "command": command,
        "commit": commit(),
        "machine": machine(),
        "torch": torch.__version__,
        "seconds": time.perf_counter() - started,
    }


def command_line(script: str, argv: Sequence[str] | None = None) -> str:
    """The command as a user would type it: ``python <script> <argv or sys.argv[1:]>``."""
    import shlex

    return f"python {script} " + shlex.join(list(argv) if argv is not None else sys.argv[1:])


def provenance_lines(record: dict[str, Any]) -> list[str]:
    """Markdown bullet lines of a :func:`provenance` record, for a result's header."""
    return [
        f"- command: `{record['command']}`",
        f"- commit: {record['commit']}",
        f"- machine: {record['machine']}",
        f"- wall time: {record['seconds'] / 60:.1f} min",
    ]


# -- result files ----------------------------------------------------------------------------


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
    record: dict[str, Any] | None = None,
) -> str:
    """Write ``stem.csv``, ``stem.md`` (``markdown``, or the rows' table), ``stem.json`` and
    ``stem.png``.

    The JSON holds ``record`` (for example a :func:`provenance`, and anything a reader needs
    beyond the visible cells, such as per-seed values) with the rows under ``"rows"``. Returns
    the markdown. Each file is written atomically; the figure is closed after saving.
    """
    out_dir = Path(out_dir)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(out_dir / f"{stem}.csv", buffer.getvalue())
    if markdown is None:
        markdown = markdown_table(rows)
    write_atomic(out_dir / f"{stem}.md", markdown)
    write_atomic(out_dir / f"{stem}.json", json.dumps({**(record or {}), "rows": list(rows)}, indent=2, default=str))
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
