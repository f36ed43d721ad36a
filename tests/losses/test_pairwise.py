"""RetentionWeightedPairwiseLoss: limits, modes, stability, errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from gg_augment import RetentionWeightedPairwiseLoss

from ..conftest import make_generator


def _reference(scores: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Textbook −log-likelihood in float64 (fine for moderate θ)."""
    scores, targets = scores.double(), targets.double()
    terms = torch.log1p(torch.exp(scores)) - targets * scores
    return terms[mask].mean() if mask is not None else terms.mean()


def _codes(batch: int, bits: int, device, seed: int = 0) -> torch.Tensor:
    return torch.tanh(torch.randn(batch, bits, generator=make_generator("cpu", seed))).to(device)


@pytest.mark.parametrize("multi_hot", [False, True])
def test_in_batch_all_ones_equals_unweighted(device, multi_hot):
    u = _codes(12, 16, device)
    if multi_hot:
        labels = (torch.rand(12, 5, generator=make_generator("cpu", 1)) > 0.6).long().to(device)
        similarity = ((labels.float() @ labels.float().T) > 0).float()
    else:
        labels = (torch.arange(12) % 4).to(device)
        similarity = (labels[:, None] == labels[None]).float()
    loss_fn = RetentionWeightedPairwiseLoss()
    weighted = loss_fn(u, labels, torch.ones(12, device=device))
    unweighted = loss_fn(u, labels)
    off_diagonal = ~torch.eye(12, dtype=torch.bool, device=device)
    expected = _reference(u @ u.T / 2, similarity, off_diagonal)
    torch.testing.assert_close(weighted, unweighted)
    torch.testing.assert_close(weighted.double(), expected, rtol=1e-5, atol=1e-6)


