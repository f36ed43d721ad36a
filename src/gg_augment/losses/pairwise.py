"""Pairwise likelihood loss whose similarity targets are softened by retention.

Built from parts: pair scores θ, pair targets s̃, then the unreduced negative log-likelihood
softplus(θ) − s̃·θ, reduced last.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor, nn

from .._checks import (
    check_choice,
    check_finite,
    check_labels,
    check_multi_hot,
    check_positive,
    check_range,
    check_retention,
    check_same_device,
    check_tensor,
)
from .parts import RETENTION_RULES, label_similarity, pair_scores, retention_pair_loss
from .triplet import CENTRE_FORM_MIN_BATCH, TRIPLET_FORMS, triplet_margin_loss

__all__ = ["RetentionWeightedPairwiseLoss", "mined_pairs"]


def mined_pairs(indices_tuple: tuple[Tensor, ...], batch: int, device: torch.device, validate: bool = True) -> tuple[Tensor, Tensor]:
    """The (row, column) batch positions of the pairs a pytorch-metric-learning miner chose.

    ``indices_tuple`` is a miner's output: pairs ``(a1, p, a2, n)`` (positive pairs a1-p,
    negative pairs a2-n) or triplets ``(a, p, n)`` (read as the pairs a-p and a-n). Returns
    two 1-D long tensors: positives first, then negatives.
    """
    if not isinstance(indices_tuple, (tuple, list)) or len(indices_tuple) not in (3, 4):
        got = f"a {type(indices_tuple).__name__} of length {len(indices_tuple)}" if isinstance(indices_tuple, (tuple, list)) else type(indices_tuple).__name__
        raise TypeError(f"indices_tuple must be a miner's (a1, p, a2, n) pairs or (a, p, n) triplets; got {got}")
    parts = []
    for position, part in enumerate(indices_tuple):
        part = check_tensor(part, f"indices_tuple[{position}]")
        if part.ndim != 1 or part.dtype not in (torch.int64, torch.int32):
            raise TypeError(f"indices_tuple[{position}] must be a 1-D integer tensor; got {part.dtype} of shape {tuple(part.shape)}")
        check_same_device(part, f"indices_tuple[{position}]", torch.empty(0, device=device), "outputs")
        parts.append(part.long())
    if len(parts) == 3:
        anchors, positives, negatives = parts
        if not anchors.shape == positives.shape == negatives.shape:
            raise ValueError(f"indices_tuple triplets must have equal lengths; got {[p.numel() for p in parts]}")
        parts = [anchors, positives, anchors, negatives]
    if parts[0].shape != parts[1].shape or parts[2].shape != parts[3].shape:
        raise ValueError(f"indices_tuple pairs must have equal lengths (a1 with p, a2 with n); got {[p.numel() for p in parts]}")
    rows, cols = torch.cat([parts[0], parts[2]]), torch.cat([parts[1], parts[3]])
    if validate and rows.numel() and (min(int(rows.min()), int(cols.min())) < 0 or max(int(rows.max()), int(cols.max())) >= batch):
        raise ValueError(f"indices_tuple must index the batch, 0..{batch - 1}; got values outside it")
    return rows, cols


class RetentionWeightedPairwiseLoss(nn.Module):
    """Pairwise likelihood loss with similarity targets multiplied by retention (GG).

    For pairs (i, j) with θ_ij the pair score and s_ij = 1 when they share a label, the loss is
    mean(softplus(θ_ij) − s̃_ij·θ_ij) where

    - **bank mode** (``bank=`` given, e.g. DSDH's U of the latest outputs of all N training
      samples): every batch sample i against every bank row j, s̃_ij = w_i·s_ij, where w_i is
      the weight of the augmented batch sample (the authors' rule). Gradients reach the bank
      only where it requires grad: a buffer is a constant, while a bank whose batch rows are
      the live outputs (``U.index_put((index,), outputs)``) makes in-batch pairs two-sided;
    - **in-batch mode**: all ordered pairs i ≠ j, s̃_ij = w_i·w_j·s_ij (``combine="product"``)
      or min(w_i, w_j)·s_ij (``combine="min"``).

    A weight of 0 removes the pull of a positive pair but keeps the push of negatives; all
    weights 1 give the unweighted loss. That is the authors' retention rule; ``rule=`` picks
    another way to use the pair weight w (the bank's w_i, or the in-batch product/min), see
    :func:`~gg_augment.losses.retention_pair_loss` for each optimum θ*:

    - ``"authors"`` (default): s̃ = s·w, loss ℓ(θ, s̃). A positive pair with w < 0.5 is pushed
      apart (θ* = logit(w) < 0);
    - ``"uncertain"``: s̃ = w·s + (1 − w)/2: a lost sample tends to "unknown", never to
      "dissimilar" (positive θ* = logit((1 + w)/2) ≥ 0);
    - ``"weighted"``: w·ℓ(θ, s): the target stays, the pull (and push) is scaled by w. Optional terms: quantization η·mean((b − u)²) with
    ``binary_targets=b``, and a classification-regression term
    ``classification_weight``·mean((y − ŷ)²) with ``class_scores=ŷ``, ``class_targets=y``.

    Two options for DSDH-style training:

    - ``add_in_batch=True``: in bank mode, also add the in-batch term. The authors use the
      bank term alone (``False``); from scratch the bank's far side is up to an epoch stale and
      the in-batch pairs speed learning up (the fast recipe uses both).
    - ``triplet_weight=γ``: add γ·:func:`~gg_augment.losses.triplet_margin_loss` with
      ``triplet_margin``; unweighted as the authors' (γ = 0.005, margin 0.3), or weighted by
      retention with ``weight_triplets=True``.

    Args:
        similarity: ``"hash"`` (θ = ⟨u_i, u_j⟩/2, tanh outputs in (−1, 1)) or ``"cosine"``
            (θ = scale·cos).
        scale: the cosine temperature, > 0.
        combine: in-batch weight rule, ``"product"`` or ``"min"``.
        quantization_weight: η.
        classification_weight: weight of the regression term.
        add_in_batch: in bank mode, add the in-batch term too.
        triplet_weight: γ of the triplet term (0 disables it).
        triplet_margin: its margin, on the [0, 1] cosine-distance scale.
        weight_triplets: weight each triplet by w_anchor·w_positive.
        triplet_form: ``"all"`` (every valid triplet, cosine distance / 2) or ``"centre"`` (the
            authors': class-centre anchors, nearest negative, L2 on the codes, no term for
            batches of 20 or fewer); see :func:`~gg_augment.losses.triplet_margin_loss`.
        validate_args: check values (host syncs on CUDA): weights in [0, 1]; outputs,
            bank, binary targets and class terms finite; multi-hot labels only 0/1.
        rule: the retention rule, ``"authors"``, ``"uncertain"`` or ``"weighted"``.

    With pytorch-metric-learning, pass a miner's output as ``indices_tuple=``: the loss then
    runs over the mined pairs only, each target softened by the pair's retention weight (the
    miner chooses which pairs, GG how hard each pulls)::

        miner = pytorch_metric_learning.miners.MultiSimilarityMiner()
        loss = loss_fn(codes, labels, weight, indices_tuple=miner(codes, labels))

    Shape:
        - outputs: (B, K); labels: (B,) or (B, L); weight: (B,) in [0, 1], the per-sample
          loss weights (retention through a :class:`~gg_augment.SemanticRetention` curve, as
          :class:`~gg_augment.RetentionPipeline` returns them); None means all ones
        - bank: (N, K); bank_labels: (N,) or (N, L)
        - output: scalar

    Examples:
        >>> loss_fn = RetentionWeightedPairwiseLoss()
        >>> codes = torch.tanh(torch.randn(8, 16, requires_grad=True))
        >>> loss = loss_fn(codes, torch.arange(8) % 3, torch.rand(8))
        >>> loss.backward()
    """

    def __init__(
        self,
        similarity: str = "hash",
        scale: float = 10.0,
        combine: str = "product",
        quantization_weight: float = 0.0,
        classification_weight: float = 0.0,
        validate_args: bool = True,
        *,
        add_in_batch: bool = False,
        triplet_weight: float = 0.0,
        triplet_margin: float = 0.3,
        weight_triplets: bool = False,
        rule: str = "authors",
        triplet_form: str = "all",
    ) -> None:
        super().__init__()
        self.similarity = check_choice(similarity, "similarity", ("hash", "cosine"))
        self.scale = check_positive(scale, "scale")
        self.combine = check_choice(combine, "combine", ("product", "min"))
        self.quantization_weight = check_range(quantization_weight, "quantization_weight", 0.0, float("inf"))
        self.classification_weight = check_range(classification_weight, "classification_weight", 0.0, float("inf"))
        self.validate_args = bool(validate_args)
        self.add_in_batch = bool(add_in_batch)
        self.triplet_weight = check_range(triplet_weight, "triplet_weight", 0.0, float("inf"))
        self.triplet_margin = check_range(triplet_margin, "triplet_margin", 0.0, float("inf"))
        self.weight_triplets = bool(weight_triplets)
        self.rule = check_choice(rule, "rule", RETENTION_RULES)
        self.triplet_form = check_choice(triplet_form, "triplet_form", TRIPLET_FORMS)
        if self.weight_triplets and self.triplet_form == "centre":
            raise ValueError("weight_triplets=True needs triplet_form='all' (the authors' centre form is unweighted)")

    def forward(
        self,
        outputs: Tensor,
        labels: Tensor,
        weight: Tensor | None = None,
        *,
        bank: Tensor | None = None,
        bank_labels: Tensor | None = None,
        binary_targets: Tensor | None = None,
        class_scores: Tensor | None = None,
        class_targets: Tensor | None = None,
        indices_tuple: tuple[Tensor, ...] | None = None,
    ) -> Tensor:
        outputs = check_tensor(outputs, "outputs")
        if outputs.ndim != 2:
            raise ValueError(f"outputs must have shape (B, K); got {tuple(outputs.shape)}")
        if not outputs.is_floating_point():
            raise TypeError(f"outputs must have a floating dtype; got {outputs.dtype}")
        batch = outputs.shape[0]
        if self.validate_args:
            check_finite(outputs, "outputs")
        labels = check_labels(labels, batch, "labels")
        check_same_device(labels, "labels", outputs, "outputs")
        if self.validate_args:
            check_multi_hot(labels, "labels")
        if weight is None:
            weights = torch.ones(batch, device=outputs.device)
        else:
            weights = check_retention(weight, batch, "weight", self.validate_args).float()
            check_same_device(weights, "weight", outputs, "outputs")

        if indices_tuple is not None:
            if bank is not None:
                raise ValueError("indices_tuple selects in-batch pairs; it cannot be combined with bank=")
            loss = self._mined_pairs_loss(outputs, labels, weights, indices_tuple)
        elif bank is not None:
            loss = self._bank_loss(outputs, labels, weights, bank, bank_labels)
        else:
            if bank_labels is not None:
                raise ValueError("bank_labels given without bank; pass both for bank mode")
            loss = self._in_batch_loss(outputs, labels, weights)

        if binary_targets is not None:
            binary_targets = check_tensor(binary_targets, "binary_targets")
            if binary_targets.shape != outputs.shape:
                raise ValueError(
                    f"binary_targets must have the shape of outputs {tuple(outputs.shape)}; "
                    f"got {tuple(binary_targets.shape)}"
                )
            self._warn_unweighted("binary_targets", "quantization_weight", self.quantization_weight)
            if self.validate_args:
                check_finite(binary_targets, "binary_targets")
            loss = loss + self.quantization_weight * (binary_targets.float() - outputs.float()).pow(2).mean()
        if (class_scores is None) != (class_targets is None):
            raise ValueError("class_scores and class_targets must be given together")
        if class_scores is not None and class_targets is not None:
            if class_scores.shape != class_targets.shape:
                raise ValueError(
                    f"class_scores and class_targets must have the same shape; "
                    f"got {tuple(class_scores.shape)} and {tuple(class_targets.shape)}"
                )
            self._warn_unweighted("class_scores", "classification_weight", self.classification_weight)
            if self.validate_args:
                check_finite(class_scores, "class_scores")
                check_finite(class_targets, "class_targets")
            loss = loss + self.classification_weight * (class_targets.float() - class_scores.float()).pow(2).mean()
        if bank is not None and self.add_in_batch:
            loss = loss + self._in_batch_loss(outputs, labels, weights)
        skip_triplets = self.triplet_form == "centre" and outputs.shape[0] < CENTRE_FORM_MIN_BATCH
        if self.triplet_weight and not skip_triplets:
            triplet_weights = weights if self.weight_triplets else None
            loss = loss + self.triplet_weight * triplet_margin_loss(
                outputs, labels, self.triplet_margin, triplet_weights, form=self.triplet_form
            )
        return loss

    @staticmethod
    def _warn_unweighted(term: str, weight_name: str, weight: float) -> None:
        if weight == 0:
            warnings.warn(
                f"{term}= was passed but {weight_name}=0, so its term adds nothing to the loss; "
                f"set {weight_name} > 0 to use it, or stop passing {term}=",
                UserWarning,
                stacklevel=3,
            )

    def _bank_loss(
        self, outputs: Tensor, labels: Tensor, weights: Tensor, bank: Tensor, bank_labels: Tensor | None
    ) -> Tensor:
        bank = check_tensor(bank, "bank")
        if bank.ndim != 2 or bank.shape[1] != outputs.shape[1]:
            raise ValueError(f"bank must have shape (N, {outputs.shape[1]}); got {tuple(bank.shape)}")
        if bank_labels is None:
            raise ValueError("bank mode needs bank_labels=; got None")
        bank_labels = check_labels(bank_labels, bank.shape[0], "bank_labels")
        check_same_device(bank, "bank", outputs, "outputs")
        check_same_device(bank_labels, "bank_labels", outputs, "outputs")
        if self.validate_args:
            check_finite(bank, "bank")
            check_multi_hot(bank_labels, "bank_labels")
        if bank.shape[0] == 0 or outputs.shape[0] == 0:
            return outputs.sum() * 0.0
        scores = pair_scores(outputs, bank, self.similarity, self.scale)
        return retention_pair_loss(scores, label_similarity(labels, bank_labels), weights.unsqueeze(1), self.rule).mean()

    def _in_batch_loss(self, outputs: Tensor, labels: Tensor, weights: Tensor) -> Tensor:
        batch = outputs.shape[0]
        if batch < 2:
            # No pair exists: a zero that stays connected to the graph, so backward() works.
            return outputs.sum() * 0.0
        scores = pair_scores(outputs, outputs, self.similarity, self.scale)
        pair_weights = self._pair_weights(weights.unsqueeze(1), weights.unsqueeze(0))
        pair_loss = retention_pair_loss(scores, label_similarity(labels, labels), pair_weights, self.rule)
        # A mask product, not boolean indexing: static shapes, so torch.compile keeps one graph.
        off_diagonal = 1.0 - torch.eye(batch, dtype=scores.dtype, device=outputs.device)
        return (pair_loss * off_diagonal).sum() / (batch * (batch - 1))

    def _pair_weights(self, left: Tensor, right: Tensor) -> Tensor:
        return left * right if self.combine == "product" else torch.minimum(left, right)

    def _mined_pairs_loss(self, outputs: Tensor, labels: Tensor, weights: Tensor, indices_tuple: tuple[Tensor, ...]) -> Tensor:
        rows, cols = mined_pairs(indices_tuple, outputs.shape[0], outputs.device, self.validate_args)
        if rows.numel() == 0:
            return outputs.sum() * 0.0  # the miner found nothing: no pull, no push, graph intact
        # The batch's B×B scores, then the mined entries (as the in-batch term computes them).
        scores = pair_scores(outputs, outputs, self.similarity, self.scale)[rows, cols]
        similarity = label_similarity(labels, labels)[rows, cols]
        return retention_pair_loss(scores, similarity, self._pair_weights(weights[rows], weights[cols]), self.rule).mean()

    def extra_repr(self) -> str:
        out = f"similarity={self.similarity!r}, combine={self.combine!r}"
        if self.rule != "authors":
            out += f", rule={self.rule!r}"
        if self.similarity == "cosine":
            out += f", scale={self.scale}"
        if self.quantization_weight:
            out += f", quantization_weight={self.quantization_weight}"
        if self.classification_weight:
            out += f", classification_weight={self.classification_weight}"
        if self.add_in_batch:
            out += ", add_in_batch=True"
        if self.triplet_weight:
            out += f", triplet_weight={self.triplet_weight}, triplet_margin={self.triplet_margin}"
            out += ", weight_triplets=True" if self.weight_triplets else ""
        return out
