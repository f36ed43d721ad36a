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

Writes ``efficiency.md``, ``efficiency.csv`` and ``efficiency.png`` under ``--out``
atomically (temp file + ``os.replace``).

    python benchmarks/efficiency.py                      # --preset cpu-small, a few minutes
    python benchmarks/efficiency.py --preset paper       # GPU, ResNet-50 at 224 px
"""

from __future__ import annotations

import argparse
import copy
import csv
import io
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from naive import gcut_per_sample, gt_canvas_crop_per_sample
from torch import Tensor, nn

from gg_augment import (
    GT,
    AttentionCache,
    GCut,
    RandomResizedCropFlip,
    RetentionWeightedPairwiseLoss,
    RetrievalNet,
    attention_extractor_for,
    build_backbone,
)
from gg_augment.functional import attention_to_grid
from gg_augment.io import write_atomic

VARIANTS = ("standard", "gt", "gcut-exact", "gcut-approx")

PRESETS: dict[str, dict[str, object]] = {
    "cpu-small": {
        "device": "cpu",
        "arch": "small",
        "batch": 128,
        "image_size": 32,
        "code_length": 32,
        "grid": 12,
        "pool_batches": 8,  # the approximate G_cut's warm-up epoch covers these samples
        "repeats": 20,
        "steps": 3,
        "crop_scale": (0.5, 1.0),
        "micro_repeats": 25,
        "memory_steps": 3,
        "threads": 2,
    },
    "paper": {
        "device": "cuda",
        "arch": "resnet50",
        "batch": 256,
        "image_size": 224,
        "code_length": 64,
        "grid": 12,
        "pool_batches": 8,
        "repeats": 15,
        "steps": 5,
        "crop_scale": (0.08, 1.0),
        "micro_repeats": 50,
        "memory_steps": 5,
        "threads": 8,
    },
}


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# -- data and models ------------------------------------------------------------------------


def load_pool(count: int, image_size: int, device: torch.device, seed: int) -> tuple[Tensor, Tensor, str]:
    """``count`` training images and labels on ``device``: the embedded set, else random."""
    try:
        from gg_augment.data import load_embedded
    except ImportError as error:
        print(f"note: gg_augment.data.load_embedded is not importable ({error}); using random tensors")
        generator = torch.Generator().manual_seed(seed)
        images = torch.randn(count, 3, image_size, image_size, generator=generator)
        labels = torch.randint(0, 10, (count,), generator=generator)
        return images.to(device), labels.to(device), "random tensors (embedded data not importable)"
    train = load_embedded("train", image_size=min(image_size, 32), channels=3)
    images, labels = train.tensors
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
    crop: RandomResizedCropFlip
    augment: nn.Module | None
    order: torch.Generator
    cache: AttentionCache | None = None
    forward_calls: int = 0
    times: list[float] = field(default_factory=list)
    cpu_times: list[float] = field(default_factory=list)
    peak_bytes: int = 0

    def count(self, _module: nn.Module, _inputs: object) -> None:
        self.forward_calls += 1


def build_variant(name: str, base: nn.Module, cfg: argparse.Namespace, pool_size: int, device: torch.device) -> Variant:
    model = copy.deepcopy(base).to(device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    crop = RandomResizedCropFlip(cfg.image_size, scale=tuple(cfg.crop_scale), generator=torch.Generator(device).manual_seed(cfg.seed + 1))
    cut_generator = torch.Generator(device).manual_seed(cfg.seed + 2)
    cache = None
    augment: nn.Module | None = None
    if name == "gt":
        augment = GT(sigma=0.3, generator=cut_generator)
    elif name == "gcut-exact":
        augment = GCut(model, grid_size=cfg.grid, generator=cut_generator)
    elif name == "gcut-approx":
        cache = AttentionCache(pool_size, grid_size=cfg.grid, device=device)
        augment = GCut(model, cache=cache, grid_size=cfg.grid, generator=cut_generator)
    variant = Variant(name, model, optimizer, crop, augment, torch.Generator(device).manual_seed(cfg.seed + 3), cache)
    model.register_forward_pre_hook(variant.count)
    return variant


def train_step(variant: Variant, images: Tensor, labels: Tensor, index: Tensor, loss_fn: nn.Module) -> None:
    view = variant.crop(images.index_select(0, index))
    if variant.name == "standard":
        x_aug, retention = view.image, None
    elif variant.name == "gcut-approx":
        x_aug, retention = variant.augment(view.image, index=index, view_boxes=view.view_boxes, flips=view.flips)  # type: ignore[misc]
    else:
        x_aug, retention = variant.augment(view.image)  # type: ignore[misc]
    loss = loss_fn(variant.model(x_aug), labels.index_select(0, index), retention)
    variant.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    variant.optimizer.step()


def next_batch(variant: Variant, pool_size: int, batch: int, device: torch.device) -> Tensor:
    return torch.randperm(pool_size, device=device, generator=variant.order)[:batch]


def warm_up(variant: Variant, images: Tensor, labels: Tensor, loss_fn: nn.Module, cfg: argparse.Namespace, device: torch.device) -> list[int]:
    """One epoch over the pool (every sample once); returns forward calls per step."""
    calls = []
    pool_size = images.shape[0]
    for start in range(0, pool_size, cfg.batch):
        before = variant.forward_calls
        index = torch.arange(start, min(start + cfg.batch, pool_size), device=device)
        train_step(variant, images, labels, index, loss_fn)
        calls.append(variant.forward_calls - before)
    synchronize(device)
    return calls


def build_base_model(cfg: argparse.Namespace) -> nn.Module:
    torch.manual_seed(cfg.seed)
    return RetrievalNet(*build_backbone(cfg.arch), cfg.code_length)


# -- measurement helpers ------------------------------------------------------------------


def timed(fn, device: torch.device) -> float:
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start


def interleave(candidates: dict[str, object], repeats: int, device: torch.device, warmup: int = 2) -> dict[str, list[float]]:
    """Seconds per call, round-robin with a rotating start so no candidate always goes first."""
    names = list(candidates)
    for name in names:
        for _ in range(warmup):
            candidates[name]()  # type: ignore[operator]
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(repeats):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            times[name].append(timed(candidates[name], device))
    return times


def summary(values: list[float]) -> tuple[float, float, float]:
    """Median, first and third quartile, in milliseconds."""
    ms = sorted(v * 1000 for v in values)
    if len(ms) < 4:
        return statistics.median(ms), ms[0], ms[-1]
    q1, _, q3 = statistics.quantiles(ms, n=4)
    return statistics.median(ms), q1, q3


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


def memory_probe(cfg: argparse.Namespace, variant_name: str) -> dict[str, float]:
    """Run one variant in this (fresh) process; report its peak RSS over the post-setup RSS.

    Setup (loading and resizing the data set) has a higher transient peak than training, so
    the peak is reset after setup where Linux allows it (VmHWM via /proc/self/clear_refs);
    elsewhere the getrusage high-water mark is used, which then includes the setup peak.
    """
    device = torch.device(cfg.device)
    pool_size = cfg.batch * cfg.pool_batches
    images, labels, _ = load_pool(pool_size, cfg.image_size, device, cfg.seed)
    variant = build_variant(variant_name, build_base_model(cfg), cfg, pool_size, device)
    loss_fn = RetentionWeightedPairwiseLoss()
    precise = _reset_peak_rss() and _proc_status_kib("VmHWM") is not None
    baseline_kib = _proc_status_kib("VmRSS") if precise else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    warm_up(variant, images, labels, loss_fn, cfg, device)
    for _ in range(cfg.memory_steps):
        train_step(variant, images, labels, next_batch(variant, pool_size, cfg.batch, device), loss_fn)
    peak_kib = _proc_status_kib("VmHWM") if precise else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "baseline_mib": baseline_kib / 1024,  # type: ignore[operator]
        "peak_mib": peak_kib / 1024,  # type: ignore[operator]
        "delta_mib": (peak_kib - baseline_kib) / 1024,  # type: ignore[operator]
        "method": "VmHWM reset after setup" if precise else "getrusage maxrss",
    }


def cpu_memory(cfg: argparse.Namespace) -> dict[str, dict[str, float]]:
    results = {}
    for name in VARIANTS:
        command = [sys.executable, __file__, "--memory-probe", name, "--config-json", json.dumps(vars(cfg))]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(f"memory probe {name} failed:\n{done.stderr[-2000:]}")
            results[name] = {"delta_mib": float("nan"), "peak_mib": float("nan")}
            continue
        results[name] = json.loads(done.stdout.strip().splitlines()[-1])
    return results


# -- main ----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
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
    parser.add_argument("--config-json", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.config_json is not None:
        merged = json.loads(args.config_json)
        merged["memory_probe"] = args.memory_probe
        return argparse.Namespace(**merged)
    for key, value in PRESETS[args.preset].items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    args.out = str(args.out)
    return args


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    command = " ".join(["python benchmarks/efficiency.py", *argv])
    cfg = parse_args(argv)
    torch.set_num_threads(cfg.threads)
    if cfg.memory_probe is not None:
        print(json.dumps(memory_probe(cfg, cfg.memory_probe)))
        return
    device = torch.device(cfg.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--preset {cfg.preset} needs CUDA; none is available here")
    started = time.perf_counter()
    load_before = os.getloadavg()
    pool_size = cfg.batch * cfg.pool_batches
    images, labels, data_note = load_pool(pool_size, cfg.image_size, device, cfg.seed)
    base = build_base_model(cfg)
    loss_fn = RetentionWeightedPairwiseLoss()
    variants = {name: build_variant(name, base, cfg, pool_size, device) for name in VARIANTS}

    # Warm-up: the approximate G_cut's epoch over the pool (fills the cache), two steps for
    # the others (allocator and kernel caches).
    warmup_calls = {}
    for name, variant in variants.items():
        if name == "gcut-approx":
            warmup_calls[name] = warm_up(variant, images, labels, loss_fn, cfg, device)
        else:
            warmup_calls[name] = []
            for _ in range(2):
                before = variant.forward_calls
                train_step(variant, images, labels, next_batch(variant, pool_size, cfg.batch, device), loss_fn)
                warmup_calls[name].append(variant.forward_calls - before)
    for variant in variants.values():
        variant.forward_calls = 0

    # Side measurements inside the same rounds: the exact G_cut's eval forward on its own,
    # and the approximate path's cache read and write for one batch.
    # The eval forward runs on an uncounted copy of the model, so it does not inflate the
    # exact variant's forward count.
    probe_extractor = attention_extractor_for(copy.deepcopy(base).to(device).train())
    approx = variants["gcut-approx"]
    probe_index = torch.arange(cfg.batch, device=device)
    probe_view = approx.crop(images[: cfg.batch])
    probe_logits = probe_extractor.extract(probe_view.image)
    # A copy of the warmed-up cache, so the write probe does not disturb the training one.
    probe_cache = AttentionCache(pool_size, grid_size=cfg.grid, device=device)
    probe_cache.load_state_dict(approx.cache.state_dict())  # type: ignore[union-attr]
    side = {
        "eval-forward": lambda: probe_extractor.extract(probe_view.image),
        "cache-read": lambda: probe_cache.read(probe_index, probe_view.view_boxes, probe_view.flips, grid_size=cfg.grid),
        "cache-write": lambda: probe_cache.write(probe_index, probe_logits, probe_view.view_boxes, probe_view.flips),
    }
    side_times: dict[str, list[float]] = {name: [] for name in side}

    names = list(VARIANTS)
    for round_index in range(cfg.repeats):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            variant = variants[name]
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            for _ in range(cfg.steps):
                index = next_batch(variant, pool_size, cfg.batch, device)
                cpu_start = time.process_time()
                variant.times.append(timed(lambda v=variant, i=index: train_step(v, images, labels, i, loss_fn), device))
                variant.cpu_times.append(time.process_time() - cpu_start)
            if device.type == "cuda":
                variant.peak_bytes = max(variant.peak_bytes, torch.cuda.max_memory_allocated(device))
        for name, fn in side.items():
            side_times[name].append(timed(fn, device))
    steps_timed = cfg.repeats * cfg.steps

    # Mask generation and translation, batched vs per sample (one batch, interleaved).
    x_batch = images[: cfg.batch]
    attention = attention_to_grid(probe_extractor.extract(x_batch), (cfg.grid, cfg.grid), logits=True)
    cutter = GCut(grid_size=cfg.grid, generator=torch.Generator(device).manual_seed(cfg.seed))
    translator = GT(sigma=0.3, generator=torch.Generator(device).manual_seed(cfg.seed))
    micro: dict[str, object] = {
        "gcut-mask batched": lambda: cutter.apply(x_batch, cutter.generate_params(attention)),
        "gcut-mask per-sample loop": lambda: gcut_per_sample(x_batch, attention, (cfg.grid, cfg.grid)),
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
    micro_times = interleave(micro, cfg.micro_repeats, device)

    memory: dict[str, dict[str, float]] = {}
    if device.type == "cuda":
        memory_method = "torch.cuda.max_memory_allocated during the timed steps"
        for name, variant in variants.items():
            memory[name] = {"peak_mib": variant.peak_bytes / 2**20}
    elif cfg.no_memory:
        memory_method = "not measured (--no-memory)"
    else:
        memory = cpu_memory(cfg)
        methods = sorted({str(m.get("method", "failed")) for m in memory.values()})
        memory_method = (
            f"CPU: peak-RSS increase of a fresh subprocess per variant over its RSS after setup ({', '.join(methods)}), "
            f"covering one warm-up epoch over the pool and {cfg.memory_steps} more steps; it is the extra memory of "
            "training (activations, gradients, optimizer state, the cache), not the process total"
        )
    load_after = os.getloadavg()

    # -- report -----------------------------------------------------------------------------
    gt_median = summary(variants["gt"].times)[0]

    def per_round(values: list[float]) -> list[float]:
        return [statistics.fmean(values[r * cfg.steps : (r + 1) * cfg.steps]) for r in range(cfg.repeats)]

    gt_rounds = per_round(variants["gt"].times)
    paired = {}
    for name, variant in variants.items():
        ratios = [v / g for v, g in zip(per_round(variant.times), gt_rounds)]
        med, q1, q3 = summary([r / 1000 for r in ratios])  # summary() reports x1000
        paired[name] = (med, q1, q3)
    gt_cpu_median = summary(variants["gt"].cpu_times)[0]
    rows: list[dict[str, object]] = []
    for name, variant in variants.items():
        med, q1, q3 = summary(variant.times)
        mem = memory.get(name, {})
        rows.append(
            {
                "group": "train step",
                "name": name,
                "median_ms": med,
                "q1_ms": q1,
                "q3_ms": q3,
                "samples": len(variant.times),
                "ratio_vs_gt": med / gt_median,
                "paired_ratio_q1": paired[name][1],
                "paired_ratio_median": paired[name][0],
                "paired_ratio_q3": paired[name][2],
                "cpu_median_ms": summary(variant.cpu_times)[0],
                "cpu_ratio_vs_gt": summary(variant.cpu_times)[0] / gt_cpu_median,
                "forward_calls_per_step": variant.forward_calls / steps_timed,
                "peak_memory_mib": mem.get("delta_mib", mem.get("peak_mib", float("nan"))),
            }
        )
    for name, values in side_times.items():
        med, q1, q3 = summary(values)
        rows.append({"group": "component", "name": name, "median_ms": med, "q1_ms": q1, "q3_ms": q3, "samples": len(values), "ratio_vs_gt": med / gt_median, "paired_ratio_q1": "", "paired_ratio_median": "", "paired_ratio_q3": "", "cpu_median_ms": "", "cpu_ratio_vs_gt": "", "forward_calls_per_step": "", "peak_memory_mib": ""})
    for name, values in micro_times.items():
        med, q1, q3 = summary(values)
        rows.append({"group": "batched vs per-sample", "name": name, "median_ms": med, "q1_ms": q1, "q3_ms": q3, "samples": len(values), "ratio_vs_gt": "", "paired_ratio_q1": "", "paired_ratio_median": "", "paired_ratio_q3": "", "cpu_median_ms": "", "cpu_ratio_vs_gt": "", "forward_calls_per_step": "", "peak_memory_mib": ""})

    by_name = {row["name"]: row for row in rows}
    approx_ratio = by_name["gcut-approx"]["ratio_vs_gt"]
    exact_ratio = by_name["gcut-exact"]["ratio_vs_gt"]
    expected_exact = 1 + by_name["eval-forward"]["median_ms"] / gt_median  # type: ignore[operator]
    mask_speedup = by_name["gcut-mask per-sample loop"]["median_ms"] / by_name["gcut-mask batched"]["median_ms"]  # type: ignore[operator]
    canvas_speedup = by_name["gt per-sample canvas crop"]["median_ms"] / by_name["gt batched"]["median_ms"]  # type: ignore[operator]
    kornia_ratio = (
        by_name["gt kornia translate"]["median_ms"] / by_name["gt batched"]["median_ms"]  # type: ignore[operator]
        if "gt kornia translate" in by_name
        else None
    )
    cache = approx.cache
    elapsed = time.perf_counter() - started

    def fmt(value: object, digits: int = 3) -> str:
        if isinstance(value, float):
            return "n/a" if math.isnan(value) else f"{value:.{digits}g}" if abs(value) < 100 else f"{value:.0f}"
        return str(value)

    lines = [
        f"# Efficiency: G_t vs exact vs approximate G_cut ({cfg.preset})",
        "",
        f"Command: `{command}`",
        "",
        f"- device {device} ({platform.processor() or platform.machine()}), torch {torch.__version__}, "
        f"{cfg.threads} threads, load average {load_before[0]:.2f} before / {load_after[0]:.2f} after",
        f"- model RetrievalNet(build_backbone({cfg.arch!r}), {cfg.code_length}), batch {cfg.batch}, "
        f"{cfg.image_size}x{cfg.image_size}, SGD, RetentionWeightedPairwiseLoss (in-batch)",
        f"- data: {data_note}; RandomResizedCropFlip(scale={tuple(cfg.crop_scale)}) in every variant; "
        f"G_cut grid {cfg.grid}x{cfg.grid}",
        f"- {cfg.repeats} round-robin rounds x {cfg.steps} steps per variant (rotating order); medians; "
        f"approximate G_cut timed after one warm-up epoch over its {pool_size} samples",
        f"- wall time of this run: {elapsed:.0f} s",
        "",
        "## Training step",
        "",
        "| variant | median ms | IQR ms | ratio vs G_t | per-round ratio, median [IQR] | process CPU ms | CPU ratio vs G_t | forward calls / step | peak memory MiB |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows[: len(VARIANTS)]:
        lines.append(
            f"| {row['name']} | {fmt(row['median_ms'])} | {fmt(row['q1_ms'])}–{fmt(row['q3_ms'])} | "
            f"{row['ratio_vs_gt']:.3f} | {row['paired_ratio_median']:.3f} [{row['paired_ratio_q1']:.3f}, {row['paired_ratio_q3']:.3f}] | "
            f"{fmt(row['cpu_median_ms'])} | {row['cpu_ratio_vs_gt']:.3f} | "
            f"{row['forward_calls_per_step']:.2f} | {fmt(row['peak_memory_mib'])} |"
        )
    lines += [
        "",
        "Ratios use wall-clock medians of all steps; the per-round ratio divides each round's mean step "
        "by G_t's mean step of the same round (the rounds interleave the variants), its IQR shows the "
        "spread. Process CPU time (all threads, ``time.process_time``) is "
        "shown beside them: on a shared machine it is less sensitive to other processes; compare the "
        "two ratios, and distrust a run whose load average rose.",
        "",
        f"Memory: {memory_method}. The cache itself holds {cache.memory_bytes / 2**20:.3f} MiB "  # type: ignore[union-attr]
        f"({cache.num_samples} samples x {cache.grid_size[0]}x{cache.grid_size[1]} x {cache.values.element_size()} B + flags).",  # type: ignore[union-attr]
        "",
        "Forward calls in the warm-up: "
        + ", ".join(f"{name} {calls}" for name, calls in warmup_calls.items()),
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
        lines.append(f"| {name} | {fmt(row['median_ms'])} | {fmt(row['q1_ms'])}–{fmt(row['q3_ms'])} | {row['ratio_vs_gt']:.3f} |")
    lines += [
        "",
        "## Batched vs per-sample (one batch)",
        "",
        "| implementation | median ms | IQR ms |",
        "| --- | --- | --- |",
    ]
    for name in micro_times:
        row = by_name[name]
        lines.append(f"| {name} | {fmt(row['median_ms'])} | {fmt(row['q1_ms'])}–{fmt(row['q3_ms'])} |")
    lines += [
        "",
        f"- G_cut mask generation: batched is {mask_speedup:.1f}x faster than the per-sample loop",
        f"- G_t: batched is {canvas_speedup:.1f}x faster than the per-sample canvas crop",
        f"- Kornia translate: {kornia_note}"
        + (f"; it takes {kornia_ratio:.2f}x the time of batched GT" if kornia_ratio is not None else ""),
        "",
    ]
    markdown = "\n".join(lines)

    out = Path(cfg.out)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(out / "efficiency.csv", buffer.getvalue())
    write_atomic(out / "efficiency.md", markdown)
    write_atomic(out / "efficiency.png", plot(rows, variants, micro_times))
    print(markdown)
    print(f"wrote {out / 'efficiency.md'}, {out / 'efficiency.csv'}, {out / 'efficiency.png'}")


def plot(rows: list[dict[str, object]], variants: dict[str, Variant], micro_times: dict[str, list[float]]) -> bytes:
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_name = {row["name"]: row for row in rows}
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2))
    names = list(variants)
    medians = [by_name[n]["median_ms"] for n in names]
    errors = [
        [by_name[n]["median_ms"] - by_name[n]["q1_ms"] for n in names],  # type: ignore[operator]
        [by_name[n]["q3_ms"] - by_name[n]["median_ms"] for n in names],  # type: ignore[operator]
    ]
    bars = left.bar(names, medians, yerr=errors, capsize=4, color=["#999999", "#4c72b0", "#c44e52", "#55a868"])
    for bar, name in zip(bars, names):
        left.annotate(f"{by_name[name]['ratio_vs_gt']:.2f}x G_t\n{by_name[name]['forward_calls_per_step']:.2f} fwd",
                      (bar.get_x() + bar.get_width() / 2, by_name[name]["q3_ms"]), ha="center", va="bottom", fontsize=8,
                      xytext=(0, 3), textcoords="offset points")
    left.set_ylabel("median training step (ms)")
    left.set_ylim(top=max(by_name[n]["q3_ms"] for n in names) * 1.2)  # type: ignore[type-var, operator]
    left.set_title("training step (IQR bars)")
    micro_names = list(micro_times)
    micro_medians = [by_name[n]["median_ms"] for n in micro_names]
    right.barh(micro_names, micro_medians, color="#8172b2")
    right.set_xscale("log")
    right.set_xlim(left=min(micro_medians) / 4)  # type: ignore[type-var, operator]
    right.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    for y, value in enumerate(micro_medians):
        right.annotate(f"{value:.2f} ms", (value, y), xytext=(3, 0), textcoords="offset points", va="center", fontsize=8)
    right.set_xlabel("median ms per batch (log)")
    right.set_title("batched vs per-sample")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    plt.close(fig)
    return buffer.getvalue()


if __name__ == "__main__":
    main()
