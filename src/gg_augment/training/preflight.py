"""Checks that turn a doomed run into one line naming the flag, before any work is lost.

:func:`check_before_data` runs after the configuration's own checks and before the data
loads: the code lengths are distinct, ``--workers`` has a loader to feed, CIFAR-10's counts
split into its 10 classes, the model the run would build accepts its augmentation (the
attention layer exists, its map has cells to cut, the grid fits the images: a dry run of the
pipeline on two blank images proves it), and ``--out`` is a writable folder.
:func:`check_after_data` runs right after the data loads, before the untrained evaluation:
the images held in memory must be finite.
:func:`diverged` is the one-line report of a run whose loss left the finite numbers.
Each is a :class:`ConfigError`, which the command line prints as one line with exit code 2.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch

from ..io import check_writable_folder
from .config import ConfigError, TrainConfig

__all__ = ["check_after_data", "check_before_data", "diverged"]

#: CIFAR-10's class count: its query and training counts are drawn class balanced.
_CIFAR_CLASSES = 10


def check_before_data(config: TrainConfig) -> None:
    """Every check that needs no data; raise :class:`ConfigError` naming the first bad field."""
    repeated = sorted({k for k in config.code_lengths if config.code_lengths.count(k) > 1})
    if repeated:
        raise ConfigError("code_lengths", f"lists {repeated} more than once; got {list(config.code_lengths)}")
    if config.workers and not config.streaming:
        raise ConfigError(
            "workers", f"is {config.workers}, but the data is held in memory and no loader runs; add --stream or drop --workers"
        )
    if config.data == "cifar10":
        for name in ("num_query", "num_train"):
            value = getattr(config, name)
            if value % _CIFAR_CLASSES:
                raise ConfigError(name, f"must be a multiple of {_CIFAR_CLASSES} (CIFAR-10 draws it class balanced); got {value}")
    if config.cut_grid is not None and config.cut_grid > config.image_size:
        raise ConfigError("gcut_grid", f"is {config.cut_grid}, finer than the {config.image_size} px images; use at most {config.image_size}")
    if config.augment.startswith("gcut"):
        _dry_run_augmentation(config, torch.zeros(2, 3, config.image_size, config.image_size))
    try:
        check_writable_folder(config.output_root)
    except ValueError as error:
        raise ConfigError("out", f"must be a writable folder: {error}") from None


def _dry_run_augmentation(config: TrainConfig, images: torch.Tensor) -> None:
    """Build the run's model (no weights downloaded) and pipeline on the CPU and augment
    ``images``: the errors a first training step would raise, raised now."""
    from .build import build_model, build_pipeline

    with torch.random.fork_rng(devices=[]):  # the dry run leaves the run's random streams alone
        probe = replace(config, pretrained=False, attention_model="trained", device="cpu")
        model = build_model(probe, max(config.code_lengths), images.shape[1])
        if config.attention_layer is not None:
            names = [name for name, _ in model.named_modules() if name]
            if config.attention_layer not in names:
                shown = ", ".join(n for n in names if n.count(".") <= 1)
                raise ConfigError("attention_layer", f"{config.attention_layer!r} is not a layer of {config.arch}; its layers include {shown}")
        pipeline, _ = build_pipeline(probe, model, images.shape[0], torch.Generator().manual_seed(0))
        try:
            pipeline.augment(images.float(), torch.arange(images.shape[0]))
        except (ValueError, TypeError) as error:
            field = "attention_layer" if config.attention_layer is not None else "image_size"
            raise ConfigError(field, f"does not fit --arch {config.arch} at {images.shape[-1]} px: {error}") from None


def check_after_data(config: TrainConfig, data: Any) -> None:
    """The checks that need the loaded splits (``data`` is the trainer's ``RunData``): the
    images held in memory are finite (one pass when they load; streamed images are checked
    by the augmentation as they come)."""
    field = "data_root" if config.data != "embedded" else "data"
    for name in ("train", "query", "database"):
        images = getattr(getattr(data, name), "images", None)
        if not isinstance(images, torch.Tensor) or not images.is_floating_point():
            continue
        bad = sum(int((~torch.isfinite(chunk)).sum()) for chunk in images.split(4096))  # bounded temporaries
        if bad:
            raise ConfigError(field, f"gives {bad} NaN/Inf pixel value(s) in the {name} split; the data is damaged")


def diverged(config: TrainConfig, epoch: int, detail: str) -> ConfigError:
    """The error of a run whose loss or outputs stopped being finite in ``epoch`` (1-based)."""
    return ConfigError("lr", f"is {config.settings().lr:g} and training diverged in epoch {epoch} ({detail}); lower --lr")
