"""Deep hashing components: the DSDH discrete solver and sign binarisation."""

from __future__ import annotations

from .dsdh import DSDHSolver, sign_codes

__all__ = ["DSDHSolver", "sign_codes"]
