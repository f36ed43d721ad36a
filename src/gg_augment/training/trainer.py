"""The training loop of the example trainers: :func:`run` a :class:`TrainConfig`.

What a run does, per code length (a :class:`Trainer` each):

1. loads a retrieval split (:mod:`.data`: embedded Fashion-MNIST by default; CIFAR-10 or an
   image list; in memory or streamed);
2. trains a backbone + code head (:mod:`.build`), each batch augmented on the device by a
   :class:`~gg_augment.RetentionPipeline` whose per-sample weights soften the similarity
   targets of the objective (:mod:`.objective`: DSDH for hashing, cosine pairs otherwise);
3. evaluates (:mod:`.evaluation`) and writes an atomic checkpoint every epoch
   (:mod:`.checkpoint`), per-epoch JSON lines and, at the end, the final record and the
   results table (:mod:`.report`), where :class:`RunLayout` says.

``resume=True`` continues from the last checkpoint and ends with the same numbers as an
uninterrupted run: the data order and every augmentation draw come from generators whose
states are in the checkpoint.
"""

from __future__ import annotations

import json
import math
import sys
import time
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from .. import io
from .._checks import check_finite
from .build import build_model, build_optimizer, build_pipeline
from .checkpoint import RunState, refuse_changed_config
from .config import ConfigError, TrainConfig
from .data import RunData, load_data
from .distributed import Distributed, setup_distributed
from .evaluation import evaluate
from .layout import RunLayout
from .objective import HashingObjective, build_objective
from .preflight import check_after_data, check_before_data, diverged
from .report import epoch_line, final_record, write_history, write_results

try:  # tqdm is in the "examples" extra; without it the run still works, just quieter
    from tqdm import tqdm
except ImportError:  # pragma: no cover
    tqdm = None

__all__ = ["AUGMENT_SEED_OFFSET", "Trainer", "run", "train_one"]

#: The augmentation generator's seed is the run's seed plus this, apart from the order's.
AUGMENT_SEED_OFFSET = 1_000_003


