"""``python -m benchmarks.study``, from the repository root: build the study's tables."""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

if not __package__:  # run as a folder (python benchmarks/study): the package would not import
    sys.exit("run the study as a module from the repository root: python -m benchmarks.study ...")

from benchmarks.harness import command_line
from benchmarks.study import __doc__ as STUDY_DOC
from benchmarks.study.plots import replot
from benchmarks.study.presets import ABLATION_GROUPS, PRESETS, SMOKE_METHODS, Preset
from benchmarks.study.runner import Study
from benchmarks.study.tables import BUILDERS, TABLES, write_table
from gg_augment.training import TrainConfig


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(","))


def _setting(text: str) -> tuple[str, Any]:
    """``FIELD=VALUE``: the value as JSON (numbers, true/false, lists), else as text."""
    name, sep, value = text.partition("=")
    if not sep or name not in TrainConfig.field_names():
        raise argparse.ArgumentTypeError(f"expected FIELD=VALUE with a TrainConfig field; got {text!r}")
    try:
        return name, json.loads(value)
    except json.JSONDecodeError:
        return name, value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.study", description=STUDY_DOC,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--preset", choices=sorted(PRESETS), default="cpu-pretrained")
    add("--table", choices=(*TABLES, "all"), default="main")
    add("--methods", help="comma-separated subset of the preset's methods and its ablations' methods (the "
        "ablation table keeps these methods' rows)")
    add("--code-lengths", type=_ints, help="comma-separated subset of the preset's code lengths")
    add("--seeds", type=_ints, help="comma-separated seeds (default: the preset's)")
    add("--ablations", help=f"comma-separated ablation groups to run, of {', '.join(ABLATION_GROUPS[1:])} "
        "(default: all); the rows they are paired with come along")
    add("--ablation-bits", type=int, help="code length of the robustness and ablation tables (default: the preset's)")
    add("--jobs", type=int, default=1, help="runs side by side, each in its own process (CPU threads are shared out)")
    add("--data-root", help="for the paper preset's dataset")
    add("--set", type=_setting, action="append", default=[], metavar="FIELD=VALUE",
        help="a TrainConfig field for every run, e.g. --set epochs=2 (repeatable)")
    add("--smoke", action="store_true", help="tiny sizes, CPU, 2 seeds: checks the machinery, not the science")
    add("--out", type=Path, default=Path("results/study"))
    add("--replot", type=Path, metavar="FOLDER", help="only redraw the PNGs of the tables' JSON files in FOLDER")
    return parser


def choose(args: argparse.Namespace, parser: argparse.ArgumentParser) -> tuple[Preset, dict[str, Any]]:
    """The preset narrowed by the flags, and the fields changed for every run."""
    preset = PRESETS[args.preset]
    if args.methods:
        # A method may be in the ablations only (softcrop in the small-data presets' rule rows).
        known = dict.fromkeys([*preset.methods, *(a.changes.get("augment") for a in preset.ablations)])
        unknown = set(args.methods.split(",")) - set(known)
        if unknown:
            parser.error(f"argument --methods: not in the preset's methods or ablations: {sorted(unknown)}; "
                         f"expected some of {[m for m in known if m]}")
        methods = tuple(args.methods.split(","))
        # The ablation table follows: only the rows of these methods.
        preset = replace(preset, methods=methods,
                         ablations=tuple(a for a in preset.ablations if a.changes.get("augment") in methods))
    if args.ablations:
        groups = set(args.ablations.split(","))
        if not groups <= set(ABLATION_GROUPS):
            parser.error(f"argument --ablations: unknown groups {sorted(groups - set(ABLATION_GROUPS))}; "
                         f"expected some of {list(ABLATION_GROUPS[1:])}")
        kept = [a for a in preset.ablations if a.group in groups]
        references = {a.reference for a in kept}
        preset = replace(preset, ablations=tuple(a for a in preset.ablations if a in kept or a.name in references))
    for name in ("code_lengths", "seeds", "ablation_bits"):
        if getattr(args, name):
            preset = replace(preset, **{name: getattr(args, name)})
    if preset.ablation_bits not in preset.code_lengths:
        preset = replace(preset, ablation_bits=preset.code_lengths[0])
    changes = dict(args.set)
    if args.data_root:
        changes["data_root"] = args.data_root
    if args.smoke:
        # Every table's machinery on a few runs: 2 seeds, one code length, 4 methods, 2 ablations.
        methods = preset.methods if args.methods else tuple(m for m in preset.methods if m in SMOKE_METHODS)
        ablations = tuple(a for a in preset.ablations if a.name in ("gcut", "gcut, no retention weighting"))
        preset = replace(preset, seeds=preset.seeds[:2], code_lengths=(preset.ablation_bits,), methods=methods,
                         ablations=ablations)
        changes = {**preset.smoke, **changes}
    return preset, changes


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.replot:
        for path in replot(args.replot):
            print(f"redrew {path}")
        return
    if args.jobs < 1:
        parser.error(f"argument --jobs: must be >= 1; got {args.jobs}")
    preset, changes = choose(args, parser)
    study = Study(args.preset, preset, args.out / args.preset, args.jobs, changes)
    if args.smoke and preset.dry_smoke:
        count = study.dry_run()
        print(f"{args.preset}: {count} run configurations built (dry run: this preset needs its data and a GPU)")
        return
    command = command_line("-m benchmarks.study", argv)
    for table in TABLES if args.table == "all" else (args.table,):
        started = time.perf_counter()
        markdown = write_table(table, BUILDERS[table](study), study, started, command)
        if markdown is not None:
            print(markdown)
            print(f"wrote {study.out / table}.md/.csv/.png/.json", file=sys.stderr)


if __name__ == "__main__":
    main()
