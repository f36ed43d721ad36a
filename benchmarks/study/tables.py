"""The study's tables, one function each: main, baselines (the authors' baselines against
matched ones), gap, robustness, ablation, efficiency and approximate (the paired comparison
of the approximate and the exact G_cut).

A builder takes a :class:`~.runner.Study`, runs what its cells need (finished runs are reused)
and returns a :class:`Table`: the visible rows, notes for the header, and the per-seed values
behind every cell (``{row: {column: {seed: value}}}``), which the JSON and markdown keep so a
sentence about one seed or one pair has a cell to point at.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from gg_augment import RandomErasingRetention
from gg_augment.hashing import sign_codes
from gg_augment.metrics import mean_average_precision
from gg_augment.training import RunData, encode, load_data

from .runner import Job, Study, load_model
from .stats import cell, mean_std, paired_delta, paired_differences, per_seed

__all__ = ["BUILDERS", "ERASED_AREAS", "TABLES", "Table"]

ERASED_AREAS = (0.2, 0.4, 0.6, 0.8)
PerSeed = dict[str, dict[str, dict[int, float]]]


@dataclass
class Table:
    rows: list[dict[str, Any]]
    notes: list[str]
    per_seed: PerSeed = field(default_factory=dict)


def _method_maps(study: Study, methods: tuple[str, ...]) -> dict[str, dict[int, dict[int, float]]]:
    """``{method: {bits: {seed: mAP}}}`` of the main table's runs (run first where missing)."""
    jobs = {m: study.method_jobs(m) for m in methods}
    study.ensure([j for per_seed_jobs in jobs.values() for j in per_seed_jobs.values()])
    maps: dict[str, dict[int, dict[int, float]]] = {}
    for method, per_seed_jobs in jobs.items():
        for seed, job in per_seed_jobs.items():
            for bits, final in job.finals().items():
                maps.setdefault(method, {}).setdefault(bits, {})[seed] = final["map"]
    return maps


def main_table(study: Study) -> Table:
    preset = study.preset
    maps = _method_maps(study, preset.methods)
    rows, worst = [], (0.0, "")
    for method in preset.methods:
        row: dict[str, Any] = {"method": method}
        for bits in preset.code_lengths:
            values = maps[method][bits]
            row[f"{bits} bits"] = cell(list(values.values()))
            worst = max(worst, (mean_std(list(values.values()))[1], f"{method} at {bits} bits"))
            for reference in ("standard", "none"):
                if reference in maps:
                    same = reference == method
                    row[f"{bits}: Δ vs {reference}"] = "-" if same else paired_delta(values, maps[reference][bits])
        rows.append(row)
    met = "met." if worst[0] <= 0.01 else "**not met**."
    notes = [f"Largest seed std in a cell: {worst[0]:.4f} ({worst[1]}); the target is ≤ 0.01: {met}"]
    per = {m: {f"{bits} bits": maps[m][bits] for bits in preset.code_lengths} for m in preset.methods}
    return Table(rows, notes, per)


#: The methods whose training the ``baselines`` option changes (``gg_augment.data.transforms``).
BASELINE_METHODS = ("none", "erasing")


def baselines_table(study: Study) -> Table:
    """Every method against ``none`` and erasing trained as the authors did (``none`` at
    Resize((S, S)) without flip, erasing on un-normalised pixels) and trained matched to the
    queries (normalised resize + centre crop): how much of a gain comes from the baselines."""
    resolved = study.base.resolved()
    if resolved.base_transform != "per-method":
        return Table([], [f"the {study.name} preset trains every method on one base transform "
                          f"({resolved.base_transform}): the baselines option does not apply, no baselines table"])
    preset = study.preset
    maps = _method_maps(study, preset.methods)
    theirs = {m: resolved.baselines for m in BASELINE_METHODS if m in preset.methods}
    other = "matched" if resolved.baselines == "authors" else "authors"
    jobs = {m: {seed: study.job(seed, preset.code_lengths, {"augment": m, "baselines": other}) for seed in preset.seeds}
            for m in theirs}
    study.ensure([j for per_seed_jobs in jobs.values() for j in per_seed_jobs.values()])
    for method, per_seed_jobs in jobs.items():
        for seed, job in per_seed_jobs.items():
            for bits, final in job.finals().items():
                maps.setdefault(f"{method} ({other})", {}).setdefault(bits, {})[seed] = final["map"]
    names = {m: f"{m} ({theirs[m]})" if m in theirs else m for m in preset.methods}
    maps = {names.get(m, m): v for m, v in maps.items()}
    references = [f"{m} ({t})" for m in theirs for t in ("authors", "matched")]
    rows, per = [], {}
    for name in [*names.values(), *(f"{m} ({other})" for m in theirs)]:
        row: dict[str, Any] = {"method": name}
        for bits in preset.code_lengths:
            values = maps[name][bits]
            row[f"{bits} bits"] = cell(list(values.values()))
            for reference in references:
                row[f"{bits}: Δ vs {reference}"] = "-" if reference == name else paired_delta(values, maps[reference][bits])
        rows.append(row)
        per[name] = {f"{bits} bits": maps[name][bits] for bits in preset.code_lengths}
    note = ("authors: none trained at Resize((S, S)) without flip, erasing on un-normalised pixels (as the authors "
            "ran them); matched: both on the queries' normalised resize + centre crop. The other methods are the "
            "same runs in both columns; each Δ pairs the runs of one seed.")
    return Table(rows, [note], per)


