"""model_retention: a hand-computed batch, its range, chance against random codes, no host
read, detached, and its errors."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from gg_augment.hashing import model_retention

CODES = torch.tensor([[1.0, -1.0, 1.0, -1.0],
                      [1.0, 1.0, 1.0, 1.0],
                      [-1.0, 1.0, -1.0, 1.0],
                      [1.0, -1.0, -1.0, 1.0]])
OUTPUTS = torch.tensor([[0.5, -0.5, 1.0, -1.0],    # every sign right, two bits half sure
                        [1.0, 1.0, -1.0, -1.0],    # half the bits flipped
                        [1.0, -1.0, 1.0, -1.0],    # the opposite code
                        [0.0, 0.0, 0.0, 0.0]])     # no opinion


def test_a_batch_with_a_known_answer(device):
    # r = (1 + mean_k u·b) / 2: row 0 has products (0.5, 0.5, 1, 1), mean 0.75 -> 0.875;
    # row 1 (1, 1, -1, -1) -> 0.5; row 2 all -1 -> 0; row 3 all 0 -> 0.5.
    retention = model_retention(OUTPUTS.to(device), CODES.to(device))
    assert retention.device == device and retention.dtype == torch.float32
    torch.testing.assert_close(retention.cpu(), torch.tensor([0.875, 0.5, 0.0, 0.5]), rtol=0, atol=0)
    # Hamming affinity 1 - d/K of the signs; sign(0) = +1 gives row 3 two of four bits.
    binary = model_retention(OUTPUTS.to(device), CODES.to(device), binary=True)
    torch.testing.assert_close(binary.cpu(), torch.tensor([1.0, 0.5, 0.0, 0.5]), rtol=0, atol=0)


def test_the_soft_score_is_the_expected_share_of_matching_bits():
    # Each bit drawn +1 with probability (1 + u)/2: the mean share of bits that match b.
    generator = torch.Generator().manual_seed(0)
    outputs = torch.rand(3, 16, generator=generator) * 2 - 1
    codes = torch.randint(0, 2, (3, 16), generator=generator).float() * 2 - 1
    draws = torch.rand(20_000, 3, 16, generator=generator) < (1 + outputs) / 2
    matched = ((draws.float() * 2 - 1) == codes).float().mean(dim=(0, 2))
    torch.testing.assert_close(model_retention(outputs, codes), matched, rtol=0, atol=0.01)


@given(
    st.integers(0, 6), st.integers(1, 9), st.floats(0.1, 50.0), st.integers(0, 2**31 - 1), st.booleans(),
)
def test_retention_lies_in_the_unit_interval(batch, bits, scale, seed, binary):
    generator = torch.Generator().manual_seed(seed)
    outputs = torch.randn(batch, bits, generator=generator) * scale   # far outside tanh's range too
    codes = torch.randn(batch, bits, generator=generator) * scale
    retention = model_retention(outputs, codes, binary=binary)
    assert retention.shape == (batch,)
    assert bool(((retention >= 0) & (retention <= 1)).all())


def test_against_random_codes_it_is_chance():
    # DSDH starts from random signs: before a solver step the score says nothing.
    generator = torch.Generator().manual_seed(1)
    outputs = torch.tanh(torch.randn(4000, 32, generator=generator) * 3)
    codes = torch.randint(0, 2, (4000, 32), generator=generator).float() * 2 - 1
    assert abs(float(model_retention(outputs, codes).mean()) - 0.5) < 0.01


def test_it_is_detached_and_reads_nothing_back_to_the_host(monkeypatch):
    outputs = torch.tanh(torch.randn(5, 8, requires_grad=True))
    codes = torch.ones(5, 8)
    reads = []
    for name in ("item", "tolist", "__bool__", "__float__", "__int__", "cpu"):
        original = getattr(torch.Tensor, name)
        monkeypatch.setattr(torch.Tensor, name, lambda self, *a, _o=original, _n=name, **k: reads.append(_n) or _o(self, *a, **k))
    retention = model_retention(outputs, codes)
    monkeypatch.undo()
    assert reads == [] and not retention.requires_grad


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_the_dtype_of_the_outputs_is_kept(dtype):
    retention = model_retention(OUTPUTS.to(dtype), CODES)
    assert retention.dtype == dtype
    torch.testing.assert_close(retention.float(), torch.tensor([0.875, 0.5, 0.0, 0.5]))


@pytest.mark.parametrize(
    ("outputs", "codes", "error", "message"),
    [
        (torch.zeros(4), torch.zeros(4), ValueError, r"outputs must have shape \(B, K\) with K >= 1; got \(4\)"),
        (torch.zeros(3, 0), torch.zeros(3, 0), ValueError, r"outputs must have shape \(B, K\) with K >= 1; got \(3, 0\)"),
        (torch.zeros(3, 4), torch.zeros(3, 5), ValueError, r"codes must have the shape of outputs \(3, 4\); got \(3, 5\)"),
        (torch.zeros(3, 4), torch.zeros(2, 4), ValueError, r"codes must have the shape of outputs \(3, 4\); got \(2, 4\)"),
        (torch.zeros(3, 4, dtype=torch.long), torch.zeros(3, 4), TypeError, "outputs must have a floating dtype"),
        (torch.zeros(3, 4), torch.ones(3, 4, dtype=torch.int8), TypeError, "codes must have a floating dtype"),
        ([[0.0]], torch.zeros(1, 1), TypeError, "outputs must be a torch.Tensor; got list"),
        (torch.zeros(1, 1), None, TypeError, "codes must be a torch.Tensor; got NoneType"),
    ],
)
def test_bad_inputs_name_the_argument(outputs, codes, error, message):
    with pytest.raises(error, match=message):
        model_retention(outputs, codes)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a second device")
def test_codes_on_another_device_are_refused():
    with pytest.raises(ValueError, match="codes must be on the device of outputs"):
        model_retention(torch.zeros(2, 4, device="cuda"), torch.zeros(2, 4))
