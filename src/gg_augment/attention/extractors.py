"""Attention extractors: turn a model's own features into a spatial saliency map.

An extractor holds a *reference* to the model (it is not an ``nn.Module``, so wrapping a model
in one never adds its parameters to an augmentation's state). It exposes:

- ``extract(x)``: one forward pass in eval mode without gradients, returning attention logits
  (B, h, w). Every submodule's own train/eval mode is restored afterwards (a BatchNorm the
  user froze stays frozen), and the pass stops as soon as the hooked layer has run, so the
  layers after it cost nothing.
- ``features_to_logits(features)``: the same reduction applied to features captured
  elsewhere, e.g. by the attention cache from the normal training forward pass.
- ``layer``: the hooked module, so others can register their own hooks on it.

Logits become a probability map over the cut grid in
:func:`gg_augment.functional.attention_to_grid` (nearest resize, then softmax).

A CNN feature map (B, C, h, w) reduces to logits by one of ``DEFINITIONS``:

- ``"mean"``: the authors' channel mean, (1/C)·Σ_c A_c (the default);
- ``"energy"``: attention transfer's spatial energy Σ_c A_c², divided by C so its scale
  matches the mean's (a constant factor: the ranking of cells is that of Σ_c A_c²); never
  negative, peaked where features fire.

Every extractor also takes a softmax ``temperature`` T: the logits are divided by T, so
T > 1 flattens the map and T < 1 sharpens it (1 changes nothing).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

__all__ = [
    "DEFINITIONS",
    "AttentionExtractor",
    "FeatureMapExtractor",
    "ViTTokenExtractor",
    "attention_extractor_for",
    "resnet_extractor",
    "vit_extractor",
]


#: The reductions of a CNN feature map to attention logits (see the module docs).
DEFINITIONS = ("mean", "energy")


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


def feature_map_logits(features: Tensor, definition: str = "mean") -> Tensor:
    """CNN attention logits of a (B, C, h, w) feature map -> (B, h, w): the channel mean
    (``"mean"``) or the mean of squares, Σ_c A_c² / C (``"energy"``)."""
    if features.ndim != 4:
        raise ValueError(f"the hooked layer must output a (B, C, h, w) feature map; got {tuple(features.shape)}")
    features = features.float()
    if definition == "energy":
        return features.square().mean(dim=1)
    return features.mean(dim=1)


def _check_definition(definition: object) -> str:
    if definition not in DEFINITIONS:
        raise ValueError(f"definition must be one of {list(DEFINITIONS)}; got {definition!r}")
    return str(definition)


def _check_temperature(temperature: object) -> float:
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not math.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"temperature must be a finite number > 0; got {temperature!r}")
    return float(temperature)


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Every submodule in eval mode inside; each one's own mode restored after (so a layer
    the user froze with ``.eval()`` under a training model stays in eval mode)."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


def _first_conv(model: nn.Module) -> nn.Conv2d | None:
    return next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)


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
    """Base class: hook a layer, reduce its output to (B, h, w) attention logits.

    Args:
        model: the model whose features give the attention (held by reference).
        layer: the hooked layer's name or module.
        temperature: the logits are divided by it (the softmax temperature), > 0.
    """

    #: Extractors return scores for a softmax, not a non-negative density.
    returns_logits = True
    #: Candidate-selection rule that suits this family: mean for CNNs, top-k for ViTs.
    default_select = "mean"
    #: Whether G_cut should cut on the map's own grid (a ViT's patch grid) by default.
    native_grid = False

    def __init__(self, model: nn.Module, layer: str | nn.Module, *, temperature: float = 1.0) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module; got {type(model).__name__}")
        self.temperature = _check_temperature(temperature)
        self.model = model
        self.layer = _resolve_layer(model, layer)
        self.layer_name = next((name for name, module in model.named_modules() if module is self.layer), "?")

    def reduce(self, features: Tensor) -> Tensor:
        """The subclass's reduction of the layer's output to (B, h, w) logits."""
        raise NotImplementedError

    def features_to_logits(self, features: Tensor) -> Tensor:
        """:meth:`reduce`, divided by the temperature (skipped at 1: bit-identical)."""
        logits = self.reduce(features)
        return logits if self.temperature == 1.0 else logits / self.temperature

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

        handle = self.layer.register_forward_hook(hook)
        try:
            with eval_mode(self.model):
                self.model(x)
        except _StopForward:
            pass
        except RuntimeError as error:
            # Explained only after the model refused it, so an unusual model is never refused
            # by a guess about its first layer.
            conv = _first_conv(self.model)
            if conv is not None and x.ndim == 4 and x.shape[1] != conv.in_channels:
                raise ValueError(
                    f"x has {x.shape[1]} channel(s) but {type(self.model).__name__} takes {conv.in_channels} "
                    f"(its first convolution) in the attention pass; got x of shape {tuple(x.shape)}"
                ) from error
            raise
        finally:
            handle.remove()
        if not captured:
            raise RuntimeError(
                f"the hooked layer {type(self.layer).__name__} did not run in {type(self.model).__name__}.forward"
            )
        return self.attention_logits(captured[0], (x.shape[-2], x.shape[-1]))

    __call__ = extract

    def _repr_extra(self) -> str:
        return "" if self.temperature == 1.0 else f", temperature={self.temperature}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={type(self.model).__name__}, layer={self.layer_name!r}{self._repr_extra()})"


class FeatureMapExtractor(AttentionExtractor):
    """CNN attention: a (B, C, h, w) feature map reduced over channels by ``definition``
    (``"mean"``, the authors'; ``"energy"``, attention transfer's; see the module docs).

    Examples:
        >>> net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
        >>> FeatureMapExtractor(net, "1", definition="energy")(torch.randn(2, 3, 16, 16)).shape
        torch.Size([2, 16, 16])
    """

    def __init__(
        self, model: nn.Module, layer: str | nn.Module, *, definition: str = "mean", temperature: float = 1.0
    ) -> None:
        self.definition = _check_definition(definition)
        super().__init__(model, layer, temperature=temperature)

    def reduce(self, features: Tensor) -> Tensor:
        return feature_map_logits(features, self.definition)

    def _repr_extra(self) -> str:
        extra = "" if self.definition == "mean" else f", definition={self.definition!r}"
        return extra + super()._repr_extra()


class ViTTokenExtractor(AttentionExtractor):
    """ViT attention: ⟨CLS, patch_i⟩ over the tokens of the hooked layer's output.

    The layer outputs (B, 1 + N, D) with the class token first and N = gh·gw patch tokens
    (torchvision's ``VisionTransformer.encoder``, after its final LayerNorm).
    """

    default_select = "topk"
    native_grid = True

    def __init__(
        self, model: nn.Module, layer: str | nn.Module = "encoder", num_prefix_tokens: int = 1, *, temperature: float = 1.0
    ) -> None:
        super().__init__(model, layer, temperature=temperature)
        self.num_prefix_tokens = int(num_prefix_tokens)

    def reduce(self, features: Tensor) -> Tensor:
        return token_logits(features, self.num_prefix_tokens)


def resnet_extractor(
    model: nn.Module, layer: str = "layer4", *, definition: str = "mean", temperature: float = 1.0
) -> FeatureMapExtractor:
    """torchvision ResNet (or any model with a ``layer4`` stage): the last stage's features."""
    return FeatureMapExtractor(model, layer, definition=definition, temperature=temperature)


def vit_extractor(model: nn.Module, layer: str = "encoder", *, temperature: float = 1.0) -> ViTTokenExtractor:
    """torchvision ``vit_b_16`` / ``vit_b_32``: CLS·patch tokens of the encoder output."""
    return ViTTokenExtractor(model, layer, temperature=temperature)


def _tokens_take_no_definition(definition: str) -> None:
    if definition != "mean":
        raise ValueError(
            f"definition={definition!r} reduces a CNN feature map over channels; this model's attention layer "
            "outputs ViT tokens (CLS·patch): leave definition='mean'"
        )


def attention_extractor_for(
    model: nn.Module, layer: str | nn.Module | None = None, *, definition: str = "mean", temperature: float = 1.0
) -> AttentionExtractor:
    """Pick an extractor: a named layer (feature map), a ViT, or a ResNet-style model.

    With ``layer`` given, its output decides the reduction at run time: 4-D feature maps use
    ``definition`` over channels; 3-D token sequences use CLS·patch. ``definition`` and
    ``temperature`` are explained in the module docs.
    """
    definition = _check_definition(definition)
    if layer is not None:
        return _AutoLayerExtractor(model, layer, definition=definition, temperature=temperature)
    named = getattr(model, "attention_layer", None)  # e.g. gg_augment.models.RetrievalNet
    if isinstance(named, str):
        inner = model.get_submodule(named.rpartition(".")[0]) if "." in named else model
        if hasattr(inner, "class_token"):
            _tokens_take_no_definition(definition)
            return ViTTokenExtractor(model, named, temperature=temperature)
        if getattr(inner, "tokens", False):  # e.g. gg_augment.models.TimmBackbone over a ViT
            _tokens_take_no_definition(definition)
            prefix = int(getattr(inner, "num_prefix_tokens", 1))
            return ViTTokenExtractor(model, named, num_prefix_tokens=prefix, temperature=temperature)
        return FeatureMapExtractor(model, named, definition=definition, temperature=temperature)
    if hasattr(model, "class_token") and hasattr(model, "encoder"):
        _tokens_take_no_definition(definition)
        return vit_extractor(model, temperature=temperature)
    if hasattr(model, "layer4"):
        return resnet_extractor(model, definition=definition, temperature=temperature)
    raise ValueError(
        f"cannot find the attention layer of {type(model).__name__}: pass layer='<module name>' "
        "(the last convolutional stage of a CNN, or the token output of a ViT)"
    )


class _AutoLayerExtractor(FeatureMapExtractor):
    """A named layer whose output decides the reduction: feature maps or tokens."""

    def reduce(self, features: Tensor) -> Tensor:
        if features.ndim == 4:
            return feature_map_logits(features, self.definition)
        if features.ndim == 3:
            _tokens_take_no_definition(self.definition)
            return token_logits(features)
        raise ValueError(
            f"the hooked layer must output (B, C, h, w) or (B, tokens, D); got {tuple(features.shape)}"
        )
