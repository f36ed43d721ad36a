"""Does G_cut's attention point at the object? Attention mass and candidate cells on the garment.

G_cut only gives up meaning if its attention sits on the object. On the embedded
Fashion-MNIST queries the object is easy to find (the background is black), so this script
measures, per model, attention layer and attention definition (``mean``: the authors'
channel mean; ``energy``: attention transfer's Σ_c A_c²), over the query images:

- **attention on foreground**: the share of the attention mass (softmax over the layer's own
  cells of the logits divided by ``--temperature`` (one or several), as G_cut does; spread over each cell's
  pixels) that lands on foreground pixels (min-max scaled intensity > 0.1);
- **foreground area**: the share of pixels that are foreground, which is what a uniform map
  would score. Attention that ignores the object scores its area; the **lift** is the ratio;
- **candidate precision**: the foreground share of the pixels of the candidate cells G_cut
  may cut (``select="mean"``: cells above the mean), against the same area baseline.

The measurement itself is :func:`benchmarks.focus.attention_focus`.

    python benchmarks/attention_focus.py --checkpoint runs/hashing/<run>/bits32/checkpoint.pt
    python benchmarks/attention_focus.py --checkpoint <study out>/<preset>/runs/<run>   # a run folder
    python benchmarks/attention_focus.py --arch efficientnet_lite0 --pretrained --image-size 96 \\
        --layers backbone.feature_map,backbone.net._blocks.10 --definitions mean,energy
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import torch

from gg_augment import TrainedModel, load_trained_model
from gg_augment.attention import DEFINITIONS
from gg_augment.serving import rebuild
from gg_augment.training import TrainConfig

if __package__:  # imported, or run with python -m benchmarks.attention_focus
    from .focus import attention_focus, foreground_mask
    from .harness import command_line, markdown_table, provenance, provenance_lines, write_results
else:  # run as a file (python benchmarks/attention_focus.py): its siblings import by name
    from focus import attention_focus, foreground_mask
    from harness import command_line, markdown_table, provenance, provenance_lines, write_results

#: Digits of the reported shares and ratios (the differences that matter are in the second).
DIGITS = 3


def parse_definitions(text: str) -> list[str]:
    definitions = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in definitions if name not in DEFINITIONS]
    if not definitions or unknown:
        raise argparse.ArgumentTypeError(f"--definitions takes a comma-separated subset of {list(DEFINITIONS)}; got {text!r}")
    return list(dict.fromkeys(definitions))


def parse_temperatures(text: str) -> list[float]:
    try:
        temperatures = [float(value) for value in text.split(",") if value.strip()]
    except ValueError:
        temperatures = []
    if not temperatures or not all(0 < t < float("inf") for t in temperatures):
        raise argparse.ArgumentTypeError(f"--temperature takes comma-separated numbers > 0; got {text!r}")
    return list(dict.fromkeys(temperatures))


def load(args: argparse.Namespace) -> tuple[TrainedModel, str]:
    """The model to measure (a trainer or study checkpoint, a run folder, or a fresh
    architecture) and its label."""
    if args.checkpoint is not None:
        trained = load_trained_model(args.checkpoint, code_length=args.code_length)
        run = trained.source.parent.parent.name if trained.source is not None else str(args.checkpoint)
        return trained, args.name or f"{trained.config.arch} from {run}"
    config = TrainConfig(arch=args.arch, pretrained=args.pretrained, image_size=args.image_size)
    torch.manual_seed(args.seed)  # the weights ImageNet does not give (all of them, untrained)
    trained = TrainedModel(rebuild(config, 32, pretrained=args.pretrained), config, 32, {"channels": 3})
    weights = "ImageNet" if args.pretrained else "untrained"
    return trained, args.name or f"{args.arch} {weights} {args.image_size} px"


def short(layer: str) -> str:
    """A layer's name without its path, keeping the stage of a numbered block (``_blocks.10``)."""
    parts = layer.split(".")
    return ".".join(parts[-2:]) if parts[-1].isdigit() and len(parts) > 1 else parts[-1]


