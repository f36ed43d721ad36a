"""mAP@K speed: gg_augment.metrics against faiss IndexBinaryFlat + the same AP, and before/after.

Default problem: 1,000 queries x 100,000 database items, 64-bit ±1 codes, 10 classes, mAP@1000.
Every candidate ranks by (Hamming distance, database index) and computes the same AP, and all
must give the identical mAP (checked bit for bit before anything is reported; the reference
is also checked on a few queries against a per-query stable sort). Candidates:

- ``ours (auto)``: :func:`~gg_augment.metrics.mean_average_precision` as users call it (faiss's
  ``IndexBinaryFlat`` as the engine when faiss is installed: heap up to depth 32, else counting);
- ``ours (torch)``: the pure-torch engine (``engine="torch"``);
- ``before``: the previous engine, one key ``addmm`` and a full-row ``topk`` per block;
- ``faiss flat (heap)``: faiss ``IndexBinaryFlat`` with its default heap search, then the AP;
- ``faiss flat (counting)``: the same index with ``use_heap=False``, then the AP.

All run on one device and thread count (torch and faiss alike), round-robin with a rotating
start; medians and ratios to faiss's default are written as markdown, CSV and PNG to ``--out``.

    OMP_NUM_THREADS=1 python benchmarks/map_speed.py --threads 1 --repeats 7
"""

from __future__ import annotations

import argparse
import platform
from pathlib import Path

import torch
from harness import horizontal_bars, interleave, markdown_table, median, write_results

from gg_augment.metrics import mean_average_precision
from gg_augment.metrics.ranking import Ranking, faiss_module, pack_bits


def average_precision(order: torch.Tensor, query_labels: torch.Tensor, database_labels: torch.Tensor) -> torch.Tensor:
    """mAP from ranked database indices (Q, depth), the library's AP formula."""
    relevant = (database_labels[order] == query_labels[:, None]).to(torch.float32)
    hits = relevant.cumsum(dim=1)
    ranks = torch.arange(1, order.shape[1] + 1, dtype=torch.float32, device=order.device)
    precision_sum = (hits / ranks * relevant).sum(dim=1)
    ap = torch.where(hits[:, -1] > 0, precision_sum / hits[:, -1].clamp_min(1), 0.0)
    return (ap.sum(dtype=torch.float64) / order.shape[0]).to(torch.float32)


def before(query: torch.Tensor, database: torch.Tensor, query_labels: torch.Tensor, database_labels: torch.Tensor, depth: int) -> torch.Tensor:
    """The previous engine: unique float32 keys from one addmm, a full-row topk per block."""
    ranking = Ranking(query, database, "hamming", engine="torch")
    orders = []
    for rows in ranking.blocks(ranking.chunk_size(depth, None)):
        key = ranking._hamming_keys(rows).topk(depth, dim=1, largest=False, sorted=True).values
        orders.append(ranking._split_keys(key)[1])
    return average_precision(torch.cat(orders), query_labels, database_labels)


def loop_reference(query: torch.Tensor, database: torch.Tensor, query_labels: torch.Tensor, database_labels: torch.Tensor, depth: int) -> torch.Tensor:
    """Per query: exact distances, a full stable sort (the definition of the order)."""
    orders = []
    for i in range(query.shape[0]):
        distance = (query.shape[1] - database.double() @ query[i].double()) / 2
        orders.append(torch.sort(distance, stable=True).indices[:depth])
    return average_precision(torch.stack(orders), query_labels, database_labels)


