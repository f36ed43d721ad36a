"""The augmentations' hot path against the physical limit, a copy of the batch (issue 20).

One interleaved run (round-robin with a rotating start, median of repeats) times a plain
``x.clone()``, GT, GCut on a given map, erasing and the validation pass alone, beside Kornia's
``RandomErasing`` and ``RandomAffine(translate=...)`` on the same batch, and counts the host
reads (``.item()``, ``bool()``, ``.tolist()``, ``.cpu()``, ``float()``, ``int()``) of one call.
``--baseline SRC`` adds the modules of another gg_augment source tree (e.g. ``git archive`` of
``main``) to the same run, for before/after figures measured side by side.

``--train-steps N`` adds training images/s per method (standard, G_t, exact and approximate
G_cut; float32 and bf16 autocast) from ``efficiency.py``'s step, and ``--retrieval-database N``
mAP@1000 of ours against faiss ``IndexBinaryFlat`` + AP from ``map_speed.py``'s data, both
interleaved in their own round-robin and written as ``hot_path_steps``.

    python benchmarks/hot_path.py --batch 256 --size 64 --threads 1 --repeats 25 \
        --baseline /tmp/base/src --out docs/results/hot_path
    python benchmarks/hot_path.py --train-steps 3 --retrieval-database 100000 --out docs/results/hot_path
"""

from __future__ import annotations

import argparse
import importlib.util
import platform
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from harness import horizontal_bars, interleave, markdown_table, summary, write_results

import gg_augment
from gg_augment._checks import check_image_batch

HOST_READS = ("item", "tolist", "cpu", "__bool__", "__float__", "__int__")


def load_tree(src: Path) -> ModuleType:
    """Import the ``gg_augment`` package under ``src`` as ``gg_baseline`` (beside ours)."""
    init = src / "gg_augment" / "__init__.py"
    if not init.is_file():
        raise SystemExit(f"--baseline must be a src folder holding gg_augment/__init__.py; got {src}")
    spec = importlib.util.spec_from_file_location("gg_baseline", init, submodule_search_locations=[str(init.parent)])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gg_baseline"] = module
    spec.loader.exec_module(module)
    return module


def count_host_reads(fn: Callable[[], object]) -> int:
    """How many host-reading tensor methods one call makes (each is a sync on CUDA)."""
    calls = []
    originals = {name: getattr(torch.Tensor, name) for name in HOST_READS}

    def wrap(name: str) -> Callable[..., Any]:
        def counted(self: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            return originals[name](self, *args, **kwargs)

        return counted

    for name in HOST_READS:
        setattr(torch.Tensor, name, wrap(name))
    try:
        fn()
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)
    return len(calls)


def candidates(
    lib: ModuleType, tag: str, x: torch.Tensor, attention: torch.Tensor, grid: int
) -> dict[str, Callable[[], object]]:
    """The library's modules on the batch: default validation, and ``validate_args=False``."""
    def seeded() -> torch.Generator:
        return torch.Generator(device=x.device).manual_seed(0)

    gt, gt_off = lib.GT(sigma=0.1, generator=seeded()), lib.GT(sigma=0.1, generator=seeded(), validate_args=False)
    gcut = lib.GCut(grid_size=grid, generator=seeded())
    gcut_off = lib.GCut(grid_size=grid, generator=seeded(), validate_args=False)
    erasing = lib.RandomErasingRetention(p=1.0, generator=seeded())
    return {
        f"GT{tag}": lambda: gt(x),
        f"GT, validation off{tag}": lambda: gt_off(x),
        f"GCut (given {attention.shape[1]}x{attention.shape[2]} map){tag}": lambda: gcut(x, attention=attention),
        f"GCut, validation off{tag}": lambda: gcut_off(x, attention=attention),
        f"RandomErasingRetention(p=1){tag}": lambda: erasing(x),
    }


def kornia_candidates(x: torch.Tensor, translate: float) -> dict[str, Callable[[], object]]:
    try:
        import kornia.augmentation as K
    except ImportError:
        print("kornia is not installed: its rows are left out (pip install 'gg-augment[kornia]')")
        return {}
    erasing = K.RandomErasing(p=1.0)
    affine = K.RandomAffine(degrees=0.0, translate=(translate, translate), p=1.0)
    return {
        "Kornia RandomErasing(p=1)": lambda: erasing(x),
        f"Kornia RandomAffine(translate={translate})": lambda: affine(x),
    }


