"""Retention-weighted losses: the pairwise likelihood (DSDH-style) and a triplet term."""

from __future__ import annotations

from .pairwise import RetentionWeightedPairwiseLoss, mined_pairs
from .parts import label_similarity, pair_scores, pairwise_likelihood
from .triplet import triplet_margin_loss

__all__ = [
    "RetentionWeightedPairwiseLoss",
    "mined_pairs",
    "label_similarity",
    "pair_scores",
    "pairwise_likelihood",
    "triplet_margin_loss",
]
