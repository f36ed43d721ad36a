"""The docs' code runs as written: the tutorial's Python blocks execute in a fresh namespace."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def test_the_tutorial_runs_verbatim(capsys):
    blocks = re.findall(r"```python\n(.*?)```", (DOCS / "tutorial.md").read_text(), flags=re.S)
    assert len(blocks) == 1
    namespace: dict = {}
    exec(compile(blocks[0], "docs/tutorial.md", "exec"), namespace)
    out = capsys.readouterr().out
    assert out.startswith("last loss ") and 0.0 < float(namespace["weight"].mean()) < 1.0  # G_cut cut something


def test_every_picture_and_page_the_docs_name_exists():
    for page in DOCS.glob("*.md"):
        for target in re.findall(r"\]\(([^)#]+\.(?:png|md))\)", page.read_text()):
            if not target.startswith("http"):
                assert (page.parent / target).is_file(), f"{page.name} links {target}, which does not exist"


def _unique_urls_hook():
    spec = importlib.util.spec_from_file_location("mkdocs_unique_urls", ROOT / "scripts" / "mkdocs_unique_urls.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_no_two_pages_render_to_the_same_url(tmp_path):
    pytest.importorskip("mkdocs")
    from mkdocs.config import load_config
    from mkdocs.exceptions import PluginError
    from mkdocs.structure.files import get_files

    hook = _unique_urls_hook()
    assert "scripts/mkdocs_unique_urls.py" in (ROOT / "mkdocs.yml").read_text()  # the build runs the same check
    config = load_config(str(ROOT / "mkdocs.yml"))
    files = get_files(config)
    assert hook.duplicate_urls(files) == {}
    assert files.get_file_from_path("results.md").url == "results/"  # the Results page is the study
    # The clash this check exists for: mkdocs would keep one of the two pages without a word.
    clash = tmp_path / "docs"
    (clash / "results").mkdir(parents=True)
    (clash / "results.md").write_text("# the study\n")
    (clash / "results" / "README.md").write_text("# other\n")
    clashing = load_config(str(ROOT / "mkdocs.yml"), docs_dir=str(clash))
    with pytest.raises(PluginError, match="results.md and results/README.md"):
        hook.on_files(get_files(clashing), clashing)