def approximate_table(study: Study) -> Table:
    """The approximate G_cut against the exact one, paired by seed, at every code length."""
    if not {"gcut", "gcut-approx"} <= set(study.preset.methods):
        return Table([], [f"the {study.name} preset does not run both G_cuts: no approximate table"])
    maps = _method_maps(study, ("gcut", "gcut-approx"))
    rows = []
    for bits in study.preset.code_lengths:
        exact, approx = maps["gcut"][bits], maps["gcut-approx"][bits]
        rows.append({
            "code length": bits,
            "exact G_cut": cell(list(exact.values())),
            "approximate G_cut": cell(list(approx.values())),
            "per-seed Δ (approximate − exact)": per_seed(paired_differences(approx, exact), signed=True),
            "paired Δ": paired_delta(approx, exact),
        })
    per = {m: {f"{bits} bits": maps[m][bits] for bits in study.preset.code_lengths} for m in ("gcut", "gcut-approx")}
    return Table(rows, ["Each Δ pairs the two runs of one seed (same split, initial weights and data order)."], per)


def gap_table(study: Study) -> Table:
    preset = study.preset
    bits = preset.ablation_bits
    if not study.base.eval_train:
        return Table([], [f"the {study.name} preset does not evaluate training images (no eval_train): no gap table"])
    jobs = {m: study.method_jobs(m) for m in preset.methods}
    study.ensure([j for per_seed_jobs in jobs.values() for j in per_seed_jobs.values()])
    rows: list[dict[str, Any]] = []
    per: PerSeed = {}
    for method, per_seed_jobs in jobs.items():
        histories = {seed: [h for h in job.history(bits) if "train_map" in h] for seed, job in per_seed_jobs.items()}
        for epoch in sorted({h["epoch"] for hist in histories.values() for h in hist}):
            train = {s: h["train_map"] for s, hist in histories.items() for h in hist if h["epoch"] == epoch}
            query = {s: h["map"] for s, hist in histories.items() for h in hist if h["epoch"] == epoch}
            rows.append({"method": method, "epoch": epoch, "train mAP": cell(list(train.values())),
                         "query mAP": cell(list(query.values())),
                         "gap (train - query)": cell(list(paired_differences(train, query).values()))})
            per.setdefault(method, {}).update({f"epoch {epoch} train": train, f"epoch {epoch} query": query})
    note = f"{bits} bits; train mAP: the first {study.base.eval_train:,} training images, un-augmented, as queries against the database."
    return Table(rows, [note], per)


def erase_queries(images: torch.Tensor, area: float, seed: int) -> torch.Tensor:
    eraser = RandomErasingRetention(
        scale=(area, area), ratio=(0.5, 2.0), fill=0.0, p=1.0, generator=torch.Generator().manual_seed(seed)
    )
    return eraser(images)[0]


