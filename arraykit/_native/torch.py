"""PyTorch fast paths: one ``torch.library`` operator per primitive.

Each primitive is an operator ``arraykit::<name>`` that the dispatcher, not
this module, routes:

* the **Autograd** kernel sees the tensors after ``torch.func`` has unwrapped
  its layers, so its ``requires_grad`` and forward-mode tangents are the true
  ones. Where a derivative is wanted (backward or forward mode, eager,
  ``torch.func`` or a ``torch.compile`` training graph) it computes the
  generic formula in torch operations, whose autograd gives the accurate
  derivative (torch's own sigmoid backward, ``s·(1 − s)``, is 0 for
  x > 17 in float32) and keeps every tangent;
* otherwise it hands the call on to the device's kernel: on CPU the
  cache-blocked NumPy kernels over the tensor's own memory (a real dense
  tensor there, never a wrapper), ``torch.sigmoid`` on every device, and the
  formula in torch operations on the other devices;
* a fake kernel gives shapes to ``torch.compile``, ``torch.export``, meta and
  fake tensors, and a vmap rule batches the operator for ``torch.func.vmap``.

So compile and export see one opaque operator (no graph break), and the
choice between kernels is the dispatcher's, made from what the tensors are.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import array_api_compat.torch as xp
import numpy as np
import torch
import torch.autograd.forward_ad as forward_ad

from .. import _adagrad, _formulas
from . import numpy as numpy_kernels

_LIBRARY = torch.library.Library("arraykit", "DEF")


def _differentiated(tensors: Sequence[torch.Tensor]) -> bool:
    """Whether a derivative of this call is wanted, in either mode."""
    if torch.is_grad_enabled() and torch._C._any_requires_grad(*tensors):
        return True
    return any(forward_ad.unpack_dual(t).tangent is not None for t in tensors)


def _numpy_view(t: torch.Tensor) -> np.ndarray:
    return t.resolve_neg().numpy()


def _define(
    schema: str,
    formula: Callable[..., Any],
    fake: Callable[..., Any],
    vmap: Callable[..., Any],
    cpu: Callable[..., Any] | None = None,
    everywhere: Callable[..., Any] | None = None,
) -> Any:
    """Register ``arraykit::<schema>`` with its kernels; return the operator.

    ``cpu`` serves CPU tensors, ``everywhere`` every device without a kernel
    of its own (by default the formula in torch operations).
    """
    name = schema.split("(", 1)[0]
    tensors = schema.count("Tensor ")
    _LIBRARY.define(schema)
    op = getattr(torch.ops.arraykit, name).default

    def generic(*args: Any) -> Any:
        return formula(*args, xp=xp)

    def autograd(keyset: Any, *args: Any) -> Any:
        if _differentiated(args[:tensors]):
            out = generic(*args)
            # Under torch.func.jvp a Python float times a 0-d float32 tensor
            # has a float64 tangent (the value stays float32); a copying cast
            # brings the tangent back to the value's dtype.
            return out.to(out.dtype, copy=True) if out.ndim == 0 else out
        with torch._C._AutoDispatchBelowAutograd():
            return op.redispatch(keyset & torch._C._after_autograd_keyset, *args)

    _LIBRARY.impl(name, everywhere or generic, "CompositeExplicitAutograd")
    if cpu is not None:
        _LIBRARY.impl(name, cpu, "CPU")
    _LIBRARY.impl(name, autograd, "Autograd", with_keyset=True)
    torch.library.register_fake(f"arraykit::{name}", fake, lib=_LIBRARY)
    torch.library.register_vmap(f"arraykit::{name}", vmap, lib=_LIBRARY)
    return op


def _through_numpy(kernel: Callable[..., Any], tensors: int = 1) -> Callable[..., Any]:
    """A CPU kernel: ``kernel`` on the NumPy views of the (dense, CPU) tensors."""

    def cpu(*args: Any) -> torch.Tensor:
        arrays = [_numpy_view(t) for t in args[:tensors]]
        return torch.from_numpy(np.asarray(kernel(*arrays, *args[tensors:])))

    return cpu


def _same_shape(x: torch.Tensor, *rest: Any) -> torch.Tensor:
    return torch.empty_like(x)


sigmoid: Any = _define(
    "sigmoid(Tensor x) -> Tensor",
    _formulas.sigmoid,
    _same_shape,
    lambda info, in_dims, x: (sigmoid(x), in_dims[0]),
    # torch's own kernel gives the value on every device, within the
    # contract; only its derivative is not taken (see the module docstring).
    everywhere=torch.sigmoid,
)

sigmoid_derivative: Any = _define(
    "sigmoid_derivative(Tensor x) -> Tensor",
    _formulas.sigmoid_derivative,
    _same_shape,
    lambda info, in_dims, x: (sigmoid_derivative(x), in_dims[0]),
    cpu=_through_numpy(numpy_kernels.sigmoid_derivative),
)


def _cpu_softmax(x: torch.Tensor, axes: Sequence[int]) -> torch.Tensor:
    # torch's CPU kernels split large arrays over its threads; so does this,
    # for softmax alone, whose arithmetic outweighs its memory traffic.
    result = numpy_kernels.softmax(_numpy_view(x), tuple(axes), threads=torch.get_num_threads())
    return torch.from_numpy(result)


def _softmax_vmap(info: Any, in_dims: tuple[Any, ...], x: torch.Tensor, axes: list[int]) -> Any:
    if in_dims[0] is None:
        return _softmax(x, axes), None
    return _softmax(x.movedim(in_dims[0], 0), [a + 1 for a in axes]), 0


_softmax = _define(
    "softmax(Tensor x, int[] axes) -> Tensor",
    lambda x, axes, xp: _formulas.softmax(x, tuple(axes), xp=xp),
    _same_shape,
    _softmax_vmap,
    cpu=_cpu_softmax,
)


def softmax(x: torch.Tensor, axes: tuple[int, ...]) -> torch.Tensor:
    return _softmax(x, list(axes))  # type: ignore[no-any-return]


def _normalize_vmap(info: Any, in_dims: tuple[Any, ...], x: torch.Tensor) -> Any:
    if in_dims[0] is None:
        return normalize_rows(x), None
    x = x.movedim(in_dims[0], 0)
    rows = x.reshape(-1, x.shape[-1])
    return normalize_rows(rows).reshape(x.shape), 0


normalize_rows = _define(
    "normalize_rows(Tensor x) -> Tensor",
    _formulas.normalize_rows,
    _same_shape,
    _normalize_vmap,
    cpu=_through_numpy(numpy_kernels.normalize_rows),
)


def _loss_fake(yhat: torch.Tensor, y: torch.Tensor, reduction: str, power: int) -> torch.Tensor:
    return torch.empty_like(yhat) if reduction == "none" else yhat.new_empty(())


def _loss_vmap(
    info: Any,
    in_dims: tuple[Any, ...],
    yhat: torch.Tensor,
    y: torch.Tensor,
    reduction: str,
    power: int,
) -> Any:
    # Both operands batched along dimension 0 (an unbatched one broadcast).
    size = info.batch_size
    pair = []
    for t, dim in zip((yhat, y), in_dims[:2], strict=True):
        t = t.movedim(dim, 0) if dim is not None else t.unsqueeze(0)
        pair.append(t.expand(size, *t.shape[1:]))
    if reduction == "none":
        return _loss(pair[0], pair[1], reduction, power), 0
    # A reduction per batch element; each goes through the operator itself.
    return torch.stack([_loss(a, b, reduction, power) for a, b in zip(*pair, strict=True)]), 0


_loss = _define(
    "loss(Tensor yhat, Tensor y, str reduction, int power) -> Tensor",
    _formulas.loss,
    _loss_fake,
    _loss_vmap,
    cpu=_through_numpy(numpy_kernels.l1_loss, tensors=2),
)


def l1_loss(yhat: torch.Tensor, y: torch.Tensor, reduction: str, power: int) -> torch.Tensor:
    return _loss(yhat, y, reduction, power)  # type: ignore[no-any-return]


l2_loss = l1_loss  # power selects the loss, as in the generic formula


def _line_adagrad_fake(
    moments: torch.Tensor, start: torch.Tensor, steps: int, every: int, *options: float
) -> torch.Tensor:
    return start.new_empty((steps // every + 2, 2))


def _line_adagrad_vmap(
    info: Any, in_dims: tuple[Any, ...], moments: torch.Tensor, start: torch.Tensor, *rest: Any
) -> Any:
    pair = []
    for t, dim in zip((moments, start), in_dims[:2], strict=True):
        t = t.movedim(dim, 0) if dim is not None else t.unsqueeze(0)
        pair.append(t.expand(info.batch_size, *t.shape[1:]))
    return torch.stack([line_adagrad(m, s, *rest) for m, s in zip(*pair, strict=True)]), 0


line_adagrad: Any = _define(
    "line_adagrad(Tensor moments, Tensor start, int steps, int every, float lr, float eps, "
    "float initial, float decay, float penalty) -> Tensor",
    _adagrad.line_adagrad_stepped,
    _line_adagrad_fake,
    _line_adagrad_vmap,
    # Not differentiated: on every device, the loop in Python floats (float64;
    # other dtypes step in torch operations), fed by the moments copied once.
    everywhere=lambda *args: _adagrad.line_adagrad(*args, xp=xp),
)
