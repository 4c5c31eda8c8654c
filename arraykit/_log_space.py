"""The log-space formulas, once, in array-API operations: softplus and the log-sigmoid,
logsumexp and the log-softmax, and the cross-entropies built on them.

Like :mod:`arraykit._formulas`, whose shared parts they use, these take arrays
already validated, of one namespace, and ``xp`` keyword-only. Each is written so
that automatic differentiation of the formula itself gives an accurate
derivative: the cancelling differences of the textbook derivatives
(``σ(z) − 1``, ``softmax − 1`` at the label) never appear in the computation
graph, so torch's autograd and JAX's transformations need no rule of their own.
"""

from __future__ import annotations

import math
from typing import Any

from ._array_api import (
    Array,
    Namespace,
    constant,
    device_of,
    narrow,
    unknown_size,
    wider_sum_dtype,
)
from ._formulas import addition_error, bounded_sum, element_count, log_one_minus, minus_abs

# --- elementwise --------------------------------------------------------------------------


def softplus(x: Array, /, *, xp: Namespace) -> Array:
    """``log(1 + exp(x))`` as ``max(x, 0) + log1p(exp(−|x|))``: two terms of one sign,
    each accurate, in both tails; its derivative, taken by autodiff, is ``σ(x)``
    (``1 − σ(−x)`` for ``x ≥ 0``, which does not cancel there)."""
    nonnegative, t = minus_abs(x, xp)
    return xp.where(nonnegative, x, 0.0) + xp.log1p(xp.exp(t))


def log_sigmoid(x: Array, /, *, xp: Namespace) -> Array:
    """``log σ(x) = −softplus(−x)``."""
    return -softplus(-x, xp=xp)


# --- over axes ----------------------------------------------------------------------------


def _cutoff(dtype: Any, xp: Namespace) -> float:
    """A difference below ``−cutoff`` has an exponential that is exactly 0 in ``dtype``."""
    finfo = xp.finfo(dtype)
    return 1.0 - math.log(float(finfo.smallest_normal) * float(finfo.eps))


class _Shifted:
    """The parts every log-space function over ``axes`` shares, for ``x`` in the
    dtype the work is done in.

    ``m`` the maximum (kept axes); ``finite`` whether it is finite; ``d = x − m``,
    exact where it is representable and −inf below the range (computed by halves,
    which cannot overflow); ``e = exp(d)``; ``log1p_r = log Σ exp(d)`` taken as
    ``log1p(r)`` with ``r = Σ exp(d) − 1`` summed without the 1s of the maxima, so
    that it keeps its relative accuracy when the other entries are far below.

    The shift is a constant to autodiff: ``∂/∂x log Σ exp(x − m)`` is then the
    softmax itself, ``e / (1 + r)``, with no cancelling derivative of ``m``.
    """

    def __init__(self, x: Array, axes: tuple[int, ...], plain_sums: bool, xp: Namespace):
        largest = float(xp.finfo(x.dtype).max)
        self.m = m = xp.max(x, axis=axes, keepdims=True)
        self.finite = finite = xp.isfinite(m)
        self.shift = shift = constant(xp.where(finite, m, 0.0), xp)
        a, b = 0.5 * x, -0.5 * shift
        half = a + b
        beyond = half < -0.5 * largest  # 2·half overflows: the difference is below the range
        self.d = d = xp.where(beyond, -math.inf, 2.0 * xp.where(beyond, 0.0, half))
        self.at_max = at_max = xp.astype(x == m, x.dtype)
        # d <= 0 where the maximum is finite; the other rows' d is set aside.
        # (No clip at 0 from above: JAX halves a clip's derivative where its
        # bound is reached, as d is at the maxima.)
        exponent = xp.where(finite, xp.clip(d, min=-_cutoff(x.dtype, xp)), 0.0)
        e = xp.exp(exponent)
        if not plain_sums:
            # The rounding error of x − m, exactly (Knuth's TwoSum on the halves),
            # carried into the exponential: exp(d + err) ≈ exp(d)·(1 + err). Without
            # it exp(d)'s relative error grows like |d| ulp, which r, a sum of such
            # terms, passes on whole to −log1p(r). Zero, and no derivative, where
            # the difference is exact; kept finite where d is not.
            exact = finite & (half >= -0.5 * largest)  # not beyond (NaN: neither)
            a_, half_ = xp.where(exact, a, 0.0), xp.where(exact, half, 0.0)  # no inf − inf
            err = constant(xp.where(exact, addition_error(a_, b, half_), 0.0), xp)
            e = e + e * (2.0 * err)
        self.e = e
        # e − 1 at the maxima is exactly 0 (d is exactly 0 there), with the
        # derivatives of e: r keeps every entry's derivative.
        ones = xp.sum(at_max, axis=axes, keepdims=True)
        if plain_sums:
            rest = xp.sum(e - at_max, axis=axes, keepdims=True)
        else:
            rest = bounded_sum(e - at_max, axes, 1.0, xp=xp)
        # Rows whose maximum is not finite take their limits; r is kept in range there.
        r = xp.where(finite, rest + (ones - 1.0), 0.0)
        self.r, self.ones = r, ones
        self.log1p_r = xp.log1p(r)

    def limit(self, xp: Namespace) -> Array:
        """The log-softmax of rows whose maximum is not finite: NaN where it is NaN; else
        the maxima (+inf, or every entry of a row of −inf) share the mass equally."""
        m = self.m
        share = -xp.log(xp.clip(self.ones, min=1.0))
        return xp.where(xp.isnan(m), m, xp.where(self.at_max > 0, share, -math.inf))