def targets(med: dict[str, float], grid: int, tag: str = "") -> list[dict[str, Any]]:
    """The issue's targets, each as a measured ratio against its limit."""
    copy = med["copy (x.clone())"]
    gcut = f"GCut (given {grid}x{grid} map){tag}"
    rows = [
        {"target": f"GT{tag} / copy <= 5", "ratio": med[f"GT{tag}"] / copy, "limit": 5.0},
        {"target": f"GCut{tag} / copy <= 8", "ratio": med[gcut] / copy, "limit": 8.0},
    ]
    if "Kornia RandomErasing(p=1)" in med:
        erasing = med[f"RandomErasingRetention(p=1){tag}"] / med["Kornia RandomErasing(p=1)"]
        rows.append({"target": f"erasing{tag} / Kornia erasing <= 1", "ratio": erasing, "limit": 1.0})
        affine = next(k for k in med if k.startswith("Kornia RandomAffine"))
        rows.append({"target": f"GT{tag} / Kornia translate <= 0.5", "ratio": med[f"GT{tag}"] / med[affine], "limit": 0.5})
    for row in rows:
        row["met"] = "yes" if row["ratio"] <= row["limit"] else "no"
    return rows


def training_rows(steps: int, repeats: int, device: torch.device) -> list[dict[str, Any]]:
    """Images/s of a training step per method and precision (the small CNN at 32 px, batch 128)."""
    import efficiency as eff

    settings = eff.Settings(preset="cpu-small", **{**eff.PRESETS["cpu-small"], "device": str(device), "steps": steps,
                                                   "repeats": repeats, "threads": torch.get_num_threads()})
    images, labels, _ = eff.load_pool(settings.pool_size, settings.image_size, device)
    loss_fn = gg_augment.RetentionWeightedPairwiseLoss()
    base = eff.build_base_model(settings)
    timed: dict[str, Callable[[], object]] = {}
    for name in ("standard", "gt", "gcut-exact", "gcut-approx"):
        for precision in ("fp32", "bf16"):
            variant = eff.build_variant(name, base, settings, device)
            eff.warm_up(variant, images, labels, loss_fn, settings, device, epoch=name == "gcut-approx")

            def run(variant: Any = variant, precision: str = precision) -> None:
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
                    for _ in range(steps):
                        eff.train_step(variant, images, labels, eff.next_batch(variant, settings, device), loss_fn)

            timed[f"{name}, {precision}"] = run
    times = interleave(timed, repeats=repeats, device=device)
    reference = summary(times["standard, fp32"])[0]
    return [{"what": f"training step: {name}", "median_ms": summary(t)[0] / steps,
             "images_per_s": settings.batch * steps / (summary(t)[0] / 1e3),
             "ratio": reference / summary(t)[0], "ratio_of": "images/s / standard fp32", "map": ""}
            for name, t in times.items()]


