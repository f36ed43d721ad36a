"""TrainConfig is the one source of truth: the parser, the help and the checks come from its fields."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from gg_augment.attention import AttentionCache
from gg_augment.training import RECIPES, ConfigError, TrainConfig
from gg_augment.training.cli import build_parser, parse_config
from gg_augment.training.config import RECIPE_CASES, flag_of, recipe_help


def _actions(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {action.dest: action for action in parser._actions if action.dest != "help"}


def test_every_field_but_mode_is_one_flag_with_the_fields_choices_and_default():
    actions = _actions(build_parser("hashing"))
    for spec in dataclasses.fields(TrainConfig):
        if spec.name == "mode":
            assert spec.name not in actions
            continue
        action = actions[spec.name]
        assert spec.metadata["help"] and flag_of(spec.name) in action.option_strings
        if "choices" in spec.metadata and not spec.metadata.get("open_choices"):
            assert tuple(action.choices) == spec.metadata["choices"], spec.name
        if spec.name != "out":  # the parser's is runs/<mode>; the config's None means the same
            assert action.default == spec.default, spec.name


def test_defaults_of_the_parser_are_the_dataclass_defaults():
    config = parse_config("real", [])
    default = TrainConfig(mode="real")
    assert {k: v for k, v in config.to_dict().items() if k != "out"} == {k: v for k, v in default.to_dict().items() if k != "out"}
    assert config.output_root == default.output_root


def test_a_command_can_set_its_own_defaults_which_flags_still_override(capsys):
    # The main job (examples/train_hashing.py) runs another setting than the library's defaults.
    own = {"epochs": 120, "batch_size": 16}
    assert (parse_config("hashing", [], defaults=own).epochs, parse_config("hashing", [], defaults=own).batch_size) == (120, 16)
    assert parse_config("hashing", ["--epochs", "3"], defaults=own).epochs == 3
    assert "training epochs (default: 120)" in build_parser("hashing", defaults=own).format_help()
    with pytest.raises(ValueError, match=r"defaults must name TrainConfig fields that have a flag; got \['epoch'\]"):
        build_parser("hashing", defaults={"epoch": 3})
    with pytest.raises(SystemExit) as exit_code:  # a bad default is refused like a bad flag
        parse_config("hashing", [], defaults={"batch_size": 1})
    assert exit_code.value.code == 2 and "argument --batch-size" in capsys.readouterr().err


def test_recipe_help_is_rendered_from_recipes_including_the_cases():
    help_text = build_parser("hashing").format_help()
    assert recipe_help("lr") == "recipe: fast 0.001, paper 3e-05 (ViT: 3e-06)"
    assert "paper 12 (ViTs: the patch grid)" in recipe_help("gcut_grid")
    for name in RECIPES["paper"]:
        assert f"{name}" in {f.name for f in dataclasses.fields(TrainConfig)}
    assert "8 for CNNs" not in help_text  # the old hand-written help that the paper recipe contradicted


def test_the_gcut_grid_default_lives_in_recipes_alone():
    assert TrainConfig().cut_grid == RECIPES["fast"]["gcut_grid"] == 8
    assert TrainConfig(recipe="paper").cut_grid == RECIPES["paper"]["gcut_grid"] == 12
    vit = TrainConfig(arch="vit_b_16", image_size=224)
    assert vit.cut_grid is None and vit.attention_grid == 14
    assert ("fast", "gcut_grid") in RECIPE_CASES


def test_cache_momentum_has_the_caches_own_range():
    for momentum in (0.0, 1.0):
        assert TrainConfig(cache_momentum=momentum).validate().cache_momentum == momentum
        AttentionCache(4, grid_size=2, momentum=momentum)
    for momentum in (-0.1, 1.01):
        with pytest.raises(ConfigError, match="cache_momentum must lie in"):
            TrainConfig(cache_momentum=momentum).validate()
        with pytest.raises(ValueError, match="momentum must lie in"):
            AttentionCache(4, grid_size=2, momentum=momentum)


@pytest.mark.parametrize(
    ("values", "field"),
    [({"epochs": 0}, "epochs"), ({"lr": float("inf")}, "lr"), ({"optimizer": "sgd"}, "optimizer"),
     ({"validation": "sometimes"}, "validation"), ({"gcut_grid": 1}, "gcut_grid"), ({"arch": "timm:"}, "arch"),
     ({"crop_scale": 0.0}, "crop_scale"), ({"batch_size": True}, "batch_size")],
)
def test_validate_names_the_field(values, field):
    with pytest.raises(ConfigError) as error:
        TrainConfig(**values).validate()
    assert error.value.field == field


def test_open_choices_accept_timm_models_and_the_validate_flag_maps_to_its_field():
    assert TrainConfig(arch="timm:resnet10t").validate().arch == "timm:resnet10t"
    assert parse_config("hashing", ["--validate", "first-step"]).validation == "first-step"
    assert flag_of("validation") == "--validate" and flag_of("progress") == "--no-progress"


def test_a_configuration_is_validated_once_per_value(monkeypatch):
    config = TrainConfig()
    calls = []
    original = TrainConfig._check_combinations
    monkeypatch.setattr(TrainConfig, "_check_combinations", lambda self: calls.append(1) or original(self))
    config.validate()
    config.validate()
    assert len(calls) == 1
    config.epochs = 0  # a changed value is checked again
    with pytest.raises(ConfigError, match="epochs"):
        config.validate()


def test_validation_is_not_part_of_the_fingerprint():
    assert TrainConfig(validation="never").fingerprint() == TrainConfig().fingerprint()
