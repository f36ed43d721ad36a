"""The example trainers' machinery, as a library: configure, run, find the files.

    from gg_augment.training import TrainConfig, RunLayout, run
    results = run(TrainConfig(augment="gt", epochs=5, out=Path("runs/gt")))
    final = json.loads(RunLayout.of(config).final(32).read_text())

``examples/train_hashing.py`` and ``examples/train_real_valued.py`` are its command lines.
The layout and "where does X live" are in ``docs/design.md``.
"""

from __future__ import annotations

from .build import build_model, build_optimizer, build_pipeline, frozen_imagenet_model
from .checkpoint import CHECKPOINT_KEYS, RunState
from .config import AUGMENTATIONS, RECIPES, ConfigError, TrainConfig
from .data import EpochBatchSampler, RunData, StreamSplit, TensorSplit, load_data, load_splits
from .distributed import Distributed
from .evaluation import encode, evaluate
from .layout import RunLayout, run_tag
from .objective import HashingObjective, RealValuedObjective
from .trainer import Trainer, run, train_one

__all__ = [
    "AUGMENTATIONS",
    "CHECKPOINT_KEYS",
    "ConfigError",
    "Distributed",
    "EpochBatchSampler",
    "HashingObjective",
    "RECIPES",
    "RealValuedObjective",
    "RunData",
    "RunLayout",
    "RunState",
    "StreamSplit",
    "TensorSplit",
    "TrainConfig",
    "Trainer",
    "build_model",
    "build_optimizer",
    "build_pipeline",
    "encode",
    "evaluate",
    "frozen_imagenet_model",
    "load_data",
    "load_splits",
    "run",
    "run_tag",
    "train_one",
]
