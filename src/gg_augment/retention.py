"""``SemanticRetention``: map raw retention r to the weight that softens the loss."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from ._checks import check_finite, check_positive, check_range, check_retention, check_tensor

__all__ = ["SemanticRetention"]

_SIGMOID_ONE = 1.0 / (1.0 + math.exp(-1.0))


class SemanticRetention(nn.Module):
    """Turn retention r ∈ [0, 1] into a loss weight w ∈ [p_min, 1].

    Curves:
        - ``"identity"`` (default): w = r, the authors' choice.
        - ``"power"``: w = 1 − (1 − p_min)(1 − r)^k, the Soft Augmentation curve
          (Liu et al., "Soft Augmentation for Image Classification", CVPR 2023).
        - a callable ``f(r) -> w``, applied elementwise.

    The optional ``sigmoid_below_half`` activation is the authors': it keeps w where w > 0.5
    and replaces it with σ(2w) − (σ(1) − 0.5) elsewhere. The two pieces meet at 0.5 and low
    retention is *lifted*, not pushed down: w(0) = 0.269, w(0.25) = 0.391, w(0.4) = 0.459 (a
    heavily cut sample still pulls at about a quarter strength). The result is clamped to
    [p_min, 1].

    Args:
        curve: ``"identity"``, ``"power"`` or a callable.
        p_min: the floor of the weight, in [0, 1].
        k: exponent of the power curve, > 0.
        sigmoid_below_half: apply the authors' activation after the curve.
        validate_args: check that r lies in [0, 1] (a host sync on CUDA).

    Shape:
        - retention: (B,)
        - output: (B,), same dtype

    Examples:
        >>> SemanticRetention("power", p_min=0.2, k=2)(torch.tensor([0.0, 0.5, 1.0]))
        tensor([0.2000, 0.8000, 1.0000])
    """

    def __init__(
        self,
        curve: str | Callable[[Tensor], Tensor] = "identity",
        p_min: float = 0.0,
        k: float = 2.0,
        sigmoid_below_half: bool = False,
        validate_args: bool = True,
    ) -> None:
        super().__init__()
        if isinstance(curve, str):
            if curve not in ("identity", "power"):
                raise ValueError(f"curve must be 'identity', 'power' or a callable; got {curve!r}")
        elif not callable(curve):
            raise TypeError(f"curve must be 'identity', 'power' or a callable; got {type(curve).__name__}")
        self.curve = curve
        self.p_min = check_range(p_min, "p_min", 0.0, 1.0)
        self.k = check_positive(k, "k")
        self.sigmoid_below_half = bool(sigmoid_below_half)
        self.validate_args = bool(validate_args)

    def forward(self, retention: Tensor) -> Tensor:
        retention = check_tensor(retention, "retention")
        if retention.ndim != 1:
            raise ValueError(f"retention must have shape (B,); got {tuple(retention.shape)}")
        check_retention(retention, retention.shape[0], "retention", self.validate_args)
        curve = self.curve
        if curve == "identity":
            weight = retention
        elif curve == "power":
            weight = 1.0 - (1.0 - self.p_min) * (1.0 - retention).pow(self.k)
        elif callable(curve):
            weight = curve(retention)
            if not isinstance(weight, Tensor) or weight.shape != retention.shape:
                raise ValueError(
                    f"curve(retention) must return a tensor of shape {tuple(retention.shape)}; "
                    f"got {getattr(weight, 'shape', type(weight).__name__)}"
                )
            if self.validate_args:
                check_finite(weight, "curve(retention)")
        if self.sigmoid_below_half:
            lifted = torch.sigmoid(2.0 * weight) - (_SIGMOID_ONE - 0.5)
            weight = torch.where(weight > 0.5, weight, lifted)
        return weight.clamp(self.p_min, 1.0)

    def extra_repr(self) -> str:
        curve = self.curve if isinstance(self.curve, str) else getattr(self.curve, "__name__", "callable")
        out = f"curve={curve!r}, p_min={self.p_min}"
        if self.curve == "power":
            out += f", k={self.k}"
        if self.sigmoid_below_half:
            out += ", sigmoid_below_half=True"
        return out
