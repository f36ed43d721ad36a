"""Image-list datasets in the deep-hashing list format (NUS-WIDE-21, ImageNet-100, MS-COCO).

Each line of a list file names one image and its labels, separated by whitespace::

    images/0001.jpg 0 1 0 0 1 ... 0

The first token is the image path (relative to a root folder, or absolute); the remaining
tokens are a 0/1 vector with one entry per label (multi-hot for NUS-WIDE and MS-COCO, one-hot
for ImageNet-100). The splits are fixed by three list files (train, query, database).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from .._checks import check_int, check_tensor, pair
from ._validate import as_path, require_file
from .retrieval import RetrievalSplits, canonical_position

__all__ = [
    "IMAGELIST_PRESETS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ImageListDataset",
    "ImageListPreset",
    "load_imagelist",
    "read_image_list",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ImageListPreset:
    """A named image-list benchmark: its label count is checked against every list file."""

    name: str
    num_classes: int
    description: str


IMAGELIST_PRESETS: dict[str, ImageListPreset] = {
    preset.name: preset
    for preset in (
        ImageListPreset("nus-wide-21", 21, "NUS-WIDE, the 21 most frequent concepts (multi-label)"),
        ImageListPreset("imagenet-100", 100, "ImageNet-100 subset (one-hot labels)"),
        ImageListPreset("coco", 80, "MS-COCO, 80 object categories (multi-label)"),
    )
}


_LABEL = re.compile(r"\+?[01](\.0*)?")
_TOKEN = re.compile(r"\S+")


def _is_label(token: str) -> bool:
    # Some lists write labels as floats; accept "1.0" but nothing that is not 0 or 1.
    return _LABEL.fullmatch(token) is not None


def _read_text(path: Path) -> str:
    """The list's text; UTF-8 with or without a byte-order mark, else an error naming the line."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ValueError(
            f"{path}, line {line}: the list is not UTF-8 text (byte {data[error.start]:#04x} at offset "
            f"{error.start}); save it as UTF-8, e.g. iconv -f latin1 -t utf-8"
        ) from None


def _split_line(path: Path, number: int, line: str, width: int | None, where: str) -> tuple[str, list[str]]:
    """``(image path, label tokens)`` of one non-blank line; the labels are the trailing 0/1
    tokens, so an image path may contain spaces (unless its last word is itself 0 or 1)."""
    tokens = list(_TOKEN.finditer(line))
    count = 0  # trailing label tokens
    while count < len(tokens) and _is_label(tokens[-1 - count].group()):
        count += 1
    count = min(count, len(tokens) - 1)  # the first token is always (part of) the path
    if len(tokens) == 1:
        raise ValueError(
            f"{path}, line {number}: expected an image path followed by a 0/1 label vector; "
            f"got only {tokens[0].group()!r}"
        )
    expected = count if width is None else width
    if count == expected and count > 0:
        image = line[tokens[0].start() : tokens[-1 - count].end()]
        return image, [token.group() for token in tokens[-count:]]
    if count > expected or len(tokens) - 1 < expected:
        got = count if count > expected else len(tokens) - 1
        if where:
            raise ValueError(f"{path}, line {number}: label vector has {got} entries; expected {expected}{where}")
        raise ValueError(f"{path}, line {number}: expected {expected} labels per line; got {got}")
    bad = tokens[-1 - count].group()
    hint = ""
    if count:
        image = line[tokens[0].start() : tokens[-1 - count].end()]
        hint = f" (or the image path is {image!r} and the line has {count} labels, not {expected})"
    raise ValueError(f"{path}, line {number}: labels must be 0 or 1; got {bad!r}{hint}")


def read_image_list(
    list_file: str | Path, num_classes: int | None = None
) -> tuple[list[str], Tensor, list[int]]:
    """Parse and validate a list file.

    Each non-blank line is an image path and then its 0/1 labels, separated by whitespace.
    The labels are read from the end of the line, so a path may contain spaces, as long as
    its last space-separated word is not itself ``0`` or ``1``. The file is UTF-8 (a leading
    byte-order mark is ignored).

    Args:
        list_file: Path of the list file.
        num_classes: Expected length of every label vector; ``None`` takes the first line's.

    Returns:
        ``(paths, labels, line_numbers)``: the image paths as written, a float32 0/1 tensor
        (N, L), and the 1-based line number of each entry (blank lines are skipped).

    Raises:
        FileNotFoundError: If the list file does not exist.
        ValueError: If the list is empty or not UTF-8, or a line (named by number) has no
            labels, a label other than 0/1, or a label vector whose length differs from the
            first line's or from ``num_classes``.
    """
    path = require_file(as_path(list_file, "list_file"), "image list file")
    if num_classes is not None:
        num_classes = check_int(num_classes, "num_classes", minimum=1)
    paths: list[str] = []
    rows: list[list[float]] = []
    line_numbers: list[int] = []
    width = num_classes
    where = ""  # which line fixed the width, once the first line has
    for number, line in enumerate(_read_text(path).split("\n"), start=1):
        if not line.strip():
            continue
        image, values = _split_line(path, number, line, width, where)
        if width is None:
            width, where = len(values), f" like line {number}"
        paths.append(image)
        rows.append([1.0 if float(v) == 1.0 else 0.0 for v in values])
        line_numbers.append(number)
    if not paths:
        raise ValueError(f"{path}: image list is empty; expected one 'path 0 1 ...' line per image")
    labels = torch.from_numpy(np.array(rows, dtype=np.float32))
    return paths, labels, line_numbers


