"""Validation helpers shared by the data loaders (integer counts, paths on disk).

Tensor and argument checks live in :mod:`gg_augment._checks`; these cover what only the data
package needs: paths and files that must exist.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["as_path", "require_file"]


def as_path(value: object, name: str) -> Path:
    """A ``str`` or ``os.PathLike`` turned into a :class:`~pathlib.Path`."""
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a str or os.PathLike path; got {type(value).__name__}")
    return Path(value).expanduser()


def require_file(path: Path, what: str) -> Path:
    """``path`` itself, after checking that it is an existing regular file."""
    if not path.exists():
        raise FileNotFoundError(f"{what} not found: {path}")
    if not path.is_file():
        raise ValueError(f"{what} must be a file; got a directory or special file: {path}")
    return path
