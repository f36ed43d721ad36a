"""timm weights without network: decided up front, one line, no hub retries; cached weights
load without touching the network."""

from __future__ import annotations

import socket

import pytest
import torch

import gg_augment as gg

timm = pytest.importorskip("timm")
hub = pytest.importorskip("huggingface_hub")


@pytest.fixture
def no_network(monkeypatch):
    """Every connection fails, and any download the hub client attempted is counted."""
    attempts = []

    def refuse(address, *args, **kwargs):
        attempts.append(address)
        raise OSError("network is unreachable (test)")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(hub.constants, "HF_HUB_OFFLINE", False)
    return attempts


def _one_line(error: BaseException) -> str:
    text = str(error)
    assert "\n" not in text and error.__cause__ is None
    return text


def test_offline_mode_is_a_one_line_error_before_any_network_attempt(no_network, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hub.constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(FileNotFoundError) as error:
        gg.build_backbone("timm:resnet18", pretrained=True)
    assert "HF_HUB_OFFLINE is set" in _one_line(error.value) and "timm/resnet18.a1_in1k" in str(error.value)
    assert no_network == []


def test_no_network_is_found_with_one_connection_and_no_retries(no_network, monkeypatch, tmp_path):
    monkeypatch.setattr(hub.constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(FileNotFoundError) as error:
        gg.build_backbone("timm:resnet18", pretrained=True)
    assert "is unreachable" in _one_line(error.value)
    assert len(no_network) == 1  # the probe; the hub client never ran


def test_cached_weights_load_offline_without_a_connection(no_network, monkeypatch, tmp_path):
    safetensors = pytest.importorskip("safetensors.torch")
    reference = timm.create_model("resnet18", pretrained=False)
    with torch.no_grad():
        for parameter in reference.parameters():
            parameter.normal_()
    snapshot = tmp_path / "models--timm--resnet18.a1_in1k" / "snapshots" / "0123abc"
    snapshot.mkdir(parents=True)
    (tmp_path / "models--timm--resnet18.a1_in1k" / "refs").mkdir()
    (tmp_path / "models--timm--resnet18.a1_in1k" / "refs" / "main").write_text("0123abc")
    safetensors.save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, str(snapshot / "model.safetensors"))
    monkeypatch.setattr(hub.constants, "HF_HUB_CACHE", str(tmp_path))
    backbone, width = gg.build_backbone("timm:resnet18", pretrained=True)
    assert width == 512 and no_network == []
    assert torch.equal(backbone.model.conv1.weight, reference.conv1.weight)
    assert hub.constants.HF_HUB_OFFLINE is False  # offline only for that call
