"""Retrieval metrics against brute-force per-query references written here in plain Python."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from gg_augment.metrics import (
    mean_average_precision,
    precision_at_k,
    precision_recall_curve,
    recall_at_k,
)

# --------------------------------------------------------------------------------------
# brute-force references: one query at a time, Python sort on (distance, index)
# --------------------------------------------------------------------------------------


def _distance_rows(query, database, metric):
    q = query.double().cpu().tolist()
    d = database.double().cpu().tolist()
    rows = []
    for qi in q:
        if metric == "hamming":
            rows.append([sum(a != b for a, b in zip(qi, dj)) for dj in d])
        else:
            qn = math.sqrt(sum(a * a for a in qi))
            row = []
            for dj in d:
                dn = math.sqrt(sum(b * b for b in dj))
                row.append(1.0 - sum(a * b for a, b in zip(qi, dj)) / (qn * dn))
            rows.append(row)
    return rows


def _is_relevant(query_labels, database_labels):
    ql = query_labels.cpu().tolist()
    dl = database_labels.cpu().tolist()
    if query_labels.ndim == 1:
        return [[a == b for b in dl] for a in ql]
    return [[any(x != 0 and y != 0 for x, y in zip(a, b)) for b in dl] for a in ql]


def _ranked(query, database, query_labels, database_labels, metric, exclude_self=False):
    distances = _distance_rows(query, database, metric)
    relevant = _is_relevant(query_labels, database_labels)
    out = []
    for i, row in enumerate(distances):
        order = sorted(range(len(row)), key=lambda j: (row[j], j))
        if exclude_self:
            order = [j for j in order if j != i]
        out.append([relevant[i][j] for j in order])
    return out


def ref_map(query, database, query_labels, database_labels, topk=None, metric="hamming",
            exclude_self=False):
    aps = []
    for rel in _ranked(query, database, query_labels, database_labels, metric, exclude_self):
        rel = rel if topk is None else rel[:topk]
        hits, total = 0, 0.0
        for rank, is_rel in enumerate(rel, start=1):
            if is_rel:
                hits += 1
                total += hits / rank
        aps.append(total / hits if hits else 0.0)
    return sum(aps) / len(aps)


def ref_recall_precision(query, database, query_labels, database_labels, ks, metric,
                         exclude_self=False):
    ranked = _ranked(query, database, query_labels, database_labels, metric, exclude_self)
    recall, precision = {}, {}
    for k in ks:
        recall[k] = sum(any(rel[:k]) for rel in ranked) / len(ranked)
        precision[k] = sum(sum(rel[:k]) / len(rel[:k]) for rel in ranked) / len(ranked)
    return recall, precision


def ref_pr_curve(query, database, query_labels, database_labels):
    distances = _distance_rows(query, database, "hamming")
    relevant = _is_relevant(query_labels, database_labels)
    bits = query.shape[1]
    precision, recall = [], []
    for radius in range(bits + 1):
        p_sum = r_sum = 0.0
        for row, rel in zip(distances, relevant):
            got = [j for j, dist in enumerate(row) if dist <= radius]
            hit = sum(rel[j] for j in got)
            p_sum += hit / len(got) if got else 0.0
            r_sum += hit / sum(rel) if sum(rel) else 0.0
        precision.append(p_sum / len(distances))
        recall.append(r_sum / len(distances))
    return precision, recall


# --------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------


def _codes(n, bits, generator, device):
    return (torch.randint(0, 2, (n, bits), generator=generator) * 2 - 1).float().to(device)


def _problem(kind, device, num_query=24, num_database=160, bits=8, seed=0):
    """Short codes so there are many distance ties; 5 classes or 6 multi-hot labels."""
    generator = torch.Generator().manual_seed(seed)
    query = _codes(num_query, bits, generator, device)
    database = _codes(num_database, bits, generator, device)
    if kind == "single":
        ql = torch.randint(0, 5, (num_query,), generator=generator)
        dl = torch.randint(0, 5, (num_database,), generator=generator)
    else:
        ql = (torch.rand(num_query, 6, generator=generator) < 0.25).long()
        dl = (torch.rand(num_database, 6, generator=generator) < 0.25).long()
    return query, database, ql.to(device), dl.to(device)


def _close(value, expected, tol=1e-5):
    assert abs(float(value) - expected) <= tol, (float(value), expected)


# --------------------------------------------------------------------------------------
# mean average precision
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["single", "multi"])
@pytest.mark.parametrize("topk", [None, 1, 7, 50, 160, 1000])
def test_map_matches_reference(device, kind, topk):
    query, database, ql, dl = _problem(kind, device)
    result = mean_average_precision(query, database, ql, dl, k=topk)
    assert result.shape == () and result.dtype == torch.float32 and result.device == device
    _close(result, ref_map(query, database, ql, dl, topk=topk))


@given(
    num_query=st.integers(1, 6),
    num_database=st.integers(1, 20),
    bits=st.integers(1, 5),
    topk=st.one_of(st.none(), st.integers(1, 25)),
    seed=st.integers(0, 2**16),
)
def test_map_matches_reference_property(num_query, num_database, bits, topk, seed):
    query, database, ql, dl = _problem("single", "cpu", num_query, num_database, bits, seed)
    _close(mean_average_precision(query, database, ql, dl, k=topk),
           ref_map(query, database, ql, dl, topk=topk))


def test_map_zero_hit_queries_count_as_zero(device):
    codes = torch.tensor([[1, 1], [1, -1], [-1, -1]], device=device)
    database_labels = torch.tensor([0, 0, 1], device=device)
    # Query 0 (class 0) finds items 0 and 1 at ranks 1 and 2 (AP 1); query 1 (class 7) has
    # nothing relevant: AP 0, still in the mean.
    query = codes[:2]
    query_labels = torch.tensor([0, 7], device=device)
    result = mean_average_precision(query, codes, query_labels, database_labels)
    _close(result, 0.5, 1e-7)
    _close(result, ref_map(query, codes, query_labels, database_labels))
    # All queries without hits: exactly 0, not NaN.
    none = mean_average_precision(query, codes, torch.tensor([5, 7], device=device), database_labels)
    assert float(none) == 0.0


def test_map_keeps_the_last_item(device):
    # The only relevant item ranks last; the public toolkits' topk=-1 ("[:-1]") would drop it.
    database = torch.tensor([[1, 1, 1], [1, 1, -1], [1, -1, -1], [-1, -1, -1]], device=device)
    query = database[:1]
    ql = torch.tensor([1], device=device)
    dl = torch.tensor([0, 0, 0, 1], device=device)
    _close(mean_average_precision(query, database, ql, dl, k=None), 0.25, 1e-7)
    _close(mean_average_precision(query, database, ql, dl, k=4), 0.25, 1e-7)
    _close(mean_average_precision(query, database, ql, dl, k=3), 0.0, 0.0)
    with pytest.raises(ValueError, match="no -1 sentinel"):
        mean_average_precision(query, database, ql, dl, k=-1)


def test_map_ties_broken_by_database_index(device):
    # Items 0..3 are all at distance 0; only item 3 is relevant, so it must rank 4th: AP = 1/4.
    database = torch.ones(4, 4, device=device)
    ql = torch.tensor([1], device=device)
    dl = torch.tensor([0, 0, 0, 1], device=device)
    for topk in (None, 4, 10):
        _close(mean_average_precision(database[:1], database, ql, dl, k=topk), 0.25, 1e-7)


@pytest.mark.parametrize("topk", [None, 5])
def test_map_chunking_matches_one_chunk(device, topk):
    query, database, ql, dl = _problem("multi", device, num_query=23)
    whole = mean_average_precision(query, database, ql, dl, k=topk, chunk_size=23)
    for chunk_size in (1, 4, 10, 1000, None):
        chunked = mean_average_precision(query, database, ql, dl, k=topk, chunk_size=chunk_size)
        torch.testing.assert_close(chunked, whole, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("kind", ["single", "multi"])
@pytest.mark.parametrize("topk", [None, 9])
def test_map_cosine_matches_reference(device, kind, topk):
    generator = torch.Generator().manual_seed(3)
    _, _, ql, dl = _problem(kind, device, num_query=15, num_database=60)
    query = torch.randn(15, 6, generator=generator, dtype=torch.float64).to(device)
    database = torch.randn(60, 6, generator=generator, dtype=torch.float64).to(device)
    result = mean_average_precision(query, database, ql, dl, k=topk, metric="cosine")
    _close(result, ref_map(query, database, ql, dl, topk=topk, metric="cosine"))


@pytest.mark.parametrize("metric", ["hamming", "cosine"])
def test_map_exclude_self(device, metric):
    query, _, ql, _ = _problem("single", device, num_query=30)
    if metric == "cosine":
        # Continuous vectors: cosine on ±1 codes has ties that float rounding breaks at random.
        query = torch.randn(30, 5, dtype=torch.float64, device=device)
    result = mean_average_precision(query, query, ql, ql, k=10, metric=metric,
                                    exclude_self=True)
    _close(result, ref_map(query, query, ql, ql, topk=10, metric=metric, exclude_self=True))


def test_map_accepts_integer_codes_and_half_vectors(device):
    query, database, ql, dl = _problem("single", device)
    expected = mean_average_precision(query, database, ql, dl, k=20)
    as_int = mean_average_precision(query.long(), database.to(torch.int8), ql, dl, k=20)
    torch.testing.assert_close(as_int, expected)
    cosine = mean_average_precision(query.half(), database.half(), ql, dl, metric="cosine")
    assert 0.0 <= float(cosine) <= 1.0


def test_auto_chunk_is_bounded_for_large_problems():
    from gg_augment.metrics.ranking import _WORK_BUDGET_BYTES, Ranking

    # 10,000 queries x 100,000 items: blocks must stay far below the full Q x N problem.
    query = torch.ones(2, 64)
    problem = Ranking(query, query, "hamming")
    problem.num_queries, problem.num_database = 10_000, 100_000
    block = problem.chunk_size(1000, None)
    assert 1 <= block < 10_000
    assert block * 32 * 100_000 <= _WORK_BUDGET_BYTES


# --------------------------------------------------------------------------------------
# recall@k and precision@k
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("metric", ["hamming", "cosine"])
@pytest.mark.parametrize("exclude_self", [False, True])
def test_recall_and_precision_match_reference(device, metric, exclude_self):
    query, database, ql, dl = _problem("multi" if metric == "hamming" else "single", device,
                                       num_query=20, num_database=20 if exclude_self else 90)
    if metric == "cosine":
        generator = torch.Generator().manual_seed(1)
        query = torch.randn(20, 5, generator=generator, dtype=torch.float64).to(device)
        database = query if exclude_self else torch.randn(
            90, 5, generator=generator, dtype=torch.float64).to(device)
    if exclude_self:
        database, dl = query, ql
    ks = (1, 2, 4, 8, 500)
    recall = recall_at_k(query, database, ql, dl, k=ks, metric=metric, exclude_self=exclude_self)
    precision = precision_at_k(query, database, ql, dl, k=ks, metric=metric,
                               exclude_self=exclude_self, chunk_size=3)
    ref_recall, ref_precision = ref_recall_precision(query, database, ql, dl, ks, metric,
                                                     exclude_self)
    assert list(recall) == list(ks) and list(precision) == list(ks)
    for k in ks:
        assert recall[k].device == device and recall[k].shape == ()
        _close(recall[k], ref_recall[k])
        _close(precision[k], ref_precision[k])


def test_exclude_self_removes_own_item(device):
    # Every item is its own nearest neighbour; only exclusion makes Recall@1 informative.
    embeddings = torch.eye(3, device=device)
    labels = torch.tensor([0, 1, 2], device=device)
    assert float(recall_at_k(embeddings, embeddings, labels, labels, k=1)[1]) == 1.0
    excluded = recall_at_k(embeddings, embeddings, labels, labels, k=(1, 5), exclude_self=True)
    assert float(excluded[1]) == 0.0 and float(excluded[5]) == 0.0


# --------------------------------------------------------------------------------------
# precision-recall curve
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["single", "multi"])
def test_pr_curve_matches_reference(device, kind):
    query, database, ql, dl = _problem(kind, device, num_query=20, num_database=70, bits=6)
    ql = ql.clone()
    # One query with no relevant item at all (recall 0 by convention).
    if kind == "single":
        ql[0] = 99
    else:
        ql[0] = 0
    precision, recall = precision_recall_curve(query, database, ql, dl, chunk_size=7)
    assert precision.shape == (7,) and recall.shape == (7,) and precision.device == device
    ref_precision, ref_recall = ref_pr_curve(query, database, ql, dl)
    torch.testing.assert_close(precision.cpu().double(), torch.tensor(ref_precision, dtype=torch.float64),
                               rtol=0, atol=1e-6)
    torch.testing.assert_close(recall.cpu().double(), torch.tensor(ref_recall, dtype=torch.float64), rtol=0, atol=1e-6)
    assert bool((recall[1:] >= recall[:-1]).all())
    whole, _ = precision_recall_curve(query, database, ql, dl)
    torch.testing.assert_close(whole, precision)


# --------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------


def _ok(device="cpu"):
    return _problem("single", device, num_query=4, num_database=10)


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        (lambda q, d, ql, dl: (q[0], d, ql, dl), ValueError, r"query must have shape \(Q, K\)"),
        (lambda q, d, ql, dl: (q, d[:, :4], ql, dl), ValueError, "same number of columns K"),
        (lambda q, d, ql, dl: (q[:0], d, ql[:0], dl), ValueError, "at least one row"),
        (lambda q, d, ql, dl: ((q + 1) / 2, d, ql, dl), ValueError, "only ±1 values"),
        (lambda q, d, ql, dl: (q > 0, d, ql, dl), TypeError, "±1 codes"),
        (lambda q, d, ql, dl: (q, d, ql[:3], dl), ValueError, r"query_labels must have shape \(4,\)"),
        (lambda q, d, ql, dl: (q, d, ql.float(), dl), TypeError, "integer dtype"),
        (lambda q, d, ql, dl: (q, d, ql, torch.ones(10, 3)), ValueError, "same kind"),
        (lambda q, d, ql, dl: (q, d, torch.ones(4, 2), torch.ones(10, 3)), ValueError,
         "same number of labels L"),
        ("not a tensor", TypeError, "query must be a torch.Tensor"),
    ],
)
def test_map_input_errors(change, error, match):
    args = _ok()
    args = ([[1, -1]], *args[1:]) if isinstance(change, str) else change(*args)
    with pytest.raises(error, match=match):
        mean_average_precision(*args)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"k": 0}, ValueError, "k must be None"),
        ({"k": -1}, ValueError, "no -1 sentinel"),
        ({"k": 2.5}, TypeError, "k must be None or an int"),
        ({"k": True}, TypeError, "k must be None or an int"),
        ({"metric": "euclidean"}, ValueError, "metric must be one of"),
        ({"chunk_size": 0}, ValueError, "chunk_size must be an int >= 1"),
        ({"exclude_self": True}, ValueError, "exclude_self=True needs the query set"),
    ],
)
def test_map_argument_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        mean_average_precision(*_ok(), **kwargs)


def test_other_metric_errors():
    q, d, ql, dl = _ok()
    with pytest.raises(ValueError, match="k must be an int or hold at least one"):
        recall_at_k(q, d, ql, dl, k=())
    with pytest.raises(ValueError, match=r"each value of k must be an int >= 1; got 0"):
        precision_at_k(q, d, ql, dl, k=(1, 0))
    with pytest.raises(TypeError, match="query must have a floating dtype"):
        recall_at_k(q.long(), d, ql, dl, metric="cosine")
    with pytest.raises(ValueError, match="must be finite"):
        recall_at_k(q.clone().fill_(math.nan), d, ql, dl, metric="cosine")
    with pytest.raises(ValueError, match="needs at least 2 database items"):
        recall_at_k(q[:1], q[:1], ql[:1], ql[:1], exclude_self=True)
    with pytest.raises(ValueError, match="only ±1 values"):
        precision_recall_curve(q * 0.5, d, ql, dl)
    with pytest.raises(TypeError, match="exclude_self must be a bool"):
        recall_at_k(q, d, ql, dl, exclude_self=1)


def test_float64_key_path_matches(monkeypatch):
    # Huge K * N switch the keys to float64; force that path on a small problem.
    import gg_augment.metrics.ranking as metrics

    query, database, ql, dl = _problem("single", "cpu", num_query=12, num_database=40)
    fast = mean_average_precision(query, database, ql, dl, k=9)
    fast_recall = recall_at_k(query, query, ql, ql, k=(1, 5), metric="hamming", exclude_self=True)
    monkeypatch.setattr(metrics, "_FLOAT32_EXACT", 1)
    monkeypatch.setattr(metrics, "faiss_module", lambda: None)  # the key path, not faiss
    torch.testing.assert_close(mean_average_precision(query, database, ql, dl, k=9), fast)
    _close(fast, ref_map(query, database, ql, dl, topk=9))
    wide_recall = recall_at_k(query, query, ql, ql, k=(1, 5), metric="hamming", exclude_self=True)
    assert {k: float(v) for k, v in wide_recall.items()} == {k: float(v) for k, v in fast_recall.items()}
