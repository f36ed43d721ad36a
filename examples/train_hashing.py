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
"""

from __future__ import annotations

from retrieval_training import run

if __name__ == "__main__":
    run("hashing", __doc__)
