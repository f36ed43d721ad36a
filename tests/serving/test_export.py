"""The exported encoder (torch.export, ONNX) gives exactly the eager model's codes."""

from __future__ import annotations

import pytest
import torch

from gg_augment.data import load_embedded
from gg_augment.serving import export_onnx, export_program, load_trained_model


@pytest.fixture(scope="module")
def trained_and_images(tiny_run):
    trained = load_trained_model(tiny_run)
    images = load_embedded("query", image_size=32).tensors[0][:37]  # not the traced batch size
    return trained, images


def test_torch_export_program_reproduces_the_codes_at_any_batch_size(trained_and_images, tmp_path):
    trained, images = trained_and_images
    export_program(trained, tmp_path / "encoder.pt2")
    module = torch.export.load(tmp_path / "encoder.pt2").module()
    assert torch.equal(module(images), trained.encode(images))
    assert torch.equal(module(images[:1]), trained.encode(images[:1]))


def test_onnx_file_is_valid_and_runs_to_the_same_codes(trained_and_images, tmp_path):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    trained, images = trained_and_images
    path = export_onnx(trained, tmp_path / "encoder.onnx")
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    assert [i.name for i in model.graph.input] == ["images"]
    assert [o.name for o in model.graph.output] == ["codes"]
    ort = pytest.importorskip("onnxruntime", reason="the file is checked; running it needs onnxruntime")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (codes,) = session.run(None, {"images": images.numpy()})
    assert torch.equal(torch.from_numpy(codes), trained.encode(images))
