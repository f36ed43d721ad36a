"""G_cut's cut count under the authors' rule (``count_rule="authors"``).

Their code draws x = z·floor(σ·m), z ~ N(0, 1), redraws while |x| > limit·m, and cuts
n = floor(|x|) of the m candidates. We draw the same law by inverse CDF (no loop).
"""

from __future__ import annotations

import math

import pytest
import torch

from gg_augment import GCut
from gg_augment.functional import attention_to_grid

from ..conftest import make_generator

DRAWS = 40_000


def _counts(rule: str, m: int, device, sigma: float = 0.5, limit: float = 0.5, seed: int = 0) -> torch.Tensor:
    """num_cut for DRAWS samples that each have exactly m candidates (on a 4x4 grid)."""
    attention = torch.ones(DRAWS, 4, 4, device=device)
    attention.view(DRAWS, -1)[:, :m] = 10.0  # m cells above the mean
    module = GCut(grid_size=4, sigma=sigma, limit=limit, count_rule=rule, generator=make_generator(device, seed))
    params = module.generate_params((DRAWS, 1, 4, 4), device, attention=attention_to_grid(attention, (4, 4)))
    assert bool((params["candidates"].flatten(1).sum(1) == m).all())
    return params["num_cut"].cpu()


def test_authors_rule_mean_share_at_m4_is_0110(device):
    share = _counts("authors", 4, device).double().mean().item() / 4
    assert abs(share - 0.110) < 0.01
    ours = _counts("truncated", 4, device).double().mean().item() / 4
    assert abs(ours - 0.192) < 0.01


@pytest.mark.parametrize(("m", "sigma", "limit"), [(4, 0.5, 0.5), (6, 0.5, 0.5), (5, 0.5, 0.5), (7, 0.3, 0.8)])
def test_authors_rule_matches_their_redraw_loop(device, m, sigma, limit):
    counts = _counts("authors", m, device, sigma, limit)
    # The law of their loop: |x| = |z|·floor(σm) conditioned on |x| <= limit·m.
    scale = math.floor(sigma * m)
    bound = limit * m

    def mass_below(t: float) -> float:  # P(|z|·scale < t)
        return math.erf(min(t, bound) / scale / math.sqrt(2))

    expected = [(mass_below(k + 1) - mass_below(k)) / mass_below(bound) for k in range(m + 1)]
    empirical = torch.bincount(counts, minlength=m + 1).double() / DRAWS
    assert (empirical - torch.tensor(expected, dtype=torch.float64)).abs().max().item() < 0.01
    if m % 2 == 0 and sigma == limit == 0.5:
        assert int(counts.max()) < m // 2  # an even m never loses half its candidates


def test_count_rule_is_checked_and_shown():
    with pytest.raises(ValueError, match="count_rule must be one of"):
        GCut(grid_size=4, count_rule="paper")
    assert "count_rule='authors'" in repr(GCut(grid_size=4, count_rule="authors"))
    assert "count_rule" not in repr(GCut(grid_size=4))
