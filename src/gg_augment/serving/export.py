"""The trained encoder as a graph: ONNX (extra ``onnx``) and ``torch.export``.

Both take :class:`CodeEncoder`, which ends in the codes themselves (±1 for hashing), so a
runtime that never saw PyTorch gives the same codes as :meth:`TrainedModel.encode`.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import Tensor, nn

from ..io import write_atomic
from .loading import TrainedModel

__all__ = ["CodeEncoder", "export_onnx", "export_program"]


class CodeEncoder(nn.Module):
    """Images -> codes: the network, then sign (±1, 0 -> +1) for a hashing model.

    Shape:
        - images: (N, C, H, W), normalised as in training
        - output: (N, code_length)
    """

    def __init__(self, model: nn.Module, hashing: bool) -> None:
        super().__init__()
        self.model = model
        self.hashing = bool(hashing)

    def forward(self, images: Tensor) -> Tensor:
        outputs = self.model(images)
        if not self.hashing:
            return outputs
        one = torch.ones_like(outputs)
        return torch.where(outputs >= 0, one, -one)


def _example(trained: TrainedModel, batch_size: int) -> Tensor:
    return torch.zeros(batch_size, *trained.input_shape, device=trained.device)


def export_program(trained: TrainedModel, path: str | os.PathLike[str] | None = None) -> torch.export.ExportedProgram:
    """``torch.export`` of the encoder with a dynamic batch size; saved as ``.pt2`` if ``path``.

    Load it with ``torch.export.load(path).module()``.
    """
    encoder = CodeEncoder(trained.model, trained.hashing).eval()
    batch = torch.export.Dim("batch", min=1)
    program = torch.export.export(encoder, (_example(trained, 2),), dynamic_shapes={"images": {0: batch}})
    if path is not None:
        import io

        buffer = io.BytesIO()
        torch.export.save(program, buffer)
        write_atomic(Path(path), buffer.getvalue())
    return program


def export_onnx(trained: TrainedModel, path: str | os.PathLike[str], opset_version: int = 18) -> Path:
    """Write the encoder as ONNX (``images`` -> ``codes``, dynamic batch) and check the file.

    Needs the ``onnx`` extra (``onnx`` and ``onnxscript``); run it with any ONNX runtime.
    """
    try:
        import onnx
    except ImportError as error:
        raise ImportError(f"ONNX export needs onnx and onnxscript (extra 'onnx'): pip install onnx onnxscript; {error}") from error
    path = Path(path)
    encoder = CodeEncoder(trained.model, trained.hashing).eval()
    batch = torch.export.Dim("batch", min=1)
    program = torch.onnx.export(
        encoder, (_example(trained, 2),), input_names=["images"], output_names=["codes"],
        dynamic_shapes={"images": {0: batch}}, opset_version=opset_version, dynamo=True, verbose=False,
    )
    if program is None:  # pragma: no cover - dynamo=True always returns the program
        raise RuntimeError("torch.onnx.export returned no program")
    proto = program.model_proto
    onnx.checker.check_model(proto, full_check=True)
    write_atomic(path, proto.SerializeToString())
    return path
