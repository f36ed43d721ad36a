"""The parts the losses are built from: pair targets, pair scores, the unreduced likelihood."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

__all__ = ["label_similarity", "pair_scores", "pairwise_likelihood"]


def label_similarity(labels: Tensor, other_labels: Tensor) -> Tensor:
    """s_ij = 1 if the two samples share a label, else 0 (float32).

    Shape:
        - labels: (B,) class ids or (B, L) multi-hot; other_labels: (N,) or (N, L), same kind
        - output: (B, N)
    """
    if labels.ndim != other_labels.ndim:
        raise ValueError(
            f"labels and bank labels must both be class ids (N,) or both multi-hot (N, L); "
            f"got {labels.ndim}-D and {other_labels.ndim}-D"
        )
    if labels.ndim == 1:
        return (labels.unsqueeze(1) == other_labels.unsqueeze(0)).float()
    if labels.shape[1] != other_labels.shape[1]:
        raise ValueError(
            f"multi-hot labels must have the same number of classes; got {labels.shape[1]} and {other_labels.shape[1]}"
        )
    return ((labels.float() @ other_labels.float().T) > 0).float()


def pair_scores(outputs: Tensor, others: Tensor, similarity: str = "hash", scale: float = 1.0) -> Tensor:
    """θ_ij: ⟨u_i, u_j⟩/2 for hashing, scale·cos(u_i, u_j) for cosine.

    Shape:
        - outputs: (B, K); others: (N, K)
        - output: (B, N) float32 (half inputs are promoted so that large θ stay exact)
    """
    outputs, others = outputs.float(), others.float()
    if similarity == "hash":
        return outputs @ others.T / 2
    return scale * (F.normalize(outputs, dim=1) @ F.normalize(others, dim=1).T)


def pairwise_likelihood(scores: Tensor, targets: Tensor) -> Tensor:
    """Unreduced −log-likelihood of soft targets: softplus(θ) − s̃·θ (stable for any θ)."""
    return F.softplus(scores) - targets * scores
