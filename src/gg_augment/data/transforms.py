"""Per-method training transforms of the GG authors' protocol, batched and on-device.

In the authors' code each method picks its own training transform (their ``run.py`` flags
and data loaders), while queries and database always get resize → centre crop → normalise.
At image side S (the authors' 224; the resize is to round(S·256/224), their 256):

==============================  ==========================================================
method                          training transform
==============================  ==========================================================
``gt``, ``softcrop``            resize → centre crop S → flip → normalise, then G_t
``gcut``, ``gcut-approx``       random resized crop S → flip → normalise, then G_cut (the
                                crop's :class:`~gg_augment.View` reaches the cache)
``standard``                    random resized crop S → flip → normalise
``none``, authors               resize to (S, S): no centre crop, no flip → normalise
``none``, matched               resize → centre crop S → normalise (the queries' transform)
``erasing``, authors            resize → centre crop S → flip, **not normalised**, erasing
``erasing``, matched            resize → centre crop S → flip → normalise, erasing
``other``                       scale jitter → random resized crop S → flip → rotation 120°
==============================  ==========================================================

Images reach these transforms already normalised (every loader here normalises), so
"normalise" keeps them as they are and "not normalised" maps them back to pixels in [0, 1]
with the split's mean and std. A transform is two parts: :meth:`TrainingTransform.prepare`,
deterministic (resize, centre crop; at load time or in DataLoader workers), and ``forward``,
random and batched (scale jitter, crop, flip, rotation), which returns the images with their
view.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_choice, check_image_batch, check_int
from ..augment.crop import RandomResizedCropFlip
from ..functional._sampling import uniform
from ..view import View, as_view

__all__ = [
    "BASELINE_TREATMENTS",
    "TRAINING_METHODS",
    "TrainingTransform",
    "TransformOutput",
    "centre_crop",
    "paper_training_transform",
    "prepare_images",
    "resize",
    "resize_centre_crop",
    "training_base",
]

TRAINING_METHODS = ("none", "standard", "erasing", "softcrop", "gt", "gcut", "gcut-approx", "other")
#: ``"authors"``: ``none`` and ``erasing`` trained as the authors ran them; ``"matched"``: with
#: the queries' normalised resize + centre crop (and flip for erasing).
BASELINE_TREATMENTS = ("authors", "matched")
BASES = ("full", "resize", "centre-crop")


def resize(images: Tensor, size: int | tuple[int, int]) -> Tensor:
    """Bilinear, antialiased resize: an int sets the shorter side (aspect kept, as
    torchvision's ``Resize(int)``), a pair the exact (h, w). Works on (C, H, W) or (B, C, H, W)."""
    batch = images if images.ndim == 4 else images[None]
    height, width = batch.shape[-2:]
    if isinstance(size, int):
        if height <= width:
            target = (size, int(size * width / height))
        else:
            target = (int(size * height / width), size)
    else:
        target = (int(size[0]), int(size[1]))
    if (height, width) != target:
        batch = F.interpolate(batch, size=target, mode="bilinear", align_corners=False, antialias=True)
    return batch if images.ndim == 4 else batch[0]


def centre_crop(images: Tensor, size: int) -> Tensor:
    """The centre size×size crop, placed as torchvision's ``CenterCrop`` places it."""
    height, width = images.shape[-2:]
    if size > height or size > width:
        raise ValueError(f"size must be at most the image side ({height}x{width}); got {size}")
    top = int(round((height - size) / 2.0))
    left = int(round((width - size) / 2.0))
    return images[..., top : top + size, left : left + size].contiguous()


def resize_centre_crop(images: Tensor, size: int) -> Tensor:
    """The authors' query transform at side ``size``: resize the shorter side to
    round(size·256/224) (their 256 at 224), then the centre size×size crop."""
    return centre_crop(resize(images, round(size * 256 / 224)), size)


def prepare_images(images: Tensor, base: str, size: int) -> Tensor:
    """The deterministic part of a training transform (see :class:`TrainingTransform`'s
    ``base``), on (C, H, W) or (B, C, H, W) images."""
    if base == "resize":
        return resize(images, (size, size))
    if base == "centre-crop":
        return resize_centre_crop(images, size)
    check_choice(base, "base", BASES)
    return images


def training_base(method: str, baselines: str = "authors") -> str:
    """What a method's training images get before the random part, in the authors' protocol:
    ``"full"`` (random resized crop methods), ``"resize"`` (their ``none``) or
    ``"centre-crop"`` (the rest, and ``none`` matched to the queries)."""
    check_choice(method, "method", TRAINING_METHODS)
    check_choice(baselines, "baselines", BASELINE_TREATMENTS)
    if method in ("standard", "gcut", "gcut-approx", "other"):
        return "full"
    if method == "none" and baselines == "authors":
        return "resize"
    return "centre-crop"


class TransformOutput(NamedTuple):
    """What :class:`TrainingTransform` returns: the images and their view (None after a
    rotation, which no view describes)."""

    image: Tensor
    view: View | None


class TrainingTransform(nn.Module):
    """One method's training transform: :meth:`prepare` (deterministic), then ``forward``.

    Args:
        size: the output side S.
        base: what :meth:`prepare` does: ``"full"`` (nothing: the crop samples the whole
            loaded image), ``"resize"`` (to (S, S), no crop) or ``"centre-crop"`` (resize to
            round(S·256/224), centre crop S).
        crop: the random crop + flip (a flip-only one has ``scale=ratio=(1, 1)``), or None.
        scale_jitter: range of torchvision's ``ScaleJitter`` factor (their (0.1, 2.0)), or None.
        rotation: degrees of a uniform random rotation in [−rotation, rotation] (nearest
            sampling, black fill, as ``RandomRotation``); 0 for none.
        normalized: keep the normalised input (True) or map it back to pixels (False).
        mean, std: the per-channel statistics the input was normalised with; needed for
            ``normalized=False`` and for the rotation's black fill.
        generator: the source of every random draw (the crop's own, when given, is replaced).

    Shape:
        - x: (B, C, H, W) prepared images; index: (B,) dataset indices
        - output: :class:`TransformOutput` ``(image (B, C, S, S), view)``
    """

    def __init__(
        self,
        size: int,
        *,
        base: str = "full",
        crop: RandomResizedCropFlip | None = None,
        scale_jitter: tuple[float, float] | None = None,
        rotation: float = 0.0,
        normalized: bool = True,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.size = check_int(size, "size", minimum=1)
        self.base = check_choice(base, "base", BASES)
        if crop is not None and not isinstance(crop, RandomResizedCropFlip):
            raise TypeError(f"crop must be a RandomResizedCropFlip or None; got {type(crop).__name__}")
        if crop is not None and crop.size != (self.size, self.size):
            raise ValueError(f"crop must output ({self.size}, {self.size}); got {crop.size}")
        if crop is None and base == "full":
            raise ValueError("base='full' needs a crop to bring the images to size x size; got crop=None")
        self.crop = crop
        if crop is not None and generator is not None:
            crop.generator = generator
        if scale_jitter is not None and not 0 < scale_jitter[0] <= scale_jitter[1]:
            raise ValueError(f"scale_jitter must be (low, high) with 0 < low <= high; got {scale_jitter}")
        self.scale_jitter = None if scale_jitter is None else (float(scale_jitter[0]), float(scale_jitter[1]))
        if not 0.0 <= rotation <= 180.0:
            raise ValueError(f"rotation must lie in [0, 180] degrees; got {rotation}")
        self.rotation = float(rotation)
        self.normalized = bool(normalized)
        if (mean is None) != (std is None):
            raise ValueError("mean and std must be given together")
        if not normalized and mean is None:
            raise ValueError("normalized=False needs the mean and std the input was normalised with")
        self.mean = None if mean is None else tuple(float(m) for m in mean)
        self.std = None if std is None else tuple(float(s) for s in std)
        self.generator = generator
        self._jitter_tables: dict[tuple[int, str], Tensor] = {}

    @property
    def steps(self) -> tuple[str, ...]:
        """The operations in order, named as the torchvision transforms they reproduce."""
        out: list[str] = []
        if self.base == "resize":
            out.append(f"Resize(({self.size}, {self.size}))")
        elif self.base == "centre-crop":
            out += [f"Resize({round(self.size * 256 / 224)})", f"CenterCrop({self.size})"]
        if self.scale_jitter is not None:
            out.append(f"ScaleJitter({self.scale_jitter})")
        if self.crop is not None:
            if self.crop.scale != (1.0, 1.0):
                out.append(f"RandomResizedCrop({self.size}, scale={self.crop.scale})")
            if self.crop.flip_p > 0:
                out.append(f"RandomHorizontalFlip({self.crop.flip_p})")
        if self.rotation:
            out.append(f"RandomRotation({self.rotation:g})")
        if self.normalized:
            out.append("Normalize")
        return tuple(out)

    def prepare(self, images: Tensor) -> Tensor:
        """The deterministic part, on (C, H, W) or (B, C, H, W) images."""
        return prepare_images(images, self.base, self.size)

    def forward(self, x: Tensor, index: Tensor | None = None) -> TransformOutput:
        x = check_image_batch(x)
        view = as_view(index, "index")
        if self.scale_jitter is not None:
            x = self._jitter(x)
        if self.crop is not None:
            x, view = self.crop(x, index=index)
        if self.rotation:
            x, view = self._rotate(x), None
        if not self.normalized:
            x = self._pixels(x)
        return TransformOutput(x, view)

    def _stats(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if self.mean is None or self.std is None:
            raise ValueError("this transform needs the mean and std the input was normalised with")
        shape = (1, -1, 1, 1)
        mean = torch.tensor(self.mean, device=x.device, dtype=x.dtype).view(shape)
        return mean, torch.tensor(self.std, device=x.device, dtype=x.dtype).view(shape)

    def _pixels(self, x: Tensor) -> Tensor:
        mean, std = self._stats(x)
        return x * std + mean

    def _rotate(self, x: Tensor) -> Tensor:
        """Rotate each image about its centre by its own angle, nearest sampling; what leaves
        the frame is black (pixel value 0, normalised when the input is)."""
        batch = x.shape[0]
        angle = (uniform((batch,), x.device, self.generator) * 2 - 1) * math.radians(self.rotation)
        cos, sin = torch.cos(angle), torch.sin(angle)
        zero = torch.zeros_like(cos)
        theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
        grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
        black = torch.zeros(1, x.shape[1], 1, 1, device=x.device, dtype=x.dtype)
        if self.mean is not None:
            mean, std = self._stats(x)
            black = -mean / std
        return F.grid_sample(x - black, grid, mode="nearest", padding_mode="zeros", align_corners=False) + black

    def _jitter_table(self, side: int, device: torch.device) -> Tensor:
        """(side + 1, side, side): entry h resamples a side-long axis down to h and back (the
        identity for h = side; entry 0 unused); built once per side and device."""
        key = (side, str(device))
        if key not in self._jitter_tables:
            eye = torch.eye(side, device=device)
            table = eye.expand(side + 1, side, side).clone()
            for small in range(1, side):
                down = F.interpolate(eye[None, None], size=(small, side), mode="bilinear", antialias=True, align_corners=False)[0, 0]
                up = F.interpolate(torch.eye(small, device=device)[None, None], size=(side, small), mode="bilinear", align_corners=False)[0, 0]
                table[small] = up @ down
            self._jitter_tables[key] = table
        return self._jitter_tables[key]

    def _jitter(self, x: Tensor) -> Tensor:
        """ScaleJitter before a crop: each image loses the resolution of its rescale to
        int(side·r), r ~ U(scale_jitter); r ≥ 1 changes nothing that the crop does not redo.
        One batched matrix product per axis (tables are looked up, not built, per step)."""
        batch, _, height, width = x.shape
        low, high = self.scale_jitter or (1.0, 1.0)
        factor = low + (high - low) * uniform((batch,), x.device, self.generator)
        rows = self._jitter_table(height, x.device)[(height * factor).long().clamp(1, height)]
        cols = self._jitter_table(width, x.device)[(width * factor).long().clamp(1, width)]
        return rows.to(x.dtype).unsqueeze(1) @ x @ cols.to(x.dtype).transpose(1, 2).unsqueeze(1)

    def extra_repr(self) -> str:
        return f"size={self.size}, steps={list(self.steps)}"


def paper_training_transform(
    method: str,
    size: int,
    *,
    baselines: str = "authors",
    crop_scale: float = 0.08,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    generator: torch.Generator | None = None,
) -> TrainingTransform:
    """The training transform of ``method`` in the authors' protocol (see the module table).

    Args:
        method: one of :data:`TRAINING_METHODS`.
        size: the image side S.
        baselines: ``"authors"`` or ``"matched"`` (changes ``none`` and ``erasing`` only).
        crop_scale: the smallest area share of the random resized crop (torchvision's 0.08).
        mean, std: the statistics the images were normalised with (needed for the authors'
            un-normalised erasing and for ``other``'s black fill).
        generator: the source of every random draw.

    Examples:
        >>> paper_training_transform("gcut", 224).steps
        ('RandomResizedCrop(224, scale=(0.08, 1.0))', 'RandomHorizontalFlip(0.5)', 'Normalize')
        >>> paper_training_transform("none", 224).steps
        ('Resize((224, 224))', 'Normalize')
    """
    check_int(size, "size", minimum=1)

    def make(base: str, crop: RandomResizedCropFlip | None = None, **options: Any) -> TrainingTransform:
        return TrainingTransform(size, base=base, crop=crop, mean=mean, std=std, generator=generator, **options)

    def random_crop() -> RandomResizedCropFlip:
        return RandomResizedCropFlip(size, scale=(crop_scale, 1.0), ratio=(3 / 4, 4 / 3), generator=generator)

    def flip_only() -> RandomResizedCropFlip:
        return RandomResizedCropFlip(size, scale=(1.0, 1.0), ratio=(1.0, 1.0), generator=generator)

    base = training_base(method, baselines)
    if method == "other":
        return make(base, random_crop(), scale_jitter=(0.1, 2.0), rotation=120.0)
    if base == "full":
        return make(base, random_crop())
    if method == "none":
        return make(base)
    normalized = not (method == "erasing" and baselines == "authors")
    return make("centre-crop", flip_only(), normalized=normalized)
