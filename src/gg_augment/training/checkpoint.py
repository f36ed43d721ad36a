"""Save and restore everything a run needs to continue exactly: model, optimizer, scheduler,
DSDH solver, attention cache and RNG states, with the history and the configuration.

The checkpoint's keys (:data:`CHECKPOINT_KEYS`, plus ``solver``, ``cache`` and ``split``) are
those of every earlier version of the trainer, so old runs still ``--resume``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import io
from ..attention import AttentionCache
from .config import TrainConfig

__all__ = ["CHECKPOINT_KEYS", "RunState", "refuse_changed_config"]

CHECKPOINT_KEYS = ("epoch", "model", "optimizer", "scheduler", "rng", "history", "config", "split")


def refuse_changed_config(config: TrainConfig, stored: dict[str, Any], path: Path) -> None:
    """Raise if ``stored`` (a checkpoint's or final record's config) computes other numbers."""
    differences = config.differences(stored)
    if differences:
        raise ValueError(
            f"{path} was written by another configuration, so it cannot be resumed or reused: "
            + "; ".join(differences)
            + ". Use another --out, or drop --resume to start over."
        )


@dataclass
class RunState:
    """The stateful parts of one code length's run, as a checkpoint holds them."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    objective: Any  # state_dict() / load_state_dict(): the solver's state, or None
    cache: AttentionCache | None
    order: torch.Generator
    augment: torch.Generator

    def save(self, path: Path, *, epoch: int, history: list[dict[str, Any]], config: dict[str, Any], split: dict[str, Any]) -> None:
        """Write the checkpoint atomically (a kill mid-write leaves the previous one)."""
        state = {
            "epoch": epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "solver": self.objective.state_dict(),
            "cache": self.cache.state_dict() if self.cache is not None else None,
            "rng": self._rng_state(),
            "history": history,
            "config": config,
            "split": split,
        }
        io.save_checkpoint(state, path)

    def restore(self, path: Path, config: TrainConfig, code_length: int) -> tuple[int, list[dict[str, Any]]]:
        """Load ``path`` into the parts; return the epochs done and the history so far."""
        state = io.load_checkpoint(path, CHECKPOINT_KEYS)
        refuse_changed_config(config, state["config"], path)
        if state["config"].get("code_length") != code_length:
            raise ValueError(f"checkpoint {path} is for code length {state['config'].get('code_length')}, not {code_length}")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.objective.load_state_dict(state.get("solver"))
        if self.cache is not None and state.get("cache") is not None:
            self.cache.load_state_dict(state["cache"])
        self._load_rng_state(state["rng"], path)
        return state["epoch"], state["history"]

    def _rng_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"torch": torch.get_rng_state(), "order": self.order.get_state(), "augment": self.augment.get_state()}
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def _load_rng_state(self, state: dict[str, Any], path: Path) -> None:
        if "order" not in state or "augment" not in state:
            raise ValueError(f"{path} predates separate order and augmentation generators, so it cannot resume exactly; drop --resume to start over")
        torch.set_rng_state(state["torch"])
        self.order.set_state(state["order"])
        self.augment.set_state(state["augment"])
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])
