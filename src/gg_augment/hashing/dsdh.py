"""The DSDH alternating solver: a per-sample bank of outputs U, binary codes B and a classifier W.

Deep Supervised Discrete Hashing (Li, Sun, He and Tan, NeurIPS 2017) trains a network whose
continuous outputs ``u_i`` are pulled towards binary codes ``b_i`` that also have to predict
the labels through a linear classifier ``W``. With samples as **rows** (the convention used
everywhere in this module)::

    U ∈ R^{N×K}   network outputs of the training set (the "bank")
    B ∈ {±1}^{N×K} binary codes
    Y ∈ {0,1}^{N×C} one-hot or multi-hot labels
    W ∈ R^{K×C}   linear classifier on the codes

the objective is::

    J = -Σ_ij (s_ij θ_ij - log(1 + exp θ_ij)) + μ ||Y - B W||² + ν ||W||² + η ||B - U||²

with ``θ_ij = ½ u_iᵀ u_j`` and ``s_ij = 1`` when samples i and j share a label. The paper
writes codes as columns (``B`` of shape K×N and ``||Y - Wᵀ B||²``); the two forms are the same
objective transposed. The network is trained on the first and last terms by gradient descent;
once per epoch the solver updates the discrete part:

* **W-step** (ridge regression of Y on B)::

      W = (Bᵀ B + (ν/μ) I)⁻¹ Bᵀ Y        (paper: (B Bᵀ + (ν/μ) I)⁻¹ B Yᵀ)

  solved with ``torch.linalg.solve``.
* **B-step** (discrete cyclic coordinate descent). Let ``Q = μ Y Wᵀ + η U`` (N×K). For bit k,
  with ``B'`` and ``W'`` the codes and classifier rows without bit k, the objective is linear
  in the column ``b_k`` (because ``||b_k||² = N``)::

      μ||Y - B W||² + η||B - U||² = -2 b_kᵀ (Q_k - μ B' W' w_k) + const

  so its exact minimiser is ``b_k = sign(Q_k - μ B' W' w_k)``, with ``w_k`` the k-th row of
  ``W``. Updating the bits one after another therefore never increases the objective. A zero
  argument keeps the previous bit (both choices give the same objective), so codes stay ±1.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from .._checks import (
    _shape,
    check_finite,
    check_floating,
    check_index,
    check_int,
    check_labels,
    check_positive,
    check_tensor,
)

__all__ = ["DSDHSolver", "sign_codes"]

_STATE_KEYS = (
    "num_train",
    "code_length",
    "num_classes",
    "mu",
    "nu",
    "eta",
    "dcc_iterations",
    "outputs",
    "codes",
    "weight",
    "labels",
)


def sign_codes(outputs: Tensor, *, validate_args: bool = True) -> Tensor:
    """Binarise real outputs to ±1 codes, mapping 0 to +1 (``torch.sign`` would give 0).

    Args:
        outputs: real-valued network outputs.
        validate_args: refuse NaN (a host sync): a diverged model's NaN outputs would
            otherwise all become +1 and score a plausible mAP. ``False`` skips the check
            (NaN then maps to +1).

    Returns:
        ±1 codes with the dtype and device of ``outputs``.

    Shape:
        - outputs: any shape, usually (B, K).
        - output: same as ``outputs``.

    Examples:
        >>> sign_codes(torch.tensor([[-0.5, 0.0, 2.0]])).tolist()
        [[-1.0, 1.0, 1.0]]
    """
    outputs = check_tensor(outputs, "outputs")
    check_floating(outputs, "outputs")
    if validate_args and outputs.numel() and bool(torch.isnan(outputs).any()):
        count = int(torch.isnan(outputs).sum())
        raise ValueError(
            f"outputs must not hold NaN to be binarised; got {count} NaN value(s) (did training "
            "diverge? lower the learning rate)"
        )
    return torch.ones_like(outputs).masked_fill_(outputs < 0, -1.0)


class DSDHSolver:
    """The discrete half of DSDH: holds U, B, W (and Y) and runs the W- and B-steps.

    A training loop writes each batch's outputs with :meth:`update_outputs`, reads the code
    targets of its quantisation term with :meth:`targets` (and the bank with :meth:`bank` for
    the pairwise likelihood term), and calls :meth:`step` once per epoch.

    Args:
        num_train: number of training samples N.
        code_length: number of bits K.
        num_classes: number of classes (or labels) C.
        mu: weight μ of the classification term ``||Y - B W||²``.
        nu: weight ν of the classifier's ridge penalty ``||W||²``.
        eta: weight η of the quantisation term ``||B - U||²``.
        dcc_iterations: sweeps over all K bits per :meth:`b_step`.
        device: where the bank lives; default CPU.
        dtype: float32 or float64 for U, W and the labels; B uses the same dtype.
        generator: random source for the initial codes.
        validate_args: check index and label *values* (a host synchronisation); shapes and
            dtypes are always checked.

    Shape:
        - outputs U, codes B: (N, K); weight W: (K, C); labels Y: (N, C).

    Examples:
        >>> solver = DSDHSolver(num_train=6, code_length=4, num_classes=3,
        ...                     generator=torch.Generator().manual_seed(0))
        >>> solver.set_labels(torch.tensor([0, 1, 2, 0, 1, 2]))
        >>> solver.update_outputs(torch.arange(6), torch.randn(6, 4))
        >>> solver.step()
        >>> solver.targets(torch.tensor([0, 3])).shape
        torch.Size([2, 4])
    """

    encode = staticmethod(sign_codes)

    def __init__(
        self,
        num_train: int,
        code_length: int,
        num_classes: int,
        mu: float = 1e-2,
        nu: float = 1.0,
        eta: float = 1e-2,
        dcc_iterations: int = 3,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
        generator: torch.Generator | None = None,
        validate_args: bool = True,
    ) -> None:
        self.num_train = check_int(num_train, "num_train", minimum=1)
        self.code_length = check_int(code_length, "code_length", minimum=1)
        self.num_classes = check_int(num_classes, "num_classes", minimum=1)
        self.mu = check_positive(mu, "mu")
        self.nu = check_positive(nu, "nu")
        self.eta = check_positive(eta, "eta")
        self.dcc_iterations = check_int(dcc_iterations, "dcc_iterations", minimum=1)
        if dtype not in (torch.float32, torch.float64):
            # torch.linalg.solve has no half-precision kernels, and the solve needs the range.
            raise TypeError(f"dtype must be torch.float32 or torch.float64; got {dtype}")
        self.dtype = dtype
        self.device = torch.device("cpu") if device is None else torch.device(device)
        self.validate_args = bool(validate_args)

        shape = (self.num_train, self.code_length)
        self.outputs = torch.zeros(shape, device=self.device, dtype=dtype)
        # Random signs, as in the paper: an all-equal start would make every B'W'w_k equal.
        bits = torch.randint(
            0, 2, shape, generator=generator, device=self._generator_device(generator)
        )
        self.codes = (bits.to(device=self.device, dtype=dtype) * 2 - 1).contiguous()
        self.weight = torch.zeros(
            self.code_length, self.num_classes, device=self.device, dtype=dtype
        )
        self.labels: Tensor | None = None

    def _generator_device(self, generator: torch.Generator | None) -> torch.device:
        return self.device if generator is None else generator.device

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(num_train={self.num_train}, code_length={self.code_length}, "
            f"num_classes={self.num_classes}, mu={self.mu:g}, nu={self.nu:g}, eta={self.eta:g}, "
            f"dcc_iterations={self.dcc_iterations}, device={self.device}, dtype={self.dtype})"
        )

    # ----------------------------------------------------------------------------------
    # bank access
    # ----------------------------------------------------------------------------------

    def _check_index(self, index: object, batch_size: int | None = None) -> Tensor:
        checked = check_index(
            index, self.num_train, "index", batch_size=batch_size, validate_values=self.validate_args
        )
        return checked.to(self.device)

    def set_labels(self, labels: Tensor) -> None:
        """Register the training labels Y.

        Args:
            labels: class ids (converted to one-hot) or multi-hot labels (non-zero = present).

        Shape:
            - labels: (N,) integer or (N, C).
        """
        labels = check_tensor(labels, "labels")
        # Reading the id range is a host sync, so it follows validate_args.
        check_range_of_ids = self.validate_args and labels.ndim == 1
        labels = check_labels(
            labels,
            self.num_train,
            "labels",
            num_classes=self.num_classes if check_range_of_ids else None,
        )
        if labels.ndim == 2 and labels.shape[1] != self.num_classes:
            raise ValueError(
                f"labels multi-hot must have {self.num_classes} columns; got {labels.shape[1]}"
            )
        labels = labels.to(self.device)
        if labels.ndim == 1:
            one_hot = torch.zeros(
                self.num_train, self.num_classes, device=self.device, dtype=self.dtype
            )
            self.labels = one_hot.scatter_(1, labels.long()[:, None], 1.0)
        else:
            self.labels = (labels != 0).to(self.dtype)

    def update_outputs(self, index: Tensor, outputs: Tensor) -> None:
        """Write a batch of network outputs into the bank: ``U[index] = outputs.detach()``.

        Repeated indices in one batch keep one of their rows (which one is unspecified).

        Args:
            index: dataset indices of the batch.
            outputs: the network's continuous outputs for those samples.

        Shape:
            - index: (B,); outputs: (B, K).
        """
        outputs = check_tensor(outputs, "outputs")
        if outputs.ndim != 2 or outputs.shape[1] != self.code_length:
            raise ValueError(
                f"outputs must have shape (B, {self.code_length}); got {_shape(outputs)}"
            )
        check_floating(outputs, "outputs")
        index = self._check_index(index, outputs.shape[0])
        self.outputs[index] = outputs.detach().to(device=self.device, dtype=self.dtype)

    def targets(self, index: Tensor) -> Tensor:
        """The current binary codes ``B[index]``: targets of the quantisation term ``||b - u||²``.

        Args:
            index: dataset indices.

        Returns:
            ±1 codes on the solver's device and dtype.

        Shape:
            - index: (B,); output: (B, K).
        """
        return self.codes[self._check_index(index)]

    def bank(self) -> tuple[Tensor, Tensor]:
        """The stored outputs U and labels Y, for the pairwise likelihood term.

        The tensors are the solver's own (not copies); treat them as read-only.

        Returns:
            ``(outputs, labels)``.

        Shape:
            - outputs: (N, K); labels: (N, C).
        """
        return self.outputs, self._require_labels()

    def _require_labels(self) -> Tensor:
        if self.labels is None:
            raise RuntimeError("DSDHSolver has no labels; call set_labels(labels) first")
        return self.labels

    # ----------------------------------------------------------------------------------
    # solver steps
    # ----------------------------------------------------------------------------------

    def w_step(self) -> None:
        """W = (Bᵀ B + (ν/μ) I)⁻¹ Bᵀ Y, by a linear solve (no explicit inverse)."""
        labels = self._require_labels()
        gram = self.codes.T @ self.codes
        gram.diagonal().add_(self.nu / self.mu)
        self.weight = torch.linalg.solve(gram, self.codes.T @ labels)

    def b_step(self) -> None:
        """``dcc_iterations`` sweeps of discrete cyclic coordinate descent over the K bits.

        Bit k becomes ``sign(Q_k - μ B' W' w_k)`` with ``Q = μ Y Wᵀ + η U``, vectorised over
        the N samples; a zero argument keeps the previous bit.
        """
        labels = self._require_labels()
        if self.validate_args:
            # sign(NaN) is NaN: one non-finite output would otherwise poison its codes for good.
            check_finite(self.outputs, "outputs bank U (written by update_outputs)")
        weight = self.weight
        # Work bit-major (K, N): each bit's update then reads and writes contiguous memory;
        # on (N, K) storage a column is strided and the sweep is an order of magnitude slower.
        target = (self.mu * (weight @ labels.T)).add_(self.outputs.T, alpha=self.eta)
        codes = self.codes.T.contiguous()
        row_norms = (weight * weight).sum(dim=1)
        for _ in range(self.dcc_iterations):
            # (C, N) = (B W)ᵀ, recomputed per sweep so the rank-1 updates cannot drift for long.
            prediction = weight.T @ codes
            for bit in range(self.code_length):
                previous = codes[bit]
                # B' W' w_k = (B W - b_k w_kᵀ) w_k = (B W) w_k - b_k ||w_k||²
                others = weight[bit] @ prediction - previous * row_norms[bit]
                updated = torch.sign(target[bit] - self.mu * others)
                updated = torch.where(updated == 0, previous, updated)
                prediction.addr_(weight[bit], updated - previous)
                codes[bit] = updated
        self.codes = codes.T.contiguous()

    def step(self) -> None:
        """One solver update (once per epoch in DSDH): :meth:`w_step`, then :meth:`b_step`."""
        self.w_step()
        self.b_step()

    def objective(self, include_likelihood: bool = False, chunk_size: int = 1024) -> Tensor:
        """The DSDH objective, computed in float64.

        The discrete part ``μ||Y - B W||² + ν||W||² + η||B - U||²`` is what :meth:`w_step` and
        :meth:`b_step` minimise (neither increases it). With ``include_likelihood`` the pairwise
        term ``Σ_ij log(1 + exp θ_ij) - s_ij θ_ij`` over the bank is added, in row blocks of
        ``chunk_size`` so memory stays O(chunk_size · N).

        Args:
            include_likelihood: add the pairwise negative log-likelihood over all N² pairs.
            chunk_size: rows per block of the pairwise term.

        Returns:
            A 0-dim float64 tensor on the solver's device.
        """
        labels = self._require_labels().to(torch.float64)
        codes = self.codes.to(torch.float64)
        outputs = self.outputs.to(torch.float64)
        weight = self.weight.to(torch.float64)
        value = (
            self.mu * (labels - codes @ weight).square().sum()
            + self.nu * weight.square().sum()
            + self.eta * (codes - outputs).square().sum()
        )
        if include_likelihood:
            chunk_size = check_int(chunk_size, "chunk_size", minimum=1)
            for start in range(0, self.num_train, chunk_size):
                rows = slice(start, start + chunk_size)
                theta = 0.5 * (outputs[rows] @ outputs.T)
                similar = ((labels[rows] @ labels.T) > 0).to(torch.float64)
                value = value + (torch.nn.functional.softplus(theta) - similar * theta).sum()
        return value

    # ----------------------------------------------------------------------------------
    # serialisation
    # ----------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Sizes, hyper-parameters and copies of U, B, W and Y (``labels`` is None if unset)."""
        return {
            "num_train": self.num_train,
            "code_length": self.code_length,
            "num_classes": self.num_classes,
            "mu": self.mu,
            "nu": self.nu,
            "eta": self.eta,
            "dcc_iterations": self.dcc_iterations,
            "outputs": self.outputs.clone(),
            "codes": self.codes.clone(),
            "weight": self.weight.clone(),
            "labels": None if self.labels is None else self.labels.clone(),
        }

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict`; sizes must match this solver.

        Tensors are copied to this solver's device and dtype. Hyper-parameters are restored.

        Raises:
            ValueError: a key is missing, a size differs, or a tensor has the wrong shape.
            TypeError: an entry has the wrong type.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"state_dict must be a mapping; got {type(state_dict).__name__}")
        missing = [key for key in _STATE_KEYS if key not in state_dict]
        if missing:
            raise ValueError(f"state_dict is missing keys {missing}")
        unexpected = sorted(set(state_dict) - set(_STATE_KEYS))
        if unexpected:
            raise ValueError(f"state_dict has unexpected keys {unexpected}")
        for key in ("num_train", "code_length", "num_classes"):
            stored = check_int(state_dict[key], f"state_dict[{key!r}]", minimum=1)
            if stored != getattr(self, key):
                raise ValueError(
                    f"state_dict[{key!r}] must match this solver's {key}={getattr(self, key)}; "
                    f"got {stored}"
                )
        mu = check_positive(state_dict["mu"], "state_dict['mu']")
        nu = check_positive(state_dict["nu"], "state_dict['nu']")
        eta = check_positive(state_dict["eta"], "state_dict['eta']")
        dcc_iterations = check_int(state_dict["dcc_iterations"], "state_dict['dcc_iterations']", 1)

        def tensor(key: str, shape: tuple[int, ...]) -> Tensor:
            value = check_tensor(state_dict[key], f"state_dict[{key!r}]")
            if tuple(value.shape) != shape:
                raise ValueError(
                    f"state_dict[{key!r}] must have shape ({', '.join(map(str, shape))}); "
                    f"got {_shape(value)}"
                )
            check_floating(value, f"state_dict[{key!r}]")
            return value.to(device=self.device, dtype=self.dtype).clone()

        outputs = tensor("outputs", (self.num_train, self.code_length))
        codes = tensor("codes", (self.num_train, self.code_length))
        weight = tensor("weight", (self.code_length, self.num_classes))
        labels = None
        if state_dict["labels"] is not None:
            labels = tensor("labels", (self.num_train, self.num_classes))
        if not bool(((codes == 1) | (codes == -1)).all()):
            raise ValueError("state_dict['codes'] must hold only ±1 values")

        self.mu, self.nu, self.eta, self.dcc_iterations = mu, nu, eta, dcc_iterations
        self.outputs, self.codes, self.weight, self.labels = outputs, codes, weight, labels
