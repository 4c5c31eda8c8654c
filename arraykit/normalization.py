"""Row normalisation."""

from __future__ import annotations

from . import _formulas
from ._array_api import Array, ArrayLike, Namespace, finish, floating_args, require_ndim
from ._dispatch import computes_half, dispatch

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

    See Also
    --------
    softmax
        Rows turned into probabilities instead.
    image2vector
        Flattening an image before it is normalised.

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
    xp, (x,), dtype = floating_args(("x",), (x,), xp, computes_half)
    require_ndim(x, "x", 2, "a matrix of shape (rows, columns)")
    if _formulas.is_empty(x):
        return finish(xp, _formulas.empty_like_from(x), dtype)
    result = dispatch(xp, "normalize_rows", _formulas.normalize_rows, x)
    return finish(xp, result, dtype)
