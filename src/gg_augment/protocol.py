"""The GG authors' protocol as data: the settings their code used that our options reproduce.

Each value here is what the authors' public code does, not a recommendation; the trainers'
``paper`` recipe takes its defaults from these tables, and every one can be overridden.
"""

from __future__ import annotations

from ._checks import check_choice, check_int

__all__ = [
    "AUTHORS_COSINE_T_MAX",
    "AUTHORS_GT_SIGMA_PX_BY_BACKBONE",
    "AUTHORS_GT_SIGMA_PX_BY_DATASET",
    "T_MAX_RULES",
    "authors_gt_sigma",
    "authors_head_init",
    "cosine_t_max",
]

#: G_t's sigma in pixels per dataset (their single-run script), at 224 px.
AUTHORS_GT_SIGMA_PX_BY_DATASET: dict[str, int] = {"cifar10": 60, "nus-wide-21": 60, "imagenet-100": 80, "coco": 50}

#: Their batch script overrides it per backbone: (pixels, the image side that backbone ran at).
#: Inception v3 (their "GoogLeNet v3") ran at 299 px, the others at 224.
AUTHORS_GT_SIGMA_PX_BY_BACKBONE: dict[str, tuple[int, int]] = {
    "resnet50": (70, 224),
    "inception_v3": (80, 299),
    "vit_b_32": (60, 224),
    "vit_b_16": (60, 224),
}

#: Their cosine schedule's period, in epochs, whatever the number of epochs run.
AUTHORS_COSINE_T_MAX = 150

#: ``"authors"``: T_max = 150; ``"epochs"``: T_max = the run's epochs (the decay ends with it).
T_MAX_RULES = ("authors", "epochs")


def authors_gt_sigma(dataset: str, arch: str, rule: str = "backbone") -> float:
    """G_t's sigma as a fraction of the image side, as the authors set it.

    ``rule="backbone"`` (what produced their tables, from the batch script): the backbone's
    value where the backbone is in :data:`AUTHORS_GT_SIGMA_PX_BY_BACKBONE`, else the
    dataset's. ``rule="dataset"``: the dataset's (:data:`AUTHORS_GT_SIGMA_PX_BY_DATASET`);
    a dataset outside their table (the embedded Fashion-MNIST subset) takes CIFAR-10's.

    Examples:
        >>> round(authors_gt_sigma("imagenet-100", "resnet50") * 224)
        70
        >>> round(authors_gt_sigma("imagenet-100", "small") * 224)
        80
    """
    check_choice(rule, "rule", ("backbone", "dataset"))
    if rule == "backbone" and arch in AUTHORS_GT_SIGMA_PX_BY_BACKBONE:
        pixels, side = AUTHORS_GT_SIGMA_PX_BY_BACKBONE[arch]
        return pixels / side
    return AUTHORS_GT_SIGMA_PX_BY_DATASET.get(dataset, AUTHORS_GT_SIGMA_PX_BY_DATASET["cifar10"]) / 224


def authors_head_init(arch: str) -> str:
    """The hash head's initialisation in the authors' models: Kaiming-uniform for tanh on
    their ViT, Xavier-normal on their CNNs (names of :data:`gg_augment.models.HEAD_INITS`)."""
    name = arch.removeprefix("timm:")
    return "kaiming_uniform" if name.startswith("vit") or "deit" in name else "xavier_normal"


def cosine_t_max(rule: str, epochs: int) -> int:
    """T_max of ``torch.optim.lr_scheduler.CosineAnnealingLR`` for a run of ``epochs`` epochs.

    With the authors' 150 and fewer epochs the rate never reaches its minimum (after e of 150
    epochs it is lr_min + (lr − lr_min)(1 + cos(π·e/150))/2); with more it rises again.
    """
    check_choice(rule, "rule", T_MAX_RULES)
    check_int(epochs, "epochs", minimum=1)
    return AUTHORS_COSINE_T_MAX if rule == "authors" else epochs
