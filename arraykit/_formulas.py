"""Each formula once, in array-API operations: the generic twins of the public functions.

The public modules validate their arguments, cast them to the dtype the
computation runs in and hand them here (or to a backend's fast path, which
must agree with these within the accuracy contract). Every function takes
arrays already validated, of one namespace, and ``xp`` keyword-only. This
module imports no public module of arraykit.

What the formulas avoid, because it breaks them somewhere: Python branches on
array values (tracers under ``jax.jit``), ``minimum``/``maximum`` with a
Python scalar (array-api-compat turns the scalar into a device tensor on
torch: a host-to-device copy, and an op dynamo cannot trace), and ``sign``
(its NaN fix is a boolean-mask assignment, which synchronises on CuPy).
Sizes are taken from :func:`element_count`, which keeps a symbolic size
symbolic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import array_api_compat

from ._array_api import Array, Namespace, narrow, unknown_size, wider_sum_dtype

# --- sizes ------------------------------------------------------------------


def element_count(x: Array) -> Any:
    """The number of elements: an int, a symbolic size (``jax.export``), or None if unknown.

    Unknown means a dimension that a lazy backend has not computed yet (None
    in the standard, NaN in Dask): a mean over such an array has no divisor.
    """
    count: Any = 1
    for n in x.shape:
        if unknown_size(n):
            return None
        count = count * n
    return count


def is_empty(x: Array) -> bool:
    """Whether some dimension is known to be 0 (a symbolic or unknown one is not)."""
    return 0 in x.shape  # a symbolic (jax.export) or NaN (Dask) size is never 0 here


def empty_like_from(x: Array) -> Array:
    """An empty ``x``'s result: of its shape, computed from it (``x * 0``), not made
    anew, so that autograd's graph still reaches ``x`` (a new array would be
    detached: ``.backward()`` through it fails). Empty: nothing is computed."""
    return x * 0.0


# --- sums -------------------------------------------------------------------


def bounded_sum(
    terms: Array,
    axes: tuple[int, ...] | None,
    bound: Array | float,
    /,
    *,
    xp: Namespace,
    infinite: bool = False,
) -> Array:
    """``Σ terms`` over ``axes`` (None: all), kept as axes of length 1, for terms in
    ``[0, bound]`` (``bound`` broadcasting against the sum), within about one rounding
    of the exact sum in any order of summation, on every backend.

    float32 is summed in float64 where the namespace and device have it. Else
    each term is split, by adding and subtracting ``C = 1.5·2^(p−1)·q`` (p the
    dtype's digits), into ``hi``, a multiple of the power of two ``q`` that
    puts ``bound`` just under ``2^h·q`` (``h`` about ``p/2``), and ``lo = t − hi``,
    both exact. Sums of up to ``2^(p−h)`` such ``hi`` (2^26 in float64) are
    exact whatever their order, and the ``lo`` are below the total's last bit
    by a factor of ``2^h``: their sum's rounding errors cannot reach it. A
    plain sum's error instead grows with the length of the axis where the
    backend adds in sequence (NumPy over any axis but the last: 8 ulp on
    columns of 700). NaN entries give NaN; ``infinite`` says that terms may
    be +inf, which then give +inf (two more operations, which finite terms
    are spared).
    """
    wide = wider_sum_dtype(xp, terms)
    if wide is not None:
        return xp.astype(xp.sum(terms, axis=axes, keepdims=True, dtype=wide), terms.dtype)
    if getattr(xp, "__name__", "") == "jax.numpy":  # not the cached check: see constant()
        # XLA's simplifier folds (t + C) − C back to t, so the split would
        # cost passes and change nothing; XLA's own reductions are tree-ordered
        # (a float64 loss of 1e7 terms within 1 ulp). Where its row sums fall
        # short, softmax's, arraykit._native.jax carries its own compensated sum.
        return xp.sum(terms, axis=axes, keepdims=True)
    finfo = xp.finfo(terms.dtype)
    digits = round(-math.log2(float(finfo.eps))) + 1
    h = digits // 2 + 1
    if type(bound) is float:  # a constant (a NumPy scalar is an array here)
        q = 2.0 ** (math.ceil(math.log2(bound)) + 1 - h)
    else:
        usable = xp.where(xp.isfinite(bound) & (bound > 0), bound, 1.0)
        q = xp.pow(xp.full_like(usable, 2.0), xp.ceil(xp.log2(usable)) + (1 - h))
    shift = 1.5 * 2.0 ** (digits - 1) * q
    if not infinite:
        hi = (terms + shift) - shift
        return xp.sum(hi, axis=axes, keepdims=True) + xp.sum(terms - hi, axis=axes, keepdims=True)
    finite = xp.isfinite(terms)
    t = xp.where(finite, terms, 0.0)  # inf goes into hi alone, without inf − inf
    rounded = (t + shift) - shift
    hi = xp.where(finite, rounded, terms)
    return xp.sum(hi, axis=axes, keepdims=True) + xp.sum(t - rounded, axis=axes, keepdims=True)


# --- activations ------------------------------------------------------------


def addition_error(a: Array, b: Array, s: Array) -> Array:
    """The exact rounding error of ``s = a + b`` (Knuth's TwoSum), for finite operands
    whose sum did not overflow: ``a + b == s + error`` exactly."""
    back = s - a
    return (a - (s - back)) + (b - back)


def log_one_minus(p: Array, xp: Namespace) -> Array:
    """``log(1 − p)`` for ``p`` in [0, 1), within an ulp of the backend's logarithms:
    ``log1p(−p)``. On JAX, above ``p = 1/4``, ``log u + e/u`` instead, with ``u =
    1 − p`` rounded and ``e`` its rounding error (TwoSum: exact): XLA's float64
    ``log1p`` on CPU is off by up to 129 ulp between −0.53 and −0.28
    (jax-ml/jax#39707). Its derivative there is ``−1/u`` plus ``e/u²``."""
    if not array_api_compat.is_jax_namespace(xp):
        return xp.log1p(-p)
    far = p > 0.25
    shifted = xp.where(far, p, 0.5)  # (each branch on arguments in its domain)
    u = 1.0 - shifted
    above = xp.log(u) + addition_error(1.0, -shifted, u) / u
    return xp.where(far, above, xp.log1p(-xp.where(far, 0.0, p)))


def minus_abs(x: Array, xp: Namespace) -> tuple[Array, Array]:
    """``(x >= 0, −|x|)``, with ``−|x|`` a select rather than ``abs``: autograd then
    sees slope −1 at ``x = 0`` (abs has slope 0 there on torch), so that
    ``dσ/dx`` at 0 comes out 1/4, and a formula that selects with the same
    mask keeps its one-sided slopes consistent there."""
    nonnegative = x >= 0
    return nonnegative, xp.where(nonnegative, -x, x)


def sigmoid(x: Array, /, *, xp: Namespace) -> Array:
    """``1 / (1 + exp(-x))``, without overflow and accurate in both tails."""
    nonnegative, t = minus_abs(x, xp)
    e = xp.exp(t)
    # One division for both branches: 1/(1+e) for x >= 0, e/(1+e) for x < 0.
    return xp.where(nonnegative, 1.0, e) / (1.0 + e)


def sigmoid_derivative(x: Array, /, *, xp: Namespace) -> Array:
    """``σ(x)·(1 − σ(x))`` as ``e / (1 + e)²`` with ``e = exp(-|x|)``."""
    _, t = minus_abs(x, xp)
    e = xp.exp(t)
    d = 1.0 + e
    # 1 + e is d + low exactly (Fast2Sum: 1 >= e), so (1 + e)² ≈ d·(d + 2·low)
    # is rounded in that sum and product, not first in d and then doubled by
    # squaring: a rounding less, which keeps every backend's exp within the
    # bound. Near x = 0 the roundings can lift the quotient an ulp above the
    # true maximum, 1/4; the clamp keeps the bound exact.
    low = (1.0 - d) + e
    return xp.clip(e / (d * (d + 2.0 * low)), max=0.25)


def sigmoid_second_derivative(x: Array, /, *, xp: Namespace) -> Array:
    """``σ''(x) = −sign(x)·e·(1 − e)/(1 + e)³`` with ``e = exp(−|x|)``.

    ``1 − e`` as ``−expm1(−|x|)``, which keeps its relative accuracy near 0,
    where ``σ(x)·(1 − σ(x))·(1 − 2σ(x))`` cancels to 0.
    """
    _, t = minus_abs(x, xp)
    e = xp.exp(t)
    d = 1.0 + e
    sign = xp.astype(x > 0, x.dtype) - xp.astype(x < 0, x.dtype)
    return sign * e * xp.expm1(t) / (d * d * d)


def softmax(x: Array, axes: tuple[int, ...], /, *, xp: Namespace) -> Array:
    """Softmax over the (normalised, non-empty) ``axes``, with the limits of ±inf and NaN."""
    wide = wider_sum_dtype(xp, x)
    if wide is not None:
        return _softmax_widened(x, axes, wide, xp)
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
    err = addition_error(a, b, s)
    # The exponentials are scaled by 2^(mantissa bits + 4), which the final
    # division cancels, so that the correction e·2err stays a normal number
    # even for results near the smallest normal (backends that flush
    # subnormals to zero would otherwise drop it there).
    e = xp.exp(2.0 * xp.clip(s, -0.5 * cutoff, 0.0)) * softmax_boost(finfo)
    e = e + e * (2.0 * err)
    # Slices whose maximum is +inf, -inf or NaN take their limit (see the
    # docstring): the maxima share the mass; NaN propagates.
    at_max = xp.astype(x == m, x.dtype)
    e = xp.where(finite, e, at_max + xp.where(xp.isnan(m), m, 0.0))
    # e is at most the boost, times 1 + 2err: below twice the boost.
    return divide_by_sum(e, axes, 2.0 * softmax_boost(finfo), xp=xp)


_BEYOND_FLOAT32 = 2.0**200
"""Past float32's range, inside float64's: where float32's ±inf are put."""


def _softmax_widened(x: Array, axes: tuple[int, ...], wide: Any, xp: Namespace) -> Array:
    """float32 in float64: one exp, one sum and one division per entry, rounded once.

    A difference whose exp is not 0 is below 104 in size, rounded to 2^-53
    relative, and float64's exp and sum add errors of the same order: the
    float32 result is within an ulp. The special rows come from clamps, with
    no select: −inf becomes −2**200, so a row of −inf is uniform; a row
    holding +inf shifts by 2**200, so its finite entries vanish and its +inf
    entries (inf − 2**200, taken down to 2**−1000, which no finite entry
    reaches, so that no tie splits a derivative) become exp(≈0) = 1; a NaN
    propagates through the maximum.
    """
    y = xp.clip(xp.astype(x, wide), min=-_BEYOND_FLOAT32)
    shift = xp.clip(xp.max(y, axis=axes, keepdims=True), max=_BEYOND_FLOAT32)
    e = xp.exp(xp.clip(y - shift, max=2.0**-1000))
    return xp.astype(e / xp.sum(e, axis=axes, keepdims=True), x.dtype)


def softmax_boost(finfo: Any) -> float:
    """The power of two the exponentials are scaled by (see :func:`softmax`)."""
    return 2.0 ** (round(-math.log2(float(finfo.eps))) + 4)


def softmax_backward(g: Array, y: Array, axes: tuple[int, ...], /, *, xp: Namespace) -> Array:
    """The gradient through softmax, from its output: ``y·(g − Σ g·y)`` along ``axes``."""
    wide = wider_sum_dtype(xp, y)
    if wide is None:
        return y * (g - xp.sum(g * y, axis=axes, keepdims=True))
    g64, y64 = xp.astype(g, wide), xp.astype(y, wide)
    return xp.astype(y64 * (g64 - xp.sum(g64 * y64, axis=axes, keepdims=True)), y.dtype)


def divide_by_sum(e: Array, axes: tuple[int, ...], bound: float, /, *, xp: Namespace) -> Array:
    """``e / sum(e)`` along ``axes`` for ``e`` in ``[0, bound]``: summed (and divided) in
    float64 for float32 where possible, else by :func:`bounded_sum`."""
    wide = wider_sum_dtype(xp, e)
    if wide is None:
        return e / bounded_sum(e, axes, bound, xp=xp)
    return xp.astype(e / xp.sum(e, axis=axes, keepdims=True, dtype=wide), e.dtype)


# --- normalisation ----------------------------------------------------------


def normalize_rows(x: Array, /, *, xp: Namespace) -> Array:
    """Each row of the (non-empty) matrix ``x`` divided by its Euclidean norm."""
    wide = wider_sum_dtype(xp, x)
    if wide is not None:
        return _normalize_widened(x, wide, xp)
    y, norm, _ = _scaled_rows(x, xp)
    return y / xp.where(norm > 0, norm, 1.0)


def _normalize_widened(x: Array, wide: Any, xp: Namespace) -> Array:
    """float32 rows in float64, clamped at ±2**278 and scaled by 2**−278 (exact).

    The squares can then neither overflow nor underflow, for any float32
    row, and a row holding ±inf gives its limit without a select: the
    infinite entries become ±1 and share the norm, the finite ones fall
    below 2**−150 and round to 0. A zero row stays zero (its norm is taken
    as the smallest normal); NaN propagates.
    """
    beyond = 2.0**278
    z = xp.clip(xp.astype(x, wide), min=-beyond, max=beyond) * 2.0**-278
    total = xp.sum(z * z, axis=-1, keepdims=True)
    return xp.astype(z / xp.sqrt(xp.clip(total, min=2.0**-1022)), x.dtype)


def normalize_rows_backward(g: Array, x: Array, /, *, xp: Namespace) -> Array:
    """The gradient through :func:`normalize_rows`: ``(g − u·Σ g·u) / ‖x‖`` with ``u`` the result.

    A zero row has no derivative (the function is not continuous there);
    its gradient is 0, as is that of a row holding ±inf (its limit does not
    move). A NaN anywhere in the row makes its gradient NaN.
    """
    y, norm, scale = _scaled_rows(x, xp)
    usable = xp.where(norm > 0, norm, 1.0)
    unit = y / usable
    dot = xp.sum(g * unit, axis=-1, keepdims=True)
    # ‖x‖ = norm / scale: dividing by it as two steps keeps both in range.
    gradient = (g - unit * dot) * scale / usable
    largest = xp.max(xp.abs(x), axis=-1, keepdims=True)
    return xp.where(
        xp.isnan(largest), largest, xp.where(xp.isfinite(largest) & (norm > 0), gradient, 0.0)
    )


def _scaled_rows(x: Array, xp: Namespace) -> tuple[Array, Array, Array]:
    """``(y, ‖y‖, scale)``: the rows of ``x`` scaled exactly, by a power of two,
    to where their squares neither overflow nor underflow (rows holding ±inf
    or NaN: their limits, see below), and their norms."""
    finfo = xp.finfo(x.dtype)
    emax = round(math.log2(float(finfo.max)))
    emin = round(math.log2(float(finfo.smallest_normal)))
    magnitude = xp.abs(x)
    largest = xp.max(magnitude, axis=-1, keepdims=True)
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
    unit = 2.0 * xp.astype(x > 0, x.dtype) - 1.0  # ±1 in x's dtype (not sign: see above)
    limit = xp.where(magnitude == largest, unit, xp.where(xp.isnan(largest), largest, 0.0))
    y = xp.where(finite, x * scale, limit)
    # Each entry of y is at most 2 in magnitude: its square at most 4.
    return y, xp.sqrt(bounded_sum(y * y, (-1,), 4.0, xp=xp)), scale


# --- losses -----------------------------------------------------------------


def loss(yhat: Array, y: Array, reduction: str, power: int, /, *, xp: Namespace) -> Array:
    """L1 (power 1) and L2 (power 2) losses, reduced by "sum", "mean" or "none"."""
    wide = wider_sum_dtype(xp, yhat)
    if wide is not None and not is_empty(yhat):
        return _loss_widened(yhat, y, reduction, power, wide, xp)
    if reduction == "none":
        absolute, pre = _pre_scaled_error(yhat, y, xp)
        absolute = _product(absolute, 1.0 / pre, xp)
        return absolute if power == 1 else _product(absolute, absolute, xp)
    if is_empty(yhat):
        value = 0.0 if reduction == "sum" else math.nan
        return xp.full((), value, dtype=yhat.dtype, device=array_api_compat.device(yhat))
    scale, total = scaled_sum(yhat, y, power, xp=xp)
    if reduction == "mean":
        # A symbolic count (jax.export) divides as it is; the public
        # functions refuse an unknown one before it gets here.
        total = total / element_count(yhat)
    return unscale(total, scale, power, xp=xp)


def _loss_widened(
    yhat: Array, y: Array, reduction: str, power: int, wide: Any, xp: Namespace
) -> Array:
    """float32 in float64: the differences and their squares can neither overflow nor
    underflow there, so no scaling; the sum's errors are far below float32's last bit,
    and the result is rounded once."""
    error = xp.abs(xp.astype(yhat, wide) - xp.astype(y, wide))
    terms = error if power == 1 else error * error
    if reduction != "none":
        terms = xp.sum(terms)
        if reduction == "mean":
            terms = terms / element_count(yhat)
    return narrow(xp, terms, yhat.dtype)


def loss_backward(
    g: Array, yhat: Array, y: Array, reduction: str, power: int, /, *, xp: Namespace
) -> Array:
    """The gradient of the loss in ``yhat`` (in ``y`` it is the negative), for the upstream ``g``.

    ``g`` is 0-d for "sum" and "mean", else shaped like ``yhat``: L1 gives
    ``g·sign(yhat − y)`` (0 where they are equal), L2 ``2·g·(yhat − y)``,
    divided by the element count for a mean.
    """
    per = g if reduction != "mean" else g / element_count(yhat)
    if power == 1:
        difference = yhat - y
        positive = xp.astype(difference > 0, yhat.dtype) - xp.astype(difference < 0, yhat.dtype)
        return xp.where(xp.isnan(difference), difference, positive * per)
    # The difference at a quarter of its size where it could overflow: the
    # product with the gradient may still be finite.
    quarter_limit = float(xp.finfo(yhat.dtype).max) / 4
    big = xp.maximum(xp.abs(yhat), xp.abs(y)) > quarter_limit
    pre = 1.0 - 0.75 * xp.astype(big, yhat.dtype)
    return (yhat * pre - y * pre) * (2.0 * per) / pre


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


def scaled_sum(yhat: Array, y: Array, power: int, /, *, xp: Namespace) -> tuple[Array, Array]:
    """``(scale, total)`` with ``sum(|yhat - y|**power) == total / scale**power``.

    ``scale`` is a power of two (a 0-d array) chosen from the largest error,
    so that no term overflows or underflows. Partial results of blocks
    combine exactly (see :func:`merge_scaled_sums`), which lets a chunked
    backend reduce in one pass.
    """
    error, pre = _pre_scaled_error(yhat, y, xp)
    largest = xp.max(error)
    scale = _power_of_two_scale(largest, xp)
    terms = error * (scale / pre)  # exact: powers of two
    # pre is 1/4 only where the error was pre-scaled: no term exceeds 4·largest·scale.
    bound = largest * scale * 4.0  # scaled first: 4·largest may overflow
    if power == 2:
        terms, bound = terms * terms, bound * bound
    return scale, xp.reshape(bounded_sum(terms, None, bound, xp=xp, infinite=True), ())


def merge_scaled_sums(
    parts: Sequence[tuple[Array, Array]], power: int, /, *, xp: Namespace
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


def unscale(total: Array, scale: Array, power: int, /, *, xp: Namespace) -> Array:
    """``total / scale**power``, reaching inf, not a warning, past the largest float."""
    # Array over array: torch.func.jvp gives a float64 tangent for float / 0-d float32.
    undo = xp.ones_like(scale) / scale
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
    if isinstance(v, float):
        limit = largest / max(v, 1.0)
    else:  # array over array, as in unscale
        bounded = xp.clip(v, min=1.0)
        limit = xp.full_like(bounded, largest) / bounded
    below = limit * (1 - 2 * eps)  # below * v cannot round past the largest float
    plain = _zero_above(u, below, xp) * v
    # Near the top, decide at a quarter of the size, where it cannot overflow
    # (and, unlike a quarter of every product, never reaches the subnormals
    # that some backends flush to zero).
    quarter = (0.25 * _zero_above(u, limit, xp)) * v
    over = (u > limit) | (quarter > largest / 4)
    top = xp.where(over, math.inf, 4.0 * xp.clip(quarter, max=largest / 4))
    return xp.where(u > below, top, plain)


def _zero_above(u: Array, bound: Array | float, xp: Namespace) -> Array:
    """``u``, with 0 where it exceeds ``bound``: a branch the caller discards there.

    The bound only chooses a branch, so it enters as a condition, never as a
    value: its own derivative (``largest / v`` has a huge one) must not flow
    into the product's, where forward-mode AD would turn it into NaN.
    """
    return xp.where(u > bound, 0.0, u)
