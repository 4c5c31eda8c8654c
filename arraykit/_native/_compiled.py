"""The compiled kernels (``_kernels.c``) over any layout and axis: the one driver
that both NumPy arrays and torch's CPU tensors (as NumPy views of their
memory) go through.

The kernels read C-contiguous, aligned float32/float64 memory. Here every
other layout reaches them: a short axis that is not contiguous (a transposed
array's rows, a middle or first axis) through the columns' kernel, in place;
any other axis or set of axes moved last; a strided, reversed or misaligned
array through one aligned copy. So equal values give the same bits whatever
their memory order. The kernels compute ±inf and NaN rows' limits themselves.
Each function returns None where the kernels do not serve (not built, a
dtype they do not take, a loss whose plain sum overflowed or lost digits):
the caller's dispatcher then takes the generic formula.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from . import compiled as compiled  # None where not built

_KINDS = ("f", "d")

_RANGE = {c: (float(np.finfo(c).tiny / np.finfo(c).eps), float(np.finfo(c).max)) for c in _KINDS}
"""Per dtype: below tiny/eps a sum of squares may have lost digits to
subnormals; above the largest finite value it overflows."""

_COLUMNS_BELOW = {"f": 16, "d": 8}
"""Per dtype: the columns' kernel takes axes shorter than this (a vector's lanes)."""


def serves(x: np.ndarray) -> bool:
    """Whether the kernels are built and take ``x``'s dtype."""
    return compiled is not None and x.dtype.char in _KINDS


def readable(x: np.ndarray) -> np.ndarray:
    """``x`` as the kernels read it: C-contiguous and aligned (see ``aligned()`` in
    ``_kernels.c``), a copy where it is not."""
    flags = x.flags
    if flags.c_contiguous and flags.aligned:
        return x
    return np.array(x, order="C")


def elementwise(name: str) -> Callable[[np.ndarray, int], np.ndarray | None]:
    """The elementwise kernel ``name`` over any layout: ``f(x, threads)``.

    The kernel is tried first (it checks the memory itself): on the arrays
    it reads, as most are, this layer costs one call.
    """
    kernel = getattr(compiled, name, None)

    def run(x: np.ndarray, threads: int = 1) -> np.ndarray | None:
        if kernel is None:
            return None
        out = np.empty_like(x)
        if kernel(x, out, threads):
            return out
        copy = readable(x) if serves(x) else x
        return None if copy is x else run(copy, threads)

    return run


sigmoid = elementwise("sigmoid")
sigmoid_derivative = elementwise("sigmoid_derivative")


def softmax(x: np.ndarray, axes: tuple[int, ...], threads: int = 1) -> np.ndarray | None:
    """Softmax over the (nonnegative, non-empty) ``axes``, in any layout."""
    if not serves(x) or x.size == 0 or not axes:
        return None
    last = x.ndim - 1
    if axes == (last,):
        if x.flags.c_contiguous:
            out = np.empty_like(x)
            if compiled.softmax_rows(x, out, x.shape[last], threads):  # type: ignore[union-attr]
                return out  # the common case: the kernels read x as it is
        served = _softmax_columns(x, last, threads)
        if served is not None:
            return served  # a transposed array's short rows, in place
        copy = readable(x)
        return None if copy is x else softmax(copy, axes, threads)
    if len(axes) == 1:
        served = _softmax_columns(x, axes[0], threads)
        if served is not None:
            return served
    ends = tuple(range(x.ndim - len(axes), x.ndim))
    if tuple(axes) != ends:
        # The axes moved last (one copy, in their order), the result moved back.
        moved = softmax(np.moveaxis(x, axes, ends), ends, threads)
        return None if moved is None else np.moveaxis(moved, ends, axes)
    x = readable(x)
    out = np.empty_like(x)
    length = math.prod(x.shape[-len(axes) :])
    return out if compiled.softmax_rows(x, out, length, threads) else None  # type: ignore[union-attr]


def _softmax_columns(x: np.ndarray, axis: int, threads: int) -> np.ndarray | None:
    """Softmax over a short ``axis`` that is not contiguous in memory, in place: the
    axis of a C-ordered array other than the last, or of an F-ordered one other
    than the first (a transposed array's rows). None elsewhere.

    Its rows then run across memory, and the columns' kernel computes them
    with vectors along it, with the rows' kernel's arithmetic (the same bits).
    """
    if x.shape[axis] >= _COLUMNS_BELOW[x.dtype.char] or not x.flags.aligned:
        return None
    if x.flags.c_contiguous and axis != x.ndim - 1:
        memory, axis_in_memory = x, axis
    elif x.flags.f_contiguous and axis != 0:
        memory, axis_in_memory = x.T, x.ndim - 1 - axis  # the same memory, C-ordered
    else:
        return None
    length = memory.shape[axis_in_memory]
    width = math.prod(memory.shape[axis_in_memory + 1 :])
    out = np.empty_like(memory)
    if not compiled.softmax_columns(memory, out, length, width, threads):  # type: ignore[union-attr]
        return None
    return out.T if memory is not x else out


def normalize_rows(x: np.ndarray, threads: int = 1) -> np.ndarray | None:
    """Each row of the (non-empty) matrix ``x`` over its Euclidean norm, in any layout."""
    if compiled is None:
        return None
    out = np.empty_like(x)
    if compiled.normalize_rows(x, out, x.shape[1], threads):
        return out
    copy = readable(x) if serves(x) else x
    return None if copy is x else normalize_rows(copy, threads)


def loss(
    yhat: np.ndarray, y: np.ndarray, reduction: str, power: int, threads: int = 1
) -> np.ndarray | None:
    """L1 (power 1) or L2 (power 2) of same-shaped arrays of one dtype, in any layout."""
    if compiled is None or yhat.size == 0:
        return None
    if reduction == "none":
        out = np.empty_like(yhat)
        if compiled.loss_elements(yhat, y, out, power, threads):
            return out
        total = None
    else:
        total = compiled.loss_sum(yhat, y, power, threads)
    if total is None:  # not read: another dtype, or memory to copy first
        if not (serves(yhat) and yhat.dtype == y.dtype):
            return None
        a, b = readable(yhat), readable(y)
        return None if a is yhat and b is y else loss(a, b, reduction, power, threads)
    kind = yhat.dtype.char
    value = reduced_loss(total, yhat.size, kind, power, reduction, lambda: np.array_equal(yhat, y))
    return None if value is None else np.asarray(value, dtype=kind)


def reduced_loss(
    total: float, size: int, kind: str, power: int, reduction: str, equal: Callable[[], bool]
) -> float | None:
    """The loss from the plain sum of ``size`` terms of dtype ``kind`` ('f' or 'd'), or None
    where the careful generic form is needed. ``equal()`` says whether the arrays are equal.

    Overflow anywhere, or squares small enough to have lost digits in the
    subnormal range: the generic formula scales them first. (A zero sum of
    equal arrays is exact.)
    """
    smallest, largest = _RANGE[kind]
    if not math.isfinite(total):
        return None
    if power == 2 and total < smallest and not (total == 0 and equal()):
        return None
    if reduction == "mean":
        total /= size
    if total > largest:  # near or past the top of a narrower dtype
        return None
    return total
