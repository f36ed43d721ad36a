"""The model-measured retention beside the augmentations' own scores (issue 17).

Does the model's agreement with a sample's DSDH code (``gg_augment.hashing.model_retention``)
track what an augmentation gave up, and does it tell which augmented samples are still
retrieved correctly? A trained hashing run's checkpoint holds the model and the codes B of its
training samples. Each training image is augmented by G_cut (exact: attention from the model,
the run's grid, limit and count rule) and by G_t (the run's sigma), without the crop, so that
every score sees only what the augmentation removed. Per augmented sample:

- the augmentation's scores: G_cut's attention score 1 - ΣA(cut) and area score 1 - n/m of
  the same cut; G_t's visible share;
- the model's: ``model_retention(u, B_i)`` of the eval-mode output u (soft; and binary, the
  Hamming affinity of sign(u)), and its change from the clean image's (augmented - clean);
- retrieval: whether the sign code's nearest database code (Hamming, ties by index) has the
  sample's class (hit@1), and the share of its 50 nearest that do (P@50).

The table gives each score's Spearman correlation with the soft model score, with the
model score's change and with P@50, and its AUC for hit@1 (0.5: a coin); the CSV and JSON also hold
Pearson's. The model score reads the same output the retrieval does, so its AUC is an upper
bound, not a fair race; the question is whether it follows the augmentations' scores.

    python examples/train_hashing.py --augment gcut --epochs 5 --limit-train 1000 --threads 1 --out runs/mr
    python benchmarks/model_retention.py --checkpoint runs/mr/<run>/bits32/checkpoint.pt \\
        --out docs/results/model_retention
    python benchmarks/model_retention.py --train-epochs 1 --limit-train 64 --out /tmp/mr   # smoke
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from harness import command_line, markdown_table, provenance, provenance_lines, write_results
from torch import Tensor

from gg_augment import GT, GCut, load_trained_model
from gg_augment.hashing import hamming_top_k, model_retention, sign_codes
from gg_augment.io import load_checkpoint
from gg_augment.training import TrainConfig, load_data, run

NEIGHBOURS = 50


# -- statistics (ties share their average rank) ------------------------------------------------


def ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks; a run of equal values shares its average rank."""
    order = np.argsort(values, kind="stable")
    _, first, counts = np.unique(values[order], return_index=True, return_counts=True)
    ranked = np.empty(len(values))
    ranked[order] = np.repeat(first + (counts + 1) / 2, counts)
    return ranked


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    if a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    return pearson(ranks(a), ranks(b))


