"""BinaryCodeIndex: ids, removal, accepted code forms, save/load, the optional HNSW graph."""

from __future__ import annotations

import pytest
import torch

from gg_augment.hashing import BinaryCodeIndex, hamming_top_k, sign_codes
from gg_augment.metrics.ranking import faiss_module


def _codes(count, bits, seed):
    return sign_codes(torch.randn(count, bits, generator=torch.Generator().manual_seed(seed)))


@pytest.fixture(params=["faiss", "torch"])
def engine(request, monkeypatch):
    """Run the exact search on faiss (when installed) and on the torch engine."""
    if request.param == "faiss":
        if faiss_module() is None:
            pytest.skip("faiss not installed")
    else:
        monkeypatch.setattr("gg_augment.hashing.index.faiss_module", lambda: None)
        monkeypatch.setattr("gg_augment.metrics.ranking.faiss_module", lambda: None)
    return request.param


@pytest.mark.parametrize("bits", [12, 64])
def test_exact_search_returns_the_users_ids_in_the_library_ranking(engine, bits):
    database, query = _codes(500, bits, 0), _codes(30, bits, 1)
    ids = torch.arange(500) * 7 + 1000
    index = BinaryCodeIndex(bits)
    index.add(database, ids=ids)
    distances, found = index.search(query, k=20)
    expected_distances, positions = hamming_top_k(query, database, k=20)
    assert torch.equal(distances, expected_distances)
    assert torch.equal(found, ids[positions])


def test_bool_and_binary_codes_give_the_signed_codes_results(engine):
    database, query = _codes(200, 16, 2), _codes(5, 16, 3)
    signed = BinaryCodeIndex(16)
    signed.add(database)
    for form in (lambda c: c > 0, lambda c: (c > 0).long(), lambda c: (c > 0).float()):
        index = BinaryCodeIndex(16)
        index.add(form(database))
        for a, b in zip(index.search(form(query), 10), signed.search(query, 10), strict=True):
            assert torch.equal(a, b)


def test_tanh_codes_are_refused_with_the_fix():
    index = BinaryCodeIndex(8)
    with pytest.raises(ValueError, match="tanh codes.*sign_codes"):
        index.add(torch.tanh(torch.randn(4, 8)))
    with pytest.raises(ValueError, match="a mix of -1 and 0"):
        index.add(torch.tensor([[-1.0, 0, 1, 1, 1, 1, 1, 1]]))
    with pytest.raises(ValueError, match="sign_codes"):
        index.add(torch.full((2, 8), float("nan")))


def test_remove_keeps_the_others_and_their_order(engine):
    database, query = _codes(300, 32, 4), _codes(10, 32, 5)
    index = BinaryCodeIndex(32)
    index.add(database[:150])
    index.add(database[150:])  # ids continue: 150..299
    assert index.remove(torch.arange(0, 300, 3)) == 100 and len(index) == 200
    kept = torch.tensor([i for i in range(300) if i % 3])
    distances, ids = index.search(query, 15)
    expected_distances, positions = hamming_top_k(query, database[kept], k=15)
    assert torch.equal(distances, expected_distances) and torch.equal(ids, kept[positions])
    with pytest.raises(ValueError, match="ids not in the index: \\[0\\]"):
        index.remove(torch.tensor([0]))
    with pytest.raises(ValueError, match="already in the index"):
        index.add(database[:1], ids=torch.tensor([1]))
    with pytest.raises(ValueError, match="distinct"):
        index.add(database[:2], ids=torch.tensor([900, 900]))


def test_saved_and_reloaded_index_returns_the_same_ids_and_distances(tmp_path, engine):
    database, query = _codes(400, 48, 6), _codes(20, 48, 7)
    index = BinaryCodeIndex(48)
    index.add(database, ids=torch.randperm(10_000, generator=torch.Generator().manual_seed(0))[:400])
    path = tmp_path / "codes.index"
    index.save(path)
    loaded = BinaryCodeIndex.load(path)
    assert len(loaded) == 400 and loaded.code_length == 48
    for a, b in zip(index.search(query, 25), loaded.search(query, 25), strict=True):
        assert torch.equal(a, b)
    assert [p.name for p in tmp_path.iterdir()] == ["codes.index"]  # no temp file left


def test_load_refuses_other_files(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(ValueError, match="not a saved BinaryCodeIndex"):
        BinaryCodeIndex.load(path)
    path.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="not a saved BinaryCodeIndex"):
        BinaryCodeIndex.load(path)


def test_hnsw_index_recall_and_round_trip(tmp_path):
    pytest.importorskip("faiss")
    database, query = _codes(3000, 64, 8), _codes(50, 64, 9)
    index = BinaryCodeIndex(64, approximate="hnsw", ef_search=128)
    index.add(database, ids=torch.arange(3000) + 5)
    distances, ids = index.search(query, 10)
    exact_distances, exact_ids = index.search(query, 10, exact=True)
    recall = sum(len(set(a.tolist()) & set(b.tolist())) for a, b in zip(ids, exact_ids, strict=True)) / exact_ids.numel()
    assert recall >= 0.8
    assert torch.all(distances >= exact_distances)  # never closer than the true k-th neighbours
    index.save(tmp_path / "graph.index")
    loaded = BinaryCodeIndex.load(tmp_path / "graph.index")
    for a, b in zip(index.search(query, 10), loaded.search(query, 10), strict=True):
        assert torch.equal(a, b)


def test_search_arguments_are_checked():
    index = BinaryCodeIndex(16)
    with pytest.raises(ValueError, match="index is empty"):
        index.search(_codes(2, 16, 0), 3)
    index.add(_codes(5, 16, 0))
    with pytest.raises(ValueError, match=r"query must have shape \(N, 16\)"):
        index.search(_codes(2, 8, 0), 3)
    with pytest.raises(ValueError, match="approximate='hnsw'"):
        index.search(_codes(2, 16, 0), 3, exact=False)
    with pytest.raises(TypeError, match="ids must be a 1-D integer tensor"):
        index.add(_codes(2, 16, 0), ids=torch.zeros(2))
    assert index.search(_codes(2, 16, 0), 50)[1].shape == (2, 5)  # k capped at the size
