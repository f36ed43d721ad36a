"""torch.compile vs eager for GT, GCut on a given map, erasing, the loss and mAP (interleaved).

Every candidate runs with ``validate_args=False`` and the global RNG (what keeps one graph,
see tests/contract/test_compile.py), compiled with ``fullgraph=True`` (inductor). Medians of
``--repeats`` round-robin calls after the compile warm-up; the ratio is eager / compiled
(> 1: compiled is faster). Writes compile_speed.md/.csv/.png under ``--out``.

    python benchmarks/compile_speed.py                 # CPU, batch 128 at 32 px
    python benchmarks/compile_speed.py --device cuda --batch 256 --size 224
"""

from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path

import torch
from harness import horizontal_bars, interleave, markdown_table, summary, write_results

import gg_augment as gg
from gg_augment.hashing import sign_codes
from gg_augment.metrics import mean_average_precision


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--out", type=Path, default=Path("results/compile_speed"))
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(args.batch, 3, args.size, args.size, generator=generator).to(device)
    attention = torch.rand(args.batch, 12, 12, generator=generator).to(device)
    outputs = torch.tanh(torch.randn(args.batch, 32, generator=generator)).to(device)
    labels, weight = (torch.arange(args.batch) % 10).to(device), torch.rand(args.batch, generator=generator).to(device)
    query = sign_codes(torch.randn(1000, 32, generator=generator)).to(device)
    database = sign_codes(torch.randn(5000, 32, generator=generator)).to(device)
    query_labels, database_labels = (torch.arange(1000) % 10).to(device), (torch.arange(5000) % 10).to(device)

    gt = gg.GT(sigma=0.2, validate_args=False)
    erasing = gg.RandomErasingRetention.authors(validate_args=False)
    gcut = gg.GCut(grid_size=12, validate_args=False)
    loss_fn = gg.RetentionWeightedPairwiseLoss(validate_args=False)
    cases = {
        f"GT ({args.batch}x3x{args.size}x{args.size})": (gt, (images,)),
        "RandomErasingRetention": (erasing, (images,)),
        "GCut, given 12x12 map": (lambda x, a: gcut(x, attention=a), (images, attention)),
        f"pairwise loss ({args.batch}x32)": (loss_fn, (outputs, labels, weight)),
        "mAP (1,000 x 5,000, 32 bits)": (lambda q, d, ql, dl: mean_average_precision(q, d, ql, dl, validate_args=False),
                                         (query, database, query_labels, database_labels)),
    }
    rows = []
    for name, (fn, inputs) in cases.items():
        torch._dynamo.reset()
        compiled = torch.compile(fn, fullgraph=True)
        candidates = {
            "eager": lambda fn=fn, inputs=inputs: fn(*inputs),
            "compiled": lambda compiled=compiled, inputs=inputs: compiled(*inputs),
        }
        times = interleave(candidates, repeats=args.repeats, device=device, warmup=3)
        eager_ms, compiled_ms = summary(times["eager"])[0], summary(times["compiled"])[0]
        rows.append({"module": name, "eager (ms)": eager_ms, "compiled (ms)": compiled_ms,
                     "eager / compiled": f"{eager_ms / compiled_ms:.2f}"})
    header = (
        f"# torch.compile(fullgraph=True) vs eager on {args.device}\n\n"
        f"Median of {args.repeats} interleaved calls after warm-up; torch {torch.__version__}, "
        f"{platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} threads.\n\n"
        f"Command: `python benchmarks/compile_speed.py --device {args.device} --batch {args.batch} --size {args.size}`"
    )
    fig = horizontal_bars([r["module"] for r in rows], [float(r["eager / compiled"]) for r in rows],
                          "eager time / compiled time (> 1: compiled faster)", f"torch.compile on {args.device}", reference=1.0)
    print(write_results(args.out, "compile_speed", rows, markdown_table(rows, header), fig))


if __name__ == "__main__":
    main()
