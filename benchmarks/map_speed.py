"""Vectorised mAP@K (gg_augment.metrics) against a per-query Python loop.

Default problem: 1,000 queries x 100,000 database items, 64-bit ±1 codes, 10 classes, mAP@1000.
Both sides run on the same device and thread count and are timed round-robin (interleaved), so
machine noise hits them alike; the medians and their ratio are printed and written as
markdown + CSV (atomically) to ``--out``. The loop can be timed on a subsample of the queries
(``--naive-queries``) and scaled per query to the full set; the output says when it is.
Both sides must give the same mAP on the queries the loop ran (checked and printed).

    python benchmarks/map_speed.py --repeats 5            # loop on all queries (~1 min, 2 cores)
    python benchmarks/map_speed.py --naive-queries 100    # loop on 100 queries, scaled x10
"""

from __future__ import annotations

import argparse
import platform
import statistics
from pathlib import Path

import torch
from harness import interleave, write_results

from gg_augment.metrics import mean_average_precision


def map_per_query_loop(
    query: torch.Tensor,
    database: torch.Tensor,
    query_labels: torch.Tensor,
    database_labels: torch.Tensor,
    topk: int,
) -> float:
    """The usual toolkit shape: one query at a time, a full stable sort, Python-side sums."""
    code_length = query.shape[1]
    depth = min(topk, database.shape[0])
    ranks = torch.arange(1, depth + 1, dtype=torch.float64, device=query.device)
    total = 0.0
    for i in range(query.shape[0]):
        distance = 0.5 * (code_length - database @ query[i])
        order = torch.sort(distance, stable=True).indices[:depth]
        relevant = (database_labels[order] == query_labels[i]).to(torch.float64)
        hits = relevant.cumsum(0)
        num_relevant = float(hits[-1])
        if num_relevant > 0:
            total += float((hits / ranks * relevant).sum()) / num_relevant
    return total / query.shape[0]


def class_codes(
    num: int, centres: torch.Tensor, flip: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """±1 codes near one of the class centres (each bit flipped with probability ``flip``)."""
    labels = torch.randint(0, centres.shape[0], (num,), generator=generator)
    flips = torch.rand(num, centres.shape[1], generator=generator) < flip
    codes = centres[labels] * torch.where(flips, -1.0, 1.0)
    return codes, labels


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--database", type=int, default=100_000)
    parser.add_argument("--bits", type=int, default=64)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--topk", type=int, default=1000)
    parser.add_argument(
        "--flip", type=float, default=0.3, help="bit-flip probability around class centres"
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--naive-queries",
        type=int,
        default=0,
        help="queries the per-query loop runs on (0 = all); its time is scaled per query",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("results/map_speed"))
    args = parser.parse_args()
    if min(args.queries, args.database, args.bits, args.classes, args.topk, args.repeats) < 1:
        parser.error("--queries, --database, --bits, --classes, --topk, --repeats must be >= 1")
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    generator = torch.Generator().manual_seed(args.seed)
    centres = torch.randint(0, 2, (args.classes, args.bits), generator=generator) * 2.0 - 1.0
    query, query_labels = class_codes(args.queries, centres, args.flip, generator)
    database, database_labels = class_codes(args.database, centres, args.flip, generator)
    query, query_labels = query.to(device), query_labels.to(device)
    database, database_labels = database.to(device), database_labels.to(device)
    naive_count = args.queries if args.naive_queries <= 0 else min(args.naive_queries, args.queries)
    subsampled = naive_count < args.queries

    answers: dict[str, float] = {}

    def vectorised() -> None:
        answers["vectorised"] = float(
            mean_average_precision(query, database, query_labels, database_labels, k=args.topk)
        )

    def naive() -> None:
        answers["loop"] = map_per_query_loop(
            query[:naive_count], database, query_labels[:naive_count], database_labels, args.topk
        )

    # Warm-up (allocator, kernels, lazy library loading), then round-robin repeats.
    vectorised()
    map_per_query_loop(query[:2], database, query_labels[:2], database_labels, args.topk)
    times = interleave({"vectorised": vectorised, "loop": naive}, args.repeats, device, warmup=0)
    vectorised_times, naive_times = times["vectorised"], times["loop"]
    map_vectorised, map_naive = answers["vectorised"], answers["loop"]

    # Same answer on the queries the loop ran.
    map_vectorised_subset = float(
        mean_average_precision(
            query[:naive_count],
            database,
            query_labels[:naive_count],
            database_labels,
            k=args.topk,
        )
    )
    difference = abs(map_vectorised_subset - map_naive)
    same = difference <= 1e-6
    if not same:
        raise SystemExit(
            f"mAP mismatch on {naive_count} queries: vectorised {map_vectorised_subset:.8f} vs "
            f"loop {map_naive:.8f}"
        )

    vectorised_median = statistics.median(vectorised_times)
    naive_median = statistics.median(naive_times)
    naive_full = naive_median * args.queries / naive_count
    ratio = naive_full / vectorised_median
    rows = [
        {
            "method": "vectorised (gg_augment.metrics.mean_average_precision)",
            "queries_timed": args.queries,
            "median_s_timed": round(vectorised_median, 4),
            "median_s_for_all_queries": round(vectorised_median, 4),
            "ms_per_query": round(1e3 * vectorised_median / args.queries, 4),
            "map": round(float(map_vectorised), 6),
        },
        {
            "method": "per-query Python loop",
            "queries_timed": naive_count,
            "median_s_timed": round(naive_median, 4),
            "median_s_for_all_queries": round(naive_full, 4),
            "ms_per_query": round(1e3 * naive_median / naive_count, 4),
            "map": round(map_naive, 6),
        },
    ]
    note = (
        f"The loop ran on the first {naive_count} of {args.queries} queries; its time for all "
        f"queries is scaled per query (x{args.queries / naive_count:g})."
        if subsampled
        else "Both sides ran on all queries."
    )
    header = "\n".join(
        [
            f"# mAP@{args.topk} speed: {args.queries} queries x {args.database} items, "
            f"{args.bits}-bit codes, {args.classes} classes (bit-flip {args.flip:g})",
            "",
            f"- device: {device} ({platform.processor() or platform.machine()}), "
            f"torch {torch.__version__}, threads {torch.get_num_threads()}",
            f"- {args.repeats} interleaved repeats, medians; one warm-up call each",
            f"- {note}",
            f"- speed-up (loop time for all queries / vectorised): **{ratio:.1f}x**",
            f"- same mAP on the {naive_count} looped queries: {same} "
            f"(vectorised {map_vectorised_subset:.6f}, loop {map_naive:.6f}, "
            f"|diff| {difference:.1e})",
        ]
    )
    columns = list(rows[0])
    table = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    table += ["| " + " | ".join(str(row[c]) for c in columns) + " |" for row in rows]
    markdown = header + "\n\n" + "\n".join(table) + "\n"

    write_results(
        args.out, "map_speed", [{**row, "speedup": round(ratio, 3), "subsampled": subsampled} for row in rows], markdown
    )
    print(markdown)
    print(f"written to {args.out}/map_speed.md and map_speed.csv")


if __name__ == "__main__":
    main()
