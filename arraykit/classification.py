"""The losses of classification: the binary and the categorical cross-entropy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np

from . import _log_space
from ._array_api import (
    Array,
    ArrayLike,
    Namespace,
    describe,
    finish,
    floating_args,
    host_view,
    mixed_args,
    normalize_axis,
    same_shape,
)
from ._dispatch import computes_half, dispatch, route
from ._native._compiled import within_unit_interval

__all__ = ["binary_cross_entropy", "binary_cross_entropy_with_logits", "cross_entropy"]

Reduction = Literal["mean", "sum", "none"]
_REDUCTIONS = ("mean", "sum", "none")


def binary_cross_entropy(
    p: ArrayLike,
    y: ArrayLike,
    /,
    reduction: Reduction = "mean",
    weights: ArrayLike | None = None,
    *,
    xp: Namespace | None = None,
) -> Array:
    """Binary cross-entropy of probabilities, ``−y·log p − (1 − y)·log(1 − p)``.

    Parameters
    ----------
    p : array_like
        Predicted probabilities, in [0, 1].
    y : array_like
        Targets in [0, 1] (labels 0 and 1, or soft labels), of ``p``'s shape,
        namespace and device.
    reduction : {"mean", "sum", "none"}, default "mean"
        Average or sum the losses, or return them elementwise. The course's
        cost ``J`` is the mean.
    weights : array_like, optional
        A weight per example, broadcasting against ``p``; the mean is then
        ``Σ w·loss / n``, as torch's ``weight`` and Keras' ``sample_weight`` take it.
    xp : namespace, optional
        The array namespace of the inputs; inferred when omitted.

    Returns
    -------
    array
        A 0-d array for "mean" and "sum", else of ``p``'s shape; in the
        inputs' namespace, device and promoted floating dtype.

    Raises
    ------
    ValueError
        Where ``p`` or ``y`` holds a value outside [0, 1] and the values can be
        read without a device synchronisation (NumPy, array-api-strict, CPU
        tensors and JAX arrays outside a trace). Under ``jax.jit``, on CUDA
        and on Dask nothing is checked: such values give the formula's value
        (NaN for ``p`` outside [0, 1]).

    See Also
    --------
    binary_cross_entropy_with_logits
        The same loss from logits, accurate where ``p`` rounds to 0 or 1.
    cross_entropy
        More than two classes.
    l2_loss

    Notes
    -----
    ``log(1 − p)`` is computed as ``log1p(−p)``, exact near ``p = 1``;
    ``0·log 0`` is 0, and a label of 1 at ``p = 0`` (or 0 at ``p = 1``) is a
    loss of ``+inf``, where torch clamps the logarithms at −100. Each loss
    is a sum of two terms of one sign, within a few ulp; the reductions are
    summed within about one rounding.

    Examples
    --------
    >>> import numpy as np
    >>> import arraykit as ak
    >>> ak.binary_cross_entropy(np.array([0.9, 0.2, 0.6]), np.array([1.0, 0.0, 1.0]))
    array(0.27977656)
    """
    xp, arrays, dtype = _floating(("p", "y", "weights"), (p, y, weights), xp)
    p, y, weights = arrays
    _same_shape("p", p, "y", y)
    _within_unit_interval("p", p, xp)
    _within_unit_interval("y", y, xp)
    weights = _example_weights(weights, p.shape, xp)
    result = dispatch(
        xp,
        "binary_cross_entropy",
        _log_space.binary_cross_entropy,
        p,
        y,
        _reduction(reduction),
        weights,
    )
    return finish(xp, result, dtype)


def binary_cross_entropy_with_logits(
    z: ArrayLike,
    y: ArrayLike,
    /,
    reduction: Reduction = "mean",
    weights: ArrayLike | None = None,
    *,
    xp: Namespace | None = None,
) -> Array:
    """The logistic loss of logits, ``−y·log σ(z) − (1 − y)·log σ(−z)``.

    Parameters
    ----------
    z : array_like
        Logits (any real values): the probability is ``σ(z)``.
    y : array_like
        Targets in [0, 1], of ``z``'s shape, namespace and device.
    reduction : {"mean", "sum", "none"}, default "mean"
        Average or sum the losses, or return them elementwise.
    weights : array_like, optional
        A weight per example, broadcasting against ``z`` (see
        :func:`binary_cross_entropy`).
    xp : namespace, optional
        The array namespace of the inputs; inferred when omitted.

    Returns
    -------
    array
        A 0-d array for "mean" and "sum", else of ``z``'s shape; in the
        inputs' namespace, device and promoted floating dtype.

    Raises
    ------
    ValueError
        Where ``y`` holds a value outside [0, 1] and the values can be read
        without a device synchronisation (see :func:`binary_cross_entropy`).

    See Also
    --------
    log_sigmoid
        ``−loss`` for a label of 1.
    binary_cross_entropy
        The same loss from probabilities.
    sigmoid

    Notes
    -----
    Computed as ``(1 − y)·max(z, 0) + y·max(−z, 0) + log1p(exp(−|z|))``, terms
    of one sign: no overflow, and full relative accuracy where the textbook
    ``−y·log σ(z) − …`` is ``inf`` (``z = −40``, ``y = 1``, in float32) or 0
    (``z = 40``, ``y = 1``: the loss is ``4.2e-18``). Its gradient in ``z``
    under autograd and ``jax.grad`` is ``σ(z) − y`` without the cancelling
    difference: for ``y = 1`` it is ``−σ(−z)`` (``−9.3576e-14`` at
    ``z = 30``, where ``σ(30) − 1`` keeps 3 digits).

    Examples
    --------
    >>> import numpy as np
    >>> import arraykit as ak
    >>> ak.binary_cross_entropy_with_logits(np.array([40.0, -2.0]), np.array([1.0, 0.0]), "none")
    array([4.24835426e-18, 1.26928011e-01])
    """
    xp, arrays, dtype = _floating(("z", "y", "weights"), (z, y, weights), xp, computes_half)
    z, y, weights = arrays
    _same_shape("z", z, "y", y)
    _within_unit_interval("y", y, xp)
    weights = _example_weights(weights, z.shape, xp)
    result = dispatch(
        xp,
        "binary_cross_entropy_with_logits",
        _log_space.binary_cross_entropy_with_logits,
        z,
        y,
        _reduction(reduction),
        weights,
    )
    return finish(xp, result, dtype)


def cross_entropy(
    logits: ArrayLike,
    target: ArrayLike,
    /,
    axis: int = -1,
    reduction: Reduction = "mean",
    weights: ArrayLike | None = None,
    *,
    xp: Namespace | None = None,
) -> Array:
    """Cross-entropy of logits against class indices or probabilities, ``−Σ t·log softmax``.

    Parameters
    ----------
    logits : array_like
        Scores, with the classes along ``axis``.
    target : array_like
        Class indices (an integer array of ``logits``' shape without
        ``axis``), or class probabilities (a floating array of ``logits``'
        shape), as torch's ``F.cross_entropy`` takes both.
    axis : int, default -1
        The axis of the classes: -1 for one example per row, 0 for the
        course's one example per column.
    reduction : {"mean", "sum", "none"}, default "mean"
        Average or sum the examples' losses, or return them (``logits``'
        shape without ``axis``).
    weights : array_like, optional
        A weight per example, broadcasting against ``logits``' shape without
        ``axis``; the mean is ``Σ w·loss / n`` (torch's per-class ``weight``
        is another thing).
    xp : namespace, optional
        The array namespace of the inputs; inferred when omitted.

    Returns
    -------
    array
        A 0-d array for "mean" and "sum", else one loss per example; in the
        inputs' namespace, device and floating dtype.

    Raises
    ------
    TypeError
        For a floating ``target`` of the indices' shape (class indices as
        floats), an integer one of ``logits``' shape, or a boolean one.
    ValueError
        For a ``target`` of neither shape; for class indices outside
        ``[0, classes)`` or probabilities outside [0, 1] where the values can
        be read without a device synchronisation (see
        :func:`binary_cross_entropy`). Under ``jax.jit``, on CUDA and on Dask
        an index out of range gives a loss of NaN.

    See Also
    --------
    log_softmax
        The log-probabilities this takes at the label.
    softmax
        The gradient of the loss in the logits is ``softmax − one_hot``.
    binary_cross_entropy_with_logits
        Two classes, one logit.

    Notes
    -----
    ``−log(softmax(x))[label]`` is ``inf`` once the label's softmax
    underflows (logits ``[0, 120]`` in float32, label 0: the loss is 120).
    Here, where the label holds more than half the mass, the loss is
    ``−log1p(−q)``, ``q`` the other classes' mass (accurate down to
    ``1e-300``), and elsewhere ``log1p(r) − (x_label − m)``; its gradient in
    the logits under autograd and ``jax.grad`` is ``softmax − one_hot`` with
    the label's entry ``−q``, not a rounded ``softmax − 1``.

    Examples
    --------
    >>> import numpy as np
    >>> import arraykit as ak
    >>> logits = np.array([[2.0, 0.5, -1.0], [0.0, 120.0, 3.0]])
    >>> ak.cross_entropy(logits, np.array([0, 0]), reduction="none")
    array([  0.2413113, 120.       ])
    """
    if weights is None and type(axis) is int and reduction in _REDUCTIONS:
        result = route(logits, xp, "cross_entropy_indices", target, axis, reduction)
        if result is not None:
            return result  # the common case, without the entry checks
    given = xp  # the floating arguments' own checks infer it again, on their quick path
    xp, (logits, target) = mixed_args(("logits", "target"), (logits, target), xp)
    if logits.ndim == 0:
        raise ValueError(f"logits must have a class axis; got {describe(logits)}")
    (axis,) = normalize_axis(axis, logits.ndim)
    if logits.shape[axis] == 0:
        raise ValueError(f"logits must have at least one class; got {describe(logits)}")
    per_example = tuple(n for i, n in enumerate(logits.shape) if i != axis)
    indices = xp.isdtype(target.dtype, "integral")
    if xp.isdtype(target.dtype, "bool"):
        raise TypeError(
            f"target must hold class indices (an integer dtype) or probabilities (a floating "
            f"dtype); got {describe(target)}"
        )
    if indices:
        if same_shape(tuple(target.shape), tuple(logits.shape)):
            raise TypeError(
                f"target has logits' shape, that of probabilities, but an integer dtype; got "
                f"{describe(target)}: cast it to a floating dtype (class indices have the "
                f"shape {per_example})"
            )
        if not same_shape(tuple(target.shape), per_example):
            raise _target_shape(logits, target, axis, per_example)
        xp, (logits, weights), dtype = _floating(
            ("logits", "weights"), (logits, weights), given, computes_half
        )
        classes = logits.shape[axis]
        held = host_view(target)
        if held is not None and held.size and (held.min() < 0 or held.max() >= classes):
            low, high = int(held.min()), int(held.max())
            raise ValueError(
                f"target holds class indices from {low} to {high}, outside [0, {classes}) "
                f"(logits: {describe(logits)}, classes along axis {axis})"
            )
        formula = _log_space.cross_entropy_indices
        name = "cross_entropy"
    else:
        if not same_shape(tuple(target.shape), tuple(logits.shape)):
            if same_shape(tuple(target.shape), per_example):
                raise TypeError(
                    f"target has the shape of class indices but a floating dtype; got "
                    f"{describe(target)}: cast it to an integer dtype (probabilities have "
                    f"logits' shape, {tuple(logits.shape)})"
                )
            raise _target_shape(logits, target, axis, per_example)
        names = ("logits", "target", "weights")
        xp, (logits, target, weights), dtype = _floating(names, (logits, target, weights), given)
        _within_unit_interval("target", target, xp)
        formula = _log_space.cross_entropy_probabilities
        name = "cross_entropy_probabilities"
    weights = _example_weights(weights, per_example, xp)
    result = dispatch(xp, name, formula, logits, target, axis, _reduction(reduction), weights)
    return finish(xp, result, dtype)


def _floating(
    names: tuple[str, ...],
    values: tuple[object, ...],
    xp: Namespace | None,
    half: Callable[[Namespace], bool] | None = None,
) -> tuple[Namespace, list[Array | None], object]:
    """:func:`floating_args` over the values given (``weights`` may be None)."""
    given = [(n, v) for n, v in zip(names, values, strict=True) if v is not None]
    xp, arrays, dtype = floating_args([n for n, _ in given], [v for _, v in given], xp, half)
    found = iter(arrays)
    return xp, [None if v is None else next(found) for v in values], dtype


def _reduction(reduction: str) -> str:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}; got {reduction!r}")
    return reduction


def _same_shape(a_name: str, a: Array, b_name: str, b: Array) -> None:
    if not same_shape(tuple(a.shape), tuple(b.shape)):
        raise ValueError(
            f"{a_name} and {b_name} must have the same shape; got {a_name}: {describe(a)}, "
            f"{b_name}: {describe(b)}"
        )


def _within_unit_interval(name: str, values: Array, xp: Namespace) -> None:
    """Refuse values outside [0, 1] where they can be read cheaply (NaN passes: it
    propagates to the loss)."""
    held = host_view(values)
    if held is None or held.size == 0:
        return
    inside = within_unit_interval(held)  # one pass, where the kernels read it
    if inside or (inside is None and held.min() >= 0 and held.max() <= 1):
        return  # (the extremes: two passes without temporaries; a NaN fails them)
    if ((held < 0) | (held > 1)).any():
        raise ValueError(
            f"{name} must hold probabilities, in [0, 1]; got {describe(values)} with values "
            f"from {float(np.nanmin(held))} to {float(np.nanmax(held))}"
        )


def _example_weights(
    weights: Array | None, shape: tuple[object, ...], xp: Namespace
) -> Array | None:
    """The weights, broadcast to the examples' ``shape``, or a clear error."""
    if weights is None:
        return None
    try:
        return xp.broadcast_to(weights, shape)
    except (ValueError, RuntimeError, TypeError):
        raise ValueError(
            f"weights must broadcast against the examples' shape {shape}; got {describe(weights)}"
        ) from None


def _target_shape(
    logits: Array, target: Array, axis: int, per_example: tuple[object, ...]
) -> ValueError:
    return ValueError(
        f"target must be class indices of shape {per_example} (logits' shape without axis "
        f"{axis}) or probabilities of logits' shape {tuple(logits.shape)}; got {describe(target)} "
        f"(logits: {describe(logits)})"
    )
