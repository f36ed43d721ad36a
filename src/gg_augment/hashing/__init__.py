"""Deep hashing components: the DSDH discrete solver, sign binarisation, exact Hamming search
(``hamming_top_k``), an index to serve the codes (``BinaryCodeIndex``: ids, removal,
save/load; an HNSW graph with the ``faiss`` extra) and the model-measured retention
(``model_retention``: how much of a sample's code its output still reproduces)."""

from __future__ import annotations

from .agreement import model_retention
from .dsdh import DSDHSolver, sign_codes
from .index import BinaryCodeIndex, pack_codes
from .search import hamming_top_k

__all__ = ["BinaryCodeIndex", "DSDHSolver", "hamming_top_k", "model_retention", "pack_codes", "sign_codes"]
