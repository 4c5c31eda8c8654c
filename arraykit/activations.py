"""Sigmoid, its derivative, and softmax."""

from __future__ import annotations

from collections.abc import Sequence

from . import _formulas
from ._array_api import Array, ArrayLike, Namespace, finish, floating_args, normalize_axis
from ._dispatch import computes_half, dispatch, route

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

    See Also
    --------
    sigmoid_derivative
        Its derivative, accurate where ``s·(1 − s)`` is not.
    softmax
        The same squashing over a vector of scores.

    Notes
    -----
    Computed as ``1 / (1 + e)`` for ``x >= 0`` and ``e / (1 + e)`` for
    ``x < 0`` with ``e = exp(-|x|) <= 1``, so nothing overflows and both tails
    keep full relative accuracy (``σ(-700)`` is ``9.86e-305``, not 0), down
    to the subnormal ``σ(-710) = 4.5e-309`` on NumPy (any layout), CuPy, Dask
    and array-api-strict. Torch tensors get ``torch.sigmoid``'s value, 0
    where ``exp(-x)`` overflows (below about -709.8 in float64, -88.7 in
    float32); JAX's XLA flushes every subnormal result to 0.
    ``σ(±inf)`` is 1 and 0; NaN stays NaN.

    Examples
    --------
    >>> import numpy as np
    >>> import arraykit as ak
    >>> ak.sigmoid(np.array([1.0, 2.0, 3.0]))
    array([0.73105858, 0.88079708, 0.95257413])
    """
    result = route(x, xp, "sigmoid")
    if result is not None:
        return result  # the common case, without the entry checks
    xp, (x,), dtype = floating_args(("x",), (x,), xp, computes_half)
    result = dispatch(xp, "sigmoid", _formulas.sigmoid, x)
    return finish(xp, result, dtype)


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

    See Also
    --------
    sigmoid
        The function itself.

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
    result = route(x, xp, "sigmoid_derivative")
    if result is not None:
        return result  # the common case, without the entry checks
    xp, (x,), dtype = floating_args(("x",), (x,), xp, computes_half)
    result = dispatch(xp, "sigmoid_derivative", _formulas.sigmoid_derivative, x)
    return finish(xp, result, dtype)


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

    See Also
    --------
    sigmoid
        The two-class case, one score at a time.
    normalize_rows
        Scaling rows to unit Euclidean norm instead.

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
    * a 0-d ``x`` is one slice of one element (1, or NaN), as in ``torch.softmax``;
    * an empty array gives an empty array of the same shape (computed from
      ``x``, so that autograd can still go through it).

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
    if type(axis) is int:
        result = route(x, xp, "softmax_along", axis)
        if result is not None:
            return result  # the common case, without the entry checks
    xp, (x,), dtype = floating_args(("x",), (x,), xp, computes_half)
    if x.ndim == 0:
        # One slice of one element, whatever the axis names (-1, 0, None), as
        # torch.softmax takes a 0-d tensor; an axis past that is still refused.
        try:
            normalize_axis(axis, 1)
        except ValueError:
            raise ValueError(
                f"axis {axis!r} is out of range for a 0-d x, which is one slice of one "
                f"element: axis may be -1, 0 or None"
            ) from None
        axes: tuple[int, ...] = ()
    else:
        axes = normalize_axis(axis, x.ndim)
    if not axes:
        # Every slice is a single element (axis=(), or a 0-d x).
        return finish(xp, xp.where(xp.isnan(x), x, 1.0), dtype)
    if _formulas.is_empty(x):
        return finish(xp, _formulas.empty_like_from(x), dtype)
    result = dispatch(xp, "softmax", _formulas.softmax, x, axes)
    return finish(xp, result, dtype)