def robustness_table(study: Study) -> Table:
    preset = study.preset
    bits = preset.ablation_bits
    jobs = {m: study.method_jobs(m) for m in preset.methods}
    study.ensure([j for per_seed_jobs in jobs.values() for j in per_seed_jobs.values()])
    data: RunData | None = None
    scores: PerSeed = {}
    for method, per_seed_jobs in jobs.items():
        for seed, job in per_seed_jobs.items():
            config = job.config.validate().resolved()
            if data is None:
                data = load_data(config)  # the trainer's own split, limits and base transform
            model = load_model(config, bits, data.query.channels)
            device = torch.device(config.device)
            database = sign_codes(encode(model, data.database.images, device))  # once per model
            query_labels, database_labels = data.query.labels.to(device), data.database.labels.to(device)
            for area in (0.0, *ERASED_AREAS):
                queries = data.query.images if area == 0.0 else erase_queries(data.query.images, area, seed)
                codes = sign_codes(encode(model, queries, device))
                value = float(mean_average_precision(codes, database, query_labels, database_labels, k=config.topk))
                scores.setdefault(method, {}).setdefault(f"erased {area:.1f}", {})[seed] = value
    rows = []
    for method, per_area in scores.items():
        row: dict[str, Any] = {"method": method, **{column: cell(list(v.values())) for column, v in per_area.items()}}
        if "standard" in scores:
            for column in per_area:
                if column != "erased 0.0":
                    reference = scores["standard"][column]
                    row[f"Δ vs standard @{column[-3:]}"] = "-" if method == "standard" else paired_delta(per_area[column], reference)
        rows.append(row)
    note = f"{bits} bits; each query loses one rectangle (zero fill) of the given share of its area, the same draw for every method at a seed."
    return Table(rows, [note], scores)


def ablation_table(study: Study) -> Table:
    preset = study.preset
    bits = preset.ablation_bits
    jobs = {a.name: study.ablation_jobs(a) for a in preset.ablations}
    study.ensure([j for per_seed_jobs in jobs.values() for j in per_seed_jobs.values()])
    values = {name: {seed: job.finals()[bits]["map"] for seed, job in per_seed_jobs.items()} for name, per_seed_jobs in jobs.items()}
    lifts = _attention_lifts(study, jobs, bits)
    rows = []
    for a in preset.ablations:
        row = {
            "variant": a.name,
            f"mAP ({bits} bits)": cell(list(values[a.name].values())),
            "vs": a.reference or "-",
            "paired Δ": paired_delta(values[a.name], values[a.reference]) if a.reference else "-",
        }
        if lifts:
            row["attention lift"] = cell(list(lifts[a.name].values())) if a.name in lifts else "-"
        rows.append(row)
    per = {name: {f"{bits} bits": v} for name, v in values.items()}
    for name, lift in lifts.items():
        per[name]["attention lift"] = lift
    notes = [f"{bits} bits; each Δ is against the reference row's runs at the same seeds."]
    if lifts:
        notes.append(f"attention lift: the share of the trained model's attention mass (the row's definition) on the "
                     f"garment over the garment's share of the image, on the first {LIFT_QUERIES} query images "
                     "(benchmarks/focus.py; 1.0 is a uniform map).")
    return Table(rows, notes, per)


#: Query images the attention lift is measured on.
LIFT_QUERIES = 500


def _attention_lifts(study: Study, jobs: dict[str, dict[int, Job]], bits: int) -> dict[str, dict[int, float]]:
    """``{row: {seed: lift}}`` for the rows whose G_cut cuts on the trained model's own attention."""
    from benchmarks.focus import attention_focus, foreground_mask

    lifts: dict[str, dict[int, float]] = {}
    data: RunData | None = None
    for name, per_seed_jobs in jobs.items():
        for seed, job in per_seed_jobs.items():
            config = job.config.validate().resolved()
            if config.augment not in ("gcut", "gcut-approx") or config.attention_model != "trained":
                break
            if data is None:
                data = load_data(config)
            model = load_model(config, bits, data.query.channels)
            images = data.query.images[:LIFT_QUERIES].to(config.device)
            focus = attention_focus(model, config.attention_layer, images, foreground_mask(images),
                                    config.attention_definition, config.attention_temperature)
            lifts.setdefault(name, {})[seed] = float(focus["lift"])
    return lifts


