"""The example trainers' machinery, as a library: configure, run, find the files.

    from gg_augment.training import TrainConfig, RunLayout, run
    results = run(TrainConfig(augment="gt", epochs=5, out=Path("runs/gt")))
    final = json.loads(RunLayout.of(config).final(32).read_text())

``examples/train_hashing.py`` and ``examples/train_real_valued.py`` are its command lines.
"""

from __future__ import annotations

from .components import build_model, build_pipeline, encode, load_data, load_splits
from .config import AUGMENTATIONS, ConfigError, TrainConfig
from .layout import RunLayout, run_tag
from .loop import evaluate, run, train_one

__all__ = [
    "AUGMENTATIONS",
    "ConfigError",
    "RunLayout",
    "TrainConfig",
    "build_model",
    "build_pipeline",
    "encode",
    "evaluate",
    "load_data",
    "load_splits",
    "run",
    "run_tag",
    "train_one",
]
