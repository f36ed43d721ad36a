"""The authors' settings tables: G_t's sigma per dataset and backbone, T_max, head init."""

from __future__ import annotations

import pytest
import torch

from gg_augment.protocol import authors_gt_sigma, authors_head_init, cosine_t_max


@pytest.mark.parametrize(
    ("dataset", "pixels"), [("cifar10", 60), ("nus-wide-21", 60), ("imagenet-100", 80), ("coco", 50), ("embedded", 60)]
)
def test_gt_sigma_per_dataset(dataset, pixels):
    assert authors_gt_sigma(dataset, "small") == pytest.approx(pixels / 224)
    assert authors_gt_sigma(dataset, "resnet50", rule="dataset") == pytest.approx(pixels / 224)


@pytest.mark.parametrize(("arch", "pixels", "side"), [("resnet50", 70, 224), ("inception_v3", 80, 299), ("vit_b_32", 60, 224), ("vit_b_16", 60, 224)])
def test_gt_sigma_backbone_override(arch, pixels, side):
    for dataset in ("cifar10", "imagenet-100", "coco"):
        assert authors_gt_sigma(dataset, arch) == pytest.approx(pixels / side)


def _rates(t_max: int, epochs: int, lr: float = 3e-5, lr_min: float = 1e-7) -> list[float]:
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=t_max, eta_min=lr_min)
    rates = []
    for _ in range(epochs):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates


def test_authors_t_max_is_150_whatever_the_epochs():
    import math

    assert cosine_t_max("authors", 6) == 150 and cosine_t_max("authors", 300) == 150
    assert cosine_t_max("epochs", 6) == 6
    rates = _rates(cosine_t_max("authors", 6), 6)
    # After 5 of 150 epochs the rate has barely moved: lr_min + (lr − lr_min)(1 + cos(5π/150))/2.
    assert rates[5] == pytest.approx(1e-7 + (3e-5 - 1e-7) * (1 + math.cos(5 * math.pi / 150)) / 2, rel=1e-6)
    assert rates[5] > 0.99 * 3e-5
    ours = _rates(cosine_t_max("epochs", 6), 7)
    assert ours[6] == pytest.approx(1e-7, rel=1e-6)  # our schedule reaches lr_min at the last epoch


def test_head_init_per_backbone():
    assert authors_head_init("resnet50") == "xavier_normal"
    assert authors_head_init("inception_v3") == "xavier_normal"
    assert authors_head_init("vit_b_32") == "kaiming_uniform"
    with pytest.raises(ValueError, match="rule must be one of"):
        cosine_t_max("paper", 5)
