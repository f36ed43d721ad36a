"""Training-step time of G_t, the exact G_cut and the approximate (cached) G_cut, interleaved.

Each round-robin round (:func:`harness.rotations`) times ``steps`` training steps (augment +
forward + backward + optimizer step) of every variant: ``standard`` (random resized crop),
``gt``, ``gcut-exact`` (extra eval forward) and ``gcut-approx`` (cache filled by the training
forward, after a warm-up epoch). Ratios are against ``gt``; forward calls are counted with a pre-hook; the eval forward is timed
on its own (compare the exact ratio with 1 + t(eval forward)/t(G_t step)). Peak memory is
:func:`harness.peak_memory` (CPU: a fresh subprocess per variant). Batched vs per-sample
augmentation is ``benchmarks/augment_speed.py``.

    python benchmarks/efficiency.py                      # --preset cpu-small, a few minutes
    python benchmarks/efficiency.py --preset paper       # GPU, ResNet-50 at 224 px
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import harness as h
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import gg_augment as gg

VARIANTS = ("standard", "gt", "gcut-exact", "gcut-approx")


@dataclass
class Settings:
    """One benchmark configuration: a preset, with any flag overrides applied."""
    preset: str
    device: str
    arch: str
    batch: int
    image_size: int
    code_length: int
    grid: int
    pool_batches: int  # the approximate G_cut's warm-up epoch covers these batches
    repeats: int
    steps: int
    crop_scale: tuple[float, float]
    memory_steps: int
    threads: int
    seed: int = 0
    out: str = "results/efficiency"
    no_memory: bool = False

    @property
    def pool_size(self) -> int:
        return self.batch * self.pool_batches


PRESETS: dict[str, dict[str, Any]] = {
    "cpu-small": {"device": "cpu", "arch": "small", "batch": 128, "image_size": 32, "code_length": 32, "grid": 12,
                  "pool_batches": 8, "repeats": 20, "steps": 3, "crop_scale": (0.5, 1.0), "memory_steps": 3, "threads": 2},
    "paper": {"device": "cuda", "arch": "resnet50", "batch": 256, "image_size": 224, "code_length": 64, "grid": 12,
              "pool_batches": 8, "repeats": 15, "steps": 5, "crop_scale": (0.08, 1.0), "memory_steps": 5, "threads": 8},
}


def load_pool(count: int, image_size: int, device: torch.device) -> tuple[Tensor, Tensor, str]:
    """``count`` images and labels of the embedded training split, repeated if needed, on ``device``."""
    from gg_augment.data import load_embedded

    images, labels = load_embedded("train", image_size=min(image_size, 32), channels=3).tensors
    if count > images.shape[0]:
        repeats = math.ceil(count / images.shape[0])
        images, labels = images.repeat(repeats, 1, 1, 1), labels.repeat(repeats)
    images, labels = images[:count].to(device), labels[:count].to(device)
    if images.shape[-1] != image_size:
        images = F.interpolate(images, size=(image_size, image_size), mode="bilinear", align_corners=False)
    return images.contiguous(), labels, f"embedded Fashion-MNIST train split, first {count} images"


@dataclass
class Variant:
    name: str
    model: nn.Module
    optimizer: torch.optim.Optimizer
    pipeline: gg.RetentionPipeline
    order: torch.Generator
    cache: gg.AttentionCache | None = None
    forward_calls: int = 0
    times: list[float] = field(default_factory=list)
    cpu_times: list[float] = field(default_factory=list)
    peak_mib: float = 0.0

    def count(self, _module: nn.Module, _inputs: object) -> None:
        self.forward_calls += 1


def build_base_model(settings: Settings) -> nn.Module:
    torch.manual_seed(settings.seed)
    return gg.RetrievalNet(*gg.build_backbone(settings.arch), settings.code_length)


def build_variant(name: str, base: nn.Module, settings: Settings, device: torch.device) -> Variant:
    """A fresh copy of the model with its optimizer and the variant's augmentation pipeline."""
    model = copy.deepcopy(base).to(device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    crop = gg.RandomResizedCropFlip(
        settings.image_size, scale=settings.crop_scale, generator=torch.Generator(device).manual_seed(settings.seed + 1)
    )
    cut_generator = torch.Generator(device).manual_seed(settings.seed + 2)
    cache = None
    augmentation: gg.GT | gg.GCut | None = None
    if name == "gt":
        augmentation = gg.GT(sigma=0.3, generator=cut_generator)
    elif name == "gcut-exact":
        augmentation = gg.GCut(model, grid_size=settings.grid, generator=cut_generator)
    elif name == "gcut-approx":
        cache = gg.AttentionCache(settings.pool_size, grid_size=settings.grid, device=device)
        augmentation = gg.GCut(model, cache=cache, grid_size=settings.grid, generator=cut_generator)
    pipeline = gg.RetentionPipeline(augmentation, crop=crop)
    order = torch.Generator(device).manual_seed(settings.seed + 3)
    variant = Variant(name, model, optimizer, pipeline, order, cache)
    model.register_forward_pre_hook(variant.count)
    return variant


def train_step(variant: Variant, images: Tensor, labels: Tensor, index: Tensor, loss_fn: nn.Module) -> None:
    batch = variant.pipeline.augment(images.index_select(0, index), index)
    with variant.pipeline.recording(batch):  # writes the approximate G_cut's cache
        outputs = variant.model(batch.images)
    loss = loss_fn(outputs, labels.index_select(0, index), batch.weight)
    variant.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    variant.optimizer.step()


def next_batch(variant: Variant, settings: Settings, device: torch.device) -> Tensor:
    return torch.randperm(settings.pool_size, device=device, generator=variant.order)[: settings.batch]


def warm_up(variant: Variant, images: Tensor, labels: Tensor, loss_fn: nn.Module, settings: Settings, device: torch.device,
            epoch: bool = True) -> list[int]:
    """One epoch over the pool, every sample once (what fills the approximate G_cut's cache), or
    two steps (allocator and kernel caches); returns the forward calls of each step."""
    if epoch:
        batches = [torch.arange(s, min(s + settings.batch, settings.pool_size), device=device)
                   for s in range(0, settings.pool_size, settings.batch)]
    else:
        batches = [next_batch(variant, settings, device) for _ in range(2)]
    calls = []
    for index in batches:
        before = variant.forward_calls
        train_step(variant, images, labels, index, loss_fn)
        calls.append(variant.forward_calls - before)
    h.synchronize(device)
    return calls


def memory_probe(settings: Settings, variant_name: str) -> dict[str, Any]:
    """One variant in this (fresh) process: its peak RSS over the RSS after setup (loading the
    data peaks higher than training, so the peak is reset after it where Linux allows)."""
    device = torch.device(settings.device)
    images, labels, _ = load_pool(settings.pool_size, settings.image_size, device)
    variant = build_variant(variant_name, build_base_model(settings), settings, device)
    loss_fn = gg.RetentionWeightedPairwiseLoss()
    precise = h.reset_peak_memory(device)
    before = h.peak_memory(device)
    baseline = before["current_mib"] if precise else before["peak_memory_mib"]
    warm_up(variant, images, labels, loss_fn, settings, device)
    for _ in range(settings.memory_steps):
        train_step(variant, images, labels, next_batch(variant, settings, device), loss_fn)
    after = h.peak_memory(device)
    kind = after["peak_memory_kind"] + (", reset after setup" if precise else "")
    return {"peak_mib": after["peak_memory_mib"], "delta_mib": after["peak_memory_mib"] - baseline, "kind": kind}


def measure_memory(settings: Settings, variants: dict[str, Variant], device: torch.device) -> tuple[dict[str, float], str]:
    """Per-variant peak memory (MiB) and how it was measured."""
    if device.type == "cuda":
        return {name: v.peak_mib for name, v in variants.items()}, "CUDA allocator peak during the timed steps"
    if settings.no_memory:
        return {}, "not measured (--no-memory)"
    results, kinds = {}, set()
    for name in VARIANTS:
        try:
            probe = h.fresh_process([sys.executable, __file__, "--memory-probe", name, "--settings-json", json.dumps(asdict(settings))])
        except RuntimeError as error:
            print(error)
            probe = {"delta_mib": float("nan"), "kind": "failed"}
        results[name], kinds = probe["delta_mib"], kinds | {probe["kind"]}
    return results, (
        f"CPU: peak-RSS increase of a fresh subprocess per variant over its RSS after setup ({', '.join(sorted(kinds))}), "
        f"over one warm-up epoch and {settings.memory_steps} more steps: the extra memory of training "
        "(activations, gradients, optimizer state, the cache), not the process total"
    )


def time_training(
    variants: dict[str, Variant], side: dict[str, Any], images: Tensor, labels: Tensor, loss_fn: nn.Module,
    settings: Settings, device: torch.device,
) -> dict[str, list[float]]:
    """Round-robin rounds of ``steps`` steps per variant and the side measurements; fills each
    variant's times, returns the side times."""
    side_times: dict[str, list[float]] = {name: [] for name in side}
    for order in h.rotations(VARIANTS, settings.repeats):
        for name in order:
            variant = variants[name]
            if device.type == "cuda":
                h.reset_peak_memory(device)
            for _ in range(settings.steps):
                index = next_batch(variant, settings, device)
                cpu_start = time.process_time()
                variant.times.append(h.timed(lambda v=variant, i=index: train_step(v, images, labels, i, loss_fn), device))
                variant.cpu_times.append(time.process_time() - cpu_start)
            if device.type == "cuda":
                variant.peak_mib = max(variant.peak_mib, h.peak_memory(device)["peak_memory_mib"])
        for name, fn in side.items():
            side_times[name].append(h.timed(fn, device))
    return side_times


def side_measurements(base: nn.Module, approx: Variant, images: Tensor, settings: Settings, device: torch.device) -> dict[str, Any]:
    """The exact G_cut's eval forward alone (on an uncounted model copy) and the approximate
    path's cache read and write of one batch (on a copy of the warm cache)."""
    extractor = gg.attention_extractor_for(copy.deepcopy(base).to(device).train())
    if approx.cache is None:
        raise RuntimeError("the gcut-approx variant must hold an attention cache")
    image, view = gg.RandomResizedCropFlip(settings.image_size, scale=settings.crop_scale)(
        images[: settings.batch], index=torch.arange(settings.batch, device=device)
    )
    logits = extractor.extract(image)
    cache = gg.AttentionCache(settings.pool_size, grid_size=settings.grid, device=device)
    cache.load_state_dict(approx.cache.state_dict())
    return {
        "eval-forward": lambda: extractor.extract(image),
        "cache-read": lambda: cache.read(gg.View(view.index, view.boxes, view.flips)),
        "cache-write": lambda: cache.write(gg.View(view.index, view.boxes, view.flips), logits),
    }


def parse_settings(argv: list[str]) -> tuple[Settings, str | None]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu-small")
    parser.add_argument("--out", type=Path, default=Path("results/efficiency"))
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (preset default)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None, help="round-robin rounds of training steps")
    parser.add_argument("--steps", type=int, default=None, help="steps per variant per round")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-memory", action="store_true", help="skip the CPU memory subprocesses")
    parser.add_argument("--memory-probe", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--settings-json", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.settings_json is not None:
        loaded = json.loads(args.settings_json)
        return Settings(**{**loaded, "crop_scale": tuple(loaded["crop_scale"])}), args.memory_probe
    values = dict(PRESETS[args.preset])
    values.update({k: getattr(args, k) for k in ("threads", "device", "batch", "repeats", "steps") if getattr(args, k) is not None})
    return Settings(preset=args.preset, seed=args.seed, out=str(args.out), no_memory=args.no_memory, **values), None


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    command = h.command_line("benchmarks/efficiency.py", argv)
    settings, probe = parse_settings(argv)
    torch.set_num_threads(settings.threads)
    if probe is not None:
        print(json.dumps(memory_probe(settings, probe)))
        return
    device = torch.device(settings.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--preset {settings.preset} needs CUDA; none is available here")
    started, load_before = time.perf_counter(), os.getloadavg()
    images, labels, data_note = load_pool(settings.pool_size, settings.image_size, device)
    base = build_base_model(settings)
    loss_fn = gg.RetentionWeightedPairwiseLoss()
    variants = {name: build_variant(name, base, settings, device) for name in VARIANTS}
    warmup_calls = {name: warm_up(v, images, labels, loss_fn, settings, device, epoch=name == "gcut-approx")
                    for name, v in variants.items()}
    for variant in variants.values():
        variant.forward_calls = 0
    side = side_measurements(base, variants["gcut-approx"], images, settings, device)
    side_times = time_training(variants, side, images, labels, loss_fn, settings, device)
    memory, memory_method = measure_memory(settings, variants, device)
    load_after = os.getloadavg()

    rows = result_rows(variants, side_times, memory, settings)
    record = {**h.provenance(command, started), "settings": asdict(settings), "memory_method": memory_method,
              "warmup_calls": warmup_calls, "data": data_note}
    context = {**record, "device_line": f"device {device}, {settings.threads} threads, load average "
               f"{load_before[0]:.2f} before / {load_after[0]:.2f} after", "cache": variants["gcut-approx"].cache}
    markdown = report(rows, settings, context)
    h.write_results(Path(settings.out), "efficiency", rows, markdown, plot(rows), record)
    print(f"{markdown}\nwrote {Path(settings.out) / 'efficiency'}.md/.csv/.json/.png")


def result_rows(
    variants: dict[str, Variant], side_times: dict[str, list[float]], memory: dict[str, float], settings: Settings,
) -> list[dict[str, Any]]:
    """One CSV row per training variant and side component."""
    gt_median, gt_cpu_median = h.summary(variants["gt"].times)[0], h.summary(variants["gt"].cpu_times)[0]

    def per_round(values: list[float]) -> list[float]:
        return [statistics.fmean(values[r * settings.steps : (r + 1) * settings.steps]) for r in range(settings.repeats)]

    gt_rounds = per_round(variants["gt"].times)
    rows: list[dict[str, Any]] = []
    for name, variant in variants.items():
        med, q1, q3 = h.summary(variant.times)
        # h.summary() reports x1000, so feed it the ratios / 1000.
        paired = h.summary([v / g / 1000 for v, g in zip(per_round(variant.times), gt_rounds)])
        rows.append({
            "group": "train step", "name": name, "median_ms": med, "q1_ms": q1, "q3_ms": q3,
            "samples": len(variant.times), "ratio_vs_gt": med / gt_median,
            "paired_ratio_q1": paired[1], "paired_ratio_median": paired[0], "paired_ratio_q3": paired[2],
            "cpu_median_ms": h.summary(variant.cpu_times)[0], "cpu_ratio_vs_gt": h.summary(variant.cpu_times)[0] / gt_cpu_median,
            "forward_calls_per_step": variant.forward_calls / (settings.repeats * settings.steps),
            "peak_memory_mib": memory.get(name, float("nan")),
        })
    for name, values in side_times.items():
        med, q1, q3 = h.summary(values)
        rows.append({**dict.fromkeys(rows[0], ""), "group": "component", "name": name, "median_ms": med, "q1_ms": q1,
                     "q3_ms": q3, "samples": len(values), "ratio_vs_gt": med / gt_median})
    return rows


def _fmt(value: object, digits: int = 3) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.{digits}g}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def report(rows: list[dict[str, Any]], settings: Settings, context: dict[str, Any]) -> str:
    """The markdown report: training steps, targets, components."""
    by_name = {row["name"]: row for row in rows}
    approx_ratio, exact_ratio = by_name["gcut-approx"]["ratio_vs_gt"], by_name["gcut-exact"]["ratio_vs_gt"]
    expected_exact = 1 + by_name["eval-forward"]["median_ms"] / by_name["gt"]["median_ms"]
    cache = context["cache"]
    steps = [{
        "variant": r["name"], "median ms": _fmt(r["median_ms"]), "IQR ms": f"{_fmt(r['q1_ms'])}–{_fmt(r['q3_ms'])}",
        "ratio vs G_t": f"{r['ratio_vs_gt']:.3f}",
        "per-round ratio, median [IQR]": f"{r['paired_ratio_median']:.3f} [{r['paired_ratio_q1']:.3f}, {r['paired_ratio_q3']:.3f}]",
        "process CPU ms": _fmt(r["cpu_median_ms"]), "CPU ratio vs G_t": f"{r['cpu_ratio_vs_gt']:.3f}",
        "forward calls / step": f"{r['forward_calls_per_step']:.2f}", "peak memory MiB": _fmt(r["peak_memory_mib"]),
    } for r in rows if r["group"] == "train step"]
    targets = [
        {"target": "approximate G_cut step / G_t step <= 1.05 (aim 1.02)", "measured": f"{approx_ratio:.3f}",
         "verdict": "met" if approx_ratio <= 1.05 else "missed"},
        {"target": "exact G_cut / G_t ~ 1 + t(eval forward) / t(G_t step)",
         "measured": f"{exact_ratio:.3f} vs expected {expected_exact:.3f}",
         "verdict": "consistent" if abs(exact_ratio - expected_exact) <= 0.1 else "differs"},
    ]
    components = [{"component": r["name"], "median ms": _fmt(r["median_ms"]), "IQR ms": f"{_fmt(r['q1_ms'])}–{_fmt(r['q3_ms'])}",
                   "share of a G_t step": f"{r['ratio_vs_gt']:.3f}"} for r in rows if r["group"] == "component"]
    header = "\n".join([
        f"# Efficiency: G_t vs exact vs approximate G_cut ({settings.preset})",
        "",
        *h.provenance_lines(context),
        f"- {context['device_line']}",
        f"- model RetrievalNet(build_backbone({settings.arch!r}), {settings.code_length}), batch {settings.batch}, "
        f"{settings.image_size}x{settings.image_size}, SGD, RetentionWeightedPairwiseLoss (in-batch)",
        f"- data: {context['data']}; every variant is a RetentionPipeline with "
        f"RandomResizedCropFlip(scale={tuple(settings.crop_scale)}); G_cut grid {settings.grid}x{settings.grid}",
        f"- {settings.repeats} round-robin rounds x {settings.steps} steps per variant (rotating order); medians; "
        f"approximate G_cut timed after one warm-up epoch over its {settings.pool_size} samples",
        "",
        "## Training step",
    ])
    notes = "\n".join([
        "Ratios use wall-clock medians of all steps; the per-round ratio divides each round's mean step by G_t's "
        "of the same round (its IQR shows the spread). Process CPU time (all threads) is less sensitive to other "
        "processes on a shared machine: compare the two ratios, and distrust a run whose load average rose.",
        "",
        f"Memory: {context['memory_method']}. The cache itself holds {cache.memory_bytes / 2**20:.3f} MiB "
        f"({cache.num_samples} samples x {cache.grid_size[0]}x{cache.grid_size[1]} x {cache.values.element_size()} B + flags).",
        "",
        "Forward calls in the warm-up: " + ", ".join(f"{name} {calls}" for name, calls in context["warmup_calls"].items()),
        "",
    ])
    return "\n".join([
        h.markdown_table(steps, header), notes, h.markdown_table(targets, "## Targets"),
        h.markdown_table(components, "## Components (one batch, same rounds as the training steps)"),
    ])


def plot(rows: list[dict[str, Any]]) -> Any:
    """Each variant's step time over G_t's, labelled with its forward calls per step."""
    steps = [r for r in rows if r["group"] == "train step"]
    labels = [f"{r['name']} ({r['forward_calls_per_step']:.2f} forward calls / step)" for r in steps]
    return h.horizontal_bars(labels, [r["ratio_vs_gt"] for r in steps], "median training step / G_t's", "training step", reference=1.0)


if __name__ == "__main__":
    main()
