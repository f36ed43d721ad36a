"""``TrainConfig``: everything a training run depends on, apart from any command line.

Each field carries its own help, choices and checks (``field(metadata=...)``): the command
line (:mod:`.cli`) is built from them, :meth:`TrainConfig.validate` reads them, and the
recipe-decided fields take their values from :data:`RECIPES` in :meth:`TrainConfig.resolved`,
the one place defaults are resolved.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import torch

from .._checks import check_choice, check_int, check_range
from ..data.transforms import BASELINE_TREATMENTS
from ..losses import RETENTION_RULES
from ..losses.triplet import TRIPLET_FORMS
from ..models import HEAD_INITS
from ..protocol import (
    AUTHORS_GT_SIGMA_PX_BY_BACKBONE,
    AUTHORS_GT_SIGMA_PX_BY_DATASET,
    T_MAX_RULES,
    authors_gt_sigma,
)

__all__ = [
    "AUGMENTATIONS", "ARCHITECTURES", "ConfigError", "RECIPES", "RECIPE_CASES", "RETENTION_SOURCES", "RUN_CONTROL_KEYS",
    "RecipeSettings", "TrainConfig", "flag_of", "recipe_help",
]

#: Fields that steer a run but cannot change its numbers: every other field keys the run folder
#: and must match to resume. (Each code length has its own folder below the run's.)
RUN_CONTROL_KEYS = (
    "code_lengths", "out", "resume", "stop_after", "progress", "threads", "eval_every", "workers", "validation",
)

AUGMENTATIONS = ("none", "standard", "erasing", "softcrop", "gt", "gcut", "gcut-approx", "other")
ARCHITECTURES = ("small", "resnet18", "resnet50", "inception_v3", "vit_b_16", "vit_b_32", "efficientnet_lite0")
VALIDATION = ("always", "first-step", "never")
#: Where the loss weight's retention comes from (``retention_source``): see
#: :func:`gg_augment.hashing.model_retention` for the model's.
RETENTION_SOURCES = ("augmentation", "model", "product")

#: What each recipe sets for the fields left at None. ``paper`` is the GG authors' recipe:
#: each method's own training transform (gg_augment.data.transforms; their baselines as they
#: ran them), DSDH bank term only with the batch's columns of U written before the loss, their
#: centre triplet term, RMSprop with cosine decay to 1e-7 over T_max = 150, one DCC sweep per
#: epoch, Linear(1000 -> K) on ImageNet logits with their head init, G_cut grid 12 for CNNs and
#: their cut count, G_t sigma per dataset and backbone (gg_augment.protocol), evaluation every
#: 10 epochs. ``fast`` is tuned for short from-scratch CPU runs (see docs/recipes.md for each
#: difference and why).
RECIPES: dict[str, dict[str, Any]] = {
    "fast": {
        "lr": 1e-3, "optimizer": "adam", "lr_min": 0.0, "loss_terms": "bank+batch", "triplet_weight": 0.0,
        "base_transform": "crop-flip", "crop_scale": 0.64, "gt_sigma": 0.3, "dcc_iterations": 3,
        "head": "features", "eval_every": 0, "gcut_grid": 8, "topk": None,
        "baselines": "authors", "triplet_form": "all", "cosine_tmax": "epochs", "head_init": "default",
        "cut_count": "truncated",
    },
    "paper": {
        "lr": 3e-5, "optimizer": "rmsprop", "lr_min": 1e-7, "loss_terms": "bank", "triplet_weight": 0.005,
        "base_transform": "per-method", "crop_scale": 0.08, "gt_sigma": 60 / 224, "dcc_iterations": 1,
        "head": "logits", "eval_every": 10, "gcut_grid": 12, "topk": None,
        "baselines": "authors", "triplet_form": "centre", "cosine_tmax": "authors", "head_init": "authors",
        "cut_count": "authors",
    },
}

_VIT_GRID = ("ViTs", None, lambda c: c.is_vit)
#: Recipe values that depend on the rest of the configuration: (recipe, field) -> cases of
#: (when, value, applies); the first case that applies wins over the :data:`RECIPES` value.
RECIPE_CASES: dict[tuple[str, str], tuple[tuple[str, Any, Callable[[TrainConfig], bool]], ...]] = {
    ("fast", "gcut_grid"): (_VIT_GRID,),
    ("paper", "gcut_grid"): (_VIT_GRID,),
    ("paper", "lr"): (("ViT", 3e-6, lambda c: c.is_vit),),
    # The authors' batch script sets G_t's sigma per backbone, their single runs per dataset.
    ("paper", "gt_sigma"): tuple(
        (arch, authors_gt_sigma("", arch), lambda c, arch=arch: c.arch == arch) for arch in AUTHORS_GT_SIGMA_PX_BY_BACKBONE
    ) + tuple(
        (dataset, authors_gt_sigma(dataset, "small"), lambda c, dataset=dataset: c.dataset_name == dataset)
        for dataset in AUTHORS_GT_SIGMA_PX_BY_DATASET if dataset != "cifar10"
    ),
    # NUS-WIDE, ImageNet-100, COCO: mAP@1000; CIFAR-10: @all
    ("paper", "topk"): (("image lists", 1000, lambda c: c.data == "imagelist"),),
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
    baselines: str
    triplet_form: str
    cosine_tmax: str
    head_init: str
    cut_count: str


class ConfigError(ValueError):
    """A configuration value out of range; ``field`` names the offending field."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name} {message}")
        self.field = field_name
        self.detail = message


