"""Benchmark scripts run end to end on tiny settings and write their result files.

No subprocess here has a timeout: a loaded machine makes them slow, never wrong."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = ROOT / "benchmarks"


def _run(script: str, *args: str) -> subprocess.CompletedProcess:
    finished = subprocess.run([sys.executable, str(BENCHMARKS / script), *args], capture_output=True, text=True, cwd=BENCHMARKS)
    assert finished.returncode == 0, finished.stderr[-3000:]
    return finished


def _study(*args: str) -> subprocess.CompletedProcess:
    finished = subprocess.run([sys.executable, "-m", "benchmarks.study", *args], capture_output=True, text=True, cwd=ROOT)
    assert finished.returncode == 0, finished.stderr[-3000:]
    return finished


@pytest.mark.parametrize(
    ("preset", "table"), [("cpu-scratch", "all"), ("cpu-pretrained", "baselines"), ("gpu", "main"), ("paper", "main")]
)
def test_study_presets_smoke(tmp_path, preset, table):
    # Each preset at tiny size (the gpu preset on the CPU; the paper preset only builds its
    # configurations, as it needs CIFAR-10 and a GPU). Never a full study.
    finished = _study("--preset", preset, "--table", table, "--smoke", "--jobs", "2", "--out", str(tmp_path))
    folder = tmp_path / preset
    if preset == "paper":
        assert "run configurations built" in finished.stdout
        return
    tables = ("main", "gap", "robustness", "ablation", "efficiency", "approximate") if table == "all" else (table,)
    for name in tables:
        for suffix in ("md", "csv", "png", "json"):
            assert (folder / f"{name}.{suffix}").stat().st_size > 0, f"{name}.{suffix}"
    # The preset's description gives its sizes; the smoke's own are said beside it.
    assert "- changed by the command for every run: `limit_train=96," in (folder / f"{tables[0]}.md").read_text()
    if table == "baselines":
        # The paper recipe's none and erasing, as the authors trained them and matched to the queries.
        baselines = json.loads((folder / "baselines.json").read_text())
        names = [row["method"] for row in baselines["rows"]]
        assert names == ["none (authors)", "standard", "gcut", "gcut-approx", "none (matched)"]
        gcut = next(row for row in baselines["rows"] if row["method"] == "gcut")
        assert "±" in gcut["32: Δ vs none (authors)"] and "±" in gcut["32: Δ vs none (matched)"]
        assert set(baselines["per_seed"]["none (matched)"]["32 bits"]) == {"0", "1"}
        return
    main = json.loads((folder / "main.json").read_text())
    assert [row["method"] for row in main["rows"]] == ["none", "standard", "gcut", "gcut-approx"]
    assert main["seeds"] == [0, 1] and main["trainer_settings"]["epochs"] == 1 and main["commit"] and main["machine"]
    # The values behind every cell, per seed, in the JSON and under the markdown table.
    assert set(main["per_seed"]["gcut"]["32 bits"]) == {"0", "1"}
    assert "## Per-seed values" in (folder / "main.md").read_text()
    gcut = next(row for row in main["rows"] if row["method"] == "gcut")
    assert "±" in gcut[next(k for k in gcut if k.endswith("bits"))]
    assert "±" in gcut[next(k for k in gcut if "Δ vs none" in k)]
    if table == "all":
        gap = json.loads((folder / "gap.json").read_text())["rows"]
        assert {row["epoch"] for row in gap} == {1} and all("±" in row["train mAP"] for row in gap)
        efficiency = {row["method"]: row for row in json.loads((folder / "efficiency.json").read_text())["rows"]}
        assert efficiency["gcut"]["forward calls / step"].startswith("2.0000")
        assert efficiency["standard"]["forward calls / step"].startswith("1.0000")
        ablation = json.loads((folder / "ablation.json").read_text())["rows"]
        assert ablation[1]["variant"] == "gcut, no retention weighting" and "±" in ablation[1]["paired Δ"]
        approximate = json.loads((folder / "approximate.json").read_text())
        seeds = approximate["per_seed"]
        deltas = [seeds["gcut-approx"]["32 bits"][s] - seeds["gcut"]["32 bits"][s] for s in ("0", "1")]
        assert approximate["rows"][0]["per-seed Δ (approximate − exact)"] == " / ".join(f"{d:+.4f}" for d in deltas)


def test_paired_delta_marks_only_consistent_differences(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks.study import stats as study

    assert study.paired_delta({0: 0.52, 1: 0.53, 2: 0.54}, {0: 0.50, 1: 0.51, 2: 0.52}) == "+0.0200 ± 0.0000*"
    noisy = study.paired_delta({0: 0.60, 1: 0.50, 2: 0.55}, {0: 0.50, 1: 0.55, 2: 0.55})
    assert noisy.startswith("+0.0167") and not noisy.endswith("*")
    assert study.parse_cell("-0.0136 ± 0.0036*") == (-0.0136, 0.0036) and study.parse_cell("-") is None
    assert study.per_seed({1: 0.02, 0: -0.01}, signed=True) == "-0.0100 / +0.0200"


def test_study_jobs_are_trainer_configurations(monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks.study.presets import PRESETS, departures
    from benchmarks.study.runner import Study
    from gg_augment.training import TrainConfig

    preset = PRESETS["cpu-pretrained"]
    study = Study("cpu-pretrained", preset, tmp_path, changes={"epochs": 2})
    jobs = study.method_jobs("gt")
    assert all(isinstance(job.config, TrainConfig) for job in jobs.values())
    config = jobs[1].config
    assert (config.augment, config.seed, config.epochs, config.arch, config.lr) == ("gt", 1, 2, "efficientnet_lite0", 3e-4)
    ablation = next(a for a in preset.ablations if a.name == "gt, no retention weighting")
    assert study.ablation_jobs(ablation)[0].config.no_retention and study.ablation_jobs(ablation)[0].config.code_lengths == (32,)
    assert "lr 0.0003 (paper preset: 3e-05)" in departures(preset.config()) and departures(PRESETS["paper"].config()) == []


def test_study_run_as_a_folder_says_how_to_run_it():
    finished = subprocess.run([sys.executable, str(BENCHMARKS / "study"), "--help"], capture_output=True, text=True, cwd=ROOT)
    assert finished.returncode == 1
    assert finished.stderr.strip() == "run the study as a module from the repository root: python -m benchmarks.study ..."


def test_study_methods_may_name_a_method_of_the_ablations_only(monkeypatch):
    # Softcrop is not in cpu-small-data-long's main table but has rule and weighting rows.
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks.study.__main__ import build_parser, choose

    parser = build_parser()
    args = parser.parse_args(["--preset", "cpu-small-data-long", "--table", "ablation", "--methods", "softcrop",
                              "--ablations", "weighting,rule"])
    preset, _ = choose(args, parser)
    assert [a.name for a in preset.ablations] == ["softcrop", "softcrop, no retention weighting", "softcrop, uncertain rule",
                                                   "softcrop, weighted rule"]
    finished = subprocess.run([sys.executable, "-m", "benchmarks.study", "--preset", "cpu-small-data-long", "--methods",
                               "softcrops"], capture_output=True, text=True, cwd=ROOT)
    assert finished.returncode == 2
    assert "argument --methods: not in the preset's methods or ablations: ['softcrops']" in finished.stderr


def test_every_preset_row_is_a_valid_configuration(monkeypatch, tmp_path):
    # A typo in a preset (a field, a choice, a reference row) must fail here, not an hour into
    # a study: every method and ablation run of every preset validates as a TrainConfig, and
    # every ablation is paired with a row the same preset has.
    monkeypatch.syspath_prepend(str(ROOT))
    from dataclasses import replace

    from benchmarks.study.presets import PRESETS
    from benchmarks.study.runner import Study

    for name, preset in PRESETS.items():
        study = Study(name, preset, tmp_path / name)
        rows = {ablation.name for ablation in preset.ablations}
        jobs = [job for method in preset.methods for job in study.method_jobs(method).values()]
        for ablation in preset.ablations:
            assert ablation.is_method or ablation.reference in rows, (name, ablation.name)
            jobs += study.ablation_jobs(ablation).values()
        for job in jobs:  # CUDA and the paper's data need not be here: the rest must check
            replace(job.config, device="cpu", data="embedded", data_root=None).validate()
        assert len({job.config.fingerprint() for job in jobs}) > 1


def test_augment_speed_reports_both_sides(tmp_path):
    finished = _run("augment_speed.py", "--batch", "16", "--repeats", "2", "--out", str(tmp_path))
    assert "GCut per-sample loop" in finished.stdout
    assert (tmp_path / "augment_speed.csv").read_text().count("\n") == 5


def test_efficiency_reports_forward_calls_and_memory(tmp_path):
    _run("efficiency.py", "--repeats", "1", "--steps", "1", "--batch", "32", "--out", str(tmp_path))
    rows = {row.split(",")[1]: row for row in (tmp_path / "efficiency.csv").read_text().splitlines()[1:]}
    assert set(rows) == {"standard", "gt", "gcut-exact", "gcut-approx", "eval-forward", "cache-read", "cache-write"}
    assert json.loads((tmp_path / "efficiency.json").read_text())["commit"]
    markdown = (tmp_path / "efficiency.md").read_text()
    # Exact G_cut pays a second forward per step; the approximate one does not after its warm-up.
    assert "| gcut-exact |" in markdown
    assert ",2.0," in rows["gcut-exact"] and ",1.0," in rows["gcut-approx"]
    assert (tmp_path / "efficiency.png").read_bytes()[:4] == b"\x89PNG"


def test_map_speed_checks_both_sides_agree(tmp_path):
    finished = _run("map_speed.py", "--queries", "20", "--database", "500", "--topk", "50", "--repeats", "1", "--out", str(tmp_path))
    assert "identical mAP for every candidate" in finished.stdout
    assert "the first 20 queries also match a per-query stable sort" in finished.stdout
    assert (tmp_path / "map_speed.csv").read_text().count("\n") >= 4  # header, ours x2, before (+ faiss)
    assert (tmp_path / "map_speed.png").read_bytes()[:4] == b"\x89PNG"


def test_memory_benchmark_streams_image_lists(tmp_path):
    _run("memory.py", "--sizes", "24,48", "--batch-size", "8", "--workers", "0", "--threads", "1", "--jpeg-size", "64",
         "--queries", "8", "--database", "16", "--cache", str(tmp_path / "data"), "--out", str(tmp_path))
    rows = (tmp_path / "memory.csv").read_text().splitlines()
    assert rows[0].startswith("train_images,main_peak_mib") and len(rows) == 3
    assert "peak-RSS ratio" in (tmp_path / "memory.md").read_text()
    assert (tmp_path / "memory.png").read_bytes()[:4] == b"\x89PNG"
    assert len(list((tmp_path / "data" / "n48" / "images").glob("*.jpg"))) == 48 + 8 + 16


def test_attention_focus_reports_lift_per_layer_and_definition(tmp_path):
    finished = _run("attention_focus.py", "--queries", "40", "--layers", "backbone.layer4,backbone.layer3",
                    "--name", "small", "--temperature", "0.5", "--out", str(tmp_path))
    assert "lift" in finished.stdout
    import csv

    with (tmp_path / "attention_focus_small.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["layer"], row["definition"], row["map"]) for row in rows] == [
        ("backbone.layer4", "mean", "4x4"), ("backbone.layer4", "energy", "4x4"),
        ("backbone.layer3", "mean", "8x8"), ("backbone.layer3", "energy", "8x8"),
    ]
    assert {row["temperature"] for row in rows} == {"0.5"}
    assert all(0 < float(row["lift"]) and 0 <= float(row["candidate_precision"]) <= 1 for row in rows)
    assert (tmp_path / "attention_focus_small.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((tmp_path / "attention_focus_small.json").read_text())["commit"]


def test_attention_focus_gives_each_temperature_its_rows(tmp_path):
    _run("attention_focus.py", "--queries", "24", "--definitions", "mean", "--temperature", "1,0.25",
         "--name", "sweep", "--out", str(tmp_path))
    rows = json.loads((tmp_path / "attention_focus_sweep.json").read_text())["rows"]
    assert [(row["layer"], row["temperature"]) for row in rows] == [("backbone.layer4", 1.0), ("backbone.layer4", 0.25)]
    # The same cells at both temperatures: only how the mass spreads over them differs.
    assert rows[0]["foreground_area"] == rows[1]["foreground_area"] and rows[0]["lift"] != rows[1]["lift"]
    assert "softmax temperature 1, 0.25" in (tmp_path / "attention_focus_sweep.md").read_text()


@pytest.mark.parametrize("value", ["0", "-1", "1,x", ""])
def test_attention_focus_refuses_a_bad_temperature_before_loading(value, tmp_path):
    finished = subprocess.run([sys.executable, str(BENCHMARKS / "attention_focus.py"), "--temperature", value,
                               "--out", str(tmp_path)], capture_output=True, text=True, cwd=BENCHMARKS)
    assert finished.returncode == 2
    assert "--temperature takes comma-separated numbers > 0" in finished.stderr.strip().splitlines()[-1]
    assert not any(tmp_path.iterdir())


def test_attention_focus_reads_a_study_run_folder(tmp_path):
    # The study's runs are trainer runs under <out>/<preset>/runs; a folder of two code lengths
    # needs --code-length to pick one.
    from gg_augment.training import RunLayout, TrainConfig, run

    config = TrainConfig(epochs=1, code_lengths=(8, 16), limit_train=32, limit_query=8, limit_database=16,
                         batch_size=16, progress=False, threads=1, out=tmp_path / "runs")
    run(config)
    folder = RunLayout.of(config.resolved()).directory
    finished = _run("attention_focus.py", "--checkpoint", str(folder), "--code-length", "16", "--queries", "12",
                    "--definitions", "energy", "--name", "study run", "--out", str(tmp_path))
    assert "| study run | backbone.layer4 | energy | 1 | 4x4 |" in finished.stdout


def test_model_retention_reports_each_score_beside_the_models(tmp_path):
    # No --checkpoint: it trains a one-epoch G_cut run on 64 images first.
    finished = _run("model_retention.py", "--train-epochs", "1", "--limit-train", "64", "--out", str(tmp_path))
    assert "AUC for hit@1" in finished.stdout
    rows = json.loads((tmp_path / "model_retention.json").read_text())["rows"]
    assert [(row["images"], row["score"]) for row in rows] == [
        ("clean", "model (soft)"), ("clean", "model (binary)"),
        ("G_cut", "attention score"), ("G_cut", "area score"), ("G_cut", "model (soft)"), ("G_cut", "model (binary)"),
        ("G_t", "shift score"), ("G_t", "model (soft)"), ("G_t", "model (binary)"),
    ]
    assert all(0.0 <= row["mean"] <= 1.0 and 0.0 <= row["hit@1"] <= 1.0 for row in rows)
    assert rows[4]["Spearman vs model (soft)"] == pytest.approx(1.0)
    assert (tmp_path / "model_retention.png").read_bytes()[:4] == b"\x89PNG"


def test_the_main_job_prints_the_study_baseline_for_its_own_setting(tmp_path):
    import importlib.util

    from gg_augment.training.cli import parse_config

    spec = importlib.util.spec_from_file_location("train_hashing", BENCHMARKS.parent / "examples" / "train_hashing.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    flags = ["--arch", "small", "--recipe", "fast", "--batch-size", "16", "--epochs", "120", "--limit-train", "1000",
             "--eval-every", "10", "--eval-train", "1000", "--device", "cpu"]
    table = tmp_path / "main.json"
    rows = [{"method": "none", "32 bits": "0.7100 ± 0.0040"}, {"method": "gcut", "32 bits": "0.6950 ± 0.0060"}]
    table.write_text(json.dumps({"preset": "cpu-small-data-long", "trainer_flags": flags, "seeds": [0, 1, 2], "rows": rows}))
    # The README's first command, no flags: the example's own defaults over the library's.
    main_job = parse_config("hashing", [], defaults=module.MAIN_JOB).result_config()
    note = module.study_baseline([{"code_length": 32, "map": 0.6939, "config": main_job}], table)
    assert "this run (gcut, seed 0): 0.6939" in note and "study none" in note and "0.7100 ± 0.0040" in note
    # The committed table is the main job's own setting too.
    assert "Study baseline, same setting (cpu-small-data-long preset" in module.study_baseline(
        [{"code_length": 32, "map": 0.5, "config": main_job}])
    other = parse_config("hashing", ["--epochs", "3"], defaults=module.MAIN_JOB).result_config()
    assert module.study_baseline([{"code_length": 32, "map": 0.5, "config": other}], table).startswith(
        "No study baseline for this setting (it differs from the cpu-small-data-long preset in: epochs)"
    )
    # A field recorded only when set (the model-measured retention) is a different setting too.
    model_weighted = parse_config("hashing", ["--retention-source", "model"], defaults=module.MAIN_JOB).result_config()
    assert module.study_baseline([{"code_length": 32, "map": 0.5, "config": model_weighted}], table).startswith(
        "No study baseline for this setting (it differs from the cpu-small-data-long preset in: retention_source)"
    )


def test_the_main_job_is_the_preset_its_note_reads(monkeypatch):
    # The example's defaults and the preset are written in two places (an example does not
    # import the benchmarks): they must name the same setting.
    import importlib.util

    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks.study.presets import PRESETS

    spec = importlib.util.spec_from_file_location("train_hashing", BENCHMARKS.parent / "examples" / "train_hashing.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    preset = PRESETS[module.STUDY_TABLE.parent.name]
    assert "gcut" in preset.methods and preset.code_lengths == (32,)
    training = {k: v for k, v in module.MAIN_JOB.items() if k != "threads"}  # the study runs one thread a run
    assert {k: v for k, v in preset.settings.items() if k in training} == training
