"""faiss interop: ±1 codes served from IndexBinaryFlat agree with our Hamming ranking."""

from __future__ import annotations

import pytest
import torch

from gg_augment.hashing import BinaryCodeIndex, pack_codes, sign_codes
from gg_augment.metrics import hamming_top_k

pytest.importorskip("faiss")


def _codes(count, bits, seed):
    return sign_codes(torch.randn(count, bits, generator=torch.Generator().manual_seed(seed)))


@pytest.mark.parametrize("bits", [16, 64])
def test_faiss_top_k_agrees_with_our_ranking_up_to_ties(device, bits):
    database, query = _codes(3000, bits, 0).to(device), _codes(200, bits, 1).to(device)
    index = BinaryCodeIndex(bits)
    index.add(database)
    faiss_distances, faiss_ids = index.search(query, k=50)
    our_distances, our_ids = hamming_top_k(query, database, k=50)
    assert faiss_ids.device == query.device
    assert torch.equal(faiss_distances, our_distances)  # the same distance profile, exactly
    true = ((bits - query.float() @ database.float().T) / 2).long()
    assert torch.equal(true.gather(1, faiss_ids), faiss_distances)  # faiss's distances are the ids' own
    kth = our_distances[:, -1:]
    for q in range(query.shape[0]):  # strictly closer than the k-th: the same set; at it: any of the ties
        closer = set(our_ids[q][our_distances[q] < kth[q]].tolist())
        assert closer == set(faiss_ids[q][faiss_distances[q] < kth[q]].tolist())


def test_hamming_top_k_breaks_ties_by_index():
    database = torch.tensor([[1, 1, -1, -1], [1, 1, 1, 1], [1, 1, -1, -1], [-1, -1, -1, -1]]).float()
    distances, ids = hamming_top_k(torch.tensor([[1.0, 1, -1, -1]]), database, k=3)
    assert ids.tolist() == [[0, 2, 1]] and distances.tolist() == [[0, 0, 2]]


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: BinaryCodeIndex(0), ValueError, "code_length must be an int >= 1"),
        (lambda: pack_codes(torch.full((2, 8), 0.5)), ValueError, "sign_codes"),
        (lambda: BinaryCodeIndex(16).add(_codes(4, 8, 0)), ValueError, r"codes must have shape \(N, 16\)"),
        (lambda: BinaryCodeIndex(16).search(_codes(4, 16, 0), k=3), ValueError, "index is empty"),
    ],
)
def test_bad_faiss_inputs_are_named(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_faiss_benchmark_checks_agreement_and_writes_results(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    benchmarks = Path(__file__).resolve().parents[2] / "benchmarks"
    finished = subprocess.run(
        [sys.executable, "faiss_search.py", "--queries", "50", "--database", "500", "--k", "10", "--repeats", "2", "--out", str(tmp_path)],
        cwd=benchmarks, capture_output=True, text=True, timeout=1800,
    )
    assert finished.returncode == 0, finished.stderr[-2000:]
    for suffix in ("md", "csv", "png"):
        assert (tmp_path / f"faiss_search.{suffix}").stat().st_size > 0
