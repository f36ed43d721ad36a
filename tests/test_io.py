"""gg_augment.io: safe checkpoints, named JSON errors, the run-folder lock and the temp-file sweep."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import gg_augment.io as io_module
from gg_augment.io import (
    RunFolderBusyError,
    RunLock,
    check_writable_folder,
    load_checkpoint,
    lock_run_folder,
    read_json,
    remove_stale_temp_files,
    save_checkpoint,
    write_atomic,
)

needs_flock = pytest.mark.skipif(sys.platform == "win32", reason="the run lock needs fcntl.flock")


class _Payload:
    """Unpickling this calls open(marker, "w"): code that runs as the checkpoint loads."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


# -- checkpoints ---------------------------------------------------------------------------


def test_a_checkpoint_carrying_code_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "checkpoint.pt"
    torch.save({"model": {"w": torch.ones(2)}, "config": _Payload(marker)}, path)
    with pytest.raises(ValueError, match=r"checkpoint .*checkpoint\.pt refused: .*could run code.*GLOBAL"):
        load_checkpoint(path, ("model", "config"))
    assert not marker.exists()
    # The payload is live: the unsafe loader the library used to call would have run it.
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_checkpoints_of_tensors_rng_states_and_plain_values_load(tmp_path):
    generator = torch.Generator().manual_seed(3)
    state = {
        "epoch": 2, "model": {"w": torch.randn(3, 2)}, "rng": {"torch": torch.get_rng_state(), "order": generator.get_state()},
        "history": [{"epoch": 1, "map": 0.5, "note": None}], "config": {"data_root": "/x y", "code_lengths": [16, 32], "flag": True},
        "optimizer": torch.optim.Adam([torch.nn.Parameter(torch.ones(1))]).state_dict(),
    }
    save_checkpoint(state, tmp_path / "c.pt")
    loaded = load_checkpoint(tmp_path / "c.pt", ("epoch", "model"))
    assert torch.equal(loaded["rng"]["order"], state["rng"]["order"]) and loaded["config"] == state["config"]
    assert loaded["history"] == state["history"]


@pytest.mark.parametrize("damage", ["empty", "garbage", "truncated", "not a dict"])
def test_a_damaged_checkpoint_is_named(tmp_path, damage):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint({"model": {"w": torch.ones(100)}}, path)
    data = path.read_bytes()
    if damage == "empty":
        path.write_bytes(b"")
    elif damage == "garbage":
        path.write_bytes(b"\x80\x02garbage" * 10)
    elif damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    else:
        save_checkpoint([1, 2], path)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"checkpoint .*checkpoint\.pt (is corrupt|must hold a dict)"):
        load_checkpoint(path)


# -- JSON ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "match"),
    [(b"", "is empty"), (b"  \n", "is empty"), (b'{"map": 0.5', "is not valid JSON .line 1"), (b'{"a": "\xe9"}', "is not UTF-8")],
)
def test_a_bad_json_file_is_named(tmp_path, content, match):
    path = tmp_path / "final.json"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=rf"final record .*final\.json {match}"):
        read_json(path, "final record")


def test_read_json_reads_and_names_a_missing_file(tmp_path):
    write_atomic(tmp_path / "a.json", json.dumps({"map": 0.5}))
    assert read_json(tmp_path / "a.json") == {"map": 0.5}
    with pytest.raises(FileNotFoundError, match=r"JSON file not found: .*b\.json"):
        read_json(tmp_path / "b.json")


# -- writable folders ------------------------------------------------------------------------


def test_check_writable_folder(tmp_path):
    assert check_writable_folder(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    assert (tmp_path / "a" / "b").is_dir() and list((tmp_path / "a" / "b").iterdir()) == []
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match=r"file cannot be a folder: .*file is a file"):
        check_writable_folder(tmp_path / "file")
    with pytest.raises(ValueError, match=r"under cannot be a folder: .*file is a file"):
        check_writable_folder(tmp_path / "file" / "under")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes into read-only folders")
