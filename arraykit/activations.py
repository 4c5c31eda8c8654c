"""Sigmoid, its derivative, and softmax."""

from __future__ import annotations

import math
from collections.abc import Sequence

from . import _native
from ._array_api import (
    Array,
    ArrayLike,
    Namespace,
    finish,
    floating_args,
    normalize_axis,
    static_size,
    wider_sum_dtype,
)

__all__ = ["sigmoid", "sigmoid_derivative", "softmax"]


def sigmoid(x: ArrayLike, /, *, xp: Namespace | None = None) -> Array:
    """Logistic sigmoid, ``1 / (1 + exp(-x))``, elementwise.

    Parameters
    ----------
    x : array_like
        Any array-API array; Python scalars and lists are taken as NumPy.
        Integer and boolean inputs are promoted to the backend's default
        floating dtype.
    xp : namespace, optional
        The array namespace of ``x``; inferred when omitted.

    Returns
    -------
    array
        ``σ(x)`` in ``x``'s namespace, device and floating dtype.

    Notes
    -----
    Computed as ``1 / (1 + e)`` for ``x >= 0`` and ``e / (1 + e)`` for
    ``x < 0`` with ``e = exp(-|x|) <= 1``, so nothing overflows and both tails
    keep full relative accuracy (``σ(-700)`` is ``9.86e-305``, not 0).
    ``σ(±inf)`` is 1 and 0; NaN stays NaN.

    Examples
    --------
    >>> import numpy as np
    >>> import arraykit as ak
    >>> ak.sigmoid(np.array([1.0, 2.0, 3.0]))
    array([0.73105858, 0.88079708, 0.95257413])
    """
    xp, (x,), dtype = floating_args(("x",), (x,), xp)
    result = _native.dispatch(xp, "sigmoid", _sigmoid, x)
    return finish(xp, result, dtype)


def _minus_abs(x: Array, xp: Namespace) -> tuple[Array, Array]:
    # -|x| written with where, not abs: autograd then sees slope -1 at x = 0
    # (abs has slope 0 there on torch), so d sigmoid/dx at 0 comes out 0.25.
    nonnegative = x >= 0
    return nonnegative, xp.where(nonnegative, -x, x)


def _sigmoid(x: Array, xp: Namespace) -> Array:
    """Generic array-API sigmoid (the twin of the native fast paths)."""
    nonnegative, t = _minus_abs(x, xp)
    e = xp.exp(t)
    # One division for both branches: 1/(1+e) for x >= 0, e/(1+e) for x < 0.
    return xp.where(nonnegative, 1.0, e) / (1.0 + e)


def sigmoid_derivative(x: ArrayLike, /, *, xp: Namespace | None = None) -> Array:
    """Derivative of the sigmoid, ``σ(x)·(1 − σ(x))``, elementwise.

    Parameters
    ----------
    x : array_like
        Any array-API array; Python scalars and lists are taken as NumPy.
    xp : namespace, optional
        The array namespace of ``x``; inferred when omitted.

    Returns
    -------
    array
        ``σ'(x)`` in ``x``'s namespace, device and floating dtype.

    Notes
    -----
    The textbook ``s * (1 - s)`` is exactly 0 once ``s`` rounds to 1
    (``x ≳ 17`` in float32, ``37`` in float64). Here it is computed as
    ``e / (1 + e)**2`` with ``e = exp(-|x|)``, accurate in both tails:
    ``σ'(30) = 9.36e-14``. ``σ'(±inf)`` is 0.

    Examples
    --------
    >>> import numpy as np
    >>> import arraykit as ak
    >>> ak.sigmoid_derivative(np.array([1.0, 2.0, 3.0]))
    array([0.19661193, 0.10499359, 0.04517666])
    """
    xp, (x,), dtype = floating_args(("x",), (x,), xp)
    result = _native.dispatch(xp, "sigmoid_derivative", _sigmoid_derivative, x)
    return finish(xp, result, dtype)


def _sigmoid_derivative(x: Array, xp: Namespace) -> Array:
    """Generic array-API sigmoid derivative."""
    _, t = _minus_abs(x, xp)
    e = xp.exp(t)
    d = 1.0 + e
    # Near x = 0 the roundings can lift the quotient an ulp above the true
    # maximum, 1/4; the clamp keeps the bound exact.
    return xp.minimum(e / (d * d), 0.25)


