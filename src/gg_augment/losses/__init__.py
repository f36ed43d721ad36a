"""Retention-weighted pairwise losses."""

from __future__ import annotations

from .pairwise import (
    RetentionWeightedPairwiseLoss,
    label_similarity,
    pair_scores,
    pairwise_likelihood,
)

__all__ = ["RetentionWeightedPairwiseLoss", "label_similarity", "pair_scores", "pairwise_likelihood"]
