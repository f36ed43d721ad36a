"""Load a trained model without the trainer: from a run folder, a checkpoint or an export.

A trainer checkpoint (``<out>/<tag>/bits32/checkpoint.pt``) holds the model together with the
optimizer, the RNG states and the run's configuration. :func:`save_model` keeps only what
serving needs: the weights, the configuration that rebuilds the network, and the split record
whose mean and std preprocess new images. :func:`load_trained_model` reads any of them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from .._checks import check_choice, check_int, check_tensor
from ..hashing import sign_codes
from ..io import load_checkpoint, save_checkpoint, write_atomic
from ..models import RetrievalNet, build_backbone
from .images import centre_crop, list_images, load_images

if TYPE_CHECKING:  # the training layer loads when a model does, not with gg_augment
    from ..training import TrainConfig

__all__ = ["EXPORT_FORMAT", "TrainedModel", "load_trained_model", "rebuild", "save_model"]

#: Marks a model-only export (``"format"`` key of the ``.pt`` file, metadata of safetensors).
EXPORT_FORMAT = "gg-augment-model/1"
_CHECKPOINT = "checkpoint.pt"
_EXPORT_NAMES = ("model.safetensors", "model.pt")


@dataclass
class TrainedModel:
    """A trained retrieval network in eval mode, with what it needs to encode new images.

    Attributes:
        model: The network (:class:`~gg_augment.RetrievalNet`), in eval mode on ``device``.
        config: The run's :class:`~gg_augment.training.TrainConfig`.
        code_length: Bits (hashing) or embedding size (real-valued).
        split: The run's split record: ``mean``/``std`` (and ``channels``) preprocess images.
        source: The file the weights came from.
    """

    model: nn.Module
    config: TrainConfig
    code_length: int
    split: dict[str, Any] = field(default_factory=dict)
    source: Path | None = None

    @property
    def hashing(self) -> bool:
        """True for ±1 hash codes, False for real-valued embeddings."""
        return self.config.hashing

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def channels(self) -> int:
        return int(self.split.get("channels", len(self.split.get("mean", (0, 0, 0)))))

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the images :meth:`encode` takes."""
        return (self.channels, self.config.image_size, self.config.image_size)

    @torch.no_grad()
    def encode(self, images: Tensor, batch_size: int = 256) -> Tensor:
        """Codes of preprocessed images: ±1 floats (hashing) or embeddings (real-valued).

        Args:
            images: (N, C, H, W) float images normalised as in training (as
                :meth:`load_images` or the run's data loader gives them).
            batch_size: Images per forward pass.

        Returns:
            (N, code_length) on the model's device.
        """
        images = check_tensor(images, "images")
        if images.ndim != 4 or tuple(images.shape[1:]) != self.input_shape:
            raise ValueError(f"images must have shape (N, {', '.join(map(str, self.input_shape))}); got {tuple(images.shape)}")
        if not images.is_floating_point():
            raise TypeError(f"images must be a float tensor (normalised as in training); got {images.dtype}")
        batch_size = check_int(batch_size, "batch_size", minimum=1)
        self.model.eval()
        device = self.device
        parts = [self.model(images[i : i + batch_size].to(device)) for i in range(0, images.shape[0], batch_size)]
        outputs = torch.cat(parts) if parts else torch.empty(0, self.code_length, device=device)
        return sign_codes(outputs) if self.hashing else outputs

    def split_images(self, split: str = "query", limit: int = 0) -> tuple[Tensor, Tensor]:
        """``(images, labels)`` of one of the run's own splits, prepared as the run saw them
        (the first ``limit``; 0 for all): embedded data, CIFAR-10 or the image lists."""
        from .. import data

        check_choice(split, "split", ("query", "train", "database"))
        limit = check_int(limit, "limit", minimum=0)
        config = self.config
        if config.data == "embedded":
            splits: Any = data.load_embedded(image_size=config.image_size, channels=self.channels)
        elif config.data_root is None:
            raise ValueError(f"the run's data {config.data!r} needs its data_root; the stored config has none")
        elif config.data == "cifar10":
            splits = data.load_cifar10(config.data_root, num_query=config.num_query, num_train=config.num_train,
                                       database=config.database, seed=config.seed)
        else:
            root = config.data_root
            preset = None if config.imagelist_preset == "auto" else config.imagelist_preset
            splits = data.load_imagelist(root, root / "train.txt", root / "query.txt", root / "database.txt",
                                         preset=preset, image_size=config.image_size)
        dataset = getattr(splits, split)
        count = min(limit or len(dataset), len(dataset))
        if hasattr(dataset, "tensors"):
            images, labels = (t[:count] for t in dataset.tensors)
        else:  # image lists load lazily
            items = [dataset[i] for i in range(count)]
            images, labels = torch.stack([i[0] for i in items]), torch.stack([torch.as_tensor(i[1]) for i in items])
        if config.settings().base_transform == "flip":
            images = centre_crop(images, config.image_size)
        return images, labels

    def load_images(self, paths: Sequence[str | os.PathLike[str]]) -> Tensor:
        """Image files as the run's training images: resized, scaled and normalised."""
        return load_images(paths, self.config, self.split)

    def encode_files(self, source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], batch_size: int = 256) -> tuple[Tensor, list[Path]]:
        """Codes of image files (a folder, an image list file or a sequence of paths), read
        ``batch_size`` at a time; returns ``(codes on the CPU, the paths in order)``."""
        paths = list_images(source) if isinstance(source, (str, os.PathLike)) else [Path(p) for p in source]
        batch_size = check_int(batch_size, "batch_size", minimum=1)
        chunks = [self.encode(self.load_images(paths[i : i + batch_size])).cpu() for i in range(0, len(paths), batch_size)]
        return (torch.cat(chunks) if chunks else torch.empty(0, self.code_length)), paths


