"""Rebuild the embedded Fashion-MNIST subset shipped inside ``gg_augment``.

The source is the original IDX files that Debian's ``dataset-fashion-mnist`` package installs
under ``/usr/share/datasets/fashion-mnist/`` (gzipped or plain). The script

1. parses the four IDX files itself (magic number, big-endian dimensions, size checks);
2. pools the 60,000 training and 10,000 test images (in that order: pool index = train index,
   then 60,000 + test index) and draws ``--per-class`` images of every class with seed 0;
3. splits that subset with :func:`gg_augment.data.split_class_balanced` (seed 0) into
   100 query + 500 train images per class, the rest being the database, so that
   ``load_embedded(seed=0)`` re-draws exactly the stored split;
4. writes a compressed ``.npz`` with fixed zip timestamps, so that rebuilding gives a
   byte-identical file, and refuses to keep a file larger than ``--max-bytes``.

Usage::

    python scripts/build_embedded_dataset.py
    python scripts/build_embedded_dataset.py --source /path/to/fashion-mnist --per-class 1200
"""

from __future__ import annotations

import argparse
import gzip
import io
import sys
import zipfile
from pathlib import Path

import numpy as np
import torch

from gg_augment.data import split_class_balanced

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = Path("/usr/share/datasets/fashion-mnist")
DEFAULT_OUTPUT = (
    REPO_ROOT / "src" / "gg_augment" / "data" / "_embedded" / "fashion_mnist_subset.npz"
)

SOURCE_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
SPLIT_CODES = {"query": 0, "train": 1, "database": 2}

# IDX type byte -> element dtype (all big-endian on disk).
IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
GZIP_MAGIC = b"\x1f\x8b"


def find_idx_file(source: Path, stem: str) -> Path:
    """The IDX file ``stem`` in ``source``, gzipped (``.gz``) or plain."""
    for candidate in (source / f"{stem}.gz", source / stem):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"IDX file {stem}[.gz] not found in {source}")


def read_idx(path: Path) -> np.ndarray:
    """Parse an IDX file (optionally gzipped) into an array in native byte order.

    The format is two zero bytes, a type byte, a byte giving the number of dimensions, one
    big-endian uint32 per dimension, then the data in C order.

    Raises:
        ValueError: If the magic number, type, dimensions or payload size are wrong.
    """
    raw = path.read_bytes()
    if raw[:2] == GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise ValueError(f"{path}: corrupt gzip stream ({err})") from err
    if len(raw) < 4:
        raise ValueError(f"{path}: too short for an IDX header; got {len(raw)} bytes")
    if raw[0] != 0 or raw[1] != 0:
        raise ValueError(
            f"{path}: bad IDX magic number: expected two zero bytes; got {raw[:4].hex()}"
        )
    type_code, ndim = raw[2], raw[3]
    if type_code not in IDX_DTYPES:
        raise ValueError(f"{path}: unknown IDX type byte 0x{type_code:02x}")
    if ndim == 0:
        raise ValueError(f"{path}: IDX file declares 0 dimensions")
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise ValueError(f"{path}: header truncated: expected {header_size} bytes; got {len(raw)}")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[type_code]
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    payload = len(raw) - header_size
    if payload != expected:
        raise ValueError(
            f"{path}: payload size mismatch for dims {dims}: expected {expected} bytes; got {payload}"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header_size).reshape(dims)
    return data.astype(dtype.newbyteorder("="), copy=True)


def read_pair(source: Path, images_key: str, labels_key: str) -> tuple[np.ndarray, np.ndarray]:
    images_path = find_idx_file(source, SOURCE_FILES[images_key])
    labels_path = find_idx_file(source, SOURCE_FILES[labels_key])
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(
            f"{images_path}: expected uint8 images (N, 28, 28); got {images.dtype} {images.shape}"
        )
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise ValueError(
            f"{labels_path}: expected uint8 labels (N,); got {labels.dtype} {labels.shape}"
        )
    if labels.shape[0] != images.shape[0]:
        raise ValueError(
            f"{labels_path}: {labels.shape[0]} labels for {images.shape[0]} images in {images_path}"
        )
    if labels.size and labels.max() >= len(CLASS_NAMES):
        raise ValueError(
            f"{labels_path}: labels must lie in [0, {len(CLASS_NAMES) - 1}]; got max {labels.max()}"
        )
    return images, labels


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Like ``np.savez_compressed``, but with fixed timestamps so rebuilds are byte-identical."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for key, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.asarray(array), allow_pickle=False)
            member = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            member.compress_type = zipfile.ZIP_DEFLATED
            member.external_attr = 0o644 << 16
            archive.writestr(member, buffer.getvalue(), compresslevel=9)
    tmp.replace(path)


def build(source: Path, output: Path, per_class: int, seed: int, query: int, train: int) -> dict:
    train_images, train_labels = read_pair(source, "train_images", "train_labels")
    test_images, test_labels = read_pair(source, "test_images", "test_labels")
    pool_images = np.concatenate([train_images, test_images])
    pool_labels = np.concatenate([train_labels, test_labels])

    (subset,) = split_class_balanced(
        torch.from_numpy(pool_labels.astype(np.int64)),
        (per_class,),
        seed=seed,
        num_classes=len(CLASS_NAMES),
        rest=False,
    )
    source_index = subset.numpy()
    labels = pool_labels[source_index]
    query_idx, train_idx, database_idx = split_class_balanced(
        torch.from_numpy(labels.astype(np.int64)),
        (query, train),
        seed=seed,
        num_classes=len(CLASS_NAMES),
    )
    split = np.full(labels.shape, SPLIT_CODES["database"], dtype=np.uint8)
    split[query_idx.numpy()] = SPLIT_CODES["query"]
    split[train_idx.numpy()] = SPLIT_CODES["train"]

    arrays = {
        "images": pool_images[source_index],
        "labels": labels.astype(np.uint8),
        "split": split,
        "seed": np.array(seed, dtype=np.int64),
        "source_index": source_index.astype(np.int32),
        "source_files": np.array(
            [find_idx_file(source, stem).name for stem in SOURCE_FILES.values()]
        ),
        "class_names": np.array(CLASS_NAMES),
        "split_names": np.array(list(SPLIT_CODES)),
        "per_class": np.array([query, train, per_class - query - train], dtype=np.int64),
    }
    write_npz(output, arrays)
    return {
        "images": int(labels.shape[0]),
        "query": int(len(query_idx)),
        "train": int(len(train_idx)),
        "database": int(len(database_idx)),
        "bytes": output.stat().st_size,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="folder of IDX files")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="npz to write")
    parser.add_argument("--per-class", type=int, default=1200, help="images kept per class")
    parser.add_argument("--query-per-class", type=int, default=100)
    parser.add_argument("--train-per-class", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-bytes", type=int, default=8_000_000, help="largest file size kept")
    args = parser.parse_args(argv)

    if args.query_per_class + args.train_per_class > args.per_class:
        parser.error("--query-per-class + --train-per-class must not exceed --per-class")
    summary = build(
        args.source,
        args.output,
        args.per_class,
        args.seed,
        args.query_per_class,
        args.train_per_class,
    )
    print(
        f"wrote {args.output}: {summary['images']} images "
        f"(query {summary['query']}, train {summary['train']}, database {summary['database']}), "
        f"{summary['bytes'] / 1e6:.2f} MB"
    )
    if summary["bytes"] > args.max_bytes:
        args.output.unlink()
        print(
            f"error: {summary['bytes']} bytes exceeds --max-bytes {args.max_bytes}; file removed",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
