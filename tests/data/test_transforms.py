"""The paper recipe's per-method training transforms, checked against the authors' operations.

The authors' transforms are torchvision's (``Resize``, ``CenterCrop``, ``RandomResizedCrop``,
``RandomHorizontalFlip``, ``Normalize``, ``ScaleJitter``, ``RandomRotation``); each test
builds the expected image with torchvision's functional ops from a known image.
"""

from __future__ import annotations

import pytest
import torch
import torchvision.transforms.v2.functional as TF

from gg_augment import GCut, RetentionPipeline
from gg_augment.data.transforms import (
    BASELINE_TREATMENTS,
    TRAINING_METHODS,
    TrainingTransform,
    paper_training_transform,
    resize_centre_crop,
)
from gg_augment.functional import resized_crop_flip

from ..conftest import make_generator

SIZE = 24
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def _known_pixels(batch: int = 6, side: int = 32) -> torch.Tensor:
    """Smooth, asymmetric images in [0, 1]: a flip or a shifted crop shows in every pixel."""
    ys, xs = torch.meshgrid(torch.linspace(0, 1, side), torch.linspace(0, 1, side), indexing="ij")
    channels = torch.stack([ys, xs**2, (ys + 2 * xs) / 3])
    return torch.stack([channels * (0.5 + 0.5 * k / batch) for k in range(batch)])


def _normalise(pixels: torch.Tensor) -> torch.Tensor:
    return TF.normalize(pixels, list(MEAN), list(STD))


def _run(method: str, baselines: str = "authors", seed: int = 0, pixels: torch.Tensor | None = None):
    pixels = _known_pixels() if pixels is None else pixels
    transform = paper_training_transform(
        method, SIZE, baselines=baselines, mean=MEAN, std=STD, generator=make_generator("cpu", seed)
    )
    prepared = transform.prepare(_normalise(pixels))
    image, view = transform(prepared, index=torch.arange(pixels.shape[0]))
    return transform, prepared, image, view


def _authors_resize_centre_crop(images: torch.Tensor) -> torch.Tensor:
    """Resize(256·S/224) -> CenterCrop(S), the authors' G_t / erasing / query geometry."""
    return TF.center_crop(TF.resize(images, [round(SIZE * 256 / 224)], antialias=True), [SIZE, SIZE])


def _flipped_where(images: torch.Tensor, flips: torch.Tensor) -> torch.Tensor:
    return torch.where(flips.view(-1, 1, 1, 1), TF.horizontal_flip(images), images)


STEPS = {
    ("gt", "authors"): ("Resize(27)", "CenterCrop(24)", "RandomHorizontalFlip(0.5)", "Normalize"),
    ("gcut", "authors"): ("RandomResizedCrop(24, scale=(0.08, 1.0))", "RandomHorizontalFlip(0.5)", "Normalize"),
    ("gcut-approx", "authors"): ("RandomResizedCrop(24, scale=(0.08, 1.0))", "RandomHorizontalFlip(0.5)", "Normalize"),
    ("standard", "authors"): ("RandomResizedCrop(24, scale=(0.08, 1.0))", "RandomHorizontalFlip(0.5)", "Normalize"),
    ("none", "authors"): ("Resize((24, 24))", "Normalize"),
    ("none", "matched"): ("Resize(27)", "CenterCrop(24)", "Normalize"),
    ("erasing", "authors"): ("Resize(27)", "CenterCrop(24)", "RandomHorizontalFlip(0.5)"),
    ("erasing", "matched"): ("Resize(27)", "CenterCrop(24)", "RandomHorizontalFlip(0.5)", "Normalize"),
    ("other", "authors"): (
        "ScaleJitter((0.1, 2.0))", "RandomResizedCrop(24, scale=(0.08, 1.0))", "RandomHorizontalFlip(0.5)",
        "RandomRotation(120)", "Normalize",
    ),
}


