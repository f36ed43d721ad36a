"""Attention extractors: turn a model's own features into a spatial saliency map.

An extractor holds a *reference* to the model (it is not an ``nn.Module``, so wrapping a model
in one never adds its parameters to an augmentation's state). It exposes:

- ``extract(x)``: one forward pass in eval mode without gradients, returning attention logits
  (B, h, w). The model's train/eval mode is restored afterwards, and the pass stops as soon
  as the hooked layer has run, so the layers after it cost nothing.
- ``features_to_logits(features)``: the same reduction applied to features captured
  elsewhere, e.g. by the attention cache from the normal training forward pass.
- ``layer``: the hooked module, so others can register their own hooks on it.

Logits become a probability map over the cut grid in
:func:`gg_augment.functional.attention_to_grid` (nearest resize, then softmax).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = [
    "AttentionExtractor",
    "FeatureMapExtractor",
    "ViTTokenExtractor",
    "attention_extractor_for",
    "resnet_extractor",
    "vit_extractor",
]


class _StopForward(Exception):
    """Raised from a hook to end an attention-only forward pass early."""


def _resolve_layer(model: nn.Module, layer: str | nn.Module) -> nn.Module:
    if isinstance(layer, nn.Module):
        if not any(m is layer for m in model.modules()):
            raise ValueError("layer must be a submodule of model; got a module that is not in it")
        return layer
    if not isinstance(layer, str):
        raise TypeError(f"layer must be a layer name (str) or an nn.Module; got {type(layer).__name__}")
    try:
        return model.get_submodule(layer)
    except AttributeError:
        names = [name for name, _ in model.named_modules() if name][:12]
        raise ValueError(
            f"layer {layer!r} not found in {type(model).__name__}; some layer names: {names}"
        ) from None


def feature_map_logits(features: Tensor) -> Tensor:
    """CNN attention logits: the channel mean of a (B, C, h, w) feature map -> (B, h, w)."""
    if features.ndim != 4:
        raise ValueError(f"the hooked layer must output a (B, C, h, w) feature map; got {tuple(features.shape)}")
    return features.float().mean(dim=1)


def token_logits(features: Tensor, num_prefix_tokens: int = 1) -> Tensor:
    """ViT attention logits: ⟨CLS, patch_i⟩ of (B, prefix + N, D) tokens -> (B, √N, √N)."""
    if features.ndim != 3:
        raise ValueError(f"the hooked layer must output (B, tokens, D); got {tuple(features.shape)}")
    tokens = features.float()
    cls_token = tokens[:, 0]
    patches = tokens[:, num_prefix_tokens:]
    side = math.isqrt(patches.shape[1])
    if side * side != patches.shape[1]:
        raise ValueError(f"expected a square patch grid; got {patches.shape[1]} patch tokens")
    scores = torch.einsum("bd,bnd->bn", cls_token, patches)
    return scores.view(-1, side, side)


class AttentionExtractor:
    """Base class: hook a layer, reduce its output to (B, h, w) attention logits."""

    #: Extractors return scores for a softmax, not a non-negative density.
    returns_logits = True
    #: Candidate-selection rule that suits this family: mean for CNNs, top-k for ViTs.
    default_select = "mean"
    #: Whether G_cut should cut on the map's own grid (a ViT's patch grid) by default.
    native_grid = False

    def __init__(self, model: nn.Module, layer: str | nn.Module) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module; got {type(model).__name__}")
        self.model = model
        self.layer = _resolve_layer(model, layer)
        self.layer_name = next((name for name, module in model.named_modules() if module is self.layer), "?")

    def features_to_logits(self, features: Tensor) -> Tensor:
        raise NotImplementedError

    def attention_logits(self, features: Tensor, image_size: tuple[int, int] | None = None) -> Tensor:
        """:meth:`features_to_logits`, refusing a map too coarse to cut (fewer than 2 cells).

        A 1×1 map (a ResNet's ``layer4`` at 32 px, say) gives every sample the same single
        cell: G_cut would never cut and report retention 1 for everything. That must not
        pass silently.
        """
        logits = self.features_to_logits(features)
        height, width = logits.shape[-2], logits.shape[-1]
        if height * width < 2:
            at = f" at {image_size[0]}x{image_size[1]} input" if image_size is not None else ""
            raise ValueError(
                f"the attention layer {self.layer_name!r} of {type(self.model).__name__} gives a {height}x{width} "
                f"map{at}: G_cut needs at least 2 cells to choose from. Use an earlier layer "
                f"(layer='...', e.g. the stage before), larger images, or a model with less downsampling"
            )
        return logits

    def _check_input(self, x: Tensor) -> None:
        weight = next((p for p in self.model.parameters() if p.is_floating_point()), None)
        if weight is None:
            return
        if x.device != weight.device:
            raise ValueError(f"x must be on the model's device ({weight.device}) for the attention pass; got {x.device}")
        autocast = torch.is_autocast_enabled(x.device.type) if x.device.type in ("cpu", "cuda") else False
        if x.dtype != weight.dtype and not autocast:
            raise TypeError(
                f"x has dtype {x.dtype} but {type(self.model).__name__}'s parameters are {weight.dtype}: "
                f"cast the batch (x.to({weight.dtype})) or the model, or run under torch.autocast"
            )

    @torch.no_grad()
    def extract(self, x: Tensor) -> Tensor:
        """One extra forward pass, in eval mode, without gradients; the mode is restored."""
        self._check_input(x)
        captured: list[Tensor] = []

        def hook(_module: nn.Module, _inputs: object, output: Tensor) -> None:
            captured.append(output[0] if isinstance(output, tuple) else output)
            raise _StopForward

        was_training = self.model.training
        handle = self.layer.register_forward_hook(hook)
        self.model.eval()
        try:
            self.model(x)
        except _StopForward:
            pass
        finally:
            handle.remove()
            self.model.train(was_training)
        if not captured:
            raise RuntimeError(
                f"the hooked layer {type(self.layer).__name__} did not run in {type(self.model).__name__}.forward"
            )
        return self.attention_logits(captured[0], (x.shape[-2], x.shape[-1]))

    __call__ = extract

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={type(self.model).__name__}, layer={self.layer_name!r})"


class FeatureMapExtractor(AttentionExtractor):
    """CNN attention: the channel mean of a (B, C, h, w) feature map.

    Examples:
        >>> net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
        >>> FeatureMapExtractor(net, "1")(torch.randn(2, 3, 16, 16)).shape
        torch.Size([2, 16, 16])
    """

    def features_to_logits(self, features: Tensor) -> Tensor:
        return feature_map_logits(features)


class ViTTokenExtractor(AttentionExtractor):
    """ViT attention: ⟨CLS, patch_i⟩ over the tokens of the hooked layer's output.

    The layer outputs (B, 1 + N, D) with the class token first and N = gh·gw patch tokens
    (torchvision's ``VisionTransformer.encoder``, after its final LayerNorm).
    """

    default_select = "topk"
    native_grid = True

    def __init__(
        self, model: nn.Module, layer: str | nn.Module = "encoder", num_prefix_tokens: int = 1
    ) -> None:
        super().__init__(model, layer)
        self.num_prefix_tokens = int(num_prefix_tokens)

    def features_to_logits(self, features: Tensor) -> Tensor:
        return token_logits(features, self.num_prefix_tokens)


def resnet_extractor(model: nn.Module, layer: str = "layer4") -> FeatureMapExtractor:
    """torchvision ResNet (or any model with a ``layer4`` stage): the last stage's features."""
    return FeatureMapExtractor(model, layer)


def vit_extractor(model: nn.Module, layer: str = "encoder") -> ViTTokenExtractor:
    """torchvision ``vit_b_16`` / ``vit_b_32``: CLS·patch tokens of the encoder output."""
    return ViTTokenExtractor(model, layer)


def attention_extractor_for(model: nn.Module, layer: str | nn.Module | None = None) -> AttentionExtractor:
    """Pick an extractor: a named layer (feature map), a ViT, or a ResNet-style model.

    With ``layer`` given, its output decides the reduction at run time: 4-D feature maps use
    the channel mean; 3-D token sequences use CLS·patch.
    """
    if layer is not None:
        return _AutoLayerExtractor(model, layer)
    named = getattr(model, "attention_layer", None)  # e.g. gg_augment.models.RetrievalNet
    if isinstance(named, str):
        inner = model.get_submodule(named.rpartition(".")[0]) if "." in named else model
        if hasattr(inner, "class_token"):
            return ViTTokenExtractor(model, named)
        if getattr(inner, "tokens", False):  # e.g. gg_augment.models.TimmBackbone over a ViT
            return ViTTokenExtractor(model, named, num_prefix_tokens=int(getattr(inner, "num_prefix_tokens", 1)))
        return FeatureMapExtractor(model, named)
    if hasattr(model, "class_token") and hasattr(model, "encoder"):
        return vit_extractor(model)
    if hasattr(model, "layer4"):
        return resnet_extractor(model)
    raise ValueError(
        f"cannot find the attention layer of {type(model).__name__}: pass layer='<module name>' "
        "(the last convolutional stage of a CNN, or the token output of a ViT)"
    )


class _AutoLayerExtractor(AttentionExtractor):
    """A named layer whose output decides the reduction: feature maps or tokens."""

    def features_to_logits(self, features: Tensor) -> Tensor:
        if features.ndim == 4:
            return feature_map_logits(features)
        if features.ndim == 3:
            return token_logits(features)
        raise ValueError(
            f"the hooked layer must output (B, C, h, w) or (B, tokens, D); got {tuple(features.shape)}"
        )
