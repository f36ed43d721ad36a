"""Relevance: a database item is relevant to a query when they share a label.

Class ids of shape (N,): equal ids. Multi-hot labels of shape (N, L) with entries in {0, 1}
(the rule :func:`gg_augment._checks.check_multi_hot` enforces, shared with the losses): at
least one label present on both sides, ``(Y_q Y_dᵀ) > 0``.
"""

from __future__ import annotations

import torch
from torch import Tensor


class Relevance:
    """Looks up relevance for blocks of queries, in full or along a ranking."""

    def __init__(self, query_labels: Tensor, database_labels: Tensor) -> None:
        self.multi_label = query_labels.ndim == 2
        if self.multi_label:
            # Presence as float so relevance is one matmul; counts up to L are exact.
            self.query_labels = (query_labels != 0).to(torch.float32)
            self.database_labels = (database_labels != 0).to(torch.float32)
        else:
            self.query_labels = query_labels
            self.database_labels = database_labels

    def full(self, rows: slice) -> Tensor:
        """(c, N) bool: database item shares a label with the query."""
        if self.multi_label:
            return (self.query_labels[rows] @ self.database_labels.T) > 0
        return self.query_labels[rows, None] == self.database_labels[None, :]

    def ranked(self, rows: slice, order: Tensor) -> Tensor:
        """(c, depth) bool relevance of the ranked items ``order`` (database indices)."""
        if self.multi_label:
            return self.full(rows).gather(1, order)
        # Class ids: gather labels for the ranked items only, not a (c, N) comparison.
        return self.database_labels[order] == self.query_labels[rows, None]
