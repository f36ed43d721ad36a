"""Triplet margin term over the batch, optionally weighted by retention."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .parts import label_similarity

__all__ = ["triplet_margin_loss"]


def triplet_margin_loss(
    outputs: Tensor, labels: Tensor, margin: float = 0.3, weights: Tensor | None = None
) -> Tensor:
    """Mean of relu(d(a, p) − d(a, n) + margin) over every valid in-batch triplet.

    d is the cosine distance scaled to [0, 1], (1 − cos(u, v)) / 2, so one margin suits tanh
    codes and embeddings alike. A triplet is valid when a and p share a label (a ≠ p) and a and
    n share none. With ``weights`` (per-sample, in [0, 1]) a triplet counts w_a·w_p: a
    heavily cut anchor or positive pulls less. No valid triplet gives a zero that stays
    connected to the graph.

    Shape:
        - outputs: (B, K); labels: (B,) or (B, L); weights: (B,)
        - output: scalar
    """
    batch = outputs.shape[0]
    if batch < 3:
        return outputs.sum() * 0.0
    unit = F.normalize(outputs.float(), dim=1)
    distance = (1.0 - unit @ unit.T) / 2
    same = label_similarity(labels, labels) > 0
    positive = same & ~torch.eye(batch, dtype=torch.bool, device=outputs.device)
    negative = ~same
    valid = positive.unsqueeze(2) & negative.unsqueeze(1)  # (anchor, positive, negative)
    terms = torch.relu(distance.unsqueeze(2) - distance.unsqueeze(1) + margin)
    scale = valid.float()
    if weights is not None:
        scale = scale * (weights.float().unsqueeze(1) * weights.float().unsqueeze(0)).unsqueeze(2)
    count = valid.sum()
    return torch.where(count > 0, (terms * scale).sum() / count.clamp_min(1), outputs.sum() * 0.0)
