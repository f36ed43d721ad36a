"""mkdocs hook: render the Sphinx roles in the docstrings as plain code, linked where possible.

The package's docstrings cross-reference with Sphinx roles (``:class:`~gg_augment.View```),
which ``help()`` and IDEs show well but mkdocstrings' Markdown does not understand: the API page
showed the raw ``:class:`` text before a code span. No installed mkdocstrings or griffe extension
handles the roles, and the docstrings should stay as they are, so this hook rewrites the rendered
HTML instead. ``:role:<code>target</code>`` becomes ``<code>title</code>``, with Sphinx's title
rules: ``~a.b.C`` shows ``C``, ``Title <a.b.C>`` shows ``Title``, a leading ``.`` is dropped,
anything else shows in full. A dotted target is handed to mkdocs-autorefs as an optional
reference, so it links where the API page documents it and stays plain code where not.
Registered under ``hooks:`` in ``mkdocs.yml``; ``tests/contract/test_docs.py`` checks the rewrite.
"""

from __future__ import annotations

import html
import re
from typing import Any

# The Python-domain roles, with or without Sphinx's ``py:`` prefix, right before a code span.
ROLE_PATTERN = re.compile(
    r":(?:py:)?(?:class|func|meth|attr|mod|data|exc|obj|const):<code>(?P<target>[^<]*)</code>"
)
EXPLICIT_TITLE = re.compile(r"^(?P<title>.+?)\s*<(?P<target>[^<>]+)>$", flags=re.S)


def _role_as_code(match: re.Match[str]) -> str:
    text = html.unescape(match["target"]).strip()
    explicit = EXPLICIT_TITLE.match(text)
    if explicit:
        title, target = explicit["title"], explicit["target"].lstrip("~.")
    else:
        target = text.lstrip("~.")
        title = target.rsplit(".", 1)[-1] if text.startswith("~") else target
    code = f"<code>{html.escape(title)}</code>"
    if "." not in target:
        # A bare name ("run", "forward") could match a page's heading anchor; leave it unlinked.
        return code
    return f'<autoref optional identifier="{html.escape(target)}">{code}</autoref>'


def render_sphinx_roles(content: str) -> str:
    """``content`` (rendered HTML) with every ``:role:<code>target</code>`` replaced by its code span."""
    return ROLE_PATTERN.sub(_role_as_code, content)


def on_page_content(content: str, page: Any, config: Any, files: Any) -> str:
    # autorefs resolves the <autoref> tags later, in on_env, once every page is rendered.
    return render_sphinx_roles(content)