def class_codes(num: int, centres: torch.Tensor, flip: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """±1 codes near one of the class centres (each bit flipped with probability ``flip``)."""
    labels = torch.randint(0, centres.shape[0], (num,), generator=generator)
    flips = torch.rand(num, centres.shape[1], generator=generator) < flip
    return centres[labels] * torch.where(flips, -1.0, 1.0), labels


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--database", type=int, default=100_000)
    parser.add_argument("--bits", type=int, default=64)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--topk", type=int, default=1000)
    parser.add_argument("--flip", type=float, default=0.3, help="bit-flip probability around class centres")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--check-queries", type=int, default=20, help="queries checked against a per-query stable sort")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("results/map_speed"))
    args = parser.parse_args(argv)
    if min(args.queries, args.database, args.bits, args.classes, args.topk, args.repeats, args.threads) < 1:
        parser.error("--queries, --database, --bits, --classes, --topk, --repeats, --threads must be >= 1")
    torch.set_num_threads(args.threads)
    faiss = faiss_module()
    if faiss is not None:
        faiss.omp_set_num_threads(args.threads)

    generator = torch.Generator().manual_seed(args.seed)
    centres = torch.randint(0, 2, (args.classes, args.bits), generator=generator) * 2.0 - 1.0
    query, query_labels = class_codes(args.queries, centres, args.flip, generator)
    database, database_labels = class_codes(args.database, centres, args.flip, generator)
    depth = min(args.topk, args.database)
    answers: dict[str, torch.Tensor] = {}

    def ours(engine: str) -> None:
        answers[f"ours ({engine})"] = mean_average_precision(query, database, query_labels, database_labels, k=depth, engine=engine)

    candidates = {
        "ours (auto)": lambda: ours("auto"),
        "ours (torch)": lambda: ours("torch"),
        "before": lambda: answers.__setitem__("before", before(query, database, query_labels, database_labels, depth)),
    }
    if faiss is not None:
        packed_database, packed_query = pack_bits(database), pack_bits(query)

        def faiss_map(use_heap: bool, name: str) -> None:
            # Index build and packing count, as they do in ours: both start from ±1 tensors.
            index = faiss.IndexBinaryFlat(8 * packed_database.shape[1])
            index.use_heap = use_heap
            index.add(packed_database)
            order = torch.from_numpy(index.search(packed_query, depth)[1])
            answers[name] = average_precision(order, query_labels, database_labels)

        candidates["faiss flat (heap)"] = lambda: faiss_map(True, "faiss flat (heap)")
        candidates["faiss flat (counting)"] = lambda: faiss_map(False, "faiss flat (counting)")

    times = interleave(candidates, args.repeats, "cpu", warmup=1)
    reference = answers["before"]
    checked = min(args.check_queries, args.queries)
    loop = loop_reference(query[:checked], database, query_labels[:checked], database_labels, depth)
    subset = mean_average_precision(query[:checked], database, query_labels[:checked], database_labels, k=depth)
    if not torch.equal(loop, subset):
        raise SystemExit(f"mAP on {checked} queries differs from a per-query stable sort: {float(subset)} vs {float(loop)}")
    for name, value in answers.items():
        if not torch.equal(value, reference):
            raise SystemExit(f"{name} gives mAP {float(value):.8f}, the reference {float(reference):.8f}: nothing reported")

    baseline = "faiss flat (heap)" if faiss is not None else "before"
    base = median(times[baseline])
    rows = [
        {
            "candidate": name,
            "median_s": round(median(values), 4),
            "min_s": round(min(values), 4),
            f"time / {baseline}": round(median(values) / base, 3),
            "map": f"{float(answers[name]):.6f}",
        }
        for name, values in times.items()
    ]
    header = "\n".join(
        [
            f"# mAP@{depth}: {args.queries} queries x {args.database} codes, {args.bits} bits, {args.classes} classes (bit-flip {args.flip:g})",
            "",
            f"- {platform.processor() or platform.machine()}, torch {torch.__version__}, faiss {getattr(faiss, '__version__', 'absent')}, "
            f"{args.threads} thread(s) for torch and faiss",
            f"- {args.repeats} interleaved repeats (rotating start), medians; one warm-up call each",
            f"- identical mAP for every candidate ({float(reference):.6f}); the first {checked} queries also match a per-query stable sort",
            f"- command: `OMP_NUM_THREADS={args.threads} python benchmarks/map_speed.py --threads {args.threads} --repeats {args.repeats}`",
        ]
    )
    figure = horizontal_bars(
        [row["candidate"] for row in rows], [row["median_s"] for row in rows], "seconds per mAP@K (median)",
        f"{args.queries:,} x {args.database:,} codes, {args.bits} bits, mAP@{depth}",
    )
    markdown = write_results(args.out, "map_speed", rows, markdown_table(rows, header), figure)
    print(markdown)


if __name__ == "__main__":
    main()
