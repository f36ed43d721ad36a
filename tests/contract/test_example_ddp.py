"""The README's `torchrun --nproc_per_node 2 examples/train_hashing.py` finishes and writes its results.

Only rank 0 evaluates, so the other rank's results carry ``map=None``; the example's
study-baseline note used to format that and kill the run. The note only appears when the run's
setting is the study's, so these tests run the example beside a study table of their own
setting: the cheap one with tiny limits (default suite), the slow one at the study's own
setting shortened only in epochs.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "train_hashing.py"
STUDY = REPO / "docs" / "results" / "study" / "cpu-small-data-long" / "main.json"
TINY = ["--limit-train", "96", "--limit-query", "40", "--limit-database", "160", "--batch-size", "32"]


def _example_module():
    spec = importlib.util.spec_from_file_location("train_hashing_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _example_beside_a_study_of(tmp_path: Path, trainer_flags: list[str], code_length: int) -> Path:
    """A copy of the example whose study table (found next to it, as in the repo) has these flags."""
    (tmp_path / "examples").mkdir()
    shutil.copy(EXAMPLE, tmp_path / "examples" / EXAMPLE.name)
    table = tmp_path / STUDY.relative_to(REPO)
    table.parent.mkdir(parents=True)
    rows = [{"method": "gcut", f"{code_length} bits": "0.5000 ± 0.0100"}]
    # A table in the flags format (no trainer_config): the flags are the whole setting.
    table.write_text(json.dumps({"preset": "cpu-small-data-long", "seeds": [0, 1, 2], "trainer_flags": trainer_flags,
                                 "rows": rows}))
    return tmp_path / "examples" / EXAMPLE.name


def _torchrun(script: Path, port: int, *flags: str, timeout: int) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port), str(script), *flags]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=script.parents[1])


def _results(out: Path) -> dict:
    (run_folder,) = [p for p in out.iterdir() if p.is_dir()]
    for name in ("results.md", "results.json"):
        assert (run_folder / name).is_file(), f"{name} missing in {run_folder}"
    finals = list(run_folder.glob("bits*/final.json"))
    assert finals, f"no final.json under {run_folder}"
    return json.loads((run_folder / "results.json").read_text())


def _main_job_config(example) -> dict:
    """The result configuration of the README's first command (no flags): the study table's setting."""
    return example.parse_config("hashing", [], defaults=example.MAIN_JOB).result_config()


def test_the_note_tolerates_a_rank_without_map():
    example = _example_module()
    config = _main_job_config(example)
    note = example.study_baseline([{"code_length": 32, "config": config, "map": None}])
    assert "32 bits: this run (gcut, seed 0): not evaluated" in note


def test_the_note_is_printed_by_the_main_rank_only(monkeypatch, capsys):
    example = _example_module()
    config = _main_job_config(example)
    finals = [{"code_length": 32, "config": config, "map": 0.61}]
    monkeypatch.setenv("RANK", "1")
    example.print_study_note(finals)
    assert capsys.readouterr().out == ""
    monkeypatch.setenv("RANK", "0")
    example.print_study_note(finals)
    assert "this run (gcut, seed 0): 0.6100" in capsys.readouterr().out


def test_torchrun_two_ranks_finishes_where_the_note_applies(tmp_path):
    flags = ["--code-lengths", "8", "--epochs", "1", "--eval-every", "1", *TINY]
    script = _example_beside_a_study_of(tmp_path, flags, 8)
    out = tmp_path / "out"
    finished = _torchrun(script, 29561, *flags, "--out", str(out), "--no-progress", "--threads", "1", timeout=1800)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert finished.stdout.count("Study baseline, same setting") == 1  # the note, from rank 0 only
    assert 0.0 <= _results(out)["results"][0]["map"] <= 1.0


@pytest.mark.slow
def test_torchrun_two_ranks_at_the_study_setting_shortened_in_epochs(tmp_path):
    """The README's command at the study's own setting (the main job's defaults), 1 epoch."""
    record = json.loads(STUDY.read_text())
    flags = ["--" + k.replace("_", "-") + "=" + str(v) for k, v in record["trainer_settings"].items() if k != "epochs"]
    script = _example_beside_a_study_of(tmp_path, [*flags, "--epochs", "1"], 32)
    out = tmp_path / "out"
    finished = _torchrun(script, 29563, "--epochs", "1", "--out", str(out), "--no-progress", timeout=1800)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert finished.stdout.count("Study baseline, same setting") == 1
    results = _results(out)
    assert results["config"]["epochs"] == 1 and 0.0 <= results["results"][0]["map"] <= 1.0
