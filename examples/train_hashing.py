"""DSDH-style deep hashing with GG augmentation: the library's main job.

Trains a small ResNet (or a torchvision backbone) to produce K-bit codes with the DSDH
objective, where the pairwise similarity targets are softened by each augmented sample's
semantic retention. Prints an mAP table per code length; writes checkpoints, JSON lines and
the table under --out.

    python examples/train_hashing.py                                   # embedded data, CPU, 32 bits, exact G_cut
    python examples/train_hashing.py --augment gcut --code-lengths 16,32,48,64
    python examples/train_hashing.py --augment gcut --no-retention    # ablation: weight 1
    python examples/train_hashing.py --resume                          # continue a stopped run
    torchrun --nproc_per_node 2 examples/train_hashing.py              # DDP (gloo on CPU)

The loop lives in the library (gg_augment.training); this file is its command line.
"""

from __future__ import annotations

from gg_augment.training.cli import main

if __name__ == "__main__":
    main("hashing", __doc__)
