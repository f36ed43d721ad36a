"""The authors' triplet form (``form="centre"``) against hand-computed answers."""

from __future__ import annotations

import pytest
import torch

from gg_augment import RetentionWeightedPairwiseLoss
from gg_augment.losses import triplet_margin_loss


def test_centre_form_on_a_tiny_batch_by_hand():
    # Classes {0, 1} at 0 and 1, {2, 3} at 1.2 and 5 (one dimension, L2 = |a − b|).
    codes = torch.tensor([[0.0], [1.0], [1.2], [5.0]])
    labels = torch.tensor([0, 0, 1, 1])
    # Sample 0: centre 0.5, d(centre, itself) 0.5, nearest negative to the centre 1.2 (0.7):
    #   relu(0.5 − 0.7 + 0.3) = 0.1; sample 1 likewise 0.1.
    # Sample 2: centre 3.1, d = 1.9, nearest negative 1.0 (2.1): relu(1.9 − 2.1 + 0.3) = 0.1;
    #   sample 3: d(3.1, 5) = 1.9, the same negative: 0.1.
    torch.testing.assert_close(triplet_margin_loss(codes, labels, 0.3, form="centre"), torch.tensor(0.1), atol=1e-5, rtol=0)
    # With margin 0.1 every term is relu(−0.2 + 0.1) = 0.
    assert float(triplet_margin_loss(codes, labels, 0.1, form="centre")) == pytest.approx(0.0, abs=1e-5)
    # The all-triplets form is another number on the same batch.
    assert abs(float(triplet_margin_loss(codes, labels, 0.3)) - 0.1) > 1e-3


def test_centre_form_uses_l2_and_drops_samples_without_a_negative():
    codes = torch.tensor([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]])
    # Sample 2 shares a label with both others (multi-hot): no negative, so it is left out.
    labels = torch.tensor([[1, 0], [0, 1], [1, 1]])
    # Sample 0: members {0, 2}, centre (3, 4): d(centre, 0) = 5; negatives {1}: d(centre, 1) = 0:
    #   relu(5 − 0 + 0.3) = 5.3. Sample 1: members {1, 2}, centre (4.5, 6): d = 2.5; negative 0:
    #   d = 7.5: relu(2.5 − 7.5 + 0.3) = 0. Mean over the two: 2.65.
    torch.testing.assert_close(triplet_margin_loss(codes, labels, 0.3, form="centre"), torch.tensor(2.65), atol=1e-5, rtol=0)


def test_centre_form_skips_batches_of_20_or_fewer_in_the_loss():
    generator = torch.Generator().manual_seed(0)
    for batch, skipped in ((20, True), (21, False)):
        codes = torch.tanh(torch.randn(batch, 8, generator=generator))
        labels = torch.arange(batch) % 3
        plain = RetentionWeightedPairwiseLoss()(codes, labels)
        centre = RetentionWeightedPairwiseLoss(triplet_weight=0.5, triplet_form="centre")(codes, labels)
        expected = plain if skipped else plain + 0.5 * triplet_margin_loss(codes, labels, 0.3, form="centre")
        torch.testing.assert_close(centre, expected)
        assert skipped or float(triplet_margin_loss(codes, labels, 0.3, form="centre")) > 0


def test_centre_form_gradients_and_errors():
    codes = torch.tanh(torch.randn(24, 6)).requires_grad_()
    loss = triplet_margin_loss(codes, torch.arange(24) % 4, form="centre")
    loss.backward()
    assert bool(torch.isfinite(codes.grad).all()) and codes.grad.abs().sum() > 0
    single_class = triplet_margin_loss(codes, torch.zeros(24, dtype=torch.long), form="centre")
    assert float(single_class.detach()) == 0.0 and single_class.requires_grad
    with pytest.raises(ValueError, match="form must be one of"):
        triplet_margin_loss(codes, torch.arange(24) % 4, form="hard")
    with pytest.raises(ValueError, match="unweighted"):
        triplet_margin_loss(codes, torch.arange(24) % 4, weights=torch.ones(24), form="centre")
    with pytest.raises(ValueError, match="weight_triplets=True needs triplet_form='all'"):
        RetentionWeightedPairwiseLoss(triplet_weight=0.1, weight_triplets=True, triplet_form="centre")
