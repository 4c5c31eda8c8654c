"""NumPy fast paths: the compiled kernels, else NumPy's own operations.

The compiled kernels (:mod:`arraykit._native._compiled`) serve every size and
layout where they were built: one C call per primitive that reads its input
once (on small arrays a NumPy call's fixed cost, not arithmetic, is the time,
and the careful formulas take several calls where the textbook takes one or
two), vectorised on large ones and split over threads where the caller asks
(torch passes its thread count; NumPy arrays get one, as NumPy's own
functions).

Without them (no C compiler at build time), the NumPy kernels below serve.
Large-array time there is dominated by allocating full-size temporaries and
by passes over memory, not by arithmetic. So these allocate one array, the
result, and compute block by block in small scratch buffers that stay in the
processor's cache. The formulas are those of the generic formulas (see their
comments); NumPy's warnings for an intermediate that overflows to a harmless
inf are silenced only where the final result is still right. Like every
kernel, each returns None where it does not serve (rows holding ±inf or
NaN, sums that lost digits): the dispatcher then takes the generic formula.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from .. import _log_space
from .._array_api import NUMPY_XP, narrow_float, one_axis
from .._formulas import bounded_sum
from . import _compiled
from . import compiled as compiled  # None where not built: the NumPy kernels serve every size
from ._compiled import reduced_loss

BLOCK_BYTES = 1 << 17
"""Bytes per scratch buffer: three of them (384 KB) fit in a 1 MB L2."""

BLOCK = BLOCK_BYTES // 8
"""Elements per block of the elementwise kernels and losses (float64-sized)."""

COMPILED_UP_TO = {
    # Vectorised (and threaded where asked): faster than NumPy's at every size.
    "sigmoid": sys.maxsize,
    "sigmoid_derivative": sys.maxsize,
    "softmax": sys.maxsize,
    "normalize_rows": sys.maxsize,
    "loss": sys.maxsize,
}
"""Largest size the compiled kernels take (tests set them to 0 to exercise NumPy's
kernels). ``benchmarks.crossover`` measures both sides."""


def _compiled_serves(name: str, x: np.ndarray) -> bool:
    return compiled is not None and x.size <= COMPILED_UP_TO[name]


def _blocks(n: int, step: int) -> Iterator[slice]:
    for start in range(0, n, step):
        yield slice(start, min(start + step, n))


def _elementwise(x: np.ndarray, kernel: Callable[..., None], scratch: int = 0) -> np.ndarray:
    """``kernel(x_part, out_part, *scratch_parts)`` over a new result, in blocks when large."""
    if x.size <= BLOCK:
        out = np.empty_like(x)
        kernel(x, out, *(np.empty_like(x) for _ in range(scratch)))
        return out
    flat = (x if x.flags.c_contiguous else x.copy(order="C")).reshape(-1)
    out = np.empty(x.shape, dtype=x.dtype)
    result = out.reshape(-1)
    buffers = [np.empty(BLOCK, dtype=x.dtype) for _ in range(scratch)]
    for part in _blocks(flat.size, BLOCK):
        n = part.stop - part.start
        kernel(flat[part], result[part], *(b[:n] for b in buffers))
    return out


def _sigmoid_kernel(x: np.ndarray, out: np.ndarray) -> None:
    # 1/(1 + exp(-x)) is within ~2.5 ulp down to the subnormal range. Its
    # one flaw is that exp(-x) overflows for x below -log(largest) (NumPy
    # warns: the caller silences that), where 1/(1 + inf) is 0 but σ(x) is
    # exp(x), subnormal down to about -745 (float64): taken there instead, so
    # that every layout and build gives the compiled kernels' tail.
    np.negative(x, out=out)
    np.exp(out, out=out)
    out += 1.0
    np.divide(1.0, out, out=out)  # np.reciprocal has no SIMD loop: 2× slower
    tail = x < _OVERFLOWS[x.dtype.char]
    if tail.any():
        np.exp(x, out=out, where=tail)


_OVERFLOWS = {c: -math.log(float(np.finfo(c).max)) for c in "fd"}
"""Per dtype: where exp(-x) overflows, below -log(largest finite value)."""


def sigmoid(x: np.ndarray, threads: int = 1) -> np.ndarray | None:
    """``σ(x)``; ``threads`` as for :func:`softmax`."""
    if compiled is not None and x.size <= COMPILED_UP_TO["sigmoid"]:
        return _compiled.sigmoid(x, threads)
    with np.errstate(over="ignore"):
        return _elementwise(x, _sigmoid_kernel)


def _sigmoid_derivative_kernel(
    x: np.ndarray, out: np.ndarray, d: np.ndarray, low: np.ndarray
) -> None:
    # e/(1 + e)^2 with e = exp(-|x|) <= 1, its square from 1 + e = d + low
    # carried exactly, clamped at its maximum 1/4 (the formula's comments).
    np.abs(x, out=out)
    np.negative(out, out=out)
    np.exp(out, out=out)
    np.add(out, 1.0, out=d)
    np.subtract(1.0, d, out=low)
    low += out
    low *= 2.0
    low += d
    d *= low
    np.divide(out, d, out=out)
    np.minimum(out, 0.25, out=out)


def sigmoid_derivative(x: np.ndarray, threads: int = 1) -> np.ndarray | None:
    """``σ'(x)``; ``threads`` as for :func:`softmax`."""
    if _compiled_serves("sigmoid_derivative", x):
        return _compiled.sigmoid_derivative(x, threads)
    return _elementwise(x, _sigmoid_derivative_kernel, scratch=2)


