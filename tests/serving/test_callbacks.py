"""RetentionAugmentCallback: a Lightning Trainer trains a few steps on GG-augmented batches."""

from __future__ import annotations

import warnings

import pytest
import torch

L = pytest.importorskip("lightning")

from gg_augment import (  # noqa: E402
    GT,
    AttentionCache,
    GCut,
    RetentionPipeline,
    RetentionWeightedPairwiseLoss,
    RetrievalNet,
    build_backbone,
)
from gg_augment.callbacks import RetentionAugmentCallback  # noqa: E402
from gg_augment.data import load_embedded  # noqa: E402


class _Dicts(torch.utils.data.Dataset):
    def __init__(self, images, labels):
        self.images, self.labels = images, labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return {"image": self.images[i], "label": self.labels[i], "index": i}


class _Module(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.model = RetrievalNet(*build_backbone("small"), code_length=16)
        self.loss = RetentionWeightedPairwiseLoss()
        self.seen = []

    def training_step(self, batch, batch_idx):
        self.seen.append((batch["image"].detach().clone(), batch["weight"].detach().clone()))
        return self.loss(self.model(batch["image"]), batch["label"], batch["weight"])

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


def test_a_lightning_trainer_trains_on_the_augmented_images_and_their_weights():
    images, labels = load_embedded("train", image_size=32).tensors
    images, labels = images[:64], labels[:64]
    loader = torch.utils.data.DataLoader(_Dicts(images, labels), batch_size=16, shuffle=False)
    module = _Module()
    before = [p.detach().clone() for p in module.parameters()]
    pipeline = RetentionPipeline(GT(sigma=0.3, fill=0.0, generator=torch.Generator().manual_seed(0)))
    trainer = L.Trainer(max_steps=3, callbacks=[RetentionAugmentCallback(pipeline)], accelerator="cpu",
                        logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False)
    trainer.fit(module, loader)
    assert len(module.seen) == 3
    for step, (seen, weight) in enumerate(module.seen):
        original = images[step * 16 : (step + 1) * 16]
        assert seen.shape == original.shape and not torch.equal(seen, original)  # G_t moved them
        assert weight.shape == (16,) and bool(((weight > 0) & (weight <= 1)).all())
        assert bool((weight < 1).any())  # retention reached the loss
    assert any(not torch.equal(a, b) for a, b in zip(before, module.parameters()))


def test_a_cached_gcut_fills_its_cache_from_the_lightning_training_forward():
    images, labels = load_embedded("train", image_size=32).tensors
    images, labels = images[:48], labels[:48]
    loader = torch.utils.data.DataLoader(_Dicts(images, labels), batch_size=16, shuffle=False)
    module = _Module()
    cache = AttentionCache(len(labels), grid_size=4)
    gcut = GCut(module.model, cache=cache, grid_size=4, generator=torch.Generator().manual_seed(0))
    trainer = L.Trainer(max_steps=3, callbacks=[RetentionAugmentCallback(RetentionPipeline(gcut))],
                        accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*records nothing.*")
        trainer.fit(module, loader)
    assert bool(cache.seen.all())  # every sample's map was written by a training forward
    assert len(module.seen) == 3


def test_the_callback_refuses_batches_it_cannot_rewrite_in_place():
    callback = RetentionAugmentCallback(RetentionPipeline())
    with pytest.raises(TypeError, match="dict batches"):
        callback.on_train_batch_start(None, None, [torch.zeros(2, 3, 8, 8)], 0)
    with pytest.raises(KeyError, match="image_key"):
        callback.on_train_batch_start(None, None, {"img": torch.zeros(2, 3, 8, 8)}, 0)
    with pytest.raises(TypeError, match="pipeline must be a RetentionPipeline"):
        RetentionAugmentCallback(GT())