@pytest.mark.parametrize(("method", "baselines"), sorted(STEPS))
def test_each_method_names_the_authors_sequence(method, baselines):
    assert paper_training_transform(method, SIZE, baselines=baselines, mean=MEAN, std=STD).steps == STEPS[method, baselines]


@pytest.mark.parametrize("method", [m for m in TRAINING_METHODS if m not in ("none", "erasing")])
def test_baseline_treatment_changes_only_none_and_erasing(method):
    steps = {paper_training_transform(method, SIZE, baselines=b, mean=MEAN, std=STD).steps for b in BASELINE_TREATMENTS}
    assert len(steps) == 1


@pytest.mark.parametrize("method", ["gt", "softcrop", "erasing"])
@pytest.mark.parametrize("baselines", BASELINE_TREATMENTS)
def test_gt_and_erasing_are_resize_centre_crop_flip(method, baselines):
    pixels = _known_pixels()
    _, prepared, image, view = _run(method, baselines, pixels=pixels)
    assert torch.allclose(prepared, _authors_resize_centre_crop(_normalise(pixels)), atol=1e-6)
    assert view is not None and view.flips is not None and 0 < int(view.flips.sum()) < pixels.shape[0]
    assert torch.allclose(view.boxes, torch.tensor([[0.0, 0.0, 1.0, 1.0]]).expand(pixels.shape[0], 4))
    expected = _flipped_where(_authors_resize_centre_crop(pixels), view.flips)
    if method != "erasing" or baselines == "matched":
        expected = _normalise(expected)
    torch.testing.assert_close(image, expected, atol=1e-5, rtol=0)


def test_authors_erasing_trains_on_pixels_while_queries_are_normalised():
    pixels = _known_pixels()
    _, _, image, _ = _run("erasing", "authors", pixels=pixels)
    assert image.min() >= -1e-6 and image.max() <= 1 + 1e-6  # pixels in [0, 1], not normalised
    query = resize_centre_crop(_normalise(pixels), SIZE)
    torch.testing.assert_close(query, _normalise(_authors_resize_centre_crop(pixels)), atol=1e-5, rtol=0)
    assert query.min() < -1.0  # the queries are normalised


def test_authors_none_is_a_plain_resize_without_crop_or_flip():
    pixels = _known_pixels()
    transform, prepared, image, _ = _run("none", "authors", pixels=pixels)
    expected = TF.resize(_normalise(pixels), [SIZE, SIZE], antialias=True)
    torch.testing.assert_close(prepared, expected, atol=1e-5, rtol=0)
    assert torch.equal(image, prepared)  # no flip, no crop: every call is the identity
    assert torch.equal(transform(prepared)[0], transform(prepared)[0])
    # It differs from the queries' resize + centre crop: another scale of the same image.
    assert not torch.allclose(image, resize_centre_crop(_normalise(pixels), SIZE), atol=1e-2)


def test_matched_none_is_the_query_transform():
    pixels = _known_pixels()
    _, _, image, _ = _run("none", "matched", pixels=pixels)
    torch.testing.assert_close(image, resize_centre_crop(_normalise(pixels), SIZE), atol=0, rtol=0)


@pytest.mark.parametrize("method", ["gcut", "gcut-approx", "standard"])
def test_gcut_and_standard_are_random_resized_crop_flip_of_the_whole_image(method):
    pixels = _known_pixels(batch=64)
    _, prepared, image, view = _run(method, pixels=pixels)
    assert torch.equal(prepared, _normalise(pixels))  # nothing before the crop
    torch.testing.assert_close(image, resized_crop_flip(prepared, view.boxes, view.flips, SIZE))
    area = (view.boxes[:, 2] - view.boxes[:, 0]) * (view.boxes[:, 3] - view.boxes[:, 1])
    assert area.min() < 0.3 and area.max() > 0.8 and area.min() >= 0.08 - 1e-6
    assert view.index.tolist() == list(range(64))


