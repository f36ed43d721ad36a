"""The README's training-loop snippet runs verbatim, and really augments."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import torch

README = Path(__file__).resolve().parents[2] / "README.md"


def _snippet() -> str:
    text = README.read_text()
    section = text[text.index("## Add GG to your training loop") :]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "the README lost its training-loop snippet"
    return match.group(1)


def test_readme_snippet_runs_verbatim_and_cuts(tmp_path):
    script = tmp_path / "snippet.py"
    script.write_text(_snippet())
    torch.manual_seed(0)
    scope = runpy.run_path(str(script), run_name="__main__")
    weight, x_aug, images = scope["weight"], scope["x_aug"], scope["images"]
    # G_cut cut something: retention (the weight, under the identity curve) fell below 1, and
    # the cut pixels hold the fill value 0.
    assert bool((weight < 1).any()), "the snippet's G_cut cut nothing"
    assert not torch.equal(x_aug, images)
    assert bool(torch.isfinite(scope["loss"]))
