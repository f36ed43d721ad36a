"""The trainers' command line: flags → :class:`TrainConfig` → :func:`run`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, NoReturn

from .config import ARCHITECTURES, AUGMENTATIONS, ConfigError, TrainConfig
from .loop import run

__all__ = ["build_parser", "main", "parse_config"]

_DEFAULTS = TrainConfig()


def _code_lengths(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 16,32,64; got {text!r}") from None
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"code lengths must be integers >= 1; got {text!r}")
    return values


class _OneLineErrors(argparse.ArgumentParser):
    """argparse, but a bad flag is one line on stderr (no usage block) and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser(mode: str, description: str | None = None) -> argparse.ArgumentParser:
    parser = _OneLineErrors(
        description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    add = parser.add_argument
    add("--augment", choices=AUGMENTATIONS, default=_DEFAULTS.augment, help="augmentation method")
    add("--no-retention", action="store_true", help="ablation: same images, every weight 1")
    add("--code-lengths", type=_code_lengths, default=_DEFAULTS.code_lengths,
        help="bits (hashing) or embedding sizes (real-valued), comma-separated")
    add("--epochs", type=int, default=_DEFAULTS.epochs, help="training epochs")
    add("--batch-size", type=int, default=_DEFAULTS.batch_size, help="training batch size")
    add("--recipe", choices=("fast", "paper"), default=_DEFAULTS.recipe,
        help="fast: short from-scratch CPU runs; paper: the GG authors' recipe (docs/recipes.md). "
        "Flags below marked 'recipe' default to the recipe's value")
    add("--lr", type=float, default=None, help="learning rate (recipe: fast 1e-3, paper 3e-5, 3e-6 for ViT)")
    add("--optimizer", choices=("adam", "rmsprop"), default=None, help="recipe: fast adam, paper rmsprop (weight decay 1e-5)")
    add("--lr-min", type=float, default=None, help="floor of the cosine schedule (recipe: fast 0, paper 1e-7)")
    add("--loss-terms", choices=("bank", "bank+batch"), default=None,
        help="DSDH: bank term only (paper) or bank with live batch rows plus in-batch term (fast)")
    add("--triplet-weight", type=float, default=None, help="weight of the triplet term (recipe: fast 0, paper 0.005)")
    add("--triplet-margin", type=float, default=_DEFAULTS.triplet_margin, help="margin of the triplet term")
    add("--weight-triplets", action="store_true", help="weight each triplet by retention (the authors' is unweighted)")
    add("--base-transform", choices=("crop-flip", "flip"), default=None,
        help="under every method: random resized crop + flip (fast), or resize·256/224 + centre crop + flip (paper)")
    add("--dcc-iterations", type=int, default=None, help="DCC sweeps of the B-step per epoch (recipe: fast 3, paper 1)")
    add("--head", choices=("features", "logits"), default=None,
        help="code head on pooled features (fast) or on a pretrained CNN's ImageNet logits (paper)")
    add("--seed", type=int, default=_DEFAULTS.seed, help="seed of the model, data order and augmentation")
    add("--device", default=_DEFAULTS.device, help="torch device")
    add("--threads", type=int, default=_DEFAULTS.threads, help="torch CPU threads (0: leave torch's default)")
    add("--data", choices=("embedded", "cifar10", "imagelist"), default=_DEFAULTS.data)
    add("--data-root", type=Path, help="folder of cifar-10-batches-py or of the image list files")
    add("--imagelist-preset", choices=("auto", "nus-wide-21", "imagenet-100", "coco"), default=_DEFAULTS.imagelist_preset,
        help="image-list label count to check (auto: take it from the lists)")
    add("--num-query", type=int, default=_DEFAULTS.num_query, help="CIFAR-10 queries (100 per class by default)")
    add("--num-train", type=int, default=_DEFAULTS.num_train, help="CIFAR-10 training images")
    add("--database", choices=("rest", "all"), default=_DEFAULTS.database,
        help="CIFAR-10 database: the rest, or all but the queries")
    add("--image-size", type=int, default=_DEFAULTS.image_size)
    add("--arch", default=_DEFAULTS.arch, help=f"one of {', '.join(ARCHITECTURES)}, or timm:<model name> (timm installed)")
    add("--pretrained", action="store_true", help="torchvision ImageNet weights (needs them cached)")
    add("--topk", type=int, default=None, help="mAP@K; default: the whole database")
    add("--gt-sigma", type=float, default=None,
        help="G_t offset std as a fraction of the side (recipe: fast 0.3, paper 60/224, 80/224 for ImageNet-100)")
    add("--crop-scale", type=float, default=None,
        help="smallest area share of the random resized crop (recipe: fast 0.64, paper 0.08)")
    add("--attention-layer", default=None,
        help="layer G_cut hooks (default: backbone.layer4 for ResNets, backbone.encoder for ViT)")
    add("--attention-model", choices=("trained", "imagenet"), default=_DEFAULTS.attention_model,
        help="G_cut's attention from the model being trained (the authors'), or from a frozen copy of its ImageNet weights")
    add("--gcut-score", choices=("attention", "area"), default=_DEFAULTS.gcut_score,
        help="G_cut retention: 1 - removed attention, or 1 - n/m (ablation)")
    add("--erasing-rule", choices=("authors", "torchvision"), default=_DEFAULTS.erasing_rule,
        help="erasing baseline: the authors' (scale 0.02-0.5, r = 1 below a quarter erased) or torchvision's ranges")
    add("--gcut-grid", type=int, default=None, help="G_cut grid side (default: the patch grid for ViTs, 8 for CNNs)")
    add("--gcut-limit", type=float, default=_DEFAULTS.gcut_limit,
        help="G_cut: the largest share of the candidate cells cut from one image")
    add("--curve", choices=("method", "identity", "power", "authors"), default=_DEFAULTS.curve,
        help="retention -> weight: identity, power (k=2), the authors' activation (sigmoid below 0.5), or "
        "the method's own (power for softcrop, identity otherwise)")
    add("--cache-momentum", type=float, default=_DEFAULTS.cache_momentum,
        help="EMA momentum of the approximate G_cut cache")
    add("--out", type=Path, default=Path("runs") / mode, help="output folder")
    add("--resume", action="store_true", help="continue from the checkpoints under --out")
    add("--stop-after", type=int, default=0,
        help="stop after this many epochs of the schedule (e.g. a preemptible time slot); --resume continues")
    add("--eval-every", type=int, default=None, help="evaluate every N epochs, 0 only at the end (recipe: fast 0, paper 10)")
    add("--limit-train", type=int, default=0, help="use the first N training samples (smoke tests)")
    add("--limit-query", type=int, default=0)
    add("--limit-database", type=int, default=0)
    add("--eval-train", type=int, default=0,
        help="also evaluate the first N training images as queries (train mAP: the gap to the query mAP shows overfitting)")
    add("--no-progress", action="store_true", help="no tqdm bars")
    add("--stream", action=argparse.BooleanOptionalAction, default=None,
        help="stream batches through a DataLoader (default: for image lists) instead of holding the data in memory")
    add("--workers", type=int, default=0, help="DataLoader worker processes when streaming (decode and resize there)")
    return parser


def parse_config(mode: str, argv: list[str] | None = None, description: str | None = None) -> TrainConfig:
    """Parse trainer flags into a checked :class:`TrainConfig` (exits 2 on a bad flag)."""
    parser = build_parser(mode, description)
    args = parser.parse_args(argv)
    values: dict[str, Any] = {k: v for k, v in vars(args).items() if k != "no_progress"}
    config = TrainConfig(mode=mode, progress=not args.no_progress, **values)
    try:
        return config.validate()
    except ConfigError as error:
        parser.error(f"argument --{error.field.replace('_', '-')}: {error.detail}")


def main(mode: str, description: str | None = None, argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Run a trainer from its command line; a bad flag or architecture ends with exit code 2."""
    config = parse_config(mode, argv, description)
    try:
        return run(config)
    except ConfigError as error:
        build_parser(mode, description).error(f"argument --{error.field.replace('_', '-')}: {error.detail}")
