"""What every random augmentation shares: the generator, sample-then-apply, and ``forward``.

Subclasses write two methods: ``sample`` (draw the parameters of a batch) and ``transform``
(deterministic, given the parameters). ``forward`` is written once, here: it checks the
input, draws with the right generator unless ``params=`` replays an earlier draw, applies.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Generic, TypeVar

import torch
from torch import Tensor, nn

from .._checks import (
    check_batch_shape,
    check_generator,
    check_image_batch,
    check_range,
    check_tensor,
)
from ..functional._sampling import bernoulli_mask

__all__ = ["BatchShape", "RandomAugmentation", "RetentionAugmentation", "param"]

Output = TypeVar("Output")
BatchShape = tuple[int, int, int, int]


def param(params: dict[str, Tensor], key: str) -> Tensor:
    """``params[key]``, which must exist and be a tensor."""
    if key not in params:
        raise ValueError(f"params must hold {key!r} (from generate_params()); got keys {sorted(params)}")
    return check_tensor(params[key], f"params[{key!r}]")


def _export_message(module: nn.Module, how: str) -> str:
    name = type(module).__name__
    return (
        f"{name} cannot be exported with {how}: it is a training-time augmentation whose random "
        "draws would be frozen into the graph. Export the model alone (the augmentation does not "
        f"run at inference); to replay a draw, call {name}.transform(x, params) eagerly, and for "
        "speed use torch.compile with validate_args=False"
    )


def _refuse_export(module: nn.Module) -> None:
    """Stop ``torch.jit.trace`` and ``torch.onnx.export``/``torch.export`` with a clear message."""
    if torch.onnx.is_in_onnx_export():
        raise RuntimeError(_export_message(module, "torch.onnx.export"))
    if torch.jit.is_tracing():
        raise RuntimeError(_export_message(module, "torch.jit.trace"))
    is_exporting = getattr(torch.compiler, "is_exporting", None)
    if is_exporting is not None and is_exporting():
        raise RuntimeError(_export_message(module, "torch.export / torch.onnx.export"))


class RandomAugmentation(nn.Module, Generic[Output]):
    """Base of the batched random modules: ``forward(x, params=None, **context)``.

    Args:
        generator: optional ``torch.Generator`` on the input's device; all randomness is drawn
            from it (or from the device's default generator when None).
        validate_args: check tensor *values* (finite images, replayed parameters in range).
            The image check is fused into one reduction over the batch (about half a copy)
            and one host sync; turn it off for CUDA graphs or the last bit of speed: then
            nothing reads a value on the host. Shape and dtype checks always run, they are free.

    ``context`` holds per-call inputs that are not images, named in ``context_keys`` (GCut
    takes ``attention`` and ``view``, the crop takes ``index``); any other keyword is a
    ``TypeError``.
    """

    context_keys: tuple[str, ...] = ()

    def __init__(self, generator: torch.Generator | None = None, validate_args: bool = True) -> None:
        super().__init__()
        self.generator = check_generator(generator)
        self.validate_args = bool(validate_args)

    def __prepare_scriptable__(self) -> nn.Module:
        raise RuntimeError(_export_message(self, "torch.jit.script"))

    def generate_params(
        self,
        batch_shape: torch.Size | tuple[int, ...],
        device: torch.device | str = "cpu",
        generator: torch.Generator | None = None,
        **inputs: Tensor,
    ) -> dict[str, Tensor]:
        """Draw the parameters of a batch of shape (B, C, H, W) on ``device``.

        Args:
            batch_shape: (B, C, H, W) of the images.
            device: where the parameters are drawn and live.
            generator: overrides the module's generator for this draw.
            inputs: what the sampler needs beyond the shape (GCut: ``attention=``).
        """
        shape = check_batch_shape(batch_shape)
        device = torch.device(device)
        chosen = check_generator(generator if generator is not None else self.generator, device)
        return self.sample(shape, device, chosen, inputs)

    def sample(
        self,
        shape: BatchShape,
        device: torch.device,
        generator: torch.Generator | None,
        inputs: Mapping[str, Tensor],
    ) -> dict[str, Tensor]:
        """The subclass's sampler; arguments already checked."""
        raise NotImplementedError

    def transform(self, x: Tensor, params: dict[str, Tensor]) -> Output:
        """The subclass's deterministic transform."""
        raise NotImplementedError

    def check_params(self, x: Tensor, params: dict[str, Tensor]) -> None:
        """Check replayed parameters as strictly as a fresh draw would satisfy them.

        Called by ``forward`` for ``params=`` only (a fresh draw is valid by construction);
        value checks follow ``validate_args``.
        """

    def sampler_inputs(self, x: Tensor, context: Mapping[str, Any]) -> dict[str, Tensor]:
        """What ``forward`` passes to :meth:`generate_params` beyond the shape."""
        return {}

    def finish(self, x: Tensor, params: dict[str, Tensor], context: Mapping[str, Any]) -> Output:
        """Apply the parameters; a subclass may also report what it did (GCut's observe)."""
        return self.transform(x, params)

    def forward(self, x: Tensor, params: dict[str, Tensor] | None = None, **context: Any) -> Output:
        """Draw (unless ``params`` replays an earlier draw) and apply.

        Args:
            x: images (B, C, H, W), floating point; never modified.
            params: the output of :meth:`generate_params`, to replay a call exactly.
            context: the keywords in ``context_keys``.
        """
        _refuse_export(self)
        x = check_image_batch(x, validate_values=self.validate_args)
        unknown = sorted(set(context) - set(self.context_keys))
        if unknown:
            accepted = ", ".join(self.context_keys) or "none"
            raise TypeError(f"{type(self).__name__}() got unexpected keyword(s) {unknown}; it accepts: {accepted}")
        if params is None:
            params = self.generate_params(x.shape, x.device, None, **self.sampler_inputs(x, context))
        else:
            if not isinstance(params, dict):
                raise TypeError(f"params must be a dict from generate_params(); got {type(params).__name__}")
            self.check_params(x, params)
        return self.finish(x, params, context)


class RetentionAugmentation(RandomAugmentation[tuple[Tensor, Tensor]]):
    """Base for modules returning ``(x_aug, retention)``.

    Args:
        p: probability that a sample is augmented; the others pass through with r = 1.
        generator: source of randomness (see :class:`RandomAugmentation`).
        validate_args: check inputs (see :class:`RandomAugmentation`).
    """

    def __init__(
        self,
        p: float = 1.0,
        generator: torch.Generator | None = None,
        validate_args: bool = True,
    ) -> None:
        super().__init__(generator, validate_args)
        self.p = check_range(p, "p", 0.0, 1.0)

    def draw_applied(self, batch: int, device: torch.device, generator: torch.Generator | None) -> Tensor:
        """(B,) bool: which samples are augmented, with probability ``p`` each."""
        return bernoulli_mask(self.p, batch, device, generator)
