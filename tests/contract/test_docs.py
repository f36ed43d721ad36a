"""The docs' code runs as written: the tutorial's Python blocks execute in a fresh namespace."""

from __future__ import annotations

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"


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
