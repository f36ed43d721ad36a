"""mkdocs hook: fail the build when two pages render to the same URL.

``docs/results.md`` and ``docs/results/README.md`` both become ``results/index.html``; mkdocs
writes one over the other without a word, even with ``--strict``, so a page can vanish from
the site. Registered under ``hooks:`` in ``mkdocs.yml``; ``tests/contract/test_docs.py`` runs
the same check.
"""

from __future__ import annotations

from typing import Any

from mkdocs.exceptions import PluginError


def duplicate_urls(files: Any) -> dict[str, list[str]]:
    """``{url: [source pages]}`` for every URL that more than one page of ``files`` renders to."""
    sources: dict[str, list[str]] = {}
    for file in files.documentation_pages():
        sources.setdefault(file.url, []).append(file.src_uri)
    return {url: pages for url, pages in sources.items() if len(pages) > 1}


def on_files(files: Any, config: Any) -> Any:
    clashes = duplicate_urls(files)
    if clashes:
        listed = "; ".join(f"'{url or '/'}' from {' and '.join(pages)}" for url, pages in sorted(clashes.items()))
        raise PluginError(f"pages render to the same URL (rename or move one): {listed}")
    return files
