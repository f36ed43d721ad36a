"""Serve ±1 codes from a faiss binary index (the optional ``faiss`` extra).

faiss's ``IndexBinaryFlat`` packs 8 bits per byte and ranks by popcount: far less memory than
a float matrix and a fast exhaustive search. :class:`BinaryCodeIndex` packs our ±1 codes
(+1 -> bit set), adds them, and searches with ±1 queries, returning torch tensors.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .._checks import check_int, check_tensor

__all__ = ["BinaryCodeIndex", "pack_codes"]


def pack_codes(codes: Tensor) -> np.ndarray:
    """(N, K) ±1 codes -> (N, K/8) uint8, bit set where the code is +1 (K a multiple of 8)."""
    codes = check_tensor(codes, "codes")
    if codes.ndim != 2:
        raise ValueError(f"codes must have shape (N, K); got {tuple(codes.shape)}")
    if codes.shape[1] % 8:
        raise ValueError(f"codes must have a multiple of 8 bits for a faiss binary index; got K = {codes.shape[1]}")
    values = codes.detach()
    if not bool(((values == 1) | (values == -1)).all()):
        raise ValueError("codes must hold only -1 and +1 (binarise with gg_augment.hashing.sign_codes first)")
    return np.packbits((values > 0).cpu().numpy(), axis=1)


class BinaryCodeIndex:
    """An exhaustive Hamming index of ±1 codes in faiss (``IndexBinaryFlat``).

    Args:
        code_length: K, a multiple of 8.

    Examples:
        >>> index = BinaryCodeIndex(64)                       # doctest: +SKIP
        >>> index.add(sign_codes(database_outputs))           # doctest: +SKIP
        >>> distances, ids = index.search(sign_codes(query_outputs), k=100)  # doctest: +SKIP
    """

    def __init__(self, code_length: int) -> None:
        try:
            import faiss
        except ImportError as error:  # pragma: no cover - exercised without the extra
            raise ImportError("BinaryCodeIndex needs faiss: pip install 'gg-augment[faiss]'") from error
        self.code_length = check_int(code_length, "code_length", minimum=8)
        if self.code_length % 8:
            raise ValueError(f"code_length must be a multiple of 8; got {code_length}")
        self.index = faiss.IndexBinaryFlat(self.code_length)

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def _packed(self, codes: Tensor, name: str) -> np.ndarray:
        codes = check_tensor(codes, name)
        if codes.ndim != 2 or codes.shape[1] != self.code_length:
            raise ValueError(f"{name} must have shape (N, {self.code_length}); got {tuple(codes.shape)}")
        return pack_codes(codes)

    def add(self, codes: Tensor) -> None:
        """Append (N, K) ±1 codes; their ids continue from :func:`len`."""
        self.index.add(self._packed(codes, "codes"))

    def search(self, query: Tensor, k: int) -> tuple[Tensor, Tensor]:
        """The ``k`` nearest codes of each (Q, K) ±1 query: ``(distances, ids)``, (Q, k) int64 on
        the query's device. Ties at equal distance come back in faiss's order (our
        :func:`~gg_augment.metrics.hamming_top_k` breaks them by index)."""
        k = check_int(k, "k", minimum=1)
        if len(self) == 0:
            raise ValueError("the index is empty: add() database codes before search()")
        distances, ids = self.index.search(self._packed(query, "query"), min(k, len(self)))
        return torch.from_numpy(distances).long().to(query.device), torch.from_numpy(ids).long().to(query.device)
