"""Real-valued retrieval with GG: cosine embeddings, in-batch retention-weighted pairs.

Reports Recall@1/2/4/8 and mAP (cosine ranking) per embedding size.

    python examples/train_real_valued.py --augment gcut --code-lengths 64

The loop lives in the library (gg_augment.training); this file is its command line.
"""

from __future__ import annotations

from gg_augment.training.cli import main

if __name__ == "__main__":
    main("real", __doc__)
