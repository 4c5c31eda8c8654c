"""The compiled kernels (``_kernels.c``) over any layout and axis: the one driver
that both NumPy arrays and torch's CPU tensors (as NumPy views of their
memory) go through.

The kernels read their inputs in any strides (``gather()`` in ``_kernels.c``
copies a stretch, or whole rows of at most a stretch, at a time into scratch
on the stack) and write a fresh C-ordered result. Here the rest is arranged:
an axis of up to 512 across memory goes to the columns' kernel, in place; any other
axis or set of axes is moved last as a view; a Fortran-ordered array's
elements are taken in memory order; rows longer than a stretch in strided
memory are copied a block of rows at a time. So every path allocates its
result and at most a block, and equal values give the same bits whatever
their memory order. Only misaligned memory (``np.frombuffer`` at an odd
offset) is copied whole, aligned. The kernels compute ±inf and NaN rows'
limits themselves. Each function returns None where the kernels do not serve
(not built, a dtype they do not take, a loss whose plain sum overflowed or
lost digits): the caller's dispatcher then takes the generic formula.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from . import compiled as compiled  # None where not built

_KINDS = ("f", "d")

_RANGE = {c: (float(np.finfo(c).tiny / np.finfo(c).eps), float(np.finfo(c).max)) for c in _KINDS}
"""Per dtype: below tiny/eps a sum of squares may have lost digits to
subnormals; above the largest finite value it overflows."""

COLUMNS_UP_TO = 512
"""The softmax family's columns' kernels take axes of any length up to this
(``_kernels.c``)."""


def serves(x: np.ndarray) -> bool:
    """Whether the kernels are built and take ``x``'s dtype."""
    return compiled is not None and x.dtype.char in _KINDS


def readable(x: np.ndarray) -> np.ndarray:
    """``x`` as the kernels read it: aligned (see ``aligned()`` in ``_kernels.c``),
    C-contiguous where it has to be copied."""
    flags = x.flags
    if flags.aligned and all(s % x.itemsize == 0 for s in x.strides):
        return x
    return np.array(x, order="C")


def _transposed(x: np.ndarray) -> bool:
    """Whether ``x`` is Fortran-ordered and not C-ordered: its transpose is, and
    elementwise work takes it in memory order."""
    flags = x.flags
    return flags.f_contiguous and not flags.c_contiguous


def elementwise(name: str) -> Callable[[np.ndarray, int], np.ndarray | None]:
    """The elementwise kernel ``name`` over any layout: ``f(x, threads)``.

    The kernel is tried first (it checks the memory itself): on the arrays
    it reads, as most are, this layer costs one call.
    """
    kernel = getattr(compiled, name, None)

    def run(x: np.ndarray, threads: int = 1) -> np.ndarray | None:
        if kernel is None:
            return None
        out = np.empty_like(x)  # in x's layout
        if kernel(x, out, threads):
            return out
        if not serves(x):
            return None
        if _transposed(x) and kernel(x.T, out.T, threads):
            return out  # the memory in order
        del out  # (before the next, which takes its size again)
        out = np.empty_like(x, order="C")
        if kernel(x, out, threads):
            return out
        del out
        copy = readable(x)
        return None if copy is x else run(copy, threads)

    return run


sigmoid = elementwise("sigmoid")
sigmoid_derivative = elementwise("sigmoid_derivative")
softplus = elementwise("softplus")
log_sigmoid = elementwise("log_sigmoid")

_BLOCK = 1 << 16
"""Elements of the block of rows that is copied where the kernels cannot gather
a row themselves (a strided row longer than their stretch): small enough to
stay in cache between its copy and its reading."""


