"""Retrieval metrics: mAP@K, Recall@K, Precision@K and the Hamming-radius precision-recall curve.

Every metric ranks the database for each query by distance ascending and breaks ties by
database index (a stable sort), so a result never depends on the sorting backend or the
device. Two distances are supported:

* ``metric="hamming"``: ``query`` and ``database`` hold ±1 codes of length K and the distance
  is ``(K - q·d) / 2``, computed for a whole block of queries with one matmul.
* ``metric="cosine"``: real vectors; the distance is ``1 - cos(q, d)``. A zero vector has
  cosine 0 to everything. Ties are broken by index when the computed distances are exactly
  equal; mathematically equal cosines can differ in the last bit after rounding, so rank
  binary codes with ``metric="hamming"``, whose distances are exact integers.

A database item is relevant to a query when they share a label: equal class ids for labels of
shape (N,), or ``(Y_q Y_dᵀ) > 0`` for multi-hot labels of shape (N, L) (any non-zero entry
counts as "has the label").

All work is vectorised over queries and done block by block over the queries, so the work
tensors stay within a fixed memory budget (about 256 MiB by default) whatever the number of
queries; the blocks run on whatever device the inputs live on.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from numbers import Integral

import torch
import torch.nn.functional as F
from torch import Tensor

from ._checks import (
    _shape,
    check_choice,
    check_finite,
    check_floating,
    check_int,
    check_labels,
    check_tensor,
)

__all__ = [
    "hamming_top_k",
    "mean_average_precision",
    "precision_at_k",
    "precision_recall_curve",
    "recall_at_k",
]

_METRICS = ("hamming", "cosine")

# Memory the per-block work tensors may take; a block of queries is sized to fit it.
_WORK_BUDGET_BYTES = 256 * 2**20

# float32 holds every integer below 2**24 exactly; Hamming distances and the tie-breaking
# keys built from them must stay exact, so wider cases switch to float64.
_FLOAT32_EXACT = 2**24


# --------------------------------------------------------------------------------------
# validation and preparation
# --------------------------------------------------------------------------------------


def _check_sign_codes(codes: Tensor, name: str, validate_values: bool = True) -> None:
    if codes.dtype == torch.bool or codes.is_complex():
        raise TypeError(
            f"{name} must hold ±1 codes for metric='hamming' (a real dtype); got {codes.dtype}. "
            "Map {0, 1} bits with 2 * b.float() - 1."
        )
    if not validate_values:
        return
    bad = ~((codes == 1) | (codes == -1))
    # One host synchronisation per call: a {0, 1} or real-valued input would otherwise give
    # silently wrong distances.
    if bool(bad.any()):
        example = codes[bad][0].item()
        raise ValueError(
            f"{name} must hold only ±1 values for metric='hamming'; got {int(bad.sum())} other "
            f"value(s), e.g. {example!r}. Binarise real outputs with "
            "gg_augment.hashing.sign_codes, or map {0, 1} bits with 2 * b - 1."
        )


def _check_vectors(query: object, database: object, metric: object, validate_values: bool = True) -> tuple[Tensor, Tensor, str]:
    metric = check_choice(metric, "metric", _METRICS)
    query = check_tensor(query, "query")
    database = check_tensor(database, "database")
    for tensor, name, rows in ((query, "query", "Q"), (database, "database", "N")):
        if tensor.ndim != 2:
            raise ValueError(f"{name} must have shape ({rows}, K); got {_shape(tensor)}")
        if tensor.shape[0] == 0:
            raise ValueError(f"{name} must have at least one row; got {_shape(tensor)}")
        if tensor.shape[1] == 0:
            raise ValueError(f"{name} must have K >= 1 columns; got {_shape(tensor)}")
    if query.shape[1] != database.shape[1]:
        raise ValueError(
            "query and database must have the same number of columns K; "
            f"got query {_shape(query)} and database {_shape(database)}"
        )
    if query.device != database.device:
        raise ValueError(
            f"query and database must be on the same device; got {query.device} and "
            f"{database.device}"
        )
    if metric == "hamming":
        _check_sign_codes(query, "query", validate_values)
        _check_sign_codes(database, "database", validate_values)
    else:
        check_floating(query, "query")
        check_floating(database, "database")
        if validate_values:
            check_finite(query, "query")
            check_finite(database, "database")
    return query, database, metric


def _check_label_pair(
    query_labels: object,
    database_labels: object,
    num_queries: int,
    num_database: int,
    device: torch.device,
) -> tuple[Tensor, Tensor]:
    query_labels = check_labels(query_labels, num_queries, "query_labels")
    database_labels = check_labels(database_labels, num_database, "database_labels")
    if query_labels.ndim != database_labels.ndim:
        raise ValueError(
            "query_labels and database_labels must be the same kind (both class ids of shape "
            "(N,) or both multi-hot of shape (N, L)); got "
            f"{_shape(query_labels)} and {_shape(database_labels)}"
        )
    if query_labels.ndim == 2 and query_labels.shape[1] != database_labels.shape[1]:
        raise ValueError(
            "query_labels and database_labels multi-hot must have the same number of labels L; "
            f"got {query_labels.shape[1]} and {database_labels.shape[1]}"
        )
    for labels, name in ((query_labels, "query_labels"), (database_labels, "database_labels")):
        if labels.device != device:
            raise ValueError(
                f"{name} must be on the device of query ({device}); got {labels.device}"
            )
    return query_labels, database_labels


def _check_chunk_size(chunk_size: object) -> int | None:
    if chunk_size is None:
        return None
    return check_int(chunk_size, "chunk_size", minimum=1)


def _check_cutoffs(k: object) -> tuple[int, ...]:
    if isinstance(k, Sequence) and not isinstance(k, str):
        if len(k) == 0:
            raise ValueError("k must be an int or hold at least one int; got an empty sequence")
        return tuple(check_int(value, "each value of k", minimum=1) for value in k)
    return (check_int(k, "k", minimum=1),)


class _Problem:
    """Validated inputs converted once to the dtypes the blocks compute in."""

    def __init__(
        self,
        query: object,
        database: object,
        query_labels: object,
        database_labels: object,
        metric: object,
        exclude_self: bool = False,
        validate_values: bool = True,
    ) -> None:
        query, database, metric = _check_vectors(query, database, metric, validate_values)
        query_labels, database_labels = _check_label_pair(
            query_labels, database_labels, query.shape[0], database.shape[0], query.device
        )
        if not isinstance(exclude_self, bool):
            raise TypeError(f"exclude_self must be a bool; got {type(exclude_self).__name__}")
        if exclude_self and query.shape[0] != database.shape[0]:
            raise ValueError(
                "exclude_self=True needs the query set to be the database (same number of rows); "
                f"got {query.shape[0]} queries and {database.shape[0]} database items"
            )
        if exclude_self and database.shape[0] < 2:
            raise ValueError("exclude_self=True needs at least 2 database items; got 1")

        self.metric = metric
        self.exclude_self = exclude_self
        self.num_queries, self.code_length = query.shape
        self.num_database = database.shape[0]
        self.device = query.device
        if metric == "hamming":
            # ±1 products and their sums are exact in float32 (also under TF32 matmuls).
            dtype = torch.float32 if self.code_length < _FLOAT32_EXACT else torch.float64
            self.query = query.to(dtype)
            self.database = database.to(dtype)
        else:
            dtype = torch.promote_types(
                torch.promote_types(query.dtype, database.dtype), torch.float32
            )
            self.query = F.normalize(query.to(dtype), dim=1)
            self.database = F.normalize(database.to(dtype), dim=1)
        self.multi_label = query_labels.ndim == 2
        if self.multi_label:
            # Presence as float so relevance is one matmul; counts up to L are exact.
            self.query_labels = (query_labels != 0).to(torch.float32)
            self.database_labels = (database_labels != 0).to(torch.float32)
        else:
            self.query_labels = query_labels
            self.database_labels = database_labels

    @property
    def num_candidates(self) -> int:
        """How many database items each query can retrieve."""
        return self.num_database - 1 if self.exclude_self else self.num_database

    def chunk_size(self, depth: int, chunk_size: int | None) -> int:
        if chunk_size is not None:
            return min(chunk_size, self.num_queries)
        # Per query row: distance (4-8 B), key or sort values (8 B), sort/topk indices (8 B),
        # relevance (4 B) over the database, plus a handful of float32 rows over the depth.
        per_row = 32 * self.num_database + 40 * depth
        return max(1, min(self.num_queries, _WORK_BUDGET_BYTES // per_row))

    def blocks(self, chunk_size: int) -> Iterator[slice]:
        for start in range(0, self.num_queries, chunk_size):
            yield slice(start, min(start + chunk_size, self.num_queries))

    def distances(self, rows: slice) -> Tensor:
        """(c, N) distances; integer-valued for Hamming."""
        similarity = self.query[rows] @ self.database.T
        if self.metric == "hamming":
            # round() removes any rounding a reduced-precision matmul backend might add.
            return ((self.code_length - similarity) * 0.5).round_()
        return 1.0 - similarity

    def relevance(self, rows: slice) -> Tensor:
        """(c, N) bool: database item shares a label with the query."""
        if self.multi_label:
            return (self.query_labels[rows] @ self.database_labels.T) > 0
        return self.query_labels[rows, None] == self.database_labels[None, :]

    def _own_index(self, rows: slice) -> Tensor:
        return torch.arange(rows.start, rows.stop, device=self.device)[:, None]

    def _hamming_keys(self, rows: slice) -> Tensor:
        """(c, N) unique keys ``dist * M + index`` (M = N rounded up to even).

        Their order is exactly (distance, index), so an unstable topk or sort on them is exact.
        """
        num_database, code_length = self.num_database, self.code_length
        stride = num_database + num_database % 2
        # Self-exclusion uses distance K + 1, so keys stay below (K + 2) * M.
        if (code_length + 2) * stride < _FLOAT32_EXACT and self.query.dtype == torch.float32:
            # dist * M + index = index + K M / 2 - (M / 2) q·d as one addmm. M is even, so every
            # partial result is an integer below 2**24, exact in float32 in any summation order.
            bias = torch.arange(num_database, device=self.device, dtype=torch.float32)
            bias += code_length * stride // 2
            key = torch.addmm(bias, self.query[rows], self.database.T, alpha=-(stride // 2))
            key_dtype = torch.float32
        else:
            index = torch.arange(num_database, device=self.device, dtype=torch.float64)
            key = self.distances(rows).to(torch.float64).mul_(stride).add_(index)
            key_dtype = torch.float64
        if self.exclude_self:
            own = self._own_index(rows)
            # One past the largest distance keeps the keys unique and pushes self to the end.
            far_key = own.to(key_dtype) + float((code_length + 1) * stride)
            key.scatter_(1, own, far_key)
        return key

    def ranking(self, rows: slice, depth: int) -> Tensor:
        """(c, depth) database indices, nearest first, ties broken by index."""
        if self.metric == "hamming":
            key = self._hamming_keys(rows)
            if depth < self.num_database:
                # torch.topk is not stable, but the keys are unique, so its result is exact.
                return key.topk(depth, dim=1, largest=False, sorted=True).indices
            return torch.sort(key, dim=1).indices
        distance = self.distances(rows)
        if self.exclude_self:
            distance.scatter_(1, self._own_index(rows), float("inf"))
        # Real-valued distances: no key encodes their ties exactly, so a stable full sort.
        return torch.sort(distance, dim=1, stable=True).indices[:, :depth]

    def ranked_relevance(self, rows: slice, depth: int) -> Tensor:
        """(c, depth) bool relevance in ranked order."""
        order = self.ranking(rows, depth)
        if self.multi_label:
            return self.relevance(rows).gather(1, order)
        # Class ids: gather labels for the ranked items only, not a (c, N) comparison.
        return self.database_labels[order] == self.query_labels[rows, None]


def _check_depth(k: object, num_candidates: int) -> int:
    if k is None:
        return num_candidates
    if isinstance(k, bool) or not isinstance(k, Integral):
        raise TypeError(f"k must be None or an int >= 1; got {type(k).__name__} {k!r}")
    k = int(k)
    if k < 1:
        raise ValueError(
            f"k must be None (whole database) or an int >= 1; got {k}. "
            "There is no -1 sentinel: pass k=None to rank the whole database."
        )
    return min(k, num_candidates)


# --------------------------------------------------------------------------------------
# public metrics
# --------------------------------------------------------------------------------------


def hamming_top_k(query: Tensor, database: Tensor, *, k: int, chunk_size: int | None = None) -> tuple[Tensor, Tensor]:
    """The ``k`` nearest database codes of each query by Hamming distance, ties broken by index.

    The same ranking :func:`mean_average_precision` scores, returned for serving or for a
    comparison with an index (faiss's :class:`~gg_augment.hashing.BinaryCodeIndex`).

    Args:
        query: (Q, K) ±1 codes; database: (N, K) ±1 codes, same device.
        k: neighbours per query, >= 1 (capped at N).
        chunk_size: queries per block (default: sized to a fixed work budget).

    Returns:
        ``(distances, indices)``, both (Q, min(k, N)) int64, nearest first.
    """
    if isinstance(query, Tensor) and isinstance(database, Tensor):
        no_labels_q = torch.zeros(query.shape[0], dtype=torch.long, device=query.device)
        no_labels_d = torch.zeros(database.shape[0] if database.ndim else 0, dtype=torch.long, device=query.device)
    else:
        no_labels_q = no_labels_d = torch.zeros(0, dtype=torch.long)
    problem = _Problem(query, database, no_labels_q, no_labels_d, "hamming")
    depth = _check_depth(check_int(k, "k", minimum=1), problem.num_candidates)
    distances, indices = [], []
    for rows in problem.blocks(problem.chunk_size(depth, _check_chunk_size(chunk_size))):
        order = problem.ranking(rows, depth)
        indices.append(order)
        distances.append(problem.distances(rows).gather(1, order).long())
    if not indices:
        empty = torch.empty(0, depth, dtype=torch.long, device=problem.device)
        return empty, empty.clone()
    return torch.cat(distances), torch.cat(indices)


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
) -> Tensor:
    """Mean average precision over the top ``k`` items of each query's ranking (mAP@K).

    For one query with ranked relevance ``rel_1, rel_2, ...``::

        AP@K = (1 / R) * sum_{k <= K} P@k * rel_k,   P@k = (1 / k) * sum_{j <= k} rel_j

    where R is the number of relevant items inside the top K. A query with R = 0 has AP 0 and
    still counts in the mean. The database is ranked by distance ascending with ties broken by
    database index.

    Args:
        query: ±1 codes (``metric="hamming"``) or real vectors (``metric="cosine"``).
        database: the items to rank, in the same form as ``query``.
        query_labels: class ids (integer) or multi-hot labels of the queries.
        database_labels: labels of the database items, of the same kind as ``query_labels``.
        k: how many ranked items count; ``None`` ranks the whole database. Values above
            the database size are clamped to it. There is no ``-1`` sentinel.
        metric: ``"hamming"`` or ``"cosine"``.
        exclude_self: the query set is the database (same rows); each query's own item is
            removed from its ranking.
        chunk_size: queries per block; ``None`` picks the largest block whose work tensors
            fit in about 256 MiB.
        validate_args: check that Hamming codes hold only ±1 (cosine inputs: finite). Each
            check is a host sync; ``False`` skips them, e.g. under ``torch.compile(fullgraph=True)``.

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
    problem = _Problem(query, database, query_labels, database_labels, metric, exclude_self, validate_args)
    depth = _check_depth(k, problem.num_candidates)
    block = problem.chunk_size(depth, _check_chunk_size(chunk_size))
    ranks = torch.arange(1, depth + 1, device=problem.device, dtype=torch.float32)
    total = torch.zeros((), device=problem.device, dtype=torch.float64)
    for rows in problem.blocks(block):
        relevant = problem.ranked_relevance(rows, depth).to(torch.float32)
        hits = relevant.cumsum(dim=1)
        num_relevant = hits[:, -1]
        precision_sum = (hits / ranks * relevant).sum(dim=1)
        average_precision = torch.where(
            num_relevant > 0, precision_sum / num_relevant.clamp_min(1), 0.0
        )
        total += average_precision.sum(dtype=torch.float64)
    return (total / problem.num_queries).to(torch.float32)


def _top_k_hits(
    query: Tensor,
    database: Tensor,
    query_labels: Tensor,
    database_labels: Tensor,
    k: object,
    metric: str,
    exclude_self: bool,
    chunk_size: int | None,
    reduce: str,
) -> dict[int, Tensor]:
    problem = _Problem(query, database, query_labels, database_labels, metric, exclude_self)
    cutoffs = _check_cutoffs(k)
    depths = {cutoff: min(cutoff, problem.num_candidates) for cutoff in cutoffs}
    depth = max(depths.values())
    block = problem.chunk_size(depth, _check_chunk_size(chunk_size))
    totals = {cutoff: torch.zeros((), device=problem.device, dtype=torch.float64) for cutoff in cutoffs}
    for rows in problem.blocks(block):
        hits = problem.ranked_relevance(rows, depth).to(torch.float32).cumsum(dim=1)
        for cutoff, kept in depths.items():
            hits_at_k = hits[:, kept - 1]
            if reduce == "recall":
                totals[cutoff] += (hits_at_k > 0).sum(dtype=torch.float64)
            else:
                totals[cutoff] += (hits_at_k / kept).sum(dtype=torch.float64)
    return {cutoff: (total / problem.num_queries).to(torch.float32) for cutoff, total in totals.items()}


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
) -> dict[int, Tensor]:
    """Recall@k as used in metric learning: the share of queries with a relevant item in the top k.

    Args:
        query: real vectors (``metric="cosine"``) or ±1 codes (``metric="hamming"``).
        database: the items to rank, in the same form as ``query``.
        query_labels: class ids (integer) or multi-hot labels of the queries.
        database_labels: labels of the database items, of the same kind as ``query_labels``.
        k: the cut-off or cut-offs; each above the number of candidates is clamped to it.
        metric: ``"cosine"`` or ``"hamming"``.
        exclude_self: the query set is the database (same rows); each query's own item is
            removed from its ranking, as in the usual "test set against itself" protocol.
        chunk_size: queries per block; ``None`` picks one from a memory budget.

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
    return _top_k_hits(
        query,
        database,
        query_labels,
        database_labels,
        k,
        metric,
        exclude_self,
        chunk_size,
        reduce="recall",
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
) -> dict[int, Tensor]:
    """Precision@k: the mean share of relevant items among each query's top k.

    When k exceeds the number of candidates it is clamped, and the precision is taken over the
    items actually retrieved.

    Args:
        query: real vectors (``metric="cosine"``) or ±1 codes (``metric="hamming"``).
        database: the items to rank, in the same form as ``query``.
        query_labels: class ids (integer) or multi-hot labels of the queries.
        database_labels: labels of the database items, of the same kind as ``query_labels``.
        k: the cut-off or cut-offs.
        metric: ``"cosine"`` or ``"hamming"``.
        exclude_self: the query set is the database; each query's own item is not ranked.
        chunk_size: queries per block; ``None`` picks one from a memory budget.

    Returns:
        ``{k: 0-dim float32 tensor}`` in the order of ``k``, on the device of ``query``.

    Shape:
        - query: (Q, D); database: (N, D).
        - query_labels: (Q,) or (Q, L); database_labels: (N,) or (N, L).

    Examples:
        >>> embeddings = torch.eye(4)[[0, 0, 1, 1]]
        >>> labels = torch.tensor([0, 0, 1, 1])
        >>> float(precision_at_k(embeddings, embeddings, labels, labels, k=2)[2])
        1.0
    """
    return _top_k_hits(
        query,
        database,
        query_labels,
        database_labels,
        k,
        metric,
        exclude_self,
        chunk_size,
        reduce="precision",
    )


def precision_recall_curve(
    query: Tensor,
    database: Tensor,
    query_labels: Tensor,
    database_labels: Tensor,
    *,
    chunk_size: int | None = None,
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
    problem = _Problem(query, database, query_labels, database_labels, "hamming")
    num_bins = problem.code_length + 1
    block = problem.chunk_size(num_bins, _check_chunk_size(chunk_size))
    precision_total = torch.zeros(num_bins, device=problem.device, dtype=torch.float64)
    recall_total = torch.zeros(num_bins, device=problem.device, dtype=torch.float64)
    for rows in problem.blocks(block):
        distance = problem.distances(rows).to(torch.int64)
        relevant = problem.relevance(rows)
        count = rows.stop - rows.start
        # Integer histograms of distance per query (scatter_add needs no host sync).
        retrieved = torch.zeros(count, num_bins, device=problem.device, dtype=torch.int64)
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
    scale = 1.0 / problem.num_queries
    return (precision_total * scale).to(torch.float32), (recall_total * scale).to(torch.float32)