def softmax(x: np.ndarray, axes: tuple[int, ...], threads: int = 1) -> np.ndarray | None:
    """Softmax over ``axes``; with ``threads`` > 1, large arrays' rows split over that many.

    NumPy's own functions run on one thread, so NumPy arrays get one; torch
    passes its CPU thread count, as its own kernels use.
    """
    if _compiled_serves("softmax", x):
        return _compiled.softmax(x, axes, threads)
    if len(axes) != 1 or x.shape[axes[0]] == 0:
        return None
    if axes[0] != x.ndim - 1:
        moved = softmax(np.moveaxis(x, axes[0], -1), (x.ndim - 1,), threads)
        return None if moved is None else np.moveaxis(moved, -1, axes[0])
    rows = np.ascontiguousarray(x).reshape(-1, x.shape[-1])
    result = np.empty_like(rows)
    return result.reshape(x.shape) if _softmax_rows_into(rows, result) else None


def _softmax_rows_into(rows: np.ndarray, result: np.ndarray) -> bool:
    """Softmax of each row of the C-contiguous 2-D ``rows`` into ``result``, block by block,
    in NumPy alone (built without the compiled kernels); False at a row holding ±inf
    or NaN."""
    step = max(1, BLOCK_BYTES // (rows.shape[1] * 8))
    first = rows[:step]
    # Scratch in float64: float32 rows are shifted exactly there.
    shifted = np.empty(first.shape)
    error = None if rows.dtype == np.float32 else np.empty(first.shape)
    # x − m may overflow (to −inf, whose exp is right) and then make the
    # error term NaN: such a block fails its check and is redone.
    with np.errstate(over="ignore", invalid="ignore"):
        for part in _blocks(rows.shape[0], step):
            xb, ob = rows[part], result[part]
            n = part.stop - part.start
            if not _softmax_block(xb, ob, shifted[:n], None if error is None else error[:n]):
                return False
    return True


def _softmax_block(
    x: np.ndarray, out: np.ndarray, shifted: np.ndarray, error: np.ndarray | None
) -> bool:
    """Softmax of the rows of ``x`` into ``out``; False where a row holds ±inf or NaN.

    exp(x − m) carries the rounding error of x − m (Knuth's TwoSum, as in the
    generic formula; float32 differences are exact in the float64 scratch), so
    small results keep full relative accuracy; NumPy keeps subnormals, so no
    scaling. Every row of a finite block sums to at least 1 before the
    division (its maximum contributes exp(0)); ±inf, NaN and an overflowed
    difference all break that, which is the check.
    """
    neg_m = -x.max(axis=1, keepdims=True)
    s = np.add(x, neg_m, out=shifted, dtype=np.float64)
    e = s
    if error is not None:
        back = np.subtract(s, x, out=out)
        np.subtract(s, back, out=error)
        np.subtract(x, error, out=error)
        np.subtract(neg_m, back, out=back)
        np.add(error, back, out=error)  # the exact rounding error of s
        np.exp(s, out=e)
        np.multiply(error, e, out=error)
        np.add(e, error, out=e)
    else:
        np.exp(s, out=e)
    if error is None:  # float32 rows, summed in the float64 scratch
        total = e.sum(axis=1, keepdims=True)
    else:  # each e is at most 1 + 2^-52: below 2
        total = bounded_sum(e, (1,), 2.0, xp=NUMPY_XP)
    if not total.min() >= 1.0:
        return False
    np.divide(e, total, out=out, casting="same_kind")
    return True


def normalize_rows(x: np.ndarray, threads: int = 1) -> np.ndarray | None:
    """Each row over its Euclidean norm; ``threads`` as for :func:`softmax`."""
    if _compiled_serves("normalize_rows", x):
        return _compiled.normalize_rows(x, threads)
    finfo = np.finfo(x.dtype)
    # A sum of squares at least this large is finite and did not lose
    # anything that counts to squares in the subnormal range.
    enough = 4.0 * max(x.shape[1], 1) * float(finfo.tiny) / float(finfo.eps)
    top = float(finfo.max)
    result = np.empty_like(x, order="C")
    step = max(1, BLOCK_BYTES // max(x.shape[1] * x.itemsize, 1))
    # einsum squares and sums in one pass, 1.5–2× faster than multiply + sum;
    # on rows of up to 128 it is as accurate as np.sum, which only becomes
    # pairwise beyond that (at 10,000 einsum's float32 rows are 10 ulp off).
    fused = x.shape[1] <= 128
    scratch = None if fused else np.empty_like(x[:step], order="C")
    with np.errstate(over="ignore", invalid="ignore"):  # such blocks take the careful path
        for part in _blocks(x.shape[0], step):
            xb, ob = x[part], result[part]
            if scratch is None:
                total = np.einsum("ij,ij->i", xb, xb)[:, None]
            else:
                squares = np.multiply(xb, xb, out=scratch[: part.stop - part.start])
                total = squares.sum(axis=1, keepdims=True)
            if enough <= total.min() and total.max() <= top:  # False for NaN
                np.divide(xb, np.sqrt(total), out=ob)
            elif not _normalize_careful(xb, ob, finfo):
                return None
    return result


def _normalize_careful(xb: np.ndarray, ob: np.ndarray, finfo: Any) -> bool:
    """Rows whose plain sum of squares overflowed or lost digits; False where a row
    holds ±inf or NaN."""
    largest = np.abs(xb).max(axis=1, keepdims=True)
    if not np.isfinite(largest).all():
        return False
    # A power of two bringing each row's largest entry to [0.5, 1): exact.
    # (Capped at the largest power: a subnormal row lands near 2^-52.)
    _, exponent = np.frexp(largest)
    shift = np.clip(-exponent, finfo.minexp, finfo.maxexp - 1)
    np.multiply(xb, np.ldexp(np.ones_like(largest), shift), out=ob)
    norm = np.sqrt(np.square(ob).sum(axis=1, keepdims=True))
    norm[norm == 0] = 1.0  # zero rows stay zero
    np.divide(ob, norm, out=ob)
    return True


def _error_power(a: np.ndarray, b: np.ndarray, out: np.ndarray, power: int) -> np.ndarray:
    """out = |a − b|**power, in place (inf past the largest float: silence that)."""
    np.subtract(a, b, out=out)
    np.abs(out, out=out)
    if power == 2:
        np.multiply(out, out, out=out)
    return out


def _blocked_sum(yhat: np.ndarray, y: np.ndarray, power: int) -> float:
    """Sum of ``|yhat − y|**power`` in float64, block by block (inf or NaN on overflow)."""
    a, b = np.ravel(yhat), np.ravel(y)
    scratch = np.empty(min(a.size, BLOCK), dtype=a.dtype)
    total = 0.0
    with np.errstate(over="ignore", invalid="ignore"):
        for part in _blocks(a.size, BLOCK):
            d = _error_power(a[part], b[part], scratch[: part.stop - part.start], power)
            total += float(d.sum(dtype=np.float64))
    return total


def l1_loss(
    yhat: np.ndarray, y: np.ndarray, reduction: str, power: int, threads: int = 1
) -> np.ndarray | None:
    """L1 (power 1) or L2 (power 2) by the plain blocked sum; ``threads`` as for
    :func:`softmax`. None where the careful generic form is needed."""
    if _compiled_serves("loss", yhat):
        return _compiled.loss(yhat, y, reduction, power, threads)
    if reduction == "none":
        with np.errstate(over="ignore"):  # |yhat − y| or its square past the largest float: inf
            return _error_power(yhat, y, np.empty_like(yhat), power)
    if yhat.size == 0:
        return None
    total = _blocked_sum(yhat, y, power)
    value = reduced_loss(
        total, yhat.size, yhat.dtype.char, power, reduction, lambda: np.array_equal(yhat, y)
    )
    return None if value is None else np.asarray(value, dtype=yhat.dtype)


l2_loss = l1_loss  # power selects the loss, as in the generic formula


# --- the log-space family: the compiled kernels ------------------------------------------------


def softplus(x: np.ndarray) -> np.ndarray | None:
    return _compiled.softplus(x, 1)


def log_sigmoid(x: np.ndarray) -> np.ndarray | None:
    return _compiled.log_sigmoid(x, 1)


def binary_cross_entropy_with_logits(
    z: np.ndarray, y: np.ndarray, reduction: str, weights: np.ndarray | None
) -> np.ndarray | None:
    """The losses' kernel with the logistic term (labels in [0, 1]: terms of one sign,
    whose plain sum is accurate); weights take the formula."""
    if weights is not None:
        return None
    return _compiled.loss(z, y, reduction, _compiled.LOGISTIC)


def binary_cross_entropy(
    p: np.ndarray, y: np.ndarray, reduction: str, weights: np.ndarray | None
) -> np.ndarray | None:
    """The losses' kernel with the binary cross-entropy's term (labels in [0, 1]:
    terms of one sign, whose plain sum is accurate); weights take the formula."""
    if weights is not None:
        return None
    return _compiled.loss(p, y, reduction, _compiled.PROBABILITIES)


def log_softmax(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray | None:
    return _compiled.log_softmax(x, axes)


def logsumexp(x: np.ndarray, axes: tuple[int, ...], keepdims: bool) -> np.ndarray | None:
    result = _compiled.logsumexp(x, axes)
    if result is None or not keepdims:
        return result
    return np.expand_dims(result, axes)


def softmax_along(x: np.ndarray, axis: int) -> np.ndarray | None:
    """The softmax over one axis, for :func:`arraykit._dispatch.route` (None: the entry
    checks answer)."""
    axes = one_axis(axis, x.ndim)
    return None if axes is None or not x.size else softmax(x, axes)


def log_softmax_along(x: np.ndarray, axis: int) -> np.ndarray | None:
    """The log-softmax over one axis, for :func:`arraykit._dispatch.route`."""
    axes = one_axis(axis, x.ndim)
    return None if axes is None else _compiled.log_softmax(x, axes)


def logsumexp_along(x: np.ndarray, axis: int, keepdims: bool) -> np.ndarray | None:
    """logsumexp over one axis, for :func:`arraykit._dispatch.route`."""
    axes = one_axis(axis, x.ndim)
    return None if axes is None else logsumexp(x, axes, keepdims)


def cross_entropy(
    logits: np.ndarray,
    target: np.ndarray,
    axis: int,
    reduction: str,
    weights: np.ndarray | None,
) -> np.ndarray | None:
    """``−log_softmax`` at the labels, from the rows' kernel (whose entries are accurate;
    the formula's two forms are for autodiff, which NumPy arrays do not take): C-ordered
    rows of classes by the kernel that reads the labels, other layouts by a pick from the
    log-softmax (the same bits)."""
    classes = logits.shape[axis]
    # (The kernel checks the indices' range itself, declining any outside.)
    terms = _compiled.cross_entropy_rows(logits, target) if axis == logits.ndim - 1 else None
    if terms is None:
        if target.size and (target.min() < 0 or target.max() >= classes):
            return None  # the formula's NaN
        log_p = _compiled.log_softmax(logits, (axis,))
        if log_p is None:
            return None
        if log_p.ndim == 2 and axis == 1:  # (the usual batch of rows: one gather)
            terms = -log_p[np.arange(log_p.shape[0]), target]
        elif log_p.ndim == 2:  # (the course's one example per column: one gather)
            terms = -log_p[target, np.arange(log_p.shape[1])]
        else:
            picked = np.take_along_axis(log_p, np.expand_dims(target, axis), axis)
            terms = -np.squeeze(picked, axis)
    if weights is not None:
        terms = terms * weights
        return np.asarray(_log_space.reduce(terms, reduction, logits.dtype, xp=NUMPY_XP))
    return nonnegative_reduced(terms, reduction)


def cross_entropy_indices(
    logits: np.ndarray, target: np.ndarray, axis: int, reduction: str
) -> np.ndarray | None:
    """The unweighted cross-entropy of class indices along ``axis``, for
    :func:`arraykit._dispatch.route`; None where :func:`cross_entropy` declines (an
    index out of range included) or the arguments need the entry checks."""
    if (
        type(target) is not np.ndarray
        or target.dtype.kind not in "iu"
        or not -logits.ndim <= axis < logits.ndim
    ):
        return None
    axis %= logits.ndim
    if target.shape != logits.shape[:axis] + logits.shape[axis + 1 :]:
        return None
    return cross_entropy(logits, target, axis, reduction, None)


def nonnegative_reduced(terms: np.ndarray, reduction: str) -> np.ndarray:
    """Losses of one sign (≥ 0, or +inf, or NaN) reduced within about one rounding, as
    ``_log_space.reduce`` promises, in fewer passes: one compiled pass of compensated
    double lanes where the kernels read the terms (the same bits for the same terms,
    whatever layout they came from); else float32 summed in float64 (each addition's
    error far below float32's last bit), float64 by ``math.fsum`` (correctly rounded)
    where the terms are few, else the careful sum. Totals that are not finite take
    those too."""
    if reduction == "none" or terms.size == 0:
        return np.asarray(_log_space.reduce(terms, reduction, terms.dtype, xp=NUMPY_XP))
    total = _compiled.compensated_sum(terms)
    if total is None or not math.isfinite(total):
        if terms.dtype == np.float64 and terms.size > 4096:
            return np.asarray(_log_space.reduce(terms, reduction, terms.dtype, xp=NUMPY_XP))
        if terms.dtype == np.float64:
            try:
                total = math.fsum(terms.ravel().tolist())
            except OverflowError:  # past the range on the way: the careful sum scales first
                return np.asarray(_log_space.reduce(terms, reduction, terms.dtype, xp=NUMPY_XP))
        else:
            total = float(np.sum(terms, dtype=np.float64))
    if reduction == "mean":
        total /= terms.size
    # (a float32 total past float32's range is inf, without the cast's warning)
    return narrow_float(total, terms.dtype)
