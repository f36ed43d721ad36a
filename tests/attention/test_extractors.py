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


# -- attention definitions (issue 17) ----------------------------------------------------------


class _Known(nn.Module):
    """Outputs a fixed (1, 2, 2, 3) feature map, whatever the input."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Identity()
        self.register_buffer(
            "map",
            torch.tensor([[[1.0, -1.0, 0.0], [2.0, 0.0, 0.0]], [[1.0, 1.0, 0.0], [-2.0, 0.0, 3.0]]]).unsqueeze(0),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(self.map.expand(x.shape[0], -1, -1, -1) + 0 * x.mean())


@pytest.mark.parametrize(
    ("definition", "expected"),
    [
        ("mean", [[1.0, 0.0, 0.0], [0.0, 0.0, 1.5]]),  # (1/C) Σ_c A_c
        ("energy", [[1.0, 1.0, 0.0], [4.0, 0.0, 4.5]]),  # (1/C) Σ_c A_c²
    ],
)
def test_definitions_on_a_known_feature_map(definition, expected):
    model = _Known()
    extractor = attention_extractor_for(model, "features", definition=definition)
    torch.testing.assert_close(extractor(torch.zeros(1, 3, 8, 8)), torch.tensor([expected]))
    hot = attention_extractor_for(model, "features", definition=definition, temperature=0.5)
    torch.testing.assert_close(hot(torch.zeros(1, 3, 8, 8)), 2 * torch.tensor([expected]))
    # The grid G_cut sees: softmax of logits / T.
    grid = GCut(model, layer="features", definition=definition, temperature=2.0, grid_size=(2, 3)).compute_attention(
        torch.zeros(1, 3, 8, 8)
    )
    torch.testing.assert_close(grid, torch.softmax(torch.tensor(expected).flatten() / 2, 0).view(1, 2, 3))


def test_energy_peaks_where_features_fire_whatever_their_sign():
    features = torch.zeros(1, 4, 3, 3)
    features[0, :2, 1, 1] = torch.tensor([5.0, -5.0])  # strong, opposite signs: the mean cancels
    model = nn.Sequential(nn.Identity())
    logits = FeatureMapExtractor(model, "0", definition="energy").features_to_logits(features)
    assert logits[0].argmax().item() == 4 and bool((logits >= 0).all())
    assert FeatureMapExtractor(model, "0").features_to_logits(features)[0, 1, 1] == 0


def test_the_default_definition_is_the_authors_channel_mean_bit_for_bit():
    features = torch.randn(2, 16, 5, 5)
    model = nn.Sequential(nn.Identity())
    assert torch.equal(FeatureMapExtractor(model, "0").features_to_logits(features), features.float().mean(dim=1))
    assert "definition" not in repr(FeatureMapExtractor(model, "0"))
    assert "definition='energy', temperature=2.0" in repr(FeatureMapExtractor(model, "0", definition="energy", temperature=2.0))


def test_definition_and_temperature_are_checked():
    model = nn.Sequential(nn.Identity())
    with pytest.raises(ValueError, match=r"definition must be one of \['mean', 'energy'\]; got 'max'"):
        attention_extractor_for(model, "0", definition="max")
    for bad in (0.0, -1.0, float("inf"), float("nan"), True):
        with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
            FeatureMapExtractor(model, "0", temperature=bad)
    tokens = nn.Sequential(nn.Identity())
    extractor = attention_extractor_for(tokens, "0", definition="energy")
    with pytest.raises(ValueError, match="outputs ViT tokens"):
        extractor.features_to_logits(torch.randn(2, 5, 8))


@needs_torchvision
def test_vit_refuses_a_feature_map_definition():
    model = torchvision.models.vit_b_32(image_size=64, num_classes=10)
    with pytest.raises(ValueError, match="outputs ViT tokens"):
        attention_extractor_for(model, definition="energy")
