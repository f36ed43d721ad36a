"""Does an attention map point at the object? Its mass, and G_cut's candidate cells, on the foreground.

On images whose background is dark and flat (the embedded Fashion-MNIST garments), the
object is simply the bright pixels (:func:`foreground_mask`). :func:`attention_focus` then
measures, for one model, layer and attention definition, over a batch of images:

- **attention on foreground**: the share of the attention mass that lands on foreground
  pixels. The attention is the probability map G_cut cuts on, on the layer's own cells (see
  :func:`attention_grid`); each pixel takes its cell's probability, renormalised over the image;
- **foreground area**: the share of pixels that are foreground, which is what a uniform map
  would score. The **lift** is the ratio of the two (1.0: no better than uniform);
- **candidate precision**: the foreground share of the pixels of the cells G_cut may cut
  (``select="mean"``: cells above the mean), averaged over the images that have any, against
  the same area baseline.

Both the script ``benchmarks/attention_focus.py`` and the study's tables import this module
(``from benchmarks.focus import attention_focus, foreground_mask`` from the repository root,
``from focus import ...`` from a script in this folder); it imports only the library.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gg_augment.attention import attention_source_for
from gg_augment.functional import candidate_cells, upsample_cells

__all__ = ["FOREGROUND_THRESHOLD", "attention_focus", "attention_grid", "foreground_mask"]

#: A pixel is foreground when its min-max scaled intensity in its image exceeds this.
FOREGROUND_THRESHOLD = 0.1


def foreground_mask(images: Tensor, threshold: float = FOREGROUND_THRESHOLD) -> Tensor:
    """The object's pixels of dark-background images: intensity above ``threshold`` after
    scaling each image's first channel to [0, 1] by its own minimum and maximum.

    The scaling makes the mask the same for raw images and for images normalised by any
    positive scale and shift (the embedded data's standardisation), so either may be passed.

    Args:
        images: grey or replicated-grey images.
        threshold: in [0, 1).

    Returns:
        A float mask, 1.0 on the foreground (an image of one flat value has none).

    Shape:
        - images: (N, C, H, W) or (N, H, W)
        - output: (N, H, W)

    Examples:
        >>> images = torch.zeros(1, 1, 4, 4)
        >>> images[..., 1:3, 1:3] = 0.8
        >>> foreground_mask(images).sum().item()
        4.0
    """
    if not isinstance(images, Tensor):
        raise TypeError(f"images must be a torch.Tensor; got {type(images).__name__}")
    if images.ndim not in (3, 4):
        raise ValueError(f"images must have shape (N, C, H, W) or (N, H, W); got {tuple(images.shape)}")
    if not images.is_floating_point():
        raise TypeError(f"images must be a float tensor; got {images.dtype}")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold < 1:
        raise ValueError(f"threshold must be a number in [0, 1); got {threshold!r}")
    grey = (images[:, 0] if images.ndim == 4 else images).float()
    low, high = grey.amin(dim=(1, 2), keepdim=True), grey.amax(dim=(1, 2), keepdim=True)
    return ((grey - low) / (high - low).clamp_min(1e-6) > threshold).float()


def attention_grid(
    model: nn.Module, layer: str, images: Tensor, *, definition: str = "mean", temperature: float = 1.0
) -> Tensor:
    """The probability map G_cut would cut on, on the layer's own cells.

    Built by the same public call GCut makes (:func:`gg_augment.attention.attention_source_for`
    with ``definition`` and ``temperature``), so the logits are divided by the temperature
    before the softmax exactly as in training; ``grid_size=None`` keeps the layer's grid
    instead of resizing it to GCut's cut grid.

    Shape:
        - images: (N, C, H, W), prepared as the model was trained
        - output: (N, h, w) float32, each map summing to 1
    """
    source = attention_source_for(model, layer=layer, definition=definition, temperature=temperature)
    return source.grid(images, None, None)


def _focus_terms(attention: Tensor, foreground: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Per image: attention share on the foreground, foreground area, candidate precision
    (NaN for an image without candidates)."""
    size = (foreground.shape[-2], foreground.shape[-1])
    per_pixel = F.interpolate(attention[:, None], size=size, mode="nearest")[:, 0]
    per_pixel = per_pixel / per_pixel.flatten(1).sum(1).view(-1, 1, 1)
    share = (per_pixel * foreground).flatten(1).sum(1)
    area = foreground.flatten(1).mean(1)
    candidates = upsample_cells(candidate_cells(attention, "mean"), size)[:, 0].float()
    candidate_pixels = candidates.flatten(1).sum(1)
    on_foreground = (candidates * foreground).flatten(1).sum(1)
    precision = torch.where(candidate_pixels > 0, on_foreground / candidate_pixels.clamp_min(1), math.nan)
    return share, area, precision


def attention_focus(
    model: nn.Module,
    layer: str,
    images: Tensor,
    foreground: Tensor,
    definition: str = "mean",
    temperature: float = 1.0,
    *,
    batch_size: int = 256,
) -> dict[str, object]:
    """How much of one attention definition's map lands on the object (see the module docs).

    Args:
        model: the network, on the images' device (its train/eval mode is left as it was).
        layer: the name of the layer whose output gives the attention.
        images: the images, prepared as the model was trained.
        foreground: 1.0 on the object's pixels (:func:`foreground_mask` of the images).
        definition: ``"mean"`` (the authors' channel mean) or ``"energy"`` (Σ_c A_c²/C).
        temperature: the softmax temperature of the attention logits, > 0 (as GCut's).
        batch_size: images per attention pass.

    Returns:
        ``layer``, ``definition``, ``temperature``, ``map`` ("hxw"), and the means over the
        images of ``attention_on_foreground``, ``foreground_area``, ``lift`` (the first over
        the second) and ``candidate_precision`` (NaN when no image has a candidate cell: a
        uniform map, which G_cut never cuts), as floats.

    Shape:
        - images: (N, C, H, W)
        - foreground: (N, H, W)
    """
    if not isinstance(images, Tensor) or images.ndim != 4:
        raise ValueError(f"images must be a (N, C, H, W) tensor; got {getattr(images, 'shape', type(images).__name__)}")
    if images.shape[0] == 0:
        raise ValueError("images must hold at least one image; got 0")
    expected = (images.shape[0], images.shape[2], images.shape[3])
    if not isinstance(foreground, Tensor) or tuple(foreground.shape) != expected:
        raise ValueError(
            f"foreground must have shape (N, H, W) = {expected}, matching images; got {getattr(foreground, 'shape', foreground)}"
        )
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1; got {batch_size!r}")
    foreground = foreground.to(images.device, torch.float32)
    terms = []
    grid_shape: tuple[int, ...] = ()
    for start in range(0, images.shape[0], batch_size):
        attention = attention_grid(
            model, layer, images[start : start + batch_size], definition=definition, temperature=temperature
        )
        grid_shape = tuple(attention.shape[1:])
        terms.append(_focus_terms(attention, foreground[start : start + batch_size]))
    share, area, precision = (torch.cat(parts) for parts in zip(*terms))
    has_candidates = ~precision.isnan()
    candidate_precision = precision[has_candidates].mean() if bool(has_candidates.any()) else torch.tensor(math.nan)
    return {
        "layer": layer,
        "definition": definition,
        "temperature": float(temperature),
        "map": f"{grid_shape[0]}x{grid_shape[1]}",
        "attention_on_foreground": float(share.mean()),
        "foreground_area": float(area.mean()),
        "lift": float(share.mean() / area.mean()),
        "candidate_precision": float(candidate_precision),
    }
