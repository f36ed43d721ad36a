"""The trainer's parts: one batch sampler for both data paths, the --validate switch, device-side sums."""

from __future__ import annotations

import torch

from gg_augment.training import EpochBatchSampler, TensorSplit, TrainConfig, Trainer, load_data
from gg_augment.training.distributed import Distributed

TINY = {"code_lengths": (8,), "batch_size": 16, "limit_train": 64, "limit_query": 16, "limit_database": 32,
        "progress": False, "epochs": 2}


def test_the_in_memory_order_is_the_run_generators_permutation_sharded_as_streaming():
    generator = torch.Generator().manual_seed(5)
    sampler = EpochBatchSampler(37, 8, rank=1, world_size=2, generator=generator)
    assert len(sampler) == 0  # nothing drawn until an epoch asks: the generator's state is the run's
    sampler.set_epoch(0)
    order = torch.randperm(37, generator=torch.Generator().manual_seed(5))[:36][1::2]
    assert torch.equal(torch.cat(sampler.batches), order)
    assert [len(b) for b in sampler.batches] == [8, 8, 2]


def test_tensor_split_batches_are_slices_in_the_samplers_order():
    split = TensorSplit(torch.arange(10.0).view(10, 1, 1, 1), torch.arange(10))
    sampler = EpochBatchSampler(10, 4, seed=2)
    got = list(split.train_batches(sampler))
    assert [index.tolist() for _, index in got] == [b.tolist() for b in sampler.batches]
    assert all(torch.equal(images.flatten().long(), index) for images, index in got)


def _fit(tmp_path, **values):
    config = TrainConfig(out=tmp_path, **{**TINY, **values}).validate().resolved()
    trainer = Trainer(config, 8, load_data(config), Distributed())
    return trainer, trainer.fit()


def test_validate_first_step_checks_once_then_turns_checks_off_with_the_same_numbers(tmp_path):
    checked, checked_final = _fit(tmp_path / "always", augment="gcut-approx")
    first, first_final = _fit(tmp_path / "first", augment="gcut-approx", validation="first-step")
    assert first_final["map"] == checked_final["map"]
    for key, value in checked.model.state_dict().items():
        assert torch.equal(value, first.model.state_dict()[key]), key
    flags = [m.validate_args for m in first.pipeline.modules() if hasattr(m, "validate_args")]
    assert flags and not any(flags)
    assert not first.objective.loss_fn.validate_args and not first.objective.solver.validate_args
    assert first.cache is not None and not first.cache.validate_args
    assert all(m.validate_args for m in checked.pipeline.modules() if hasattr(m, "validate_args"))


def test_validate_never_starts_without_checks(tmp_path):
    config = TrainConfig(out=tmp_path, augment="gt", validation="never", **TINY).validate().resolved()
    trainer = Trainer(config, 8, load_data(config), Distributed())
    assert not trainer.pipeline.augmentation.validate_args and not trainer.objective.loss_fn.validate_args


def test_the_running_sums_are_read_once_per_epoch(tmp_path, monkeypatch):
    config = TrainConfig(out=tmp_path, augment="none", validation="never", **TINY).validate().resolved()
    trainer = Trainer(config, 8, load_data(config), Distributed())
    reads = []
    original = torch.Tensor.__float__

    def counting(self):
        reads.append(1)
        return original(self)

    monkeypatch.setattr(torch.Tensor, "__float__", counting)
    record = trainer.train_epoch(0)
    monkeypatch.undo()
    assert trainer.steps_run == len(trainer.sampler) > 1
    assert len(reads) == 2 and record["loss"] > 0  # the loss and the mean weight, once each
