"""Issue 18: loss inputs are checked like ``outputs``; a term without its weight warns."""

from __future__ import annotations

import warnings

import pytest
import torch

from gg_augment.losses import RetentionWeightedPairwiseLoss


def _batch():
    generator = torch.Generator().manual_seed(0)
    outputs = torch.tanh(torch.randn(6, 8, generator=generator))
    multi_hot = torch.tensor([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 1], [1, 0, 1], [0, 1, 1]]).float()
    return outputs, multi_hot


def test_nan_in_multi_hot_labels_is_refused():
    outputs, labels = _batch()
    labels[2, 1] = float("nan")
    with pytest.raises(ValueError, match="labels multi-hot must hold only 0 .absent. and 1 .present.; got 1 other value"):
        RetentionWeightedPairwiseLoss()(outputs, labels)


def test_minus_one_in_multi_hot_labels_is_refused_by_the_loss_and_the_metric_alike():
    from gg_augment.metrics import mean_average_precision

    outputs, labels = _batch()
    labels[labels == 0] = -1  # "absent" in some toolkits
    with pytest.raises(ValueError, match="Map -1 .absent. with labels.clamp_min"):
        RetentionWeightedPairwiseLoss()(outputs, labels)
    codes = torch.where(outputs >= 0, 1.0, -1.0)
    with pytest.raises(ValueError, match="query_labels multi-hot must hold only 0"):
        mean_average_precision(codes, codes, labels, labels)


def test_nan_in_bank_labels_and_bank_is_refused():
    outputs, labels = _batch()
    bank, bank_labels = outputs.clone(), labels.clone()
    bank_labels[0, 0] = float("nan")
    with pytest.raises(ValueError, match="bank_labels multi-hot"):
        RetentionWeightedPairwiseLoss()(outputs, labels, bank=bank, bank_labels=bank_labels)
    bank[3, 3] = float("nan")
    with pytest.raises(ValueError, match="bank must be finite; got 1 NaN/Inf"):
        RetentionWeightedPairwiseLoss()(outputs, labels, bank=bank, bank_labels=labels)


def test_nan_in_binary_targets_and_class_terms_is_refused():
    outputs, labels = _batch()
    targets = torch.where(outputs >= 0, 1.0, -1.0)
    targets[0, 0] = float("nan")
    loss_fn = RetentionWeightedPairwiseLoss(quantization_weight=0.1, classification_weight=0.1)
    with pytest.raises(ValueError, match="binary_targets must be finite"):
        loss_fn(outputs, labels, binary_targets=targets)
    scores = torch.full((6, 3), float("nan"))
    with pytest.raises(ValueError, match="class_scores must be finite"):
        loss_fn(outputs, labels, class_scores=scores, class_targets=labels)


def test_a_term_passed_without_its_weight_warns():
    outputs, labels = _batch()
    targets = torch.where(outputs >= 0, 1.0, -1.0)
    with pytest.warns(UserWarning, match="binary_targets= was passed but quantization_weight=0"):
        RetentionWeightedPairwiseLoss()(outputs, labels, binary_targets=targets)
    with pytest.warns(UserWarning, match="class_scores= was passed but classification_weight=0"):
        RetentionWeightedPairwiseLoss()(outputs, labels, class_scores=labels, class_targets=labels)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        RetentionWeightedPairwiseLoss(quantization_weight=0.1)(outputs, labels, binary_targets=targets)


def test_without_validation_nothing_is_read():
    outputs, labels = _batch()
    labels[0, 0] = float("nan")
    value = RetentionWeightedPairwiseLoss(validate_args=False)(outputs, labels)
    assert value.shape == ()