def test_bank_mode_weights_the_batch_sample(device):
    u = _codes(6, 8, device)
    bank = _codes(20, 8, device, seed=3)
    labels = torch.tensor([0, 1, 2, 0, 1, 2], device=device)
    bank_labels = (torch.arange(20) % 3).to(device)
    weights = torch.tensor([1.0, 0.5, 0.0, 0.25, 1.0, 0.75], device=device)
    loss = RetentionWeightedPairwiseLoss()(u, labels, weights, bank=bank, bank_labels=bank_labels)
    targets = (labels[:, None] == bank_labels[None]).float() * weights[:, None]
    torch.testing.assert_close(loss.double(), _reference(u @ bank.T / 2, targets), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("combine", ["product", "min"])
def test_in_batch_combine_rules(device, combine):
    u = _codes(5, 8, device)
    labels = torch.tensor([0, 0, 1, 1, 0], device=device)
    w = torch.tensor([1.0, 0.2, 0.7, 0.4, 0.9], device=device)
    loss = RetentionWeightedPairwiseLoss(combine=combine)(u, labels, w)
    pair_w = w[:, None] * w[None] if combine == "product" else torch.minimum(w[:, None], w[None])
    targets = (labels[:, None] == labels[None]).float() * pair_w
    mask = ~torch.eye(5, dtype=torch.bool, device=device)
    torch.testing.assert_close(loss.double(), _reference(u @ u.T / 2, targets, mask), rtol=1e-5, atol=1e-6)


def test_cosine_similarity_uses_scaled_cosine(device):
    u = torch.randn(6, 10, device=device) * 3
    labels = torch.tensor([0, 1, 0, 1, 2, 2], device=device)
    loss = RetentionWeightedPairwiseLoss(similarity="cosine", scale=5.0)(u, labels)
    n = F.normalize(u, dim=1)
    targets = (labels[:, None] == labels[None]).float()
    mask = ~torch.eye(6, dtype=torch.bool, device=device)
    torch.testing.assert_close(loss.double(), _reference(5.0 * n @ n.T, targets, mask), rtol=1e-5, atol=1e-6)


def test_zero_weight_removes_the_pull_but_keeps_the_push(device):
    u = _codes(2, 4, device).requires_grad_(True)
    labels = torch.tensor([0, 0], device=device)
    loss_fn = RetentionWeightedPairwiseLoss()
    # A positive pair with weight 1 is pulled together: the gradient raises ⟨u0, u1⟩.
    (grad_pull,) = torch.autograd.grad(loss_fn(u, labels, torch.ones(2, device=device)), u)
    (grad_zero,) = torch.autograd.grad(loss_fn(u, labels, torch.tensor([0.0, 1.0], device=device)), u)
    # With weight 0 the target is 0: the pair behaves like a negative, the loss equals softplus(θ).
    theta = (u[0] @ u[1]) / 2
    torch.testing.assert_close(loss_fn(u, labels, torch.tensor([0.0, 1.0], device=device)), F.softplus(theta))
    direction = u[1].detach()
    assert float(-grad_pull[0] @ direction) > 0 and float(-grad_zero[0] @ direction) < 0
    # Negatives are unaffected by weights.
    negatives = torch.tensor([0, 1], device=device)
    torch.testing.assert_close(
        loss_fn(u, negatives, torch.tensor([0.0, 0.3], device=device)), loss_fn(u, negatives)
    )


@pytest.mark.parametrize("similarity", ["hash", "cosine"])
def test_gradients_stay_finite_for_huge_scores(device, similarity):
    bits = 16
    magnitude = (2 * 1e4 / bits) ** 0.5  # ⟨u, u⟩/2 = 1e4
    u = torch.full((4, bits), magnitude, device=device)
    u[2:] *= -1
    u.requires_grad_(True)
    labels = torch.tensor([0, 1, 0, 1], device=device)
    scale = 1e4 if similarity == "cosine" else 1.0
    loss_fn = RetentionWeightedPairwiseLoss(similarity=similarity, scale=scale)
    loss = loss_fn(u, labels, torch.tensor([1.0, 0.0, 0.5, 1.0], device=device))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(u.grad).all()
    assert loss.item() > 1e3  # the mismatched pairs really are at |θ| = 1e4


def test_half_precision_outputs(device, dtype):
    u = _codes(8, 16, device).to(dtype).requires_grad_(True)
    loss = RetentionWeightedPairwiseLoss()(u, torch.arange(8, device=device) % 2, torch.rand(8, device=device).to(dtype))
    loss.backward()
    assert loss.dtype == torch.float32 and torch.isfinite(u.grad).all()


def test_quantization_and_classification_terms(device):
    u = _codes(4, 8, device)
    b = torch.sign(u)
    labels = torch.tensor([0, 1, 0, 1], device=device)
    base = RetentionWeightedPairwiseLoss()(u, labels)
    eta = 0.1
    with_q = RetentionWeightedPairwiseLoss(quantization_weight=eta)(u, labels, binary_targets=b)
    torch.testing.assert_close(with_q, base + eta * (b - u).pow(2).mean())
    scores, targets = torch.randn(4, 2, device=device), F.one_hot(labels, 2).float()
    with_c = RetentionWeightedPairwiseLoss(classification_weight=2.0)(u, labels, class_scores=scores, class_targets=targets)
    torch.testing.assert_close(with_c, base + 2.0 * (targets - scores).pow(2).mean())


@pytest.mark.parametrize("batch", [0, 1])
def test_no_pairs_gives_a_connected_zero(device, batch):
    u = torch.randn(batch, 8, device=device, requires_grad=True)
    loss = RetentionWeightedPairwiseLoss()(u, torch.zeros(batch, dtype=torch.long, device=device))
    loss.backward()
    assert loss.item() == 0.0 and u.grad is not None


@given(weights=st.lists(st.floats(0.0, 1.0), min_size=2, max_size=8), seed=st.integers(0, 1000))
def test_loss_is_finite_non_negative_and_between_pairwise_extremes(weights, seed):
    batch = len(weights)
    u = torch.tanh(torch.randn(batch, 8, generator=torch.Generator().manual_seed(seed)))
    labels = torch.zeros(batch, dtype=torch.long)
    loss = RetentionWeightedPairwiseLoss()(u, labels, torch.tensor(weights))
    assert torch.isfinite(loss) and loss.item() >= 0
    # Each pair's term is linear in s̃ ∈ [0, 1], so it lies between its s̃=0 and s̃=1 values.
    theta = (u @ u.T / 2)[~torch.eye(batch, dtype=torch.bool)]
    negative, positive = F.softplus(theta), F.softplus(theta) - theta
    low = torch.minimum(negative, positive).mean().item()
    high = torch.maximum(negative, positive).mean().item()
    assert low - 1e-5 <= loss.item() <= high + 1e-5


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"labels": torch.zeros(3, dtype=torch.long)}, ValueError, r"labels must have shape \(4,\) class ids or \(4, L\) multi-hot; got \(3\)"),
        ({"labels": torch.zeros(4, 2, 2)}, ValueError, r"labels must have shape \(4,\)"),
        ({"labels": torch.zeros(4)}, TypeError, "labels as class ids .* integer dtype; got torch.float32"),
        ({"weight": torch.full((4,), 1.5)}, ValueError, r"weight must lie in \[0, 1\]; got values in \[1.5, 1.5\]"),
        ({"weight": torch.tensor([0.5, -0.1, 0.2, 0.3])}, ValueError, r"weight must lie in \[0, 1\]"),
        ({"weight": torch.tensor([0.5, float("nan"), 0.2, 0.3])}, ValueError, "weight must be finite"),
        ({"weight": torch.ones(5)}, ValueError, r"weight must have shape \(4,\); got \(5\)"),
        ({"bank": torch.zeros(10, 8)}, ValueError, "bank mode needs bank_labels="),
        ({"bank": torch.zeros(10, 7), "bank_labels": torch.zeros(10, dtype=torch.long)}, ValueError, r"bank must have shape \(N, 8\)"),
        ({"bank": torch.zeros(10, 8), "bank_labels": torch.zeros(9, dtype=torch.long)}, ValueError, r"bank_labels must have shape \(10,\)"),
        ({"bank": torch.zeros(10, 8), "bank_labels": torch.zeros(10, 3)}, ValueError, "both be class ids"),
        ({"binary_targets": torch.zeros(4, 3)}, ValueError, "binary_targets must have the shape of outputs"),
    ],
)
def test_bad_inputs_are_rejected(kwargs, error, match):
    args = {"labels": torch.tensor([0, 1, 0, 1])} | kwargs
    labels = args.pop("labels")
    weight = args.pop("weight", None)
    with pytest.raises(error, match=match):
        RetentionWeightedPairwiseLoss()(torch.zeros(4, 8), labels, weight, **args)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"similarity": "l2"}, "similarity must be one of"), ({"combine": "max"}, "combine must be one of"), ({"scale": 0}, "scale must be > 0")],
)
def test_bad_config_is_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RetentionWeightedPairwiseLoss(**kwargs)


