"""Real-valued retrieval with GG: cosine embeddings, in-batch retention-weighted pairs.

Reports Recall@1/2/4/8 and mAP (cosine ranking) per embedding size.

    python examples/train_real_valued.py --augment gcut --code-lengths 64
"""

from __future__ import annotations

from retrieval_training import run

if __name__ == "__main__":
    run("real", __doc__)
