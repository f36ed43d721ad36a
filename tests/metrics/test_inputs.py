"""Issue 18 on the metrics side: one multi-hot rule, exclude_self on one set, validate_args."""

from __future__ import annotations

import pytest
import torch

from gg_augment.hashing import sign_codes
from gg_augment.metrics import (
    mean_average_precision,
    precision_at_k,
    precision_recall_curve,
    recall_at_k,
)


def _codes(count, bits=16, seed=0):
    return sign_codes(torch.randn(count, bits, generator=torch.Generator().manual_seed(seed)))


def test_exclude_self_on_two_different_sets_of_equal_size_is_refused():
    query, database = _codes(10, seed=1), _codes(10, seed=2)
    labels = torch.arange(10) % 3
    for metric in (mean_average_precision, recall_at_k, precision_at_k):
        with pytest.raises(ValueError, match="two different sets of equal size .their rows differ."):
            metric(query, database, labels, labels, metric="hamming", exclude_self=True)
    with pytest.raises(ValueError, match="their labels differ"):
        mean_average_precision(query, query, labels, labels.flip(0), exclude_self=True)


def test_exclude_self_accepts_the_same_set_in_two_tensors():
    codes = _codes(10, seed=3)
    labels = torch.arange(10) % 3
    same = mean_average_precision(codes, codes, labels, labels, exclude_self=True)
    copied = mean_average_precision(codes.clone(), codes.clone(), labels.clone(), labels.clone(), exclude_self=True)
    assert torch.equal(same, copied)


def test_nan_in_multi_hot_labels_is_refused_by_every_metric():
    codes = _codes(6, seed=4)
    labels = torch.eye(3)[torch.arange(6) % 3]
    labels[1, 2] = float("nan")
    for call in (
        lambda: mean_average_precision(codes, codes, labels, labels),
        lambda: recall_at_k(codes, codes, labels, labels, metric="hamming"),
        lambda: precision_at_k(codes, codes, labels, labels, metric="hamming"),
        lambda: precision_recall_curve(codes, codes, labels, labels),
    ):
        with pytest.raises(ValueError, match="multi-hot must hold only 0 .absent. and 1 .present."):
            call()


def test_every_metric_takes_validate_args():
    codes = _codes(6, seed=5)
    labels = torch.arange(6) % 2
    half = codes * 0.5  # not ±1: refused with validation, not read without
    for call in (
        lambda v: mean_average_precision(half, half, labels, labels, validate_args=v),
        lambda v: recall_at_k(half, half, labels, labels, metric="hamming", validate_args=v),
        lambda v: precision_at_k(half, half, labels, labels, metric="hamming", validate_args=v),
        lambda v: precision_recall_curve(half, half, labels, labels, validate_args=v),
    ):
        with pytest.raises(ValueError, match="only ±1 values"):
            call(True)
        call(False)


def test_sign_codes_refuses_nan():
    outputs = torch.tensor([[0.3, float("nan"), -0.2]])
    with pytest.raises(ValueError, match="outputs must not hold NaN.*1 NaN value"):
        sign_codes(outputs)
    assert sign_codes(outputs, validate_args=False).tolist() == [[1.0, 1.0, -1.0]]
    assert sign_codes(torch.tensor([float("inf"), -float("inf")])).tolist() == [1.0, -1.0]
