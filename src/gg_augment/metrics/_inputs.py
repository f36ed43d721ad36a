"""Argument checks shared by every metric: vectors, labels, cut-offs and block sizes.

Shapes, dtypes and devices are always checked (free); checks that read values (±1 codes,
finite vectors, the multi-hot rule, ``exclude_self`` on one set) need a host sync and run
only with ``validate_args=True``.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral

import torch
from torch import Tensor

from .._checks import (
    _shape,
    check_choice,
    check_finite,
    check_floating,
    check_int,
    check_labels,
    check_multi_hot,
    check_tensor,
)

METRICS = ("hamming", "cosine")


def check_sign_codes(codes: Tensor, name: str, validate_values: bool = True) -> None:
    """±1 codes in a real dtype (values read only when ``validate_values``)."""
    if codes.dtype == torch.bool or codes.is_complex():
        raise TypeError(
            f"{name} must hold ±1 codes for metric='hamming' (a real dtype); got {codes.dtype}. "
            "Map {0, 1} bits with 2 * b.float() - 1."
        )
    if not validate_values:
        return
    bad = ~((codes == 1) | (codes == -1))
    # A {0, 1}, NaN or real-valued input would otherwise give silently wrong distances.
    if bool(bad.any()):
        example = codes[bad][0].item()
        raise ValueError(
            f"{name} must hold only ±1 values for metric='hamming'; got {int(bad.sum())} other "
            f"value(s), e.g. {example!r}. Binarise real outputs with "
            "gg_augment.hashing.sign_codes, or map {0, 1} bits with 2 * b - 1."
        )


def check_vectors(
    query: object, database: object, metric: object, validate_values: bool = True
) -> tuple[Tensor, Tensor, str]:
    """(Q, K) and (N, K) tensors on one device, in the form ``metric`` needs."""
    metric = check_choice(metric, "metric", METRICS)
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
        check_sign_codes(query, "query", validate_values)
        check_sign_codes(database, "database", validate_values)
    else:
        check_floating(query, "query")
        check_floating(database, "database")
        if validate_values:
            check_finite(query, "query")
            check_finite(database, "database")
    return query, database, metric


def check_label_pair(
    query_labels: object,
    database_labels: object,
    num_queries: int,
    num_database: int,
    device: torch.device,
    validate_values: bool = True,
) -> tuple[Tensor, Tensor]:
    """Labels of the same kind for both sides; multi-hot values follow :func:`check_multi_hot`."""
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
        if validate_values:
            check_multi_hot(labels, name)
    return query_labels, database_labels


def check_exclude_self(
    exclude_self: object,
    query: Tensor,
    database: Tensor,
    query_labels: Tensor,
    database_labels: Tensor,
    validate_values: bool = True,
) -> bool:
    """``exclude_self=True`` means "the query set is the database": row i of each is one item.

    Two different sets of equal size would silently lose item i of query i, so with
    ``validate_values`` the rows and labels must be equal (one comparison, skipped when both
    sides are the same tensors).
    """
    if not isinstance(exclude_self, bool):
        raise TypeError(f"exclude_self must be a bool; got {type(exclude_self).__name__}")
    if not exclude_self:
        return False
    if query.shape[0] != database.shape[0]:
        raise ValueError(
            "exclude_self=True needs the query set to be the database (same number of rows); "
            f"got {query.shape[0]} queries and {database.shape[0]} database items"
        )
    if database.shape[0] < 2:
        raise ValueError("exclude_self=True needs at least 2 database items; got 1")
    if validate_values:
        same_rows = query is database or torch.equal(query, database)
        same_labels = query_labels is database_labels or torch.equal(query_labels, database_labels)
        if not (same_rows and same_labels):
            which = "rows" if not same_rows else "labels"
            raise ValueError(
                "exclude_self=True needs the query set to be the database, row for row; got two "
                f"different sets of equal size (their {which} differ). Pass exclude_self=False "
                "for a separate query set"
            )
    return True


def check_chunk_size(chunk_size: object) -> int | None:
    if chunk_size is None:
        return None
    return check_int(chunk_size, "chunk_size", minimum=1)


def check_cutoffs(k: object) -> tuple[int, ...]:
    if isinstance(k, Sequence) and not isinstance(k, str):
        if len(k) == 0:
            raise ValueError("k must be an int or hold at least one int; got an empty sequence")
        return tuple(check_int(value, "each value of k", minimum=1) for value in k)
    return (check_int(k, "k", minimum=1),)


def check_depth(k: object, num_candidates: int) -> int:
    """How deep each ranking goes: ``k`` clamped to the candidates, ``None`` for all of them."""
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