_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in _SIXTEEN_BIT or (image.mode == "I" and image.format == "PNG"):
        # PNG stores at most 16 bits; scale 0..65535 onto 0..255 instead of clipping.
        values = np.asarray(image).astype(np.float32)
        grey = np.clip(np.rint(values / 257.0), 0, 255).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    if image.mode in ("I", "F"):
        raise ValueError(
            f"{image.mode!r} ({'32-bit integer' if image.mode == 'I' else 'float'}) images have no "
            "fixed value range to scale to 8 bits; save them as 8- or 16-bit"
        )
    return image.convert("RGB")


class ImageListDataset(Dataset):
    """Images named in a list file, loaded lazily with PIL; items are ``(image, label, index)``.

    The list is parsed and validated when the dataset is built; images are opened only when an
    item is read. By default an image is converted to RGB, resized to ``image_size``
    (bilinear), scaled to [0, 1] and normalised with ``mean`` / ``std``.

    Args:
        list_file: List file in the deep-hashing format (see the module docstring).
        root: Folder the image paths are relative to; defaults to the list file's folder.
        transform: Callable taking the RGB PIL image and returning a tensor (C, H, W); it
            replaces the default resize / to-tensor / normalise pipeline.
        image_size: Output side, or ``(H, W)``, of the default pipeline.
        normalize: Normalise in the default pipeline; otherwise values are in [0, 1].
        mean: Per-channel mean of the default pipeline (ImageNet's by default).
        std: Per-channel std of the default pipeline (ImageNet's by default).
        num_classes: Expected label vector length (e.g. 21 for NUS-WIDE-21); ``None`` accepts
            the first line's.
        check_files: Check at construction that every image file exists, instead of failing
            on first access.

    Raises:
        FileNotFoundError: If the list file, or (with ``check_files``) an image, is missing.
        ValueError: If the list is empty or malformed (the message names the line).

    Shape:
        - labels: (N, L) float32 0/1
        - item: ``(image (3, H, W) float32, label (L,) float32, index int)``

    Examples:
        >>> dataset = ImageListDataset("nus_wide/test.txt", num_classes=21)  # doctest: +SKIP
        >>> image, label, index = dataset[0]  # doctest: +SKIP
    """

    def __init__(
        self,
        list_file: str | Path,
        root: str | Path | None = None,
        transform: Callable[[Image.Image], Tensor] | None = None,
        image_size: int | tuple[int, int] = 224,
        *,
        normalize: bool = True,
        mean: tuple[float, ...] = IMAGENET_MEAN,
        std: tuple[float, ...] = IMAGENET_STD,
        num_classes: int | None = None,
        check_files: bool = False,
    ) -> None:
        self.list_file = as_path(list_file, "list_file")
        self.root = self.list_file.parent if root is None else as_path(root, "root")
        if transform is not None and not callable(transform):
            raise TypeError(f"transform must be callable or None; got {type(transform).__name__}")
        self.transform = transform
        self.image_size = pair(image_size, "image_size")
        if not isinstance(normalize, bool):
            raise TypeError(f"normalize must be a bool; got {type(normalize).__name__}")
        self.normalize = normalize
        mean, std = tuple(float(m) for m in mean), tuple(float(s) for s in std)
        if len(mean) != 3 or len(std) != 3:
            raise ValueError(
                f"mean and std must have 3 entries (RGB); got {len(mean)} and {len(std)}"
            )
        if min(std) <= 0:
            raise ValueError(f"std must be positive; got {std}")
        self.mean, self.std = mean, std
        tokens, self.labels, self._line_numbers = read_image_list(self.list_file, num_classes)
        self.paths = [self.root / token for token in tokens]
        if check_files:
            for position, image_path in enumerate(self.paths):
                if not image_path.is_file():
                    raise FileNotFoundError(self._missing_message(position))

    @property
    def num_classes(self) -> int:
        """Length of the label vectors."""
        return self.labels.shape[1]

    def __len__(self) -> int:
        return len(self.paths)

    def _missing_message(self, position: int) -> str:
        return (
            f"image not found: {self.paths[position]} "
            f"(line {self._line_numbers[position]} of {self.list_file})"
        )

    def load_image(self, index: int) -> Image.Image:
        """The RGB PIL image of entry ``index``, before any transform.

        8-bit images are converted to RGB as PIL does; 16-bit greyscale images (PNG ``I;16``)
        are scaled to 8 bits (value / 257), not clipped at 255 as ``convert("RGB")`` would.
        """
        image_path = self.paths[index]
        try:
            with Image.open(image_path) as image:
                return _to_rgb(image)
        except FileNotFoundError:
            raise FileNotFoundError(self._missing_message(index)) from None
        except Exception as err:  # PIL raises many types (OSError, SyntaxError, DecompressionBombError...)
            raise ValueError(
                f"cannot read image {image_path} (line {self._line_numbers[index]} of "
                f"{self.list_file}): {type(err).__name__}: {err}"
            ) from err

    def _default_transform(self, image: Image.Image) -> Tensor:
        height, width = self.image_size
        if image.size != (width, height):
            image = image.resize((width, height), Image.Resampling.BILINEAR)
        tensor = torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1)
        tensor = tensor.float().div_(255.0)
        if self.normalize:
            mean = torch.tensor(self.mean).view(3, 1, 1)
            std = torch.tensor(self.std).view(3, 1, 1)
            tensor = tensor.sub_(mean).div_(std)
        return tensor

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor, int]:
        position = canonical_position(index, len(self))
        image = self.load_image(position)
        if self.transform is not None:
            try:
                tensor = check_tensor(self.transform(image), "transform(image)")
            except Exception as err:
                if hasattr(err, "add_note"):  # Python 3.11+: keep the type, say which image
                    err.add_note(f"while transforming {self.paths[position]} (line {self._line_numbers[position]} of {self.list_file})")
                raise
        else:
            tensor = self._default_transform(image)
        return tensor, self.labels[position], position

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(list_file={str(self.list_file)!r}, size={len(self)}, "
            f"num_classes={self.num_classes}, image_size={self.image_size})"
        )


