"""What a training step minimises, given the model's outputs on an augmented batch.

:class:`HashingObjective` is DSDH: it owns the solver (the bank U of all training outputs,
the codes B, the W- and B-steps), the "live rows" choice, the code targets and the one
quantisation weight η that both the loss and the solver's B-step use.
:class:`RealValuedObjective` is in-batch cosine pairs. Both take ``(outputs, weight, index)``
and keep the state a checkpoint needs.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..hashing import DSDHSolver, model_retention
from ..losses import RetentionWeightedPairwiseLoss
from .config import TrainConfig
from .data import one_hot_labels
from .distributed import Distributed, all_gather_cat

__all__ = ["QUANTIZATION_WEIGHT", "HashingObjective", "RealValuedObjective", "build_objective"]

#: η, the weight of the quantisation term ||B - U||², in the loss and in the solver's B-step.
QUANTIZATION_WEIGHT = 1e-2


class HashingObjective:
    """DSDH: the pairwise likelihood against the bank U, quantisation, triplets; solver steps
    once per epoch.

    "bank+batch" (``live_rows``): the batch's rows of U carry the live outputs (in-batch pairs
    pull on both sides) and the in-batch term is added: from scratch the bank term alone
    learns slowly (its far side is up to an epoch stale; on the embedded data, 8 epochs
    without augmentation gave mAP 0.41 with the bank alone and 0.71 with both terms). "bank":
    the authors', the batch's columns of U written (detached) before the loss, bank term only.
    """

    def __init__(
        self, config: TrainConfig, code_length: int, labels: Tensor, num_classes: int, device: torch.device,
        ctx: Distributed,
    ) -> None:
        settings = config.settings()
        self.ctx = ctx
        self.live_rows = settings.loss_terms == "bank+batch"
        self.loss_fn = RetentionWeightedPairwiseLoss(
            "hash", quantization_weight=QUANTIZATION_WEIGHT, add_in_batch=self.live_rows,
            triplet_weight=settings.triplet_weight, triplet_margin=config.triplet_margin,
            weight_triplets=config.weight_triplets, triplet_form=settings.triplet_form, rule=config.retention_rule,
        )
        self.solver = DSDHSolver(
            labels.shape[0], code_length, num_classes, eta=QUANTIZATION_WEIGHT, dcc_iterations=settings.dcc_iterations,
            generator=torch.Generator().manual_seed(config.seed), device=device,
        )
        self.solver.set_labels(labels)
        self.targets = one_hot_labels(labels, num_classes).to(device)
        self.coded_rows = torch.zeros(labels.shape[0], dtype=torch.bool, device=device)

    def measured_retention(self, outputs: Tensor, index: Tensor) -> tuple[Tensor, Tensor]:
        """The model-measured retention of the batch and where it means something.

        Returns ``(retention, coded)``: :func:`~gg_augment.hashing.model_retention` of the
        outputs against the rows' codes ``B[index]`` (detached, no host sync), and whether each
        row's code has been through a B-step that saw the row's output. Before that, B is the
        solver's random start and the agreement is chance (about 0.5): in the first epoch no
        row is coded, from the second every row an earlier epoch visited.

        Shape:
            - outputs: (B, K); index: (B,)
            - retention, coded: (B,)
        """
        return model_retention(outputs, self.solver.codes[index]), self.coded_rows[index]

    def __call__(self, outputs: Tensor, weight: Tensor, index: Tensor) -> Tensor:
        written, values = index, outputs.detach()
        if self.ctx.enabled:  # every rank keeps the full bank U: gather what all ranks just computed
            written, values = all_gather_cat(written, self.ctx), all_gather_cat(values, self.ctx)
        self.solver.update_outputs(written, values)
        bank, bank_labels = self.solver.bank()
        if self.live_rows:
            bank = bank.index_put((index,), outputs)
        return self.loss_fn(
            outputs, self.targets[index], weight,
            bank=bank, bank_labels=bank_labels, binary_targets=self.solver.targets(index),
        )

    def end_epoch(self) -> None:
        """The solver's W- and B-steps on the epoch's bank."""
        self.solver.step()
        self._mark_coded_rows()

    def _mark_coded_rows(self) -> None:
        # A written row of U is a tanh output, never zero in every bit; an unwritten one is the
        # zero it started as. So the rows the last B-step saw are U's non-zero rows, and a
        # restored solver gives the same rows: the checkpoint needs nothing more.
        self.coded_rows = self.solver.outputs.ne(0).any(dim=1)

    def validated_parts(self) -> list[Any]:
        return [self.loss_fn, self.solver]

    def state_dict(self) -> dict[str, Any] | None:
        return self.solver.state_dict()

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        if state is None:
            raise ValueError("the checkpoint has no DSDH solver state, so a hashing run cannot resume from it")
        self.solver.load_state_dict(state)
        self._mark_coded_rows()


class RealValuedObjective:
    """In-batch cosine pairs (and triplets), weighted by retention; nothing kept across steps."""

    def __init__(self, config: TrainConfig, labels: Tensor, device: torch.device) -> None:
        settings = config.settings()
        self.loss_fn = RetentionWeightedPairwiseLoss(
            "cosine", scale=10.0, triplet_weight=settings.triplet_weight, triplet_margin=config.triplet_margin,
            weight_triplets=config.weight_triplets, triplet_form=settings.triplet_form, rule=config.retention_rule,
        )
        self.labels = labels.to(device)

    def __call__(self, outputs: Tensor, weight: Tensor, index: Tensor) -> Tensor:
        return self.loss_fn(outputs, self.labels[index], weight)

    def end_epoch(self) -> None:
        pass

    def validated_parts(self) -> list[Any]:
        return [self.loss_fn]

    def state_dict(self) -> None:
        return None

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        pass


def build_objective(
    config: TrainConfig, code_length: int, labels: Tensor, num_classes: int, device: torch.device, ctx: Distributed
) -> HashingObjective | RealValuedObjective:
    if config.hashing:
        return HashingObjective(config, code_length, labels, num_classes, device, ctx)
    return RealValuedObjective(config, labels, device)
