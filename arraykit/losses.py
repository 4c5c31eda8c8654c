"""L1 and L2 losses."""

from __future__ import annotations

from typing import Literal

import array_api_compat

from . import _formulas
from ._array_api import Array, ArrayLike, Namespace, describe, finish, floating_args, same_shape
from ._dispatch import computes_half, dispatch

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

    See Also
    --------
    l2_loss
        The squared error.

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

    See Also
    --------
    l1_loss
        The absolute error.

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
    xp, (yhat, y), dtype = floating_args(("yhat", "y"), (yhat, y), xp, computes_half)
    if not same_shape(yhat.shape, y.shape):
        raise ValueError(
            f"yhat and y must have the same shape; got yhat: {describe(yhat)}, y: {describe(y)}"
        )
    if reduction == "mean" and _formulas.element_count(yhat) is None and not _counts_blocks(xp):
        raise ValueError(
            f"a mean needs the number of elements, which is unknown here; got yhat: "
            f"{describe(yhat)}"
        )
    name = ("l1_loss", "l2_loss")[power - 1]
    result = dispatch(xp, name, _formulas.loss, yhat, y, reduction, power)
    return finish(xp, result, dtype)


def _counts_blocks(xp: Namespace) -> bool:
    # Dask's fast path counts each block's elements as it computes them.
    return bool(array_api_compat.is_dask_namespace(xp))
