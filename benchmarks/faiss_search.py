"""Serving binary codes: faiss's IndexBinaryFlat vs our torch Hamming ranking, same codes.

Random ±1 codes (the search cost does not depend on what the codes mean): ``--queries`` ×
``--database`` at ``--bits``, top ``--k``. Each side is timed round-robin (median of
``--repeats``), and the two rankings are checked to agree up to ties before anything is
reported. Writes faiss_search.md/.csv/.png under ``--out``.

    pip install -e ".[faiss]" && python benchmarks/faiss_search.py       # 10k x 100k, 64 bits
"""

from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path

import torch
from harness import horizontal_bars, interleave, markdown_table, summary, write_results

from gg_augment.hashing import BinaryCodeIndex, sign_codes
from gg_augment.metrics import hamming_top_k


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--database", type=int, default=100_000)
    parser.add_argument("--bits", type=int, default=64)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("results/faiss_search"))
    args = parser.parse_args(argv)
    generator = torch.Generator().manual_seed(0)
    database = sign_codes(torch.randn(args.database, args.bits, generator=generator))
    query = sign_codes(torch.randn(args.queries, args.bits, generator=generator))
    index = BinaryCodeIndex(args.bits)
    index.add(database)

    faiss_distances, faiss_ids = index.search(query, args.k)
    our_distances, our_ids = hamming_top_k(query, database, k=args.k)
    if not torch.equal(faiss_distances, our_distances):
        raise SystemExit("faiss and torch disagree on the top-k distances: nothing timed")
    kth = our_distances[:, -1:]
    same_closer = torch.equal(
        torch.sort(torch.where(our_distances < kth, our_ids, -1), dim=1).values,
        torch.sort(torch.where(faiss_distances < kth, faiss_ids, -1), dim=1).values,
    )
    if not same_closer:
        raise SystemExit("faiss and torch disagree on the ids closer than the k-th distance: nothing timed")

    times = interleave(
        {"faiss IndexBinaryFlat": lambda: index.search(query, args.k), "torch hamming_top_k": lambda: hamming_top_k(query, database, k=args.k)},
        repeats=args.repeats, warmup=1,
    )
    ours = summary(times["torch hamming_top_k"])[0]
    rows = []
    for name, values in times.items():
        median, q1, q3 = summary(values)
        rows.append({"search": name, "median (ms)": median, "q1 (ms)": q1, "q3 (ms)": q3,
                     "queries/s": args.queries / (median / 1000), "vs torch": f"{ours / median:.2f}x"})
    header = (
        f"# Serving {args.bits}-bit codes: {args.queries:,} queries x {args.database:,} codes, top {args.k}\n\n"
        f"Median of {args.repeats} round-robin repeats; both rankings agree (same top-k distances, same ids below the "
        f"k-th distance). faiss threads: default; torch threads: {torch.get_num_threads()}. "
        f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}.\n\n"
        f"Command: `python benchmarks/faiss_search.py --queries {args.queries} --database {args.database} --bits {args.bits} --k {args.k}`"
    )
    fig = horizontal_bars([r["search"] for r in rows], [r["median (ms)"] / 1000 for r in rows],
                          "seconds per search of all queries (median)",
                          f"{args.queries:,} x {args.database:,} codes, {args.bits} bits, top {args.k}")
    print(write_results(args.out, "faiss_search", rows, markdown_table(rows, header), fig))


if __name__ == "__main__":
    main()
