"""PyTorch fast paths.

``torch.sigmoid``'s fused kernel for sigmoid. For the others, a CPU tensor
shares its memory with a NumPy array, so the cache-blocked NumPy kernels
serve it without a copy; the result comes back as a tensor on the same
memory. torch's own CPU kernels split large arrays over
``torch.get_num_threads()`` threads; so does softmax here, the one primitive
whose arithmetic (an exp per element, compensated sums) outweighs memory
traffic: its row ranges run in a small thread pool, created on first need.

Tensors on other devices, and tensors recording gradients, take the
generic path: its gradients are accurate (torch's own sigmoid backward,
``s * (1 - s)``, loses the tails: 0 for x > 17 in float32), and in-place
kernels would not be differentiable.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
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


PARALLEL_FROM = 1 << 18
"""Fewest elements per thread worth a thread: below, a thread's start-up and
the GIL between blocks cost more than its share saves."""

_pool: ThreadPoolExecutor | None = None
_pool_size = 0


def _forget_pool() -> None:
    # A forked child has none of the pool's threads, yet the pool would
    # believe it does and queue work for them forever.
    global _pool, _pool_size
    _pool, _pool_size = None, 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def _threads(wanted: int) -> ThreadPoolExecutor:
    """A pool of at least ``wanted`` threads (one per core unless torch asks for more)."""
    global _pool, _pool_size
    if _pool is None or _pool_size < wanted:
        _pool_size = max(wanted, os.cpu_count() or 1)
        _pool = ThreadPoolExecutor(_pool_size, "arraykit")
    return _pool


def _parallel_softmax(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """NumPy's softmax kernel, its rows split over torch's CPU thread count when large."""
    last = (x.ndim - 1,)
    threads = min(torch.get_num_threads(), x.size // PARALLEL_FROM)
    if threads < 2 or axes != last or x.shape[-1] == 0 or x.size // x.shape[-1] < 2:
        return numpy_kernels.softmax(x, axes)
    rows = np.ascontiguousarray(x).reshape(-1, x.shape[-1])
    threads = min(threads, rows.shape[0])
    result = np.empty_like(rows)
    bounds = [rows.shape[0] * k // threads for k in range(threads + 1)]
    pool = _threads(threads)
    parts = [slice(a, b) for a, b in itertools.pairwise(bounds)]
    for done in [pool.submit(numpy_kernels.softmax_rows_into, rows[p], result[p]) for p in parts]:
        done.result()
    return result.reshape(x.shape)


softmax = _through_numpy(_parallel_softmax, _softmax, 1)
