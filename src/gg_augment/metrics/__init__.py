"""Retrieval metrics: mAP@K, Precision@k, Recall@k and the Hamming-radius precision-recall curve.

The package is split by job:

* :mod:`.ranking`: the ranking engine (no labels): each query's database indices by
  distance ascending, ties broken by database index, on any engine;
* :mod:`.relevance`: which database items share a label with a query;
* :mod:`.ranked`: mAP@K, P@k and R@k, all from one running count of hits down the ranking;
* :mod:`.curve`: the precision-recall curve over Hamming radii.

The search for serving, :func:`~gg_augment.hashing.hamming_top_k`, lives beside
:class:`~gg_augment.hashing.BinaryCodeIndex` and is re-exported here.
"""

from __future__ import annotations

from typing import Any

from .curve import precision_recall_curve
from .ranked import mean_average_precision, precision_at_k, recall_at_k

__all__ = [
    "hamming_top_k",
    "mean_average_precision",
    "precision_at_k",
    "precision_recall_curve",
    "recall_at_k",
]


def __getattr__(name: str) -> Any:
    # hamming_top_k moved to gg_augment.hashing.search; imported lazily, as hashing imports
    # this package's ranking engine.
    if name == "hamming_top_k":
        from ..hashing.search import hamming_top_k

        return hamming_top_k
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