def softmax(
    x: ArrayLike, /, axis: int | Sequence[int] | None = -1, *, xp: Namespace | None = None
) -> Array:
    """Softmax, ``exp(x) / sum(exp(x))`` along ``axis``.

    Parameters
    ----------
    x : array_like
        Any array-API array with at least one dimension (unless ``axis`` is
        None); Python scalars and lists are taken as NumPy.
    axis : int, tuple of int or None, default -1
        The axis (or axes) along which the result sums to 1; None means all.
    xp : namespace, optional
        The array namespace of ``x``; inferred when omitted.

    Returns
    -------
    array
        The softmax, with ``x``'s shape, namespace, device and floating dtype.

    Notes
    -----
    The maximum along ``axis`` is subtracted first, so nothing overflows
    (``softmax([1000, 1001])`` is ``[0.26894142, 0.73105858]``), and the
    rounding error of that subtraction is carried into the exponential, so
    that small results keep full relative accuracy too.

    Special values, chosen so that shifting the whole input never changes the
    result:

    * a NaN makes its whole slice NaN;
    * entries equal to ``+inf`` share the mass equally and all others get 0
      (the limit of letting them grow together);
    * a slice that is all ``-inf`` is uniform, like any slice of equal values;
    * an empty array gives an empty array of the same shape.

    Examples
    --------
    >>> import numpy as np
    >>> import arraykit as ak
    >>> ak.softmax(np.array([[9.0, 2.0, 5.0, 0.0, 0.0], [7.0, 5.0, 0.0, 0.0, 0.0]]))
    array([[9.80897665e-01, 8.94462891e-04, 1.79657674e-02, 1.21052389e-04,
            1.21052389e-04],
           [8.78679856e-01, 1.18916387e-01, 8.01252314e-04, 8.01252314e-04,
            8.01252314e-04]])
    """
    xp, (x,), dtype = floating_args(("x",), (x,), xp)
    axes = normalize_axis(axis, x.ndim)
    if not axes:
        # Every slice is a single element (axis=(), or a 0-d x with axis=None).
        return finish(xp, xp.where(xp.isnan(x), x, 1.0), dtype)
    if static_size(x) == 0:
        return finish(xp, xp.zeros_like(x), dtype)
    result = _native.dispatch(xp, "softmax", _softmax, x, axes)
    return finish(xp, result, dtype)


def _softmax(x: Array, axes: tuple[int, ...], xp: Namespace) -> Array:
    """Generic array-API softmax over the (normalised, non-empty) ``axes``."""
    finfo = xp.finfo(x.dtype)
    largest = float(finfo.max)
    # exp(-cutoff) underflows to 0: anything further below the maximum is
    # clamped there.
    cutoff = 1.0 - math.log(float(finfo.smallest_normal) * float(finfo.eps))
    m = xp.max(x, axis=axes, keepdims=True)
    finite = xp.isfinite(m)
    # Work with halves, whose differences cannot overflow (x - m can, for
    # finite x and m of opposite signs), and with ±inf clipped to the largest
    # float so that the error term below stays finite.
    b = -0.5 * xp.where(finite, m, 0.0)
    a = 0.5 * xp.clip(x, -largest, largest)
    s = a + b
    # Knuth's TwoSum: err is the exact rounding error of s = a + b, and
    # exp(2(s + err)) ≈ exp(2s)·(1 + 2err). Without it the relative error of
    # the result grows like |x - m| ulp when x and m differ in magnitude.
    back = s - a
    err = (a - (s - back)) + (b - back)
    # The exponentials are scaled by 2^(mantissa bits + 4), which the final
    # division cancels, so that the correction e·2err stays a normal number
    # even for results near the smallest normal (backends that flush
    # subnormals to zero would otherwise drop it there).
    boost = 2.0 ** (round(-math.log2(float(finfo.eps))) + 4)
    e = xp.exp(2.0 * xp.clip(s, -0.5 * cutoff, 0.0)) * boost
    e = e + e * (2.0 * err)
    # Slices whose maximum is +inf, -inf or NaN take their limit (see the
    # docstring): the maxima share the mass; NaN propagates.
    at_max = xp.astype(x == m, x.dtype)
    e = xp.where(finite, e, at_max + xp.where(xp.isnan(m), m, 0.0))
    return _divide_by_sum(e, axes, xp)


def _divide_by_sum(e: Array, axes: tuple[int, ...], xp: Namespace) -> Array:
    """``e / sum(e)`` along ``axes``, summed (and divided) in float64 for float32 where possible."""
    wide = wider_sum_dtype(xp, e)
    if wide is None:
        return e / xp.sum(e, axis=axes, keepdims=True)
    return xp.astype(e / xp.sum(e, axis=axes, keepdims=True, dtype=wide), e.dtype)