def option(default: Any, help: str = "", **rules: Any) -> Any:  # noqa: A002 - argparse's word
    """A field with its help and checks: ``choices``, ``minimum`` (integers), ``range``
    ((low, high, low_inclusive, high_inclusive) for reals), ``flag`` (another flag name),
    ``cli=False`` (no flag), ``open_choices`` (listed in help, not enforced), ``unset`` (what
    None means, for help), ``keyed_when_set`` (left out of the run's fingerprint at its
    default: a field added after runs existed, whose folders then keep their names and resume)."""
    return field(default=default, metadata={"help": help, **rules})


_REAL = math.inf
_POSITIVE = (0.0, _REAL, False, False)
_NON_NEGATIVE = (0.0, _REAL, True, False)
_SHARE = (0.0, 1.0, False, True)


@dataclass
class TrainConfig:
    """One training run of the example trainers (both modes), with the CLI's defaults.

    ``mode`` is ``"hashing"`` (DSDH: tanh codes, bank + in-batch pairwise likelihood,
    quantisation, solver steps; mAP of sign codes) or ``"real"`` (cosine embeddings, in-batch
    pairs; mAP and Recall@1/2/4/8). ``out=None`` writes under ``runs/<mode>``. The fields
    mirror the trainers' flags (``--code-lengths`` is ``code_lengths``, ``--no-progress`` is
    ``progress=False``). Fields left at None take the recipe's value (:meth:`resolved`).
    """

    mode: str = option("hashing", choices=("hashing", "real"), cli=False)
    augment: str = option("gcut", "augmentation method", choices=AUGMENTATIONS)
    no_retention: bool = option(False, "ablation: same images, every weight 1")
    code_lengths: tuple[int, ...] = option((32,), "bits (hashing) or embedding sizes (real-valued), comma-separated")
    epochs: int = option(15, "training epochs", minimum=1)
    batch_size: int = option(128, "training batch size (pairs are needed)", minimum=2)
    recipe: str = option("fast", "fast: short from-scratch CPU runs; paper: the GG authors' recipe (docs/recipes.md). "
                         "Flags marked 'recipe' default to the recipe's value", choices=tuple(RECIPES))
    lr: float | None = option(None, "learning rate", range=_POSITIVE)
    optimizer: str | None = option(None, "optimizer (weight decay 1e-5)", choices=("adam", "rmsprop"))
    lr_min: float | None = option(None, "floor of the cosine schedule", range=_NON_NEGATIVE)
    loss_terms: str | None = option(None, "DSDH: bank term only, or bank with live batch rows plus in-batch term",
                                    choices=("bank", "bank+batch"))
    triplet_weight: float | None = option(None, "weight of the triplet term", range=_NON_NEGATIVE)
    triplet_margin: float = option(0.3, "margin of the triplet term", range=_NON_NEGATIVE)
    weight_triplets: bool = option(False, "weight each triplet by retention (the authors' is unweighted)")
    base_transform: str | None = option(
        None, "the training transform: random resized crop + flip under every method, resize·256/224 + centre "
        "crop + flip under every method, or each method's own as the authors ran it (docs/recipes.md)",
        choices=("crop-flip", "flip", "per-method"))
    baselines: str | None = option(
        None, "with --base-transform per-method: train none (Resize((S, S)), no flip) and erasing (not normalised) "
        "as the authors did, or matched to the queries' normalised resize + centre crop", choices=BASELINE_TREATMENTS)
    triplet_form: str | None = option(
        None, "triplet term: every valid triplet on cosine distance / 2, or the authors' (class-centre anchor, "
        "nearest negative, L2 on the codes, none for batches of 20 or fewer)", choices=TRIPLET_FORMS)
    cosine_tmax: str | None = option(
        None, "cosine schedule period: the run's epochs, or the authors' fixed 150", choices=T_MAX_RULES)
    head_init: str | None = option(
        None, "code head init: PyTorch's, Xavier-normal, Kaiming-uniform (tanh), or the authors' (Xavier-normal "
        "for CNNs, Kaiming-uniform for ViTs)", choices=(*HEAD_INITS, "authors"))
    cut_count: str | None = option(
        None, "G_cut's cut count: n = floor(|z|·sigma·m) truncated to floor(limit·m), or the authors' "
        "floor(|z·floor(sigma·m)|) redrawn past limit·m (mean n/m 0.110 vs 0.192 at m = 4)",
        choices=("truncated", "authors"))
    dcc_iterations: int | None = option(None, "DCC sweeps of the B-step per epoch", minimum=1)
    head: str | None = option(None, "code head on pooled features, or on a pretrained CNN's ImageNet logits",
                              choices=("features", "logits"))
    seed: int = option(0, "seed of the model, data order and augmentation", minimum=0)
    device: str = option("cpu", "torch device")
    threads: int = option(0, "torch CPU threads (0: leave torch's default)", minimum=0)
    data: str = option("embedded", "dataset", choices=("embedded", "cifar10", "imagelist"))
    data_root: Path | None = option(None, "folder of cifar-10-batches-py or of the image list files")
    imagelist_preset: str = option("auto", "image-list label count to check (auto: take it from the lists)",
                                   choices=("auto", "nus-wide-21", "imagenet-100", "coco"))
    num_query: int = option(1000, "CIFAR-10 queries (100 per class by default)", minimum=1)
    num_train: int = option(5000, "CIFAR-10 training images", minimum=2)
    database: str = option("rest", "CIFAR-10 database: the rest, or all but the queries", choices=("rest", "all"))
    image_size: int = option(32, "image side in pixels", minimum=1)
    arch: str = option("small", "backbone, or timm:<model name> (timm installed)", choices=ARCHITECTURES,
                       open_choices=True)
    pretrained: bool = option(False, "torchvision ImageNet weights (needs them cached)")
    topk: int | None = option(None, "mAP@K", minimum=1, unset="the whole database")
    gt_sigma: float | None = option(None, "G_t offset std as a fraction of the side", range=_POSITIVE)
    crop_scale: float | None = option(None, "smallest area share of the random resized crop", range=_SHARE)
    attention_layer: str | None = option(
        None, "layer G_cut hooks (default: backbone.layer4 for ResNets, backbone.encoder for ViT)")
    attention_model: str = option(
        "trained", "G_cut's attention from the model being trained (the authors'), or from a frozen copy of its "
        "ImageNet weights", choices=("trained", "imagenet"))
    gcut_score: str = option("attention", "G_cut retention: 1 - removed attention, or 1 - n/m (ablation)",
                             choices=("attention", "area"))
    erasing_rule: str = option(
        "authors", "erasing baseline: the authors' (scale 0.02-0.5, r = 1 below a quarter erased) or "
        "torchvision's ranges", choices=("authors", "torchvision"))
    gcut_grid: int | None = option(None, "G_cut grid side", minimum=2, unset="the patch grid")
    gcut_limit: float = option(0.5, "G_cut: the largest share of the candidate cells cut from one image", range=_SHARE)
    curve: str = option(
        "method", "retention -> weight: identity, power (k=2), the authors' activation (sigmoid below 0.5), or "
        "the method's own (power for softcrop, identity otherwise)", choices=("method", "identity", "power", "authors"))
    retention_rule: str = option(
        "authors", "how retention w softens a pair: the authors' target s*w, toward uncertainty w*s+(1-w)/2, or the "
        "pair's loss weighted by w (RetentionWeightedPairwiseLoss rule)", choices=RETENTION_RULES)
    attention_definition: str = option(
        "mean", "G_cut's CNN attention: the authors' channel mean, or the channel energy (mean of squares)",
        choices=("mean", "energy"))
    attention_temperature: float = option(1.0, "softmax temperature of G_cut's attention", range=_POSITIVE)
    # The same range as AttentionCache's own check: 0 replaces, 1 keeps the first value.
    cache_momentum: float = option(0.5, "EMA momentum of the approximate G_cut cache", range=(0.0, 1.0, True, True))
    out: Path | None = option(None, "output folder (None: runs/<mode>)")
    resume: bool = option(False, "continue from the checkpoints under --out")
    stop_after: int = option(
        0, "stop after this many epochs of the schedule (e.g. a preemptible time slot); --resume continues", minimum=0)
    eval_every: int | None = option(None, "evaluate every N epochs, 0 only at the end", minimum=0)
    limit_train: int = option(0, "use the first N training samples (smoke tests)", minimum=0)
    limit_query: int = option(0, "use the first N queries", minimum=0)
    limit_database: int = option(0, "use the first N database items", minimum=0)
    eval_train: int = option(
        0, "also evaluate the first N training images as queries (train mAP: the gap to the query mAP shows "
        "overfitting)", minimum=0)
    progress: bool = option(True, "no tqdm bars (progress=%(default)s)", flag="--no-progress")
    stream: bool | None = option(
        None, "stream batches through a DataLoader (default: for image lists) instead of holding the data in memory")
    workers: int = option(0, "DataLoader worker processes when streaming (decode and resize there)", minimum=0)
    amp: str = option("off", "mixed precision of the training forward (autocast; the loss stays float32)",
                      choices=("off", "bf16"))
    channels_last: bool = option(False, "channels_last memory format for the model and the training images")
    validation: str = option(
        "always", "value checks of the augmentation, loss and solver (host syncs): every step, the first step "
        "only, or never", choices=VALIDATION, flag="--validate")
    retention_source: str = option(
        "augmentation", "hashing: where a sample's retention comes from: the augmentation's score, the model's (the "
        "agreement of its output on the augmented image with its DSDH code B, once a solver step has seen the "
        "sample; before that the augmentation's), or their product", choices=RETENTION_SOURCES, keyed_when_set=True)

    def __post_init__(self) -> None:
        # Accept what JSON and users hand over: strings for paths, lists for code lengths.
        if isinstance(self.out, str):
            self.out = Path(self.out)
        if isinstance(self.data_root, (str, Path)):
            # One folder spelled relative or absolute (or through a link) is one configuration.
            self.data_root = Path(self.data_root).expanduser().resolve()
        if isinstance(self.code_lengths, list):
            self.code_lengths = tuple(self.code_lengths)

    @property
    def hashing(self) -> bool:
        return self.mode == "hashing"

    def resolved(self) -> TrainConfig:
        """This configuration with every field left at None set by the recipe (the one place
        defaults are resolved: :data:`RECIPES`, then :data:`RECIPE_CASES`)."""
        values = {}
        for name, value in RECIPES[self.recipe].items():
            if getattr(self, name) is None:
                cases = RECIPE_CASES.get((self.recipe, name), ())
                values[name] = next((case for _, case, applies in cases if applies(self)), value)
        return replace(self, **values)

    def settings(self) -> RecipeSettings:
        """The recipe's settings with this configuration's overrides, all resolved."""
        resolved = self.resolved()
        return RecipeSettings(**{f.name: getattr(resolved, f.name) for f in fields(RecipeSettings)})

    @property
    def cut_grid(self) -> int | None:
        """G_cut's grid side: ``gcut_grid``, else the recipe's (None for ViTs: the patch grid)."""
        return self.resolved().gcut_grid

    @property
    def attention_grid(self) -> int:
        """The grid G_cut scores attention on: :attr:`cut_grid`, else (ViTs) the patch grid."""
        return self.cut_grid or self.image_size // self.patch_size

    @property
    def is_vit(self) -> bool:
        """A vision transformer: torchvision's ``vit_b_16`` or a timm ViT/DeiT."""
        name = self.arch.removeprefix("timm:")
        return name.startswith("vit") or (self.arch.startswith("timm:") and "deit" in name)

    @property
    def patch_size(self) -> int:
        match = re.search(r"patch(\d+)", self.arch) or re.fullmatch(r"vit_[a-z]_(\d+)", self.arch)
        return int(match.group(1)) if match else 16

    @property
    def dataset_name(self) -> str:
        """``cifar10``, an image-list preset (``nus-wide-21``, ``imagenet-100``, ``coco``) or
        ``embedded``: the dataset names of :mod:`gg_augment.protocol`'s tables."""
        return self.imagelist_preset if self.data == "imagelist" else self.data

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
        first bad field. A configuration is checked once: unchanged values pass at once."""
        snapshot = self.to_dict()
        if self.__dict__.get("_valid_as") == snapshot:
            return self
        for spec in fields(self):
            _check_field(spec.name, getattr(self, spec.name), spec.default, spec.metadata)
        self._check_combinations()
        self.__dict__["_valid_as"] = snapshot  # not a field: never in to_dict or the fingerprint
        return self

    def _check_combinations(self) -> None:
        if not self.code_lengths or min(self.code_lengths) < 1:
            raise ConfigError("code_lengths", f"must be integers >= 1; got {list(self.code_lengths)}")
        if self.attention_model == "imagenet":
            if not self.pretrained or self.arch == "small":
                raise ConfigError("attention_model", "'imagenet' needs a pretrained architecture (--arch efficientnet_lite0 --pretrained)")
            if self.augment == "gcut-approx":
                raise ConfigError("attention_model", "'imagenet' takes attention from a frozen model, so it has no cache to fill: use --augment gcut")
        if self.weight_triplets and self.resolved().triplet_form == "centre":
            raise ConfigError("weight_triplets", "needs --triplet-form all: the authors' centre form is unweighted")
        if self.retention_source != "augmentation":
            self._check_retention_source()
        if self.limit_train == 1:
            raise ConfigError("limit_train", "must be 0 (all) or >= 2: one sample gives no pair to train on; got 1")
        if self.is_vit and self.image_size % self.patch_size:
            raise ConfigError("image_size", f"must be a multiple of {self.patch_size} for {self.arch} (its patch size); got {self.image_size}")
        self._validate_device()
        if self.data != "embedded":
            if self.data_root is None:
                raise ConfigError("data_root", f"is needed with data={self.data!r}")
            if not Path(self.data_root).is_dir():
                raise ConfigError("data_root", f"must be an existing folder; got {str(self.data_root)!r}")

    def _check_retention_source(self) -> None:
        source = repr(self.retention_source)
        if not self.hashing:
            raise ConfigError("retention_source", f"{source} reads the DSDH codes B, which only hashing runs have")
        if self.augment == "none":
            raise ConfigError("retention_source", f"{source} scores what the augmentation gave up, and --augment none "
                              "gives up nothing (--augment standard scores the crop)")
        if self.no_retention:
            raise ConfigError("retention_source", f"{source} weights the loss, and --no-retention sets every weight to 1")

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
        defaults = _keyed_when_set()
        return {
            k: v for k, v in self.resolved().to_dict().items()
            if k not in RUN_CONTROL_KEYS and not (k in defaults and v == defaults[k])
        }

    def fingerprint(self) -> str:
        """A short hash of :meth:`result_config`: two runs share it only if they compute the same."""
        text = json.dumps(self.result_config(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:10]

    def differences(self, stored: dict[str, Any]) -> list[str]:
        """``"key: stored -> current"`` for every result field that differs from ``stored``."""
        current = {k: v for k, v in self.resolved().to_dict().items() if k not in RUN_CONTROL_KEYS}
        defaults = _keyed_when_set()  # a record made before such a field existed ran at its default
        return [
            f"{k}: {stored.get(k, defaults.get(k))!r} -> {v!r}" for k, v in current.items()
            if stored.get(k, defaults.get(k)) != v
        ]

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


def _keyed_when_set() -> dict[str, Any]:
    """The defaults of the fields that key a run only when set (``option(keyed_when_set=True)``)."""
    return {f.name: f.default for f in fields(TrainConfig) if f.metadata.get("keyed_when_set")}


def flag_of(name: str) -> str:
    """The command-line flag of field ``name`` (``--limit-train``; ``--no-progress``)."""
    spec = next((f for f in fields(TrainConfig) if f.name == name), None)
    return spec.metadata.get("flag", "--" + name.replace("_", "-")) if spec else "--" + name.replace("_", "-")


def recipe_help(name: str) -> str:
    """``recipe: fast 0.001, paper 3e-05 (ViT: 3e-06)``: a recipe field's values for help
    texts, rendered from :data:`RECIPES` and :data:`RECIPE_CASES`."""
    unset = next(f for f in fields(TrainConfig) if f.name == name).metadata.get("unset", "None")

    def show(value: Any) -> str:
        return unset if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)

    parts = [
        f"{recipe} {show(values[name])}" + "".join(f" ({when}: {show(v)})" for when, v, _ in RECIPE_CASES.get((recipe, name), ()))
        for recipe, values in RECIPES.items()
    ]
    return f"recipe: {', '.join(parts)}"


def _check_field(name: str, value: Any, default: Any, rules: Any) -> None:
    """One field against its metadata, through :mod:`gg_augment._checks`; a field whose
    default is None may be None (the recipe's value, or "none")."""
    if value is None and default is None:
        return
    try:
        if "choices" in rules and not (rules.get("open_choices") and str(value).startswith("timm:") and len(value) > 5):
            check_choice(value, name, rules["choices"])
        if "minimum" in rules:
            check_int(value, name, rules["minimum"])
        if "range" in rules:
            low, high, low_inclusive, high_inclusive = rules["range"]
            check_range(value, name, low, high, low_inclusive=low_inclusive, high_inclusive=high_inclusive)
    except (TypeError, ValueError) as error:
        detail = str(error).removeprefix(f"{name} ")
        if default is None:
            detail += " (or omitted for the default)"
        raise ConfigError(name, detail) from None
