"""Retention-weighted losses: the pairwise likelihood (DSDH-style) and a triplet term."""

from __future__ import annotations

from .pairwise import RetentionWeightedPairwiseLoss, mined_pairs
from .parts import (
    RETENTION_RULES,
    label_similarity,
    pair_scores,
    pairwise_likelihood,
    retention_pair_loss,
)
from .triplet import triplet_margin_loss

__all__ = [
    "RETENTION_RULES",
    "RetentionWeightedPairwiseLoss",
    "mined_pairs",
    "label_similarity",
    "pair_scores",
    "pairwise_likelihood",
    "retention_pair_loss",
    "triplet_margin_loss",
]
