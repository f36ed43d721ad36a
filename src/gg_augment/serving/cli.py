"""``gg-augment``: train, encode images to codes, index the codes, search the index.

::

    gg-augment train hashing --epochs 1 --out runs/hashing      # any trainer flag after the mode
    gg-augment encode runs/hashing images/ --out codes.npz       # a folder or an image list
    gg-augment index codes.npz --out codes.index
    gg-augment search runs/hashing codes.index queries/ --k 10 --format csv
    gg-augment export runs/hashing --model-file model.pt --onnx encoder.onnx

A bad flag is one line on stderr and exit code 2, before any model or image loads.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import torch

from ..io import write_atomic

__all__ = ["build_parser", "main"]

_TRAIN_MODES = ("hashing", "real")


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {text!r}")
    return value


def _existing(text: str) -> Path:
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"no such file or folder: {text}")
    return path


def _device(text: str) -> str:
    try:
        device = torch.device(text)
    except (RuntimeError, TypeError):
        raise argparse.ArgumentTypeError(f"expected a torch device such as cpu or cuda:0; got {text!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(f"{text!r}, but CUDA is not available here; use cpu")
    if device.type not in ("cpu", "cuda"):
        raise argparse.ArgumentTypeError(f"expected cpu or a CUDA device; got {text!r}")
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(prog="gg-augment", description="Gain from Give Up: train, encode, index, search.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_OneLineParser)
    train = commands.add_parser("train", help="train a model (the trainer's flags follow the mode)", add_help=False)
    train.add_argument("mode", choices=_TRAIN_MODES, help="hashing (DSDH codes) or real (embeddings)")

    model_help = "run folder, --out folder of a run, checkpoint.pt or model export"
    encode = commands.add_parser("encode", help="images -> codes file (.npz)")
    encode.add_argument("model", type=_existing, help=model_help)
    encode.add_argument("images", type=_existing, help="folder of images or image list file")
    encode.add_argument("--out", type=Path, required=True, help="codes file to write (.npz)")
    encode.add_argument("--code-length", type=_positive, help="pick this code length from a run with several")
    encode.add_argument("--batch-size", type=_positive, default=256)
    encode.add_argument("--device", type=_device, default="cpu")

    index = commands.add_parser("index", help="codes file -> saved index: Hamming (hash codes) or cosine")
    index.add_argument("codes", type=_existing, help="codes file written by 'encode'")
    index.add_argument("--approximate", choices=("hnsw",), help="hash codes: also build faiss's HNSW graph, "
                       "which then answers searches (extra faiss)")
    index.add_argument("--out", type=Path, required=True, help="index file to write")

    search = commands.add_parser("search", help="query images -> top-k ids and distances (Hamming, or 1 - cosine)")
    search.add_argument("model", type=_existing, help=model_help)
    search.add_argument("index", type=_existing, help="index file written by 'index'")
    search.add_argument("images", type=_existing, help="folder of query images or image list file")
    search.add_argument("--k", type=_positive, default=10, help="neighbours per query")
    search.add_argument("--format", choices=("json", "csv"), default="json")
    search.add_argument("--out", type=Path, help="file to write (default: standard output)")
    search.add_argument("--code-length", type=_positive)
    search.add_argument("--batch-size", type=_positive, default=256)
    search.add_argument("--device", type=_device, default="cpu")

    export = commands.add_parser("export", help="model-only file, ONNX and/or torch.export program")
    export.add_argument("model", type=_existing, help=model_help)
    export.add_argument("--model-file", type=Path, help="weights + configuration (.pt, or .safetensors)")
    export.add_argument("--onnx", type=Path, help="ONNX file of the encoder (extra onnx)")
    export.add_argument("--program", type=Path, help="torch.export program of the encoder (.pt2)")
    export.add_argument("--code-length", type=_positive)
    return parser


def _names_path(index_path: Path) -> Path:
    """The index's side file: the name (image path) of every id."""
    return index_path.with_name(index_path.name + ".names.json")


def _encode(args: argparse.Namespace) -> None:
    from .loading import load_trained_model

    trained = load_trained_model(args.model, code_length=args.code_length, device=args.device)
    codes, paths = trained.encode_files(args.images, batch_size=args.batch_size)
    stored = (codes > 0) if trained.hashing else codes.float()  # bits: 1 byte each, bool
    buffer = io.BytesIO()
    np.savez(buffer, codes=stored.numpy(), names=np.array([str(p) for p in paths]),
             hashing=np.array(trained.hashing), code_length=np.array(trained.code_length))
    write_atomic(args.out, buffer.getvalue())
    kind = "bits" if trained.hashing else "dimensions"
    print(f"encoded {len(paths)} images to {trained.code_length} {kind}: {args.out}")


def _read_codes(path: Path) -> tuple[np.ndarray, list[str], bool]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            codes, names, hashing = archive["codes"], [str(n) for n in archive["names"]], bool(archive["hashing"])
    except (OSError, ValueError, KeyError) as error:
        raise ValueError(f"codes: {path} is not a codes file written by 'gg-augment encode' ({error})") from error
    return codes, names, hashing