def _payload(loaded: TrainedModel) -> tuple[dict[str, Any], dict[str, Tensor]]:
    info = {
        "format": EXPORT_FORMAT,
        "config": {**loaded.config.to_dict(), "code_length": loaded.code_length},
        "split": loaded.split,
    }
    state = {key: value.detach().cpu().contiguous() for key, value in loaded.model.state_dict().items()}
    return info, state


def save_model(loaded: TrainedModel, path: str | os.PathLike[str]) -> Path:
    """Write the model alone: weights plus the configuration that rebuilds it (atomically).

    ``*.safetensors`` uses the ``safetensors`` package (extra ``safetensors``), the
    configuration in its metadata; any other name is a ``torch.save`` file of plain
    dicts, lists, numbers and tensors, which ``torch.load(..., weights_only=True)`` reads.
    Either is about a third of the trainer's checkpoint and loads with
    :func:`load_trained_model`.
    """
    path = Path(path)
    info, state = _payload(loaded)
    if path.suffix == ".safetensors":
        try:
            from safetensors.torch import save
        except ImportError as error:
            raise ImportError(f"saving {path.name} needs safetensors (extra 'safetensors'): pip install safetensors; {error}") from error
        write_atomic(path, save(state, metadata={"gg_augment": json.dumps(info)}))
    else:
        save_checkpoint({**info, "state_dict": state}, path)
    return path


def _candidates(folder: Path) -> list[Path]:
    """Model files under a run folder: ``<code folder>/checkpoint.pt`` or an export, one per code
    folder (an export wins over the checkpoint), at most two levels down."""
    found = []
    for code_folder in sorted({folder, *folder.glob("*"), *folder.glob("*/*")}):
        if code_folder.is_dir():
            names = [code_folder / name for name in (*_EXPORT_NAMES, _CHECKPOINT)]
            existing = [p for p in names if p.is_file()]
            if existing:
                found.append(existing[0])
    return found


