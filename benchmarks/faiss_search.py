"""Serving binary codes: BinaryCodeIndex (exact and HNSW) vs faiss's IndexBinaryFlat, same codes.

Random ±1 codes (the search cost does not depend on what the codes mean): ``--queries`` ×
``--database`` at ``--bits``, top ``--k``. Candidates, timed round-robin (median of
``--repeats``) on ``--threads`` threads for torch and faiss alike:

- ``faiss IndexBinaryFlat``: faiss's exhaustive index with its default heap search;
- ``BinaryCodeIndex exact``: ours (on faiss's IndexBinaryFlat when installed), with ids;
- ``hamming_top_k (torch)``: the pure-torch engine;
- ``BinaryCodeIndex hnsw``: faiss's ``IndexBinaryHNSW`` graph (built once, not timed), with
  its recall@k against the exact search.

The exact candidates must agree (same distances; same ids below the k-th distance; ours
identical to each other) before anything is reported. Writes faiss_search.md/.csv/.png.

    pip install -e ".[faiss]" && OMP_NUM_THREADS=1 python benchmarks/faiss_search.py
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch
from harness import horizontal_bars, interleave, markdown_table, summary, write_results

from gg_augment.hashing import BinaryCodeIndex, hamming_top_k, sign_codes
from gg_augment.metrics.ranking import pack_bits, require_faiss


def recall(found: torch.Tensor, exact: torch.Tensor) -> float:
    """Share of the exact top-k ids that the approximate search also returns."""
    hits = (found[:, :, None] == exact[:, None, :]).any(dim=1).sum()
    return float(hits) / exact.numel()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--database", type=int, default=100_000)
    parser.add_argument("--bits", type=int, default=64)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--neighbors", type=int, default=32, help="HNSW links per node")
    parser.add_argument("--ef-search", type=int, default=64, help="HNSW search breadth")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("results/faiss_search"))
    args = parser.parse_args(argv)
    faiss = require_faiss("benchmarks/faiss_search.py")
    torch.set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    database = sign_codes(torch.randn(args.database, args.bits, generator=generator))
    query = sign_codes(torch.randn(args.queries, args.bits, generator=generator))
    ids = torch.arange(args.database) + 10**9

    flat = faiss.IndexBinaryFlat(args.bits)
    flat.add(pack_bits(database))
    packed_query = pack_bits(query)
    exact = BinaryCodeIndex(args.bits)
    exact.add(database, ids=ids)
    graph = BinaryCodeIndex(args.bits, approximate="hnsw", neighbors=args.neighbors, ef_search=args.ef_search)
    graph.add(database, ids=ids)
    start = time.perf_counter()
    graph.search(query[:1], args.k)  # builds the graph
    build_s = time.perf_counter() - start

    faiss_distances, faiss_positions = (torch.from_numpy(a).long() for a in flat.search(packed_query, args.k))
    our_distances, our_ids = exact.search(query, args.k)
    torch_distances, torch_positions = hamming_top_k(query, database, k=args.k, engine="torch")
    if not (torch.equal(our_distances, faiss_distances) and torch.equal(torch_distances, our_distances)):
        raise SystemExit("the exact searches disagree on the top-k distances: nothing timed")
    if not torch.equal(ids[torch_positions], our_ids):
        raise SystemExit("BinaryCodeIndex and hamming_top_k disagree on the ids: nothing timed")
    kth = our_distances[:, -1:]
    closer = torch.sort(torch.where(our_distances < kth, our_ids, -1), dim=1).values
    if not torch.equal(closer, torch.sort(torch.where(faiss_distances < kth, ids[faiss_positions], -1), dim=1).values):
        raise SystemExit("faiss and ours disagree on the ids closer than the k-th distance: nothing timed")
    graph_distances, graph_ids = graph.search(query, args.k)
    graph_recall = recall(graph_ids, our_ids)
    # Random codes tie a lot at the k-th distance; a result as close as the k-th is as good.
    distance_recall = float((graph_distances <= kth).float().mean())

    times = interleave(
        {
            "faiss IndexBinaryFlat": lambda: flat.search(packed_query, args.k),
            "BinaryCodeIndex exact": lambda: exact.search(query, args.k),
            "hamming_top_k (torch)": lambda: hamming_top_k(query, database, k=args.k, engine="torch"),
            "BinaryCodeIndex hnsw": lambda: graph.search(query, args.k),
        },
        repeats=args.repeats, warmup=1,
    )
    base = summary(times["faiss IndexBinaryFlat"])[0]
    rows = []
    for name, values in times.items():
        median, q1, q3 = summary(values)
        rows.append({
            "search": name, "median (ms)": median, "q1 (ms)": q1, "q3 (ms)": q3,
            "queries/s": args.queries / (median / 1000), "time / faiss flat": f"{median / base:.3f}",
            f"recall@{args.k}": f"{graph_recall:.4f}" if "hnsw" in name else "1 (exact)",
            "within k-th distance": f"{distance_recall:.4f}" if "hnsw" in name else "1 (exact)",
        })
    header = (
        f"# Serving {args.bits}-bit codes: {args.queries:,} queries x {args.database:,} codes, top {args.k}\n\n"
        f"Median of {args.repeats} round-robin repeats, {args.threads} thread(s) for torch and faiss. The exact searches "
        f"agree (same distances; ours identical to each other, ties by insertion order). HNSW: M = {args.neighbors}, "
        f"efSearch = {args.ef_search}, built once in {build_s:.2f} s (not timed), recall@{args.k} against the exact "
        f"search {graph_recall:.4f} (by ids; {distance_recall:.4f} of its results lie within the exact k-th distance). {platform.machine()}, torch {torch.__version__}, faiss {faiss.__version__}.\n\n"
        f"Command: `OMP_NUM_THREADS={args.threads} python benchmarks/faiss_search.py --queries {args.queries} "
        f"--database {args.database} --bits {args.bits} --k {args.k} --threads {args.threads}`"
    )
    fig = horizontal_bars([r["search"] for r in rows], [r["median (ms)"] / 1000 for r in rows],
                          "seconds per search of all queries (median)",
                          f"{args.queries:,} x {args.database:,} codes, {args.bits} bits, top {args.k}")
    print(write_results(args.out, "faiss_search", rows, markdown_table(rows, header), fig))


if __name__ == "__main__":
    main()
