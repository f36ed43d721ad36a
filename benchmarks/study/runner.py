"""The study's runs: one :class:`~gg_augment.training.TrainConfig` per run, each trained in a
process of its own (so its peak RSS is its own), finished runs reused.

Each job is the preset's configuration with the seed, the code lengths, the output folder and
the method's or ablation's fields replaced; the trainer's :class:`RunLayout` says where its
results are, so an interrupted study continues where it stopped (``resume``).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import multiprocessing
import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from gg_augment.training import RunLayout, TrainConfig, run

from .presets import Ablation, Preset

__all__ = ["Job", "Study", "load_model"]


@dataclass(frozen=True, eq=False)
class Job:
    """One trainer run: its configuration, and the log its output goes to."""

    name: str
    config: TrainConfig
    log: Path

    def finished(self) -> bool:
        layout = RunLayout.of(self.config)
        return all(layout.final(bits).is_file() for bits in self.config.code_lengths)

    def finals(self) -> dict[int, dict[str, Any]]:
        """``final.json`` of every code length of the run."""
        layout = RunLayout.of(self.config)
        return {bits: json.loads(layout.final(bits).read_text()) for bits in self.config.code_lengths}

    def history(self, bits: int) -> list[dict[str, Any]]:
        path = RunLayout.of(self.config).metrics(bits)
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _train(config: TrainConfig, log: str) -> None:
    """Worker body: one run in a fresh process, its output into its log."""
    Path(log).parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as stream, contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream):
        run(config.validate())


def load_model(config: TrainConfig, bits: int, channels: int) -> torch.nn.Module:
    """The trained model of a finished run, on its device, in eval mode."""
    # Until gg_augment.load_trained_model(run folder) lands (serving helper), rebuild it here.
    from gg_augment.io import load_checkpoint
    from gg_augment.training import build_model

    model = build_model(config, bits, channels).to(config.device)
    model.load_state_dict(load_checkpoint(RunLayout.of(config).checkpoint(bits), ("model",))["model"])
    return model.eval()


class Study:
    """A preset's runs under ``out``: builds their configurations, runs what is missing."""

    def __init__(self, name: str, preset: Preset, out: Path, jobs: int = 1, changes: dict[str, Any] | None = None) -> None:
        self.name, self.preset, self.out, self.jobs = name, preset, out, jobs
        #: Fields changed for every run (``--set``, ``--data-root``, the smoke sizes).
        self.changes = dict(changes or {})
        threads = max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else 0
        self.base = replace(
            preset.config(), **self.changes, out=out / "runs", resume=True, progress=False, threads=threads
        )

    def job(self, seed: int, code_lengths: tuple[int, ...], changes: dict[str, Any]) -> Job:
        config = replace(self.base, seed=seed, code_lengths=code_lengths, **changes)
        name = "-".join([*(f"{k}-{v}" for k, v in changes.items()), f"seed{seed}", "x".join(map(str, code_lengths))])
        return Job(name, config, self.out / "logs" / f"{name}.log")

    def method_jobs(self, method: str) -> dict[int, Job]:
        return {seed: self.job(seed, self.preset.code_lengths, {"augment": method}) for seed in self.preset.seeds}

    def ablation_jobs(self, ablation: Ablation) -> dict[int, Job]:
        # A method row is the main table's run itself (all its code lengths), so nothing repeats.
        if ablation.is_method and ablation.name in self.preset.methods:
            return self.method_jobs(ablation.name)
        return {seed: self.job(seed, (self.preset.ablation_bits,), ablation.changes) for seed in self.preset.seeds}

    def all_jobs(self) -> list[Job]:
        return [*(j for m in self.preset.methods for j in self.method_jobs(m).values()),
                *(j for a in self.preset.ablations for j in self.ablation_jobs(a).values())]

    def ensure(self, jobs: list[Job]) -> None:
        """Run every job whose results are missing, ``self.jobs`` at a time, each in its own process."""
        todo = [job for job in {job.name: job for job in jobs}.values() if not job.finished()]
        if not todo:
            return
        print(f"{len(todo)} run(s) to do, {self.jobs} at a time; logs under {self.out / 'logs'}", file=sys.stderr, flush=True)
        context = multiprocessing.get_context("spawn")
        # A fresh process per run (3.11+): no state leaks from one run into the next.
        fresh = {"max_tasks_per_child": 1} if sys.version_info >= (3, 11) else {}
        with concurrent.futures.ProcessPoolExecutor(self.jobs, mp_context=context, **fresh) as pool:
            futures = {pool.submit(_train, job.config, str(job.log)): job for job in todo}
            for done, future in enumerate(concurrent.futures.as_completed(futures), 1):
                job = futures[future]
                error = future.exception()
                if error is not None:
                    raise RuntimeError(f"run {job.name} failed (log: {job.log}): {error}") from error
                print(f"  [{done}/{len(todo)}] {job.name}", file=sys.stderr, flush=True)

    def dry_run(self) -> int:
        """Build and check every run's configuration of every table, without its data or a GPU
        (those fields are swapped for the CPU and the embedded data); returns how many."""
        jobs = self.all_jobs()
        for job in jobs:
            replace(job.config, device="cpu", data="embedded", data_root=None).validate().resolved()
        return len(jobs)
