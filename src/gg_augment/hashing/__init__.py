"""Deep hashing components: the DSDH discrete solver, sign binarisation, and a faiss binary
index to serve the codes (``BinaryCodeIndex``, with the ``faiss`` extra)."""

from __future__ import annotations

from .dsdh import DSDHSolver, sign_codes
from .faiss_index import BinaryCodeIndex, pack_codes
from .search import hamming_top_k

__all__ = ["BinaryCodeIndex", "DSDHSolver", "hamming_top_k", "pack_codes", "sign_codes"]
