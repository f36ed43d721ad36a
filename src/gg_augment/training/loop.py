"""The training loop of the example trainers: :func:`run` a :class:`TrainConfig`.

What a run does, per code length:

1. loads a retrieval split (embedded Fashion-MNIST by default; CIFAR-10 or an image list);
2. trains a backbone + code head with :class:`~gg_augment.RetentionWeightedPairwiseLoss`,
   each batch augmented on the device by a :class:`~gg_augment.RetentionPipeline`, whose
   per-sample weights soften the similarity targets;
3. hashing: DSDH, i.e. the pairwise likelihood against the bank U of all training outputs,
   the quantisation term against the codes B, and the solver's W- and B-steps every epoch;
   real-valued: in-batch cosine pairs;
4. writes an atomic checkpoint every epoch (model, optimizer, scheduler, solver, attention
   cache, RNG states, split), per-epoch JSON lines, and a final markdown table, where
   :class:`RunLayout` says.

``resume=True`` continues from the last checkpoint and ends with the same numbers as an
uninterrupted run: the data order and every augmentation draw come from generators whose
states are in the checkpoint.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from collections.abc import Iterator
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from ..hashing import DSDHSolver, sign_codes
from ..io import load_checkpoint, save_checkpoint, write_atomic
from ..losses import RetentionWeightedPairwiseLoss
from ..metrics import mean_average_precision, recall_at_k
from .components import (
    Distributed,
    EpochBatchSampler,
    all_gather_cat,
    build_model,
    build_pipeline,
    encode,
    encode_dataset,
    load_data,
    make_loader,
    one_hot_labels,
    setup_distributed,
)
from .config import ConfigError, TrainConfig
from .layout import RunLayout

try:  # tqdm is in the "examples" extra; without it the run still works, just quieter
    from tqdm import tqdm
except ImportError:  # pragma: no cover
    tqdm = None

__all__ = ["CHECKPOINT_KEYS", "evaluate", "run", "train_one"]

#: The augmentation generator's seed is the run's seed plus this, apart from the order's.
AUGMENT_SEED_OFFSET = 1_000_003

CHECKPOINT_KEYS = ("epoch", "model", "optimizer", "scheduler", "rng", "history", "config", "split")


def evaluate(model: nn.Module, data: dict[str, Any], config: TrainConfig, device: torch.device) -> dict[str, float]:
    """mAP (and Recall@1/2/4/8 for real-valued runs) of the query set against the database."""
    if data["stream"]:
        query = encode_dataset(model, make_loader(data["query_dataset"], config), device)
        database = encode_dataset(model, make_loader(data["database_dataset"], config), device)
    else:
        query = encode(model, data["query_images"], device)
        database = encode(model, data["database_images"], device)
    query_labels, database_labels = data["query_labels"].to(device), data["database_labels"].to(device)
    metric = "hamming" if config.hashing else "cosine"
    if config.hashing:
        query, database = sign_codes(query), sign_codes(database)
    metrics: dict[str, float] = {
        "map": float(mean_average_precision(query, database, query_labels, database_labels, k=config.topk, metric=metric))
    }
    if not config.hashing:
        for k, value in recall_at_k(query, database, query_labels, database_labels, k=(1, 2, 4, 8), metric="cosine").items():
            metrics[f"recall@{k}"] = float(value)
    if config.eval_train:
        # Training images (un-augmented) as queries against the same database: the gap to
        # "map" is what the model memorised rather than learnt.
        count = min(config.eval_train, data["train_labels"].shape[0])
        if data["stream"]:
            subset = torch.utils.data.Subset(data["train_dataset"], range(count))
            train_queries = encode_dataset(model, make_loader(subset, config), device)
        else:
            train_queries = encode(model, data["train_images"][:count], device)
        if config.hashing:
            train_queries = sign_codes(train_queries)
        train_labels = data["train_labels"][:count].to(device)
        metrics["train_map"] = float(
            mean_average_precision(train_queries, database, train_labels, database_labels, k=config.topk, metric=metric)
        )
    return metrics


def _rng_state(order: torch.Generator, augment: torch.Generator) -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "order": order.get_state(), "augment": augment.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _load_rng_state(order: torch.Generator, augment: torch.Generator, state: dict[str, Any], path: Any) -> None:
    if "order" not in state or "augment" not in state:
        raise ValueError(f"{path} predates separate order and augmentation generators, so it cannot resume exactly; drop --resume to start over")
    torch.set_rng_state(state["torch"])
    order.set_state(state["order"])
    augment.set_state(state["augment"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _in_memory(
    images: torch.Tensor, num_train: int, batch_size: int, generator: torch.Generator, ctx: Distributed,
    device: torch.device,
) -> tuple[Iterator[tuple[torch.Tensor, torch.Tensor]], int]:
    """The in-memory fast path: the order drawn from the run's generator, each batch sliced
    from the tensor when its step comes. Equal shards, so every rank runs the same number of
    steps (DDP needs it). Returns the batches and their count."""
    order = torch.randperm(num_train, device=device, generator=generator).cpu()
    usable = num_train - num_train % ctx.world_size
    shard = order[:usable][ctx.rank :: ctx.world_size]
    batches = [shard[i : i + batch_size] for i in range(0, len(shard), batch_size)]
    batches = [index for index in batches if index.numel() >= 2]
    return ((images[index], index) for index in batches), len(batches)


def _streamed(loader: Any) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    for images, _labels, index in loader:
        yield images, torch.as_tensor(index)


def _refuse_changed_config(config: TrainConfig, stored: dict[str, Any], path: Any) -> None:
    differences = config.differences(stored)
    if differences:
        raise ValueError(
            f"{path} was written by another configuration, so it cannot be resumed or reused: "
            + "; ".join(differences)
            + ". Use another --out, or drop --resume to start over."
        )


def train_one(config: TrainConfig, code_length: int, data: dict[str, Any], ctx: Distributed) -> dict[str, Any]:
    """Train one code length; return its final record (or ``stopped_after``)."""
    hashing = config.hashing
    device = torch.device(config.device)
    layout = RunLayout.of(config)
    checkpoint_path = layout.checkpoint(code_length)
    final_path = layout.final(code_length)
    layout.remove_stale_temp_files(code_length)
    if config.resume and final_path.is_file():
        result: dict[str, Any] = json.loads(final_path.read_text())
        _refuse_changed_config(config, result.get("config", {}), final_path)
        if ctx.is_main:
            print(f"[{code_length}] already finished: {final_path}")
        return result
    if config.resume and not checkpoint_path.is_file() and ctx.is_main:
        others = ", ".join(p.name for p in layout.other_configurations()) or "none"
        print(
            f"[{code_length}] --resume: no checkpoint of this configuration at {checkpoint_path}; starting "
            f"from scratch (same tag, other configurations: {others})",
            file=sys.stderr,
        )

    # One seed fixes the initialisation, the data order and the augmentation draws, each from
    # its own generator: runs of different methods with the same seed then see the same
    # initial weights and the same batches (a method's draws never shift the order), so their
    # paired differences cancel most of the seed noise.
    torch.manual_seed(config.seed)
    order_generator = torch.Generator(device=device).manual_seed(config.seed)
    augment_generator = torch.Generator(device=device).manual_seed(AUGMENT_SEED_OFFSET + config.seed)
    labels, num_classes = data["train_labels"], data["num_classes"]
    num_train = labels.shape[0]
    channels = data["train_dataset"][0][0].shape[0] if data["stream"] else data["train_images"].shape[1]
    try:
        model = build_model(config, code_length, channels).to(device)
    except (ValueError, ImportError) as error:
        raise ConfigError("arch", f"{config.arch}: {error}") from error
    pipeline, cache = build_pipeline(config, model, num_train, augment_generator)
    train_model: nn.Module = model
    if ctx.enabled:
        train_model = nn.parallel.DistributedDataParallel(model)
    settings = config.settings()
    optimizer: torch.optim.Optimizer
    if settings.optimizer == "rmsprop":
        optimizer = torch.optim.RMSprop(model.parameters(), lr=settings.lr, weight_decay=1e-5)
    else:
        optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr, weight_decay=1e-5)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs, eta_min=settings.lr_min)
    solver = None
    # "bank+batch": the batch's rows of U carry the live outputs (in-batch pairs pull on both
    # sides) and the in-batch term is added: from scratch the bank term alone learns slowly
    # (its far side is up to an epoch stale; on the embedded data, 8 epochs without
    # augmentation gave mAP 0.41 with the bank alone and 0.71 with both terms). "bank": the
    # authors', the batch's columns of U written (detached) before the loss, bank term only.
    live_rows = settings.loss_terms == "bank+batch"
    if hashing:
        loss_fn = RetentionWeightedPairwiseLoss(
            "hash", quantization_weight=1e-2, add_in_batch=live_rows, triplet_weight=settings.triplet_weight,
            triplet_margin=config.triplet_margin, weight_triplets=config.weight_triplets,
        )
        solver = DSDHSolver(
            num_train, code_length, num_classes, dcc_iterations=settings.dcc_iterations,
            generator=torch.Generator().manual_seed(config.seed), device=device,
        )
        solver.set_labels(labels)
        train_targets = one_hot_labels(labels, num_classes)
    else:
        loss_fn = RetentionWeightedPairwiseLoss(
            "cosine", scale=10.0, triplet_weight=settings.triplet_weight, triplet_margin=config.triplet_margin,
            weight_triplets=config.weight_triplets,
        )

    history: list[dict[str, Any]] = []
    start_epoch = 0
    if config.resume and checkpoint_path.is_file():
        state = load_checkpoint(checkpoint_path, CHECKPOINT_KEYS)
        _refuse_changed_config(config, state["config"], checkpoint_path)
        if state["config"].get("code_length") != code_length:
            raise ValueError(f"checkpoint {checkpoint_path} is for code length {state['config'].get('code_length')}, not {code_length}")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if solver is not None:
            solver.load_state_dict(state["solver"])
        if cache is not None and state.get("cache") is not None:
            cache.load_state_dict(state["cache"])
        _load_rng_state(order_generator, augment_generator, state["rng"], checkpoint_path)
        history = state["history"]
        start_epoch = state["epoch"]
        if ctx.is_main:
            # A kill between the checkpoint and the metrics write loses that epoch's line;
            # the checkpoint's history has it, so the file is rewritten from it.
            write_atomic(layout.metrics(code_length), "".join(json.dumps(h) + "\n" for h in history))
            print(f"[{code_length}] resumed from {checkpoint_path} after epoch {start_epoch}")
    elif ctx.is_main:
        untrained = evaluate(model, data, config, device)
        history.append({"epoch": 0, **{f"untrained_{k}": v for k, v in untrained.items()}})
        print(f"[{code_length}] untrained network: mAP {untrained['map']:.4f}")

    # Efficiency figures for the final record: training forward calls per step (the exact
    # G_cut's extra attention pass shows as 2) and peak memory.
    forward_calls = torch.zeros((), dtype=torch.long)
    steps_run = 0

    def count_forward(_module: nn.Module, _inputs: Any) -> None:
        forward_calls.add_(1)

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    stop_at = min(config.epochs, config.stop_after) if config.stop_after else config.epochs
    if num_train // ctx.world_size < 2:
        raise ConfigError(
            "limit_train", f"leaves {num_train} training sample(s) for {ctx.world_size} rank(s): each rank needs at least 2"
        )
    sampler, loader = None, None
    if data["stream"]:
        sampler = EpochBatchSampler(num_train, config.batch_size, config.seed, ctx.rank, ctx.world_size)
        loader = make_loader(data["train_dataset"], config, batch_sampler=sampler)
    for epoch in range(start_epoch, stop_at):
        started = time.perf_counter()
        train_model.train()
        if sampler is not None and loader is not None:
            sampler.set_epoch(epoch)
            batches: Any = _streamed(loader)
            num_batches = len(sampler)
        else:
            batches, num_batches = _in_memory(data["train_images"], num_train, config.batch_size, order_generator, ctx, device)
        progress: Any = batches
        if tqdm is not None and ctx.is_main and config.progress:
            progress = tqdm(batches, total=num_batches, desc=f"[{code_length}] epoch {epoch + 1}/{config.epochs}", leave=False, file=sys.stderr)
        total_loss, total_weight = torch.zeros(()), torch.zeros(())
        epoch_lr = optimizer.param_groups[0]["lr"]
        for x, index in progress:
            x = x.to(device, non_blocking=True)
            index_device = index.to(device)
            with model.register_forward_pre_hook(count_forward):
                batch = pipeline.augment(x, index)
                with pipeline.recording(batch):
                    outputs = train_model(batch.images)
            weight = batch.weight
            steps_run += 1
            if solver is not None:
                # Every rank keeps the full bank U: gather what all ranks just computed.
                solver.update_outputs(all_gather_cat(index_device, ctx), all_gather_cat(outputs.detach(), ctx))
                bank, bank_labels = solver.bank()
                if live_rows:
                    bank = bank.index_put((index_device,), outputs)
                targets = train_targets[index].to(device)
                loss = loss_fn(
                    outputs, targets, weight,
                    bank=bank, bank_labels=bank_labels, binary_targets=solver.targets(index_device),
                )
            else:
                loss = loss_fn(outputs, labels[index].to(device), weight)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total_loss += loss.detach().cpu()
            total_weight += weight.detach().float().mean().cpu()
        scheduler.step()
        if solver is not None:
            solver.step()
        if cache is not None and ctx.enabled:
            cache.sync()
        record: dict[str, Any] = {
            "epoch": epoch + 1,
            "loss": float(total_loss) / max(1, num_batches),
            "mean_weight": float(total_weight) / max(1, num_batches),
            "epoch_seconds": time.perf_counter() - started,
            "lr": epoch_lr,
        }
        last = epoch + 1 == config.epochs
        if ctx.is_main and (last or (settings.eval_every and (epoch + 1) % settings.eval_every == 0)):
            record.update(evaluate(model, data, config, device))
        history.append(record)
        if ctx.is_main:
            shown = {k: (float(f"{v:.4g}") if isinstance(v, float) else v) for k, v in record.items()}
            print(json.dumps({"code_length": code_length, **shown}), flush=True)
            state = {
                "epoch": epoch + 1,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "solver": solver.state_dict() if solver is not None else None,
                "cache": cache.state_dict() if cache is not None else None,
                "rng": _rng_state(order_generator, augment_generator),
                "history": history,
                "config": {**config.to_dict(), "code_length": code_length},
                "split": data["split_info"],
            }
            save_checkpoint(state, checkpoint_path)
            write_atomic(layout.metrics(code_length), "".join(json.dumps(h) + "\n" for h in history))

    if stop_at < config.epochs:
        if ctx.is_main:
            print(f"[{code_length}] stopped after epoch {stop_at} of {config.epochs}; continue with --resume")
        return {"code_length": code_length, "stopped_after": stop_at}

    evaluated = [h for h in history if "map" in h]
    best = max(evaluated, key=lambda h: h["map"]) if evaluated else {}
    final = {
        "code_length": code_length,
        "config": config.result_config(),
        "map": history[-1].get("map"),
        # Selected on the query set, as the authors report it: optimistic, not a held-out score.
        "best_map": best.get("map"),
        "best_epoch": best.get("epoch"),
        "untrained_map": next((h.get("untrained_map") for h in history if "untrained_map" in h), None),
        "epochs": config.epochs,
        "train_seconds": sum(h.get("epoch_seconds", 0.0) for h in history),
        "epoch_seconds": [h["epoch_seconds"] for h in history if "epoch_seconds" in h],
        # Counted over the steps this process ran (after a resume: since the resume).
        "forward_calls_per_step": float(forward_calls) / steps_run if steps_run else None,
        **_peak_memory(device),
        **{k: v for k, v in history[-1].items() if k.startswith("recall@")},
    }
    if ctx.is_main:
        write_atomic(final_path, json.dumps(final, indent=2))
    return final


def _peak_memory(device: torch.device) -> dict[str, Any]:
    """The run's peak memory: CUDA's allocated bytes on a GPU, else the process's peak RSS
    (a whole-process figure: one run per process, as the study runs them, makes it the run's)."""
    if device.type == "cuda":
        return {"peak_memory_mib": torch.cuda.max_memory_allocated(device) / 2**20, "peak_memory_kind": "cuda max allocated"}
    try:
        import resource
    except ImportError:  # pragma: no cover - not on Windows
        return {}
    return {"peak_memory_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "peak_memory_kind": "process max RSS"}


def run(config: TrainConfig) -> list[dict[str, Any]]:
    """Train every code length of ``config``; write the results table; return the finals.

    Raises:
        ConfigError: a configuration value is out of range (checked before any data loads).
    """
    config = config.validate().resolved()
    if config.threads:
        torch.set_num_threads(config.threads)
    device = torch.device(config.device)
    ctx = setup_distributed(device)
    data = load_data(config)
    results = [train_one(config, code_length, data, ctx) for code_length in config.code_lengths]
    if ctx.is_main and all("map" in r for r in results):
        report(config, results, data["split_info"])
    if ctx.enabled:
        dist.destroy_process_group()
    return results


def report(config: TrainConfig, results: list[dict[str, Any]], split_info: dict[str, Any]) -> None:
    """Print the mAP table and write it, with the run's summary, as :class:`RunLayout` says."""
    topk = f"mAP@{config.topk}" if config.topk else "mAP@all"
    method = config.augment + (" (no retention)" if config.no_retention else "")
    lines = [
        f"## {'DSDH hashing' if config.hashing else 'Real-valued retrieval'}: {method} on {config.data}",
        "",
        f"recipe={config.recipe}, arch={config.arch}, epochs={config.epochs}, batch={config.batch_size}, "
        f"lr={config.settings().lr}, seed={config.seed}, "
        f"device={config.device}, split seed={split_info.get('seed')}, sizes={split_info.get('used')}, "
        f"torch {torch.__version__}, {platform.machine()}",
        "",
    ]
    if config.hashing:
        lines += [
            f"| bits | {topk} (final epoch) | best-epoch {topk} (selected on the query set) | untrained {topk} | train time (s) |",
            "| --- | --- | --- | --- | --- |",
        ]
        lines += [
            f"| {r['code_length']} | {r['map']:.4f} | {r['best_map']:.4f} (epoch {r['best_epoch']}) | "
            f"{r['untrained_map'] or float('nan'):.4f} | {r['train_seconds']:.0f} |"
            for r in results
        ]
    else:
        lines += [f"| dim | {topk} | R@1 | R@2 | R@4 | R@8 | untrained {topk} |", "| --- | --- | --- | --- | --- | --- | --- |"]
        lines += [
            f"| {r['code_length']} | {r['map']:.4f} | {r['recall@1']:.4f} | {r['recall@2']:.4f} | {r['recall@4']:.4f} | {r['recall@8']:.4f} | {r['untrained_map'] or float('nan'):.4f} |"
            for r in results
        ]
    table = "\n".join(lines) + "\n"
    layout = RunLayout.of(config)
    write_atomic(layout.results_markdown, table)
    write_atomic(layout.results_json, json.dumps({"config": config.to_dict(), "split": split_info, "results": results}, indent=2))
    print()
    print(table)
    print(f"results: {layout.results_markdown}")
