"""PyTorch fast paths.

``torch.sigmoid``'s fused kernel for sigmoid. For the others, a CPU tensor
shares its memory with a NumPy array, so the cache-blocked NumPy kernels
serve it without a copy; the result comes back as a tensor on the same
memory. torch's own CPU kernels split large arrays over
``torch.get_num_threads()`` threads; so does softmax here, the one primitive
whose arithmetic (an exp per element, compensated sums) outweighs memory
traffic: its rows are split over threads by NumPy's kernel, on request.

Tensors on other devices, and tensors recording gradients, take the
generic path: its gradients are accurate (torch's own sigmoid backward,
``s * (1 - s)``, loses the tails: 0 for x > 17 in float32), and in-place
kernels would not be differentiable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import array_api_compat.torch as xp
import numpy as np
import torch

from ..activations import _sigmoid, _sigmoid_derivative, _softmax
from ..losses import _generic_loss
from ..normalization import _normalize_rows
from . import numpy as numpy_kernels


def _records_grad(x: torch.Tensor) -> bool:
    return x.requires_grad and torch.is_grad_enabled()


def sigmoid(x: torch.Tensor) -> Any:
    if _records_grad(x):
        return _sigmoid(x, xp)
    return torch.sigmoid(x)


def _through_numpy(
    kernel: Callable[..., Any], generic: Callable[..., Any], tensors: int
) -> Callable[..., Any]:
    """``kernel`` on the NumPy views of CPU tensors that record no gradient, else ``generic``."""

    def fast(*args: Any) -> Any:
        arrays, rest = args[:tensors], args[tensors:]
        if any(a.device.type != "cpu" or _records_grad(a) for a in arrays):
            return generic(*args, xp)
        return torch.from_numpy(kernel(*(a.detach().numpy() for a in arrays), *rest))

    fast.__doc__ = f"{kernel.__name__} through NumPy's kernel on CPU, else the generic twin."
    return fast


sigmoid_derivative = _through_numpy(numpy_kernels.sigmoid_derivative, _sigmoid_derivative, 1)
normalize_rows = _through_numpy(numpy_kernels.normalize_rows, _normalize_rows, 1)
l1_loss = l2_loss = _through_numpy(numpy_kernels.l1_loss, _generic_loss, 2)  # power selects


def _softmax_in_torch_threads(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    return numpy_kernels.softmax(x, axes, threads=torch.get_num_threads())


softmax = _through_numpy(_softmax_in_torch_threads, _softmax, 1)
