"""Issue 20: with validate_args=False, the loss and the DSDH bank update make no host sync."""

from __future__ import annotations

import contextlib

import pytest
import torch

from gg_augment.hashing import DSDHSolver
from gg_augment.losses import RetentionWeightedPairwiseLoss

_SYNCING = ("item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__", "__index__")


@contextlib.contextmanager
def count_host_reads():
    """Counts Python-level calls that copy tensor values to the host."""
    calls: list[str] = []
    originals = {name: getattr(torch.Tensor, name) for name in _SYNCING}

    def wrap(name):
        original = originals[name]

        def counted(self, *args, **kwargs):
            calls.append(name)
            return original(self, *args, **kwargs)

        return counted

    for name in _SYNCING:
        setattr(torch.Tensor, name, wrap(name))
    try:
        yield calls
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)


def test_the_counter_sees_a_sync():
    with count_host_reads() as calls:
        bool(torch.ones(2).any())
        torch.ones(()).item()
    assert calls == ["__bool__", "item"]


@pytest.mark.parametrize("rule", ["authors", "uncertain", "weighted"])
def test_loss_and_bank_update_make_no_host_sync_without_validation(rule):
    generator = torch.Generator().manual_seed(0)
    solver = DSDHSolver(num_train=40, code_length=16, num_classes=4, generator=generator, validate_args=False)
    solver.set_labels(torch.arange(40) % 4)
    loss_fn = RetentionWeightedPairwiseLoss(
        quantization_weight=0.01, add_in_batch=True, triplet_weight=0.005, weight_triplets=True,
        validate_args=False, rule=rule,
    )
    network = torch.nn.Linear(10, 16)
    inputs = torch.randn(8, 10, generator=generator)
    index = torch.tensor([3, 7, 1, 0, 12, 39, 22, 5])
    weight = torch.rand(8, generator=generator)
    labels = torch.nn.functional.one_hot(index % 4, 4).float()
    with count_host_reads() as calls:
        outputs = torch.tanh(network(inputs))
        solver.update_outputs(index, outputs)
        bank, bank_labels = solver.bank()
        live_bank = bank.index_put((index,), outputs)
        loss = loss_fn(
            outputs, labels, weight, bank=live_bank, bank_labels=bank_labels,
            binary_targets=solver.targets(index),
        )
        loss.backward()
    assert calls == []
    assert torch.isfinite(loss.detach()).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_loss_and_bank_update_make_no_cuda_sync_without_validation():
    device = torch.device("cuda")
    generator = torch.Generator(device).manual_seed(0)
    solver = DSDHSolver(num_train=40, code_length=16, num_classes=4, device=device, generator=generator, validate_args=False)
    solver.set_labels(torch.arange(40, device=device) % 4)
    loss_fn = RetentionWeightedPairwiseLoss(quantization_weight=0.01, add_in_batch=True, validate_args=False)
    outputs = torch.tanh(torch.randn(8, 16, device=device, generator=generator, requires_grad=True))
    index = torch.tensor([3, 7, 1, 0, 12, 39, 22, 5], device=device)
    weight = torch.rand(8, device=device, generator=generator)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        solver.update_outputs(index, outputs)
        bank, bank_labels = solver.bank()
        loss = loss_fn(
            outputs, bank_labels[index], weight, bank=bank.index_put((index,), outputs), bank_labels=bank_labels,
            binary_targets=solver.targets(index),
        )
        loss.backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")