def _index(args: argparse.Namespace) -> None:
    codes, names, hashing = _read_codes(args.codes)
    if hashing:
        from ..hashing import BinaryCodeIndex

        index = BinaryCodeIndex(codes.shape[1], approximate=args.approximate)
        index.add(torch.from_numpy(codes), ids=torch.arange(len(codes)))
        index.save(args.out)
    elif args.approximate:
        raise ValueError(f"--approximate: {args.codes} holds real-valued embeddings; the HNSW graph serves hash codes")
    else:  # embeddings: exact cosine search, unit rows stored once
        unit = torch.nn.functional.normalize(torch.from_numpy(codes).float(), dim=1)
        buffer = io.BytesIO()
        np.savez(buffer, cosine_index=unit.numpy())
        write_atomic(args.out, buffer.getvalue())
    write_atomic(_names_path(args.out), json.dumps(names))
    kind = "bits (Hamming)" if hashing else "dimensions (cosine)"
    print(f"indexed {len(codes)} codes of {codes.shape[1]} {kind}: {args.out}")


def _cosine_index(path: Path) -> torch.Tensor | None:
    """The unit embeddings of a cosine index file, or None for a Hamming index."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            return torch.from_numpy(archive["cosine_index"]) if "cosine_index" in archive.files else None
    except (OSError, ValueError):
        return None


def _nearest(trained: Any, index_path: Path, codes: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(distances, ids) of the ``k`` nearest: Hamming for hash codes, 1 - cosine otherwise."""
    unit = _cosine_index(index_path)
    if trained.hashing:
        if unit is not None:
            raise ValueError(f"index: {index_path} holds real-valued embeddings, but the model makes hash codes")
        from ..hashing import BinaryCodeIndex

        return BinaryCodeIndex.load(index_path).search(codes > 0, k)
    if unit is None:
        raise ValueError(f"index: {index_path} is a Hamming index, but the model makes real-valued embeddings")
    similarity = torch.nn.functional.normalize(codes.float(), dim=1) @ unit.T
    top, ids = similarity.topk(min(k, unit.shape[0]), dim=1)
    return (1.0 - top).clamp_min(0.0), ids


def _rows(query_names: list[str], distances: torch.Tensor, ids: torch.Tensor, names: list[str]) -> list[dict[str, Any]]:
    rows = []
    for query, row_distances, row_ids in zip(query_names, distances.tolist(), ids.tolist()):
        for rank, (distance, found) in enumerate(zip(row_distances, row_ids), start=1):
            if found < 0:  # faiss pads with -1 when the index holds fewer than k codes
                continue
            name = names[found] if 0 <= found < len(names) else ""
            distance = round(distance, 6) if isinstance(distance, float) else distance
            rows.append({"query": query, "rank": rank, "id": found, "distance": distance, "name": name})
    return rows


def _search(args: argparse.Namespace) -> None:
    from .loading import load_trained_model

    trained = load_trained_model(args.model, code_length=args.code_length, device=args.device)
    names_file = _names_path(args.index)
    names = json.loads(names_file.read_text()) if names_file.is_file() else []
    codes, paths = trained.encode_files(args.images, batch_size=args.batch_size)
    distances, ids = _nearest(trained, args.index, codes, args.k)
    rows = _rows([str(p) for p in paths], distances.cpu(), ids.cpu(), names)
    if args.format == "json":
        text = json.dumps(rows, indent=1) + "\n"
    else:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=["query", "rank", "id", "distance", "name"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        text = buffer.getvalue()
    if args.out is None:
        sys.stdout.write(text)
    else:
        write_atomic(args.out, text)


def _export(args: argparse.Namespace) -> None:
    from .export import export_onnx, export_program
    from .loading import load_trained_model, save_model

    trained = load_trained_model(args.model, code_length=args.code_length)
    if args.model_file is not None:
        print(f"model file: {save_model(trained, args.model_file)}")
    if args.onnx is not None:
        print(f"ONNX: {export_onnx(trained, args.onnx)}")
    if args.program is not None:
        export_program(trained, args.program)
        print(f"torch.export program: {args.program}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``gg-augment``; returns the exit code (2 for a bad flag, 1 for a failure)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if argv[:1] == ["train"]:
        if argv[1:2] in (["-h"], ["--help"]):
            print("usage: gg-augment train {hashing,real} [trainer flags]; gg-augment train hashing --help lists them")
            return 0
        if len(argv) < 2 or argv[1] not in _TRAIN_MODES:
            got = repr(argv[1]) if len(argv) > 1 else "nothing"
            parser.error(f"argument train: mode must be one of {list(_TRAIN_MODES)}; got {got}")
        from ..training.cli import main as train_main

        train_main(argv[1], argv=argv[2:])
        return 0
    args = parser.parse_args(argv)
    if args.command == "export" and not (args.model_file or args.onnx or args.program):
        parser.error("argument export: give at least one of --model-file, --onnx, --program")
    handlers = {"encode": _encode, "index": _index, "search": _search, "export": _export}
    try:
        handlers[args.command](args)
    except (ValueError, FileNotFoundError, ImportError) as error:
        print(f"gg-augment {args.command}: error: {error}", file=sys.stderr)
        return 1
    return 0
