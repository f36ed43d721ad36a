"""The study that answers "does GG help?": main, gap, robustness, ablation and efficiency tables.

Every cell comes from runs of the trainer (``gg_augment.training``, the library behind
``examples/train_hashing.py``), configured through the same flags as its command line. Runs
are paired: runs that share a seed share the split, the initial weights and the data order
(the trainer draws order and augmentations from separate generators), so the difference
between two methods at one seed cancels most of the seed noise. Each table reports the raw
mean ± std over seeds and, next to it, the paired Δ's mean ± standard error.

    python benchmarks/study.py --preset cpu-pretrained --table main
    python benchmarks/study.py --preset cpu-scratch --table all --jobs 2
    python benchmarks/study.py --preset gpu --table all --jobs 12    # on a GPU machine
    python benchmarks/study.py --preset cpu-pretrained --smoke        # tiny, for CI

Tables (``--table all`` builds each in turn; runs are shared, never repeated):

main        methods × code lengths: mAP mean ± std over seeds, paired Δ vs ``standard`` and vs
            ``none`` (mean ± s.e.; ``*`` when |Δ| > 2 × the std of the paired differences)
gap         presets that evaluate every epoch: train mAP (training images as queries) and query
            mAP per epoch, so an augmentation's effect on overfitting shows
robustness  the main table's models at ``--ablation-bits``, queries erased at 0.2/0.4/0.6/0.8 of
            their area (one rectangle, zero fill, a seeded draw shared by all methods)
ablation    variants at ``--ablation-bits``, each with its paired Δ vs its reference run
efficiency  exact vs approximate G_cut from the main table's runs: epoch time, forward calls
            per step, peak memory and mAP

Presets (``--preset``; the durations are measured, see docs/results.md):

cpu-pretrained  EfficientNet-Lite0 with ImageNet weights (extra ``pretrained``), the authors'
                recipe and base transforms at 64 px, 1,000 training images, 4 epochs, 32 bits,
                3 seeds; evaluation on 500 queries × 2,000 database images
cpu-scratch     the small CNN from scratch, the fast recipe, 5,000 training images, 15 epochs (the main job),
                methods none, standard, G_cut, approximate G_cut,
                train and query mAP every epoch, 32 bits, 3 seeds
gpu             Lite0 as cpu-pretrained, at 96 px on all 5,000 training images for 6 epochs,
                16/32/64 bits, 3 seeds: the same tables at a larger scale (``--jobs`` runs
                configurations side by side on one GPU)
paper           the authors' protocol: CIFAR-10, ResNet-50 (ImageNet weights) at 224 px, 100 epochs,
                16-64 bits, 3 seeds; needs ``--data-root`` and a GPU

Each table is written as markdown, CSV, PNG and JSON under ``--out/<preset>/``, with the
command, commit, machine and duration in its header. Finished runs under ``--out`` are reused
(the trainer's ``--resume``), so an interrupted study continues where it stopped.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import math
import multiprocessing
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from harness import markdown_table, write_results

from gg_augment import RandomErasingRetention
from gg_augment.hashing import sign_codes
from gg_augment.io import load_checkpoint, write_atomic
from gg_augment.metrics import mean_average_precision
from gg_augment.training import RunLayout, TrainConfig, build_model, encode, load_data, run
from gg_augment.training.cli import parse_config

METHODS = ("none", "standard", "erasing", "softcrop", "gt", "gcut", "gcut-approx")
RETENTION_METHODS = ("erasing", "softcrop", "gt", "gcut", "gcut-approx")
ERASED_AREAS = (0.2, 0.4, 0.6, 0.8)
TABLES = ("main", "gap", "robustness", "ablation", "efficiency")
SMOKE_METHODS = ("none", "standard", "gcut", "gcut-approx")


@dataclass(frozen=True)
class Ablation:
    """One ablation row: trainer flags, and the row whose runs it is paired with."""

    name: str
    flags: tuple[str, ...]
    reference: str


def standard_ablations(frozen_attention_layer: str | None = None) -> tuple[Ablation, ...]:
    rows = [Ablation(method, ("--augment", method), "") for method in RETENTION_METHODS]
    rows += [Ablation(f"{m}, no retention weighting", ("--augment", m, "--no-retention"), m) for m in RETENTION_METHODS]
    rows += [
        Ablation("gcut, area score", ("--augment", "gcut", "--gcut-score", "area"), "gcut"),
        Ablation("gcut, power curve", ("--augment", "gcut", "--curve", "power"), "gcut"),
        Ablation("gcut, authors' activation", ("--augment", "gcut", "--curve", "authors"), "gcut"),
        Ablation("gt, power curve", ("--augment", "gt", "--curve", "power"), "gt"),
        Ablation("gt, authors' activation", ("--augment", "gt", "--curve", "authors"), "gt"),
    ]
    rows += [Ablation(f"gt, sigma {s}", ("--augment", "gt", "--gt-sigma", str(s)), "gt") for s in (0.05, 0.1, 0.2, 0.3)]
    rows += [Ablation(f"gcut, limit {v}", ("--augment", "gcut", "--gcut-limit", str(v)), "gcut") for v in (0.25, 0.5, 0.75)]
    if frozen_attention_layer:
        rows.append(
            Ablation(
                "gcut, frozen ImageNet attention",
                ("--augment", "gcut", "--attention-model", "imagenet", "--attention-layer", frozen_attention_layer),
                "gcut",
            )
        )
    return tuple(rows)


@dataclass(frozen=True)
class Preset:
    description: str
    trainer: tuple[str, ...]
    code_lengths: tuple[int, ...]
    seeds: tuple[int, ...] = (0, 1, 2)
    methods: tuple[str, ...] = METHODS
    ablation_bits: int = 32
    ablations: tuple[Ablation, ...] = field(default_factory=standard_ablations)
    #: Flags that make ``--smoke`` tiny (they replace the trainer's sizes).
    smoke: tuple[str, ...] = ("--limit-train", "96", "--limit-query", "48", "--limit-database", "96", "--epochs", "1", "--batch-size", "32")
    #: Needs what CI lacks (a GPU, the paper's data): ``--smoke`` only builds and checks its configurations.
    dry_smoke: bool = False


_LITE0 = ("--arch", "efficientnet_lite0", "--pretrained", "--recipe", "paper", "--batch-size", "64", "--lr", "3e-4")
# Lite0's block 10 of the frozen ImageNet model points at the garment (docs/results: attention focus).
_LITE0_ATTENTION = "backbone.net._blocks.10"

PRESETS: dict[str, Preset] = {
    "cpu-pretrained": Preset(
        description="EfficientNet-Lite0 (ImageNet weights), authors' recipe at 64 px, 1,000 train images, 4 epochs",
        trainer=(*_LITE0, "--image-size", "64", "--epochs", "4", "--limit-train", "1000", "--limit-query", "500",
                 "--limit-database", "2000", "--device", "cpu"),
        code_lengths=(32,),
        ablations=standard_ablations(_LITE0_ATTENTION),
    ),
    "cpu-scratch": Preset(
        description="small CNN from scratch, fast recipe, 5,000 train images, 15 epochs (the main job's setting), train/query mAP every epoch",
        trainer=("--arch", "small", "--recipe", "fast", "--epochs", "15", "--eval-every", "1", "--eval-train", "1000",
                 "--device", "cpu"),
        code_lengths=(32,),
        # Erasing, softcrop and G_t are in the pretrained and gpu presets; here they would add
        # an hour on 2 cores.
        methods=("none", "standard", "gcut", "gcut-approx"),
    ),
    "gpu": Preset(
        description="EfficientNet-Lite0 (ImageNet weights), authors' recipe at 96 px, 5,000 train images, 6 epochs",
        trainer=(*_LITE0, "--image-size", "96", "--epochs", "6", "--device", "cuda"),
        code_lengths=(16, 32, 64),
        ablations=standard_ablations(_LITE0_ATTENTION),
        smoke=("--limit-train", "96", "--limit-query", "48", "--limit-database", "96", "--epochs", "1", "--batch-size", "32",
               "--image-size", "64", "--device", "cpu"),
    ),
    "paper": Preset(
        description="the authors' protocol: CIFAR-10, ResNet-50 (ImageNet weights) at 224 px, 100 epochs",
        trainer=("--data", "cifar10", "--arch", "resnet50", "--pretrained", "--recipe", "paper", "--image-size", "224",
                 "--epochs", "100", "--device", "cuda"),
        code_lengths=(16, 32, 48, 64),
        dry_smoke=True,
    ),
}


# -- running ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """One trainer run: its flags (which name the seed and code lengths)."""

    argv: tuple[str, ...]
    log: Path

    def config(self) -> TrainConfig:
        return parse_config("hashing", list(self.argv))


def _train_job(argv: list[str], log: str) -> None:
    """Worker body: one run in a fresh process (its peak RSS is then the run's own)."""
    Path(log).parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as stream, contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream):
        run(parse_config("hashing", argv))


