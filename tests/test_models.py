"""The authors' backbones (ViT-B/32, Inception v3) offline, and the hash head's initialisation."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from gg_augment import GCut
from gg_augment.models import RetrievalNet, build_backbone

torchvision = pytest.importorskip("torchvision")


@pytest.mark.parametrize(("arch", "size", "width", "layer"), [("vit_b_32", 64, 768, "backbone.encoder"), ("inception_v3", 139, 2048, "backbone.Mixed_7c")])
def test_authors_backbones_build_offline_and_train(arch, size, width, layer):
    torch.manual_seed(0)
    backbone, feature_width = build_backbone(arch, pretrained=False, image_size=size)
    assert feature_width == width
    net = RetrievalNet(backbone, feature_width, 16).train()  # train mode: Inception's aux head is gone
    codes = net(torch.randn(2, 3, size, size))
    assert codes.shape == (2, 16) and net.attention_layer == layer
    x_aug, retention = GCut(net, grid_size=2)(torch.randn(2, 3, size, size))
    assert x_aug.shape == (2, 3, size, size) and retention.shape == (2,)


def test_vit_b_32_grid_is_its_patch_grid():
    backbone, width = build_backbone("vit_b_32", image_size=64)
    net = RetrievalNet(backbone, width, 8)
    gcut = GCut(net)  # the model's own grid: 2x2 patches of 32 px at 64 px
    params = gcut.generate_params((1, 3, 64, 64), torch.device("cpu"), attention=gcut.compute_attention(torch.randn(1, 3, 64, 64)))
    assert tuple(params["cut"].shape) == (1, 2, 2)


@pytest.mark.parametrize("arch", ["vit_b_32", "inception_v3"])
def test_pretrained_without_weights_is_refused_naming_the_file(arch, monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*_args, **_kwargs):
        raise OSError("no network")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", offline, raising=False)
    file_name = {"vit_b_32": r"vit_b_32-d86f8d99\.pth", "inception_v3": r"inception_v3_google-0cc3c7bd\.pth"}[arch]
    with pytest.raises(FileNotFoundError, match=f"pretrained weights for {arch} are missing: .*{file_name} is not there"):
        build_backbone(arch, pretrained=True, image_size=224)


def test_backbone_size_errors():
    with pytest.raises(ValueError, match="vit_b_32 needs image_size a multiple of 32"):
        build_backbone("vit_b_32", image_size=48)
    with pytest.raises(ValueError, match="inception_v3 needs image_size >= 75"):
        build_backbone("inception_v3", image_size=64)


def test_xavier_normal_head_has_the_authors_statistics():
    """Xavier-normal: std = sqrt(2 / (fan_in + fan_out)), mean 0, bias 0 (the authors' CNN heads)."""
    torch.manual_seed(0)
    fan_in, fan_out = 1000, 64
    net = RetrievalNet(nn.Identity(), fan_in, fan_out, head_init="xavier_normal")
    weight = net.head.weight.detach()
    expected = math.sqrt(2.0 / (fan_in + fan_out))
    assert abs(weight.std().item() / expected - 1) < 0.02 and abs(weight.mean().item()) < 0.1 * expected
    assert torch.equal(net.head.bias.detach(), torch.zeros(fan_out))
    # Normal, not uniform: about 31.7 % of the weights lie beyond one std (a uniform has 42.3 %).
    beyond = (weight.abs() > expected).float().mean().item()
    assert abs(beyond - 0.317) < 0.01
    # PyTorch's default is uniform with bound 1/sqrt(fan_in): another spread.
    default = RetrievalNet(nn.Identity(), fan_in, fan_out).head.weight.detach()
    assert default.abs().max().item() <= 1 / math.sqrt(fan_in) + 1e-7 and abs(default.std().item() / expected - 1) > 0.5


def test_kaiming_uniform_head_for_the_authors_vit():
    torch.manual_seed(0)
    net = RetrievalNet(nn.Identity(), 1000, 64, head_init="kaiming_uniform")
    bound = (5 / 3) * math.sqrt(3.0 / 1000)  # tanh gain · sqrt(3 / fan_in)
    weight = net.head.weight.detach()
    assert weight.abs().max().item() <= bound + 1e-7 and weight.abs().max().item() > 0.99 * bound
    assert torch.equal(net.head.bias.detach(), torch.zeros(64))
    with pytest.raises(ValueError, match="head_init must be one of"):
        RetrievalNet(nn.Identity(), 8, 4, head_init="orthogonal")