class Trainer:
    """One code length of a run: :meth:`fit` = (restore or evaluate untrained), then
    :meth:`train_epoch` until the schedule ends, checkpointing each epoch; an epoch is
    :meth:`train_step` over the rank's batches."""

    def __init__(self, config: TrainConfig, code_length: int, data: RunData, ctx: Distributed) -> None:
        self.config, self.code_length, self.data, self.ctx = config, code_length, data, ctx
        self.device = device = torch.device(config.device)
        self.layout = RunLayout.of(config)
        num_train = len(data.train)
        if num_train // ctx.world_size < 2:
            raise ConfigError(
                "limit_train", f"leaves {num_train} training sample(s) for {ctx.world_size} rank(s): each rank needs at least 2"
            )
        # One seed fixes the initialisation, the data order and the augmentation draws, each
        # from its own generator: runs of different methods with the same seed then see the
        # same initial weights and the same batches (a method's draws never shift the order),
        # so their paired differences cancel most of the seed noise.
        torch.manual_seed(config.seed)
        order = torch.Generator(device=device).manual_seed(config.seed)
        augment = torch.Generator(device=device).manual_seed(AUGMENT_SEED_OFFSET + config.seed)
        try:
            self.model = build_model(config, code_length, data.train.channels).to(device)
        except (ValueError, ImportError) as error:
            raise ConfigError("arch", f"{config.arch}: {error}") from error
        if config.channels_last:
            # nn.Module.to takes memory_format at run time; its typed overloads omit it.
            for parameter in self.model.parameters():
                if parameter.dim() == 4:
                    parameter.data = parameter.data.contiguous(memory_format=torch.channels_last)
        self.pipeline, self.cache = build_pipeline(
            config, self.model, num_train, augment, data.split_info.get("mean"), data.split_info.get("std")
        )
        self.train_model: nn.Module = nn.parallel.DistributedDataParallel(self.model) if ctx.enabled else self.model
        self.optimizer, self.scheduler = build_optimizer(config, self.model)
        self.objective = build_objective(config, code_length, data.train.labels, data.num_classes, device, ctx)
        self.state = RunState(self.model, self.optimizer, self.scheduler, self.objective, self.cache, order, augment)
        self.sampler = data.train.batch_sampler(config.batch_size, config.seed, ctx.rank, ctx.world_size, order)
        self.forward_calls = self.steps_run = 0
        if config.validation == "never":
            self._set_validation(False)

    def fit(self) -> dict[str, Any]:
        """Train to the end of the schedule (or ``stop_after``); return the final record."""
        config, code_length = self.config, self.code_length
        start_epoch, history = self._begin()
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        stop_at = min(config.epochs, config.stop_after) if config.stop_after else config.epochs
        eval_every = config.settings().eval_every
        for epoch in range(start_epoch, stop_at):
            record = self.train_epoch(epoch)
            if self.ctx.is_main and (epoch + 1 == config.epochs or (eval_every and (epoch + 1) % eval_every == 0)):
                record.update(evaluate(self.model, self.data, config, self.device))
            history.append(record)
            if self.ctx.is_main:
                print(epoch_line(code_length, record), flush=True)
                self.state.save(
                    self.layout.checkpoint(code_length), epoch=epoch + 1, history=history,
                    config={**config.to_dict(), "code_length": code_length}, split=self.data.split_info,
                )
                write_history(self.layout, code_length, history)
        if stop_at < config.epochs:
            if self.ctx.is_main:
                print(f"[{code_length}] stopped after epoch {stop_at} of {config.epochs}; continue with --resume")
            return {"code_length": code_length, "stopped_after": stop_at}
        calls = self.forward_calls / self.steps_run if self.steps_run else None
        final = final_record(config, code_length, history, calls, self.device)
        if self.ctx.is_main:
            io.write_atomic(self.layout.final(code_length), json.dumps(final, indent=2))
        return final

    def _begin(self) -> tuple[int, list[dict[str, Any]]]:
        """Restore the last checkpoint (resume), else evaluate the untrained network."""
        checkpoint = self.layout.checkpoint(self.code_length)
        if self.config.resume and checkpoint.is_file():
            start_epoch, history = self.state.restore(checkpoint, self.config, self.code_length)
            if self.ctx.is_main:
                # A kill between the checkpoint and the metrics write loses that epoch's line;
                # the checkpoint's history has it, so the file is rewritten from it.
                write_history(self.layout, self.code_length, history)
                print(f"[{self.code_length}] resumed from {checkpoint} after epoch {start_epoch}")
            return start_epoch, history
        if not self.ctx.is_main:
            return 0, []
        status(self.ctx, self.config, f"[{self.code_length}] evaluating the untrained network ...")
        untrained = evaluate(self.model, self.data, self.config, self.device)
        print(f"[{self.code_length}] untrained network: mAP {untrained['map']:.4f}")
        return 0, [{"epoch": 0, **{f"untrained_{k}": v for k, v in untrained.items()}}]

    def train_epoch(self, epoch: int) -> dict[str, Any]:
        """One pass over this rank's batches, then the epoch's schedule, solver and cache
        steps. The running sums stay on the device and are read once, here at the end."""
        started = time.perf_counter()
        self.train_model.train()
        self.sampler.set_epoch(epoch)
        batches: Any = self.data.train.train_batches(self.sampler)
        num_batches = len(self.sampler)
        if tqdm is not None and self.ctx.is_main and self.config.progress:
            desc = f"[{self.code_length}] epoch {epoch + 1}/{self.config.epochs}"
            batches = tqdm(batches, total=num_batches, desc=desc, leave=True, file=sys.stderr)
        total_loss = torch.zeros((), device=self.device)
        total_weight = torch.zeros((), device=self.device)
        lr = self.optimizer.param_groups[0]["lr"]
        for images, index in batches:
            try:
                loss, weight = self.train_step(images, index)
            except ValueError as error:  # the loss's own check, while validation is on
                if str(error).startswith("outputs must be finite"):
                    raise diverged(self.config, epoch + 1, f"the network's outputs: {error}") from None
                raise
            total_loss += loss.detach()
            total_weight += weight.detach().float().mean()
        mean_loss = float(total_loss) / max(1, num_batches)
        if not math.isfinite(mean_loss):  # checked before the solver and cache take the epoch in
            raise diverged(self.config, epoch + 1, f"mean loss {mean_loss}")
        self.scheduler.step()
        self.objective.end_epoch()
        if self.cache is not None and self.ctx.enabled:
            self.cache.sync()
        return {
            "epoch": epoch + 1,
            "loss": mean_loss,
            "mean_weight": float(total_weight) / max(1, num_batches),
            "epoch_seconds": time.perf_counter() - started,
            "lr": lr,
        }

    def train_step(self, images: Tensor, index: Tensor) -> tuple[Tensor, Tensor]:
        """Augment, forward, loss, update; return the loss and the batch's weights."""
        images = images.to(self.device, non_blocking=True)
        if self.config.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        # Efficiency figure for the final record: training forward calls per step (the exact
        # G_cut's extra attention pass shows as 2).
        with self.model.register_forward_pre_hook(self._count_forward):
            outputs, weight = self._augmented_forward(images, index)
        index = index.to(self.device)
        weight = self._loss_weight(outputs, weight, index)
        loss = self.objective(outputs, weight, index)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.steps_run += 1
        if self.steps_run == 1 and self.config.validation == "first-step":
            self._set_validation(False)
        return loss, weight

    def _augmented_forward(self, images: Tensor, index: Tensor) -> tuple[Tensor, Tensor]:
        """The one place the augmentation hands its batch to the training forward: the model's
        outputs on the augmented images, and their loss weights. ``index``: the loader's CPU
        tensor (a cached G_cut decides its warm-up from it without reading the device); the
        recording writes the attention cache from this forward (a no-op without a cache)."""
        batch = self.pipeline.augment(images, index)
        # --amp bf16: the forward under autocast; the outputs go to the loss (and the DSDH
        # bank) in float32, so the objective's sums and the solver never see bf16.
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.config.amp == "bf16"):
            with self.pipeline.recording(batch):
                outputs = self.train_model(batch.images)
        return outputs.float(), batch.weight

    def _loss_weight(self, outputs: Tensor, weight: Tensor, index: Tensor) -> Tensor:
        """The weights the loss takes (``retention_source``): the augmentation's, or the
        model-measured retention through the run's curve instead of them (``model``) or times
        them (``product``). A row whose DSDH code has not yet seen its output keeps the
        augmentation's weight (:meth:`HashingObjective.measured_retention`): the whole first
        epoch does."""
        source = self.config.retention_source
        if source == "augmentation" or not isinstance(self.objective, HashingObjective):
            return weight
        if self.objective.loss_fn.validate_args:
            # The loss's own check, first: NaN outputs then report as divergence, not as the
            # curve's "retention must be finite".
            check_finite(outputs, "outputs")
        retention, coded = self.objective.measured_retention(outputs, index)
        measured = self.pipeline.curve(retention)
        if source == "product":
            measured = weight * measured
        return torch.where(coded, measured, weight)

    def _count_forward(self, _module: nn.Module, _inputs: Any) -> None:
        self.forward_calls += 1

    def _set_validation(self, on: bool) -> None:
        """Turn the value checks (host syncs) of the pipeline, objective and cache on or off."""
        parts: list[Any] = [*self.pipeline.modules(), *self.objective.validated_parts(), self.cache]
        for part in parts:
            if hasattr(part, "validate_args"):
                part.validate_args = on


