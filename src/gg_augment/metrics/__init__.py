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

# hamming_top_k moved beside BinaryCodeIndex (gg_augment.hashing.search); the two packages
# import only each other's submodules, so either can be imported first.
from ..hashing.search import hamming_top_k
from .curve import precision_recall_curve
from .ranked import mean_average_precision, precision_at_k, recall_at_k

__all__ = [
    "hamming_top_k",
    "mean_average_precision",
    "precision_at_k",
    "precision_recall_curve",
    "recall_at_k",
]

