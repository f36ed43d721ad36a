"""Triplet margin term over the batch, optionally weighted by retention."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .._checks import check_choice
from .parts import label_similarity

__all__ = ["CENTRE_FORM_MIN_BATCH", "TRIPLET_FORMS", "triplet_margin_loss"]

#: ``"all"``: every valid triplet, cosine distance / 2. ``"centre"``: the GG authors' form.
TRIPLET_FORMS = ("all", "centre")

#: The authors add their triplet term only to batches of at least this many samples.
CENTRE_FORM_MIN_BATCH = 21


def triplet_margin_loss(
    outputs: Tensor, labels: Tensor, margin: float = 0.3, weights: Tensor | None = None, form: str = "all"
) -> Tensor:
    """A triplet margin term over the batch, in one of two forms.

    ``form="all"``: mean of relu(d(a, p) − d(a, n) + margin) over every valid in-batch
    triplet. d is the cosine distance scaled to [0, 1], (1 − cos(u, v)) / 2, so one margin
    suits tanh codes and embeddings alike. A triplet is valid when a and p share a label
    (a ≠ p) and a and n share none. With ``weights`` (per-sample, in [0, 1]) a triplet counts
    w_a·w_p: a heavily cut anchor or positive pulls less.

    ``form="centre"``: the GG authors' term. For each sample i the anchor is the centre c_i of
    the batch samples sharing a label with i (i included), the positive is i itself and the
    negative is the sample nearest c_i among those sharing no label with i; with the L2
    distance d, the term is the mean over samples that have a negative of
    relu(d(c_i, u_i) − d(c_i, u_n) + margin) (``torch.nn.TripletMarginLoss``'s distance,
    eps 1e-6 included). (The authors' trainer skips the term for batches of 20 samples or
    fewer; :class:`~gg_augment.RetentionWeightedPairwiseLoss` does so with this form.)
    ``weights`` are refused: the authors' term is unweighted.

    No valid triplet gives a zero that stays connected to the graph.

    Shape:
        - outputs: (B, K); labels: (B,) or (B, L); weights: (B,)
        - output: scalar
    """
    check_choice(form, "form", TRIPLET_FORMS)
    if form == "centre":
        if weights is not None:
            raise ValueError("weights must be None with form='centre' (the authors' triplet term is unweighted)")
        return _centre_triplet_loss(outputs, labels, margin)
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


def _centre_triplet_loss(outputs: Tensor, labels: Tensor, margin: float) -> Tensor:
    batch = outputs.shape[0]
    if batch < 2:
        return outputs.sum() * 0.0
    codes = outputs.float()
    # Every sample shares a label with itself, so each class centre has at least one member.
    same = label_similarity(labels, labels) > 0
    same = same | torch.eye(batch, dtype=torch.bool, device=outputs.device)
    members = same.float()
    centres = (members @ codes) / members.sum(dim=1, keepdim=True)
    distance = torch.cdist(centres, codes)  # (centre of i, sample j)
    nearest = distance.masked_fill(same, torch.inf).argmin(dim=1)
    has_negative = (~same).any(dim=1)
    terms = F.triplet_margin_loss(centres, codes, codes[nearest], margin=margin, p=2, reduction="none")
    count = has_negative.sum()
    mean = (terms * has_negative.float()).sum() / count.clamp_min(1)
    return torch.where(count > 0, mean, outputs.sum() * 0.0)
