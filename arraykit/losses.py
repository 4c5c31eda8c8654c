"""L1 and L2 losses."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import array_api_compat

from . import _native
from ._array_api import Array, ArrayLike, Namespace, describe, finish, floating_args, static_size

__all__ = ["l1_loss", "l2_loss"]

Reduction = Literal["sum", "mean", "none"]
_REDUCTIONS = ("sum", "mean", "none")


def l1_loss(
    yhat: ArrayLike, y: ArrayLike, /, reduction: Reduction = "sum", *, xp: Namespace | None = None
) -> Array:
    """L1 loss, ``sum(|yhat - y|)``.

    Parameters
    ----------
    yhat, y : array_like
        Predictions and targets, of the same shape, namespace and device.
    reduction : {"sum", "mean", "none"}, default "sum"
        Sum or average the absolute errors, or return them elementwise.
    xp : namespace, optional
        The array namespace of the inputs; inferred when omitted.

    Returns
    -------
    array
        A 0-d array for "sum" and "mean", else an array of ``y``'s shape; in
        the inputs' namespace and device, and their promoted floating dtype.

    Notes
    -----
    Computed without overflow in the differences or the sum: a result is
    ``inf`` only where the true value exceeds the largest finite float.
    The mean of an empty array is NaN; its sum is 0.

    Examples
    --------
    >>> import numpy as np
    >>> import arraykit as ak
    >>> ak.l1_loss(np.array([0.9, 0.2, 0.1, 0.4, 0.9]), np.array([1.0, 0.0, 0.0, 1.0, 1.0]))
    array(1.1)
    """
    return _loss(yhat, y, reduction, 1, xp)


def l2_loss(
    yhat: ArrayLike, y: ArrayLike, /, reduction: Reduction = "sum", *, xp: Namespace | None = None
) -> Array:
    """L2 loss, ``sum((yhat - y)**2)``.

    Parameters
    ----------
    yhat, y : array_like
        Predictions and targets, of the same shape, namespace and device.
    reduction : {"sum", "mean", "none"}, default "sum"
        Sum or average the squared errors, or return them elementwise.
    xp : namespace, optional
        The array namespace of the inputs; inferred when omitted.

    Returns
    -------
    array
        A 0-d array for "sum" and "mean", else an array of ``y``'s shape; in
        the inputs' namespace and device, and their promoted floating dtype.

    Notes
    -----
    The errors are scaled by a power of two before squaring, so squares of
    large errors do not overflow and squares of tiny ones do not underflow
    unless the result itself does: ``l2_loss([1e20], [0])`` in float32 is
    ``inf`` (1e40 is out of range), while the textbook form also gives
    ``inf`` for ``l2_loss([1e19] * 4, [0] * 4, "mean")``, whose true value is
    1e38; here it is 1e38. A result is ``inf`` only where the true value
    exceeds the largest finite float.
    The mean of an empty array is NaN; its sum is 0.

    Examples
    --------
    >>> import numpy as np
    >>> import arraykit as ak
    >>> ak.l2_loss(np.array([0.9, 0.2, 0.1, 0.4, 0.9]), np.array([1.0, 0.0, 0.0, 1.0, 1.0]))
    array(0.43)
    """
    return _loss(yhat, y, reduction, 2, xp)


def _loss(yhat: ArrayLike, y: ArrayLike, reduction: str, power: int, xp: Namespace | None) -> Array:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}; got {reduction!r}")
    xp, (yhat, y), dtype = floating_args(("yhat", "y"), (yhat, y), xp)
    if yhat.shape != y.shape and not _same_shape(yhat.shape, y.shape):
        raise ValueError(
            f"yhat and y must have the same shape; got yhat: {describe(yhat)}, y: {describe(y)}"
        )
    name = ("l1_loss", "l2_loss")[power - 1]
    result = _native.dispatch(xp, name, _generic_loss, yhat, y, reduction, power)
    return finish(xp, result, dtype)


def _same_shape(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    """Equal shapes; a dimension a lazy backend does not know yet matches any."""

    def unknown(n: Any) -> bool:
        return n is None or (isinstance(n, float) and math.isnan(n))

    return len(a) == len(b) and all(
        m == n or unknown(m) or unknown(n) for m, n in zip(a, b, strict=True)
    )


def _generic_loss(yhat: Array, y: Array, reduction: str, power: int, xp: Namespace) -> Array:
    """Generic array-API L1 (power 1) and L2 (power 2) losses."""
    if reduction == "none":
        absolute, pre = _pre_scaled_error(yhat, y, xp)
        absolute = _product(absolute, 1.0 / pre, xp)
        return absolute if power == 1 else _product(absolute, absolute, xp)
    size = static_size(yhat)
    if size == 0:
        value = 0.0 if reduction == "sum" else math.nan
        return xp.full((), value, dtype=yhat.dtype, device=array_api_compat.device(yhat))
    scale, total = scaled_sum(yhat, y, power, xp)
    if reduction == "mean":
        total = total / size
    return unscale(total, scale, power, xp)


def _pre_scaled_error(yhat: Array, y: Array, xp: Namespace) -> tuple[Array, Array]:
    """``(|yhat - y| · pre, pre)``, with ``pre`` 1/4 where the difference could
    overflow and 1 elsewhere."""
    quarter_limit = float(xp.finfo(yhat.dtype).max) / 4
    # yhat - y overflows only where an operand exceeds a quarter of the
    # largest float; those pairs are subtracted at a quarter of their size
    # (exact: a power of two), the others as they are, so that no value
    # goes near the subnormal range that some backends flush to zero.
    big = xp.maximum(xp.abs(yhat), xp.abs(y)) > quarter_limit
    pre = 1.0 - 0.75 * xp.astype(big, yhat.dtype)
    return xp.abs(yhat * pre - y * pre), pre


def scaled_sum(yhat: Array, y: Array, power: int, xp: Namespace) -> tuple[Array, Array]:
    """``(scale, total)`` with ``sum(|yhat - y|**power) == total / scale**power``.

    ``scale`` is a power of two (a 0-d array) chosen from the largest error,
    so that no term overflows or underflows. Partial results of blocks
    combine exactly (see :func:`merge_scaled_sums`), which lets a chunked
    backend reduce in one pass.
    """
    error, pre = _pre_scaled_error(yhat, y, xp)
    scale = _power_of_two_scale(xp.max(error), xp)
    terms = error * (scale / pre)  # exact: powers of two
    if power == 2:
        terms = terms * terms
    return scale, xp.sum(terms)


def merge_scaled_sums(
    parts: Sequence[tuple[Array, Array]], power: int, xp: Namespace
) -> tuple[Array, Array]:
    """Combine ``(scale, total)`` pairs of :func:`scaled_sum` into one.

    The common scale is the smallest (the one of the largest errors); the
    other totals are brought to it by powers of two, exactly unless they
    fall so far below the largest that they cannot matter.
    """
    common = parts[0][0]
    for scale, _ in parts[1:]:
        common = xp.minimum(common, scale)
    total = None
    for scale, part in parts:
        ratio = common / scale
        part = part * ratio if power == 1 else part * ratio * ratio
        total = part if total is None else total + part
    return common, total


def unscale(total: Array, scale: Array, power: int, xp: Namespace) -> Array:
    """``total / scale**power``, reaching inf, not a warning, past the largest float."""
    undo = 1.0 / scale
    for _ in range(power):
        total = _product(total, undo, xp)
    return total


def _power_of_two_scale(largest: Array, xp: Namespace) -> Array:
    """A power of two that brings ``largest`` where its square neither overflows nor underflows.

    Scaled values stay within [2^(emin/2), 2^(emax/2 - 16)], so the sum of up
    to 2^32 squares is finite and the largest square is a normal number.
    """
    finfo = xp.finfo(largest.dtype)
    emax = round(math.log2(float(finfo.max)))
    emin = round(math.log2(float(finfo.smallest_normal)))
    high, low = emax // 2 - 16, emin // 2 + 1
    one = xp.ones_like(largest)
    return xp.where(
        largest > 2.0**high,
        one * 2.0 ** (high - emax),
        xp.where(largest < 2.0**low, one * 2.0 ** (high - low), one),
    )


def _product(u: Array, v: Array | float, xp: Namespace) -> Array:
    """``u * v`` for non-negative factors, rounded once, reaching inf without
    the overflow warning NumPy-based backends give for the plain product.

    A product within an ulp of the largest float may come out inf rather
    than the largest float, where ``largest / v`` rounds down.
    """
    finfo = xp.finfo(u.dtype)
    largest, eps = float(finfo.max), float(finfo.eps)
    limit = largest / (max(v, 1.0) if isinstance(v, float) else xp.clip(v, 1.0, None))
    below = limit * (1 - 2 * eps)  # below * v cannot round past the largest float
    plain = xp.minimum(u, below) * v
    # Near the top, decide at a quarter of the size, where it cannot overflow
    # (and, unlike a quarter of every product, never reaches the subnormals
    # that some backends flush to zero).
    quarter = (0.25 * xp.minimum(u, limit)) * v
    over = (u > limit) | (quarter > largest / 4)
    top = xp.where(over, math.inf, 4.0 * xp.minimum(quarter, largest / 4))
    return xp.where(u > below, top, plain)
