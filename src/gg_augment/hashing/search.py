"""Exact Hamming search: the ``k`` nearest codes of each query, ties broken by index."""

from __future__ import annotations

import torch
from torch import Tensor

from .._checks import check_int
from ..metrics._inputs import check_chunk_size, check_depth, check_vectors
from ..metrics.ranking import Ranking

__all__ = ["hamming_top_k"]


def hamming_top_k(
    query: Tensor,
    database: Tensor,
    *,
    k: int,
    chunk_size: int | None = None,
    validate_args: bool = True,
    engine: str = "auto",
) -> tuple[Tensor, Tensor]:
    """The ``k`` nearest database codes of each query by Hamming distance, ties broken by index.

    The same ranking :func:`~gg_augment.metrics.mean_average_precision` scores, for serving
    or for a comparison with an index (:class:`~gg_augment.hashing.BinaryCodeIndex` uses it).

    Args:
        query: (Q, K) ±1 codes; database: (N, K) ±1 codes, same device.
        k: neighbours per query, >= 1 (capped at N).
        chunk_size: queries per block (default: sized to a fixed work budget).
        validate_args: check that the codes hold only ±1 (a host sync).
        engine: ``"auto"``, ``"torch"`` or ``"faiss"`` (:mod:`gg_augment.metrics.ranking`);
            all give the same result.

    Returns:
        ``(distances, indices)``, both (Q, min(k, N)) int64, nearest first.
    """
    query, database, _ = check_vectors(query, database, "hamming", validate_args)
    ranking = Ranking(query, database, "hamming", engine=engine)
    depth = check_depth(check_int(k, "k", minimum=1), ranking.num_candidates)
    parts = [ranking.nearest(rows, depth) for rows in ranking.blocks(ranking.chunk_size(depth, check_chunk_size(chunk_size), full_rows=False))]
    distances = torch.cat([part[0] for part in parts]).to(query.device)
    return distances, torch.cat([part[1] for part in parts]).to(query.device)
