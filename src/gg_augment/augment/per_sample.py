"""One image at a time, for Dataset-side (CPU DataLoader) pipelines such as torchvision v2's."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from ._base import RetentionAugmentation

__all__ = ["PerSample"]


class PerSample(nn.Module):
    """A batched retention augmentation applied to one image: ``image -> (image, retention)``.

    It runs the wrapped module on a batch of one, so its draws come from exactly the same
    distributions as the batched module's (the tests compare the two). Put it last in a
    ``torchvision.transforms.v2.Compose`` (or before transforms that pass a retention scalar
    through untouched): it returns a tuple. A ``tv_tensors.Image`` input comes back as one.
    For batch pipelines with transforms after GG, see :class:`~gg_augment.ImageOnly`.

    In DataLoader workers leave the module's ``generator`` unset: torch seeds each worker's
    global RNG differently, while a shared generator would be copied into every worker in
    the same state and draw the same shifts in all of them.

    Args:
        augmentation: a :class:`~gg_augment.GT` or :class:`~gg_augment.RandomErasingRetention`
            (a module that needs no context, e.g. not a G_cut reading a model's attention).

    Shape:
        - image: (C, H, W), floating point
        - output: ``(image, retention)``, (C, H, W) and a 0-dim tensor

    Examples:
        >>> from torchvision.transforms import v2
        >>> transform = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True), PerSample(GT(sigma=0.1))])
    """

    def __init__(self, augmentation: RetentionAugmentation) -> None:
        super().__init__()
        if not isinstance(augmentation, RetentionAugmentation):
            raise TypeError(f"augmentation must be a retention augmentation such as GT; got {type(augmentation).__name__}")
        if augmentation.context_keys:
            raise ValueError(
                f"augmentation {type(augmentation).__name__} needs per-batch context {list(augmentation.context_keys)}; "
                "a per-sample transform can only wrap modules that need none (GT, RandomErasingRetention)"
            )
        self.augmentation = augmentation

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor]:
        if not isinstance(image, Tensor):
            raise TypeError(f"image must be a (C, H, W) tensor (use v2.ToImage() and v2.ToDtype first); got {type(image).__name__}")
        if image.ndim != 3:
            raise ValueError(f"image must have shape (C, H, W); got {tuple(image.shape)}")
        augmented, retention = self.augmentation(image.as_subclass(Tensor).unsqueeze(0))
        out: Any = augmented[0]
        if type(image) is not Tensor:  # a tv_tensors.Image (or other subclass) keeps its type
            out = out.as_subclass(type(image))
        return out, retention[0]

    def extra_repr(self) -> str:
        return "one image at a time"


