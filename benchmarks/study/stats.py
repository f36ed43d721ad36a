"""The study's statistics: seed means, paired differences, and the cells that show them.

Runs that share a seed share the split, the initial weights and the data order, so the
difference of two methods at one seed cancels most of the seed noise: a paired Δ is the mean
± standard error of the per-seed differences, marked ``*`` when |mean| > 2 × their std (the
sign held on every seed, by a margin).
"""

from __future__ import annotations

import math
import statistics

__all__ = ["cell", "mean_std", "paired_delta", "paired_differences", "parse_cell", "per_seed"]

#: Per-seed values of one row: ``{seed: value}``.
Values = dict[int, float]


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def cell(values: list[float]) -> str:
    """``"0.7940 ± 0.0057"``: mean ± std over seeds."""
    mean, std = mean_std(values)
    return f"{mean:.4f} ± {std:.4f}"


def paired_differences(values: Values, reference: Values) -> Values:
    """``values - reference`` at every seed both have."""
    return {seed: values[seed] - reference[seed] for seed in sorted(set(values) & set(reference))}


def paired_delta(values: Values, reference: Values) -> str:
    """``+0.0123 ± 0.0040`` (mean ± standard error of the per-seed differences), with ``*``
    when |mean| > 2 × their std."""
    diffs = list(paired_differences(values, reference).values())
    if not diffs:
        return "n/a"
    mean, std = mean_std(diffs)
    se = std / math.sqrt(len(diffs))
    mark = "*" if len(diffs) > 1 and abs(mean) > 2 * std else ""
    return f"{mean:+.4f} ± {se:.4f}{mark}"


def per_seed(values: Values, signed: bool = False) -> str:
    """``"0.7012 / 0.6950 / 0.6921"``: the values in seed order (``signed``: with their sign)."""
    return " / ".join(f"{values[s]:+.4f}" if signed else f"{values[s]:.4f}" for s in sorted(values))


def parse_cell(text: str) -> tuple[float, float] | None:
    """``"0.7940 ± 0.0057"`` or ``"-0.0136 ± 0.0036*"`` -> (0.794, 0.0057); None for "-" or "n/a"."""
    parts = str(text).rstrip("*").split("±")
    if len(parts) != 2:
        return None
    return float(parts[0]), float(parts[1])
