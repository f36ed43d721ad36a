"""The API reference covers every public name: each name in the ``__all__`` of ``gg_augment``
and of its direct submodules (``gg_augment.data``, ``gg_augment.io``, ``gg_augment.training``, …)
is named by a ``::: target`` of the docs, and rendered on the built site's API page."""

from __future__ import annotations

import importlib
import os
import pkgutil
import re
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

import gg_augment

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def public_modules() -> list[types.ModuleType]:
    """``gg_augment`` and its direct, non-underscore submodules (optional extras that are not
    installed are left out; their pages still build, from the source)."""
    modules = [gg_augment]
    for info in pkgutil.iter_modules(gg_augment.__path__, "gg_augment."):
        if info.name.rsplit(".", 1)[1].startswith("_"):
            continue
        try:
            modules.append(importlib.import_module(info.name))
        except ImportError:
            continue
    return modules


def public_names() -> list[tuple[str, Any]]:
    names = []
    for module in public_modules():
        exported = getattr(module, "__all__", None)
        assert exported is not None, f"{module.__name__} is public but has no __all__"
        names += [(f"{module.__name__}.{name}", getattr(module, name)) for name in exported]
    return names


def resolve(dotted: str) -> list[Any]:
    """What a dotted path can name (``gg_augment.data.load_embedded``): read as attributes from
    the package down, and as the longest importable module plus attributes. The two differ
    where a function shadows its module (``gg_augment.functional.erase``)."""
    parts = dotted.split(".")
    found = []
    value: Any = importlib.import_module(parts[0])
    for position, part in enumerate(parts[1:], start=2):
        if hasattr(value, part):
            value = getattr(value, part)
            continue
        try:
            value = importlib.import_module(".".join(parts[:position]))
        except ImportError:
            break
    else:
        found.append(value)
    for cut in range(len(parts), 0, -1):
        try:
            value = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for attribute in parts[cut:]:
                value = getattr(value, attribute)
        except AttributeError:
            break
        found.append(value)
        break
    return found


def _same(a: Any, b: Any) -> bool:
    if a is b:
        return True
    plain = (str, int, float, tuple, frozenset)
    return isinstance(a, plain) and type(a) is type(b) and a == b


def _missing(covered: list[tuple[str, Any]]) -> list[str]:
    return [
        name for name, value in public_names()
        if not any(_same(value, obj) and (name.rsplit(".", 1)[1] == path.rsplit(".", 1)[1] or callable(value))
                   for path, obj in covered)
    ]


def test_every_public_name_is_named_by_the_reference_pages():
    covered: list[tuple[str, Any]] = []
    for page in DOCS.glob("*.md"):
        for target in re.findall(r"^::: *([\w.]+)", page.read_text(), flags=re.M):
            values = resolve(target)
            if not values and target.startswith("gg_augment.callbacks"):
                continue  # extra not installed
            assert values, f"{page.name}: ::: {target} names nothing"
            for value in values:
                covered.append((target, value))
                if isinstance(value, types.ModuleType):
                    covered += [(f"{target}.{n}", getattr(value, n)) for n in getattr(value, "__all__", ())]
    assert _missing(covered) == []


def test_the_built_api_page_renders_every_public_name(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    site = tmp_path / "site"
    built = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-d", str(site)],
                           cwd=ROOT, capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert built.returncode == 0, built.stderr[-3000:]
    page = (site / "api" / "index.html").read_text()
    anchors = set(re.findall(r'id="(gg_augment[\w.]*)"', page))
    covered = [(anchor, value) for anchor in anchors for value in resolve(anchor)]
    assert _missing(covered) == []
    for name in ("gg_augment.view.View", "gg_augment.data.load_embedded", "gg_augment.training.evaluate"):
        assert name in anchors


def test_no_code_line_is_cut_off_on_the_site():
    # Material's code blocks show about 88 characters before they scroll (results pages
    # hold generated tables and are left out).
    for page in DOCS.glob("*.md"):
        blocks = re.findall(r"```\w*\n(.*?)```", page.read_text(), flags=re.S)
        long = [line for block in blocks for line in block.splitlines() if len(line) > 88]
        assert long == [], f"docs/{page.name}: {long}"
