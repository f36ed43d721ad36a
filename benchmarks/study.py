"""Regenerate the study's tables: main mAP table, robustness, ablations.

Runs the trainer (``gg_augment.training``, the library behind ``examples/train_hashing.py``)
for every configuration of a preset, through the same flags as its command line, then reads
each run's results where :class:`~gg_augment.training.RunLayout` puts them and aggregates
mean ± std over seeds into markdown, CSV and a PNG plot. Runs that already finished under
``--out`` are reused (the trainer's ``--resume``), so an interrupted study continues where it
stopped.

    python benchmarks/study.py --table main --preset cpu-small
    python benchmarks/study.py --table robustness --preset cpu-small
    python benchmarks/study.py --table ablation --preset cpu-small

Tables:
    main        methods × code lengths (× datasets), mAP mean ± std over seeds
    robustness  the main table's hashing models, queries erased at {0.2, 0.4, 0.6, 0.8} of their area
    ablation    G_cut with vs without retention weighting; attention vs area retention score

Presets:
    cpu-small   embedded data, small CNN, 2,000 training images, 5 epochs, 16 and 32 bits, 2 seeds
                (about 14 minutes for the main table on 2 CPU cores)
    paper       GPU, CIFAR-10 / image lists, ResNet-50 (configuration only; needs the data)
"""

from __future__ import annotations

import argparse
import json
import statistics
from dataclasses import replace
from pathlib import Path

import torch
from harness import markdown_table, write_results

from gg_augment import RandomErasingRetention
from gg_augment.hashing import sign_codes
from gg_augment.io import load_checkpoint, write_atomic
from gg_augment.metrics import mean_average_precision
from gg_augment.training import RunLayout, TrainConfig, build_model, encode, load_splits, run
from gg_augment.training.cli import parse_config

PRESETS = {
    "cpu-small": {
        "datasets": ["embedded"],
        "methods": ["none", "standard", "erasing", "softcrop", "gt", "gcut", "gcut-approx"],
        "code_lengths": [16, 32],
        "seeds": [0, 1],
        "trainer": ["--epochs", "5", "--limit-train", "2000", "--device", "cpu", "--no-progress"],
    },
    "paper": {
        "datasets": ["cifar10"],
        "methods": ["none", "standard", "erasing", "softcrop", "gt", "gcut", "gcut-approx"],
        "code_lengths": [16, 32, 48, 64],
        "seeds": [0, 1, 2],
        "trainer": ["--epochs", "100", "--arch", "resnet50", "--pretrained", "--image-size", "224", "--device", "cuda", "--gcut-grid", "7"],
    },
}
ERASED_AREAS = (0.2, 0.4, 0.6, 0.8)
ABLATIONS = {
    "gcut (retention, attention score)": ["--augment", "gcut"],
    "gcut, no retention weighting": ["--augment", "gcut", "--no-retention"],
    "gcut, area score": ["--augment", "gcut", "--gcut-score", "area"],
    "gt (retention)": ["--augment", "gt"],
    "gt, no retention weighting": ["--augment", "gt", "--no-retention"],
}


def trainer_config(out: Path, dataset: str, seed: int, code_lengths: list[int], extra: list[str], preset: dict, data_root: str | None) -> TrainConfig:
    """The configuration of one run, from the same flags as the trainer's command line."""
    argv = ["--data", dataset, "--seed", str(seed), "--code-lengths", ",".join(map(str, code_lengths)), "--out", str(out), "--resume", *preset["trainer"], *extra]
    if data_root:
        argv += ["--data-root", data_root]
    return parse_config("hashing", argv)


def train(out: Path, dataset: str, seed: int, code_lengths: list[int], extra: list[str], preset: dict, data_root: str | None) -> list[dict]:
    """Run (or reuse) one configuration; return each code length's ``final.json``."""
    config = trainer_config(out, dataset, seed, code_lengths, extra, preset, data_root)
    run(config)
    layout = RunLayout.of(config)
    return [json.loads(layout.final(bits).read_text()) for bits in config.code_lengths]


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def main_table(args: argparse.Namespace, preset: dict) -> list[dict]:
    rows = []
    for dataset in preset["datasets"]:
        for method in preset["methods"]:
            per_bits: dict[int, list[float]] = {}
            for seed in preset["seeds"]:
                for result in train(args.out / "runs", dataset, seed, preset["code_lengths"], ["--augment", method], preset, args.data_root):
                    per_bits.setdefault(result["code_length"], []).append(result["map"])
            row: dict[str, object] = {"dataset": dataset, "method": method}
            for bits in preset["code_lengths"]:
                mean, std = mean_std(per_bits[bits])
                row[f"{bits} bits"] = f"{mean:.4f} ± {std:.4f}"
                row[f"_mean_{bits}"] = mean
            rows.append(row)
    return rows


