"""GG with pytorch-metric-learning: PML's miner chooses the pairs, retention softens them.

A few epochs of real-valued retrieval on the embedded data: G_t shifts each image, its
retention becomes a per-sample weight, a ``MultiSimilarityMiner`` picks the informative
pairs, and :class:`gg_augment.RetentionWeightedPairwiseLoss` takes the miner's
``indices_tuple`` so that each mined positive pair pulls by its retention weight.

    pip install -e ".[pml]" && python examples/pml_miner.py --epochs 2
"""

from __future__ import annotations

import argparse

import torch
from pytorch_metric_learning import miners

import gg_augment as gg
from gg_augment.data import load_embedded
from gg_augment.metrics import mean_average_precision


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--limit-train", type=int, default=0, help="first N training images (0: all)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    splits = load_embedded()
    images, labels = splits.train.tensors[:2]
    if args.limit_train:
        images, labels = images[: args.limit_train], labels[: args.limit_train]
    model = gg.RetrievalNet(*gg.build_backbone("small"), code_length=64)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(args.seed)
    augment = gg.RetentionPipeline(gg.GT(sigma=0.1, generator=generator))
    miner = miners.MultiSimilarityMiner(epsilon=0.1)
    loss_fn = gg.RetentionWeightedPairwiseLoss("cosine")
    for epoch in range(args.epochs):
        order = torch.randperm(len(labels), generator=generator)
        for start in range(0, len(order), 128):
            index = order[start : start + 128]
            x_aug, weight = augment(images[index], index)
            embeddings = model(x_aug)
            loss = loss_fn(embeddings, labels[index], weight, indices_tuple=miner(embeddings, labels[index]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch + 1}: last loss {loss.item():.4f}")
    model.eval()
    with torch.no_grad():
        query = model(splits.query.tensors[0][:500])
        database = model(splits.database.tensors[0][:2000])
    value = float(mean_average_precision(query, database, splits.query.tensors[1][:500], splits.database.tensors[1][:2000], metric="cosine"))
    print(f"mAP (cosine, 500 queries x 2,000 database images): {value:.4f}")
    return value


if __name__ == "__main__":
    main()
