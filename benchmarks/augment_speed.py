"""Batched GG augmentations vs the per-sample Python loops they replace.

Measured in one interleaved run (round-robin, median of repeats), so machine noise hits both
sides alike; the ratio is the figure to quote.

    python benchmarks/augment_speed.py --batch 256 --size 32 --repeats 15
"""

from __future__ import annotations

import argparse
import platform
from pathlib import Path

import torch
from harness import interleave, markdown_table, median, write_results
from naive import gcut_per_sample, gt_canvas_crop_per_sample

from gg_augment import GT, GCut


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--grid", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=Path("results/augment_speed"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    generator = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(args.batch, 3, args.size, args.size, device=device, generator=generator)
    # Attention as a CNN gives it: a coarse 4x4 map (SmallResNet's layer4 at 32 px), peaked.
    attention = torch.rand(args.batch, 4, 4, device=device, generator=generator).pow(3)

    gcut = GCut(grid_size=args.grid, generator=generator)
    gt = GT(generator=generator)
    cpu_generator = torch.Generator().manual_seed(0)
    x_cpu, attention_cpu = x.cpu(), attention.cpu()
    candidates = {
        "GCut batched": lambda: gcut(x, attention=attention),
        "GCut per-sample loop": lambda: gcut_per_sample(x_cpu, attention_cpu, (args.grid, args.grid), generator=cpu_generator),
        "GT batched": lambda: gt(x),
        "GT per-sample canvas crop": lambda: gt_canvas_crop_per_sample(x_cpu, generator=cpu_generator),
    }
    times = interleave(candidates, repeats=args.repeats, device=device)
    med = {name: median(t) for name, t in times.items()}
    rows = []
    for name in candidates:
        baseline = "GCut per-sample loop" if name.startswith("GCut") else "GT per-sample canvas crop"
        rows.append(
            {
                "variant": name,
                "median_ms": 1e3 * med[name],
                "min_ms": 1e3 * min(times[name]),
                "speedup_vs_loop": med[baseline] / med[name],
            }
        )
    header = (
        f"# Batched vs per-sample augmentation\n\nB={args.batch}, {args.size}x{args.size}, grid "
        f"{args.grid}x{args.grid}, device={device}, threads={args.threads}, repeats={args.repeats} "
        f"(interleaved, median), torch {torch.__version__}, {platform.processor() or platform.machine()}"
    )
    print(write_results(args.out, "augment_speed", rows, markdown_table(rows, header)))


if __name__ == "__main__":
    main()
