"""The ranking engine: for each query, database indices by distance, ties broken by index.

No labels here (relevance lives in :mod:`.relevance`). Two distances:

* ``"hamming"``: ±1 codes, distance ``(K - q·d) / 2``, an exact integer;
* ``"cosine"``: real vectors, distance ``1 - cos(q, d)`` (a zero vector has cosine 0 to
  everything); ties are broken by index when the computed distances are exactly equal.

The order is always (distance, database index) ascending, whatever the engine. For a Hamming
top-k (``depth`` below the database size) three engines give that same order:

* ``"faiss"`` (CPU, the ``faiss`` extra installed): ``IndexBinaryFlat`` on packed bits; its
  counting selection fills per-distance buckets in database order, its heap (short lists)
  admits only strictly closer items and sorts equal distances by id, so ties come out by index;
* ``"torch"`` on CPU: similarities in a reduced precision that is still exact for ±1 sums
  (bf16 up to K = 256, fp16 up to 2048), a threshold estimated on a strided sample of the
  columns, the candidates at or above it, and an exact top-k of the keys
  ``distance · N + index`` over those few; a query with too few candidates falls back to the
  full key top-k;
* ``"torch"`` elsewhere (CUDA, or under ``torch.compile``): the full key top-k, one ``addmm``
  and one ``topk``, no host sync.

``engine="auto"`` picks faiss when it applies, else torch.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .._checks import check_choice

ENGINES = ("auto", "torch", "faiss")

# Memory the per-block work tensors may take; a block of queries is sized to fit it.
_WORK_BUDGET_BYTES = 256 * 2**20

# float32 holds every integer below 2**24 exactly; Hamming distances and the tie-breaking
# keys built from them must stay exact, so wider cases switch to float64.
_FLOAT32_EXACT = 2**24

# The CPU candidate path: rows per pass (its (rows, N) work stays near the cache), the column
# stride of the sample the threshold is estimated on, and the sample's safety factor.
_CANDIDATE_ROWS = 16
_SAMPLE_STRIDE = 16
_SAMPLE_MARGIN = 1.25

# faiss's heap selection up to this depth, its counting selection beyond (measured, 1 thread).
_FAISS_HEAP_DEPTH = 32


@functools.cache
def faiss_module() -> Any | None:
    """The faiss module, or None when the extra is not installed."""
    try:
        import faiss
    except ImportError:
        return None
    return faiss


def require_faiss(what: str = "this") -> Any:
    """The faiss module, or an ImportError naming the extra."""
    faiss = faiss_module()
    if faiss is None:
        raise ImportError(f"{what} needs faiss: pip install 'gg-augment[faiss]'")
    return faiss


def pack_bits(codes: Tensor) -> np.ndarray:
    """(N, K) codes -> (N, ceil(K/8)) uint8, bit set where the code is > 0 (zero-padded)."""
    return np.packbits((codes.detach() > 0).cpu().numpy(), axis=1)


def _similarity_dtype(device: torch.device, code_length: int) -> torch.dtype:
    """The cheapest dtype in which every partial sum of K ±1 products is an exact integer."""
    if device.type == "cpu":
        mkldnn = torch.ops.mkldnn
        if code_length <= 256 and mkldnn._is_mkldnn_bf16_supported():
            return torch.bfloat16
        if code_length <= 2048 and mkldnn._is_mkldnn_fp16_supported():
            return torch.float16
    return torch.float32 if code_length < _FLOAT32_EXACT else torch.float64


class Ranking:
    """Ranks a database for each query, block by block over the queries.

    ``query`` and ``database`` are validated (:func:`._inputs.check_vectors`); with
    ``exclude_self`` row i of the database is query i's own item and is ranked last.
    """

    def __init__(
        self,
        query: Tensor,
        database: Tensor,
        metric: str,
        exclude_self: bool = False,
        engine: str = "auto",
        faiss_index: Any = None,
    ) -> None:
        self.metric = metric
        self.exclude_self = exclude_self
        self.engine = check_choice(engine, "engine", ENGINES)
        self.num_queries, self.code_length = query.shape
        self.num_database = database.shape[0]
        self.device = query.device
        if metric == "hamming":
            # ±1 products and their sums are exact in float32 (also under TF32 matmuls).
            dtype = torch.float32 if self.code_length < _FLOAT32_EXACT else torch.float64
            self.query = query.to(dtype)
            self.database = database.to(dtype)
        else:
            dtype = torch.promote_types(torch.promote_types(query.dtype, database.dtype), torch.float32)
            self.query = F.normalize(query.to(dtype), dim=1)
            self.database = F.normalize(database.to(dtype), dim=1)
        # A caller that keeps the database packed in faiss (BinaryCodeIndex) passes it.
        self._faiss_index: Any = faiss_index
        self._packed_query: np.ndarray | None = None
        self._low: tuple[Tensor, Tensor] | None = None
        if self.engine == "faiss" and (metric != "hamming" or self.device.type != "cpu" or faiss_module() is None):
            raise ValueError(
                "engine='faiss' needs metric='hamming', CPU tensors and faiss installed "
                f"(pip install 'gg-augment[faiss]'); got metric={metric!r} on {self.device}"
            )

    @property
    def num_candidates(self) -> int:
        """How many database items each query can retrieve."""
        return self.num_database - 1 if self.exclude_self else self.num_database

    def chunk_size(self, depth: int, chunk_size: int | None, full_rows: bool = True) -> int:
        """Queries per block: ``chunk_size``, or as many as fit the work budget. ``full_rows``:
        the caller builds its own (rows, N) tensors per block (multi-hot relevance)."""
        if chunk_size is not None:
            return min(chunk_size, self.num_queries)
        # Per query row: distance (4-8 B), key or sort values (8 B), sort/topk indices (8 B),
        # relevance (4 B) over the database, plus a handful of float32 rows over the depth.
        per_row = 32 * self.num_database + 40 * depth
        if not full_rows and depth < self.num_database and self._use_faiss():
            # faiss keeps no (rows, N) work, only the results: few calls take them all.
            per_row = 48 * depth
        return max(1, min(self.num_queries, _WORK_BUDGET_BYTES // per_row))

    def blocks(self, chunk_size: int) -> Iterator[slice]:
        for start in range(0, self.num_queries, chunk_size):
            yield slice(start, min(start + chunk_size, self.num_queries))

    def distances(self, rows: slice) -> Tensor:
        """(c, N) distances; integer-valued for Hamming."""
        similarity = self.query[rows] @ self.database.T
        if self.metric == "hamming":
            # round() removes any rounding a reduced-precision matmul backend might add.
            return ((self.code_length - similarity) * 0.5).round_()
        return 1.0 - similarity

    def order(self, rows: slice, depth: int) -> Tensor:
        """(c, depth) database indices, nearest first, ties broken by index."""
        if self.metric == "hamming":
            return self.nearest(rows, depth)[1]
        distance = self.distances(rows)
        if self.exclude_self:
            distance.scatter_(1, self._own_index(rows), float("inf"))
        # Real-valued distances: no key encodes their ties exactly, so a stable full sort.
        return torch.sort(distance, dim=1, stable=True).indices[:, :depth]

    def nearest(self, rows: slice, depth: int) -> tuple[Tensor, Tensor]:
        """Hamming ``(distances, indices)``, (c, depth) int64, in (distance, index) order."""
        # Under torch.compile only the key path traces into one graph (no numpy, no nonzero).
        compiling = torch.compiler.is_compiling()
        if depth < self.num_database and not compiling and self._use_faiss():
            return self._faiss_nearest(rows, depth)
        if depth * 8 <= self.num_database and self.device.type == "cpu" and self.engine != "faiss" and not compiling:
            parts = [
                self._candidate_nearest(slice(start, min(start + _CANDIDATE_ROWS, rows.stop)), depth)
                for start in range(rows.start, rows.stop, _CANDIDATE_ROWS)
            ]
            return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
        key = self._hamming_keys(rows)
        if depth < self.num_database:
            # torch.topk is not stable, but the keys are unique, so its result is exact.
            key = key.topk(depth, dim=1, largest=False, sorted=True).values
        else:
            key = torch.sort(key, dim=1).values
        return self._split_keys(key)

    # ----------------------------------------------------------------------------------
    # Hamming engines
    # ----------------------------------------------------------------------------------

    def _stride(self) -> int:
        return self.num_database + self.num_database % 2

    def _split_keys(self, key: Tensor) -> tuple[Tensor, Tensor]:
        stride = self._stride()
        key = key.long()
        return torch.div(key, stride, rounding_mode="floor"), torch.remainder(key, stride)

    def _own_index(self, rows: slice) -> Tensor:
        return torch.arange(rows.start, rows.stop, device=self.device)[:, None]

    def _hamming_keys(self, rows: slice) -> Tensor:
        """(c, N) unique keys ``dist * M + index`` (M = N rounded up to even).

        Their order is exactly (distance, index), so an unstable topk or sort on them is exact.
        """
        num_database, code_length = self.num_database, self.code_length
        stride = self._stride()
        # Self-exclusion uses distance K + 1, so keys stay below (K + 2) * M.
        if (code_length + 2) * stride < _FLOAT32_EXACT and self.query.dtype == torch.float32:
            # dist * M + index = index + K M / 2 - (M / 2) q·d as one addmm. M is even, so every
            # partial result is an integer below 2**24, exact in float32 in any summation order.
            bias = torch.arange(num_database, device=self.device, dtype=torch.float32)
            bias += code_length * stride // 2
            key = torch.addmm(bias, self.query[rows], self.database.T, alpha=-(stride // 2))
            key_dtype = torch.float32
        else:
            index = torch.arange(num_database, device=self.device, dtype=torch.float64)
            key = self.distances(rows).to(torch.float64).mul_(stride).add_(index)
            key_dtype = torch.float64
        if self.exclude_self:
            own = self._own_index(rows)
            # One past the largest distance keeps the keys unique and pushes self to the end.
            far_key = own.to(key_dtype) + float((code_length + 1) * stride)
            key.scatter_(1, own, far_key)
        return key

    def _candidate_nearest(self, rows: slice, depth: int) -> tuple[Tensor, Tensor]:
        """The CPU path: exact top-k over the candidates at or above a sampled threshold."""
        if self._low is None:
            dtype = _similarity_dtype(self.device, self.code_length)
            self._low = self.query.to(dtype), self.database.to(dtype)
        query, database = self._low
        similarity = query[rows] @ database.T
        count = similarity.shape[0]
        if self.exclude_self:
            # Distance K + 1: below every real one, as in the key path.
            similarity.scatter_(1, self._own_index(rows), -self.code_length - 2.0)
        sample = similarity[:, ::_SAMPLE_STRIDE]
        kept = min(sample.shape[1], math.ceil(_SAMPLE_MARGIN * depth / _SAMPLE_STRIDE) + 8)
        threshold = sample.topk(kept, dim=1).values[:, -1:]
        row, column = (similarity >= threshold).nonzero(as_tuple=True)
        counts = torch.bincount(row, minlength=count)
        if bool((counts < depth).any()):  # an unlucky sample: the exact full-row path
            key = self._hamming_keys(rows).topk(depth, dim=1, largest=False, sorted=True).values
            return self._split_keys(key)
        stride = self._stride()
        position = torch.arange(row.numel()) - (counts.cumsum(0) - counts)[row]
        distance = similarity[row, column].float().mul_(-0.5).add_(0.5 * self.code_length).long()
        key = torch.full((count, int(counts.max())), (self.code_length + 2) * stride, dtype=torch.long)
        key[row, position] = distance * stride + column
        return self._split_keys(key.topk(depth, dim=1, largest=False, sorted=True).values)

    def _use_faiss(self) -> bool:
        if self.engine == "torch" or self.metric != "hamming" or self.device.type != "cpu":
            return False
        return faiss_module() is not None

    def _faiss_nearest(self, rows: slice, depth: int) -> tuple[Tensor, Tensor]:
        if self._faiss_index is None:
            faiss = require_faiss("engine='faiss'")
            packed = pack_bits(self.database)
            self._faiss_index = faiss.IndexBinaryFlat(8 * packed.shape[1])
            self._faiss_index.add(packed)
        # Both faiss selections give the (distance, index) order: the counting one fills its
        # per-distance buckets in database order; the heap admits only strictly closer items
        # while scanning in order and breaks equal distances by id when it sorts (tests check
        # both on tie-heavy codes). The heap is faster for a short list, counting for a long.
        self._faiss_index.use_heap = depth + 1 <= _FAISS_HEAP_DEPTH
        if self._packed_query is None:
            self._packed_query = pack_bits(self.query)
        extra = 1 if self.exclude_self else 0
        found_distances, found = self._faiss_index.search(self._packed_query[rows], depth + extra)
        distances, indices = torch.from_numpy(found_distances).long(), torch.from_numpy(found)
        if self.exclude_self:
            # Drop the own item where it was found, else the last (one past the depth).
            keep = indices != self._own_index(rows)
            keep[:, -1] &= ~keep.all(dim=1)
            distances, indices = distances[keep].view(-1, depth), indices[keep].view(-1, depth)
        return distances, indices
