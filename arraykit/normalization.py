"""Row normalisation."""

from __future__ import annotations

import math

from . import _native
from ._array_api import (
    Array,
    ArrayLike,
    Namespace,
    finish,
    floating_args,
    require_ndim,
    static_size,
)

__all__ = ["normalize_rows"]


def normalize_rows(x: ArrayLike, /, *, xp: Namespace | None = None) -> Array:
    """Divide each row of a matrix by its Euclidean norm.

    Parameters
    ----------
    x : array_like
        A 2-D array of shape ``(n, m)``; Python lists are taken as NumPy.
    xp : namespace, optional
        The array namespace of ``x``; inferred when omitted.

    Returns
    -------
    array
        ``x / ||x||₂`` row by row, with ``x``'s shape, namespace, device and
        floating dtype.

    Notes
    -----
    Each row is scaled by its largest magnitude before squaring, so rows of
    ``1e-30`` or ``1e30`` in float32 (whose squares underflow or overflow)
    still come out with unit norm. An all-zero row stays zero, with no
    warning. A row holding ``±inf`` becomes the limit of growing those
    entries together: they share the unit norm (``[inf, 1] → [1, 0]``,
    ``[inf, -inf] → [0.707, -0.707]``). A row holding NaN becomes NaN.

    Examples
    --------
    >>> import numpy as np
    >>> import arraykit as ak
    >>> ak.normalize_rows(np.array([[0.0, 3.0, 4.0], [1.0, 6.0, 4.0]]))
    array([[0.        , 0.6       , 0.8       ],
           [0.13736056, 0.82416338, 0.54944226]])
    """
    xp, (x,), dtype = floating_args(("x",), (x,), xp)
    require_ndim(x, "x", 2, "a matrix of shape (rows, columns)")
    if static_size(x) == 0:
        return finish(xp, xp.zeros_like(x), dtype)
    result = _native.dispatch(xp, "normalize_rows", _normalize_rows, x)
    return finish(xp, result, dtype)


def _normalize_rows(x: Array, xp: Namespace) -> Array:
    """Generic array-API row normalisation."""
    finfo = xp.finfo(x.dtype)
    emax = round(math.log2(float(finfo.max)))
    emin = round(math.log2(float(finfo.smallest_normal)))
    magnitude = xp.abs(x)
    largest = xp.max(magnitude, axis=1, keepdims=True)
    finite = xp.isfinite(largest)
    # Multiply each row by a power of two that brings its largest entry near
    # 1: exact, so the result is that of the exact row, and the squares then
    # neither overflow nor underflow. (A division by the largest entry would
    # round once more, and XLA computes x / d as x * (1/d), which is 0 once
    # 1/d is subnormal.)
    usable = xp.where(finite & (largest > 0), largest, 1.0)
    exponent = xp.clip(-xp.floor(xp.log2(usable)), emin, emax - 1)
    scale = xp.pow(xp.full_like(exponent, 2.0), exponent)
    # Rows holding ±inf: the infinite entries become ±1 and the rest 0 before
    # the norm is taken, which gives the limit; a NaN row stays NaN.
    limit = xp.where(magnitude == largest, xp.sign(x), xp.where(xp.isnan(largest), largest, 0.0))
    y = xp.where(finite, x * scale, limit)
    norm = xp.sqrt(xp.sum(y * y, axis=1, keepdims=True))
    return y / xp.where(norm > 0, norm, 1.0)
