"""The trainers' command line, built from :class:`TrainConfig`'s fields: flags → config → :func:`run`."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any, NoReturn

from .config import RECIPES, ConfigError, TrainConfig, flag_of, recipe_help
from .trainer import run

__all__ = ["build_parser", "main", "parse_config"]


def _code_lengths(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 16,32,64; got {text!r}") from None
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"code lengths must be integers >= 1; got {text!r}")
    return values


class _OneLineErrors(argparse.ArgumentParser):
    """argparse, but a bad flag is one line on stderr (no usage block) and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


_TYPES: dict[str, Any] = {"int": int, "float": float, "str": str, "Path": Path, "tuple[int, ...]": _code_lengths}


def _add(parser: argparse.ArgumentParser, name: str, annotation: str, default: Any, rules: Any) -> None:
    kind = annotation.removesuffix(" | None")
    help_text = rules["help"] + (f" ({recipe_help(name)})" if name in RECIPES["fast"] else "")
    if rules.get("open_choices"):
        help_text = f"{help_text}; one of {', '.join(rules['choices'])}"
    common = {"dest": name, "default": default, "help": help_text}
    if kind == "bool":  # --flag (or --no-flag for a field that defaults to True), --stream/--no-stream for None
        action = argparse.BooleanOptionalAction if default is None else "store_false" if default else "store_true"
        parser.add_argument(flag_of(name), action=action, **common)
    else:
        choices = None if rules.get("open_choices") else rules.get("choices")
        parser.add_argument(flag_of(name), type=_TYPES[kind], choices=choices, **common)


def build_parser(
    mode: str, description: str | None = None, defaults: Mapping[str, Any] | None = None
) -> argparse.ArgumentParser:
    """One flag per :class:`TrainConfig` field (but ``mode``, which the trainer sets).

    ``defaults``: the command's own defaults for some fields (a script whose setting is not the
    library's, like the main job's), shown by ``--help`` and checked like a flag's value.
    """
    parser = _OneLineErrors(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    flags = []
    for spec in fields(TrainConfig):
        if spec.metadata.get("cli", True):
            _add(parser, spec.name, str(spec.type), spec.default, spec.metadata)
            flags.append(spec.name)
    unknown = sorted(set(defaults or {}) - set(flags))
    if unknown:
        raise ValueError(f"defaults must name TrainConfig fields that have a flag; got {unknown}")
    parser.set_defaults(out=Path("runs") / mode, **(defaults or {}))
    return parser


def _flag_error(parser: argparse.ArgumentParser, error: ConfigError) -> NoReturn:
    parser.error(f"argument {flag_of(error.field)}: {error.detail}")


def parse_config(
    mode: str, argv: list[str] | None = None, description: str | None = None, *, check: bool = True,
    defaults: Mapping[str, Any] | None = None,
) -> TrainConfig:
    """Parse trainer flags into a :class:`TrainConfig`, checked unless ``check=False`` (whose
    data and device checks need the machine); exits 2 on a bad flag. ``defaults``: see
    :func:`build_parser`."""
    parser = build_parser(mode, description, defaults)
    config = TrainConfig(mode=mode, **vars(parser.parse_args(argv)))
    try:
        return config.validate() if check else config
    except ConfigError as error:
        _flag_error(parser, error)


def main(
    mode: str, description: str | None = None, argv: list[str] | None = None, defaults: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Run a trainer from its command line; a bad flag or architecture ends with exit code 2.
    ``defaults``: see :func:`build_parser`."""
    config = parse_config(mode, argv, description, defaults=defaults)
    try:
        return run(config)
    except ConfigError as error:
        _flag_error(build_parser(mode, description, defaults), error)