def _rows(
    kernel: Callable[..., bool],
    x: np.ndarray,
    row_axes: int,
    threads: int,
    reduced: bool = False,
) -> np.ndarray | None:
    """``kernel(x, out, row_length, threads)`` on the rows made of ``x``'s last
    ``row_axes`` axes, in any layout: into a fresh C-ordered result (of ``x``'s
    shape, or ``reduced``, one per row, of the leading axes' shape), in one call
    where the kernel reads ``x`` as it is, else a block of rows at a time (long
    strided rows, misaligned or byte-swapped memory)."""
    length = x.shape[-1] if row_axes == 1 else math.prod(x.shape[x.ndim - row_axes :])
    lead = x.shape[: x.ndim - row_axes]
    native = x.dtype.newbyteorder("=")
    out = np.empty(lead, native) if reduced else np.empty_like(x, order="C")
    if kernel(x, out, length, threads):
        return out
    if not serves(x):
        return None
    if out.dtype != native:  # byte-swapped: the result in native order
        del out
        out = np.empty(x.shape, native)
    cut = len(lead)  # blocks take whole sub-arrays from this axis on
    while cut > 0 and math.prod(lead[cut - 1 :]) * length <= _BLOCK:
        cut -= 1
    scratch = np.empty(min(x.size, max(_BLOCK, length)), native)
    if cut == 0:
        blocks: Iterator[tuple[Any, ...]] = iter([()])
    else:
        inner = math.prod(lead[cut:]) * length
        step = max(1, _BLOCK // inner)
        blocks = (
            (*index, slice(start, start + step))
            for index in np.ndindex(*lead[: cut - 1])
            for start in range(0, lead[cut - 1], step)
        )
    for index in blocks:
        block = x[index]
        dense = scratch[: block.size].reshape(block.shape)
        np.copyto(dense, block)
        if not kernel(dense, out[index], length, threads):
            return None
    return out


def softmax(x: np.ndarray, axes: tuple[int, ...], threads: int = 1) -> np.ndarray | None:
    """Softmax over the (nonnegative, non-empty) ``axes``, in any layout."""
    if not serves(x) or x.size == 0 or not axes:
        return None
    if axes == (x.ndim - 1,) and x.flags.c_contiguous:
        return _rows(compiled.softmax_rows, x, 1, threads)  # type: ignore[union-attr]
    if len(axes) == 1:
        columns = compiled.softmax_columns  # type: ignore[union-attr]
        served = _columns(columns, x, axes[0], threads, COLUMNS_UP_TO)
        if served is not None:
            return served  # an axis across memory, in place
    ends = tuple(range(x.ndim - len(axes), x.ndim))
    if axes == ends:
        return _rows(compiled.softmax_rows, x, len(axes), threads)  # type: ignore[union-attr]
    moved = _rows(compiled.softmax_rows, np.moveaxis(x, axes, ends), len(axes), threads)  # type: ignore[union-attr]
    return None if moved is None else np.moveaxis(moved, ends, axes)


def log_softmax(x: np.ndarray, axes: tuple[int, ...], threads: int = 1) -> np.ndarray | None:
    """The log-softmax over the (nonnegative, non-empty) ``axes``, in any layout: an
    axis of up to 512 across memory by the columns' kernel, in place; else the axes
    moved last as a view, the rows' kernel over them."""
    if not serves(x) or x.size == 0 or not axes:
        return None
    kernel = compiled.log_softmax_rows  # type: ignore[union-attr]
    if axes == (x.ndim - 1,) and x.flags.c_contiguous:
        return _rows(kernel, x, 1, threads)
    if len(axes) == 1:
        columns = compiled.log_softmax_columns  # type: ignore[union-attr]
        served = _columns(columns, x, axes[0], threads, COLUMNS_UP_TO)
        if served is not None:
            return served
    ends = tuple(range(x.ndim - len(axes), x.ndim))
    if axes == ends:
        return _rows(kernel, x, len(axes), threads)
    moved = _rows(kernel, np.moveaxis(x, axes, ends), len(axes), threads)
    return None if moved is None else np.moveaxis(moved, ends, axes)


def logsumexp(x: np.ndarray, axes: tuple[int, ...], threads: int = 1) -> np.ndarray | None:
    """logsumexp over the (nonnegative, non-empty) ``axes``, reduced, in any layout."""
    if not serves(x) or x.size == 0 or not axes:
        return None
    kernel = compiled.logsumexp_rows  # type: ignore[union-attr]
    if axes == (x.ndim - 1,) and x.flags.c_contiguous:
        return _rows(kernel, x, 1, threads, reduced=True)
    if len(axes) == 1:
        columns = compiled.logsumexp_columns  # type: ignore[union-attr]
        served = _columns(columns, x, axes[0], threads, COLUMNS_UP_TO, reduced=True)
        if served is not None:
            return served
    ends = tuple(range(x.ndim - len(axes), x.ndim))
    moved = x if axes == ends else np.moveaxis(x, axes, ends)
    return _rows(kernel, moved, len(axes), threads, reduced=True)


def within_unit_interval(x: np.ndarray) -> bool | None:
    """Whether every value of ``x`` is in [0, 1], none NaN, in one pass; None where the
    kernels do not read ``x`` (another dtype; not C- or Fortran-ordered)."""
    if compiled is None:
        return None
    inside: bool | None = compiled.within_unit(x.T if _transposed(x) else x)
    return inside


def compensated_sum(x: np.ndarray) -> float | None:
    """The sum of a C-contiguous float32 or float64 array in one pass of compensated
    double lanes: within about a rounding of the exact sum for terms of one sign, NaN
    where a term is inf or NaN; None where the kernels do not read ``x``."""
    return None if compiled is None else compiled.compensated_sum(x)


def cross_entropy_rows(logits: np.ndarray, target: np.ndarray) -> np.ndarray | None:
    """``−log_softmax(logits)`` at the class indices ``target`` along the last axis of
    ``logits`` (up to 4096 classes; strided rows gathered), one loss per index, the bits
    of the log-softmax's entries there, without writing the log-softmax; None where the
    kernel does not serve (an index out of range included) and for a transposed array,
    whose rows the log-softmax's columns' kernel reads in place."""
    if not serves(logits) or logits.size == 0 or _transposed(logits):
        return None
    labels = np.ascontiguousarray(target, dtype=np.int64)
    losses = np.empty(target.shape, logits.dtype.newbyteorder("="))
    kernel = compiled.cross_entropy_rows  # type: ignore[union-attr]
    return losses if kernel(logits, labels, losses, logits.shape[-1]) else None


def _columns(
    kernel: Callable[..., bool],
    x: np.ndarray,
    axis: int,
    threads: int,
    longest: int,
    reduced: bool = False,
) -> np.ndarray | None:
    """A softmax-family columns' ``kernel`` over an ``axis`` of at most ``longest``
    that is not contiguous in memory, in place: the axis of a C-ordered array other
    than the last, or of an F-ordered one other than the first (a transposed
    array's rows). None elsewhere. ``reduced``: one result per row, the axis dropped.

    Its rows then run across memory, and the columns' kernel computes them
    with vectors along it, with the rows' kernel's arithmetic (the same bits).
    """
    if x.shape[axis] > longest or not x.flags.aligned:
        return None
    if x.flags.c_contiguous and axis != x.ndim - 1:
        memory, axis_in_memory = x, axis
    elif x.flags.f_contiguous and axis != 0:
        memory, axis_in_memory = x.T, x.ndim - 1 - axis  # the same memory, C-ordered
    else:
        return None
    length = memory.shape[axis_in_memory]
    width = math.prod(memory.shape[axis_in_memory + 1 :])
    shape = memory.shape[:axis_in_memory] + memory.shape[axis_in_memory + 1 :]
    out = np.empty(shape, memory.dtype) if reduced else np.empty_like(memory)
    if not kernel(memory, out, length, width, threads):
        return None
    return out.T if memory is not x else out


def normalize_rows(x: np.ndarray, threads: int = 1) -> np.ndarray | None:
    """Each row of the (non-empty) matrix ``x`` over its Euclidean norm, in any layout."""
    if compiled is None:
        return None
    if _transposed(x) and x.shape[1] <= compiled.COLUMNS_LONGEST and x.flags.aligned:
        # A transposed matrix's rows run across memory: the columns' kernel reads
        # them in place, with the rows' kernel's arithmetic (the same bits). Longer
        # rows are checked here, not declined there: the result would be allocated twice.
        out = np.empty_like(x.T)
        if compiled.normalize_columns(x.T, out, x.shape[1], x.shape[0], threads):
            return out.T
    return _rows(compiled.normalize_rows, x, 1, threads)  # type: ignore[union-attr]


LOGISTIC = 3
"""The losses' "power" of the logistic loss of logits and labels (the terms of
binary_cross_entropy_with_logits, of one sign for labels in [0, 1])."""

PROBABILITIES = 4
"""The losses' "power" of the binary cross-entropy of probabilities and labels (the
terms of binary_cross_entropy, of one sign for labels in [0, 1])."""


def loss(
    yhat: np.ndarray, y: np.ndarray, reduction: str, power: int, threads: int = 1
) -> np.ndarray | None:
    """L1 (power 1), L2 (power 2), the logistic loss (:data:`LOGISTIC`) or the binary
    cross-entropy (:data:`PROBABILITIES`) of same-shaped arrays of one dtype, in any
    layout."""
    if compiled is None or yhat.size == 0:
        return None
    if reduction == "none":
        if _transposed(yhat) and _transposed(y):
            served = loss(yhat.T, y.T, reduction, power, threads)
            return None if served is None else served.T
        out = np.empty_like(yhat, order="C")
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
    if power >= LOGISTIC and not math.isfinite(total):
        return total  # a term is NaN or +inf (a certain label's log 0): so is the formula's
    if not math.isfinite(total):
        return None
    if power == 2 and total < smallest and not (total == 0 and equal()):
        return None
    if reduction == "mean":
        total /= size
    if total > largest:  # near or past the top of a narrower dtype
        return None
    return total