def _resolve(source: Path, code_length: int | None) -> Path:
    if source.is_file():
        return source
    if not source.is_dir():
        raise FileNotFoundError(f"run_folder_or_checkpoint: no such file or folder: {source}")
    found = _candidates(source)
    if code_length is not None:
        found = [p for p in found if p.parent.name in (f"bits{code_length}", f"dim{code_length}")]
    if len(found) == 1:
        return found[0]
    wanted = f" for code_length={code_length}" if code_length is not None else ""
    if not found:
        raise FileNotFoundError(f"run_folder_or_checkpoint: no {_CHECKPOINT} or model export{wanted} under {source}")
    listed = ", ".join(str(p.relative_to(source)) for p in found)
    raise ValueError(f"run_folder_or_checkpoint: {source} holds several models ({listed}); pass code_length= or one file")


def _read(path: Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, Tensor]]:
    """(config dict with ``code_length``, split record, state dict) of any supported file."""
    if path.suffix == ".safetensors":
        try:
            from safetensors import safe_open
        except ImportError as error:
            raise ImportError(f"reading {path.name} needs safetensors (extra 'safetensors'): pip install safetensors; {error}") from error
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            state = {key: handle.get_tensor(key) for key in handle.keys()}
        if "gg_augment" not in metadata:
            raise ValueError(f"{path} is not a gg-augment model export (no 'gg_augment' metadata)")
        info = json.loads(metadata["gg_augment"])
        return info["config"], info.get("split", {}), state
    stored = load_checkpoint(path)
    if stored.get("format") == EXPORT_FORMAT:
        return stored["config"], stored.get("split", {}), stored["state_dict"]
    if "model" in stored and "config" in stored:
        return stored["config"], stored.get("split", {}), stored["model"]
    raise ValueError(f"{path} is neither a trainer checkpoint nor a gg-augment model export (keys {sorted(stored)})")


def rebuild(config: TrainConfig, code_length: int, channels: int = 3, *, pretrained: bool = False) -> RetrievalNet:
    """The run's network, untrained: its backbone, head placement and code length.

    ``pretrained=True`` loads the backbone's ImageNet weights (the frozen attention model of
    ``attention_model="imagenet"``); otherwise none are fetched, as trained weights replace them.
    """
    logits = config.settings().head == "logits" and config.arch != "small"
    backbone, width = build_backbone(config.arch, pretrained, config.image_size, channels, logits=logits)
    return RetrievalNet(backbone, width, code_length, hashing=config.hashing)


def load_trained_model(
    run_folder_or_checkpoint: str | os.PathLike[str],
    *,
    code_length: int | None = None,
    device: str | torch.device = "cpu",
) -> TrainedModel:
    """Load a trained model for retrieval, in eval mode.

    Args:
        run_folder_or_checkpoint: A trainer's ``checkpoint.pt``, a :func:`save_model` file, a
            code folder (``bits32``), a run folder or the trainer's ``--out`` folder; a folder
            must hold one model, or ``code_length`` picks it.
        code_length: Bits or embedding size to pick (and check, for a file).
        device: Where the model lives.

    Raises:
        FileNotFoundError: Nothing to load at that path.
        ValueError: Several models and no ``code_length``; a damaged or foreign file.

    Examples:
        >>> trained = load_trained_model("runs/hashing", code_length=32)  # doctest: +SKIP
        >>> codes = trained.encode(images)                                # doctest: +SKIP
    """
    if code_length is not None:
        code_length = check_int(code_length, "code_length", minimum=1)
    path = _resolve(Path(run_folder_or_checkpoint), code_length)
    stored, split, state = _read(path)
    stored_length = int(stored.get("code_length", 0))
    if code_length is not None and stored_length != code_length:
        raise ValueError(f"code_length: {path} holds a {stored_length}-long model, not {code_length}")
    from ..training import TrainConfig

    names = {f.name for f in fields(TrainConfig)}
    config = replace(TrainConfig(**{k: v for k, v in stored.items() if k in names}), device=str(device))
    channels = int(split.get("channels", 3))
    model = rebuild(config, stored_length, channels)
    model.load_state_dict(state)
    model.to(device).eval()
    return TrainedModel(model=model, config=config, code_length=stored_length, split=dict(split), source=path)
