"""Efficiency of G_t, the exact G_cut and the approximate (cached) G_cut, in one interleaved run.

What is measured (medians over round-robin repeats, so machine drift hits every variant alike):

1. **Training step** (augmentation + forward + backward + optimizer step) for
   ``standard`` (RandomResizedCropFlip only), ``gt`` (crop + G_t), ``gcut-exact`` (crop +
   G_cut with its extra eval forward) and ``gcut-approx`` (crop + G_cut reading an
   AttentionCache that the training forward fills; timed after a warm-up epoch over the
   samples used). Ratios are against ``gt``. Model forward calls are counted with a forward
   pre-hook; the eval forward of the attention extractor is timed on its own, so the
   expected exact ratio 1 + t(eval forward)/t(G_t step) can be compared with the measured one.
2. **Peak memory**: on CUDA ``torch.cuda.max_memory_allocated`` per variant; on CPU the
   peak-RSS increase (``resource.getrusage`` maxrss) of a fresh subprocess per variant over its
   post-setup baseline, plus the cache's exact buffer bytes.
3. **G_cut mask generation**: the batched sampler + cut vs a naive per-sample Python loop.
4. **Translation**: batched GT vs a per-sample canvas crop (pad each image onto a larger
   canvas and crop at the offset, one sample at a time, as Dataset-side implementations do),
   and vs Kornia's batched ``translate`` when kornia is importable.

Every variant builds its augmentation as a :class:`gg_augment.RetentionPipeline`, as the
trainers do. Writes ``efficiency.md``, ``efficiency.csv`` and ``efficiency.png`` under
``--out`` atomically, through the benchmarks' harness.

    python benchmarks/efficiency.py                      # --preset cpu-small, a few minutes
    python benchmarks/efficiency.py --preset paper       # GPU, ResNet-50 at 224 px
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from harness import interleave, summary, synchronize, timed, write_results
from naive import gcut_per_sample, gt_canvas_crop_per_sample
from torch import Tensor, nn

from gg_augment import (
    GT,
    AttentionCache,
    GCut,
    RandomResizedCropFlip,
    RetentionPipeline,
    RetentionWeightedPairwiseLoss,
    RetrievalNet,
    View,
    attention_extractor_for,
    build_backbone,
)
from gg_augment.functional import attention_to_grid

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
    micro_repeats: int
    memory_steps: int
    threads: int
    seed: int = 0
    out: str = "results/efficiency"
    no_memory: bool = False

    @property
    def pool_size(self) -> int:
        return self.batch * self.pool_batches


PRESETS: dict[str, dict[str, Any]] = {
    "cpu-small": {
        "device": "cpu", "arch": "small", "batch": 128, "image_size": 32, "code_length": 32, "grid": 12,
        "pool_batches": 8, "repeats": 20, "steps": 3, "crop_scale": (0.5, 1.0), "micro_repeats": 25,
        "memory_steps": 3, "threads": 2,
    },
    "paper": {
        "device": "cuda", "arch": "resnet50", "batch": 256, "image_size": 224, "code_length": 64, "grid": 12,
        "pool_batches": 8, "repeats": 15, "steps": 5, "crop_scale": (0.08, 1.0), "micro_repeats": 50,
        "memory_steps": 5, "threads": 8,
    },
}


# -- data and models ------------------------------------------------------------------------


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
    pipeline: RetentionPipeline
    order: torch.Generator
    cache: AttentionCache | None = None
    forward_calls: int = 0
    times: list[float] = field(default_factory=list)
    cpu_times: list[float] = field(default_factory=list)
    peak_bytes: int = 0

    def count(self, _module: nn.Module, _inputs: object) -> None:
        self.forward_calls += 1


def build_base_model(settings: Settings) -> nn.Module:
    torch.manual_seed(settings.seed)
    return RetrievalNet(*build_backbone(settings.arch), settings.code_length)


def build_variant(name: str, base: nn.Module, settings: Settings, device: torch.device) -> Variant:
    """A fresh copy of the model with its optimizer and the variant's augmentation pipeline."""
    model = copy.deepcopy(base).to(device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    crop = RandomResizedCropFlip(
        settings.image_size, scale=settings.crop_scale, generator=torch.Generator(device).manual_seed(settings.seed + 1)
    )
    cut_generator = torch.Generator(device).manual_seed(settings.seed + 2)
    cache = None
    augmentation: GT | GCut | None = None
    if name == "gt":
        augmentation = GT(sigma=0.3, generator=cut_generator)
    elif name == "gcut-exact":
        augmentation = GCut(model, grid_size=settings.grid, generator=cut_generator)
    elif name == "gcut-approx":
        cache = AttentionCache(settings.pool_size, grid_size=settings.grid, device=device)
        augmentation = GCut(model, cache=cache, grid_size=settings.grid, generator=cut_generator)
    pipeline = RetentionPipeline(augmentation, crop=crop)
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


def warm_up(variant: Variant, images: Tensor, labels: Tensor, loss_fn: nn.Module, settings: Settings, device: torch.device) -> list[int]:
    """One epoch over the pool (every sample once); returns forward calls per step."""
    calls = []
    for start in range(0, settings.pool_size, settings.batch):
        before = variant.forward_calls
        index = torch.arange(start, min(start + settings.batch, settings.pool_size), device=device)
        train_step(variant, images, labels, index, loss_fn)
        calls.append(variant.forward_calls - before)
    synchronize(device)
    return calls


# -- memory ---------------------------------------------------------------------------------


def _proc_status_kib(field_name: str) -> int | None:
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    """Linux >= 4.0: writing 5 to clear_refs resets the peak RSS (VmHWM) to the current RSS."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def memory_probe(settings: Settings, variant_name: str) -> dict[str, Any]:
    """Run one variant in this (fresh) process; report its peak RSS over the post-setup RSS.

    Setup (loading and resizing the data set) has a higher transient peak than training, so
    the peak is reset after setup where Linux allows it (VmHWM via /proc/self/clear_refs);
    elsewhere the getrusage high-water mark is used, which then includes the setup peak.
    """
    device = torch.device(settings.device)
    images, labels, _ = load_pool(settings.pool_size, settings.image_size, device)
    variant = build_variant(variant_name, build_base_model(settings), settings, device)
    loss_fn = RetentionWeightedPairwiseLoss()
    precise = _reset_peak_rss() and _proc_status_kib("VmHWM") is not None

    def high_water_kib() -> int:
        kib = _proc_status_kib("VmHWM") if precise else None
        return kib if kib is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    baseline_kib = (_proc_status_kib("VmRSS") if precise else None) or high_water_kib()
    warm_up(variant, images, labels, loss_fn, settings, device)
    for _ in range(settings.memory_steps):
        train_step(variant, images, labels, next_batch(variant, settings, device), loss_fn)
    peak_kib = high_water_kib()
    return {
        "baseline_mib": baseline_kib / 1024,
        "peak_mib": peak_kib / 1024,
        "delta_mib": (peak_kib - baseline_kib) / 1024,
        "method": "VmHWM reset after setup" if precise else "getrusage maxrss",
    }


def measure_memory(settings: Settings, variants: dict[str, Variant], device: torch.device) -> tuple[dict[str, dict[str, Any]], str]:
    """Per-variant peak memory and how it was measured."""
    if device.type == "cuda":
        return (
            {name: {"peak_mib": variant.peak_bytes / 2**20} for name, variant in variants.items()},
            "torch.cuda.max_memory_allocated during the timed steps",
        )
    if settings.no_memory:
        return {}, "not measured (--no-memory)"
    results: dict[str, dict[str, Any]] = {}
    for name in VARIANTS:
        command = [sys.executable, __file__, "--memory-probe", name, "--settings-json", json.dumps(asdict(settings))]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(f"memory probe {name} failed:\n{done.stderr[-2000:]}")
            results[name] = {"delta_mib": float("nan"), "peak_mib": float("nan")}
            continue
        results[name] = json.loads(done.stdout.strip().splitlines()[-1])
    methods = sorted({str(m.get("method", "failed")) for m in results.values()})
    return results, (
        f"CPU: peak-RSS increase of a fresh subprocess per variant over its RSS after setup ({', '.join(methods)}), "
        f"covering one warm-up epoch over the pool and {settings.memory_steps} more steps; it is the extra memory of "
        "training (activations, gradients, optimizer state, the cache), not the process total"
    )


# -- timing ---------------------------------------------------------------------------------


def time_training(
    variants: dict[str, Variant], side: dict[str, Any], images: Tensor, labels: Tensor, loss_fn: nn.Module,
    settings: Settings, device: torch.device,
) -> dict[str, list[float]]:
    """Round-robin rounds of ``steps`` training steps per variant (rotating order), with the
    side measurements once per round; fills each variant's times, returns the side times."""
    side_times: dict[str, list[float]] = {name: [] for name in side}
    names = list(VARIANTS)
    for round_index in range(settings.repeats):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            variant = variants[name]
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            for _ in range(settings.steps):
                index = next_batch(variant, settings, device)
                cpu_start = time.process_time()
                variant.times.append(timed(lambda v=variant, i=index: train_step(v, images, labels, i, loss_fn), device))
                variant.cpu_times.append(time.process_time() - cpu_start)
            if device.type == "cuda":
                variant.peak_bytes = max(variant.peak_bytes, torch.cuda.max_memory_allocated(device))
        for name, fn in side.items():
            side_times[name].append(timed(fn, device))
    return side_times


def time_batched_vs_per_sample(
    x_batch: Tensor, attention: Tensor, settings: Settings, device: torch.device
) -> tuple[dict[str, list[float]], str]:
    """G_cut mask generation and G_t, batched vs per sample, and Kornia's translate if present."""
    cutter = GCut(grid_size=settings.grid, generator=torch.Generator(device).manual_seed(settings.seed))
    translator = GT(sigma=0.3, generator=torch.Generator(device).manual_seed(settings.seed))
    micro: dict[str, Any] = {
        "gcut-mask batched": lambda: cutter(x_batch, attention=attention),
        "gcut-mask per-sample loop": lambda: gcut_per_sample(x_batch, attention, (settings.grid, settings.grid)),
        "gt batched": lambda: translator(x_batch),
        "gt per-sample canvas crop": lambda: gt_canvas_crop_per_sample(x_batch),
    }
    kornia_note = "kornia not importable (pip install kornia, extra 'peers')"
    try:
        import kornia
        from kornia.geometry.transform import translate as kornia_translate

        kornia_note = f"kornia {kornia.__version__}"

        def kornia_gt() -> Tensor:
            shift = translator.generate_params(x_batch.shape, device)["shift"]
            return kornia_translate(x_batch, shift.flip(1).to(x_batch.dtype), mode="nearest", padding_mode="zeros")

        micro["gt kornia translate"] = kornia_gt
    except ImportError:
        pass
    return interleave(micro, settings.micro_repeats, device), kornia_note


# -- command line ---------------------------------------------------------------------------


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
        loaded["crop_scale"] = tuple(loaded["crop_scale"])
        return Settings(**loaded), args.memory_probe
    values = dict(PRESETS[args.preset])
    for key in ("threads", "device", "batch", "repeats", "steps"):
        if getattr(args, key) is not None:
            values[key] = getattr(args, key)
    settings = Settings(preset=args.preset, seed=args.seed, out=str(args.out), no_memory=args.no_memory, **values)
    return settings, None


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    command = " ".join(["python benchmarks/efficiency.py", *argv])
    settings, probe = parse_settings(argv)
    torch.set_num_threads(settings.threads)
    if probe is not None:
        print(json.dumps(memory_probe(settings, probe)))
        return
    device = torch.device(settings.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--preset {settings.preset} needs CUDA; none is available here")
    started = time.perf_counter()
    load_before = os.getloadavg()
    images, labels, data_note = load_pool(settings.pool_size, settings.image_size, device)
    base = build_base_model(settings)
    loss_fn = RetentionWeightedPairwiseLoss()
    variants = {name: build_variant(name, base, settings, device) for name in VARIANTS}

    # Warm-up: the approximate G_cut's epoch over the pool (fills the cache), two steps for
    # the others (allocator and kernel caches).
    warmup_calls: dict[str, list[int]] = {}
    for name, variant in variants.items():
        if name == "gcut-approx":
            warmup_calls[name] = warm_up(variant, images, labels, loss_fn, settings, device)
            continue
        warmup_calls[name] = []
        for _ in range(2):
            before = variant.forward_calls
            train_step(variant, images, labels, next_batch(variant, settings, device), loss_fn)
            warmup_calls[name].append(variant.forward_calls - before)
    for variant in variants.values():
        variant.forward_calls = 0

    # Side measurements inside the same rounds: the exact G_cut's eval forward on its own (on
    # an uncounted copy of the model, so the exact variant's forward count stays honest), and
    # the approximate path's cache read and write for one batch, on a copy of the warm cache.
    probe_extractor = attention_extractor_for(copy.deepcopy(base).to(device).train())
    approx_cache = variants["gcut-approx"].cache
    if approx_cache is None:
        raise RuntimeError("the gcut-approx variant must hold an attention cache")
    probe_image, probe_view = RandomResizedCropFlip(settings.image_size, scale=settings.crop_scale)(
        images[: settings.batch], index=torch.arange(settings.batch, device=device)
    )
    probe_logits = probe_extractor.extract(probe_image)
    probe_cache = AttentionCache(settings.pool_size, grid_size=settings.grid, device=device)
    probe_cache.load_state_dict(approx_cache.state_dict())
    side = {
        "eval-forward": lambda: probe_extractor.extract(probe_image),
        "cache-read": lambda: probe_cache.read(View(probe_view.index, probe_view.boxes, probe_view.flips)),
        "cache-write": lambda: probe_cache.write(View(probe_view.index, probe_view.boxes, probe_view.flips), probe_logits),
    }
    side_times = time_training(variants, side, images, labels, loss_fn, settings, device)

    x_batch = images[: settings.batch]
    attention = attention_to_grid(probe_extractor.extract(x_batch), (settings.grid, settings.grid), logits=True)
    micro_times, kornia_note = time_batched_vs_per_sample(x_batch, attention, settings, device)
    memory, memory_method = measure_memory(settings, variants, device)
    load_after = os.getloadavg()

    rows = result_rows(variants, side_times, micro_times, memory, settings)
    context = {
        "command": command,
        "device_line": f"device {device} ({platform.processor() or platform.machine()}), torch {torch.__version__}, "
        f"{settings.threads} threads, load average {load_before[0]:.2f} before / {load_after[0]:.2f} after",
        "data_note": data_note,
        "memory_method": memory_method,
        "warmup_calls": warmup_calls,
        "kornia_note": kornia_note,
        "elapsed": time.perf_counter() - started,
        "cache": approx_cache,
    }
    markdown = report(rows, settings, list(side), list(micro_times), context)
    write_results(Path(settings.out), "efficiency", rows, markdown, plot(rows, list(variants), list(micro_times)))
    print(markdown)
    out = Path(settings.out)
    print(f"wrote {out / 'efficiency.md'}, {out / 'efficiency.csv'}, {out / 'efficiency.png'}")


# -- report ---------------------------------------------------------------------------------


def result_rows(
    variants: dict[str, Variant], side_times: dict[str, list[float]], micro_times: dict[str, list[float]],
    memory: dict[str, dict[str, Any]], settings: Settings,
) -> list[dict[str, Any]]:
    """One CSV row per training variant, side component and batched/per-sample candidate."""
    gt_median = summary(variants["gt"].times)[0]

    def per_round(values: list[float]) -> list[float]:
        return [statistics.fmean(values[r * settings.steps : (r + 1) * settings.steps]) for r in range(settings.repeats)]

    gt_rounds = per_round(variants["gt"].times)
    gt_cpu_median = summary(variants["gt"].cpu_times)[0]
    blank = {key: "" for key in ("ratio_vs_gt", "paired_ratio_q1", "paired_ratio_median", "paired_ratio_q3",
                                 "cpu_median_ms", "cpu_ratio_vs_gt", "forward_calls_per_step", "peak_memory_mib")}
    rows: list[dict[str, Any]] = []
    steps_timed = settings.repeats * settings.steps
    for name, variant in variants.items():
        med, q1, q3 = summary(variant.times)
        # summary() reports x1000, so feed it the ratios / 1000.
        paired_median, paired_q1, paired_q3 = summary([v / g / 1000 for v, g in zip(per_round(variant.times), gt_rounds)])
        mem = memory.get(name, {})
        rows.append({
            "group": "train step", "name": name, "median_ms": med, "q1_ms": q1, "q3_ms": q3,
            "samples": len(variant.times), "ratio_vs_gt": med / gt_median,
            "paired_ratio_q1": paired_q1, "paired_ratio_median": paired_median, "paired_ratio_q3": paired_q3,
            "cpu_median_ms": summary(variant.cpu_times)[0],
            "cpu_ratio_vs_gt": summary(variant.cpu_times)[0] / gt_cpu_median,
            "forward_calls_per_step": variant.forward_calls / steps_timed,
            "peak_memory_mib": mem.get("delta_mib", mem.get("peak_mib", float("nan"))),
        })
    for group, times in (("component", side_times), ("batched vs per-sample", micro_times)):
        for name, values in times.items():
            med, q1, q3 = summary(values)
            row = {"group": group, "name": name, "median_ms": med, "q1_ms": q1, "q3_ms": q3, "samples": len(values), **blank}
            if group == "component":
                row["ratio_vs_gt"] = med / gt_median
            rows.append(row)
    return rows


def _fmt(value: object, digits: int = 3) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.{digits}g}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def report(rows: list[dict[str, Any]], settings: Settings, side: list[str], micro: list[str], context: dict[str, Any]) -> str:
    """The markdown report: training steps, targets, components, batched vs per-sample."""
    by_name = {row["name"]: row for row in rows}
    gt_median = by_name["gt"]["median_ms"]
    approx_ratio = by_name["gcut-approx"]["ratio_vs_gt"]
    exact_ratio = by_name["gcut-exact"]["ratio_vs_gt"]
    expected_exact = 1 + by_name["eval-forward"]["median_ms"] / gt_median
    mask_speedup = by_name["gcut-mask per-sample loop"]["median_ms"] / by_name["gcut-mask batched"]["median_ms"]
    canvas_speedup = by_name["gt per-sample canvas crop"]["median_ms"] / by_name["gt batched"]["median_ms"]
    kornia = by_name.get("gt kornia translate")
    kornia_ratio = kornia["median_ms"] / by_name["gt batched"]["median_ms"] if kornia else None
    cache = context["cache"]
    lines = [
        f"# Efficiency: G_t vs exact vs approximate G_cut ({settings.preset})",
        "",
        f"Command: `{context['command']}`",
        "",
        f"- {context['device_line']}",
        f"- model RetrievalNet(build_backbone({settings.arch!r}), {settings.code_length}), batch {settings.batch}, "
        f"{settings.image_size}x{settings.image_size}, SGD, RetentionWeightedPairwiseLoss (in-batch)",
        f"- data: {context['data_note']}; every variant is a RetentionPipeline with "
        f"RandomResizedCropFlip(scale={tuple(settings.crop_scale)}); G_cut grid {settings.grid}x{settings.grid}",
        f"- {settings.repeats} round-robin rounds x {settings.steps} steps per variant (rotating order); medians; "
        f"approximate G_cut timed after one warm-up epoch over its {settings.pool_size} samples",
        f"- wall time of this run: {context['elapsed']:.0f} s",
        "",
        "## Training step",
        "",
        "| variant | median ms | IQR ms | ratio vs G_t | per-round ratio, median [IQR] | process CPU ms | CPU ratio vs G_t | forward calls / step | peak memory MiB |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows[: len(VARIANTS)]:
        lines.append(
            f"| {row['name']} | {_fmt(row['median_ms'])} | {_fmt(row['q1_ms'])}–{_fmt(row['q3_ms'])} | "
            f"{row['ratio_vs_gt']:.3f} | {row['paired_ratio_median']:.3f} [{row['paired_ratio_q1']:.3f}, {row['paired_ratio_q3']:.3f}] | "
            f"{_fmt(row['cpu_median_ms'])} | {row['cpu_ratio_vs_gt']:.3f} | "
            f"{row['forward_calls_per_step']:.2f} | {_fmt(row['peak_memory_mib'])} |"
        )
    lines += [
        "",
        "Ratios use wall-clock medians of all steps; the per-round ratio divides each round's mean step "
        "by G_t's mean step of the same round (the rounds interleave the variants), its IQR shows the "
        "spread. Process CPU time (all threads, ``time.process_time``) is shown beside them: on a shared "
        "machine it is less sensitive to other processes; compare the two ratios, and distrust a run "
        "whose load average rose.",
        "",
        f"Memory: {context['memory_method']}. The cache itself holds {cache.memory_bytes / 2**20:.3f} MiB "
        f"({cache.num_samples} samples x {cache.grid_size[0]}x{cache.grid_size[1]} x {cache.values.element_size()} B + flags).",
        "",
        "Forward calls in the warm-up: " + ", ".join(f"{name} {calls}" for name, calls in context["warmup_calls"].items()),
        "",
        "## Targets",
        "",
        "| target | measured | verdict |",
        "| --- | --- | --- |",
        f"| approximate G_cut step / G_t step <= 1.05 (aim 1.02) | {approx_ratio:.3f} | "
        f"{'met' if approx_ratio <= 1.05 else 'missed'} |",
        f"| exact G_cut / G_t ~ 1 + t(eval forward) / t(G_t step) | {exact_ratio:.3f} vs expected {expected_exact:.3f} | "
        f"{'consistent' if abs(exact_ratio - expected_exact) <= 0.1 else 'differs'} |",
        f"| batched GT >= 5x the per-sample canvas crop | {canvas_speedup:.1f}x | {'met' if canvas_speedup >= 5 else 'missed'} |",
        "",
        "## Components (one batch, same rounds as the training steps)",
        "",
        "| component | median ms | IQR ms | share of a G_t step |",
        "| --- | --- | --- | --- |",
    ]
    for name in side:
        row = by_name[name]
        lines.append(f"| {name} | {_fmt(row['median_ms'])} | {_fmt(row['q1_ms'])}–{_fmt(row['q3_ms'])} | {row['ratio_vs_gt']:.3f} |")
    lines += ["", "## Batched vs per-sample (one batch)", "", "| implementation | median ms | IQR ms |", "| --- | --- | --- |"]
    for name in micro:
        row = by_name[name]
        lines.append(f"| {name} | {_fmt(row['median_ms'])} | {_fmt(row['q1_ms'])}–{_fmt(row['q3_ms'])} |")
    lines += [
        "",
        f"- G_cut (mask generation and cut): batched is {mask_speedup:.1f}x faster than the per-sample loop",
        f"- G_t: batched is {canvas_speedup:.1f}x faster than the per-sample canvas crop",
        f"- Kornia translate: {context['kornia_note']}"
        + (f"; it takes {kornia_ratio:.2f}x the time of batched GT" if kornia_ratio is not None else ""),
        "",
    ]
    return "\n".join(lines)


def plot(rows: list[dict[str, Any]], names: list[str], micro_names: list[str]) -> Any:
    """Training-step medians with IQR bars, and batched vs per-sample times (log scale)."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_name = {row["name"]: row for row in rows}
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2))
    medians = [by_name[n]["median_ms"] for n in names]
    errors = [
        [by_name[n]["median_ms"] - by_name[n]["q1_ms"] for n in names],
        [by_name[n]["q3_ms"] - by_name[n]["median_ms"] for n in names],
    ]
    bars = left.bar(names, medians, yerr=errors, capsize=4, color=["#999999", "#4c72b0", "#c44e52", "#55a868"])
    for bar, name in zip(bars, names):
        left.annotate(f"{by_name[name]['ratio_vs_gt']:.2f}x G_t\n{by_name[name]['forward_calls_per_step']:.2f} fwd",
                      (bar.get_x() + bar.get_width() / 2, by_name[name]["q3_ms"]), ha="center", va="bottom", fontsize=8,
                      xytext=(0, 3), textcoords="offset points")
    left.set_ylabel("median training step (ms)")
    left.set_ylim(top=max(by_name[n]["q3_ms"] for n in names) * 1.2)
    left.set_title("training step (IQR bars)")
    micro_medians = [by_name[n]["median_ms"] for n in micro_names]
    right.barh(micro_names, micro_medians, color="#8172b2")
    right.set_xscale("log")
    right.set_xlim(left=min(micro_medians) / 4)
    right.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    for y, value in enumerate(micro_medians):
        right.annotate(f"{value:.2f} ms", (value, y), xytext=(3, 0), textcoords="offset points", va="center", fontsize=8)
    right.set_xlabel("median ms per batch (log)")
    right.set_title("batched vs per-sample")
    fig.tight_layout()
    return fig


if __name__ == "__main__":
    main()
