"""Runs, files and faults: kills at every write point, resume, configuration keys, permissions."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from gg_augment.io import write_atomic
from gg_augment.training import ConfigError, RunLayout, TrainConfig, run

TINY = TrainConfig(
    augment="gt", epochs=3, code_lengths=(8,), batch_size=32, limit_train=64, limit_query=20,
    limit_database=60, progress=False, threads=1, seed=1,
)

# A trainer process that dies (os._exit, as SIGKILL would leave it) in the middle of its
# N-th write of one file: the temp file is half written, the target untouched.
KILLER = textwrap.dedent(
    """
    import json, os, sys, tempfile
    from pathlib import Path
    import gg_augment.io as io
    from gg_augment.training import TrainConfig, run

    target, nth = sys.argv[1], int(sys.argv[2])
    config = TrainConfig(**json.loads(sys.argv[3]))
    real = io.write_atomic
    seen = {"count": 0}

    def dying_write(path, data):
        path = Path(path)
        if path.name == target:
            seen["count"] += 1
            if seen["count"] == nth:
                fd, _ = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
                os.write(fd, (data.encode() if isinstance(data, str) else data)[: 10])
                os._exit(137)
        real(path, data)

    io.write_atomic = dying_write
    run(config)
    """
)


def _config_json(config: TrainConfig) -> str:
    values = config.to_dict()
    values["code_lengths"] = tuple(values["code_lengths"])
    return json.dumps(values)


def _kill_during(config: TrainConfig, target: str, nth: int) -> None:
    finished = subprocess.run(
        [sys.executable, "-c", KILLER, target, str(nth), _config_json(config)],
        capture_output=True, text=True, timeout=1800,
    )
    assert finished.returncode == 137, finished.stderr[-2000:]


def _temp_files(root: Path) -> list[Path]:
    return sorted(root.rglob(".*.tmp"))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict:
    config = replace(TINY, out=tmp_path_factory.mktemp("straight"))
    result = run(config)[0]
    model = torch.load(RunLayout.of(config).checkpoint(8), weights_only=False)["model"]
    return {"result": result, "model": model}


@pytest.mark.parametrize(
    ("target", "nth"),
    [("checkpoint.pt", 2), ("metrics.jsonl", 2), ("final.json", 1), ("results.md", 1), ("results.json", 1)],
)
def test_a_kill_at_any_write_point_resumes_to_the_uninterrupted_result(tmp_path, uninterrupted, target, nth):
    config = replace(TINY, out=tmp_path)
    layout = RunLayout.of(config)
    _kill_during(config, target, nth)
    assert _temp_files(tmp_path), "the simulated kill should leave a half-written temp file"
    resumed = run(replace(config, resume=True))[0]
    assert resumed["map"] == uninterrupted["result"]["map"]
    model = torch.load(layout.checkpoint(8), weights_only=False)["model"]
    assert all(torch.equal(model[k], uninterrupted["model"][k]) for k in model)
    assert _temp_files(tmp_path) == []
    epochs = [json.loads(line)["epoch"] for line in layout.metrics(8).read_text().splitlines()]
    assert epochs == [0, 1, 2, 3]
    assert json.loads(layout.results_json.read_text())["results"][0]["map"] == resumed["map"]


def test_resume_refuses_a_changed_configuration_naming_the_keys(tmp_path):
    config = replace(TINY, out=tmp_path, stop_after=1)
    run(config)
    layout = RunLayout.of(config)
    state = torch.load(layout.checkpoint(8), weights_only=False)
    state["config"]["lr"] = 0.5  # as if another --lr had written this folder
    torch.save(state, layout.checkpoint(8))
    with pytest.raises(ValueError, match=r"another configuration.*lr: 0\.5 -> 0\.001"):
        run(replace(config, resume=True, stop_after=0))


def test_changed_configurations_get_their_own_folders_and_results(tmp_path):
    """A σ sweep with --resume must not read one σ's result for another (it used to)."""
    base = replace(TINY, out=tmp_path, epochs=1, resume=True)
    first = run(replace(base, gt_sigma=0.1))[0]
    second = run(replace(base, gt_sigma=0.3))[0]
    folders = sorted(p.name for p in tmp_path.iterdir())
    assert len(folders) == 2 and folders[0] != folders[1]
    assert first["config"]["gt_sigma"] == 0.1 and second["config"]["gt_sigma"] == 0.3
    again = run(replace(base, gt_sigma=0.1))[0]  # "already finished": same config, same answer
    assert again == first
    final = RunLayout.of(replace(base, gt_sigma=0.1)).final(8)
    stored = json.loads(final.read_text())
    stored["config"]["epochs"] = 7
    final.write_text(json.dumps(stored))
    with pytest.raises(ValueError, match="epochs: 7 -> 1"):
        run(replace(base, gt_sigma=0.1))


def test_control_fields_do_not_change_the_folder(tmp_path):
    config = replace(TINY, out=tmp_path)
    same = replace(config, resume=True, stop_after=2, threads=2, progress=True, eval_every=1, code_lengths=(8, 16))
    assert RunLayout.of(config) == RunLayout.of(same)
    assert RunLayout.of(config) != RunLayout.of(replace(config, crop_scale=0.5))


def test_a_run_that_trains_nothing_fails(tmp_path):
    with pytest.raises(ConfigError, match="limit_train must be 0 \\(all\\) or >= 2"):
        run(replace(TINY, out=tmp_path, limit_train=1))


def test_resume_rewrites_lost_metric_lines_and_logs_the_epoch_lr(tmp_path):
    config = replace(TINY, out=tmp_path, stop_after=2)
    run(config)
    layout = RunLayout.of(config)
    layout.metrics(8).write_text(layout.metrics(8).read_text().splitlines()[0] + "\n")  # epochs 1, 2 lost
    (layout.code_directory(8) / ".checkpoint.pt.abc.tmp").write_bytes(b"half")
    run(replace(config, resume=True, stop_after=0))
    lines = [json.loads(line) for line in layout.metrics(8).read_text().splitlines()]
    assert [h["epoch"] for h in lines] == [0, 1, 2, 3]
    assert lines[1]["lr"] == pytest.approx(1e-3)  # the first epoch trains at the initial lr
    assert _temp_files(tmp_path) == []


def test_resume_without_a_checkpoint_says_so(tmp_path, capsys):
    run(replace(TINY, out=tmp_path, epochs=1, resume=True))
    assert "no checkpoint of this configuration" in capsys.readouterr().err


def test_results_are_readable_under_the_usual_umask(tmp_path):
    old = os.umask(0o022)
    try:
        write_atomic(tmp_path / "result.json", "{}")
        run(replace(TINY, out=tmp_path / "run", epochs=1))
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "result.json").stat().st_mode) == 0o644
    modes = {stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "run").rglob("*") if p.is_file()}
    assert modes == {0o644}


def test_a_failed_atomic_write_leaves_no_temp_file(tmp_path):
    class Unwritable:
        pass

    with pytest.raises(TypeError):
        write_atomic(tmp_path / "x.json", Unwritable())  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []
