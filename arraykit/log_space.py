"""The log-space functions: softplus, the log-sigmoid, logsumexp and the log-softmax."""

from __future__ import annotations

from collections.abc import Sequence

import array_api_compat

from . import _formulas, _log_space
from ._array_api import Array, ArrayLike, Namespace, finish, floating_args, normalize_axis
from ._dispatch import computes_half, dispatch, route

__all__ = ["log_sigmoid", "log_softmax", "logsumexp", "softplus"]


def softplus(x: ArrayLike, /, *, xp: Namespace | None = None) -> Array:
    """Softplus, ``log(1 + exp(x))``, elementwise.

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
        ``softplus(x)`` in ``x``'s namespace, device and floating dtype.

    See Also
    --------
    log_sigmoid
        ``−softplus(−x)``.
    sigmoid
        Its derivative.

    Notes
    -----
    Computed as ``max(x, 0) + log1p(exp(−|x|))``, two terms of one sign, so
    nothing overflows and both tails keep full relative accuracy:
    ``softplus(−745)`` is ``5e-324``, not 0, and ``softplus(30)`` is
    ``30 + 9.4e-14``, where torch's ``F.softplus`` returns ``x`` itself past
    its threshold of 20. Its derivative under autograd and ``jax.grad`` is
    ``σ(x)`` to the sigmoid's accuracy. ``softplus(+inf)`` is ``+inf``,
    ``softplus(−inf)`` is 0; NaN stays NaN.

    Examples
    --------
    >>> import numpy as np
    >>> import arraykit as ak
    >>> ak.softplus(np.array([-30.0, 0.0, 30.0]))
    array([9.35762297e-14, 6.93147181e-01, 3.00000000e+01])
    """
    result = route(x, xp, "softplus")
    if result is not None:
        return result  # the common case, without the entry checks
    xp, (x,), dtype = floating_args(("x",), (x,), xp, computes_half)
    return finish(xp, dispatch(xp, "softplus", _log_space.softplus, x), dtype)


def log_sigmoid(x: ArrayLike, /, *, xp: Namespace | None = None) -> Array:
    """Log of the logistic sigmoid, ``log σ(x) = −log(1 + exp(−x))``, elementwise.

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
        ``log σ(x)`` in ``x``'s namespace, device and floating dtype.

    See Also
    --------
    softplus
        ``log_sigmoid(x) = −softplus(−x)``.
    binary_cross_entropy_with_logits
        The logistic loss, which is ``−log_sigmoid`` of the signed logit.

    Notes
    -----
    ``log(sigmoid(x))`` is ``−inf`` once ``σ(x)`` underflows (``x < −745`` in
    float64, ``−104`` in float32) and loses all its digits for large ``x``,
    where ``σ(x)`` rounds to 1: here ``log_sigmoid(40)`` is ``−4.2e-18`` and
    ``log_sigmoid(−1000)`` is ``−1000``. Its derivative is ``σ(−x)``.
    ``log_sigmoid(−inf)`` is ``−inf``, ``log_sigmoid(+inf)`` is 0.

    Examples
    --------
    >>> import numpy as np
    >>> import arraykit as ak
    >>> ak.log_sigmoid(np.array([-1000.0, 0.0, 40.0]))
    array([-1.00000000e+03, -6.93147181e-01, -4.24835426e-18])
    """
    result = route(x, xp, "log_sigmoid")
    if result is not None:
        return result  # the common case, without the entry checks
    xp, (x,), dtype = floating_args(("x",), (x,), xp, computes_half)
    return finish(xp, dispatch(xp, "log_sigmoid", _log_space.log_sigmoid, x), dtype)


def _axes(x: Array, axis: int | Sequence[int] | None) -> tuple[int, ...]:
    """The normalised axes, with a 0-d ``x`` taken as one slice of one element
    (axis -1, 0 or None), as :func:`softmax` takes it."""
    if x.ndim > 0:
        return normalize_axis(axis, x.ndim)
    try:
        normalize_axis(axis, 1)
    except ValueError:
        raise ValueError(
            f"axis {axis!r} is out of range for a 0-d x, which is one slice of one "
            f"element: axis may be -1, 0 or None"
        ) from None
    return ()


