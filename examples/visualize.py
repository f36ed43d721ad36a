"""Show what GG does: embedded images under GT and GCut, with retention and attention.

Each row is one query image of the embedded Fashion-MNIST subset: the original, the model's
attention over the GCut grid as an overlay, the image after G_t and after G_cut, each titled
with its retention r. The attention comes from a trained model: pass a checkpoint of
``examples/train_hashing.py`` with ``--checkpoint``, or let the script train the small CNN as a
classifier for ``--steps`` steps first (45 s in all on 2 CPU cores at the default 300). An untrained network's
attention is noise, and showing it would mislead.

    python examples/visualize.py --out results/visualize/gg_examples.png
    python examples/visualize.py --checkpoint runs/.../bits32/checkpoint.pt   # any trainer run's model
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from gg_augment import GT, GCut, RetrievalNet, build_backbone, load_trained_model
from gg_augment.data import load_embedded
from gg_augment.io import save_figure
from gg_augment.serving import rebuild


def train_classifier(net: RetrievalNet, images, labels, steps: int, seed: int) -> None:
    """Quick supervised warm-up so the attention means something."""
    head = nn.Linear(net.head.out_features, int(labels.max()) + 1)
    params = list(net.parameters()) + list(head.parameters())
    optimizer = torch.optim.Adam(params, lr=2e-3)
    generator = torch.Generator().manual_seed(seed)
    net.train()
    for step in range(steps):
        batch = torch.randint(0, images.shape[0], (64,), generator=generator)
        loss = F.cross_entropy(head(net(images[batch])), labels[batch])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % 50 == 0 or step == steps - 1:
            print(f"  warm-up step {step + 1}/{steps}: cross-entropy {loss.item():.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, help="a trainer run, checkpoint or model export to take the model from")
    parser.add_argument("--steps", type=int, default=300, help="classifier warm-up steps without --checkpoint")
    parser.add_argument("--rows", type=int, default=8)
    parser.add_argument("--grid", type=int, default=8, help="GCut grid side")
    parser.add_argument("--attention-layer", default=None, help="layer G_cut hooks (default: the checkpoint's, else the model's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("results/visualize/gg_examples.png"))
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    from gg_augment import viz

    torch.manual_seed(args.seed)
    splits = load_embedded()
    if args.checkpoint is not None:
        # Any trainer run: its configuration rebuilds the model (architecture, head, image
        # size) and the images as that run saw them.
        trained = load_trained_model(args.checkpoint)
        net, config = trained.model, trained.config
        attention_net = net
        if config.attention_model == "imagenet":  # G_cut read a frozen ImageNet copy in that run
            attention_net = rebuild(config, 1, pretrained=True).requires_grad_(False).eval()
        layer = args.attention_layer or config.attention_layer
        images, labels = trained.split_images("query")
        print(f"model from {trained.source}: {config.arch}, {config.image_size} px")
    else:
        net = RetrievalNet(*build_backbone("small"), code_length=32)
        attention_net, layer = net, args.attention_layer
        print(f"training the small CNN as a classifier for {args.steps} steps to get real attention")
        train_classifier(net, *splits.train.tensors, steps=args.steps, seed=args.seed)
        images, labels = splits.query.tensors
    net.eval()

    # One image per class, the first of each.
    picks = torch.stack([torch.nonzero(labels == c)[0, 0] for c in range(splits.num_classes)])[: args.rows]
    x = images[picks]
    generator = torch.Generator().manual_seed(args.seed)
    gt = GT(sigma=0.3, fill=0.0, generator=generator)
    gcut = GCut(attention_net, layer=layer, grid_size=args.grid, sigma=1.0, limit=0.5, generator=generator)
    attention = gcut.compute_attention(x)
    gcut_params = gcut.generate_params(x.shape, x.device, attention=attention)
    x_gt, r_gt = gt(x)
    x_gcut, r_gcut = gcut(x, params=gcut_params)

    names = [splits.class_names[int(labels[i])] for i in picks]
    pictures = splits.unnormalize(x)
    written = {
        args.out: viz.augmented_grid(pictures, splits.unnormalize(x_gcut), r_gcut, titles=names),
        args.out.with_name(args.out.stem + "_attention.png"): viz.attention_overlay(pictures, attention, gcut_params["cut"], titles=names),
        args.out.with_name(args.out.stem + "_gt.png"): viz.augmented_grid(pictures, splits.unnormalize(x_gt), r_gt, titles=names),
    }
    for path, fig in written.items():
        save_figure(fig, path, dpi=110)
        print(f"wrote {path}")
    for row in range(len(picks)):
        print(f"  {splits.class_names[int(labels[picks[row]])]:<12} G_t r={r_gt[row]:.3f}  G_cut r={r_gcut[row]:.3f}")


if __name__ == "__main__":
    main()