def erase_queries(images: torch.Tensor, area: float, seed: int) -> torch.Tensor:
    eraser = RandomErasingRetention(scale=(area, area), ratio=(0.5, 2.0), fill=0.0, p=1.0, generator=torch.Generator().manual_seed(seed))
    return eraser(images)[0]


def robustness_table(args: argparse.Namespace, preset: dict) -> list[dict]:
    rows = []
    for dataset in preset["datasets"]:
        data_config = trainer_config(args.out / "runs", dataset, 0, [args.robustness_bits], [], preset, args.data_root)
        splits = load_splits(data_config)
        query_images, query_labels = splits.query.tensors
        database_images, database_labels = splits.database.tensors
        device = torch.device(data_config.device)
        for method in preset["methods"]:
            scores: dict[float, list[float]] = {}
            for seed in preset["seeds"]:
                train(args.out / "runs", dataset, seed, [args.robustness_bits], ["--augment", method], preset, args.data_root)
                config = replace(data_config, augment=method, seed=seed)
                state = load_checkpoint(RunLayout.of(config).checkpoint(args.robustness_bits), ("model",))
                model = build_model(config, args.robustness_bits, query_images.shape[1])
                model.load_state_dict(state["model"])
                database_codes = sign_codes(encode(model, database_images, device))
                for area in (0.0, *ERASED_AREAS):
                    queries = query_images if area == 0.0 else erase_queries(query_images, area, seed)
                    query_codes = sign_codes(encode(model, queries, device))
                    value = float(mean_average_precision(query_codes, database_codes, query_labels, database_labels))
                    scores.setdefault(area, []).append(value)
            row: dict[str, object] = {"dataset": dataset, "method": method}
            for area, values in scores.items():
                mean, std = mean_std(values)
                row[f"erased {area:.1f}"] = f"{mean:.4f} ± {std:.4f}"
                row[f"_mean_{area}"] = mean
            rows.append(row)
    return rows


def ablation_table(args: argparse.Namespace, preset: dict) -> list[dict]:
    rows = []
    bits = args.robustness_bits
    for dataset in preset["datasets"]:
        for name, extra in ABLATIONS.items():
            values = [r["map"] for seed in preset["seeds"] for r in train(args.out / "runs", dataset, seed, [bits], extra, preset, args.data_root)]
            mean, std = mean_std(values)
            rows.append({"dataset": dataset, "variant": name, f"mAP@all ({bits} bits)": f"{mean:.4f} ± {std:.4f}", "_mean": mean})
    return rows


def plot(rows: list[dict], title: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in rows[0] if k.startswith("_mean")]
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(rows)), 3.5))
    width = 0.8 / len(keys)
    for i, key in enumerate(keys):
        ax.bar([j + i * width for j in range(len(rows))], [float(r[key]) for r in rows], width, label=key[len("_mean") :].lstrip("_") or "mAP")
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(rows))])
    ax.set_xticklabels([str(r.get("method", r.get("variant"))) for r in rows], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("mAP")
    ax.set_title(title, fontsize=9)
    if len(keys) > 1:
        ax.legend(fontsize=7)
    return fig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", choices=("main", "robustness", "ablation"), default="main")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu-small")
    parser.add_argument("--methods", help="comma-separated subset of the preset's methods")
    parser.add_argument("--code-lengths", help="comma-separated subset of the preset's code lengths")
    parser.add_argument("--seeds", help="comma-separated seeds (default: the preset's)")
    parser.add_argument("--robustness-bits", type=int, default=32, help="code length of the robustness and ablation tables")
    parser.add_argument("--data-root", help="for the paper preset's datasets")
    parser.add_argument("--trainer-args", default="", help="extra arguments for the trainer, e.g. '--epochs 2'")
    parser.add_argument("--out", type=Path, default=Path("results/study"))
    args = parser.parse_args()
    preset = dict(PRESETS[args.preset])
    if args.methods:
        preset["methods"] = args.methods.split(",")
    if args.code_lengths:
        preset["code_lengths"] = [int(v) for v in args.code_lengths.split(",")]
    if args.seeds:
        preset["seeds"] = [int(v) for v in args.seeds.split(",")]
    preset["trainer"] = [*preset["trainer"], *args.trainer_args.split()]

    build = {"main": main_table, "robustness": robustness_table, "ablation": ablation_table}[args.table]
    rows = build(args, preset)
    visible = [{k: v for k, v in row.items() if not k.startswith("_")} for row in rows]
    header = (
        f"# Study: {args.table} table ({args.preset})\n\nmAP@all, mean ± std over seeds {preset['seeds']}; "
        f"trainer arguments: `{' '.join(preset['trainer'])}`. Split seed and sizes are in each run's results.json."
    )
    print(write_results(args.out, args.table, visible, markdown_table(visible, header), plot(rows, f"{args.table} ({args.preset})")))
    write_atomic(args.out / f"{args.table}.json", json.dumps({"preset": args.preset, "config": preset, "rows": visible}, indent=2))
    print(f"wrote {args.out / args.table}.md/.csv/.png")


if __name__ == "__main__":
    main()
