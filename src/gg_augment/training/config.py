"""``TrainConfig``: everything a training run depends on, apart from any command line."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

__all__ = ["AUGMENTATIONS", "ARCHITECTURES", "ConfigError", "TrainConfig"]

AUGMENTATIONS = ("none", "standard", "erasing", "softcrop", "gt", "gcut", "gcut-approx")
ARCHITECTURES = ("small", "resnet18", "resnet50", "vit_b_16")
_CHOICES: dict[str, tuple[str, ...]] = {
    "mode": ("hashing", "real"),
    "augment": AUGMENTATIONS,
    "data": ("embedded", "cifar10", "imagelist"),
    "imagelist_preset": ("auto", "nus-wide-21", "imagenet-100", "coco"),
    "database": ("rest", "all"),
    "arch": ARCHITECTURES,
    "gcut_score": ("attention", "area"),
}


class ConfigError(ValueError):
    """A configuration value out of range; ``field`` names the offending field."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name} {message}")
        self.field = field_name
        self.detail = message


@dataclass
class TrainConfig:
    """One training run of the example trainers (both modes), with the CLI's defaults.

    ``mode`` is ``"hashing"`` (DSDH: tanh codes, bank + in-batch pairwise likelihood,
    quantisation, solver steps; mAP of sign codes) or ``"real"`` (cosine embeddings, in-batch
    pairs; mAP and Recall@1/2/4/8). ``out=None`` writes under ``runs/<mode>``. The fields
    mirror the trainers' flags (``--code-lengths`` is ``code_lengths``, ``--no-progress`` is
    ``progress=False``).
    """

    mode: str = "hashing"
    augment: str = "gcut"
    no_retention: bool = False
    code_lengths: tuple[int, ...] = (32,)
    epochs: int = 15
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 0
    device: str = "cpu"
    threads: int = 0
    data: str = "embedded"
    data_root: Path | None = None
    imagelist_preset: str = "auto"
    num_query: int = 1000
    num_train: int = 5000
    database: str = "rest"
    image_size: int = 32
    arch: str = "small"
    pretrained: bool = False
    topk: int | None = None
    gt_sigma: float = 0.3
    crop_scale: float = 0.64
    attention_layer: str | None = None
    gcut_score: str = "attention"
    gcut_grid: int = 8
    cache_momentum: float = 0.5
    out: Path | None = None
    resume: bool = False
    stop_after: int = 0
    eval_every: int = 0
    limit_train: int = 0
    limit_query: int = 0
    limit_database: int = 0
    progress: bool = True

    @property
    def hashing(self) -> bool:
        return self.mode == "hashing"

    @property
    def output_root(self) -> Path:
        return self.out if self.out is not None else Path("runs") / self.mode

    def validate(self) -> TrainConfig:
        """Check every value; raise :class:`ConfigError` naming the first bad field."""
        for name, choices in _CHOICES.items():
            if getattr(self, name) not in choices:
                raise ConfigError(name, f"must be one of {list(choices)}; got {getattr(self, name)!r}")
        if not self.code_lengths or min(self.code_lengths) < 1:
            raise ConfigError("code_lengths", f"must be integers >= 1; got {list(self.code_lengths)}")
        if self.epochs < 1:
            raise ConfigError("epochs", f"must be >= 1; got {self.epochs}")
        if self.batch_size < 2:
            raise ConfigError("batch_size", f"must be >= 2 (pairs are needed); got {self.batch_size}")
        if self.topk is not None and self.topk < 1:
            raise ConfigError("topk", f"must be >= 1 or omitted for the whole database; got {self.topk}")
        if self.data != "embedded" and self.data_root is None:
            raise ConfigError("data_root", f"is needed with data={self.data!r}")
        if not 0.0 <= self.cache_momentum < 1.0:
            raise ConfigError("cache_momentum", f"must lie in [0, 1); got {self.cache_momentum}")
        return self

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: paths as strings, tuples as lists."""
        out: dict[str, Any] = {}
        for key, value in asdict(self).items():
            if isinstance(value, Path):
                value = str(value)
            elif isinstance(value, tuple):
                value = list(value)
            out[key] = value
        return out

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))
