"""The study's presets: which trainer settings, methods, code lengths, seeds and ablations.

A preset's ``settings`` are :class:`~gg_augment.training.TrainConfig` fields; every run of
the study is that configuration with a few fields replaced (``dataclasses.replace``): the seed,
the code lengths, the method and an ablation's own fields. A new setting is one entry here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from gg_augment.training import AUGMENTATIONS, TrainConfig

__all__ = ["ABLATION_GROUPS", "Ablation", "Preset", "PRESETS", "SMOKE_METHODS", "departures", "rule_ablations", "weighting_ablations",
           "standard_ablations"]

#: The methods a smoke run keeps: one without augmentation, the baseline, both G_cuts.
SMOKE_METHODS = ("none", "standard", "gcut", "gcut-approx")
#: The methods that weight by retention, so that "no retention weighting" is an ablation of them.
_WEIGHTED = ("erasing", "softcrop", "gt", "gcut", "gcut-approx")
#: The methods whose retention rule the ablations vary (the approximate G_cut follows the exact one).
_RULED = ("erasing", "softcrop", "gt", "gcut")
#: What an ablation row varies; ``--ablations GROUP,...`` keeps some groups only.
ABLATION_GROUPS = ("method", "weighting", "rule", "score", "curve", "sigma", "limit", "attention")


@dataclass(frozen=True)
class Ablation:
    """One ablation row: the fields it changes, and the row whose runs it is paired with."""

    name: str
    changes: dict[str, Any]
    reference: str = ""
    group: str = "method"

    @property
    def is_method(self) -> bool:
        """A plain method row (the main table's own runs)."""
        return self.changes == {"augment": self.name}


def weighting_ablations(methods: tuple[str, ...]) -> list[Ablation]:
    """Each method's own row, then the method without retention weighting, paired with it."""
    rows = [Ablation(m, {"augment": m}) for m in methods]
    return rows + [Ablation(f"{m}, no retention weighting", {"augment": m, "no_retention": True}, m, "weighting")
                   for m in methods]


def standard_ablations(frozen_attention_layer: str | None = None) -> tuple[Ablation, ...]:
    rows = weighting_ablations(_WEIGHTED)
    rows += [
        Ablation("gcut, area score", {"augment": "gcut", "gcut_score": "area"}, "gcut", "score"),
        Ablation("gcut, power curve", {"augment": "gcut", "curve": "power"}, "gcut", "curve"),
        Ablation("gcut, authors' activation", {"augment": "gcut", "curve": "authors"}, "gcut", "curve"),
        Ablation("gt, power curve", {"augment": "gt", "curve": "power"}, "gt", "curve"),
        Ablation("gt, authors' activation", {"augment": "gt", "curve": "authors"}, "gt", "curve"),
    ]
    rows += [Ablation(f"gt, sigma {s}", {"augment": "gt", "gt_sigma": s}, "gt", "sigma") for s in (0.05, 0.1, 0.2, 0.3)]
    rows += [Ablation(f"gcut, limit {v}", {"augment": "gcut", "gcut_limit": v}, "gcut", "limit") for v in (0.25, 0.5, 0.75)]
    rows += rule_ablations(_RULED)
    rows.append(Ablation("gcut, energy attention", {"augment": "gcut", "attention_definition": "energy"}, "gcut",
                         "attention"))
    if frozen_attention_layer:
        changes = {"augment": "gcut", "attention_model": "imagenet", "attention_layer": frozen_attention_layer}
        rows.append(Ablation("gcut, frozen ImageNet attention", changes, "gcut", "attention"))
    return tuple(rows)


def rule_ablations(methods: tuple[str, ...]) -> list[Ablation]:
    """Each method under the two other retention rules (``RetentionWeightedPairwiseLoss``), each
    paired with the method's own run (the authors' rule, s̃ = s·w)."""
    return [Ablation(f"{m}, {rule} rule", {"augment": m, "retention_rule": rule}, m, "rule")
            for m in methods for rule in ("uncertain", "weighted")]


@dataclass(frozen=True)
class Preset:
    """A study setting. ``settings`` and ``smoke`` are ``TrainConfig`` fields (``smoke``
    replaces the sizes for ``--smoke``); ``dry_smoke`` presets need what CI lacks (a GPU, the
    paper's data), so ``--smoke`` only builds and checks their configurations."""

    description: str
    settings: dict[str, Any]
    code_lengths: tuple[int, ...]
    seeds: tuple[int, ...] = (0, 1, 2)
    methods: tuple[str, ...] = AUGMENTATIONS
    ablation_bits: int = 32
    ablations: tuple[Ablation, ...] = field(default_factory=standard_ablations)
    smoke: dict[str, Any] = field(default_factory=lambda: dict(
        limit_train=96, limit_query=48, limit_database=96, epochs=1, batch_size=32))
    dry_smoke: bool = False

    def config(self) -> TrainConfig:
        """The trainer's configuration of this preset (unchecked: the device may be absent here)."""
        return replace(TrainConfig(mode="hashing"), **self.settings)


_SMALL_CNN: dict[str, Any] = {"arch": "small", "recipe": "fast", "device": "cpu"}
#: The methods of the small-data presets: the main table's four, erasing and G_t.
_SMALL_DATA_METHODS = ("none", "standard", "erasing", "gt", "gcut", "gcut-approx")
#: The small-data presets' ablations: the retention rules and no weighting for erasing, softcrop,
#: G_t and G_cut, and the energy attention for G_cut.
_SMALL_DATA_ABLATIONS = (
    *weighting_ablations(_RULED),
    *rule_ablations(_RULED),
    Ablation("gcut, energy attention", {"augment": "gcut", "attention_definition": "energy"}, "gcut", "attention"),
)
#: The main job's setting: 1,000 images (about 100 per class), batch 16, 120 epochs.
_SMALL_DATA_LONG: dict[str, Any] = {**_SMALL_CNN, "batch_size": 16, "epochs": 120, "limit_train": 1000, "eval_every": 10,
                                    "eval_train": 1000}
_LITE0: dict[str, Any] = {"arch": "efficientnet_lite0", "pretrained": True, "recipe": "paper", "batch_size": 64, "lr": 3e-4}
# Lite0's block 10 of the frozen ImageNet model points at the garment (docs/results: attention focus).
_LITE0_ATTENTION = "backbone.net._blocks.10"

PRESETS: dict[str, Preset] = {
    "cpu-pretrained": Preset(
        description="EfficientNet-Lite0 (ImageNet weights), paper recipe at 64 px, 1,000 train images, 4 epochs",
        settings={**_LITE0, "image_size": 64, "epochs": 4, "limit_train": 1000, "limit_query": 500,
                  "limit_database": 2000, "device": "cpu"},
        code_lengths=(32,),
        ablations=standard_ablations(_LITE0_ATTENTION),
    ),
    "cpu-scratch": Preset(
        description="small CNN from scratch, fast recipe, 5,000 train images, 15 epochs (the main job's earlier setting), "
        "train/query mAP every epoch",
        settings={**_SMALL_CNN, "epochs": 15, "eval_every": 1, "eval_train": 1000},
        code_lengths=(32,),
        # Erasing, softcrop and G_t are in the pretrained and gpu presets; here they would add
        # an hour on 2 cores.
        methods=("none", "standard", "gcut", "gcut-approx"),
    ),
    "cpu-small-data": Preset(
        description="small CNN from scratch, fast recipe, 1,000 train images (about 100 per class), 60 epochs: "
        "the train/query gap of no augmentation grows to about twice the cpu-scratch one",
        settings={**_SMALL_CNN, "epochs": 60, "limit_train": 1000, "eval_every": 10, "eval_train": 1000},
        code_lengths=(32,),
        methods=_SMALL_DATA_METHODS,
    ),
    "cpu-tiny-data": Preset(
        description="small CNN from scratch, fast recipe, 200 train images (about 20 per class), 150 epochs: "
        "the train/query gap of no augmentation grows to about twice the cpu-small-data one",
        settings={**_SMALL_CNN, "epochs": 150, "limit_train": 200, "eval_every": 25, "eval_train": 200},
        code_lengths=(32,),
        methods=_SMALL_DATA_METHODS,
        ablations=_SMALL_DATA_ABLATIONS,
    ),
    "cpu-small-data-long": Preset(
        description="small CNN from scratch, fast recipe, 1,000 train images (about 100 per class), batch 16, "
        "120 epochs (the main job's setting): 7,560 optimiser steps, 16 times cpu-small-data's; the train/query "
        "gap of no augmentation grows to 1.7 times cpu-small-data's",
        settings=_SMALL_DATA_LONG,
        code_lengths=(32,),
        methods=_SMALL_DATA_METHODS,
        ablations=_SMALL_DATA_ABLATIONS,
    ),
    "cpu-small-data-longer": Preset(
        description="cpu-small-data-long's setting trained twice as long: 1,000 train images, batch 16, 240 epochs "
        "(15,120 optimiser steps), no augmentation and exact G_cut only: does no augmentation over-fit when "
        "the cosine schedule is stretched",
        settings={**_SMALL_DATA_LONG, "epochs": 240, "eval_every": 20},
        code_lengths=(32,),
        methods=("none", "gcut"),
        ablations=(),
    ),
    "gpu": Preset(
        description="EfficientNet-Lite0 (ImageNet weights), paper recipe at 96 px, 5,000 train images, 6 epochs",
        settings={**_LITE0, "image_size": 96, "epochs": 6, "device": "cuda"},
        code_lengths=(16, 32, 64),
        ablations=standard_ablations(_LITE0_ATTENTION),
        smoke=dict(limit_train=96, limit_query=48, limit_database=96, epochs=1, batch_size=32, image_size=64, device="cpu"),
    ),
    "paper": Preset(
        description="the authors' protocol: CIFAR-10, ResNet-50 (ImageNet weights) at 224 px, 100 epochs",
        settings={"data": "cifar10", "arch": "resnet50", "pretrained": True, "recipe": "paper", "image_size": 224,
                  "epochs": 100, "device": "cuda"},
        code_lengths=(16, 32, 48, 64),
        dry_smoke=True,
    ),
}

# Fields that say how or where a run executes, or which data split it reads, not how it trains.
_NOT_PROTOCOL = ("device", "data_root", "limit_train", "limit_query", "limit_database", "eval_every", "eval_train",
                 "code_lengths", "augment", "seed", "out", "resume", "progress", "threads", "workers", "stop_after", "validation")


def departures(config: TrainConfig, reference: Preset | None = None) -> list[str]:
    """``"field value (paper preset: value)"`` for every training setting in which ``config``
    departs from the ``paper`` preset (the authors' protocol), recipe values resolved."""
    mine, theirs = config.resolved(), (reference or PRESETS["paper"]).config().resolved()
    out = []
    for name in TrainConfig.field_names():
        value, authors = getattr(mine, name), getattr(theirs, name)
        if name not in _NOT_PROTOCOL and value != authors:
            both_float = isinstance(value, float) and isinstance(authors, float)
            out.append(f"{name} {value:g} (paper preset: {authors:g})" if both_float else f"{name} {value} (paper preset: {authors})")
    return out