class Study:
    """A preset's runs under ``out``: builds their flags, runs what is missing, reads results."""

    def __init__(self, name: str, preset: Preset, out: Path, jobs: int, data_root: str | None, extra: list[str]) -> None:
        self.name, self.preset, self.out, self.jobs = name, preset, out, jobs
        self.extra = [*(("--data-root", data_root) if data_root else ()), *extra]
        self.threads = max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else 0

    def job(self, seed: int, code_lengths: tuple[int, ...], flags: tuple[str, ...]) -> Job:
        argv = (
            *self.preset.trainer, "--seed", str(seed), "--code-lengths", ",".join(map(str, code_lengths)),
            "--out", str(self.out / "runs"), "--resume", "--no-progress", *self.extra, *flags,
        )
        if self.threads:
            argv += ("--threads", str(self.threads))
        name = "-".join([*(f.lstrip("-") for f in flags), f"seed{seed}", "x".join(map(str, code_lengths))])
        return Job(argv, self.out / "logs" / f"{name}.log")

    def ensure(self, jobs: list[Job]) -> None:
        """Run every job whose results are missing, ``self.jobs`` at a time, each in its own process."""
        todo = [job for job in dict.fromkeys(jobs) if not self._finished(job)]
        if not todo:
            return
        print(f"{len(todo)} run(s) to do, {self.jobs} at a time; logs under {self.out / 'logs'}", file=sys.stderr, flush=True)
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(self.jobs, mp_context=context, max_tasks_per_child=1) as pool:
            futures = {pool.submit(_train_job, list(job.argv), str(job.log)): job for job in todo}
            for done, future in enumerate(concurrent.futures.as_completed(futures), 1):
                job = futures[future]
                error = future.exception()
                if error is not None:
                    raise RuntimeError(f"run failed: {shlex.join(job.argv)} (log: {job.log}): {error}") from error
                print(f"  [{done}/{len(todo)}] {job.log.stem}", file=sys.stderr, flush=True)

    def _finished(self, job: Job) -> bool:
        config = job.config()
        return all(RunLayout.of(config).final(bits).is_file() for bits in config.code_lengths)

    def finals(self, job: Job) -> dict[int, dict[str, Any]]:
        config = job.config()
        return {bits: json.loads(RunLayout.of(config).final(bits).read_text()) for bits in config.code_lengths}

    def history(self, job: Job, bits: int) -> list[dict[str, Any]]:
        path = RunLayout.of(job.config()).metrics(bits)
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    # -- the runs each table needs -----------------------------------------------------------

    def method_jobs(self, method: str) -> dict[int, Job]:
        return {seed: self.job(seed, self.preset.code_lengths, ("--augment", method)) for seed in self.preset.seeds}

    def ablation_jobs(self, ablation: Ablation) -> dict[int, Job]:
        # A method row is the main table's run itself (all its code lengths), so nothing repeats.
        if ablation.flags == ("--augment", ablation.name) and ablation.name in self.preset.methods:
            return self.method_jobs(ablation.name)
        return {seed: self.job(seed, (self.preset.ablation_bits,), ablation.flags) for seed in self.preset.seeds}


