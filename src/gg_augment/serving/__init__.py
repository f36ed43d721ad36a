"""From a trained model to served codes: loading, model-only export, graph export, console.

:func:`load_trained_model` rebuilds a trainer's network from a run folder, a checkpoint or a
:func:`save_model` export; :class:`TrainedModel` encodes tensors or image files to codes;
:func:`export_onnx` and :func:`export_program` write the encoder as a graph. The console
command ``gg-augment`` (:func:`gg_augment.serving.cli.main`) chains train, encode, index and
search.
"""

from __future__ import annotations

from .export import CodeEncoder, export_onnx, export_program
from .images import IMAGE_SUFFIXES, list_images, load_images
from .loading import EXPORT_FORMAT, TrainedModel, load_trained_model, rebuild, save_model

__all__ = [
    "EXPORT_FORMAT",
    "IMAGE_SUFFIXES",
    "CodeEncoder",
    "TrainedModel",
    "export_onnx",
    "export_program",
    "list_images",
    "load_images",
    "load_trained_model",
    "rebuild",
    "save_model",
]