def efficiency_table(study: Study) -> Table:
    preset = study.preset
    names: list[str] = [m for m in ("standard", "gcut", "gcut-approx") if m in preset.methods]
    jobs = {m: study.method_jobs(m) for m in names}
    study.ensure([j for per_seed_jobs in jobs.values() for j in per_seed_jobs.values()])
    bits = preset.code_lengths[0]
    rows: list[dict[str, Any]] = []
    per: PerSeed = {}
    epoch_means: dict[str, tuple[float, float]] = {}
    for method in names:
        finals = {seed: job.finals()[bits] for seed, job in jobs[method].items()}
        epoch = {s: statistics.fmean(f["epoch_seconds"]) for s, f in finals.items()}
        later = {s: statistics.fmean(f["epoch_seconds"][1:]) for s, f in finals.items() if len(f["epoch_seconds"]) > 1}
        kind = next(iter(finals.values())).get("peak_memory_kind", "?")
        columns = {
            "epoch time (s)": epoch,
            "after the first epoch (s)": later,
            "forward calls / step": {s: f["forward_calls_per_step"] for s, f in finals.items()},
            f"peak memory (MiB, {kind})": {s: f["peak_memory_mib"] for s, f in finals.items()},
            f"mAP ({bits} bits)": {s: f["map"] for s, f in finals.items()},
        }
        per[method] = columns
        epoch_means[method] = (statistics.fmean(epoch.values()), statistics.fmean(later.values()) if later else float("nan"))
        rows.append({"method": method, **{k: cell(list(v.values())) if v else "n/a" for k, v in columns.items()}})
    if "gcut" in epoch_means:
        exact = epoch_means["gcut"]
        for row in rows:
            mine = epoch_means[row["method"]]
            row["epoch time / exact"] = f"{mine[0] / exact[0]:.3f}"
            row["after epoch 1 / exact"] = f"{mine[1] / exact[1]:.3f}"
    note = ("From the main table's runs (one process per run). The approximate G_cut's first epoch fills its cache "
            "with an extra forward (the warm-up), so its later epochs show the steady state.")
    return Table(rows, [note], per)


BUILDERS: dict[str, Callable[[Study], Table]] = {
    "main": main_table, "baselines": baselines_table, "gap": gap_table, "robustness": robustness_table, "ablation": ablation_table,
    "efficiency": efficiency_table, "approximate": approximate_table,
}
TABLES = tuple(BUILDERS)


# -- output ----------------------------------------------------------------------------------


def per_seed_markdown(per: PerSeed, seeds: tuple[int, ...]) -> str:
    """The values behind the cells, one line per row and column."""
    lines = ["## Per-seed values", "", "| row | column | " + " | ".join(f"seed {s}" for s in seeds) + " |",
             "| --- | --- | " + " | ".join("---" for _ in seeds) + " |"]
    for row, columns in per.items():
        for column, values in columns.items():
            lines.append(f"| {row} | {column} | " + " | ".join(f"{values[s]:.4f}" if s in values else "-" for s in seeds) + " |")
    return "\n".join(lines) + "\n"


def write_table(name: str, table: Table, study: Study, started: float, command: str) -> str | None:
    """Write the table as markdown, CSV, PNG and JSON under the study's folder; returns the
    markdown (None when the preset has no such table)."""
    from benchmarks.harness import markdown_table, provenance, provenance_lines, write_results

    from .plots import plot
    from .presets import departures

    if not table.rows:
        print("\n".join(table.notes))
        return None
    preset = study.preset
    settings = {**preset.settings, **study.changes}
    record = {
        "preset": study.name, "table": name, **provenance(command, started), "seeds": list(preset.seeds),
        "trainer_settings": settings,
        "trainer_config": {k: v for k, v in study.base.to_dict().items() if k not in ("augment", "seed")},
        "departures": departures(study.base), "notes": table.notes, "per_seed": table.per_seed,
    }
    header = "\n".join([
        f"# Study: {name} table, preset {study.name}",
        "",
        f"{preset.description}. mAP@all of sign codes, mean ± std over seeds {list(preset.seeds)}.",
        "",
        *provenance_lines(record),
        "  (this table's own; runs reused from earlier tables cost nothing here)",
        "- trainer settings: `" + ", ".join(f"{k}={v}" for k, v in settings.items()) + "`",
        *([f"- changed by the command for every run: `{', '.join(f'{k}={v}' for k, v in study.changes.items())}` "
           "(the first line describes the preset without these changes)"] if study.changes else []),
        "- departures from the paper preset (the authors' protocol as the trainer runs it): " + ("; ".join(record["departures"]) or "none"),
        *[f"- {note}" for note in table.notes],
    ])
    markdown = markdown_table(table.rows, header) + "\n" + per_seed_markdown(table.per_seed, preset.seeds)
    write_results(study.out, name, table.rows, markdown, plot(name, table.rows, f"{name} ({study.name})"), record)
    return markdown