# -- statistics ------------------------------------------------------------------------------


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def paired_delta(values: dict[int, float], reference: dict[int, float]) -> str:
    """``+0.0123 ± 0.0040`` (mean ± standard error of the per-seed differences), with ``*``
    when |mean| > 2 × their std: the sign held on every seed, by a margin."""
    seeds = sorted(set(values) & set(reference))
    diffs = [values[s] - reference[s] for s in seeds]
    if not diffs:
        return "n/a"
    mean, std = mean_std(diffs)
    se = std / math.sqrt(len(diffs))
    mark = "*" if len(diffs) > 1 and abs(mean) > 2 * std else ""
    return f"{mean:+.4f} ± {se:.4f}{mark}"


def cell(values: list[float]) -> str:
    mean, std = mean_std(values)
    return f"{mean:.4f} ± {std:.4f}"


# -- tables ----------------------------------------------------------------------------------


def main_table(study: Study) -> tuple[list[dict[str, Any]], list[str]]:
    preset = study.preset
    jobs = {m: study.method_jobs(m) for m in preset.methods}
    study.ensure([j for per_seed in jobs.values() for j in per_seed.values()])
    maps = {m: {seed: study.finals(job) for seed, job in per_seed.items()} for m, per_seed in jobs.items()}
    rows, notes = [], []
    worst = (0.0, "")
    for method in preset.methods:
        row: dict[str, Any] = {"method": method}
        for bits in preset.code_lengths:
            values = {seed: finals[bits]["map"] for seed, finals in maps[method].items()}
            row[f"{bits} bits"] = cell(list(values.values()))
            std = mean_std(list(values.values()))[1]
            worst = max(worst, (std, f"{method} at {bits} bits"))
            for reference in ("standard", "none"):
                if reference in maps and reference != method:
                    ref = {seed: finals[bits]["map"] for seed, finals in maps[reference].items()}
                    row[f"{bits}: Δ vs {reference}"] = paired_delta(values, ref)
                elif reference in maps:
                    row[f"{bits}: Δ vs {reference}"] = "-"
            row[f"_mean_{bits}"] = statistics.fmean(values.values())
            row[f"_std_{bits}"] = std
        rows.append(row)
    notes.append(
        f"Largest seed std in a cell: {worst[0]:.4f} ({worst[1]}); the target is ≤ 0.01: "
        + ("met." if worst[0] <= 0.01 else "**not met**.")
    )
    return rows, notes


