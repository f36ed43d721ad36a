"""What a run shows and leaves behind: status lines before the first bar, an aligned table,
a curves PNG beside results.md, and a warning when training made retrieval worse."""

from __future__ import annotations

import pytest

from gg_augment.training.cli import main
from gg_augment.training.report import warn_below_untrained

TINY = ["--limit-train", "96", "--limit-query", "40", "--limit-database", "160", "--batch-size", "32",
        "--threads", "1", "--code-lengths", "8,16", "--epochs", "2", "--augment", "gt"]


def test_a_run_says_what_it_does_and_draws_its_curves(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    main("hashing", "test", ["--out", str(tmp_path), *TINY])
    captured = capsys.readouterr()
    for step in ("loading the embedded data", "loaded 96 training, 40 query and 160 database images",
                 "[8] evaluating the untrained network", "[16] evaluating the untrained network"):
        assert step in captured.err, captured.err[-2000:]
    [run] = [p for p in tmp_path.iterdir() if p.is_dir()]
    png = run / "curves.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"curves: {png}" in captured.out
    rows = [line for line in (run / "results.md").read_text().splitlines() if line.startswith("|")]
    assert len(rows) == 4 and len({len(row) for row in rows}) == 1, rows   # header, rule, 2 rows: aligned
    assert not list(run.rglob("*.tmp"))


def test_no_progress_keeps_stderr_quiet(tmp_path, capsys):
    main("hashing", "test", ["--out", str(tmp_path), *TINY, "--no-progress"])
    assert "loading the" not in capsys.readouterr().err


def test_a_run_below_its_untrained_map_is_named(capsys):
    lines = warn_below_untrained([
        {"code_length": 32, "map": 0.1140, "untrained_map": 0.1218},
        {"code_length": 64, "map": 0.5, "untrained_map": 0.12},
        {"code_length": 16, "map": None, "untrained_map": 0.12},
    ])
    assert len(lines) == 1 and "32" in lines[0] and "0.1140" in lines[0] and "0.1218" in lines[0]
    assert lines[0] in capsys.readouterr().err
