"""``TrainConfig``: everything a training run depends on, apart from any command line."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import torch

__all__ = ["AUGMENTATIONS", "ARCHITECTURES", "ConfigError", "RECIPES", "RUN_CONTROL_KEYS", "RecipeSettings", "TrainConfig"]

#: Fields that steer a run but cannot change its numbers: every other field keys the run folder
#: and must match to resume. (Each code length has its own folder below the run's.)
RUN_CONTROL_KEYS = ("code_lengths", "out", "resume", "stop_after", "progress", "threads", "eval_every", "workers")

AUGMENTATIONS = ("none", "standard", "erasing", "softcrop", "gt", "gcut", "gcut-approx")
ARCHITECTURES = ("small", "resnet18", "resnet50", "vit_b_16", "efficientnet_lite0")
_CHOICES: dict[str, tuple[str, ...]] = {
    "mode": ("hashing", "real"),
    "augment": AUGMENTATIONS,
    "data": ("embedded", "cifar10", "imagelist"),
    "imagelist_preset": ("auto", "nus-wide-21", "imagenet-100", "coco"),
    "database": ("rest", "all"),
    "arch": ARCHITECTURES,
    "gcut_score": ("attention", "area"),
    "erasing_rule": ("authors", "torchvision"),
    "recipe": ("fast", "paper"),
    "attention_model": ("trained", "imagenet"),
    "curve": ("method", "identity", "power", "authors"),
}
_RECIPE_CHOICES: dict[str, tuple[str, ...]] = {
    "optimizer": ("adam", "rmsprop"),
    "loss_terms": ("bank", "bank+batch"),
    "base_transform": ("crop-flip", "flip"),
    "head": ("features", "logits"),
}

#: What each recipe sets for the fields left at None. ``paper`` is the GG authors' recipe:
#: resize 256 -> centre crop 224 -> flip under G_t/G_cut (no random resized crop), DSDH bank
#: term only with the batch's columns of U written before the loss, a triplet term, RMSprop
#: with cosine decay to 1e-7, one DCC sweep per epoch, Linear(1000 -> K) on ImageNet logits,
#: G_cut grid 12 for CNNs, G_t sigma 60 px of 224, evaluation every 10 epochs. ``fast`` is
#: tuned for short from-scratch CPU runs (see docs/recipes.md for each difference and why).
RECIPES: dict[str, dict[str, Any]] = {
    "fast": {
        "lr": 1e-3, "optimizer": "adam", "lr_min": 0.0, "loss_terms": "bank+batch", "triplet_weight": 0.0,
        "base_transform": "crop-flip", "crop_scale": 0.64, "gt_sigma": 0.3, "dcc_iterations": 3,
        "head": "features", "eval_every": 0, "cnn_grid": 8,
    },
    "paper": {
        "lr": 3e-5, "optimizer": "rmsprop", "lr_min": 1e-7, "loss_terms": "bank", "triplet_weight": 0.005,
        "base_transform": "flip", "crop_scale": 0.08, "gt_sigma": 60 / 224, "dcc_iterations": 1,
        "head": "logits", "eval_every": 10, "cnn_grid": 12,
    },
}


@dataclass(frozen=True)
class RecipeSettings:
    """The recipe-decided settings of a run, every one set (see :meth:`TrainConfig.settings`)."""

    lr: float
    optimizer: str
    lr_min: float
    loss_terms: str
    triplet_weight: float
    base_transform: str
    crop_scale: float
    gt_sigma: float
    dcc_iterations: int
    head: str
    eval_every: int


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
    recipe: str = "fast"
    lr: float | None = None
    optimizer: str | None = None
    lr_min: float | None = None
    loss_terms: str | None = None
    triplet_weight: float | None = None
    triplet_margin: float = 0.3
    weight_triplets: bool = False
    base_transform: str | None = None
    dcc_iterations: int | None = None
    head: str | None = None
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
    gt_sigma: float | None = None
    crop_scale: float | None = None
    attention_layer: str | None = None
    attention_model: str = "trained"
    gcut_score: str = "attention"
    erasing_rule: str = "authors"
    gcut_grid: int | None = None
    gcut_limit: float = 0.5
    curve: str = "method"
    cache_momentum: float = 0.5
    out: Path | None = None
    resume: bool = False
    stop_after: int = 0
    eval_every: int | None = None
    limit_train: int = 0
    limit_query: int = 0
    limit_database: int = 0
    eval_train: int = 0
    progress: bool = True
    stream: bool | None = None
    workers: int = 0

    def __post_init__(self) -> None:
        # Accept what JSON and users hand over: strings for paths, lists for code lengths.
        if isinstance(self.out, str):
            self.out = Path(self.out)
        if isinstance(self.data_root, str):
            self.data_root = Path(self.data_root)
        if isinstance(self.code_lengths, list):
            self.code_lengths = tuple(self.code_lengths)

    @property
    def hashing(self) -> bool:
        return self.mode == "hashing"

    def resolved(self) -> TrainConfig:
        """This configuration with every field left at None set by the recipe."""
        recipe = RECIPES[self.recipe]
        values = {key: recipe[key] for key in recipe if key != "cnn_grid" and getattr(self, key) is None}
        if self.recipe == "paper":
            if "lr" in values and self.is_vit:
                values["lr"] = 3e-6
            if "gt_sigma" in values and self.imagelist_preset == "imagenet-100":
                values["gt_sigma"] = 80 / 224
            if self.topk is None and self.data == "imagelist":
                values["topk"] = 1000  # NUS-WIDE, ImageNet-100, COCO: mAP@1000; CIFAR-10: @all
        if self.gcut_grid is None and not self.is_vit:
            values["gcut_grid"] = recipe["cnn_grid"]
        return replace(self, **values)

    def settings(self) -> RecipeSettings:
        """The recipe's settings with this configuration's overrides, all resolved."""
        resolved = self.resolved()
        return RecipeSettings(**{f.name: getattr(resolved, f.name) for f in fields(RecipeSettings)})

    @property
    def cut_grid(self) -> int | None:
        """G_cut's grid side: ``gcut_grid``, else the patch grid for ViTs (None: the model's
        own) and the recipe's for CNNs."""
        if self.gcut_grid is not None:
            return self.gcut_grid
        return None if self.is_vit else RECIPES[self.recipe]["cnn_grid"]

    @property
    def is_vit(self) -> bool:
        """A vision transformer: torchvision's ``vit_b_16`` or a timm ViT/DeiT."""
        name = self.arch.removeprefix("timm:")
        return name.startswith("vit") or (self.arch.startswith("timm:") and "deit" in name)

    @property
    def patch_size(self) -> int:
        match = re.search(r"patch(\d+)", self.arch)
        return int(match.group(1)) if match else 16

    @property
    def patch_grid(self) -> int | None:
        """A ViT's patch grid side at this image size (None for CNNs)."""
        return self.image_size // self.patch_size if self.is_vit else None

    @property
    def streaming(self) -> bool:
        """Stream from lazy datasets through a DataLoader (image lists by default) rather than
        hold the data in memory (embedded data and CIFAR-10 by default)."""
        return self.stream if self.stream is not None else self.data == "imagelist"

    @property
    def output_root(self) -> Path:
        return self.out if self.out is not None else Path("runs") / self.mode

    def validate(self) -> TrainConfig:
        """Check every value, before any data loads; raise :class:`ConfigError` naming the
        first bad field."""
        for name, choices in _CHOICES.items():
            if name == "arch" and self.arch.startswith("timm:") and len(self.arch) > len("timm:"):
                continue
            if getattr(self, name) not in choices:
                raise ConfigError(name, f"must be one of {list(choices)}; got {getattr(self, name)!r}")
        for name, choices in _RECIPE_CHOICES.items():
            value = getattr(self, name)
            if value is not None and value not in choices:
                raise ConfigError(name, f"must be one of {list(choices)} (or omitted for the recipe's); got {value!r}")
        if not self.code_lengths or min(self.code_lengths) < 1:
            raise ConfigError("code_lengths", f"must be integers >= 1; got {list(self.code_lengths)}")
        minimums = {
            "epochs": 1, "batch_size": 2, "image_size": 1, "seed": 0, "threads": 0,
            "num_query": 1, "num_train": 2, "stop_after": 0, "workers": 0,
            "limit_train": 0, "limit_query": 0, "limit_database": 0, "eval_train": 0,
        }
        for name, minimum in minimums.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                why = " (pairs are needed)" if name == "batch_size" else ""
                raise ConfigError(name, f"must be an integer >= {minimum}{why}; got {value!r}")
        if self.gcut_grid is not None and (isinstance(self.gcut_grid, bool) or not isinstance(self.gcut_grid, int) or self.gcut_grid < 2):
            raise ConfigError("gcut_grid", f"must be an integer >= 2, or omitted for the default; got {self.gcut_grid!r}")
        if self.attention_model == "imagenet":
            if not self.pretrained or self.arch == "small":
                raise ConfigError("attention_model", "'imagenet' needs a pretrained architecture (--arch efficientnet_lite0 --pretrained)")
            if self.augment == "gcut-approx":
                raise ConfigError("attention_model", "'imagenet' takes attention from a frozen model, so it has no cache to fill: use --augment gcut")
        if self.limit_train == 1:
            raise ConfigError("limit_train", "must be 0 (all) or >= 2: one sample gives no pair to train on; got 1")
        if self.topk is not None and self.topk < 1:
            raise ConfigError("topk", f"must be >= 1 or omitted for the whole database; got {self.topk}")
        for name in ("eval_every", "dcc_iterations"):
            value = getattr(self, name)
            minimum = 0 if name == "eval_every" else 1
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < minimum):
                raise ConfigError(name, f"must be an integer >= {minimum}; got {value!r}")
        for name in ("lr", "gt_sigma"):
            value = getattr(self, name)
            if value is not None and (not value > 0 or value == float("inf")):
                raise ConfigError(name, f"must be a finite number > 0; got {value}")
        for name in ("lr_min", "triplet_weight", "triplet_margin"):
            value = getattr(self, name)
            if value is not None and (not value >= 0 or value == float("inf")):
                raise ConfigError(name, f"must be a finite number >= 0; got {value}")
        if self.crop_scale is not None and not 0.0 < self.crop_scale <= 1.0:
            raise ConfigError("crop_scale", f"must lie in (0, 1] (the smallest crop's share of the area); got {self.crop_scale}")
        if not 0.0 < self.gcut_limit <= 1.0:
            raise ConfigError("gcut_limit", f"must lie in (0, 1] (the largest share of the candidate cells cut); got {self.gcut_limit}")
        if not 0.0 <= self.cache_momentum < 1.0:
            raise ConfigError("cache_momentum", f"must lie in [0, 1); got {self.cache_momentum}")
        if self.is_vit and self.image_size % self.patch_size:
            raise ConfigError("image_size", f"must be a multiple of {self.patch_size} for {self.arch} (its patch size); got {self.image_size}")
        self._validate_device()
        if self.data != "embedded":
            if self.data_root is None:
                raise ConfigError("data_root", f"is needed with data={self.data!r}")
            if not Path(self.data_root).is_dir():
                raise ConfigError("data_root", f"must be an existing folder; got {str(self.data_root)!r}")
        return self

    def _validate_device(self) -> None:
        try:
            device = torch.device(self.device)
        except (RuntimeError, TypeError):
            raise ConfigError("device", f"must be a torch device such as 'cpu' or 'cuda:0'; got {self.device!r}") from None
        if device.type == "cuda":
            if not torch.cuda.is_available():
                raise ConfigError("device", f"is {self.device!r} but CUDA is not available here; use --device cpu")
            if device.index is not None and device.index >= torch.cuda.device_count():
                raise ConfigError("device", f"is {self.device!r} but only {torch.cuda.device_count()} CUDA device(s) exist")
        elif device.type != "cpu":
            raise ConfigError("device", f"must be 'cpu' or a CUDA device; got {self.device!r}")

    def result_config(self) -> dict[str, Any]:
        """The fields that decide the run's numbers (all but :data:`RUN_CONTROL_KEYS`), with
        the recipe's values filled in: ``--recipe paper`` and ``--recipe paper --lr 3e-5`` are
        one configuration."""
        return {k: v for k, v in self.resolved().to_dict().items() if k not in RUN_CONTROL_KEYS}

    def fingerprint(self) -> str:
        """A short hash of :meth:`result_config`: two runs share it only if they compute the same."""
        text = json.dumps(self.result_config(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:10]

    def differences(self, stored: dict[str, Any]) -> list[str]:
        """``"key: stored -> current"`` for every result field that differs from ``stored``."""
        current = self.result_config()
        return [f"{k}: {stored.get(k)!r} -> {v!r}" for k, v in current.items() if stored.get(k) != v]

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
