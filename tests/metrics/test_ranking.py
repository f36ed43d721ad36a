"""The ranking engine: every engine gives the (distance, index) order of a stable full sort."""

from __future__ import annotations

import pytest
import torch

import gg_augment.metrics.ranking as ranking_module
from gg_augment.hashing import hamming_top_k
from gg_augment.metrics import mean_average_precision


def _codes(count, bits, seed):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 2, (count, bits), generator=generator).float() * 2 - 1


def _reference(query, database, k, exclude_self=False):
    """A full stable sort of exact integer distances, the definition of the order."""
    distance = ((query.shape[1] - query.double() @ database.double().T) / 2).long()
    if exclude_self:
        distance.fill_diagonal_(query.shape[1] + 1)
    order = torch.sort(distance, dim=1, stable=True).indices[:, :k]
    return distance.gather(1, order), order


def _engines():
    engines = ["torch"]
    if ranking_module.faiss_module() is not None:
        engines.append("faiss")
    return engines


@pytest.mark.parametrize("engine", _engines())
@pytest.mark.parametrize("bits", [8, 24, 64])
def test_top_k_matches_a_stable_full_sort_with_many_ties(engine, bits):
    # 8 bits over 3,000 codes: hundreds of items share each distance, so the tie rule decides.
    query, database = _codes(40, bits, 0), _codes(3000, bits, 1)
    for k in (10, 100):  # faiss: its heap (short lists) and its counting selection
        distances, indices = hamming_top_k(query, database, k=k, engine=engine)
        expected_distances, expected_indices = _reference(query, database, k)
        assert torch.equal(distances, expected_distances)
        assert torch.equal(indices, expected_indices)


def test_cpu_candidate_path_falls_back_when_the_sample_misses(monkeypatch):
    # A margin far below 1 makes the sampled threshold keep too few candidates for every row.
    query, database = _codes(20, 16, 2), _codes(2000, 16, 3)
    monkeypatch.setattr(ranking_module, "_SAMPLE_MARGIN", 0.01)
    distances, indices = hamming_top_k(query, database, k=200, engine="torch")
    expected = _reference(query, database, 200)
    assert torch.equal(distances, expected[0]) and torch.equal(indices, expected[1])


@pytest.mark.parametrize("engine", _engines())
@pytest.mark.parametrize("k", [10, 50])
def test_exclude_self_drops_only_the_own_item(engine, k):
    codes = _codes(600, 8, 4)  # many exact duplicates at distance 0
    labels = torch.arange(600) % 5
    value = mean_average_precision(codes, codes, labels, labels, k=k, exclude_self=True, engine=engine)
    _, order = _reference(codes, codes, k, exclude_self=True)
    relevant = (labels[order] == labels[:, None]).double()
    hits = relevant.cumsum(1)
    ranks = torch.arange(1, k + 1, dtype=torch.float64)
    ap = torch.where(hits[:, -1] > 0, (hits / ranks * relevant).sum(1) / hits[:, -1].clamp_min(1), 0.0)
    torch.testing.assert_close(value, ap.mean().float())


def test_engines_agree_on_map_at_the_benchmark_shape_in_small():
    query, database = _codes(64, 64, 5), _codes(20_000, 64, 6)
    ql, dl = torch.arange(64) % 10, torch.arange(20_000) % 10
    values = {engine: mean_average_precision(query, database, ql, dl, k=1000, engine=engine) for engine in _engines()}
    _, order = _reference(query, database, 1000)
    relevant = (dl[order] == ql[:, None]).float()
    hits = relevant.cumsum(1)
    expected = ((hits / torch.arange(1, 1001) * relevant).sum(1) / hits[:, -1].clamp_min(1)).mean()
    for value in values.values():
        torch.testing.assert_close(value, expected)


def test_engine_is_checked():
    codes = _codes(4, 8, 0)
    with pytest.raises(ValueError, match="engine must be one of"):
        hamming_top_k(codes, codes, k=2, engine="gpu")
    with pytest.raises(ValueError, match="engine='faiss' needs metric='hamming'"):
        mean_average_precision(codes, codes, torch.arange(4), torch.arange(4), metric="cosine", engine="faiss")


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32])
def test_cpu_candidate_path_is_exact_in_every_similarity_dtype(monkeypatch, dtype):
    # Machines without bf16 kernels compute the similarities in fp16 or fp32.
    monkeypatch.setattr(ranking_module, "_similarity_dtype", lambda device, code_length: dtype)
    query, database = _codes(24, 32, 7), _codes(2500, 32, 8)
    distances, indices = hamming_top_k(query, database, k=60, engine="torch")
    expected = _reference(query, database, 60)
    assert torch.equal(distances, expected[0]) and torch.equal(indices, expected[1])
