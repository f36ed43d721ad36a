"""pytorch-metric-learning interop: PML's miners choose the pairs, retention softens their targets."""

from __future__ import annotations

import pytest
import torch

from gg_augment import RetentionWeightedPairwiseLoss
from gg_augment.losses import mined_pairs

pml = pytest.importorskip("pytorch_metric_learning")
from pytorch_metric_learning import miners  # noqa: E402
from pytorch_metric_learning.utils import loss_and_miner_utils as lmu  # noqa: E402


def _batch(device, batch=24, dim=16):
    generator = torch.Generator().manual_seed(0)
    codes = torch.tanh(torch.randn(batch, dim, generator=generator)).to(device).requires_grad_()
    labels = (torch.arange(batch) % 4).to(device)
    weight = torch.rand(batch, generator=generator).to(device)
    return codes, labels, weight


@pytest.mark.parametrize("similarity", ["hash", "cosine"])
def test_all_pairs_from_pml_equal_the_in_batch_loss(device, similarity):
    codes, labels, weight = _batch(device)
    loss_fn = RetentionWeightedPairwiseLoss(similarity)
    every_pair = lmu.get_all_pairs_indices(labels)  # PML's own (a1, p, a2, n) of all ordered pairs
    assert torch.allclose(loss_fn(codes, labels, weight, indices_tuple=every_pair), loss_fn(codes, labels, weight), atol=1e-6)


def test_a_real_miner_selects_the_pairs_and_retention_softens_them(device):
    codes, labels, weight = _batch(device)
    miner = miners.MultiSimilarityMiner(epsilon=0.1)
    mined = miner(codes.detach(), labels)
    assert 0 < mined[0].numel() + mined[2].numel() < 24 * 23  # it kept a strict subset
    loss = RetentionWeightedPairwiseLoss()(codes, labels, weight, indices_tuple=mined)
    a1, p, a2, n = mined
    theta_pos = (codes[a1] * codes[p]).sum(1) / 2
    theta_neg = (codes[a2] * codes[n]).sum(1) / 2
    expected = torch.cat([
        torch.nn.functional.softplus(theta_pos) - weight[a1] * weight[p] * theta_pos,
        torch.nn.functional.softplus(theta_neg),
    ]).mean()
    assert torch.allclose(loss, expected, atol=1e-6)
    loss.backward()
    untouched = torch.ones(24, dtype=torch.bool, device=device)
    untouched[torch.cat([a1, p, a2, n])] = False
    assert codes.grad[untouched].abs().sum() == 0  # only mined samples get gradient


def test_triplet_miners_are_read_as_positive_and_negative_pairs(device):
    codes, labels, weight = _batch(device)
    triplets = miners.TripletMarginMiner(margin=0.5, type_of_triplets="all")(codes.detach(), labels)
    rows, cols = mined_pairs(triplets, 24, codes.device)
    anchors, positives, negatives = triplets
    assert torch.equal(rows, torch.cat([anchors, anchors])) and torch.equal(cols, torch.cat([positives, negatives]))
    assert torch.isfinite(RetentionWeightedPairwiseLoss()(codes, labels, weight, indices_tuple=triplets))


def test_nothing_mined_gives_a_zero_that_backpropagates(device):
    codes, labels, weight = _batch(device)
    empty = torch.empty(0, dtype=torch.long, device=device)
    loss = RetentionWeightedPairwiseLoss()(codes, labels, weight, indices_tuple=(empty, empty, empty, empty))
    loss.backward()
    assert loss.item() == 0.0 and codes.grad is not None


@pytest.mark.parametrize(
    ("indices", "error", "message"),
    [
        ((torch.tensor([0]), torch.tensor([1])), TypeError, "indices_tuple must be a miner's"),
        ((torch.tensor([0.0]), torch.tensor([1]), torch.tensor([2])), TypeError, r"indices_tuple\[0\] must be a 1-D integer"),
        ((torch.tensor([0, 1]), torch.tensor([1]), torch.tensor([2]), torch.tensor([3])), ValueError, "equal lengths"),
        ((torch.tensor([0]), torch.tensor([99]), torch.tensor([2]), torch.tensor([3])), ValueError, "must index the batch, 0..23"),
    ],
)
def test_bad_indices_tuple_names_the_argument(indices, error, message):
    codes, labels, weight = _batch("cpu")
    with pytest.raises(error, match=message):
        RetentionWeightedPairwiseLoss()(codes, labels, weight, indices_tuple=indices)


def test_the_pml_example_trains_on_the_embedded_data():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "examples" / "pml_miner.py"
    spec = importlib.util.spec_from_file_location("pml_miner", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--epochs", "1", "--limit-train", "512"]) > 0.15  # 10 classes: chance is about 0.1
