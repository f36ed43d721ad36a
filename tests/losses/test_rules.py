"""Retention rules of RetentionWeightedPairwiseLoss: gradient sign at θ = 0 and optimum θ*."""

from __future__ import annotations

import math

import pytest
import torch

from gg_augment.losses import RetentionWeightedPairwiseLoss, retention_pair_loss


def _logit(p):
    return math.log(p / (1 - p))


# Positive pair (s = 1). Gradient dℓ/dθ at θ = 0 and the optimum θ* per rule and weight w.
EXPECTED = {
    "authors": (lambda w: 0.5 - w, lambda w: _logit(w)),
    "uncertain": (lambda w: -w / 2, lambda w: _logit((1 + w) / 2)),
    "weighted": (lambda w: -w / 2, lambda w: math.inf),
}


@pytest.mark.parametrize("rule", list(EXPECTED))
@pytest.mark.parametrize("w", [0.2, 0.5, 0.9])
def test_gradient_sign_at_zero_and_optimum_on_a_positive_pair(rule, w):
    theta = torch.zeros((), dtype=torch.float64, requires_grad=True)
    retention_pair_loss(theta, torch.tensor(1.0, dtype=torch.float64), torch.tensor(w, dtype=torch.float64), rule).backward()
    gradient, optimum = EXPECTED[rule][0](w), EXPECTED[rule][1](w)
    assert theta.grad is not None
    assert float(theta.grad) == pytest.approx(gradient, abs=1e-12)
    # The sign says which way a gradient step moves θ: negative gradient = pull together.
    expected_sign = {"authors": (1 if w < 0.5 else 0 if w == 0.5 else -1)}.get(rule, -1)
    assert int(torch.sign(theta.grad)) == expected_sign

    grid = torch.linspace(-12, 12, 24001, dtype=torch.float64)
    losses = retention_pair_loss(grid, torch.ones_like(grid), torch.full_like(grid, w), rule)
    found = float(grid[losses.argmin()])
    if math.isinf(optimum):
        assert found == 12.0 and bool((losses.diff() <= 0).all())  # still falling at the edge
    else:
        assert found == pytest.approx(optimum, abs=2e-3)
        gradient_at_optimum = torch.tensor(optimum, dtype=torch.float64, requires_grad=True)
        retention_pair_loss(gradient_at_optimum, torch.tensor(1.0, dtype=torch.float64), torch.tensor(w, dtype=torch.float64), rule).backward()
        assert float(gradient_at_optimum.grad) == pytest.approx(0.0, abs=1e-12)


def test_only_the_authors_rule_repels_weak_positives():
    w = 0.2
    optima = {rule: EXPECTED[rule][1](w) for rule in EXPECTED}
    assert optima["authors"] < 0 < optima["uncertain"] < optima["weighted"]


def _batch(seed=0):
    generator = torch.Generator().manual_seed(seed)
    outputs = torch.tanh(torch.randn(12, 16, generator=generator))
    labels = torch.arange(12) % 3
    weight = torch.rand(12, generator=generator)
    bank = torch.tanh(torch.randn(30, 16, generator=generator))
    return outputs, labels, weight, bank, torch.arange(30) % 3


def test_authors_rule_is_the_default_and_bit_identical_to_the_formula():
    outputs, labels, weight, bank, bank_labels = _batch()
    loss = RetentionWeightedPairwiseLoss()(outputs, labels, weight, bank=bank, bank_labels=bank_labels)
    theta = outputs @ bank.T / 2
    targets = (labels[:, None] == bank_labels[None]).float() * weight[:, None]
    assert torch.equal(loss, (torch.nn.functional.softplus(theta) - targets * theta).mean())
    explicit = RetentionWeightedPairwiseLoss(rule="authors")(outputs, labels, weight, bank=bank, bank_labels=bank_labels)
    assert torch.equal(loss, explicit)


@pytest.mark.parametrize("rule", ["uncertain", "weighted"])
@pytest.mark.parametrize("combine", ["product", "min"])
def test_each_rule_runs_in_every_mode_and_matches_its_formula(rule, combine):
    outputs, labels, weight, bank, bank_labels = _batch(1)
    loss_fn = RetentionWeightedPairwiseLoss(rule=rule, combine=combine)
    s = (labels[:, None] == labels[None]).float()
    pair = weight[:, None] * weight[None] if combine == "product" else torch.minimum(weight[:, None], weight[None])
    theta = outputs @ outputs.T / 2
    if rule == "uncertain":
        per_pair = torch.nn.functional.softplus(theta) - (s * pair + (1 - pair) / 2) * theta
    else:
        per_pair = pair * (torch.nn.functional.softplus(theta) - s * theta)
    off = 1 - torch.eye(12)
    torch.testing.assert_close(loss_fn(outputs, labels, weight), (per_pair * off).sum() / (12 * 11))
    for value in (
        loss_fn(outputs, labels, weight, bank=bank, bank_labels=bank_labels),
        loss_fn(outputs, labels, weight, indices_tuple=(torch.tensor([0, 1]), torch.tensor([3, 4]), torch.tensor([0]), torch.tensor([2]))),
    ):
        assert torch.isfinite(value)
    # All weights 1: every rule is the unweighted loss.
    ones = torch.ones(12)
    torch.testing.assert_close(loss_fn(outputs, labels, ones), RetentionWeightedPairwiseLoss()(outputs, labels, ones))


def test_rule_is_checked_and_shown():
    with pytest.raises(ValueError, match="rule must be one of"):
        RetentionWeightedPairwiseLoss(rule="soft")
    assert "rule='uncertain'" in repr(RetentionWeightedPairwiseLoss(rule="uncertain"))