def retrieval_rows(database_size: int, repeats: int) -> list[dict[str, Any]]:
    """mAP@1000 of 1,000 queries against ``database_size`` 64-bit codes: ours against faiss."""
    import map_speed as ms

    generator = torch.Generator().manual_seed(0)
    centres = torch.randint(0, 2, (10, 64), generator=generator) * 2.0 - 1.0
    query, query_labels = ms.class_codes(1000, centres, 0.3, generator)
    database, database_labels = ms.class_codes(database_size, centres, 0.3, generator)
    answers: dict[str, torch.Tensor] = {}

    def ours(engine: str) -> None:
        answers[f"ours ({engine})"] = ms.mean_average_precision(query, database, query_labels, database_labels,
                                                                k=1000, engine=engine)

    timed: dict[str, Callable[[], object]] = {"ours (auto)": lambda: ours("auto"), "ours (torch)": lambda: ours("torch")}
    faiss = ms.faiss_module()
    if faiss is not None:
        packed_query, packed_database = ms.pack_bits(query), ms.pack_bits(database)

        def flat() -> None:
            index = faiss.IndexBinaryFlat(64)
            index.add(packed_database)
            order = torch.from_numpy(index.search(packed_query, 1000)[1])
            answers["faiss IndexBinaryFlat + AP"] = ms.average_precision(order, query_labels, database_labels)

        timed["faiss IndexBinaryFlat + AP"] = flat
    times = interleave(timed, repeats=repeats, device=torch.device("cpu"))
    reference = summary(times.get("faiss IndexBinaryFlat + AP", times["ours (torch)"]))[0]
    return [{"what": f"mAP@1000, 1k x {database_size} x 64 bits: {name}", "median_ms": summary(t)[0],
             "images_per_s": "", "ratio": reference / summary(t)[0], "ratio_of": "speed / faiss (faiss time / time)",
             "map": f"{float(answers[name]):.6f}"} for name, t in times.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--grid", type=int, default=8, help="side of the GCut grid and of the given map")
    parser.add_argument("--translate", type=float, default=0.2, help="Kornia RandomAffine's translate")
    parser.add_argument("--repeats", type=int, default=25)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--baseline", type=Path, default=None, help="src folder of another gg_augment to time alongside")
    parser.add_argument("--out", type=Path, default=Path("results/hot_path"))
    parser.add_argument("--train-steps", type=int, default=0, help="steps per round of the training-step section (0: skip)")
    parser.add_argument("--retrieval-database", type=int, default=0, help="database size of the retrieval section (0: skip)")
    args = parser.parse_args()
    if args.train_steps < 0 or args.retrieval_database < 0:
        parser.error("--train-steps and --retrieval-database must be >= 0")
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    generator = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(args.batch, 3, args.size, args.size, device=device, generator=generator)
    attention = torch.rand(args.batch, args.grid, args.grid, device=device, generator=generator)

    timed: dict[str, Callable[[], object]] = {"copy (x.clone())": lambda: x.clone()}
    timed["validation alone (finite check)"] = lambda: check_image_batch(x, validate_values=True)
    timed.update(candidates(gg_augment, "", x, attention, args.grid))
    if args.baseline is not None:
        timed.update(candidates(load_tree(args.baseline), " [baseline]", x, attention, args.grid))
    timed.update(kornia_candidates(x, args.translate))
    reads = {name: count_host_reads(fn) for name, fn in timed.items() if not name.startswith("Kornia")}
    times = interleave(timed, repeats=args.repeats, device=device)
    med = {name: summary(t)[0] for name, t in times.items()}
    copy, copy_min = med["copy (x.clone())"], min(times["copy (x.clone())"])
    rows = []
    for name, values in times.items():
        median_ms, q1, q3 = summary(values)
        rows.append({
            "variant": name, "median_ms": median_ms, "q1_ms": q1, "q3_ms": q3, "min_ms": 1e3 * min(values),
            "x_copy": median_ms / copy, "x_copy_of_min": min(values) / copy_min,
            "host_reads_per_call": reads.get(name, "n/a"),
        })
    goal_rows = targets(med, args.grid)
    if args.baseline is not None:
        goal_rows += targets(med, args.grid, " [baseline]")
    header = (
        f"# The augmentations' hot path against a copy of the batch\n\n"
        f"B={args.batch}, 3x{args.size}x{args.size} float32, GCut grid {args.grid}x{args.grid} on a given map, "
        f"device={device}, threads={args.threads}, {args.repeats} interleaved repeats (median, quartiles in ms), "
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}. "
        "`x_copy` is the median over the copy's median (`x_copy_of_min`: the same for the fastest "
        "call, steadier on a busy machine); host reads are counted for one call (a sync each on CUDA)."
    )
    markdown = markdown_table(rows, header) + "\n" + markdown_table(goal_rows, "## Targets (issue 20)")
    labels = [row["variant"] for row in rows]
    figure = horizontal_bars(labels, [row["x_copy"] for row in rows], "time / copy of the batch", header.splitlines()[0][2:], reference=None)
    print(write_results(args.out, "hot_path", rows, markdown, figure))
    write_results(args.out, "hot_path_targets", goal_rows, markdown_table(goal_rows, "## Targets (issue 20)"))
    step_rows = training_rows(args.train_steps, max(3, args.repeats // 5), device) if args.train_steps else []
    step_rows += retrieval_rows(args.retrieval_database, 5) if args.retrieval_database else []
    if step_rows:
        title = (f"# Training steps and retrieval (threads={args.threads}, device={device}, torch {torch.__version__}); "
                 "medians of interleaved rounds")
        figure = horizontal_bars([r["what"] for r in step_rows], [r["ratio"] for r in step_rows],
                                 "speed against the reference (standard fp32 step; faiss)", "Training steps and retrieval",
                                 reference=1.0)
        print(write_results(args.out, "hot_path_steps", step_rows, markdown_table(step_rows, title), figure))


if __name__ == "__main__":
    main()
