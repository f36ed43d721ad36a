"""``RunLayout``: the one place that knows where a run's files live.

::

    <out>/<tag>/config.json                       the configuration, written at the start
    <out>/<tag>/.run.lock                         held while a run writes the folder
    <out>/<tag>/results.md, results.json          the run's table and summary
    <out>/<tag>/<bits|dim><K>/checkpoint.pt       per code length: last epoch's state
    <out>/<tag>/<bits|dim><K>/metrics.jsonl       one JSON line per epoch
    <out>/<tag>/<bits|dim><K>/final.json          written when the schedule is done

``<tag>`` names the data, architecture, method, retention ablation, G_cut score and seed for
people, and ends with :meth:`TrainConfig.fingerprint`, a hash of every field that can change
the numbers: two configurations never share a folder (a σ sweep gets one folder per σ), and
``--resume`` finds only the run of exactly this configuration.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .. import io
from .config import TrainConfig

__all__ = ["RunLayout", "run_tag"]


def _readable_tag(config: TrainConfig) -> str:
    suffix = "-noret" if config.no_retention else ""
    if config.augment.startswith("gcut") and config.gcut_score != "attention":
        suffix += f"-{config.gcut_score}"
    return f"{config.data}-{config.arch}-{config.augment}{suffix}-seed{config.seed}"


def run_tag(config: TrainConfig) -> str:
    return f"{_readable_tag(config)}-{config.fingerprint()}"


@dataclass(frozen=True)
class RunLayout:
    """Paths of one run (one configuration, every code length)."""

    directory: Path
    prefix: str

    @classmethod
    def of(cls, config: TrainConfig) -> RunLayout:
        return cls(config.output_root / run_tag(config), "bits" if config.hashing else "dim")

    def code_directory(self, code_length: int) -> Path:
        return self.directory / f"{self.prefix}{code_length}"

    def checkpoint(self, code_length: int) -> Path:
        return self.code_directory(code_length) / "checkpoint.pt"

    def metrics(self, code_length: int) -> Path:
        return self.code_directory(code_length) / "metrics.jsonl"

    def final(self, code_length: int) -> Path:
        return self.code_directory(code_length) / "final.json"

    @property
    def results_markdown(self) -> Path:
        return self.directory / "results.md"

    @property
    def results_json(self) -> Path:
        return self.directory / "results.json"

    @property
    def curves_png(self) -> Path:
        return self.directory / "curves.png"

    def remove_stale_temp_files(self, code_length: int) -> list[Path]:
        """Delete the temp files a killed write of this run left behind; return them.

        Only files whose writer is gone (:func:`gg_augment.io.remove_stale_temp_files`): a temp
        file another live process is about to rename is left alone.
        """
        return [path for folder in (self.directory, self.code_directory(code_length)) for path in io.remove_stale_temp_files(folder)]

    @property
    def config_json(self) -> Path:
        return self.directory / "config.json"

    def write_config(self, config: TrainConfig) -> None:
        """Record the run's configuration (what the folder's hash stands for) at its start."""
        io.write_atomic(self.config_json, json.dumps(config.result_config(), indent=2, sort_keys=True))

    def describe_others(self, config: TrainConfig) -> list[str]:
        """``"<folder> (key: theirs -> this run's, ...)"`` for each :meth:`other_configurations`."""
        described = []
        for folder in self.other_configurations():
            try:
                stored = io.read_json(folder / "config.json", "run configuration")
                differences = ", ".join(config.differences(stored)) or "no setting"
            except (OSError, ValueError):
                differences = "settings not recorded"
            described.append(f"{folder.name} ({differences})")
        return described

    def other_configurations(self) -> list[Path]:
        """Run folders beside this one with the same readable tag but another configuration."""
        stem = self.directory.name.rsplit("-", 1)[0]
        parent = self.directory.parent
        if not parent.is_dir():
            return []
        return sorted(p for p in parent.glob(f"{stem}-*") if p.is_dir() and p != self.directory and p.name.rsplit("-", 1)[0] == stem)
