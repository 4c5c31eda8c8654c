"""Reshaping an image into a vector."""

from __future__ import annotations

from ._array_api import (
    Array,
    ArrayLike,
    Namespace,
    array_args,
    compute_dtype,
    describe,
    plain_floating,
    require_ndim,
    unknown_size,
)

__all__ = ["image2vector"]


def image2vector(image: ArrayLike, /, *, xp: Namespace | None = None) -> Array:
    """Reshape an image of shape ``(length, height, depth)`` into a column.

    Parameters
    ----------
    image : array_like
        A 3-D array; Python lists are taken as NumPy.
    xp : namespace, optional
        The array namespace of ``image``; inferred when omitted.

    Returns
    -------
    array
        Shape ``(length·height·depth, 1)``, the values in row-major (C)
        order, like ``numpy.reshape``. Floating inputs keep their dtype (and
        the result may be a view of ``image``, as with ``reshape``); integer
        and boolean images are promoted to the backend's default floating
        dtype, like every arraykit primitive.

    See Also
    --------
    normalize_rows
        The next step of the classic exercise.

    Examples
    --------
    >>> import numpy as np
    >>> import arraykit as ak
    >>> ak.image2vector(np.arange(12.0).reshape(2, 3, 2)).T
    array([[ 0.,  1.,  2.,  3.,  4.,  5.,  6.,  7.,  8.,  9., 10., 11.]])
    """
    if xp is None and plain_floating(image) and image.ndim == 3:
        return image.reshape(-1, 1)  # the common case, without a microsecond of dispatch
    xp, (image,) = array_args(("image",), (image,), xp)
    _, dtype = compute_dtype(xp, image, "image")
    require_ndim(image, "image", 3, "an image of shape (length, height, depth)")
    if any(map(unknown_size, image.shape)):
        raise ValueError(
            f"image must have a known shape to be reshaped; got {describe(image)} "
            "(for Dask, call image.compute_chunk_sizes() first)"
        )
    if image.dtype != dtype:
        image = xp.astype(image, dtype)
    # -1 rather than the product: lazy backends may not know the shape yet.
    return xp.reshape(image, (-1, 1))
