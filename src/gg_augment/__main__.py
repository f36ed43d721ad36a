"""``python -m gg_augment``: the ``gg-augment`` console command."""

from __future__ import annotations

import sys

from .serving.cli import main

if __name__ == "__main__":
    sys.exit(main())
