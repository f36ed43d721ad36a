"""Seeded retrieval splits (query / train / database) drawn in one vectorised pass.

The standard deep-hashing protocol draws a fixed number of images *per class* for the query
and training sets and leaves the rest as the retrieval database. For multi-label data
(NUS-WIDE, MS-COCO) "per class" has no single meaning, so those sets are drawn uniformly at
random with the same total sizes (``count * num_labels``), as the published protocols do.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from .._checks import check_int, check_tensor

__all__ = ["split_class_balanced"]


def _counts(counts_per_class: object) -> tuple[int, ...]:
    if isinstance(counts_per_class, (str, bytes)) or not isinstance(counts_per_class, Sequence):
        raise TypeError(
            "counts_per_class must be a sequence of ints, one per split; "
            f"got {type(counts_per_class).__name__}"
        )
    return tuple(check_int(c, f"counts_per_class[{i}]", minimum=0) for i, c in enumerate(counts_per_class))


def _generator(seed: object, generator: torch.Generator | None) -> torch.Generator:
    if generator is not None:
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator; got {type(generator).__name__}")
        if generator.device.type != "cpu":
            raise ValueError(f"generator must live on the CPU; got device {generator.device}")
        return generator
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int; got {type(seed).__name__}")
    # A CPU generator makes the split identical on every machine, whatever the device.
    cpu_generator = torch.Generator(device="cpu")
    cpu_generator.manual_seed(seed)
    return cpu_generator


def split_class_balanced(
    labels: Tensor,
    counts_per_class: Sequence[int],
    *,
    seed: int = 0,
    generator: torch.Generator | None = None,
    num_classes: int | None = None,
    rest: bool = True,
) -> tuple[Tensor, ...]:
    """Draw disjoint, seeded, class-balanced index sets.

    For class ids, split ``k`` receives exactly ``counts_per_class[k]`` samples of every class,
    chosen uniformly at random within the class; with ``rest=True`` one more index set holds
    everything left over (the retrieval database). The draw is one random permutation plus a
    stable sort by class, so it costs O(N log N) with no loop over samples or classes.

    For multi-hot labels (N, L) there is no class balancing: split ``k`` receives
    ``counts_per_class[k] * L`` samples drawn uniformly at random, which matches the sizes of the
    usual NUS-WIDE / MS-COCO protocols (e.g. 100 queries "per class" over 21 labels gives 2,100).

    Args:
        labels: Class ids (N,) with an integer dtype, or multi-hot labels (N, L).
        counts_per_class: Samples per class for each split, e.g. ``(100, 500)`` for 100
            queries and 500 training images per class.
        seed: Seed of the CPU generator used when ``generator`` is not given.
        generator: CPU generator to draw from instead of ``seed``.
        num_classes: Number of classes for class ids; defaults to ``labels.max() + 1``. Every
            class in ``[0, num_classes)`` must have enough samples.
        rest: Also return the indices that no split took, as the last element.

    Returns:
        One int64 index tensor per split (then the rest), each sorted ascending, on the device
        of ``labels``.

    Raises:
        ValueError: If a class has fewer samples than ``sum(counts_per_class)``, if class ids
            are negative or not below ``num_classes``, or labels have the wrong shape.
        TypeError: If an argument has the wrong type.

    Shape:
        - labels: (N,) or (N, L)
        - outputs: (counts_per_class[k] * num_classes,) for each split, then (N - taken,)

    Examples:
        >>> labels = torch.arange(10).repeat(20)  # 10 classes, 20 images each
        >>> query, train, database = split_class_balanced(labels, (2, 5), seed=0)
        >>> len(query), len(train), len(database)
        (20, 50, 130)
        >>> torch.bincount(labels[query]).tolist()
        [2, 2, 2, 2, 2, 2, 2, 2, 2, 2]
    """
    labels = check_tensor(labels, "labels")
    counts = _counts(counts_per_class)
    rng = _generator(seed, generator)
    if labels.ndim not in (1, 2):
        raise ValueError(
            f"labels must have shape (N,) class ids or (N, L) multi-hot; got {tuple(labels.shape)}"
        )
    device = labels.device
    labels = labels.detach().cpu()
    num_samples = labels.shape[0]
    num_splits = len(counts) + (1 if rest else 0)

    if labels.ndim == 2:
        num_labels = labels.shape[1]
        sizes = [c * num_labels for c in counts]
        if sum(sizes) > num_samples:
            raise ValueError(
                f"counts_per_class {list(counts)} x {num_labels} labels asks for {sum(sizes)} "
                f"samples; labels has only {num_samples}"
            )
        permutation = torch.randperm(num_samples, generator=rng)
        # Map every position of the permutation to its split: the first sizes[0] go to split 0,
        # and so on; the tail is the rest.
        bounds = torch.tensor(sizes, dtype=torch.int64).cumsum(0)
        split_of_rank = torch.searchsorted(bounds, torch.arange(num_samples), right=True)
        split_of_sample = torch.empty_like(split_of_rank)
        split_of_sample[permutation] = split_of_rank
    else:
        if labels.is_floating_point() or labels.dtype == torch.bool:
            raise TypeError(
                f"labels as class ids (N,) must have an integer dtype; got {labels.dtype}"
            )
        labels = labels.long()
        if num_samples and int(labels.min()) < 0:
            raise ValueError(
                f"labels must be non-negative class ids; got minimum {int(labels.min())}"
            )
        observed = int(labels.max()) + 1 if num_samples else 0
        if num_classes is None:
            num_classes = observed
        else:
            num_classes = check_int(num_classes, "num_classes", minimum=0)
            if observed > num_classes:
                raise ValueError(
                    f"labels must lie in [0, {num_classes - 1}] for num_classes={num_classes}; "
                    f"got maximum {observed - 1}"
                )
        needed = sum(counts)
        class_sizes = torch.bincount(labels, minlength=num_classes)
        short = (class_sizes < needed).nonzero().flatten().tolist()
        if needed and short:
            detail = ", ".join(f"class {c}: {int(class_sizes[c])}" for c in short[:5])
            raise ValueError(
                f"every class needs sum(counts_per_class) = {needed} samples; "
                f"got fewer for {len(short)} class(es) ({detail})"
            )
        # Shuffle, then stable-sort by class: each class becomes a contiguous run whose order
        # is random, and a sample's position inside its run is its random rank in the class.
        permutation = torch.randperm(num_samples, generator=rng)
        order = torch.argsort(labels[permutation], stable=True)
        grouped = permutation[order]
        run_start = class_sizes.cumsum(0) - class_sizes
        rank_in_class = torch.arange(num_samples) - run_start[labels[grouped]]
        bounds = torch.tensor(counts, dtype=torch.int64).cumsum(0)
        split_of_sample = torch.empty(num_samples, dtype=torch.int64)
        split_of_sample[grouped] = torch.searchsorted(bounds, rank_in_class, right=True)

    # split_of_sample is already in dataset order, so nonzero() yields sorted indices.
    return tuple((split_of_sample == k).nonzero().flatten().to(device) for k in range(num_splits))
