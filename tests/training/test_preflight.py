"""Run-level reliability: checks before and after the data, the run-folder lock, the sweep,
the configuration note, divergence, and limits applied before decoding."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from gg_augment import io
from gg_augment.training import ConfigError, RunLayout, TrainConfig, run

TINY = TrainConfig(
    augment="gt", epochs=1, code_lengths=(8,), batch_size=32, limit_train=64, limit_query=20,
    limit_database=60, progress=False, threads=1, seed=1,
)


def test_a_run_records_its_configuration_and_releases_its_lock(tmp_path):
    config = replace(TINY, out=tmp_path)
    run(config)
    layout = RunLayout.of(config.validate().resolved())
    assert io.read_json(layout.config_json) == config.result_config()
    assert not (layout.directory / ".run.lock").exists()
    assert list(tmp_path.rglob(".*.tmp")) == []


def test_a_run_refused_for_a_busy_folder_names_out_and_the_holder(tmp_path):
    config = replace(TINY, out=tmp_path)
    with io.lock_run_folder(RunLayout.of(config.validate().resolved()).directory):
        with pytest.raises(ConfigError, match=rf"out run folder .* is in use by another run \(pid {os.getpid()} on host"):
            run(config)


HOLD = textwrap.dedent(
    """
    import sys, time
    from gg_augment.io import lock_run_folder
    lock_run_folder(sys.argv[1])
    print("locked", flush=True)
    time.sleep(600)
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="flock")
def test_a_run_whose_last_writer_was_killed_proceeds_and_sweeps_its_temp_files(tmp_path):
    config = replace(TINY, out=tmp_path)
    layout = RunLayout.of(config.validate().resolved())
    env = {**os.environ, "PYTHONPATH": str(Path(io.__file__).resolve().parents[1])}
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(layout.directory)], stdout=subprocess.PIPE, text=True, env=env)
    assert holder.stdout.readline().strip() == "locked"
    layout.code_directory(8).mkdir(parents=True)
    stale = layout.code_directory(8) / f".checkpoint.pt.{holder.pid}@{io._host()}.abcd1234.tmp"
    stale.write_bytes(b"half")
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=1800)
    assert run(config)[0]["map"] is not None
    assert not stale.exists()


def test_the_resume_note_names_the_setting_that_differs(tmp_path, capsys):
    run(replace(TINY, out=tmp_path, gt_sigma=0.1))
    capsys.readouterr()
    run(replace(TINY, out=tmp_path, gt_sigma=0.3, resume=True))
    err = capsys.readouterr().err
    assert "other configurations: embedded-small-gt-seed1-" in err and "gt_sigma: 0.1 -> 0.3" in err


def test_the_data_root_is_one_configuration_however_spelled(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    spellings = ["data", str(tmp_path / "data"), "./data/", "link", Path("data")]
    tags = {RunLayout.of(TrainConfig(data="cifar10", data_root=s).resolved()).directory.name for s in spellings}
    assert len(tags) == 1


def test_divergence_is_one_error_naming_the_epoch_and_lr(tmp_path):
    for validation in ("always", "never"):
        config = replace(TINY, out=tmp_path / validation, lr=1e12, epochs=2, validation=validation)
        with pytest.raises(ConfigError, match=r"lr is 1e\+12 and training diverged in epoch 1 .*lower --lr"):
            run(config)


def test_limits_apply_before_decoding_an_in_memory_image_list(image_list_root, monkeypatch):
    from gg_augment.data import ImageListDataset
    from gg_augment.training.data import load_data

    root, _, _ = image_list_root
    (root / "query.txt").write_text((root / "test.txt").read_text())
    decoded = []
    original = ImageListDataset.load_image

    def counting(self, index):
        decoded.append(index)
        return original(self, index)

    monkeypatch.setattr(ImageListDataset, "load_image", counting)
    config = TrainConfig(data="imagelist", data_root=root, stream=False, image_size=16, limit_train=3, limit_query=2, limit_database=4)
    data = load_data(config.validate().resolved())
    assert (len(data.train), len(data.query), len(data.database)) == (3, 2, 4)
    assert len(decoded) == 3 + 2 + 4


def test_checks_after_the_data_come_before_the_untrained_evaluation(tmp_path, monkeypatch):
    import gg_augment.training.data as data_module
    import gg_augment.training.trainer as trainer

    real = data_module.load_splits

    def damaged(config):  # a data folder whose pixels hold a NaN
        splits = real(config)
        splits.database.images[3, 0, 5, 5] = float("nan")
        return splits

    def no_evaluation(*_args, **_kwargs):
        raise AssertionError("evaluated before the data checks")

    monkeypatch.setattr(data_module, "load_splits", damaged)
    monkeypatch.setattr(trainer, "evaluate", no_evaluation)
    with pytest.raises(ConfigError, match=r"data gives 1 NaN/Inf pixel value\(s\) in the database split"):
        run(replace(TINY, out=tmp_path))


def test_a_checkpoint_of_every_kind_loads_weights_only(tmp_path):
    for mode, augment in (("real", "gcut-approx"), ("hashing", "gcut")):
        config = replace(TINY, mode=mode, augment=augment, out=tmp_path / mode)
        run(config)
        state = io.load_checkpoint(RunLayout.of(config.validate().resolved()).checkpoint(8))
        assert json.dumps(state["config"]) and state["epoch"] == 1