def auc(score: np.ndarray, positive: np.ndarray) -> float:
    """P(a positive scores above a negative), ties counting half (Mann-Whitney)."""
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    return float((ranks(score)[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


# -- the measurement -------------------------------------------------------------------------


@torch.no_grad()
def outputs_of(model: torch.nn.Module, images: Tensor, batch: int = 500) -> Tensor:
    return torch.cat([model(images[i : i + batch]) for i in range(0, len(images), batch)])


def retrieval(codes: Tensor, labels: Tensor, database: Tensor, database_labels: Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Hit@1 and P@50 of each query code against the database."""
    _, nearest = hamming_top_k(codes, database, k=NEIGHBOURS)
    same = database_labels[nearest] == labels[:, None]
    return same[:, 0].numpy(), same.float().mean(1).numpy()


def measure(
    checkpoint: Path, samples: int, draws: int, seed: int
) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, dict[str, np.ndarray]]]:
    """The table's rows, the record for its JSON, and each sample's values per method."""
    trained = load_trained_model(checkpoint)
    model, config = trained.model.eval(), trained.config
    if not config.hashing:
        raise SystemExit(f"{checkpoint} is a real-valued run: the model-measured retention needs DSDH codes")
    codes_bank = load_checkpoint(checkpoint, ("solver",))["solver"]["codes"]
    data = load_data(config)
    train = data.train
    count = min(samples or len(train), len(train))
    images, labels = train.images[:count], train.labels[:count]       # row i is the bank's row i
    codes = codes_bank[:count].float()
    database = sign_codes(outputs_of(model, data.database.images))
    settings = config.settings()
    generator = torch.Generator().manual_seed(seed)
    gcut = GCut(model, layer=config.attention_layer, grid_size=config.cut_grid, limit=config.gcut_limit,
                count_rule=settings.cut_count, definition=config.attention_definition,
                temperature=config.attention_temperature, generator=generator)
    area = GCut(grid_size=config.cut_grid, score="area", limit=config.gcut_limit, validate_args=False)
    shift = GT(sigma=settings.gt_sigma, fill="random", generator=generator)

    clean_outputs = outputs_of(model, images)
    clean_model = model_retention(clean_outputs, codes).numpy()
    clean_hit, clean_precision = retrieval(sign_codes(clean_outputs), labels, database, data.database.labels)
    per_method: dict[str, dict[str, np.ndarray]] = {"clean": {
        "model (soft)": clean_model, "model (binary)": model_retention(clean_outputs, codes, binary=True).numpy(),
        "hit": clean_hit, "precision": clean_precision, "change": np.zeros(count),
    }}
    for method in ("G_cut", "G_t"):
        parts: dict[str, list[np.ndarray]] = {}
        for _ in range(draws):
            scores: dict[str, np.ndarray] = {}
            if method == "G_cut":
                params = gcut.generate_params(images.shape, images.device, attention=gcut.compute_attention(images))
                augmented, retention = gcut(images, params=params)
                scores["attention score"] = retention.numpy()
                scores["area score"] = area(images, params=params)[1].numpy()
            else:
                augmented, retention = shift(images)
                scores["shift score"] = retention.numpy()
            outputs = outputs_of(model, augmented)
            soft = model_retention(outputs, codes).numpy()
            scores["model (soft)"] = soft
            scores["model (binary)"] = model_retention(outputs, codes, binary=True).numpy()
            scores["hit"], scores["precision"] = retrieval(sign_codes(outputs), labels, database, data.database.labels)
            scores["change"] = soft - clean_model
            for name, values in scores.items():
                parts.setdefault(name, []).append(values)
        per_method[method] = {name: np.concatenate(values) for name, values in parts.items()}

    rows = []
    for method, values in per_method.items():
        hit, precision, model_soft = values["hit"].astype(bool), values["precision"], values["model (soft)"]
        for name, score in values.items():
            if name in ("hit", "precision", "change"):
                continue
            low, high = np.quantile(score, [0.25, 0.75])
            rows.append({
                "images": method,
                "score": name,
                "mean": float(score.mean()),
                "Spearman vs model (soft)": spearman(score, model_soft),
                "Spearman vs model change": spearman(score, values["change"]) if method != "clean" else float("nan"),
                "Spearman vs P@50": spearman(score, precision),
                "AUC for hit@1": auc(score, hit),
                "hit@1 (score in lowest quarter)": float(hit[score <= low].mean()),
                "hit@1 (score in highest quarter)": float(hit[score >= high].mean()),
                "hit@1": float(hit.mean()),
                "Pearson vs model (soft)": pearson(score, model_soft),
                "Pearson vs P@50": pearson(score, precision),
            })
    record = {
        "checkpoint": str(checkpoint),
        "run": config.result_config(),
        "samples": count, "draws": draws, "seed": seed, "database": len(database), "neighbours": NEIGHBOURS,
    }
    return rows, record, per_method


def figure(per_method: dict[str, dict[str, np.ndarray]]) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(11, 3.6))
    panels = (("G_cut", "attention score"), ("G_cut", "area score"), ("G_t", "shift score"))
    for ax, (method, name) in zip(axes, panels, strict=True):
        points = per_method[method]
        hit, x, y = points["hit"].astype(bool), points[name], points["model (soft)"]
        ax.scatter(x[hit], y[hit], s=4, alpha=0.5, color="C0", label="nearest neighbour right")
        ax.scatter(x[~hit], y[~hit], s=4, alpha=0.5, color="C3", label="nearest neighbour wrong")
        ax.set_xlabel(f"{method} {name}")
        ax.set_ylabel("model-measured retention (soft)")
        ax.set_title(f"Spearman {spearman(x, y):+.2f}", fontsize=9)
    axes[0].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def train_checkpoint(out: Path, epochs: int, limit_train: int) -> Path:
    """A tiny G_cut hashing run for the smoke test (no --checkpoint)."""
    config = TrainConfig(augment="gcut", epochs=epochs, limit_train=limit_train, limit_query=16, limit_database=200,
                         code_lengths=(16,), batch_size=32, threads=1, progress=False, out=out)
    run(config)
    [checkpoint] = out.glob("*/bits16/checkpoint.pt")
    return checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, help="a hashing run's checkpoint.pt (model and DSDH codes)")
    parser.add_argument("--train-epochs", type=int, default=1, help="without --checkpoint: train a tiny G_cut run first")
    parser.add_argument("--limit-train", type=int, default=64, help="without --checkpoint: its training images")
    parser.add_argument("--samples", type=int, default=0, help="training images to augment (0: all the run's)")
    parser.add_argument("--draws", type=int, default=2, help="augmentations of each image per method")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("results/model_retention"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        checkpoint = args.checkpoint or train_checkpoint(Path(scratch), args.train_epochs, args.limit_train)
        rows, record, per_method = measure(checkpoint, args.samples, args.draws, args.seed)
    record["provenance"] = provenance(command_line("benchmarks/model_retention.py"), started)
    shown = [{k: v for k, v in row.items() if not k.startswith("Pearson")} for row in rows]
    run_config = record["run"]
    header = "\n".join([
        "# Model-measured retention beside the augmentations' scores",
        "",
        f"{record['samples']} training images of a {run_config['augment']} run ({run_config['epochs']} epochs, "
        f"{run_config['arch']}, {run_config['data']}), {record['draws']} draws per method, no crop; retrieval "
        f"against {record['database']} database codes. Model score: the agreement of the eval-mode output with the "
        "sample's DSDH code B (0.5 is chance); model change: augmented minus clean model score.",
        "",
        *provenance_lines(record["provenance"]),
    ])
    print(write_results(args.out, "model_retention", rows, markdown_table(shown, header), figure(per_method), record))


if __name__ == "__main__":
    main()