def gap_table(study: Study) -> tuple[list[dict[str, Any]], list[str]]:
    preset = study.preset
    bits = preset.ablation_bits if preset.ablation_bits in preset.code_lengths else preset.code_lengths[0]
    if "--eval-train" not in preset.trainer:
        return [], [f"the {study.name} preset does not evaluate training images (no --eval-train): no gap table"]
    jobs = {m: study.method_jobs(m) for m in preset.methods}
    study.ensure([j for per_seed in jobs.values() for j in per_seed.values()])
    rows = []
    for method, per_seed in jobs.items():
        histories = [study.history(job, bits) for job in per_seed.values()]
        epochs = sorted({h["epoch"] for hist in histories for h in hist if "train_map" in h})
        for epoch in epochs:
            train = [h["train_map"] for hist in histories for h in hist if h["epoch"] == epoch and "train_map" in h]
            query = [h["map"] for hist in histories for h in hist if h["epoch"] == epoch and "map" in h]
            gaps = [t - q for t, q in zip(train, query, strict=True)]
            rows.append({
                "method": method, "epoch": epoch, "train mAP": cell(train), "query mAP": cell(query),
                "gap (train - query)": cell(gaps), "_train": statistics.fmean(train), "_query": statistics.fmean(query),
            })
    return rows, [f"{bits} bits; train mAP: the first 1,000 training images, un-augmented, as queries against the database."]


def erase_queries(images: torch.Tensor, area: float, seed: int) -> torch.Tensor:
    eraser = RandomErasingRetention(
        scale=(area, area), ratio=(0.5, 2.0), fill=0.0, p=1.0, generator=torch.Generator().manual_seed(seed)
    )
    return eraser(images)[0]


