"""Peak memory of the streaming trainer against the dataset size: it must not grow with it.

Builds deep-hashing image lists of 10,000 and 20,000 JPEGs at 224 px (upscaled embedded
Fashion-MNIST images, RGB, labels as one-hot vectors) under ``--cache``, then trains one epoch
on each through the trainer's command line (``--data imagelist``: streamed through a
DataLoader, images decoded and resized in ``--workers`` worker processes) in a fresh process,
and reports each run's peak RSS (main process and its workers), the 20k/10k ratio, and the
training throughput in images per second. Writes memory.md / .csv / .png under ``--out``.

    python benchmarks/memory.py                             # 10k and 20k JPEGs, 64-px training
    python benchmarks/memory.py --sizes 2000,4000 --epochs 1   # quick
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
from harness import (
    command_line,
    fresh_process,
    markdown_table,
    provenance,
    provenance_lines,
    write_results,
)
from PIL import Image

from gg_augment.data import load_embedded

# Runs the trainer in a fresh process and prints its own peak RSS and its workers' (the harness's
# peak_memory) as the last line.
PROBE = """
import json, sys
from harness import peak_memory
from gg_augment.training.cli import main
main("hashing", "memory benchmark", sys.argv[1:])
print(json.dumps(peak_memory("cpu", children=True)))
"""


def build_image_list(root: Path, num_train: int, num_query: int, num_database: int, size: int) -> Path:
    """JPEG files and train/query/database lists in the deep-hashing list format."""
    marker = root / "done.json"
    wanted = {"train": num_train, "query": num_query, "database": num_database, "size": size}
    if marker.is_file() and json.loads(marker.read_text()) == wanted:
        return root
    images, labels = load_embedded("train", image_size=28, channels=1, normalize=False).tensors
    pixels = (images[:, 0].numpy() * 255).astype(np.uint8)
    (root / "images").mkdir(parents=True, exist_ok=True)
    total = num_train + num_query + num_database
    lines = []
    for i in range(total):
        source = i % pixels.shape[0]
        path = root / "images" / f"{i:06d}.jpg"
        if not path.is_file():
            Image.fromarray(pixels[source]).resize((size, size), Image.BILINEAR).convert("RGB").save(path, quality=90)
        one_hot = ["0"] * 10
        one_hot[int(labels[source])] = "1"
        lines.append(f"images/{path.name} {' '.join(one_hot)}\n")
    (root / "train.txt").write_text("".join(lines[:num_train]))
    (root / "query.txt").write_text("".join(lines[num_train : num_train + num_query]))
    (root / "database.txt").write_text("".join(lines[num_train + num_query :]))
    marker.write_text(json.dumps(wanted))
    return root


def run_trainer(root: Path, out: Path, args: argparse.Namespace) -> dict[str, float]:
    argv = [
        "--data", "imagelist", "--data-root", str(root), "--image-size", str(args.image_size),
        "--augment", args.augment, "--epochs", str(args.epochs), "--code-lengths", "16",
        "--batch-size", str(args.batch_size), "--workers", str(args.workers), "--threads", str(args.threads),
        "--out", str(out), "--no-progress",
    ]
    started = time.perf_counter()
    try:
        memory = fresh_process([sys.executable, "-c", PROBE, *argv], import_from=Path(__file__).resolve().parent)
    except RuntimeError as error:
        raise SystemExit(f"trainer failed on {root}: {error}") from None
    wall = time.perf_counter() - started
    final = json.loads(next(out.rglob("final.json")).read_text())
    return {
        "main_peak_mib": memory["peak_memory_mib"],
        "worker_peak_mib": memory["children_peak_mib"],
        "train_seconds": final["train_seconds"],
        "wall_seconds": wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,20000", help="training-set sizes (JPEG files), comma-separated")
    parser.add_argument("--jpeg-size", type=int, default=224)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--database", type=int, default=500)
    parser.add_argument("--image-size", type=int, default=64, help="training resolution (decoded and resized in the workers)")
    parser.add_argument("--augment", default="gt")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache", type=Path, default=Path("results/memory/data"))
    parser.add_argument("--out", type=Path, default=Path("results/memory"))
    args = parser.parse_args()
    started, command = time.perf_counter(), command_line("benchmarks/memory.py")
    sizes = [int(v) for v in args.sizes.split(",")]
    rows = []
    for size in sizes:
        root = build_image_list(args.cache / f"n{size}", size, args.queries, args.database, args.jpeg_size)
        result = run_trainer(root, args.out / "runs" / f"n{size}", args)
        images_per_second = size * args.epochs / result["train_seconds"]
        rows.append({"train_images": size, **{k: round(v, 1) for k, v in result.items()}, "images_per_second": round(images_per_second, 1)})
        print(rows[-1], flush=True)
    ratio = rows[-1]["main_peak_mib"] / rows[0]["main_peak_mib"]
    record = provenance(command, started)
    header = "\n".join([
        "# Streaming trainer: peak memory against dataset size",
        "",
        *provenance_lines(record),
        f"- {args.jpeg_size}-px JPEGs (upscaled embedded Fashion-MNIST), decoded and resized to {args.image_size} px in "
        f"{args.workers} DataLoader workers; small CNN, `--augment {args.augment}`, batch {args.batch_size}, "
        f"{args.epochs} epoch(s), {args.threads} torch threads; {platform.machine()}",
        "- peak RSS of the trainer process (harness.peak_memory: VmHWM, else maxrss) and, separately, of its largest worker",
        f"- **{rows[-1]['train_images']:,}/{rows[0]['train_images']:,} peak-RSS ratio: {ratio:.3f}** "
        "(bounded by the batch: 1.0 means the data set's size does not show in memory)",
    ])
    markdown = markdown_table(rows, header)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
    labels = [f"{r['train_images']:,}" for r in rows]
    left.bar(labels, [r["main_peak_mib"] for r in rows], color="#4c72b0")
    left.set_ylabel("peak RSS of the trainer (MiB)")
    left.set_xlabel("training images (JPEG, streamed)")
    left.set_title(f"memory: ratio {ratio:.3f}")
    right.bar(labels, [r["images_per_second"] for r in rows], color="#55a868")
    right.set_ylabel("training images / s")
    right.set_xlabel("training images (JPEG, streamed)")
    right.set_title("throughput")
    fig.tight_layout()
    print(write_results(args.out, "memory", rows, markdown, fig, record))


if __name__ == "__main__":
    main()
