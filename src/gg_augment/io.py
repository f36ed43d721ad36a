"""Files that are never half-written, checkpoints that fail loudly, and one writer per run folder.

Three promises for everything a run writes:

* :func:`write_atomic` - a reader sees the old file or the new one, never a torn one;
* :func:`load_checkpoint` / :func:`read_json` - a damaged or foreign file is refused with an
  error naming it, and a checkpoint can carry only tensors and plain values (no code);
* :class:`RunLock` - a second process that would write the same run folder is refused with a
  message naming the holder, and :func:`remove_stale_temp_files` deletes only the temp files
  whose writer is gone (never another live run's).
"""

from __future__ import annotations

import datetime
import io
import json
import os
import pickle
import re
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

#: flock exists on POSIX; elsewhere (Windows) the run lock and the temp-file test degrade as
#: documented on :class:`RunLock` and :func:`remove_stale_temp_files`.
CAN_LOCK = sys.platform != "win32"

if sys.platform != "win32":
    import fcntl

    def _flock(fd: int, *, wait: bool) -> bool:
        """Take an exclusive flock on ``fd``; False if another holder has it (and not ``wait``)."""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            return False
        return True
else:  # pragma: no cover

    def _flock(fd: int, *, wait: bool) -> bool:
        return True

__all__ = [
    "RunFolderBusyError",
    "RunLock",
    "check_writable_folder",
    "load_checkpoint",
    "lock_run_folder",
    "read_json",
    "remove_stale_temp_files",
    "save_checkpoint",
    "save_figure",
    "write_atomic",
]

#: Name of the lock file :class:`RunLock` keeps in a run folder while a run writes it.
LOCK_NAME = ".run.lock"


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


def _host() -> str:
    """This machine's name, reduced to characters that are safe inside a file name."""
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40] or "host"


# A temp file is ".<target name>.<pid>@<host>.<random>.tmp"; the writer holds an exclusive
# flock on it until the rename. The pid and host let the sweep spare a file whose writer has
# created it but not yet locked it.
_TEMP_OWNER = re.compile(r"\.(\d+)@([A-Za-z0-9-]+)\.[^.]+\.tmp$")


def write_atomic(path: str | os.PathLike[str], data: str | bytes) -> None:
    """Write ``data`` to ``path`` through a temp file in the same folder and a rename.

    A reader sees the old file or the new one, never a torn one, even if the process dies
    mid-write (``os.replace`` is atomic on POSIX and Windows within one file system). The
    file gets the permissions a plain ``open()`` would give it under the process umask
    (``mkstemp`` alone would leave it 0600). A failed write removes its temp file; one killed
    outright leaves ``.<name>.<pid>@<host>.<random>.tmp``, which
    :func:`remove_stale_temp_files` removes once its writer is gone.
    """
    path = Path(path)
    if not isinstance(data, (str, bytes, bytearray, memoryview)):
        raise TypeError(f"data must be str or bytes; got {type(data).__name__} (writing {path})")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocker = next((p for p in (path.parent, *path.parent.parents) if p.exists() and not p.is_dir()), path.parent)
        raise NotADirectoryError(f"cannot write {path}: {blocker} is a file, not a folder") from None
    payload = data.encode() if isinstance(data, str) else bytes(data)
    fd, tmp = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.{os.getpid()}@{_host()}.", suffix=".tmp"
    )
    closed = False
    try:
        _flock(fd, wait=True)  # "my writer is alive", for the sweep of another run
        if hasattr(os, "fchmod"):
            os.fchmod(fd, _file_mode())
        view = memoryview(payload)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
        if not CAN_LOCK:  # Windows cannot rename a file that is still open
            os.close(fd)
            closed = True
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    finally:
        if not closed:
            os.close(fd)


def _writer_is_gone(temp: Path) -> bool:
    """True when nobody can still be writing ``temp`` (so deleting it cannot break a rename)."""
    owner = _TEMP_OWNER.search(temp.name)
    if owner is not None and owner.group(2) == _host():
        try:
            os.kill(int(owner.group(1)), 0)
            return False  # the writer (or a process that took its pid) is alive: keep the file
        except ProcessLookupError:
            return True
        except (PermissionError, OverflowError):
            return False
    if not CAN_LOCK:  # pragma: no cover - without flock a foreign writer cannot be told apart
        return False
    try:
        fd = os.open(temp, os.O_RDONLY)
    except FileNotFoundError:
        return False  # renamed or removed meanwhile
    try:
        return _flock(fd, wait=False)  # taken: no writer holds it
    finally:
        os.close(fd)