def _triplet_reference(outputs, labels, margin, weights=None):
    """Three nested loops over (anchor, positive, negative): the definition, slowly."""
    unit = torch.nn.functional.normalize(outputs.double(), dim=1)
    total, count = 0.0, 0
    batch = outputs.shape[0]
    for a in range(batch):
        for p in range(batch):
            if p == a or labels[p] != labels[a]:
                continue
            for n in range(batch):
                if labels[n] == labels[a]:
                    continue
                d_ap = (1 - float(unit[a] @ unit[p])) / 2
                d_an = (1 - float(unit[a] @ unit[n])) / 2
                scale = 1.0 if weights is None else float(weights[a] * weights[p])
                total += scale * max(0.0, d_ap - d_an + margin)
                count += 1
    return total / max(count, 1)


@pytest.mark.parametrize("weighted", [False, True])
def test_triplet_term_matches_the_definition(weighted):
    from gg_augment.losses import triplet_margin_loss

    generator = torch.Generator().manual_seed(3)
    outputs = torch.tanh(torch.randn(9, 6, generator=generator))
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 0])
    weights = torch.rand(9, generator=generator) if weighted else None
    ours = triplet_margin_loss(outputs, labels, 0.3, weights)
    assert abs(float(ours) - _triplet_reference(outputs, labels, 0.3, weights)) < 1e-5


def test_loss_options_bank_only_bank_plus_batch_and_triplet():
    generator = torch.Generator().manual_seed(4)
    outputs = torch.tanh(torch.randn(8, 12, generator=generator)).requires_grad_()
    labels = torch.arange(8) % 3
    bank = torch.tanh(torch.randn(20, 12, generator=generator))
    bank_labels = torch.arange(20) % 3
    weight = torch.rand(8, generator=generator)
    bank_only = RetentionWeightedPairwiseLoss()(outputs, labels, weight, bank=bank, bank_labels=bank_labels)
    both = RetentionWeightedPairwiseLoss(add_in_batch=True)(outputs, labels, weight, bank=bank, bank_labels=bank_labels)
    in_batch = RetentionWeightedPairwiseLoss()(outputs, labels, weight)
    torch.testing.assert_close(both, bank_only + in_batch)
    from gg_augment.losses import triplet_margin_loss

    with_triplet = RetentionWeightedPairwiseLoss(triplet_weight=0.005, triplet_margin=0.3)(
        outputs, labels, weight, bank=bank, bank_labels=bank_labels
    )
    torch.testing.assert_close(with_triplet, bank_only + 0.005 * triplet_margin_loss(outputs, labels, 0.3))
    with_triplet.backward()
    assert bool(torch.isfinite(outputs.grad).all())
    assert "triplet_weight=0.005" in repr(RetentionWeightedPairwiseLoss(triplet_weight=0.005))