def _without(x: Array, axes: tuple[int, ...], xp: Namespace) -> Array:
    """``x`` without its (length-1) ``axes``: a reshape where the shape is known (it
    traces under torch.compile with dynamic shapes), else a squeeze (Dask's unknown
    lengths)."""
    # Compared one by one: torch.compile(dynamic=True) of a public function makes
    # its int arguments symbolic, and `in` on a tuple of those does not match.
    shape = tuple(n for i, n in enumerate(x.shape) if all(i != a for a in axes))
    if any(unknown_size(n) for n in shape):
        return xp.squeeze(x, axis=axes)
    return xp.reshape(x, shape)


def _widened(x: Array, xp: Namespace) -> tuple[Array, bool]:
    """float32 in float64 where the namespace has it (the formulas' errors then far
    below float32's last bit, and plain sums enough); ``(x, widened)``."""
    wide = wider_sum_dtype(xp, x)
    if wide is None:
        return x, False
    return xp.astype(x, wide), True


def logsumexp(x: Array, axes: tuple[int, ...], keepdims: bool, /, *, xp: Namespace) -> Array:
    """``log Σ exp(x)`` over the (non-empty) ``axes``: ``m + log1p(r)``; ±inf and NaN
    rows their limits (NaN, else the maximum)."""
    dtype = x.dtype
    x, widened = _widened(x, xp)
    parts = _Shifted(x, axes, widened, xp)
    result = xp.where(parts.finite, parts.shift + parts.log1p_r, parts.m)
    if not keepdims:
        result = _without(result, axes, xp)
    return narrow(xp, result, dtype) if widened else result


def log_softmax(x: Array, axes: tuple[int, ...], /, *, xp: Namespace) -> Array:
    """``x − logsumexp(x)`` as ``d − log1p(r)``: the largest entry's is ``−log1p(r)``,
    accurate however far below the others are; −inf entries stay −inf."""
    dtype = x.dtype
    x, widened = _widened(x, xp)
    parts = _Shifted(x, axes, widened, xp)
    result = xp.where(parts.finite, parts.d - parts.log1p_r, parts.limit(xp))
    return narrow(xp, result, dtype) if widened else result


def log_softmax_backward(g: Array, p: Array, axes: tuple[int, ...], /, *, xp: Namespace) -> Array:
    """The gradient through the log-softmax, ``g − p·Σ g`` over ``axes``, from its
    softmax ``p`` (computed from the input: ``exp`` of the rounded log-softmax would
    carry its absolute error into a relative one)."""
    return g - p * xp.sum(g, axis=axes, keepdims=True)


def logsumexp_backward(
    g: Array, p: Array, axes: tuple[int, ...], keepdims: bool, /, *, xp: Namespace
) -> Array:
    """The gradient through logsumexp, ``g·p``: ``g`` one value a slice over ``axes``
    (kept, or not), ``p`` the softmax of the input."""
    if not keepdims:
        kept = tuple(1 if any(i == a for a in axes) else n for i, n in enumerate(p.shape))
        g = xp.reshape(g, kept)
    return g * p


# --- losses -------------------------------------------------------------------------------


def reduce(terms: Array, reduction: str, dtype: Any, /, *, xp: Namespace) -> Array:
    """Per-example losses ``terms`` summed, averaged over their count or kept ("none"),
    rounded once to ``dtype`` (the terms may be in a wider one); within about one
    rounding of the exact sum in any order (:func:`bounded_sum`)."""
    if reduction != "none":
        if 0 in terms.shape:
            value = 0.0 if reduction == "sum" else math.nan
            return xp.full((), value, dtype=dtype, device=device_of(terms, xp))
        if terms.dtype != dtype:  # float32 terms in float64: a plain sum is exact enough
            total = xp.sum(terms)
            terms = total / element_count(terms) if reduction == "mean" else total
        else:
            terms = _careful_total(terms, reduction == "mean", xp)
    return narrow(xp, terms, dtype) if terms.dtype != dtype else terms