def remove_stale_temp_files(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete the ``.*.tmp`` files in ``folder`` whose writer is gone; return them.

    A process killed mid-write cannot remove its own temp file. A temp file whose writer is
    alive - another run writing the same folder, or a write of this process - is kept: its
    writer is about to rename it. (The writer is identified by the pid and host in the name,
    and otherwise by the flock the writer holds.)
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for temp in sorted(folder.glob(".*.tmp")):
        if temp.is_file() and _writer_is_gone(temp):
            temp.unlink(missing_ok=True)
            removed.append(temp)
    return removed


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """``torch.save`` atomically: serialise in memory, then :func:`write_atomic`.

    Store only tensors and plain values (dicts, lists, str, int, float, bool, None): that is
    what :func:`load_checkpoint` accepts.
    """
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

    The file is read with ``torch.load(..., weights_only=True)``: it may hold tensors and
    plain values only, so a checkpoint written by someone else cannot run code when loaded.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is truncated or corrupt, carries objects other than tensors and
            plain values, is not a dict, or lacks ``required_keys``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        # The weights-only unpickler refuses any global it does not know, before calling it.
        unsafe = [line.strip() for line in str(error).splitlines() if "GLOBAL" in line]
        if unsafe:
            raise ValueError(
                f"checkpoint {path} refused: it holds objects other than tensors and plain values, "
                f"and loading them could run code ({unsafe[0][:300]})"
            ) from None
        raise ValueError(f"checkpoint {path} is corrupt or truncated (UnpicklingError: {_last_line(error)})") from None
    except Exception as error:  # zip, pickle and EOF errors all mean the same thing here
        raise ValueError(f"checkpoint {path} is corrupt or truncated ({type(error).__name__}: {error})") from error
    if not isinstance(state, dict):
        raise ValueError(f"checkpoint {path} must hold a dict; got {type(state).__name__}")
    missing = [key for key in required_keys if key not in state]
    if missing:
        raise ValueError(f"checkpoint {path} lacks keys {missing}; it was not written by this trainer")
    return state


def _last_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip() and "documentation" not in line]
    return lines[-1][:300] if lines else type(error).__name__


def read_json(path: str | os.PathLike[str], what: str = "JSON file") -> Any:
    """The JSON value in ``path``; an empty, torn or non-UTF-8 file is a ``ValueError`` naming it.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is empty or not valid UTF-8 JSON.
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} not found: {path}") from None
    except IsADirectoryError:
        raise ValueError(f"{what} {path} is a folder, not a file") from None
    except UnicodeDecodeError as error:
        raise ValueError(f"{what} {path} is not UTF-8 text ({error.reason} at byte {error.start})") from None
    if not text.strip():
        raise ValueError(f"{what} {path} is empty; delete it (a run writes it again) or restore it")
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"{what} {path} is not valid JSON (line {error.lineno}, column {error.colno}: {error.msg}); "
            "delete it (a run writes it again) or restore it"
        ) from None


def check_writable_folder(folder: str | os.PathLike[str]) -> Path:
    """Create ``folder`` if needed and prove it writable; ``ValueError`` saying why not.

    The test writes (and removes) a file, because permission bits alone do not tell: root
    ignores them, and a read-only mount ignores them the other way.
    """
    folder = Path(folder)
    for parent in (folder, *folder.parents):
        if parent.exists() and not parent.is_dir():
            raise ValueError(f"{folder} cannot be a folder: {parent} is a file")
        if parent.exists():
            break
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-test.", suffix=".tmp")
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        raise ValueError(f"{folder} is not a writable folder ({error.strerror or error})") from None
    return folder


class RunFolderBusyError(RuntimeError):
    """Another process holds the :class:`RunLock` of the folder; ``holder`` says who."""

    def __init__(self, folder: Path, holder: str) -> None:
        self.folder, self.holder = folder, holder
        super().__init__(
            f"run folder {folder} is in use by another run ({holder}); wait for it to end, or "
            "write elsewhere"
        )


class RunLock:
    """An exclusive lock on a run folder, so that two writers never share it.

    ``acquire()`` creates the folder, takes an exclusive ``flock`` on ``<folder>/.run.lock``
    and writes the holder's pid, host and start time into it; a second process (or a second
    lock in this one) is refused with :class:`RunFolderBusyError` naming that holder. The
    operating system drops the lock when the holder dies, so a killed run never leaves a
    stale lock behind; ``release()`` (or leaving the ``with`` block) removes the file.

    Where ``flock`` is missing (Windows) the lock is not enforced.

    Examples:
        >>> with RunLock("runs/my-run"):  # doctest: +SKIP
        ...     ...  # write the run's files
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> RunLock:
        if self._fd is not None:
            raise RuntimeError(f"the lock of {self.folder} is already held by this RunLock")
        check_writable_folder(self.folder)
        if not CAN_LOCK:  # pragma: no cover
            return self
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            if not _flock(fd, wait=False):
                os.close(fd)
                raise RunFolderBusyError(self.folder, self._holder())
            # The previous holder may have removed the file between our open and our lock:
            # then we locked an orphan, and must lock the file that is there now.
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": started})
        os.ftruncate(fd, 0)
        os.write(fd, record.encode())
        self._fd = fd
        return self

    def _holder(self) -> str:
        try:
            record = json.loads(self.path.read_text())
            return f"pid {record['pid']} on host {record['host']}, started {record['started']}; lock file {self.path}"
        except (OSError, ValueError, KeyError, TypeError):
            return f"a process that is still starting; lock file {self.path}"

    def release(self) -> None:
        if self._fd is None:
            return
        # Remove the file before unlocking, so nobody can lock the old file after we let go.
        try:
            self.path.unlink(missing_ok=True)
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self if self.held else self.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.folder)!r}, held={self.held})"


def lock_run_folder(folder: str | os.PathLike[str]) -> RunLock:
    """Acquire and return the :class:`RunLock` of ``folder`` (``release()`` it when done)."""
    return RunLock(folder).acquire()
