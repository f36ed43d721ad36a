"""GG in a Lightning training loop (extra ``lightning``): one callback, no trainer changes.

:class:`RetentionAugmentCallback` runs a :class:`~gg_augment.RetentionPipeline` on every
training batch just before ``training_step`` sees it: the images are replaced by their
augmented views and the loss weights are added to the batch. The batch must be a dict
(mutable mapping), which Lightning hands to the callback and to ``training_step`` as the
same object::

    class Module(L.LightningModule):
        def training_step(self, batch, batch_idx):
            outputs = self.model(batch["image"])
            return self.loss(outputs, batch["label"], batch["weight"])

    trainer = L.Trainer(callbacks=[RetentionAugmentCallback(pipeline)])

With an approximate (cached) G_cut the callback also holds the pipeline's recording open
from the batch's start until the backward pass, so the training forward writes the cache as
:meth:`~gg_augment.RetentionPipeline.recording` asks. In a plain loop the pipeline is the
hook: ``batch = pipeline.augment(x, index)``, then ``with pipeline.recording(batch):
model(batch.images)``. Validation and prediction batches are left alone.
"""

from __future__ import annotations

import contextlib
from collections.abc import MutableMapping
from typing import Any

try:
    from lightning.pytorch.callbacks import Callback
except ImportError as error:  # pragma: no cover - exercised without the extra
    raise ImportError(f"gg_augment.callbacks needs Lightning (extra 'lightning'): pip install lightning; {error}") from error

from .pipeline import RetentionPipeline

__all__ = ["RetentionAugmentCallback"]


class RetentionAugmentCallback(Callback):
    """Augment each training batch with a retention pipeline and store the loss weights.

    Args:
        pipeline: The batch's augmentation (:class:`~gg_augment.RetentionPipeline`).
        image_key: Batch key of the (B, C, H, W) images; replaced by the augmented images.
        index_key: Batch key of the (B,) dataset indices, passed to the pipeline when
            present (a cached G_cut needs them).
        weight_key: Batch key the (B,) loss weights are written to.
    """

    def __init__(
        self,
        pipeline: RetentionPipeline,
        *,
        image_key: str = "image",
        index_key: str = "index",
        weight_key: str = "weight",
    ) -> None:
        super().__init__()
        if not isinstance(pipeline, RetentionPipeline):
            raise TypeError(f"pipeline must be a RetentionPipeline; got {type(pipeline).__name__}")
        for name, key in (("image_key", image_key), ("index_key", index_key), ("weight_key", weight_key)):
            if not isinstance(key, str) or not key:
                raise TypeError(f"{name} must be a non-empty str; got {key!r}")
        self.pipeline = pipeline
        self.image_key, self.index_key, self.weight_key = image_key, index_key, weight_key
        self._recording = contextlib.ExitStack()

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        if not isinstance(batch, MutableMapping):
            raise TypeError(
                f"RetentionAugmentCallback needs dict batches with {self.image_key!r} (and optionally "
                f"{self.index_key!r}) so it can replace the images in place; got {type(batch).__name__}"
            )
        if self.image_key not in batch:
            raise KeyError(f"the batch has no {self.image_key!r} entry (image_key); keys: {sorted(batch)}")
        self._recording.close()  # a step that never reached backward (manual optimisation)
        self.pipeline.to(batch[self.image_key].device)
        augmented = self.pipeline.augment(batch[self.image_key], batch.get(self.index_key))
        batch[self.image_key] = augmented.images
        batch[self.weight_key] = augmented.weight
        # A cached G_cut writes its cache from the training forward: record until backward.
        self._recording.enter_context(self.pipeline.recording(augmented))

    def on_before_backward(self, trainer: Any, pl_module: Any, loss: Any) -> None:
        self._recording.close()

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        self._recording.close()

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        self._recording.close()