def _careful_total(terms: Array, mean: bool, xp: Namespace) -> Array:
    """The sum (or mean) of ``terms`` by :func:`bounded_sum`, its terms scaled by a power
    of two first where they come near the top of the range (its splitting constant
    would overflow there): a sum past the range is then +inf, and a mean of large
    terms finite, without a floating-point warning."""
    largest = float(xp.finfo(terms.dtype).max)
    factor = 2.0**64
    bound = xp.max(xp.abs(terms))
    usable = xp.where(xp.isfinite(bound), bound, 0.0)
    big = usable > largest / factor
    one = xp.ones_like(usable)
    down = xp.where(big, one / factor, one)  # exact: a power of two
    total = xp.reshape(bounded_sum(terms * down, None, usable * down, xp=xp, infinite=True), ())
    if mean:
        total = total / element_count(terms)
    up = 1.0 / down
    past = total > largest / up
    return xp.where(past, math.inf, xp.where(past, 0.0, total) * up)


def _weighted(terms: Array, weights: Array | None) -> Array:
    return terms if weights is None else terms * weights


def binary_cross_entropy_with_logits(
    z: Array, y: Array, reduction: str, weights: Array | None, /, *, xp: Namespace
) -> Array:
    """``−y·log σ(z) − (1 − y)·log σ(−z)`` as
    ``(1 − y)·max(z, 0) + y·max(−z, 0) + log1p(exp(−|z|))``: terms of one sign for
    ``y`` in [0, 1], one exp and one log1p. Its derivative in ``z``, by autodiff, is
    ``(1 − y) − σ(−z)`` for ``z ≥ 0`` and ``σ(z) − y`` below: for hard labels
    ``σ(z)`` or ``−σ(−z)``, never ``σ(z) − 1``."""
    dtype = z.dtype
    z, widened = _widened(z, xp) if reduction != "none" else (z, False)
    if widened:
        y = xp.astype(y, z.dtype)
        weights = None if weights is None else xp.astype(weights, z.dtype)
    nonnegative, t = minus_abs(z, xp)
    terms = xp.where(nonnegative, (1.0 - y) * z, -(y * z)) + xp.log1p(xp.exp(t))
    return reduce(_weighted(terms, weights), reduction, dtype, xp=xp)


def logistic_backward(g: Array, z: Array, y: Array, reduction: str, /, *, xp: Namespace) -> Array:
    """The gradient of :func:`binary_cross_entropy_with_logits` (unweighted) in the logits,
    ``g·(σ(z) − y)``, as autodiff of that formula gives it: ``(1 − y) − σ(−z)`` for
    ``z ≥ 0`` and ``σ(z) − y`` below; ``g`` one value an element, or one for all (over
    the count, for a mean)."""
    nonnegative, t = minus_abs(z, xp)
    e = xp.exp(t)
    s = e / (1.0 + e)  # σ(−|z|)
    slope = xp.where(nonnegative, (1.0 - y) - s, s - y)
    return slope * (g / element_count(z) if reduction == "mean" else g)


def binary_cross_entropy(
    p: Array, y: Array, reduction: str, weights: Array | None, /, *, xp: Namespace
) -> Array:
    """``−y·log p − (1 − y)·log(1 − p)``, with ``log(1 − p)`` by ``log_one_minus`` (exact
    near 1), ``0·log 0`` as 0 and ``log 0`` as −inf (a loss of +inf, where torch
    clamps it at 100); NaN for ``p`` outside [0, 1] or NaN."""
    dtype = p.dtype
    p, widened = _widened(p, xp) if reduction != "none" else (p, False)
    if widened:
        y = xp.astype(y, p.dtype)
        weights = None if weights is None else xp.astype(weights, p.dtype)
    positive, below_one = p > 0, p < 1
    # The logarithms on arguments kept in their domain: their selects then
    # have finite derivatives on both sides.
    log_p = xp.log(xp.where(positive, p, 1.0))
    log_q = log_one_minus(xp.where(below_one, p, 0.0), xp)
    # (0·y is 0 beside a scalar: the standard's where takes at most one scalar.)
    first = xp.where(positive, y * log_p, xp.where(y > 0, -math.inf, 0.0 * y))
    second = xp.where(below_one, (1.0 - y) * log_q, xp.where(y < 1, -math.inf, 0.0 * y))
    # (0 − s: a loss of +0, not −0, where both terms are 0.)
    terms = xp.where((p >= 0) & (p <= 1), 0.0 - (first + second), math.nan)
    return reduce(_weighted(terms, weights), reduction, dtype, xp=xp)


