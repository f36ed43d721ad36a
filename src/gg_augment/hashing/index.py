"""A Hamming index of binary codes to serve: ids, removal, save/load, an optional HNSW graph.

Codes are stored packed, 8 bits per byte. The exact search is the library's own ranking
(:mod:`gg_augment.metrics.ranking`: faiss's ``IndexBinaryFlat`` when the extra is installed,
else torch), so it returns what :func:`~gg_augment.hashing.hamming_top_k` and the mAP rank:
nearest first, ties broken by insertion order. ``approximate="hnsw"`` adds faiss's
``IndexBinaryHNSW`` graph for large databases (recall below 1; measured in
``benchmarks/faiss_search.py``).

Accepted codes, for the database and the queries alike: ±1 (any real or integer dtype, the
form :func:`~gg_augment.hashing.sign_codes` gives), {0, 1} (integer or real), or bool; a bit is
set where the code is > 0 (True). Anything else is refused: real-valued outputs such as tanh
codes would be binarised silently by a threshold the user did not choose, so they must go
through :func:`~gg_augment.hashing.sign_codes` first.
"""

from __future__ import annotations

import io
import os
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .._checks import _shape, check_choice, check_int, check_tensor
from ..io import save_checkpoint
from ..metrics.ranking import Ranking, faiss_module, require_faiss

__all__ = ["BinaryCodeIndex", "pack_codes"]

_FORMAT = "gg_augment.BinaryCodeIndex"
_VERSION = 1


def _bits(codes: object, name: str, code_length: int | None = None) -> Tensor:
    """(N, K) bool bits of ±1, {0, 1} or bool codes; anything else is refused, naming ``name``."""
    codes = check_tensor(codes, name)
    if codes.ndim != 2 or (code_length is not None and codes.shape[1] != code_length):
        expected = "(N, K)" if code_length is None else f"(N, {code_length})"
        raise ValueError(f"{name} must have shape {expected}; got {_shape(codes)}")
    values = codes.detach()
    if values.dtype == torch.bool:
        return values
    if values.is_complex():
        raise TypeError(f"{name} must be ±1, {{0, 1}} or bool codes; got {values.dtype}")
    signed = (values == 1) | (values == -1)
    binary = (values == 1) | (values == 0)
    if not (bool(signed.all()) or bool(binary.all())):
        bad = values[~(signed | binary)]
        example = bad[0].item() if bad.numel() else "a mix of -1 and 0"
        raise ValueError(
            f"{name} must hold ±1 codes, {{0, 1}} bits or bools; got {example!r}. Binarise "
            "real outputs (e.g. tanh codes) with gg_augment.hashing.sign_codes first"
        )
    return values > 0


def pack_codes(codes: Tensor) -> np.ndarray:
    """(N, K) ±1, {0, 1} or bool codes -> (N, ceil(K/8)) uint8, bit set where the code is +1."""
    return np.packbits(_bits(codes, "codes").cpu().numpy(), axis=1)


class BinaryCodeIndex:
    """An index of binary codes with user ids: add, remove, search, save and load.

    Args:
        code_length: K, the number of bits (>= 1).
        approximate: ``None`` (exact search only) or ``"hnsw"``: faiss's
            ``IndexBinaryHNSW`` answers :meth:`search` by default (needs the faiss extra).
        neighbors: the HNSW graph's links per node (M).
        ef_search: the HNSW search breadth (higher: better recall, slower).

    Examples:
        >>> from gg_augment.hashing import sign_codes
        >>> index = BinaryCodeIndex(64)
        >>> index.add(sign_codes(torch.randn(100, 64)), ids=torch.arange(1000, 1100))
        >>> distances, ids = index.search(sign_codes(torch.randn(3, 64)), k=5)
        >>> ids.shape
        torch.Size([3, 5])
    """

    def __init__(
        self, code_length: int, *, approximate: str | None = None, neighbors: int = 32, ef_search: int = 64
    ) -> None:
        self.code_length = check_int(code_length, "code_length", minimum=1)
        if approximate is not None:
            check_choice(approximate, "approximate", ("hnsw",))
            require_faiss("BinaryCodeIndex(approximate='hnsw')")
        self.approximate = approximate
        self.neighbors = check_int(neighbors, "neighbors", minimum=2)
        self.ef_search = check_int(ef_search, "ef_search", minimum=1)
        self.codes = torch.zeros(0, (self.code_length + 7) // 8, dtype=torch.uint8)
        self.ids = torch.zeros(0, dtype=torch.int64)
        # Built on demand, dropped when the contents change.
        self._database: Tensor | None = None  # ±1 float32, for the torch engine
        self._flat: Any = None  # faiss IndexBinaryFlat, for the faiss engine
        self._graph: Any = None  # faiss IndexBinaryHNSW

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code_length={self.code_length}, size={len(self)}, approximate={self.approximate!r})"

    # ----------------------------------------------------------------------------------
    # contents
    # ----------------------------------------------------------------------------------

    def add(self, codes: Tensor, ids: Tensor | None = None) -> None:
        """Append (N, K) codes under ``ids`` (N distinct int64, none already in the index);
        without ids they continue from the largest id so far + 1."""
        packed = torch.from_numpy(np.packbits(_bits(codes, "codes", self.code_length).cpu().numpy(), axis=1))
        count = packed.shape[0]
        if ids is None:
            start = int(self.ids.max()) + 1 if len(self) else 0
            new_ids = torch.arange(start, start + count, dtype=torch.int64)
        else:
            new_ids = self._check_ids(ids, "ids")
            if new_ids.shape[0] != count:
                raise ValueError(f"ids must have shape ({count},) to match codes; got {_shape(new_ids)}")
            if new_ids.unique().numel() != count:
                raise ValueError("ids must be distinct; got repeated ids")
            taken = torch.isin(new_ids, self.ids)
            if bool(taken.any()):
                raise ValueError(f"ids already in the index: {new_ids[taken][:5].tolist()}; remove() them first")
        self.codes = torch.cat([self.codes, packed])
        self.ids = torch.cat([self.ids, new_ids])
        self._changed()

    def remove(self, ids: Tensor) -> int:
        """Remove the codes stored under ``ids`` (each must be in the index); returns how many.

        The others keep their relative order, so ties still break by insertion order."""
        ids = self._check_ids(ids, "ids")
        missing = ~torch.isin(ids, self.ids)
        if bool(missing.any()):
            raise ValueError(f"ids not in the index: {ids[missing][:5].tolist()}")
        keep = ~torch.isin(self.ids, ids)
        removed = len(self) - int(keep.sum())
        self.codes, self.ids = self.codes[keep], self.ids[keep]
        self._changed()
        return removed

    @staticmethod
    def _check_ids(ids: object, name: str) -> Tensor:
        ids = check_tensor(ids, name)
        if ids.ndim != 1 or ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
            raise TypeError(f"{name} must be a 1-D integer tensor; got {ids.dtype} of shape {_shape(ids)}")
        return ids.detach().cpu().to(torch.int64)

    def _changed(self) -> None:
        self._database = self._flat = self._graph = None

    # ----------------------------------------------------------------------------------
    # search
    # ----------------------------------------------------------------------------------

    def search(self, query: Tensor, k: int, *, exact: bool | None = None) -> tuple[Tensor, Tensor]:
        """The ``k`` nearest stored codes of each query: ``(distances, ids)``.

        Args:
            query: (Q, K) codes in any accepted form.
            k: neighbours per query, >= 1 (capped at the index size).
            exact: ``True`` for the exact search; ``False`` for the HNSW graph. Default: the
                graph when the index was built with ``approximate``, else exact.

        Returns:
            (Q, min(k, len)) int64 Hamming distances and the user's ids, on the query's
            device. The exact search breaks ties by insertion order.
        """
        k = check_int(k, "k", minimum=1)
        bits = _bits(query, "query", self.code_length)
        if len(self) == 0:
            raise ValueError("the index is empty: add() codes before search()")
        depth = min(k, len(self))
        use_graph = self.approximate is not None if exact is None else not exact
        if use_graph and self.approximate is None:
            raise ValueError("search(exact=False) needs an index built with approximate='hnsw'")
        if use_graph:
            distances, positions = self._graph_search(bits, depth)
        else:
            distances, positions = self._exact_search(bits, depth)
        device = check_tensor(query, "query").device
        return distances.to(device), self.ids[positions].to(device)

    def _signed(self, packed: Tensor) -> Tensor:
        bits = np.unpackbits(packed.numpy(), axis=1, count=self.code_length)
        return torch.from_numpy(bits).to(torch.float32).mul_(2).sub_(1)

    def _exact_search(self, bits: Tensor, depth: int) -> tuple[Tensor, Tensor]:
        query = bits.cpu().to(torch.float32).mul_(2).sub_(1)
        if self._database is None:
            self._database = self._signed(self.codes)
        # The packed database is reused by faiss: no repacking per search.
        flat = self._flat_index() if faiss_module() is not None else None
        ranking = Ranking(query, self._database, "hamming", faiss_index=flat)
        parts = [ranking.nearest(rows, depth) for rows in ranking.blocks(ranking.chunk_size(depth, None, full_rows=False))]
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])

    def _flat_index(self) -> Any:
        if self._flat is None:
            faiss = require_faiss("the faiss engine")
            flat = faiss.IndexBinaryFlat(8 * self.codes.shape[1])
            flat.add(self.codes.numpy())
            self._flat = flat
        return self._flat

    def _graph_search(self, bits: Tensor, depth: int) -> tuple[Tensor, Tensor]:
        if self._graph is None:
            faiss = require_faiss("BinaryCodeIndex(approximate='hnsw')")
            graph = faiss.IndexBinaryHNSW(8 * self.codes.shape[1], self.neighbors)
            graph.add(self.codes.numpy())
            self._graph = graph
        self._graph.hnsw.efSearch = max(self.ef_search, depth)
        packed = np.packbits(bits.cpu().numpy(), axis=1)
        distances, positions = self._graph.search(packed, depth)
        return torch.from_numpy(distances).long(), torch.from_numpy(positions).long()

    # ----------------------------------------------------------------------------------
    # persistence
    # ----------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the index to ``path`` atomically (a reader sees the old file or the new one).

        The file holds tensors and plain values only (loadable with ``weights_only=True``);
        an HNSW graph is saved too, so the reloaded index answers exactly as this one."""
        graph = None
        if self.approximate is not None and len(self):
            if self._graph is None:
                self._graph_search(torch.zeros(1, self.code_length, dtype=torch.bool), 1)
            graph = torch.from_numpy(require_faiss().serialize_index_binary(self._graph).copy())
        save_checkpoint(
            {
                "format": _FORMAT,
                "version": _VERSION,
                "code_length": self.code_length,
                "approximate": self.approximate,
                "neighbors": self.neighbors,
                "ef_search": self.ef_search,
                "codes": self.codes,
                "ids": self.ids,
                "graph": graph,
            },
            path,
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> BinaryCodeIndex:
        """Read an index written by :meth:`save` (``weights_only=True``: no code runs)."""
        with open(path, "rb") as handle:
            payload = handle.read()
        try:
            state = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
        except Exception as error:
            raise ValueError(f"{os.fspath(path)} is not a saved BinaryCodeIndex: {error}") from error
        if not isinstance(state, dict) or state.get("format") != _FORMAT:
            raise ValueError(f"{os.fspath(path)} is not a saved BinaryCodeIndex (no {_FORMAT!r} marker)")
        if state.get("version") != _VERSION:
            raise ValueError(f"{os.fspath(path)}: unsupported BinaryCodeIndex version {state.get('version')!r}")
        index = cls(
            state["code_length"], approximate=state["approximate"], neighbors=state["neighbors"],
            ef_search=state["ef_search"],
        )
        codes, ids = state["codes"], state["ids"]
        if codes.dtype != torch.uint8 or codes.shape != (ids.shape[0], index.codes.shape[1]):
            raise ValueError(f"{os.fspath(path)}: codes of shape {_shape(codes)} do not fit {ids.shape[0]} ids")
        index.codes, index.ids = codes.contiguous(), ids.to(torch.int64)
        if state["graph"] is not None:
            index._graph = require_faiss("loading an HNSW BinaryCodeIndex").deserialize_index_binary(state["graph"].numpy())
        return index
