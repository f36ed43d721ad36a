"""load_trained_model and save_model: any run file gives the trained network and its codes."""

from __future__ import annotations

import pytest
import torch

import gg_augment as gg
from gg_augment.data import load_embedded
from gg_augment.hashing import sign_codes
from gg_augment.serving import EXPORT_FORMAT, load_trained_model, save_model
from gg_augment.training import TrainConfig


def _checkpoint(run):
    (path,) = run.glob("*/bits16/checkpoint.pt")
    return path


def _queries(count=20):
    return load_embedded("query", image_size=32).tensors[0][:count]


def test_every_way_to_name_the_run_loads_the_same_trained_weights(tiny_run):
    checkpoint = _checkpoint(tiny_run)
    state = torch.load(checkpoint, weights_only=False)["model"]
    for source in (tiny_run, checkpoint.parent.parent, checkpoint.parent, checkpoint):
        trained = gg.load_trained_model(source)
        assert isinstance(trained.config, TrainConfig) and trained.config.augment == "gt"
        assert trained.code_length == 16 and trained.hashing and not trained.model.training
        assert trained.source == checkpoint
        for key, value in trained.model.state_dict().items():
            assert torch.equal(value, state[key]), key


def test_encode_gives_the_sign_of_the_eval_mode_network(tiny_run):
    trained = load_trained_model(tiny_run, code_length=16)
    x = _queries()
    codes = trained.encode(x, batch_size=7)
    with torch.no_grad():
        expected = sign_codes(trained.model.eval()(x))
    assert torch.equal(codes, expected)
    assert set(codes.unique().tolist()) <= {-1.0, 1.0}


def test_image_files_encode_exactly_like_the_runs_own_tensors(tiny_run, train_pngs):
    trained = load_trained_model(tiny_run)
    codes, paths = trained.encode_files(train_pngs[0].parent, batch_size=10)
    assert paths == sorted(train_pngs)
    tensors = load_embedded("train", image_size=32).tensors[0][: len(train_pngs)]
    assert torch.allclose(trained.load_images(train_pngs), tensors, atol=1e-5)
    assert torch.equal(codes, trained.encode(tensors))


def test_model_only_exports_load_with_weights_only_and_give_the_same_codes(tiny_run, tmp_path):
    pytest.importorskip("safetensors")
    trained = load_trained_model(tiny_run)
    x = _queries()
    expected = trained.encode(x)
    for name in ("model.pt", "model.safetensors"):
        path = save_model(trained, tmp_path / name)
        reloaded = load_trained_model(path)
        assert reloaded.config.to_dict() == trained.config.to_dict()
        assert torch.equal(reloaded.encode(x), expected)
    stored = torch.load(tmp_path / "model.pt", weights_only=True)
    assert stored["format"] == EXPORT_FORMAT and stored["config"]["code_length"] == 16
    assert "optimizer" not in stored and "rng" not in stored
    assert (tmp_path / "model.pt").stat().st_size < _checkpoint(tiny_run).stat().st_size / 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt", "model.safetensors"]  # no temp files


def test_a_folder_with_several_models_needs_a_code_length(tiny_run, tmp_path):
    trained = load_trained_model(tiny_run)
    save_model(trained, tmp_path / "bits16" / "model.pt")
    save_model(trained, tmp_path / "bits8" / "model.pt")  # a misnamed copy: still 16 bits inside
    with pytest.raises(ValueError, match="several models.*code_length"):
        load_trained_model(tmp_path)
    assert load_trained_model(tmp_path, code_length=16).code_length == 16
    with pytest.raises(ValueError, match="code_length: .* 16-long model, not 8"):
        load_trained_model(tmp_path, code_length=8)


def test_bad_sources_and_inputs_fail_with_named_errors(tiny_run, tmp_path):
    with pytest.raises(FileNotFoundError, match="run_folder_or_checkpoint"):
        load_trained_model(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="no checkpoint.pt"):
        load_trained_model(tmp_path)
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="neither a trainer checkpoint"):
        load_trained_model(tmp_path / "other.pt")
    trained = load_trained_model(tiny_run)
    with pytest.raises(ValueError, match=r"images must have shape \(N, 3, 32, 32\)"):
        trained.encode(torch.zeros(2, 3, 28, 28))
    with pytest.raises(TypeError, match="float"):
        trained.encode(torch.zeros(2, 3, 32, 32, dtype=torch.uint8))


def test_split_images_are_the_runs_own_images(tiny_run):
    trained = load_trained_model(tiny_run)
    images, labels = trained.split_images("query", limit=5)
    expected_images, expected_labels = load_embedded("query", image_size=32).tensors
    assert torch.equal(images, expected_images[:5]) and torch.equal(labels, expected_labels[:5])
    with pytest.raises(ValueError, match="split"):
        trained.split_images("validation")
