"""PerSample: one image at a time (Dataset side, torchvision v2), same distributions as batched."""

from __future__ import annotations

import pytest
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from gg_augment import GT, GCut, PerSample, RandomErasingRetention
from gg_augment.data import load_embedded


def _ks_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Two-sample Kolmogorov-Smirnov statistic."""
    values = torch.cat([a, b]).sort().values
    cdf_a = torch.searchsorted(a.sort().values, values, right=True) / a.numel()
    cdf_b = torch.searchsorted(b.sort().values, values, right=True) / b.numel()
    return float((cdf_a - cdf_b).abs().max())


@pytest.fixture(scope="module")
def image() -> torch.Tensor:
    return load_embedded("query").tensors[0][3]


@pytest.mark.parametrize(
    "make", [lambda g: GT(sigma=0.2, generator=g), lambda g: RandomErasingRetention.authors(generator=g)], ids=["gt", "erasing"]
)
def test_per_sample_draws_from_the_batched_distribution(image, make):
    count = 1500
    one_at_a_time = PerSample(make(torch.Generator().manual_seed(1)))
    single = torch.stack([one_at_a_time(image)[1] for _ in range(count)])
    batched = make(torch.Generator().manual_seed(2))(image.expand(count, -1, -1, -1).contiguous())[1]
    # KS critical value at alpha = 0.001 for 1500 vs 1500 draws: 1.95 * sqrt(2 / 1500) = 0.071.
    assert _ks_distance(single, batched) < 0.071
    assert abs(float((single == 1).float().mean()) - float((batched == 1).float().mean())) < 0.05


def test_composes_with_torchvision_v2_from_a_pil_image(image):
    pil = v2.ToPILImage()(image.clamp(-1, 1) * 0.5 + 0.5)
    transform = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True), PerSample(GT(sigma=0.1))])
    augmented, retention = transform(pil)
    assert isinstance(augmented, tv_tensors.Image) and augmented.shape[-2:] == (32, 32)
    assert retention.ndim == 0 and 0.0 <= float(retention) <= 1.0


def test_a_plain_tensor_stays_plain_and_the_input_is_untouched(image):
    before = image.clone()
    augmented, retention = PerSample(GT(sigma=0.3, generator=torch.Generator().manual_seed(0)))(image)
    assert type(augmented) is torch.Tensor and torch.equal(image, before) and not torch.equal(augmented, image)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: PerSample(GCut()), ValueError, "needs per-batch context"),
        (lambda: PerSample(torch.nn.Identity()), TypeError, "augmentation must be a retention augmentation"),
        (lambda: PerSample(GT())(torch.rand(2, 3, 8, 8)), ValueError, r"image must have shape \(C, H, W\)"),
        (lambda: PerSample(GT())([1, 2]), TypeError, "image must be a"),
    ],
)
def test_bad_inputs_are_named(call, error, message):
    with pytest.raises(error, match=message):
        call()