def status(ctx: Distributed, config: TrainConfig, message: str) -> None:
    """A progress line on stderr (main rank, unless --no-progress) for steps without a bar."""
    if ctx.is_main and config.progress:
        print(message, file=sys.stderr, flush=True)


def train_one(config: TrainConfig, code_length: int, data: RunData, ctx: Distributed) -> dict[str, Any]:
    """Train one code length; return its final record (or ``stopped_after``). A finished
    run with ``resume`` returns its stored record."""
    layout = RunLayout.of(config)
    if ctx.is_main:
        layout.remove_stale_temp_files(code_length)
    final_path, checkpoint_path = layout.final(code_length), layout.checkpoint(code_length)
    if config.resume and final_path.is_file():
        result: dict[str, Any] = io.read_json(final_path, "final record")
        refuse_changed_config(config, result.get("config", {}), final_path)
        if ctx.is_main:
            print(f"[{code_length}] already finished: {final_path}")
        return result
    if config.resume and not checkpoint_path.is_file() and ctx.is_main:
        others = "; ".join(layout.describe_others(config)) or "none"
        print(
            f"[{code_length}] --resume: no checkpoint of this configuration at {checkpoint_path}; starting "
            f"from scratch (same tag, other configurations: {others})",
            file=sys.stderr,
        )
    return Trainer(config, code_length, data, ctx).fit()


def run(config: TrainConfig) -> list[dict[str, Any]]:
    """Train every code length of ``config``; write the results table; return the finals.

    Raises:
        ConfigError: a configuration value is out of range, or does not fit the model
            (checked before any data loads), or the data (checked right after it loads);
            another process writes the run folder; or training diverged.
    """
    config = config.validate().resolved()
    check_before_data(config)
    if config.threads:
        torch.set_num_threads(config.threads)
    ctx = setup_distributed(torch.device(config.device))
    layout = RunLayout.of(config)
    # One writer per run folder: the main rank holds its lock for the whole run.
    lock = io.RunLock(layout.directory)
    if ctx.is_main:
        try:
            lock.acquire()
        except io.RunFolderBusyError as error:
            raise ConfigError("out", str(error)) from None
    try:
        if ctx.is_main:
            layout.write_config(config)
        status(ctx, config, f"loading the {config.data} data ...")
        data = load_data(config)
        check_after_data(config, data)
        status(ctx, config, f"loaded {len(data.train)} training, {len(data.query)} query and "
               f"{len(data.database)} database images")
        results = [train_one(config, code_length, data, ctx) for code_length in config.code_lengths]
        if ctx.is_main and all("map" in r for r in results):
            write_results(config, results, data.split_info)
    finally:
        lock.release()
    if ctx.enabled:
        dist.destroy_process_group()
    return results