def load_imagelist(
    root: str | Path,
    train_list: str | Path,
    query_list: str | Path,
    database_list: str | Path,
    *,
    preset: str | None = None,
    num_classes: int | None = None,
    image_size: int | tuple[int, int] = 224,
    transform: Callable[[Image.Image], Tensor] | None = None,
    normalize: bool = True,
    class_names: tuple[str, ...] | None = None,
    check_files: bool = False,
) -> RetrievalSplits:
    """Build the three retrieval sets of an image-list benchmark.

    Args:
        root: Folder the image paths in the lists are relative to; list paths that are
            relative are looked up here too.
        train_list: List file of the training set.
        query_list: List file of the queries (often called ``test.txt``).
        database_list: List file of the retrieval database.
        preset: ``"nus-wide-21"`` (21 labels), ``"imagenet-100"`` (100) or ``"coco"`` (80);
            sets and checks the label count and names the dataset in :meth:`~RetrievalSplits.info`.
        num_classes: Expected label count when no preset is given.
        image_size: Output side, or ``(H, W)``.
        transform: Replaces the default pipeline, as in :class:`ImageListDataset`.
        normalize: Normalise with the ImageNet mean and std.
        class_names: One name per label column; defaults to ``("label_0", ...)``.
        check_files: Check that every image file exists up front.

    Returns:
        :class:`RetrievalSplits` of :class:`ImageListDataset`; ``seed`` is ``None`` because
        the list files fix the split.

    Raises:
        FileNotFoundError: If ``root`` or a list file is missing.
        ValueError: If a list is malformed or its label count does not match the preset,
            ``num_classes`` or the other lists.

    Examples:
        >>> splits = load_imagelist(  # doctest: +SKIP
        ...     "~/data/nus_wide", "train.txt", "test.txt", "database.txt", preset="nus-wide-21"
        ... )
    """
    root = as_path(root, "root")
    if not root.is_dir():
        raise FileNotFoundError(f"image-list root folder not found: {root}")
    name = "imagelist"
    if preset is not None:
        if preset not in IMAGELIST_PRESETS:
            raise ValueError(f"preset must be one of {sorted(IMAGELIST_PRESETS)}; got {preset!r}")
        expected = IMAGELIST_PRESETS[preset].num_classes
        if num_classes is not None and num_classes != expected:
            raise ValueError(
                f"num_classes={num_classes} contradicts preset {preset!r}, which has {expected} labels"
            )
        num_classes, name = expected, preset

    def build(list_file: str | Path, argument: str) -> ImageListDataset:
        path = as_path(list_file, argument)
        return ImageListDataset(
            path if path.is_absolute() else root / path,
            root=root,
            transform=transform,
            image_size=image_size,
            normalize=normalize,
            num_classes=num_classes,
            check_files=check_files,
        )

    train = build(train_list, "train_list")
    # Without a preset the first list fixes the label count the other two must match.
    num_classes = train.num_classes
    query = build(query_list, "query_list")
    database = build(database_list, "database_list")
    if class_names is None:
        class_names = tuple(f"label_{i}" for i in range(num_classes))
    elif len(class_names) != num_classes:
        raise ValueError(f"class_names must have {num_classes} entries; got {len(class_names)}")
    return RetrievalSplits(
        query=query,
        train=train,
        database=database,
        num_classes=num_classes,
        class_names=tuple(str(c) for c in class_names),
        seed=None,
        mean=train.mean if normalize else (0.0, 0.0, 0.0),
        std=train.std if normalize else (1.0, 1.0, 1.0),
        name=name,
        details={
            "root": str(root),
            "lists": {
                "train": str(train.list_file),
                "query": str(query.list_file),
                "database": str(database.list_file),
            },
            "image_size": list(train.image_size),
            "normalized": normalize,
        },
    )