def test_check_writable_folder_read_only(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        with pytest.raises(ValueError, match=r"ro is not a writable folder"):
            check_writable_folder(folder)
    finally:
        folder.chmod(stat.S_IRWXU)


# -- two processes: the lock and the sweep ----------------------------------------------------

# A second process that takes the lock of argv[1], says so, and holds it until stdin closes.
HOLDER = textwrap.dedent(
    """
    import sys
    from gg_augment.io import lock_run_folder
    lock = lock_run_folder(sys.argv[1])
    print("locked", flush=True)
    sys.stdin.read()
    lock.release()
    """
)

# A second process whose write_atomic of argv[1] stops just before the rename (holding its
# temp file) until stdin says go; or, with argv[2] == "die", dies there (as SIGKILL would).
WRITER = textwrap.dedent(
    """
    import os, sys
    import gg_augment.io as io
    real_replace = os.replace

    def paused_replace(src, dst):
        print("writing", flush=True)
        if sys.argv[2] == "die":
            os._exit(137)
        sys.stdin.readline()
        real_replace(src, dst)

    io.os.replace = paused_replace
    io.write_atomic(sys.argv[1], b"new")
    print("renamed", flush=True)
    """
)


def _start(script: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    return subprocess.Popen(
        [sys.executable, "-c", script, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
    )


@needs_flock
def test_a_second_writer_is_refused_naming_the_holder(tmp_path):
    holder = _start(HOLDER, str(tmp_path))
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunFolderBusyError, match=rf"in use by another run \(pid {holder.pid} on host .*started 20\d\d-"):
            lock_run_folder(tmp_path)
    finally:
        holder.communicate("", timeout=1800)
    assert holder.returncode == 0
    assert not (tmp_path / ".run.lock").exists()  # released and removed
    with lock_run_folder(tmp_path) as lock:  # free again
        assert lock.held


@needs_flock
def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    holder = _start(HOLDER, str(tmp_path))
    assert holder.stdout.readline().strip() == "locked"
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=1800)
    assert (tmp_path / ".run.lock").exists()  # left behind, but no longer locked
    with RunLock(tmp_path):
        with pytest.raises(RunFolderBusyError, match=f"pid {os.getpid()}"):
            RunLock(tmp_path).acquire()  # a second lock in one process is refused too


@needs_flock
def test_the_sweep_spares_a_live_writer_and_removes_a_dead_ones(tmp_path):
    target = tmp_path / "checkpoint.pt"
    write_atomic(target, b"old")
    dead = _start(WRITER, str(target), "die")
    assert dead.stdout.readline().strip() == "writing"
    assert dead.wait(timeout=1800) == 137
    (dead_temp,) = tmp_path.glob(".*.tmp")
    alive = _start(WRITER, str(target), "wait")
    try:
        assert alive.stdout.readline().strip() == "writing"
        temps = set(tmp_path.glob(".*.tmp"))
        assert len(temps) == 2
        assert remove_stale_temp_files(tmp_path) == [dead_temp]
        (live_temp,) = tmp_path.glob(".*.tmp")
        # Same host, pid reused by nobody: the flock alone must keep a file whose name carries no pid.
        anonymous = tmp_path / ".checkpoint.pt.anonymous.tmp"
        os.link(live_temp, anonymous)
        assert remove_stale_temp_files(tmp_path) == []
        anonymous.unlink()
        out, _ = alive.communicate("go\n", timeout=1800)
    finally:
        if alive.poll() is None:
            alive.kill()
    assert alive.returncode == 0 and "renamed" in out
    assert target.read_bytes() == b"new"
    assert list(tmp_path.glob(".*.tmp")) == []


def test_the_sweep_removes_an_unlocked_temp_file_without_an_owner(tmp_path):
    (tmp_path / ".checkpoint.pt.abc.tmp").write_bytes(b"half")
    (tmp_path / "keep.txt").write_text("x")
    assert [p.name for p in remove_stale_temp_files(tmp_path)] == [".checkpoint.pt.abc.tmp"]
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]
    assert remove_stale_temp_files(tmp_path / "missing") == []


def test_write_atomic_leaves_no_temp_and_keeps_the_umask_mode(tmp_path):
    old = os.umask(0o022)
    try:
        write_atomic(tmp_path / "x.json", "{}")
    finally:
        os.umask(old)
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]
    assert stat.S_IMODE((tmp_path / "x.json").stat().st_mode) == 0o644


def test_check_writable_folder_names_a_refused_write(tmp_path, monkeypatch):
    """As root cannot be refused by permission bits, the refusal itself is simulated."""

    def refused(*_args, **_kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(io_module.tempfile, "mkstemp", refused)
    with pytest.raises(ValueError, match=r"ro is not a writable folder \(Permission denied\)"):
        check_writable_folder(tmp_path / "ro")