def plot(rows: list[dict[str, Any]], definitions: list[str], name: str) -> Any:
    """Lift and candidate precision per layer (and temperature), one bar per definition."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = list(dict.fromkeys((row["layer"], row["temperature"]) for row in rows))
    several = len({temperature for _, temperature in groups}) > 1
    by_key = {(row["layer"], row["temperature"], row["definition"]): row for row in rows}
    width = 0.8 / len(definitions)
    if len(groups) > 4:  # a sweep: one panel above the other, each as wide as a page
        fig, axes = plt.subplots(2, 1, figsize=(max(8.0, 1.1 * len(groups) + 1.5), 6.4))
    else:
        fig, axes = plt.subplots(1, 2, figsize=(max(8.0, 2.2 * len(groups) + 2.5), 3.4))
    panels = (("lift", "attention lift on foreground"), ("candidate_precision", "candidate precision"))
    for ax, (key, label) in zip(axes, panels):
        top = max([1.0] + [row[key] for row in rows if row[key] == row[key]])  # NaN: no candidates
        for index, definition in enumerate(definitions):
            values = [by_key[layer, temperature, definition][key] for layer, temperature in groups]
            positions = [i + (index - (len(definitions) - 1) / 2) * width for i in range(len(groups))]
            ax.bar(positions, values, width, label=definition, color=f"C{index}")
        if key == "lift":
            ax.axhline(1.0, color="grey", linestyle="--", linewidth=1, label="uniform map")
        else:  # a uniform choice of cells would hit the foreground in proportion to its area
            ax.axhline(rows[0]["foreground_area"], color="grey", linestyle="--", linewidth=1, label="foreground area")
        ticks = [f"{short(layer)}\n{by_key[layer, temperature, definitions[0]]['map']}" + (f"\nT={temperature:g}" if several else "")
                 for layer, temperature in groups]
        ax.set_xticks(range(len(groups)), ticks, fontsize=8 if several else None)
        ax.set_ylabel(label)
        ax.set_ylim(0, 1.3 * top)  # room for the legend above the bars
        ax.legend(fontsize=7, loc="upper center", ncol=3)
    temperature = rows[0]["temperature"]
    fig.suptitle(name + ("" if several or temperature == 1.0 else f" (temperature {temperature:g})"), fontsize=9)
    fig.tight_layout()
    return fig


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--checkpoint", type=Path,
        help="a trainer or study run's checkpoint.pt, a model export, or a run folder (its configuration rebuilds the model)",
    )
    parser.add_argument("--code-length", type=int, default=None, help="with --checkpoint: the model to pick from a run folder of several")
    parser.add_argument("--arch", default="small", help="without --checkpoint: the architecture")
    parser.add_argument("--pretrained", action="store_true", help="without --checkpoint: ImageNet weights")
    parser.add_argument("--image-size", type=int, default=32, help="without --checkpoint: the input side")
    parser.add_argument("--seed", type=int, default=0, help="without --checkpoint: the seed of the untrained weights")
    parser.add_argument("--layers", default=None, help="comma-separated layer names (default: the model's attention layer)")
    parser.add_argument("--definitions", type=parse_definitions, default=list(DEFINITIONS),
                        help=f"comma-separated attention definitions (default: {','.join(DEFINITIONS)})")
    parser.add_argument("--temperature", type=parse_temperatures, default=[1.0],
                        help="softmax temperature of the attention logits, as G_cut's; several, comma-separated, give a row each")
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--name", default=None, help="label of this model in the table")
    parser.add_argument("--out", type=Path, default=Path("results/attention_focus"))
    args = parser.parse_args(argv)
    started = time.perf_counter()

    trained, name = load(args)
    model, config = trained.model.eval(), trained.config
    images, _ = trained.split_images("query", limit=args.queries)
    images = images.to(trained.device)
    foreground = foreground_mask(images)
    layers = args.layers.split(",") if args.layers else [model.attention_layer]
    rows = []
    for layer in layers:
        for temperature in args.temperature:
            for definition in args.definitions:
                focus = attention_focus(model, layer, images, foreground, definition, temperature)
                rows.append({"model": name, **{k: round(v, DIGITS) if isinstance(v, float) else v for k, v in focus.items()}})
    record = provenance(command_line("benchmarks/attention_focus.py", argv), started)
    header = "\n".join([
        f"# Attention focus on the garment: {name}",
        "",
        f"{len(images)} embedded queries at {config.image_size} px, softmax temperature "
        f"{', '.join(f'{t:g}' for t in args.temperature)}. "
        "definition: mean = channel mean (the authors'), energy = Σ_c A_c² / C (attention transfer). "
        "lift = attention on foreground / foreground area (1.0: no better than a uniform map); candidate "
        "precision: foreground share of the cells G_cut may cut (select='mean'), over the images that have any.",
        "",
        *provenance_lines(record),
    ])
    stem = "attention_focus_" + "".join(c if c.isalnum() else "_" for c in name)[:60]
    print(write_results(args.out, stem, rows, markdown_table(rows, header), plot(rows, args.definitions, name), record))


if __name__ == "__main__":
    main()
