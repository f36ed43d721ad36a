"""The trainer's mixed-precision, memory-format, retention-rule and attention flags reach the
step and the modules, and a bf16 run on the CPU still trains."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from gg_augment.training import build_model, build_pipeline
from gg_augment.training.cli import main, parse_config
from gg_augment.training.objective import HashingObjective

TINY = ["--limit-train", "128", "--limit-query", "40", "--limit-database", "160", "--batch-size", "32",
        "--no-progress", "--threads", "1", "--code-lengths", "8"]


def _losses(out: Path) -> list[float]:
    [metrics] = out.glob("*/bits8/metrics.jsonl")
    return [json.loads(line)["loss"] for line in metrics.read_text().splitlines() if "loss" in json.loads(line)]


@pytest.mark.parametrize("augment", ["gt", "gcut-approx"])
def test_a_bf16_channels_last_run_trains_on_the_cpu(tmp_path, augment):
    finals = main("hashing", "test", ["--out", str(tmp_path), *TINY, "--augment", augment, "--epochs", "4",
                                      "--amp", "bf16", "--channels-last", "--eval-every", "0"])
    losses = _losses(tmp_path)
    assert len(losses) == 4 and all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < losses[0], losses          # the loss falls under autocast
    assert 0.0 < finals[0]["map"] <= 1.0


def test_bf16_changes_the_numbers_and_the_configuration(tmp_path):
    off = parse_config("hashing", [*TINY, "--augment", "gt"])
    on = parse_config("hashing", [*TINY, "--augment", "gt", "--amp", "bf16"])
    assert off.fingerprint() != on.fingerprint()   # a resume cannot mix the two
    assert off.amp == "off" and not off.channels_last


@pytest.mark.parametrize("rule", ["authors", "uncertain", "weighted"])
def test_the_retention_rule_flag_reaches_the_loss(rule):
    config = parse_config("hashing", ["--retention-rule", rule]).resolved()
    labels = torch.arange(16) % 4
    objective = HashingObjective(config, 8, labels, 4, torch.device("cpu"), _single_process())
    assert objective.loss_fn.rule == rule


@pytest.mark.parametrize("augment", ["gcut", "gcut-approx"])
def test_the_attention_definition_and_temperature_reach_gcut(augment):
    config = parse_config("hashing", ["--augment", augment, "--attention-definition", "energy",
                                      "--attention-temperature", "0.5"]).resolved()
    pipeline, _ = build_pipeline(config, build_model(config, 8, 3), 16, torch.Generator())
    text = repr(pipeline.augmentation.source)
    assert "energy" in text and "0.5" in text, text


def test_a_bad_precision_flag_is_one_line_exit_2(capsys):
    with pytest.raises(SystemExit) as stopped:
        main("hashing", "test", ["--amp", "fp8"])
    assert stopped.value.code == 2
    assert "--amp" in capsys.readouterr().err


def _single_process():
    from gg_augment.training.distributed import Distributed

    return Distributed()