def logsumexp(
    x: ArrayLike,
    /,
    axis: int | Sequence[int] | None = -1,
    keepdims: bool = False,
    *,
    xp: Namespace | None = None,
) -> Array:
    """``log(sum(exp(x)))`` along ``axis``, without overflow or lost digits.

    Parameters
    ----------
    x : array_like
        Any array-API array; Python scalars and lists are taken as NumPy.
    axis : int, tuple of int or None, default -1
        The axis (or axes) to reduce; None means all.
    keepdims : bool, default False
        Keep the reduced axes, with length 1.
    xp : namespace, optional
        The array namespace of ``x``; inferred when omitted.

    Returns
    -------
    array
        ``x``'s shape less the reduced axes (or with them of length 1), in its
        namespace, device and floating dtype.

    See Also
    --------
    log_softmax
        ``x − logsumexp(x)``, computed without that difference's rounding.
    softmax
        ``exp(x − logsumexp(x))``.

    Notes
    -----
    Computed as ``m + log1p(r)``, with ``m`` the maximum and ``r`` the sum of
    ``exp(x − m)`` over the other entries, so that the result keeps its
    relative accuracy where it is near 0 (``logsumexp([0, −50])`` is
    ``1.9e-22``; ``m + log(Σ)`` gives 0). Within a few ulp of the exact value,
    except where it is a cancellation of ``m`` and ``log1p(r)`` (a result
    much smaller than the maximum in magnitude, from ``m < 0``): there the
    error is a few ulp of ``m``. Its derivative is the softmax.

    A slice of all ``−inf`` gives ``−inf``; one holding ``+inf`` gives
    ``+inf``; NaN gives NaN; an empty slice gives ``−inf`` (the log of an
    empty sum).

    Examples
    --------
    >>> import numpy as np
    >>> import arraykit as ak
    >>> ak.logsumexp(np.array([[1000.0, 1000.0], [0.0, -50.0]]))
    array([1.00069315e+03, 1.92874985e-22])
    """
    if type(axis) is int:
        result = route(x, xp, "logsumexp_along", axis, bool(keepdims))
        if result is not None:
            return result  # the common case, without the entry checks
    xp, (x,), dtype = floating_args(("x",), (x,), xp, computes_half)
    axes = _axes(x, axis)
    if not axes:  # every slice is a single element
        return finish(xp, x, dtype)
    if _formulas.is_empty(x):
        shape = tuple(
            1 if i in axes else n for i, n in enumerate(x.shape) if keepdims or i not in axes
        )
        empty = xp.full(shape, -float("inf"), dtype=x.dtype, device=array_api_compat.device(x))
        return finish(xp, empty, dtype)
    result = dispatch(xp, "logsumexp", _log_space.logsumexp, x, axes, bool(keepdims))
    return finish(xp, result, dtype)


def log_softmax(
    x: ArrayLike, /, axis: int | Sequence[int] | None = -1, *, xp: Namespace | None = None
) -> Array:
    """Log of the softmax, ``x − logsumexp(x)`` along ``axis``.

    Parameters
    ----------
    x : array_like
        Any array-API array; Python scalars and lists are taken as NumPy.
    axis : int, tuple of int or None, default -1
        The axis (or axes) along which ``exp`` of the result sums to 1; None means all.
    xp : namespace, optional
        The array namespace of ``x``; inferred when omitted.

    Returns
    -------
    array
        ``x``'s shape, namespace, device and floating dtype.

    See Also
    --------
    softmax
        ``exp(log_softmax(x))``.
    logsumexp
        The normaliser.
    cross_entropy
        ``−log_softmax`` at the label, with an accurate gradient.

    Notes
    -----
    ``log(softmax(x))`` is ``−inf`` wherever the softmax underflows
    (``log(softmax([0, −800]))``), and ``x − logsumexp(x)`` rounds the
    largest entry's result to 0 when the others are far below. Here each
    entry is ``(x − m) − log1p(r)`` (``m`` the maximum, ``r`` the sum of
    ``exp(x − m)`` over the other entries): two terms of one sign, within a
    few ulp everywhere, the largest entry's being ``−log1p(r)``
    (``log_softmax([0, −50])`` is ``[−1.9e-22, −50]``).

    Special values follow :func:`softmax`'s limits, of which this is the
    log: ``−inf`` entries stay ``−inf``; the ``+inf`` entries of a slice
    share the mass (``−log k`` each, ``−inf`` elsewhere); a slice of all
    ``−inf`` is uniform (``−log n``); NaN makes its slice NaN.

    Examples
    --------
    >>> import numpy as np
    >>> import arraykit as ak
    >>> ak.log_softmax(np.array([[0.0, -50.0], [1000.0, 1000.0]]))
    array([[-1.92874985e-22, -5.00000000e+01],
           [-6.93147181e-01, -6.93147181e-01]])
    """
    if type(axis) is int:
        result = route(x, xp, "log_softmax_along", axis)
        if result is not None:
            return result  # the common case, without the entry checks
    xp, (x,), dtype = floating_args(("x",), (x,), xp, computes_half)
    axes = _axes(x, axis)
    if not axes:
        # One entry per slice: its log-share is 0, or NaN.
        return finish(xp, xp.where(xp.isnan(x), x, 0.0), dtype)
    if _formulas.is_empty(x):
        return finish(xp, _formulas.empty_like_from(x), dtype)
    result = dispatch(xp, "log_softmax", _log_space.log_softmax, x, axes)
    return finish(xp, result, dtype)
