"""The parts the losses are built from: pair targets, pair scores, the unreduced likelihood, and
the retention rules that turn a pair's weight into its loss."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

__all__ = ["RETENTION_RULES", "label_similarity", "pair_scores", "pairwise_likelihood", "retention_pair_loss"]

RETENTION_RULES = ("authors", "uncertain", "weighted")


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


def retention_pair_loss(scores: Tensor, similarity: Tensor, weight: Tensor, rule: str = "authors") -> Tensor:
    """Unreduced pair loss under a retention rule, for pair score θ, label similarity s ∈ {0, 1}
    and pair weight w ∈ [0, 1] (broadcast against each other).

    With ℓ(θ, t) = softplus(θ) − t·θ (gradient σ(θ) − t, minimised where σ(θ) = t):

    - ``"authors"``: ℓ(θ, s·w). A positive pair's optimum is θ* = logit(w): the pull stops at a
      finite θ, and for w < 0.5 the pair is pushed apart (θ* < 0); at θ = 0 the gradient is
      0.5 − w. Negatives: θ* = −∞, unchanged by w.
    - ``"uncertain"``: ℓ(θ, w·s + (1 − w)/2): a lost sample's target softens towards "unknown"
      (½), not towards "dissimilar". Positive: θ* = logit((1 + w)/2) ≥ 0, never repulsion;
      gradient at θ = 0 is −w/2. Negative: θ* = −logit((1 + w)/2) ≤ 0 (the push softens too).
    - ``"weighted"``: w·ℓ(θ, s): the target stays, the pair's loss is scaled. Positive:
      θ* = +∞ for any w > 0 (a flat loss at w = 0); gradient at θ = 0 is −w/2. Negative:
      θ* = −∞ with the push scaled by w.

    Shape:
        - scores, similarity, weight: broadcastable; output: their broadcast shape.
    """
    if rule == "authors":
        return pairwise_likelihood(scores, similarity * weight)
    if rule == "uncertain":
        return pairwise_likelihood(scores, similarity * weight + (1.0 - weight) * 0.5)
    if rule == "weighted":
        return weight * pairwise_likelihood(scores, similarity)
    raise ValueError(f"rule must be one of {list(RETENTION_RULES)}; got {rule!r}")
