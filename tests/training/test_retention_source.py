"""--retention-source: the model-measured retention in the trainer. The first epoch is the
augmentation's run exactly; afterwards the weights are the model's agreement with its codes;
the default keys no run differently and a run of it resumes exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import Tensor

from gg_augment.hashing import model_retention
from gg_augment.training import ConfigError, TrainConfig, Trainer, load_data
from gg_augment.training.cli import main, parse_config
from gg_augment.training.distributed import Distributed

TINY = {"code_lengths": (8,), "batch_size": 16, "limit_train": 64, "limit_query": 16, "limit_database": 32,
        "progress": False, "threads": 1, "epochs": 2, "augment": "gt"}


def _trainer(tmp_path: Path, **values) -> Trainer:
    config = TrainConfig(out=tmp_path, **{**TINY, **values}).validate().resolved()
    return Trainer(config, 8, load_data(config), Distributed())


def _record_weights(trainer: Trainer) -> list[tuple[Tensor, Tensor, Tensor, Tensor]]:
    """Per step: the augmentation's weights, the weights the loss took, the outputs, the index."""
    steps = []
    original = trainer._loss_weight

    def recording(outputs, weight, index):
        used = original(outputs, weight, index)
        steps.append((weight.clone(), used.clone(), outputs.detach().clone(), index.clone()))
        return used

    trainer._loss_weight = recording
    return steps



@pytest.mark.parametrize("source", ["model", "product"])
def test_the_augmentations_weights_until_a_solver_step_then_the_models(tmp_path, source):
    trainer = _trainer(tmp_path / source, retention_source=source)
    reference = _trainer(tmp_path / "augmentation")
    steps, reference_steps = _record_weights(trainer), _record_weights(reference)
    trainer.train_epoch(0)
    reference.train_epoch(0)
    # Epoch 1: the codes B are the solver's random start, so every row keeps the augmentation's
    # weight, and the run is the augmentation's own, to the bit.
    assert all(torch.equal(augmentation, used) for augmentation, used, _, _ in steps)
    assert all(torch.equal(ours[1], theirs[1]) for ours, theirs in zip(steps, reference_steps, strict=True))
    for key, value in reference.model.state_dict().items():
        assert torch.equal(value, trainer.model.state_dict()[key]), key
    first_epoch = len(steps)
    codes = trainer.objective.solver.codes.clone()
    assert bool(trainer.objective.coded_rows.all())        # every row was visited and coded
    trainer.train_epoch(1)
    for augmentation, used, outputs, index in steps[first_epoch:]:
        measured = model_retention(outputs, codes[index])
        expected = measured if source == "model" else augmentation * measured
        torch.testing.assert_close(used, expected, rtol=0, atol=0)
        assert not torch.equal(used, augmentation)
        assert bool(((used >= 0) & (used <= 1)).all())
    # The model's score is not the visible area G_t reports: they differ by more than noise.
    later = torch.cat([used for _, used, _, _ in steps[first_epoch:]])
    shifts = torch.cat([augmentation for augmentation, _, _, _ in steps[first_epoch:]])
    assert float((later - shifts).abs().mean()) > 0.05


def test_a_row_no_epoch_visited_keeps_the_augmentations_weight(tmp_path):
    trainer = _trainer(tmp_path, retention_source="model")
    trainer.train_epoch(0)
    trainer.objective.coded_rows[:32] = False             # as if the sampler had dropped them
    steps = _record_weights(trainer)
    trainer.train_epoch(1)
    for augmentation, used, _, index in steps:
        unvisited = index < 32
        assert torch.equal(used[unvisited], augmentation[unvisited])
        assert not torch.equal(used[~unvisited], augmentation[~unvisited])


def test_a_run_with_the_models_retention_resumes_exactly(tmp_path):
    args = ["--augment", "gcut", "--epochs", "3", "--code-lengths", "8", "--retention-source", "model",
            "--limit-train", "64", "--limit-query", "16", "--limit-database", "32", "--batch-size", "16",
            "--no-progress", "--threads", "1"]
    straight = main("hashing", "test", ["--out", str(tmp_path / "straight"), *args])
    main("hashing", "test", ["--out", str(tmp_path / "stopped"), *args, "--stop-after", "2"])
    resumed = main("hashing", "test", ["--out", str(tmp_path / "stopped"), *args, "--resume"])
    assert resumed[0]["map"] == straight[0]["map"]
    [a] = (tmp_path / "straight").glob("*/bits8/checkpoint.pt")
    [b] = (tmp_path / "stopped").glob("*/bits8/checkpoint.pt")
    a, b = torch.load(a, weights_only=False), torch.load(b, weights_only=False)
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    assert [h.get("mean_weight") for h in a["history"]] == [h.get("mean_weight") for h in b["history"]]
    assert set(a) == set(b) and set(a["solver"]) == set(b["solver"])     # the checkpoint as it was


def test_the_default_keys_runs_as_before_and_a_set_source_keys_its_own():
    default, model = TrainConfig(), TrainConfig(retention_source="model")
    assert "retention_source" not in default.result_config()      # old run folders keep their names
    assert model.result_config()["retention_source"] == "model"
    assert default.fingerprint() != model.fingerprint()
    stored = default.result_config()                               # a record from before the field
    assert default.differences(stored) == []
    assert default.differences({**stored, "retention_source": "augmentation"}) == []
    assert model.differences(stored) == ["retention_source: 'augmentation' -> 'model'"]
    assert default.differences({**stored, "retention_source": "product"}) == ["retention_source: 'product' -> 'augmentation'"]


def test_the_flag_reaches_the_configuration():
    assert parse_config("hashing", ["--retention-source", "product"]).retention_source == "product"
    assert parse_config("hashing", []).retention_source == "augmentation"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"augment": "none", "retention_source": "model"}, "gives up nothing"),
        ({"no_retention": True, "retention_source": "product"}, "sets every weight to 1"),
        ({"mode": "real", "retention_source": "model"}, "only hashing runs have"),
        ({"retention_source": "attention"}, "must be one of"),
    ],
)
def test_combinations_without_a_model_retention_are_refused(values, message):
    with pytest.raises(ConfigError, match=message) as refused:
        TrainConfig(**values).validate()
    assert refused.value.field == "retention_source"


def test_the_refusal_names_the_flag(capsys):
    with pytest.raises(SystemExit) as stopped:
        parse_config("hashing", ["--augment", "none", "--retention-source", "model"])
    assert stopped.value.code == 2
    assert "argument --retention-source: 'model' scores what the augmentation gave up" in capsys.readouterr().err
