"""Extractors on real torchvision architectures (random weights: no downloads)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gg_augment import GCut, attention_extractor_for, resnet_extractor, vit_extractor
from gg_augment.attention import FeatureMapExtractor, ViTTokenExtractor
from gg_augment.functional import attention_to_grid

try:
    import torchvision
except Exception:  # a CUDA torchvision wheel over a CPU torch fails at import, not just missing
    torchvision = None

needs_torchvision = pytest.mark.skipif(torchvision is None, reason="torchvision is not importable")


@needs_torchvision
def test_resnet_extractor_uses_the_last_stage(device):
    model = torchvision.models.resnet18(num_classes=10).to(device)
    logits = resnet_extractor(model)(torch.randn(2, 3, 64, 64, device=device))
    assert logits.shape == (2, 2, 2)  # 64 / 32
    features = {}
    model.layer4.register_forward_hook(lambda _m, _i, out: features.setdefault("x", out))
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, 64, 64, device=device))
    torch.testing.assert_close(
        resnet_extractor(model)(torch.zeros(1, 3, 64, 64, device=device)), features["x"].mean(1)
    )


@needs_torchvision
def test_vit_extractor_is_cls_dot_patch(device):
    model = torchvision.models.vit_b_32(image_size=64, num_classes=10).to(device).eval()
    x = torch.randn(2, 3, 64, 64, device=device)
    logits = vit_extractor(model)(x)
    assert logits.shape == (2, 2, 2)
    with torch.no_grad():
        tokens = model.encoder(torch.cat([model.class_token.expand(2, -1, -1), model._process_input(x)], 1))
    expected = torch.einsum("bd,bnd->bn", tokens[:, 0], tokens[:, 1:]).view(2, 2, 2)
    torch.testing.assert_close(logits, expected, rtol=1e-4, atol=1e-3)


@needs_torchvision
def test_auto_detection_and_defaults():
    assert isinstance(attention_extractor_for(torchvision.models.resnet18()), FeatureMapExtractor)
    vit = torchvision.models.vit_b_32(image_size=64)
    assert isinstance(attention_extractor_for(vit), ViTTokenExtractor)
    assert GCut(vit).select == "topk"
    assert GCut(torchvision.models.resnet18()).select == "mean"


@needs_torchvision
def test_gcut_end_to_end_on_resnet_restores_train_mode():
    model = torchvision.models.resnet18(num_classes=10)
    model.train()
    x_aug, retention = GCut(model, grid_size=4)(torch.randn(4, 3, 64, 64))
    assert model.training and retention.shape == (4,)


def test_any_module_plus_layer_name_through_a_hook():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, stride=2, padding=1), nn.Flatten())
    extractor = attention_extractor_for(model, layer="2")
    logits = extractor(torch.randn(2, 3, 16, 16))
    assert logits.shape == (2, 8, 8)


def test_cnn_rule_is_resize_then_softmax():
    logits = torch.randn(2, 3, 3)
    grid = attention_to_grid(logits, (6, 6), logits=True)
    upsampled = logits.repeat_interleave(2, 1).repeat_interleave(2, 2)
    torch.testing.assert_close(grid, torch.softmax(upsampled.flatten(1), 1).view(2, 6, 6))
    torch.testing.assert_close(grid.flatten(1).sum(1), torch.ones(2))


def test_model_without_known_layout_asks_for_a_layer():
    with pytest.raises(ValueError, match="pass layer="):
        attention_extractor_for(nn.Linear(3, 3))


def test_layer_that_is_not_a_submodule_is_rejected():
    with pytest.raises(ValueError, match="layer must be a submodule of model"):
        FeatureMapExtractor(nn.Sequential(nn.Conv2d(1, 1, 1)), nn.Conv2d(1, 1, 1))


def test_extractor_on_non_spatial_layer_explains():
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 2))
    with pytest.raises(ValueError, match=r"must output a \(B, C, h, w\) feature map"):
        FeatureMapExtractor(model, "1")(torch.randn(2, 3, 2, 2))
