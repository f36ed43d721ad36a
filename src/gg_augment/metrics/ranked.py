"""Metrics of the top of each ranking: mAP@K, Precision@k and Recall@k.

All three read one thing, the running count of relevant items down each query's ranking
(:func:`ranked_hits`), computed block by block over the queries so the work tensors stay
within a fixed memory budget (about 256 MiB by default) whatever the number of queries.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch import Tensor

from ._inputs import (
    check_chunk_size,
    check_cutoffs,
    check_depth,
    check_exclude_self,
    check_label_pair,
    check_vectors,
)
from .ranking import Ranking
from .relevance import Relevance

__all__ = ["mean_average_precision", "precision_at_k", "ranked_hits", "recall_at_k"]


def _prepare(
    query: object,
    database: object,
    query_labels: object,
    database_labels: object,
    metric: object,
    exclude_self: object,
    validate_args: bool,
    engine: str,
) -> tuple[Ranking, Relevance]:
    query, database, metric = check_vectors(query, database, metric, validate_args)
    query_labels, database_labels = check_label_pair(
        query_labels, database_labels, query.shape[0], database.shape[0], query.device, validate_args
    )
    own = check_exclude_self(exclude_self, query, database, query_labels, database_labels, validate_args)
    return Ranking(query, database, metric, own, engine), Relevance(query_labels, database_labels)


def ranked_hits(ranking: Ranking, relevance: Relevance, depth: int, chunk_size: int | None) -> Iterator[Tensor]:
    """Per block of queries: (c, depth) float32 relevance in ranked order (0 or 1)."""
    for rows in ranking.blocks(ranking.chunk_size(depth, chunk_size, full_rows=relevance.multi_label)):
        yield relevance.ranked(rows, ranking.order(rows, depth)).to(torch.float32)


def mean_average_precision(
    query: Tensor,
    database: Tensor,
    query_labels: Tensor,
    database_labels: Tensor,
    *,
    k: int | None = None,
    metric: str = "hamming",
    exclude_self: bool = False,
    chunk_size: int | None = None,
    validate_args: bool = True,
    engine: str = "auto",
) -> Tensor:
    """Mean average precision over the top ``k`` items of each query's ranking (mAP@K).

    For one query with ranked relevance ``rel_1, rel_2, ...``::

        AP@K = (1 / R) * sum_{k <= K} P@k * rel_k,   P@k = (1 / k) * sum_{j <= k} rel_j

    where R is the number of relevant items inside the top K. A query with R = 0 has AP 0 and
    still counts in the mean. The database is ranked by distance ascending with ties broken by
    database index (:mod:`gg_augment.metrics.ranking`).

    Args:
        query: ±1 codes (``metric="hamming"``) or real vectors (``metric="cosine"``).
        database: the items to rank, in the same form as ``query``.
        query_labels: class ids (integer) or multi-hot labels (entries 0 or 1) of the queries.
        database_labels: labels of the database items, of the same kind as ``query_labels``.
        k: how many ranked items count; ``None`` ranks the whole database. Values above
            the database size are clamped to it. There is no ``-1`` sentinel.
        metric: ``"hamming"`` or ``"cosine"``.
        exclude_self: the query set is the database (same rows); each query's own item is
            removed from its ranking. Two different sets are refused (with ``validate_args``).
        chunk_size: queries per block; ``None`` picks the largest block whose work tensors
            fit in about 256 MiB.
        validate_args: check values: Hamming codes hold only ±1, cosine inputs are finite,
            multi-hot labels hold only 0/1, ``exclude_self`` gets one set. Each check is a
            host sync; ``False`` skips them, e.g. under ``torch.compile(fullgraph=True)``.
        engine: ``"auto"``, ``"torch"`` or ``"faiss"`` for the Hamming top-k; every engine
            gives the same ranking (:class:`~gg_augment.metrics.ranking.Ranking`).

    Returns:
        A 0-dim float32 tensor on the device of ``query``.

    Shape:
        - query: (Q, K); database: (N, K).
        - query_labels: (Q,) or (Q, L); database_labels: (N,) or (N, L).
        - output: ().

    Examples:
        >>> generator = torch.Generator().manual_seed(0)
        >>> codes = torch.randint(0, 2, (6, 8), generator=generator) * 2 - 1
        >>> labels = torch.tensor([0, 0, 1, 1, 2, 2])
        >>> float(mean_average_precision(codes, codes, labels, labels)) > 0
        True
    """
    ranking, relevance = _prepare(
        query, database, query_labels, database_labels, metric, exclude_self, validate_args, engine
    )
    depth = check_depth(k, ranking.num_candidates)
    ranks = torch.arange(1, depth + 1, device=ranking.device, dtype=torch.float32)
    total = torch.zeros((), device=ranking.device, dtype=torch.float64)
    for relevant in ranked_hits(ranking, relevance, depth, check_chunk_size(chunk_size)):
        hits = relevant.cumsum(dim=1)
        num_relevant = hits[:, -1]
        precision_sum = (hits / ranks * relevant).sum(dim=1)
        average_precision = torch.where(num_relevant > 0, precision_sum / num_relevant.clamp_min(1), 0.0)
        total += average_precision.sum(dtype=torch.float64)
    return (total / ranking.num_queries).to(torch.float32)


def _hits_at_cutoffs(
    query: Tensor,
    database: Tensor,
    query_labels: Tensor,
    database_labels: Tensor,
    k: object,
    metric: str,
    exclude_self: bool,
    chunk_size: int | None,
    validate_args: bool,
    reduce: str,
) -> dict[int, Tensor]:
    ranking, relevance = _prepare(
        query, database, query_labels, database_labels, metric, exclude_self, validate_args, "auto"
    )
    cutoffs = check_cutoffs(k)
    depths = {cutoff: min(cutoff, ranking.num_candidates) for cutoff in cutoffs}
    totals = {cutoff: torch.zeros((), device=ranking.device, dtype=torch.float64) for cutoff in cutoffs}
    for relevant in ranked_hits(ranking, relevance, max(depths.values()), check_chunk_size(chunk_size)):
        hits = relevant.cumsum(dim=1)
        for cutoff, kept in depths.items():
            hits_at_k = hits[:, kept - 1]
            share = (hits_at_k > 0).to(torch.float32) if reduce == "recall" else hits_at_k / kept
            totals[cutoff] += share.sum(dtype=torch.float64)
    return {cutoff: (total / ranking.num_queries).to(torch.float32) for cutoff, total in totals.items()}


def recall_at_k(
    query: Tensor,
    database: Tensor,
    query_labels: Tensor,
    database_labels: Tensor,
    *,
    k: Sequence[int] | int = (1, 2, 4, 8),
    metric: str = "cosine",
    exclude_self: bool = False,
    chunk_size: int | None = None,
    validate_args: bool = True,
) -> dict[int, Tensor]:
    """Recall@k as used in metric learning: the share of queries with a relevant item in the top k.

    Args:
        query: real vectors (``metric="cosine"``) or ±1 codes (``metric="hamming"``).
        database: the items to rank, in the same form as ``query``.
        query_labels: class ids (integer) or multi-hot labels (0/1) of the queries.
        database_labels: labels of the database items, of the same kind as ``query_labels``.
        k: the cut-off or cut-offs; each above the number of candidates is clamped to it.
        metric: ``"cosine"`` or ``"hamming"``.
        exclude_self: the query set is the database (same rows); each query's own item is
            removed from its ranking, as in the usual "test set against itself" protocol.
        chunk_size: queries per block; ``None`` picks one from a memory budget.
        validate_args: the value checks of :func:`mean_average_precision`.

    Returns:
        ``{k: 0-dim float32 tensor}`` in the order of ``k``, on the device of ``query``.

    Shape:
        - query: (Q, D); database: (N, D) (N = Q when ``exclude_self``).
        - query_labels: (Q,) or (Q, L); database_labels: (N,) or (N, L).

    Examples:
        >>> embeddings = torch.eye(4)[[0, 0, 1, 1]]
        >>> labels = torch.tensor([0, 0, 1, 1])
        >>> float(recall_at_k(embeddings, embeddings, labels, labels, k=(1,), exclude_self=True)[1])
        1.0
    """
    return _hits_at_cutoffs(
        query, database, query_labels, database_labels, k, metric, exclude_self, chunk_size, validate_args, "recall"
    )


def precision_at_k(
    query: Tensor,
    database: Tensor,
    query_labels: Tensor,
    database_labels: Tensor,
    *,
    k: Sequence[int] | int = (1, 2, 4, 8),
    metric: str = "cosine",
    exclude_self: bool = False,
    chunk_size: int | None = None,
    validate_args: bool = True,
) -> dict[int, Tensor]:
    """Precision@k: the mean share of relevant items among each query's top k.

    When k exceeds the number of candidates it is clamped, and the precision is taken over the
    items actually retrieved. Arguments as :func:`recall_at_k`.

    Returns:
        ``{k: 0-dim float32 tensor}`` in the order of ``k``, on the device of ``query``.

    Examples:
        >>> embeddings = torch.eye(4)[[0, 0, 1, 1]]
        >>> labels = torch.tensor([0, 0, 1, 1])
        >>> float(precision_at_k(embeddings, embeddings, labels, labels, k=2)[2])
        1.0
    """
    return _hits_at_cutoffs(
        query, database, query_labels, database_labels, k, metric, exclude_self, chunk_size, validate_args, "precision"
    )