def test_gcut_crop_view_reaches_the_cached_gcut():
    from gg_augment import AttentionCache
    from gg_augment.models import RetrievalNet, SmallResNet

    model = RetrievalNet(SmallResNet(width=4), 32, 8)
    cache = AttentionCache(16, grid_size=4)
    crop = paper_training_transform("gcut-approx", SIZE, generator=make_generator("cpu", 1))
    pipeline = RetentionPipeline(GCut(model, cache=cache, grid_size=4, warmup="skip"), crop=crop)
    index = torch.tensor([0, 3, 9, 12])
    batch = pipeline.augment(_normalise(_known_pixels(batch=4)), index)
    assert batch.view.boxes is not None and batch.view.flips is not None and torch.equal(batch.view.index, index)
    area = (batch.view.boxes[:, 2] - batch.view.boxes[:, 0]) * (batch.view.boxes[:, 3] - batch.view.boxes[:, 1])
    assert bool((area < 1).all())  # a random resized crop, not the whole image
    with pipeline.recording(batch):
        model(batch.images)
    assert cache.seen.nonzero().flatten().tolist() == [0, 3, 9, 12]


def test_other_is_jitter_crop_flip_rotation_with_black_corners():
    pixels = torch.rand(64, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    transform, _, image, view = _run("other", pixels=pixels)
    assert view is None  # a rotated image has no crop box
    black = _normalise(torch.zeros(1, 3, 1, 1))
    corner_black = (image[:, :, 0, 0] - black[:, :, 0, 0]).abs().amax(dim=1) < 1e-5
    assert 0.3 < corner_black.float().mean() < 1.0  # most rotations of up to 120° blacken a corner
    again = _run("other", pixels=pixels)[2]
    assert torch.equal(image, again)  # seeded


def test_scale_jitter_loses_resolution_only_when_it_shrinks():
    checker = ((torch.arange(32).view(-1, 1) + torch.arange(32).view(1, -1)) % 2).float().expand(4, 3, 32, 32)
    flip_free = TrainingTransform(32, base="resize", scale_jitter=(1.0, 1.9))
    torch.testing.assert_close(flip_free(checker)[0], checker)
    shrink = TrainingTransform(32, base="resize", scale_jitter=(0.25, 0.25))
    shrunk = shrink(checker)[0]
    expected = TF.resize(TF.resize(checker, [8, 8], antialias=True), [32, 32], antialias=True)
    torch.testing.assert_close(shrunk, expected, atol=1e-5, rtol=0)
    assert shrunk.std() < 0.1 * checker.std()


def test_bad_arguments_name_themselves():
    with pytest.raises(ValueError, match="method must be one of"):
        paper_training_transform("cutout", SIZE)
    with pytest.raises(ValueError, match="baselines must be one of"):
        paper_training_transform("none", SIZE, baselines="theirs")
    with pytest.raises(ValueError, match="normalized=False needs the mean and std"):
        paper_training_transform("erasing", SIZE, baselines="authors")
    with pytest.raises(ValueError, match="base='full' needs a crop"):
        TrainingTransform(SIZE)
    with pytest.raises(ValueError, match="rotation must lie in"):
        TrainingTransform(SIZE, base="resize", rotation=200)


def test_training_base_is_what_prepare_applies():
    from gg_augment.data.transforms import prepare_images, training_base

    pixels = _normalise(_known_pixels())
    for method in TRAINING_METHODS:
        for baselines in BASELINE_TREATMENTS:
            base = training_base(method, baselines)
            transform = paper_training_transform(method, SIZE, baselines=baselines, mean=MEAN, std=STD)
            assert transform.base == base
            assert torch.equal(transform.prepare(pixels), prepare_images(pixels, base, SIZE))
            assert torch.equal(prepare_images(pixels[0], base, SIZE), prepare_images(pixels, base, SIZE)[0])
    assert training_base("none") == "resize" and training_base("none", "matched") == "centre-crop"
