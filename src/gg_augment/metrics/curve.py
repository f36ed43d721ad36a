"""The Hamming-radius precision-recall curve: retrieval by a ball, not by a ranking."""

from __future__ import annotations

import torch
from torch import Tensor

from ._inputs import check_chunk_size, check_label_pair, check_vectors
from .ranking import Ranking
from .relevance import Relevance

__all__ = ["precision_recall_curve"]


def precision_recall_curve(
    query: Tensor,
    database: Tensor,
    query_labels: Tensor,
    database_labels: Tensor,
    *,
    chunk_size: int | None = None,
    validate_args: bool = True,
) -> tuple[Tensor, Tensor]:
    """Precision and recall of Hamming-ball retrieval for every radius r = 0, ..., K.

    At radius r a query retrieves every database item within Hamming distance <= r. Per query,
    precision = relevant retrieved / retrieved and recall = relevant retrieved / relevant in the
    database; both are then averaged over all queries. Conventions for empty cases, chosen so
    that every query always counts (as in :func:`mean_average_precision`):

    * a query that retrieves nothing at radius r has precision 0 there (so small radii are
      penalised when many queries come back empty, rather than averaged over the lucky ones);
    * a query with no relevant item in the database has recall 0 at every radius.

    Args:
        query: ±1 query codes.
        database: ±1 database codes.
        query_labels: class ids (integer) or multi-hot labels of the queries.
        database_labels: labels of the database items, of the same kind as ``query_labels``.
        chunk_size: queries per block; ``None`` picks one from a memory budget.
        validate_args: check that codes hold only ±1 and multi-hot labels only 0/1 (host
            syncs); ``False`` skips the value checks.

    Returns:
        ``(precision, recall)``, float32 tensors on the device of ``query``; index r
        holds the value at radius r.

    Shape:
        - query: (Q, K); database: (N, K).
        - query_labels: (Q,) or (Q, L); database_labels: (N,) or (N, L).
        - precision, recall: (K + 1,).

    Examples:
        >>> codes = torch.tensor([[1, 1], [1, -1], [-1, -1]])
        >>> labels = torch.tensor([0, 0, 1])
        >>> precision, recall = precision_recall_curve(codes, codes, labels, labels)
        >>> [round(value, 3) for value in precision.tolist()]
        [1.0, 0.722, 0.556]
    """
    query, database, _ = check_vectors(query, database, "hamming", validate_args)
    query_labels, database_labels = check_label_pair(
        query_labels, database_labels, query.shape[0], database.shape[0], query.device, validate_args
    )
    ranking, relevance = Ranking(query, database, "hamming"), Relevance(query_labels, database_labels)
    num_bins = ranking.code_length + 1
    block = ranking.chunk_size(num_bins, check_chunk_size(chunk_size))
    precision_total = torch.zeros(num_bins, device=ranking.device, dtype=torch.float64)
    recall_total = torch.zeros(num_bins, device=ranking.device, dtype=torch.float64)
    for rows in ranking.blocks(block):
        distance = ranking.distances(rows).to(torch.int64)
        relevant = relevance.full(rows)
        count = rows.stop - rows.start
        # Integer histograms of distance per query (scatter_add needs no host sync).
        retrieved = torch.zeros(count, num_bins, device=ranking.device, dtype=torch.int64)
        retrieved.scatter_add_(1, distance, torch.ones_like(distance))
        relevant_hist = torch.zeros_like(retrieved)
        relevant_hist.scatter_add_(1, distance, relevant.to(torch.int64))
        retrieved_within = retrieved.cumsum(dim=1).to(torch.float64)
        relevant_within = relevant_hist.cumsum(dim=1).to(torch.float64)
        relevant_total = relevant_within[:, -1:]
        precision = torch.where(
            retrieved_within > 0, relevant_within / retrieved_within.clamp_min(1), 0.0
        )
        recall = torch.where(relevant_total > 0, relevant_within / relevant_total.clamp_min(1), 0.0)
        precision_total += precision.sum(dim=0)
        recall_total += recall.sum(dim=0)
    scale = 1.0 / ranking.num_queries
    return (precision_total * scale).to(torch.float32), (recall_total * scale).to(torch.float32)
