"""timm backbones: CNNs give G_cut their last stage, ViTs their tokens on the native patch grid."""

from __future__ import annotations

import pytest
import torch

import gg_augment as gg

timm = pytest.importorskip("timm")


def test_timm_cnn_feeds_gcut_from_its_last_stage():
    torch.manual_seed(0)
    net = gg.RetrievalNet(*gg.build_backbone("timm:resnet18", image_size=64), 16)
    assert net.attention_layer == "backbone.feature_map" and net.head.in_features == 512
    gcut = gg.GCut(net, grid_size=4)
    assert gcut.source.extractor.layer_name == "backbone.feature_map" and gcut.select == "mean"
    x_aug, retention = gcut(torch.randn(3, 3, 64, 64))
    assert x_aug.shape == (3, 3, 64, 64) and bool(((retention > 0) & (retention <= 1)).all())


def test_timm_vit_cuts_on_its_patch_grid():
    torch.manual_seed(0)
    net = gg.RetrievalNet(*gg.build_backbone("timm:vit_tiny_patch16_224", image_size=64), 16)
    gcut = gg.GCut(net)
    assert gcut.grid_size is None and gcut.select == "topk"
    grid = gcut.compute_attention(torch.randn(2, 3, 64, 64))
    assert grid.shape == (2, 4, 4)
    params = gcut.generate_params((2, 3, 64, 64), attention=grid)
    assert params["candidates"].flatten(1).sum(1).tolist() == [8, 8]


def test_trainer_takes_timm_names(tmp_path):
    from gg_augment.training.cli import main

    results = main("hashing", "test", [
        "--arch", "timm:resnet18", "--image-size", "64", "--augment", "gcut", "--epochs", "1", "--code-lengths", "8",
        "--limit-train", "32", "--limit-query", "10", "--limit-database", "20", "--batch-size", "16",
        "--out", str(tmp_path), "--no-progress",
    ])
    assert 0.0 <= results[0]["map"] <= 1.0


def test_missing_timm_weights_name_the_file(monkeypatch, tmp_path):
    import huggingface_hub.constants

    # The hub reads HF_HUB_OFFLINE at import: set the constant, so the test fails fast offline
    # instead of retrying the network for a minute.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"model.safetensors of 'timm/resnet18.a1_in1k' is not in the Hugging Face cache"):
        gg.build_backbone("timm:resnet18", pretrained=True)


def test_unknown_timm_name_is_refused():
    with pytest.raises(ValueError, match="timm has no model 'resnet9000'"):
        gg.build_backbone("timm:resnet9000")
