"""Retrieval quality of a model on a run's splits: one :func:`encode`, one :func:`evaluate`."""

from __future__ import annotations

import sys
from typing import Any

import torch
from torch import Tensor, nn

from ..hashing import sign_codes
from ..metrics import mean_average_precision, recall_at_k
from .config import TrainConfig
from .data import RunData, Split, TensorSplit

__all__ = ["encode", "evaluate"]


try:  # tqdm is in the "examples" extra; without it encoding is silent
    from tqdm import tqdm
except ImportError:  # pragma: no cover
    tqdm = None


@torch.no_grad()
def encode(model: nn.Module, source: Tensor | Split, device: torch.device, progress: str | None = None) -> Tensor:
    """Eval-mode outputs for a tensor of images or a split, batch by batch (a streamed split
    through its DataLoader); the model's mode is restored. ``progress``: a bar's title
    (stderr, vanishes when done), or None for none."""
    split = TensorSplit(source, torch.empty(source.shape[0])) if isinstance(source, Tensor) else source
    was_training = model.training
    model.eval()
    bar: Any = None
    if progress is not None and tqdm is not None:
        bar = tqdm(total=len(split), desc=progress, unit="img", leave=False, file=sys.stderr)
    outputs = []
    for images in split.eval_batches():
        outputs.append(model(images.to(device, non_blocking=True)))
        if bar is not None:
            bar.update(images.shape[0])
    if bar is not None:
        bar.close()
    model.train(was_training)
    return torch.cat(outputs) if outputs else torch.empty(0)


def evaluate(model: nn.Module, data: RunData, config: TrainConfig, device: torch.device) -> dict[str, float]:
    """mAP (and Recall@1/2/4/8 for real-valued runs) of the query set against the database;
    with ``eval_train``, also the first training images as queries (``train_map``)."""
    metric = "hamming" if config.hashing else "cosine"

    def codes(split: Split, name: str) -> Tensor:
        outputs = encode(model, split, device, f"encoding {len(split)} {name}" if config.progress else None)
        return sign_codes(outputs) if config.hashing else outputs

    query, database = codes(data.query, "queries"), codes(data.database, "database items")
    query_labels, database_labels = data.query.labels.to(device), data.database.labels.to(device)
    metrics: dict[str, float] = {
        "map": float(mean_average_precision(query, database, query_labels, database_labels, k=config.topk, metric=metric))
    }
    if not config.hashing:
        for k, value in recall_at_k(query, database, query_labels, database_labels, k=(1, 2, 4, 8), metric="cosine").items():
            metrics[f"recall@{k}"] = float(value)
    if config.eval_train:
        # Training images (un-augmented) as queries against the same database: the gap to
        # "map" is what the model memorised rather than learnt.
        train = data.train.head(min(config.eval_train, len(data.train)))
        metrics["train_map"] = float(
            mean_average_precision(codes(train, "training images"), database, train.labels.to(device), database_labels, k=config.topk, metric=metric)
        )
    return metrics
