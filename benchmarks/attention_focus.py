"""Does G_cut's attention point at the object? Attention mass and candidate cells on the garment.

G_cut only gives up meaning if its attention sits on the object. On the embedded
Fashion-MNIST queries the object is easy to find (the background is black), so this script
measures, per model and attention layer, over the query images:

- **attention on foreground**: the share of the attention mass (softmax over the layer's own
  cells, spread over each cell's pixels) that lands on foreground pixels (raw intensity > 0.1);
- **foreground area**: the share of pixels that are foreground, which is what a uniform map
  would score. Attention that ignores the object scores its area; the **lift** is the ratio;
- **candidate precision**: the foreground share of the pixels of the candidate cells G_cut
  may cut (``select="mean"``: cells above the mean), against the same area baseline.

    python benchmarks/attention_focus.py --checkpoint runs/hashing/<run>/bits32/checkpoint.pt
    python benchmarks/attention_focus.py --arch efficientnet_lite0 --pretrained --image-size 96 \\
        --layers backbone.feature_map,backbone.net._blocks.10
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F
from harness import markdown_table, write_results

from gg_augment import TrainedModel, load_trained_model
from gg_augment.attention import attention_extractor_for
from gg_augment.serving import rebuild
from gg_augment.training import TrainConfig


def focus(model: torch.nn.Module, layer: str, images: torch.Tensor, foreground: torch.Tensor) -> dict[str, object]:
    extractor = attention_extractor_for(model, layer)
    logits = extractor.extract(images)
    attention = torch.softmax(logits.flatten(1), dim=1).view_as(logits)
    size = images.shape[-2:]
    per_pixel = F.interpolate(attention[:, None], size=size, mode="nearest")[:, 0]
    per_pixel = per_pixel / per_pixel.flatten(1).sum(1).view(-1, 1, 1)
    share = (per_pixel * foreground).flatten(1).sum(1)
    area = foreground.flatten(1).mean(1)
    cells = attention.shape[1] * attention.shape[2]
    candidates = F.interpolate((attention > 1.0 / cells).float()[:, None], size=size, mode="nearest")[:, 0]
    precision = (candidates * foreground).flatten(1).sum(1) / candidates.flatten(1).sum(1).clamp_min(1)
    return {
        "layer": layer,
        "map": f"{attention.shape[1]}x{attention.shape[2]}",
        "attention_on_foreground": round(float(share.mean()), 3),
        "foreground_area": round(float(area.mean()), 3),
        "lift": round(float(share.mean() / area.mean()), 3),
        "candidate_precision": round(float(precision.mean()), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, help="a trainer checkpoint (its configuration rebuilds the model)")
    parser.add_argument("--arch", default="small", help="without --checkpoint: the architecture")
    parser.add_argument("--pretrained", action="store_true", help="without --checkpoint: ImageNet weights")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--layers", default=None, help="comma-separated layer names (default: the model's attention layer)")
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--name", default=None, help="label of this model in the table")
    parser.add_argument("--out", type=Path, default=Path("results/attention_focus"))
    args = parser.parse_args()

    if args.checkpoint is not None:
        trained = load_trained_model(args.checkpoint)
        model, config = trained.model, trained.config
        name = args.name or f"{config.arch} from {trained.source.parent.parent.name}"
    else:
        config = TrainConfig(arch=args.arch, pretrained=args.pretrained, image_size=args.image_size)
        trained = TrainedModel(rebuild(config, 32, pretrained=args.pretrained), config, 32, {"channels": 3})
        model = trained.model
        name = args.name or f"{args.arch}{' ImageNet' if args.pretrained else ' untrained'}"
    model.eval()
    images, _ = trained.split_images("query", limit=args.queries)
    grey = images[:, 0]
    low, high = grey.amin(dim=(1, 2), keepdim=True), grey.amax(dim=(1, 2), keepdim=True)
    foreground = ((grey - low) / (high - low).clamp_min(1e-6) > 0.1).float()
    layers = args.layers.split(",") if args.layers else [model.attention_layer]
    rows = [{"model": name, **focus(model, layer, images, foreground)} for layer in layers]
    header = (
        f"# Attention focus on the garment: {name}\n\n{len(images)} embedded queries at "
        f"{config.image_size} px. lift = attention on foreground / foreground area (1.0: no better than a "
        "uniform map); candidate precision: foreground share of the cells G_cut may cut (select='mean')."
    )

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(4, 1.6 * len(rows)), 3.2))
    ax.bar([r["layer"].split(".")[-1] + f"\n{r['map']}" for r in rows], [r["lift"] for r in rows], color="#4c72b0")
    ax.axhline(1.0, color="grey", linestyle="--", linewidth=1)
    ax.set_ylabel("attention lift on foreground")
    ax.set_title(name, fontsize=9)
    fig.tight_layout()
    stem = "attention_focus_" + "".join(c if c.isalnum() else "_" for c in name)[:60]
    print(write_results(args.out, stem, rows, markdown_table(rows, header), fig))


if __name__ == "__main__":
    main()
