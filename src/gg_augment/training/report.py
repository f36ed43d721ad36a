"""What a run tells: the per-epoch line, the final record of a code length, and the results
table of the whole run (markdown and JSON, where :class:`RunLayout` says)."""

from __future__ import annotations

import json
import platform
import sys
from typing import Any

import torch

from .. import io
from .config import TrainConfig
from .layout import RunLayout

__all__ = ["epoch_line", "final_record", "peak_memory", "plot_curves", "warn_below_untrained", "write_history", "write_results"]


def epoch_line(code_length: int, record: dict[str, Any]) -> str:
    """One JSON line per epoch for the log, floats to 4 significant digits."""
    shown = {k: (float(f"{v:.4g}") if isinstance(v, float) else v) for k, v in record.items()}
    return json.dumps({"code_length": code_length, **shown})


def write_history(layout: RunLayout, code_length: int, history: list[dict[str, Any]]) -> None:
    """The metrics file, rewritten whole from the history (atomic)."""
    io.write_atomic(layout.metrics(code_length), "".join(json.dumps(h) + "\n" for h in history))


def peak_memory(device: torch.device) -> dict[str, Any]:
    """The run's peak memory: CUDA's allocated bytes on a GPU, else the process's peak RSS
    (a whole-process figure: one run per process, as the study runs them, makes it the run's)."""
    if device.type == "cuda":
        return {"peak_memory_mib": torch.cuda.max_memory_allocated(device) / 2**20, "peak_memory_kind": "cuda max allocated"}
    try:
        import resource
    except ImportError:  # pragma: no cover - not on Windows
        return {}
    return {"peak_memory_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "peak_memory_kind": "process max RSS"}


def final_record(
    config: TrainConfig, code_length: int, history: list[dict[str, Any]], forward_calls_per_step: float | None,
    device: torch.device,
) -> dict[str, Any]:
    """The record ``final.json`` holds for one code length."""
    evaluated = [h for h in history if "map" in h]
    best = max(evaluated, key=lambda h: h["map"]) if evaluated else {}
    return {
        "code_length": code_length,
        "config": config.result_config(),
        "map": history[-1].get("map"),
        # Selected on the query set, as the authors report it: optimistic, not a held-out score.
        "best_map": best.get("map"),
        "best_epoch": best.get("epoch"),
        "untrained_map": next((h.get("untrained_map") for h in history if "untrained_map" in h), None),
        "epochs": config.epochs,
        "train_seconds": sum(h.get("epoch_seconds", 0.0) for h in history),
        "epoch_seconds": [h["epoch_seconds"] for h in history if "epoch_seconds" in h],
        # Counted over the steps this process ran (after a resume: since the resume).
        "forward_calls_per_step": forward_calls_per_step,
        **peak_memory(device),
        **{k: v for k, v in history[-1].items() if k.startswith("recall@")},
    }


def _table(config: TrainConfig, results: list[dict[str, Any]]) -> list[str]:
    topk = f"mAP@{config.topk}" if config.topk else "mAP@all"
    if config.hashing:
        return [
            f"| bits | {topk} (final epoch) | best-epoch {topk} (selected on the query set) | untrained {topk} | train time (s) |",
            "| --- | --- | --- | --- | --- |",
        ] + [
            f"| {r['code_length']} | {r['map']:.4f} | {r['best_map']:.4f} (epoch {r['best_epoch']}) | "
            f"{r['untrained_map'] or float('nan'):.4f} | {r['train_seconds']:.0f} |"
            for r in results
        ]
    return [f"| dim | {topk} | R@1 | R@2 | R@4 | R@8 | untrained {topk} |", "| --- | --- | --- | --- | --- | --- | --- |"] + [
        f"| {r['code_length']} | {r['map']:.4f} | {r['recall@1']:.4f} | {r['recall@2']:.4f} | {r['recall@4']:.4f} | {r['recall@8']:.4f} | {r['untrained_map'] or float('nan'):.4f} |"
        for r in results
    ]


def _aligned(rows: list[str]) -> list[str]:
    """A markdown table's rows with every column padded to its widest cell (read as text too)."""
    cells = [[c.strip() for c in row.strip().strip("|").split("|")] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    out = []
    for n, row in enumerate(cells):
        if n == 1:  # the separator row
            row = ["-" * w for w in widths]
        out.append("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |")
    return out


def warn_below_untrained(results: list[dict[str, Any]]) -> list[str]:
    """One line per code length whose final mAP is below its untrained network's: training
    made it worse (too high a learning rate, too few epochs for the augmentation, a bug)."""
    lines = [
        f"warning: {r['code_length']}: final mAP {r['map']:.4f} is below the untrained network's "
        f"{r['untrained_map']:.4f}; training made retrieval worse (try a lower --lr or more --epochs)"
        for r in results
        if r.get("map") is not None and r.get("untrained_map") is not None and r["map"] < r["untrained_map"]
    ]
    for line in lines:
        print(line, file=sys.stderr)
    return lines


def plot_curves(config: TrainConfig, code_lengths: list[int]) -> str:
    """Draw the run's loss, weight and mAP per epoch to ``curves.png`` beside ``results.md``;
    return what happened, in one line (matplotlib is the optional ``viz`` extra)."""
    layout = RunLayout.of(config)
    try:
        from ..viz import training_curves_figure
        figure = training_curves_figure(
            {k: [json.loads(line) for line in layout.metrics(k).read_text().splitlines() if line.strip()] for k in code_lengths},
            title=f"{config.augment} on {config.data}, seed {config.seed}",
        )
    except ImportError:
        return "curves: not drawn (matplotlib is missing: pip install 'gg-augment[viz]')"
    io.save_figure(figure, layout.curves_png)
    import matplotlib.pyplot as plt

    plt.close(figure)
    return f"curves: {layout.curves_png}"


def write_results(config: TrainConfig, results: list[dict[str, Any]], split_info: dict[str, Any]) -> None:
    """Print the mAP table and write it, with the run's summary, as :class:`RunLayout` says."""
    method = config.augment + (" (no retention)" if config.no_retention else "")
    lines = [
        f"## {'DSDH hashing' if config.hashing else 'Real-valued retrieval'}: {method} on {config.data}",
        "",
        f"recipe={config.recipe}, arch={config.arch}, epochs={config.epochs}, batch={config.batch_size}, "
        f"lr={config.settings().lr}, seed={config.seed}, "
        f"device={config.device}, split seed={split_info.get('seed')}, sizes={split_info.get('used')}, "
        f"torch {torch.__version__}, {platform.machine()}",
        "",
        *_aligned(_table(config, results)),
    ]
    table = "\n".join(lines) + "\n"
    layout = RunLayout.of(config)
    io.write_atomic(layout.results_markdown, table)
    io.write_atomic(layout.results_json, json.dumps({"config": config.to_dict(), "split": split_info, "results": results}, indent=2))
    print()
    print(table)
    print(f"results: {layout.results_markdown}")
    print(plot_curves(config, [r["code_length"] for r in results]))
    warn_below_untrained(results)
