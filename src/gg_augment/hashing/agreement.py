"""The model-measured retention: how much of a sample the model still recognises, read from
the agreement of its output on the augmented image with the sample's own code.

An augmentation's retention (G_t's visible area, G_cut's remaining attention) is a guess made
from the pixels. DSDH already holds, for every training sample, a binary code ``b_i`` that the
solver fits to the sample's class and its earlier outputs. When the model still maps the
augmented sample onto that code, it has kept what identifies the sample; when it maps it
elsewhere, the meaning is gone, whatever the pixels say. The score costs no extra pass: the
training step has the outputs and the solver has the codes.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .._checks import _shape, check_floating, check_same_device, check_tensor
from .dsdh import sign_codes

__all__ = ["model_retention"]


def model_retention(outputs: Tensor, codes: Tensor, *, binary: bool = False) -> Tensor:
    """The share of each sample's code its output still reproduces, in [0, 1].

    ``r_i = ½ (1 + (1/K) Σ_k u_ik · b_ik)``, with the outputs and codes clipped to [-1, 1]
    (tanh outputs and ±1 codes never are), computed on detached outputs.

    With ±1 codes this is an agreement rate: reading the tanh output ``u_ik`` as the bit
    ``+1`` with probability ``(1 + u_ik)/2``, the term ``(1 + u_ik b_ik)/2`` is the chance
    that bit k matches ``b_ik``, so ``r_i`` is the expected share of matching bits.
    ``binary=True`` takes ``sign(u)`` instead (0 maps to +1, as in
    :func:`~gg_augment.hashing.sign_codes`): ``r_i = 1 − d_H(sign(u_i), b_i)/K``, the Hamming
    affinity, which ignores how confident the bits are.

    What the values mean:

    - **1**: every bit saturated at the sample's code; the model recognises it fully.
    - **0.5**: chance. An output of zeros, or one unrelated to the code, scores about 0.5;
      so does every sample against DSDH's initial codes, which are random signs: until the
      solver's first B-step has seen a sample's output, its score carries no information
      (the trainer then keeps the augmentation's score; see ``retention_source``).
    - **0**: every bit flipped: the model maps the sample onto the opposite code.

    Under the authors' retention rule (target ``s·w``), w = 0.5 is the neutral point: the
    positive pair's optimum is θ = logit(w) = 0. So a sample the model no longer recognises
    stops pulling towards its class rather than being pushed away from it.

    Args:
        outputs: the model's continuous codes on the augmented batch (tanh, in (-1, 1)).
        codes: each sample's reference code: its ±1 DSDH code ``B[index]`` (or any reference
            in [-1, 1], such as its bank row ``U[index]``).
        binary: score ``sign(outputs)`` instead of the outputs themselves.

    Returns:
        (B,) retention in [0, 1], detached, in the dtype of ``outputs`` (NaN where an output
        is NaN). No host synchronisation.

    Raises:
        TypeError: ``outputs`` or ``codes`` is not a floating tensor.
        ValueError: they are not both (B, K) with K >= 1, or live on different devices.

    Shape:
        - outputs: (B, K); codes: (B, K)
        - output: (B,)

    Examples:
        >>> codes = torch.tensor([[1.0, -1.0, 1.0, -1.0], [1.0, 1.0, 1.0, 1.0]])
        >>> outputs = torch.tensor([[0.5, -0.5, 1.0, -1.0], [1.0, 1.0, -1.0, -1.0]])
        >>> model_retention(outputs, codes).tolist()
        [0.875, 0.5]
        >>> model_retention(outputs, codes, binary=True).tolist()
        [1.0, 0.5]
    """
    outputs = check_tensor(outputs, "outputs")
    codes = check_tensor(codes, "codes")
    check_floating(outputs, "outputs")
    check_floating(codes, "codes")
    if outputs.ndim != 2 or outputs.shape[1] < 1:
        raise ValueError(f"outputs must have shape (B, K) with K >= 1; got {_shape(outputs)}")
    if codes.shape != outputs.shape:
        raise ValueError(f"codes must have the shape of outputs {_shape(outputs)}; got {_shape(codes)}")
    check_same_device(codes, "codes", outputs, "outputs")
    outputs = outputs.detach()
    bits = sign_codes(outputs, validate_args=False) if binary else outputs.clamp(-1.0, 1.0)
    # Reduce in float32 at least: a half-precision mean over many bits loses the last bits.
    compute = torch.promote_types(outputs.dtype, torch.float32)
    agreement = (bits.to(compute) * codes.detach().to(compute).clamp(-1.0, 1.0)).mean(dim=1)
    return agreement.add(1.0).mul(0.5).to(outputs.dtype)