def cross_entropy_indices(
    logits: Array,
    target: Array,
    axis: int,
    reduction: str,
    weights: Array | None,
    /,
    *,
    xp: Namespace,
) -> Array:
    """``−log softmax(logits)[target]`` along ``axis`` (target: class indices, of the
    shape of ``logits`` without ``axis``); an index out of range gives NaN.

    Where the label holds more than half the mass it is ``−log1p(−q)``, ``q`` the
    mass of the others (a quotient of two sums of one sign), else
    ``log1p(r) − d_label``, two terms of one sign. Autodiff of the first gives the
    label's entry as ``−q``, minus the others' sum, not ``softmax − 1``.
    """
    dtype = logits.dtype
    x, widened = _widened(logits, xp)
    classes = x.shape[axis]
    axes = (axis,)
    parts = _Shifted(x, axes, widened, xp)
    label = xp.expand_dims(target, axis=axis)
    shape = [1] * x.ndim
    shape[axis] = classes
    device = device_of(target, xp)
    index = xp.reshape(xp.arange(classes, dtype=target.dtype, device=device), tuple(shape))
    hot = index == label
    d_label = xp.sum(xp.where(hot, parts.d, 0.0), axis=axes, keepdims=True)
    if widened:
        others = xp.sum(xp.where(hot, 0.0, parts.e), axis=axes, keepdims=True)
    else:
        others = bounded_sum(xp.where(hot, 0.0, parts.e), axes, 1.0, xp=xp)
    q = others / (1.0 + parts.r)
    mostly = q < 0.5
    value = xp.where(mostly, -log_one_minus(xp.where(mostly, q, 0.0), xp), parts.log1p_r - d_label)
    limit = -xp.sum(xp.where(hot, parts.limit(xp), 0.0), axis=axes, keepdims=True)
    valid = (label >= 0) & (label < classes)
    value = xp.where(valid, xp.where(parts.finite, value, limit), math.nan)
    if widened and weights is not None:
        weights = xp.astype(weights, x.dtype)
    terms = _weighted(_without(value, axes, xp), weights)
    return reduce(terms, reduction, dtype, xp=xp)


def cross_entropy_backward(
    g: Array, p: Array, target: Array, axis: int, reduction: str, /, *, xp: Namespace
) -> Array:
    """The gradient of :func:`cross_entropy_indices` (unweighted) in the logits, from their
    softmax ``p``: ``g·(p − one_hot)``, with the label's entry ``−g·Σ`` of the other
    classes' ``p`` (never ``p − 1``, which cancels); NaN for an index out of range. ``g``
    is one value an example, or one for all (a sum or mean)."""
    classes = p.shape[axis]
    label = xp.expand_dims(target, axis=axis)
    shape = [1] * p.ndim
    shape[axis] = classes
    index = xp.reshape(
        xp.arange(classes, dtype=target.dtype, device=device_of(target, xp)), tuple(shape)
    )
    hot = index == label
    others = xp.sum(xp.where(hot, 0.0, p), axis=(axis,), keepdims=True)
    if reduction == "none":
        scale = xp.expand_dims(g, axis=axis)
    else:
        scale = g / element_count(target) if reduction == "mean" else g
    valid = (label >= 0) & (label < classes)
    return xp.where(valid, xp.where(hot, -others, p) * scale, math.nan)


def cross_entropy_probabilities(
    logits: Array,
    target: Array,
    axis: int,
    reduction: str,
    weights: Array | None,
    /,
    *,
    xp: Namespace,
) -> Array:
    """``−Σ target·log softmax(logits)`` along ``axis`` (target: probabilities, of the
    shape of ``logits``): a sum of terms of one sign; ``0·(−inf)`` is 0."""
    dtype = logits.dtype
    x, widened = _widened(logits, xp)
    if widened:
        target = xp.astype(target, x.dtype)
        weights = None if weights is None else xp.astype(weights, x.dtype)
    axes = (axis,)
    parts = _Shifted(x, axes, widened, xp)
    log_p = xp.where(parts.finite, parts.d - parts.log1p_r, parts.limit(xp))
    products = xp.where(xp.isfinite(log_p) | (target != 0), -(target * log_p), 0.0)
    if widened:
        value = xp.sum(products, axis=axes)
    else:
        total = bounded_sum(products, axes, _bound(products, axes, xp), xp=xp, infinite=True)
        value = _without(total, axes, xp)
    return reduce(_weighted(value, weights), reduction, dtype, xp=xp)


def _bound(terms: Array, axes: tuple[int, ...], xp: Namespace) -> Array:
    largest = xp.max(xp.abs(terms), axis=axes, keepdims=True)
    return xp.where(xp.isfinite(largest), largest, 0.0)
