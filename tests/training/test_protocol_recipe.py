"""``--recipe paper`` is the authors' protocol: each departure is an option whose paper
default is their behaviour, and ``fast`` keeps ours."""

from __future__ import annotations

import math

import pytest
import torch

from gg_augment.data.transforms import TrainingTransform, prepare_images
from gg_augment.training import (
    TrainConfig,
    build_model,
    build_optimizer,
    build_pipeline,
    load_data,
    load_splits,
)
from gg_augment.training.cli import main, parse_config
from gg_augment.training.objective import build_objective

TINY = ["--limit-train", "64", "--limit-query", "20", "--limit-database", "80", "--batch-size", "32", "--no-progress", "--threads", "1"]


def _config(*argv: str) -> TrainConfig:
    return parse_config("hashing", [*TINY, *argv])


def test_paper_defaults_are_the_authors_and_fast_keeps_ours():
    paper, fast = _config("--recipe", "paper").settings(), _config().settings()
    assert (paper.base_transform, paper.baselines, paper.triplet_form, paper.cosine_tmax, paper.head_init, paper.cut_count) == (
        "per-method", "authors", "centre", "authors", "authors", "authors"
    )
    assert (fast.base_transform, fast.triplet_form, fast.cosine_tmax, fast.head_init, fast.cut_count) == (
        "crop-flip", "all", "epochs", "default", "truncated"
    )


def _pipeline(config: TrainConfig, data=None):
    data = data if data is not None else load_data(config)
    model = build_model(config, 8, data.train.channels)
    stats = (data.split_info["mean"], data.split_info["std"])
    return build_pipeline(config, model, len(data.train), torch.Generator().manual_seed(0), *stats)[0], data


def test_authors_none_trains_at_resize_without_flip_while_queries_are_centre_cropped():
    config = _config("--recipe", "paper", "--augment", "none")
    pipeline, data = _pipeline(config)
    loaded = load_splits(config)
    train = loaded.train.tensors[0][:64]
    # Resize((S, S)): the embedded images already are S x S, so nothing changes; no centre crop.
    assert torch.equal(data.train.images, prepare_images(train, "resize", config.image_size))
    assert torch.equal(data.train.images, train)
    assert torch.equal(data.query.images, prepare_images(loaded.query.tensors[0][:20], "centre-crop", config.image_size))
    assert isinstance(pipeline.crop, TrainingTransform) and pipeline.crop.steps == ("Resize((32, 32))", "Normalize")
    x = data.train.images[:16]
    assert torch.equal(pipeline(x, torch.arange(16))[0], x)  # no flip, no crop
    matched, matched_data = _pipeline(_config("--recipe", "paper", "--augment", "none", "--baselines", "matched"))
    assert torch.equal(matched_data.train.images, prepare_images(train, "centre-crop", config.image_size))


def test_authors_erasing_trains_on_unnormalised_pixels():
    config = _config("--recipe", "paper", "--augment", "erasing")
    pipeline, data = _pipeline(config)
    assert "Normalize" not in pipeline.crop.steps and not pipeline.crop.normalized
    mean, std = data.split_info["mean"][0], data.split_info["std"][0]
    x = data.train.images[:32]
    out, _ = pipeline(x, torch.arange(32))
    # Pixels in [0, 1] (the embedded data is normalised, with values far below 0 and above 1).
    assert out.min() >= -1e-5 and out.max() <= 1 + 1e-5 and x.min() < -0.5
    untouched = (out - (x * std + mean)).abs().amax(dim=(1, 2, 3)) < 1e-5
    flipped = (out - (x.flip(-1) * std + mean)).abs().amax(dim=(1, 2, 3)) < 1e-5
    assert bool((untouched | flipped).sum() > 0)
    matched, _ = _pipeline(_config("--recipe", "paper", "--augment", "erasing", "--baselines", "matched"))
    assert matched.crop.normalized


def test_gcut_trains_on_a_random_resized_crop_whose_view_reaches_the_cache():
    pipeline, _ = _pipeline(_config("--recipe", "paper", "--augment", "gcut-approx"))
    assert pipeline.crop.steps[0].startswith("RandomResizedCrop(32, scale=(0.08, 1.0))")
    assert pipeline.augmentation.count_rule == "authors"
    fast, _ = _pipeline(_config("--augment", "gcut"))
    assert fast.augmentation.count_rule == "truncated" and not isinstance(fast.crop, TrainingTransform)


