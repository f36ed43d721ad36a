"""The second bad-input audit (issue 18), as tests: 80+ fresh inputs and faults across the API,
the loaders, the command line and concurrent runs. Each case states the outcome the library
must give: ``clear`` (refused with an error naming the argument, file or flag) or ``correct``
(accepted, and the result is right). Nothing silent, obscure, lost or crashing.
``python -m pytest tests/contract/test_audit_round2.py -q`` re-runs the audit."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import gg_augment as gg
from gg_augment import io
from gg_augment.data import ImageListDataset, load_cifar10, load_embedded, read_image_list
from gg_augment.hashing import DSDHSolver, sign_codes
from gg_augment.metrics import mean_average_precision, precision_recall_curve, recall_at_k

X = torch.rand(4, 3, 16, 16)
CODES = torch.tensor([[1.0, -1.0], [-1.0, 1.0], [1.0, 1.0], [-1.0, -1.0]])
LABELS = torch.tensor([0, 1, 0, 1])
NAN = float("nan")
INF = float("inf")


class Raises:
    """The call must raise ``error`` with a message matching ``match`` (it names the culprit)."""

    def __init__(self, error: type[BaseException], match: str) -> None:
        self.error, self.match = error, match

    def check(self, call: Callable[[], object]) -> None:
        with pytest.raises(self.error, match=self.match):
            call()


class Holds:
    """The call must succeed and ``predicate(result)`` be true (the result is right)."""

    def __init__(self, predicate: Callable[[object], bool]) -> None:
        self.predicate = predicate

    def check(self, call: Callable[[], object]) -> None:
        assert self.predicate(call())


def _same_as_contiguous() -> bool:
    gen = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    plain = gg.GT(sigma=0.2, generator=gen())(X)[0]
    strided = gg.GT(sigma=0.2, generator=gen())(X.to(memory_format=torch.channels_last))[0]
    return torch.equal(plain, strided)


def _gradient_flows() -> bool:
    x = X.clone().requires_grad_(True)
    out, _ = gg.RandomResizedCropFlip(8, generator=torch.Generator().manual_seed(0))(x)
    out.sum().backward()
    return x.grad is not None and bool(torch.isfinite(x.grad).all())


def _pr_int_equals_float() -> bool:
    ints = precision_recall_curve(CODES.long(), CODES.long(), LABELS, LABELS)
    floats = precision_recall_curve(CODES, CODES, LABELS, LABELS)
    return all(torch.equal(a, b) for a, b in zip(ints, floats))


def _small_model() -> gg.RetrievalNet:
    torch.manual_seed(0)
    return gg.RetrievalNet(*gg.build_backbone("small"), 8)


def _cache_state_of_other_size() -> None:
    state = gg.AttentionCache(8, grid_size=4).state_dict()
    gg.AttentionCache(4, grid_size=4).load_state_dict(state)


def _solver_state_of_other_size() -> None:
    state = DSDHSolver(8, 4, 2).state_dict()
    DSDHSolver(6, 4, 2).load_state_dict(state)


# (id, call, expected outcome)
API_CASES: list[tuple[str, Callable[[], object], Raises | Holds]] = [
    # augmentation parameters: non-finite and out-of-type values
    ("GT max_shift NaN", lambda: gg.GT(max_shift=NAN), Raises(ValueError, "max_shift")),
    ("GT p NaN", lambda: gg.GT(p=NAN), Raises(ValueError, r"\bp\b")),
    ("GT sigma bool", lambda: gg.GT(sigma=True), Raises(TypeError, "sigma")),
    ("GT fill_scale negative", lambda: gg.GT(fill_scale=-1.0), Raises(ValueError, "fill_scale")),
    ("GCut limit NaN", lambda: gg.GCut(limit=NAN), Raises(ValueError, "limit")),
    ("GCut keep_ratio Inf", lambda: gg.GCut(keep_ratio=INF), Raises(ValueError, "keep_ratio")),
    ("GCut p > 1", lambda: gg.GCut(p=1.5), Raises(ValueError, r"\bp\b")),
    ("GCut grid (4, 0)", lambda: gg.GCut(grid_size=(4, 0)), Raises(ValueError, "grid_size")),
    ("GCut grid 2.5", lambda: gg.GCut(grid_size=2.5), Raises(TypeError, "grid_size")),
    ("GCut warmup unknown", lambda: gg.GCut(_small_model(), cache=gg.AttentionCache(4, grid_size=4), warmup="later"), Raises(ValueError, "warmup")),
    ("erasing p NaN", lambda: gg.RandomErasingRetention(p=NAN), Raises(ValueError, r"\bp\b")),
    ("erasing scale NaN", lambda: gg.RandomErasingRetention(scale=(NAN, 0.5)), Raises(ValueError, "scale")),
    ("erasing scale > 1", lambda: gg.RandomErasingRetention(scale=(0.2, 1.5)), Raises(ValueError, "scale")),
    ("erasing fill unknown", lambda: gg.RandomErasingRetention(fill="blue"), Raises(ValueError, "fill")),
    ("erasing min_share 2", lambda: gg.RandomErasingRetention(min_share=2.0), Raises(ValueError, "min_share")),
    ("crop ratio reversed", lambda: gg.RandomResizedCropFlip(8, ratio=(2.0, 1.0)), Raises(ValueError, "ratio")),
    ("crop flip_p 1.5", lambda: gg.RandomResizedCropFlip(8, flip_p=1.5), Raises(ValueError, "flip_p")),
    ("crop size (8, 0)", lambda: gg.RandomResizedCropFlip((8, 0)), Raises(ValueError, "size")),
    ("PerSample of a module", lambda: gg.PerSample(torch.nn.Identity()), Raises(TypeError, "augmentation")),
    # augmentation calls: unusual but valid batches give right answers
    ("GT empty batch", lambda: gg.GT()(torch.rand(0, 3, 8, 8)), Holds(lambda r: r[0].shape == (0, 3, 8, 8) and r[1].shape == (0,))),
    ("GT 1x1 images", lambda: gg.GT(sigma=0.5)(torch.rand(2, 3, 1, 1)), Holds(lambda r: r[0].shape == (2, 3, 1, 1) and bool(((r[1] >= 0) & (r[1] <= 1)).all()))),
    ("GT channels_last equals contiguous", _same_as_contiguous, Holds(bool)),
    ("GT float64 keeps dtype", lambda: gg.GT()(X.double()), Holds(lambda r: r[0].dtype == torch.float64)),
    ("crop gradient flows", _gradient_flows, Holds(bool)),
    ("crop float16", lambda: gg.RandomResizedCropFlip(8)(X.half()), Holds(lambda r: r[0].dtype == torch.float16 and r[0].shape == (4, 3, 8, 8))),
    ("GCut attention batch mismatch", lambda: gg.GCut(grid_size=4)(X, attention=torch.rand(5, 4, 4)), Raises(ValueError, "attention")),
    ("GCut integer attention", lambda: gg.GCut(grid_size=4)(X, attention=torch.ones(4, 4, 4, dtype=torch.long)), Raises(TypeError, "attention")),
    ("erasing 5-D batch", lambda: gg.RandomErasingRetention()(X.unsqueeze(0)), Raises(ValueError, r"x must have shape \(B, C, H, W\)")),
    # retention curve
    ("retention k NaN", lambda: gg.SemanticRetention("power", k=NAN), Raises(ValueError, r"\bk\b")),
    ("retention k 0", lambda: gg.SemanticRetention("power", k=0.0), Raises(ValueError, r"\bk\b")),
    ("retention NaN input", lambda: gg.SemanticRetention()(torch.tensor([0.5, NAN])), Raises(ValueError, "retention")),
    ("retention integer input", lambda: gg.SemanticRetention()(torch.ones(3, dtype=torch.long)), Raises(TypeError, "retention")),
    # loss
    ("loss 1-D outputs", lambda: gg.RetentionWeightedPairwiseLoss()(torch.randn(4), LABELS), Raises(ValueError, "outputs")),
    ("loss labels too long", lambda: gg.RetentionWeightedPairwiseLoss()(CODES, torch.arange(5)), Raises(ValueError, "labels")),
    ("loss integer outputs", lambda: gg.RetentionWeightedPairwiseLoss()(CODES.long(), LABELS), Raises(TypeError, "outputs")),
    ("loss NaN weight", lambda: gg.RetentionWeightedPairwiseLoss()(CODES, LABELS, torch.tensor([1.0, NAN, 1.0, 1.0])), Raises(ValueError, "weight")),
    ("loss weight (B, 1)", lambda: gg.RetentionWeightedPairwiseLoss()(CODES, LABELS, torch.ones(4, 1)), Raises(ValueError, "weight")),
    ("loss bank of other width", lambda: gg.RetentionWeightedPairwiseLoss()(CODES, LABELS, bank=torch.ones(6, 3), bank_labels=torch.zeros(6, dtype=torch.long)), Raises(ValueError, "bank")),
    ("loss scale Inf", lambda: gg.RetentionWeightedPairwiseLoss("cosine", scale=INF), Raises(ValueError, "scale")),
    ("loss negative quantization weight", lambda: gg.RetentionWeightedPairwiseLoss(quantization_weight=-1.0), Raises(ValueError, "quantization_weight")),
    ("loss triplet margin NaN", lambda: gg.RetentionWeightedPairwiseLoss(triplet_weight=0.1, triplet_margin=NAN), Raises(ValueError, "triplet_margin")),
    # metrics and hashing
    ("mAP empty database", lambda: mean_average_precision(CODES, CODES[:0], LABELS, LABELS[:0]), Raises(ValueError, "database")),
    ("mAP code widths differ", lambda: mean_average_precision(CODES, torch.ones(4, 3), LABELS, LABELS), Raises(ValueError, "database")),
    # Class ids are compared for equality only: -1 is a class like any other.
    ("mAP negative class ids are classes", lambda: float(mean_average_precision(CODES, CODES, LABELS - 1, LABELS - 1)) == float(mean_average_precision(CODES, CODES, LABELS, LABELS)), Holds(bool)),
    ("mAP perfect retrieval is 1", lambda: mean_average_precision(CODES, CODES, torch.arange(4), torch.arange(4)), Holds(lambda r: abs(float(r) - 1.0) < 1e-6)),
    ("mAP NaN cosine query", lambda: mean_average_precision(CODES * NAN, CODES, LABELS, LABELS, metric="cosine"), Raises(ValueError, "query")),
    ("recall k 0", lambda: recall_at_k(CODES, CODES, LABELS, LABELS, k=0), Raises(ValueError, r"\bk\b")),
    ("PR curve integer codes equal float codes", lambda: _pr_int_equals_float(), Holds(bool)),
    ("mAP integer codes equal float codes", lambda: float(mean_average_precision(CODES.long(), CODES.long(), LABELS, LABELS)) == float(mean_average_precision(CODES, CODES, LABELS, LABELS)), Holds(bool)),
    ("sign_codes zero is +1", lambda: sign_codes(torch.tensor([[0.0, -0.0, -2.0]])), Holds(lambda r: r.tolist() == [[1.0, 1.0, -1.0]])),
    ("DSDH num_train 0", lambda: DSDHSolver(0, 8, 2), Raises(ValueError, "num_train")),
    ("DSDH mu negative", lambda: DSDHSolver(4, 8, 2, mu=-1.0), Raises(ValueError, "mu")),
    ("DSDH state of another size", _solver_state_of_other_size, Raises(ValueError, "num_train|state")),
    # cache, models
    ("cache momentum NaN", lambda: gg.AttentionCache(4, momentum=NAN), Raises(ValueError, "momentum")),
    ("cache momentum 1.5", lambda: gg.AttentionCache(4, momentum=1.5), Raises(ValueError, "momentum")),
    ("cache grid 0", lambda: gg.AttentionCache(4, grid_size=0), Raises(ValueError, "grid_size")),
    ("cache state of another size", _cache_state_of_other_size, Raises(ValueError, "num_samples|state|shape")),
    ("backbone unknown", lambda: gg.build_backbone("resnet7"), Raises(ValueError, "arch")),
    ("backbone 0 channels", lambda: gg.build_backbone("small", in_channels=0), Raises(ValueError, "in_channels")),
    ("RetrievalNet code_length 0", lambda: gg.RetrievalNet(*gg.build_backbone("small"), 0), Raises(ValueError, "code_length")),
    # files
    ("load_checkpoint of a folder", lambda: io.load_checkpoint(Path(__file__).parent), Raises(FileNotFoundError, "checkpoint not found")),
    ("write_atomic of None", lambda: io.write_atomic(Path(os.devnull).parent / "gg-never-written", None), Raises(TypeError, "data must be str or bytes; got NoneType")),
    ("embedded image_size 0", lambda: load_embedded("train", image_size=0), Raises(ValueError, "image_size")),
]


@pytest.mark.parametrize(("call", "expected"), [c[1:] for c in API_CASES], ids=[c[0] for c in API_CASES])
def test_api(call, expected):
    expected.check(call)


# -- files and loaders (need a folder) ---------------------------------------------------------


def _png(path: Path, mode: str = "L", size: int = 8) -> Path:
    data = np.arange(size * size * (3 if mode in ("RGB", "CMYK") else 1), dtype=np.uint8)
    if mode == "L":
        image = Image.fromarray(data.reshape(size, size))
    elif mode == "P":
        image = Image.fromarray(data.reshape(size, size)).convert("P")
        image.info["transparency"] = 0
    else:
        image = Image.fromarray(data.reshape(size, size, 3)).convert(mode)
    image.save(path)
    return path


def _list(tmp: Path, *lines: str, raw: bytes | None = None) -> Path:
    path = tmp / "list.txt"
    path.write_bytes(raw if raw is not None else ("\n".join(lines) + "\n").encode())
    return path


FILE_CASES: list[tuple[str, Callable[[Path], object], Raises | Holds]] = [
    ("list of whitespace only", lambda t: read_image_list(_list(t, " ", "\t", "")), Raises(ValueError, "image list is empty")),
    ("list with CRLF", lambda t: read_image_list(_list(t, raw=b"a.png 1 0\r\nb.png 0 1\r\n"))[1].tolist(), Holds(lambda r: r == [[1.0, 0.0], [0.0, 1.0]])),
    ("list with a NUL byte", lambda: None, None),  # replaced below
    ("list is a folder", lambda t: read_image_list(t), Raises(ValueError, r"image list file must be a file")),
    ("list num_classes 0", lambda t: read_image_list(_list(t, "a.png 1"), num_classes=0), Raises(ValueError, "num_classes")),
    ("list with a path holding spaces", lambda t: read_image_list(_list(t, "my pics/a b.png 1 0"))[0], Holds(lambda r: r == ["my pics/a b.png"])),
    ("list in UTF-16", lambda t: read_image_list(_list(t, raw="a.png 1\n".encode("utf-16"))), Raises(ValueError, r"list\.txt, line 1: the list is not UTF-8")),
    ("image is a CMYK JPEG", lambda t: (_png(t / "c.jpg", "CMYK"), ImageListDataset(_list(t, "c.jpg 1"), image_size=8)[0][0].shape)[1], Holds(lambda r: r == (3, 8, 8))),
    ("image is a palette PNG with transparency", lambda t: (_png(t / "p.png", "P"), ImageListDataset(_list(t, "p.png 1"), image_size=8)[0][0].shape)[1], Holds(lambda r: r == (3, 8, 8))),
    ("image file is empty", lambda t: ((t / "e.png").write_bytes(b""), ImageListDataset(_list(t, "e.png 1"))[0]), Raises(ValueError, r"cannot read image .*e\.png \(line 1 of")),
    ("image path is a folder", lambda t: ((t / "d.png").mkdir(), ImageListDataset(_list(t, "d.png 1"))[0]), Raises(ValueError, r"cannot read image .*d\.png \(line 1 of")),
    ("image path absolute with root", lambda t: (_png(t / "abs.png"), ImageListDataset(_list(t, f"{t / 'abs.png'} 1"), root="/nonexistent", image_size=8)[0][0].shape)[1], Holds(lambda r: r == (3, 8, 8))),
    ("CIFAR batch file empty", lambda t: _cifar_with(t, b""), Raises(ValueError, r"data_batch_1: corrupt CIFAR-10 batch")),
    ("CIFAR data int64", lambda t: _cifar_with(t, {b"data": np.zeros((2, 3072), np.int64), b"labels": [0, 1]}), Raises(ValueError, r"data_batch_1: corrupt CIFAR-10 batch: data must be uint8")),
    ("CIFAR labels bool", lambda t: _cifar_with(t, {b"data": np.zeros((2, 3072), np.uint8), b"labels": [True, False]}), Raises(ValueError, r"data_batch_1: corrupt CIFAR-10 batch: labels are not integers")),
    ("CIFAR missing test_batch", lambda t: (_cifar_with(t, None), load_cifar10(t, num_query=0, num_train=0)), Raises(FileNotFoundError, r"test_batch")),
    ("embedded root is not an npz", lambda t: ((t / "x.npz").write_bytes(b"junk"), load_embedded(root=t / "x.npz")), Raises(ValueError, r"x\.npz")),
    ("checkpoint under a file", lambda t: ((t / "f").write_text("x"), io.save_checkpoint({}, t / "f" / "c.pt")), Raises(NotADirectoryError, r"cannot write .*c\.pt: .*f is a file")),
    ("read_json of a folder", lambda t: io.read_json(t), Raises(ValueError, r"JSON file .* is a folder, not a file")),
    ("RunLock on a file", lambda t: ((t / "f").write_text("x"), io.RunLock(t / "f").acquire()), Raises(ValueError, r"f is a file")),
    ("RunLock released twice", lambda t: _release_twice(t), Holds(lambda r: r is True)),
    ("checkpoint with a nested payload", lambda t: _nested_payload(t), Raises(ValueError, r"refused")),
]


def _nul_list(tmp: Path) -> object:
    return ImageListDataset(_list(tmp, raw=b"a\x00b.png 1\n"))[0]


FILE_CASES[2] = ("list with a NUL byte in a path", _nul_list, Raises(ValueError, r"cannot read image .* \(line 1 of"))


def _cifar_with(tmp: Path, batch: object) -> object:
    folder = tmp / "cifar-10-batches-py"
    folder.mkdir()
    good = {b"data": np.zeros((10, 3072), np.uint8), b"labels": list(range(10))}
    for name in ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"):
        (folder / name).write_bytes(pickle.dumps(good, 2))
    if batch is None:
        (folder / "test_batch").unlink()
        return None
    (folder / "data_batch_1").write_bytes(batch if isinstance(batch, bytes) else pickle.dumps(batch, 2))
    return load_cifar10(tmp, num_query=10, num_train=10)


def _release_twice(tmp: Path) -> bool:
    lock = io.lock_run_folder(tmp)
    lock.release()
    lock.release()
    return not lock.held and not (tmp / ".run.lock").exists()


class _Opens:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _nested_payload(tmp: Path) -> object:
    torch.save({"history": [{"epoch": 1, "extra": [_Opens(tmp / "ran")]}]}, tmp / "c.pt")
    try:
        return io.load_checkpoint(tmp / "c.pt")
    finally:
        assert not (tmp / "ran").exists()


@pytest.mark.parametrize(("call", "expected"), [c[1:] for c in FILE_CASES], ids=[c[0] for c in FILE_CASES])
def test_files(tmp_path, call, expected):
    expected.check(lambda: call(tmp_path))


# -- command line: one line naming the flag, exit 2, before the data loads ----------------------


def _block_data_loading(monkeypatch) -> None:
    import importlib

    def no_data(*_args, **_kwargs):
        raise AssertionError("data was loaded before the flags were checked")

    for name in ("gg_augment.training.data", "gg_augment.training.components"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if hasattr(module, "load_splits"):
            monkeypatch.setattr(module, "load_splits", no_data)


CLI_CASES = [
    (["--gcut-grid", "64"], "--gcut-grid"),
    (["--augment", "gcut-approx", "--gcut-grid", "64"], "--gcut-grid"),
    (["--attention-layer", "backbone.nope"], "--attention-layer"),
    (["--augment", "gcut-approx", "--attention-layer", "nope"], "--attention-layer"),
    (["--arch", "resnet18", "--image-size", "32"], "--image-size"),
    (["--data", "cifar10", "--data-root", ".", "--num-query", "95"], "--num-query"),
    (["--data", "cifar10", "--data-root", ".", "--num-train", "55"], "--num-train"),
    (["--code-lengths", "16,16"], "--code-lengths"),
    (["--workers", "2"], "--workers"),
    (["--lr", "inf"], "--lr"),
    (["--gt-sigma", "inf"], "--gt-sigma"),
    (["--gcut-limit", "0"], "--gcut-limit"),
    (["--cache-momentum", "nan"], "--cache-momentum"),
    (["--triplet-weight", "-1"], "--triplet-weight"),
    (["--data-root", __file__, "--data", "cifar10"], "--data-root"),
]


@pytest.mark.parametrize(("argv", "flag"), CLI_CASES, ids=[" ".join(c[0]) for c in CLI_CASES])
def test_cli_flag_checked_before_data(tmp_path, argv, flag, capsys, monkeypatch):
    from gg_augment.training.cli import main

    _block_data_loading(monkeypatch)
    with pytest.raises(SystemExit) as exit_info:
        main("hashing", None, [*argv, "--out", str(tmp_path / "out"), "--no-progress"])
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and f"argument {flag}" in lines[0], lines


@pytest.mark.parametrize("where", ["file", "under a file"])
def test_cli_out_that_cannot_be_a_folder(tmp_path, where, capsys, monkeypatch):
    from gg_augment.training.cli import main

    _block_data_loading(monkeypatch)
    (tmp_path / "f").write_text("x")
    out = tmp_path / "f" if where == "file" else tmp_path / "f" / "runs"
    with pytest.raises(SystemExit) as exit_info:
        main("hashing", None, ["--out", str(out), "--no-progress"])
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "argument --out" in lines[0], lines


TINY = ["--limit-train", "64", "--limit-query", "20", "--limit-database", "60", "--batch-size", "32", "--no-progress",
        "--threads", "1", "--code-lengths", "8", "--epochs", "1", "--augment", "gt"]


def test_cli_divergence_names_the_epoch_and_lr(tmp_path, capsys):
    from gg_augment.training.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main("hashing", None, [*TINY, "--lr", "1e12", "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "argument --lr" in lines[0] and "diverged in epoch 1" in lines[0], lines


def test_cli_resume_with_an_empty_final_record_names_it(tmp_path, capsys):
    from gg_augment.training import RunLayout
    from gg_augment.training.cli import main, parse_config

    main("hashing", None, [*TINY, "--out", str(tmp_path)])
    final = RunLayout.of(parse_config("hashing", [*TINY, "--out", str(tmp_path)]).resolved()).final(8)
    final.write_text("")
    with pytest.raises(ValueError, match=rf"{final.name} is empty"):
        main("hashing", None, [*TINY, "--out", str(tmp_path), "--resume"])


def test_cli_data_root_spelled_two_ways_is_one_configuration(tmp_path, monkeypatch):
    from gg_augment.training import RunLayout
    from gg_augment.training.cli import parse_config

    (tmp_path / "cifar").mkdir()
    monkeypatch.chdir(tmp_path)
    relative = parse_config("hashing", ["--data", "cifar10", "--data-root", "cifar"])
    absolute = parse_config("hashing", ["--data", "cifar10", "--data-root", str(tmp_path / "cifar")])
    assert RunLayout.of(relative.resolved()).directory.name == RunLayout.of(absolute.resolved()).directory.name


# -- concurrency ---------------------------------------------------------------------------------

SECOND_RUN = textwrap.dedent(
    """
    import sys
    from gg_augment.training.cli import main
    main("hashing", None, sys.argv[1:])
    """
)


def test_a_second_run_of_one_configuration_is_refused_naming_the_holder(tmp_path):
    from gg_augment.training import RunLayout
    from gg_augment.training.cli import parse_config

    argv = [*TINY, "--out", str(tmp_path)]
    folder = RunLayout.of(parse_config("hashing", argv).resolved()).directory
    with io.lock_run_folder(folder):  # this process plays the first run
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
        second = subprocess.run([sys.executable, "-c", SECOND_RUN, *argv], capture_output=True, text=True, env=env, timeout=1800)
    assert second.returncode == 2, second.stderr[-2000:]
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1 and "argument --out" in lines[0] and f"pid {os.getpid()}" in lines[0], lines


def test_concurrent_atomic_writes_leave_one_whole_file(tmp_path):
    target = tmp_path / "final.json"
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(30):
                io.write_atomic(target, json.dumps({"writer": n, "i": i, "pad": "x" * 5000}))
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    seen = 0
    while any(t.is_alive() for t in threads):
        if target.exists():
            assert io.read_json(target)["pad"] == "x" * 5000  # never torn
            seen += 1
    for thread in threads:
        thread.join()
    assert not errors and list(tmp_path.glob(".*.tmp")) == []
    assert io.read_json(target)["i"] == 29


def test_the_sweep_never_removes_a_temp_file_of_this_process(tmp_path):
    fd, name = __import__("tempfile").mkstemp(dir=tmp_path, prefix=f".x.{os.getpid()}@{io._host()}.", suffix=".tmp")
    os.close(fd)
    assert io.remove_stale_temp_files(tmp_path) == [] and Path(name).exists()
