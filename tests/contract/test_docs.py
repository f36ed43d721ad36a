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


def _load_hook(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _unique_urls_hook():
    return _load_hook("mkdocs_unique_urls")


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


@pytest.mark.parametrize(
    ("rendered", "expected"),
    [
        # Sphinx's tilde rule: the last component shows; a dotted target may become a link.
        (
            "see :class:<code>~gg_augment.x.Y</code>.",
            'see <autoref optional identifier="gg_augment.x.Y"><code>Y</code></autoref>.',
        ),
        (
            ":func:<code>gg_augment.training.run</code>",
            '<autoref optional identifier="gg_augment.training.run"><code>gg_augment.training.run</code></autoref>',
        ),
        # A bare name stays plain code: it could match some heading's anchor.
        ("calls :meth:<code>forward</code>", "calls <code>forward</code>"),
        (":py:exc:<code>ValueError</code>", "<code>ValueError</code>"),
        (":mod:<code>.relevance</code>", "<code>relevance</code>"),
        (
            ":meth:<code>Pipeline.augment &lt;gg_augment.Pipeline.augment&gt;</code>",
            '<autoref optional identifier="gg_augment.Pipeline.augment"><code>Pipeline.augment</code></autoref>',
        ),
        # Without a role nothing changes, nor does a code span that only names one.
        (
            "<p>Note: <code>~gg_augment.x.Y</code> and <code>:class:</code></p>",
            "<p>Note: <code>~gg_augment.x.Y</code> and <code>:class:</code></p>",
        ),
    ],
)
def test_the_docs_render_sphinx_roles_as_code(rendered, expected):
    hook = _load_hook("mkdocs_sphinx_roles")
    assert "scripts/mkdocs_sphinx_roles.py" in (ROOT / "mkdocs.yml").read_text()  # the build runs it
    assert hook.render_sphinx_roles(rendered) == expected
