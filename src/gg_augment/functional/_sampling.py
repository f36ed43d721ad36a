"""On-device samplers shared by the augmentations' parameter generators.

Everything draws from ``torch.rand``/``torch.randn`` with an optional generator, so a
parameter draw is one kernel per tensor and never leaves the device.
"""

from __future__ import annotations

import torch
from torch import Tensor

# Keep the uniform draw strictly inside (0, 1): ndtri(0) = -inf would turn a legal draw into NaN.
_EPS = 1e-7


def uniform(
    shape: tuple[int, ...],
    device: torch.device,
    generator: torch.Generator | None = None,
) -> Tensor:
    """U(0, 1) in float32 on ``device``."""
    return torch.rand(shape, device=device, generator=generator, dtype=torch.float32)


def truncated_normal(
    std: Tensor | float,
    bound: Tensor | float,
    shape: tuple[int, ...],
    device: torch.device,
    generator: torch.Generator | None = None,
) -> Tensor:
    """N(0, std²) truncated to [-bound, bound], by inverse-CDF sampling (no rejection loop).

    With Φ the standard normal CDF and c = bound / std, draw u ~ U(Φ(-c), Φ(c)) and return
    std · Φ⁻¹(u). Computed in float64 so tails near the bound stay exact.
    """
    std_t = torch.as_tensor(std, dtype=torch.float64, device=device)
    bound_t = torch.as_tensor(bound, dtype=torch.float64, device=device)
    c = bound_t / std_t
    lo = torch.special.ndtr(-c)
    hi = torch.special.ndtr(c)
    u = uniform(shape, device, generator).double()
    p = (lo + (hi - lo) * u).clamp(_EPS, 1 - _EPS)
    return (std_t * torch.special.ndtri(p)).clamp(-bound_t, bound_t)


def truncated_half_normal(
    upper: Tensor,
    device: torch.device,
    generator: torch.Generator | None = None,
) -> Tensor:
    """|z| for z ~ N(0, 1), truncated to |z| < ``upper`` (elementwise), by inverse CDF.

    |z| has CDF 2Φ(t) − 1 on t ≥ 0, so draw v ~ U(0, 2Φ(upper) − 1) and return
    Φ⁻¹((1 + v) / 2). ``upper`` = +inf gives the plain half-normal.
    """
    upper = upper.double()
    cdf_upper = 2 * torch.special.ndtr(upper) - 1
    v = uniform(tuple(upper.shape), device, generator).double() * cdf_upper
    p = ((1 + v) / 2).clamp(0.5, 1 - _EPS)
    return torch.special.ndtri(p)


def bernoulli_mask(
    p: float,
    batch_size: int,
    device: torch.device,
    generator: torch.Generator | None = None,
) -> Tensor:
    """(B,) bool: which samples the augmentation is applied to."""
    if p >= 1.0:
        return torch.ones(batch_size, dtype=torch.bool, device=device)
    if p <= 0.0:
        return torch.zeros(batch_size, dtype=torch.bool, device=device)
    return uniform((batch_size,), device, generator) < p
