"""What every retention augmentation shares: probability, generator, validation switch."""

from __future__ import annotations

import torch
from torch import nn

from .._checks import check_generator, check_range


class RetentionAugmentation(nn.Module):
    """Base for modules returning ``(x_aug, retention)``.

    Args:
        p: probability that a sample is augmented; the others pass through with r = 1.
        generator: optional ``torch.Generator`` on the input's device; all randomness is drawn
            from it (or from the device's default generator when None).
        validate_args: check tensor *values* of inputs (finite, ranges). These checks need a
            host sync on CUDA; turn them off for CUDA graphs or the last bit of speed. Shape
            and dtype checks always run, they are free.
    """

    def __init__(
        self,
        p: float = 1.0,
        generator: torch.Generator | None = None,
        validate_args: bool = True,
    ) -> None:
        super().__init__()
        self.p = check_range(p, "p", 0.0, 1.0)
        self.generator = check_generator(generator)
        self.validate_args = bool(validate_args)

    def _generator_for(
        self, device: torch.device, generator: torch.Generator | None
    ) -> torch.Generator | None:
        return check_generator(generator if generator is not None else self.generator, device)