def robustness_table(study: Study) -> tuple[list[dict[str, Any]], list[str]]:
    preset = study.preset
    bits = preset.ablation_bits
    jobs = {m: study.method_jobs(m) for m in preset.methods}
    study.ensure([j for per_seed in jobs.values() for j in per_seed.values()])
    rows = []
    data: Any = None  # the trainer's RunData, loaded once
    scores: dict[str, dict[float, dict[int, float]]] = {}
    for method, per_seed in jobs.items():
        for seed, job in per_seed.items():
            config = job.config().validate().resolved()
            if data is None:
                data = load_data(config)  # the trainer's own split, limits and base transform
            model = build_model(config, bits, data.query.channels).to(config.device)
            model.load_state_dict(load_checkpoint(RunLayout.of(config).checkpoint(bits), ("model",))["model"])
            device = torch.device(config.device)
            database = sign_codes(encode(model, data.database.images, device))  # once per model
            query_labels, database_labels = data.query.labels.to(device), data.database.labels.to(device)
            for area in (0.0, *ERASED_AREAS):
                queries = data.query.images if area == 0.0 else erase_queries(data.query.images, area, seed)
                codes = sign_codes(encode(model, queries, device))
                value = float(mean_average_precision(codes, database, query_labels, database_labels, k=config.topk))
                scores.setdefault(method, {}).setdefault(area, {})[seed] = value
    for method, per_area in scores.items():
        row: dict[str, Any] = {"method": method}
        for area, values in per_area.items():
            row[f"erased {area:.1f}"] = cell(list(values.values()))
            row[f"_mean_{area:.1f}"] = statistics.fmean(values.values())
        for area in ERASED_AREAS:
            if "standard" in scores:
                same = method == "standard"
                row[f"Δ vs standard @{area:.1f}"] = "-" if same else paired_delta(per_area[area], scores["standard"][area])
        rows.append(row)
    return rows, [f"{bits} bits; each query loses one rectangle (zero fill) of the given share of its area, the same draw for every method at a seed."]


def ablation_table(study: Study) -> tuple[list[dict[str, Any]], list[str]]:
    preset = study.preset
    bits = preset.ablation_bits
    jobs = {a.name: study.ablation_jobs(a) for a in preset.ablations}
    study.ensure([j for per_seed in jobs.values() for j in per_seed.values()])
    values = {name: {seed: study.finals(job)[bits]["map"] for seed, job in per_seed.items()} for name, per_seed in jobs.items()}
    rows = []
    for ablation in preset.ablations:
        row = {
            "variant": ablation.name,
            f"mAP ({bits} bits)": cell(list(values[ablation.name].values())),
            "vs": ablation.reference or "-",
            "paired Δ": paired_delta(values[ablation.name], values[ablation.reference]) if ablation.reference else "-",
            "_mean": statistics.fmean(values[ablation.name].values()),
        }
        rows.append(row)
    return rows, [f"{bits} bits; each Δ is against the reference row's runs at the same seeds."]


def efficiency_table(study: Study) -> tuple[list[dict[str, Any]], list[str]]:
    preset = study.preset
    names = [m for m in ("standard", "gcut", "gcut-approx") if m in preset.methods]
    jobs = {m: study.method_jobs(m) for m in names}
    study.ensure([j for per_seed in jobs.values() for j in per_seed.values()])
    bits = preset.code_lengths[0]
    rows = []
    stats: dict[str, dict[str, float]] = {}
    for method in names:
        finals = [study.finals(job)[bits] for job in jobs[method].values()]
        epoch_times = [statistics.fmean(f["epoch_seconds"]) for f in finals]
        later = [statistics.fmean(f["epoch_seconds"][1:]) for f in finals if len(f["epoch_seconds"]) > 1]
        stats[method] = {"epoch": statistics.fmean(epoch_times), "later": statistics.fmean(later) if later else float("nan")}
        rows.append({
            "method": method,
            "epoch time (s)": cell(epoch_times),
            "after the first epoch (s)": cell(later) if later else "n/a",
            "forward calls / step": cell([f["forward_calls_per_step"] for f in finals]),
            f"peak memory (MiB, {finals[0].get('peak_memory_kind', '?')})": cell([f["peak_memory_mib"] for f in finals]),
            f"mAP ({bits} bits)": cell([f["map"] for f in finals]),
            "_mean": statistics.fmean(f["map"] for f in finals),
        })
    for row in rows:
        if "gcut" in stats:
            exact = stats["gcut"]
            method_stats = stats[row["method"]]
            row["epoch time / exact"] = f"{method_stats['epoch'] / exact['epoch']:.3f}"
            row["after epoch 1 / exact"] = f"{method_stats['later'] / exact['later']:.3f}"
    notes = [
        "From the main table's runs (one process per run). The approximate G_cut's first epoch fills its cache "
        "with an extra forward (the warm-up), so its later epochs show the steady state."
    ]
    return rows, notes


BUILDERS = {"main": main_table, "gap": gap_table, "robustness": robustness_table, "ablation": ablation_table, "efficiency": efficiency_table}


# -- output ----------------------------------------------------------------------------------


def machine() -> str:
    gpu = f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return f"{platform.machine()}, {os.cpu_count()} CPU cores{gpu}, torch {torch.__version__}, Python {platform.python_version()}"


def commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, check=True).stdout
        return head + ("+local changes" if dirty.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def parse_cell(text: str) -> tuple[float, float] | None:
    """``"0.7940 ± 0.0057"`` or ``"-0.0136 ± 0.0036*"`` -> (0.794, 0.0057); None for "-" or "n/a"."""
    parts = str(text).rstrip("*").split("±")
    if len(parts) != 2:
        return None
    return float(parts[0]), float(parts[1])


def plot(table: str, rows: list[dict[str, Any]], title: str) -> Any:
    """The table's picture, drawn from its visible cells (so ``--replot`` can redraw a JSON):
    mAP bars with the seed std as error bars; ablations as paired Δ bars with ±2 s.e."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if table == "gap":
        fig, ax = plt.subplots(figsize=(7.5, 4.5))
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
    if table == "ablation":
        paired = [(r["variant"], parse_cell(r["paired Δ"]), r["vs"]) for r in rows]
        paired = [(name, cell_, ref) for name, cell_, ref in paired if cell_ is not None and name != f"{ref}, limit 0.5"]
        fig, ax = plt.subplots(figsize=(7.5, 0.32 * len(paired) + 1.2))
        y = list(range(len(paired)))[::-1]
        means = [c[0] for _, c, _ in paired]
        ax.barh(y, means, xerr=[2 * c[1] for _, c, _ in paired], color=["C2" if m > 0 else "C3" for m in means], capsize=3)
        ax.set_yticks(y)
        ax.set_yticklabels([f"{name}  (vs {ref})" for name, _, ref in paired], fontsize=7)
        ax.axvline(0.0, color="black", linewidth=0.8)
        ax.set_xlabel("paired Δ mAP vs the reference run (mean, error bar ±2 s.e.)")
        ax.set_title(title, fontsize=9)
        fig.tight_layout()
        return fig
    if table == "efficiency":
        panels = [k for k in rows[0] if k.startswith(("epoch time (s)", "forward calls", "mAP"))]
        fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.4))
        for ax, column in zip(axes, panels, strict=True):
            cells = [parse_cell(r[column]) or (float("nan"), 0.0) for r in rows]
            ax.bar([str(r["method"]) for r in rows], [c[0] for c in cells], yerr=[c[1] for c in cells], capsize=3,
                   color=[f"C{i}" for i in range(len(rows))])
            ax.set_title(column, fontsize=8)
            ax.tick_params(axis="x", labelsize=7, rotation=20)
        fig.suptitle(title, fontsize=9)
        fig.tight_layout()
        return fig
    value_columns = [k for k in rows[0] if k not in ("method", "variant") and "Δ" not in k and parse_cell(rows[0][k])]
    fig, ax = plt.subplots(figsize=(max(6.5, 1.1 * len(rows) + 2), 4))
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


def replot(folder: Path) -> None:
    """Redraw every table's PNG under ``folder`` from its JSON (no runs needed)."""
    from gg_augment.io import save_figure

    for path in sorted(folder.glob("*.json")):
        record = json.loads(path.read_text())
        if "rows" in record and record.get("table") in TABLES:
            figure = plot(record["table"], record["rows"], f"{record['table']} ({record['preset']})")
            save_figure(figure, path.with_suffix(".png"))
            print(f"redrew {path.with_suffix('.png')}")


def write_table(table: str, rows: list[dict[str, Any]], notes: list[str], study: Study, started: float, command: str) -> None:
    if not rows:
        print("\n".join(notes))
        return
    out, name = study.out, study.name
    visible = [{k: v for k, v in row.items() if not k.startswith("_")} for row in rows]
    duration = time.perf_counter() - started
    preset = study.preset
    header = "\n".join([
        f"# Study: {table} table, preset {name}",
        "",
        f"{preset.description}. mAP@all of sign codes, mean ± std over seeds {list(preset.seeds)}.",
        "",
        f"- command: `{command}`",
        f"- commit: {commit()}",
        f"- machine: {machine()}",
        f"- this table's wall time: {duration / 60:.1f} min (runs reused from earlier tables cost nothing here)",
        f"- trainer flags: `{' '.join([*preset.trainer, *study.extra])}`",
        *[f"- {note}" for note in notes],
    ])
    write_results(out, table, visible, markdown_table(visible, header), plot(table, visible, f"{table} ({name})"))
    record = {"preset": name, "table": table, "command": command, "commit": commit(), "machine": machine(),
              "seconds": duration, "trainer_flags": [*preset.trainer, *study.extra], "seeds": list(preset.seeds),
              "notes": notes, "rows": visible}
    write_atomic(out / f"{table}.json", json.dumps(record, indent=2))
    print(markdown_table(visible, header))
    print(f"wrote {out / table}.md/.csv/.png/.json", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu-pretrained")
    parser.add_argument("--table", choices=(*TABLES, "all"), default="main")
    parser.add_argument("--methods", help="comma-separated subset of the preset's methods")
    parser.add_argument("--code-lengths", help="comma-separated subset of the preset's code lengths")
    parser.add_argument("--seeds", help="comma-separated seeds (default: the preset's)")
    parser.add_argument("--ablation-bits", type=int, help="code length of the robustness and ablation tables (default: the preset's)")
    parser.add_argument("--jobs", type=int, default=1, help="runs side by side, each in its own process (CPU threads are shared out)")
    parser.add_argument("--data-root", help="for the paper preset's dataset")
    parser.add_argument("--trainer-args", default="", help="extra trainer flags for every run, e.g. '--epochs 2'")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, CPU, 2 seeds: checks the machinery, not the science")
    parser.add_argument("--out", type=Path, default=Path("results/study"))
    parser.add_argument("--replot", type=Path, metavar="FOLDER", help="only redraw the PNGs of the tables' JSON files in FOLDER")
    args = parser.parse_args(argv)
    if args.replot:
        replot(args.replot)
        return
    if args.jobs < 1:
        parser.error(f"argument --jobs: must be >= 1; got {args.jobs}")
    name = args.preset
    preset = PRESETS[name]
    if args.methods:
        unknown = set(args.methods.split(",")) - set(preset.methods)
        if unknown:
            parser.error(f"argument --methods: not in the preset: {sorted(unknown)}")
        preset = replace(preset, methods=tuple(args.methods.split(",")))
    if args.code_lengths:
        preset = replace(preset, code_lengths=tuple(int(v) for v in args.code_lengths.split(",")))
    if args.seeds:
        preset = replace(preset, seeds=tuple(int(v) for v in args.seeds.split(",")))
    if args.ablation_bits:
        preset = replace(preset, ablation_bits=args.ablation_bits)
    if preset.ablation_bits not in preset.code_lengths:
        preset = replace(preset, ablation_bits=preset.code_lengths[0])
    extra = args.trainer_args.split()
    if args.smoke:
        # Every table's machinery on a few runs: 2 seeds, one code length, 4 methods, 2 ablations.
        methods = preset.methods if args.methods else tuple(m for m in preset.methods if m in SMOKE_METHODS)
        ablations = tuple(a for a in preset.ablations if a.name in ("gcut", "gcut, no retention weighting"))
        preset = replace(preset, seeds=preset.seeds[:2], code_lengths=(preset.ablation_bits,), methods=methods, ablations=ablations)
        extra = [*preset.smoke, *extra]
    study = Study(name, preset, args.out / name, args.jobs, args.data_root, extra)
    if args.smoke and preset.dry_smoke:
        dry_run(study)
        return
    command = "python benchmarks/study.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    for table in TABLES if args.table == "all" else (args.table,):
        started = time.perf_counter()
        rows, notes = BUILDERS[table](study)
        write_table(table, rows, notes, study, started, command)


def dry_run(study: Study) -> None:
    """Build every run's configuration of every table and check it, without data or a GPU."""
    count = 0
    jobs = [*(j for m in study.preset.methods for j in study.method_jobs(m).values()),
            *(j for a in study.preset.ablations for j in study.ablation_jobs(a).values())]
    for job in jobs:
        argv = [a if a != "cuda" else "cpu" for a in job.argv]
        parse_config_unchecked(argv).resolved()
        count += 1
    print(f"{study.name}: {count} run configurations built (dry run: this preset needs its data and a GPU)")


def parse_config_unchecked(argv: list[str]) -> TrainConfig:
    """Flags to a configuration without :meth:`TrainConfig.validate` (whose data and device checks need the machine)."""
    return parse_config("hashing", argv, check=False)


if __name__ == "__main__":
    main()
