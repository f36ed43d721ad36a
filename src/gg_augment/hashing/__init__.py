"""Deep hashing components: the DSDH discrete solver, sign binarisation, exact Hamming search
(``hamming_top_k``) and an index to serve the codes (``BinaryCodeIndex``: ids, removal,
save/load; an HNSW graph with the ``faiss`` extra)."""

from __future__ import annotations

from .dsdh import DSDHSolver, sign_codes
from .index import BinaryCodeIndex, pack_codes
from .search import hamming_top_k

__all__ = ["BinaryCodeIndex", "DSDHSolver", "hamming_top_k", "pack_codes", "sign_codes"]