@pytest.mark.parametrize(
    ("argv", "pixels", "side"),
    [
        ([], 60, 224),
        (["--arch", "resnet50", "--image-size", "64"], 70, 224),
        (["--arch", "inception_v3", "--image-size", "96"], 80, 299),
        (["--arch", "vit_b_32", "--image-size", "64"], 60, 224),
    ],
)
def test_gt_sigma_per_backbone(argv, pixels, side):
    assert _config("--recipe", "paper", *argv).settings().gt_sigma == pytest.approx(pixels / side)
    assert _config(*argv).settings().gt_sigma == 0.3


@pytest.mark.parametrize(("preset", "pixels"), [("imagenet-100", 80), ("coco", 50), ("nus-wide-21", 60)])
def test_gt_sigma_per_dataset(preset, pixels, tmp_path):
    config = TrainConfig(recipe="paper", data="imagelist", data_root=tmp_path, imagelist_preset=preset)
    assert config.settings().gt_sigma == pytest.approx(pixels / 224)


def test_cosine_t_max_is_150_under_paper_and_the_epochs_under_fast():
    for argv, t_max in ((["--recipe", "paper", "--epochs", "4"], 150), (["--epochs", "4"], 4), (["--recipe", "paper", "--epochs", "4", "--cosine-tmax", "epochs"], 4)):
        config = _config(*argv)
        _, scheduler = build_optimizer(config, torch.nn.Linear(2, 2))
        assert scheduler.T_max == t_max


def test_head_init_under_paper_is_xavier_normal():
    torch.manual_seed(0)
    model = build_model(_config("--recipe", "paper"), 64, 3)
    weight = model.head.weight.detach()
    assert torch.equal(model.head.bias.detach(), torch.zeros(64))
    assert abs(weight.std().item() / math.sqrt(2 / (weight.shape[1] + 64)) - 1) < 0.1
    assert not torch.equal(build_model(_config(), 64, 3).head.bias.detach(), torch.zeros(64))


def test_triplet_form_reaches_the_loss():
    for argv, form in ((["--recipe", "paper"], "centre"), ([], "all"), (["--recipe", "paper", "--triplet-form", "all"], "all")):
        config = _config(*argv)
        objective = build_objective(config, 8, torch.arange(10) % 2, 2, torch.device("cpu"), _ctx())
        assert objective.loss_fn.triplet_form == form


def _ctx():
    from gg_augment.training import Distributed

    return Distributed()


@pytest.mark.parametrize("augment", ["other", "none", "erasing", "gcut"])
def test_paper_methods_train_end_to_end(tmp_path, augment):
    results = main("hashing", "test", ["--out", str(tmp_path), *TINY, "--recipe", "paper", "--augment", augment, "--epochs", "1", "--code-lengths", "8"])
    assert 0.0 <= results[0]["map"] <= 1.0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--cut-count", "paper"], "argument --cut-count: invalid choice"),
        (["--baselines", "theirs"], "argument --baselines: invalid choice"),
        (["--triplet-form", "hard"], "argument --triplet-form: invalid choice"),
        (["--cosine-tmax", "200"], "argument --cosine-tmax: invalid choice"),
        (["--head-init", "orthogonal"], "argument --head-init: invalid choice"),
        (["--recipe", "paper", "--weight-triplets"], "argument --weight-triplets: needs --triplet-form all"),
        (["--arch", "vit_b_32", "--image-size", "48"], "argument --image-size: must be a multiple of 32 for vit_b_32"),
    ],
)
def test_bad_protocol_flags_are_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main("hashing", "test", [*TINY, *argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_streaming_prepares_each_split_in_workers():
    import pickle

    config = _config("--recipe", "paper", "--augment", "none", "--stream")
    data = load_data(config)
    images = next(iter(data.query.eval_batches()))
    loaded = load_splits(config).query.tensors[0][: images.shape[0]]
    assert torch.equal(images, prepare_images(loaded, "centre-crop", 32))
    pickle.dumps(data.train.dataset.fn)  # workers receive the prepare step
