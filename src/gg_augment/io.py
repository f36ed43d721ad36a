"""Files that are never half-written, and checkpoints that fail loudly when damaged."""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

__all__ = ["load_checkpoint", "save_checkpoint", "save_figure", "write_atomic"]


def _file_mode() -> int:
    """0o666 under the process umask: what ``open()`` would have given the file."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: read it by setting it, then put it back
    os.umask(mask)
    return 0o666 & ~mask


def write_atomic(path: str | os.PathLike[str], data: str | bytes) -> None:
    """Write ``data`` to ``path`` through a temp file in the same folder and a rename.

    A reader sees the old file or the new one, never a torn one, even if the process dies
    mid-write (``os.replace`` is atomic on POSIX and Windows within one file system). The
    file gets the permissions a plain ``open()`` would give it under the process umask
    (``mkstemp`` alone would leave it 0600). A failed write removes its temp file; one killed
    outright leaves ``.<name>.<random>.tmp``, which the trainers sweep at start.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, _file_mode())
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """``torch.save`` atomically: serialise in memory, then :func:`write_atomic`."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_atomic(path, buffer.getvalue())


def save_figure(figure: Any, path: str | os.PathLike[str], dpi: int = 120) -> None:
    """Save a matplotlib figure as PNG atomically (matplotlib itself is not imported here)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    write_atomic(path, buffer.getvalue())


def load_checkpoint(
    path: str | os.PathLike[str], required_keys: tuple[str, ...] = (), map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint`, with clear errors.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is truncated or corrupt, not a dict, or lacks ``required_keys``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        # weights_only=False: checkpoints hold RNG states and plain Python config objects.
        state = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as error:  # zip, pickle and EOF errors all mean the same thing here
        raise ValueError(f"checkpoint {path} is corrupt or truncated ({type(error).__name__}: {error})") from error
    if not isinstance(state, dict):
        raise ValueError(f"checkpoint {path} must hold a dict; got {type(state).__name__}")
    missing = [key for key in required_keys if key not in state]
    if missing:
        raise ValueError(f"checkpoint {path} lacks keys {missing}; it was not written by this trainer")
    return state
