"""Triton kernels for CUDA tensors: each primitive, and its backward, in one or two launches.

The formulas are those of :mod:`arraykit._formulas`, written per element and
per row instead of per array, so that a tensor is read once and the result
written once. Half-precision and float32 inputs are computed in float32 with
float64 sums (as the formulas do), or wholly in float64 where that is the
simpler exact route (norms, loss terms); float64 inputs in float64.

Every transcendental is built here from additions, multiplications, fused
multiply-adds and exponent bits: Triton's ``exp`` is an approximate
instruction on NVIDIA GPUs, and libdevice's accurate one does not run under
Triton's interpreter. So the arithmetic verified on CPU tensors with
``TRITON_INTERPRET=1`` (``tests/test_triton.py``) is the arithmetic the GPU
runs; kernels are launched with floating-point contraction off, so that no
multiply-add is fused unless written as ``tl.fma``.

The ``launch_*`` functions take and return torch tensors; they are the CUDA
kernels of the operators in :mod:`arraykit._native.torch`, and each launch
goes through :func:`launch`, which a cost model can intercept.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import torch
import triton
import triton.language as tl

# --- arithmetic ---------------------------------------------------------------------------

# ln 2 split so that k·LN2_HI is exact for every |k| the exponentials reach
# (the high parts have trailing zero bits), with the rest in LN2_LO.
LN2_HI_32 = tl.constexpr(0.693145751953125)
LN2_LO_32 = tl.constexpr(1.4286068203094172e-06)
LN2_HI_64 = tl.constexpr(0.6931471803691238)
LN2_LO_64 = tl.constexpr(1.9082149292705877e-10)


@triton.jit
def _pow2(k, F64: tl.constexpr):
    """2**k for integer-valued ``k`` (a float tensor) in the normal range, exactly."""
    if F64:
        return ((k.to(tl.int64) + 1023) << 52).to(tl.float64, bitcast=True)
    else:
        return ((k.to(tl.int32) + 127) << 23).to(tl.float32, bitcast=True)


INVERSE_FACTORIALS = tl.constexpr(tuple(1.0 / math.factorial(k) for k in range(17)))
"""1/k! for k up to 16: the Taylor coefficients of exp."""


@triton.jit
def _taylor(r, LOW: tl.constexpr, HIGH: tl.constexpr):
    """``Σ r**(k − LOW) / k!`` for k from LOW to HIGH, by Horner's rule in fused multiply-adds."""
    p = tl.full(r.shape, INVERSE_FACTORIALS[HIGH], r.dtype)
    for k in tl.static_range(HIGH - 1, LOW - 1, -1):
        p = tl.fma(p, r, INVERSE_FACTORIALS[k])
    return p


@triton.jit
def _exp_scaled(s, BOOST: tl.constexpr, F64: tl.constexpr):
    """``exp(s) · 2**BOOST`` for ``s <= 0``, within an ulp, with no intermediate
    subnormal number above the result's own.

    ``s`` above 0 is taken as 0, NaN and anything below the underflow of the
    result as that underflow (callers handle NaN and +inf themselves). Cody
    and Waite's reduction ``s = k·ln 2 + r`` with ``|r| <= ln 2 / 2``, a
    Taylor polynomial of ``exp(r)`` (to r**13/13! in float64, r**7/7! in
    float32: the next terms are below 5e-18 and 6e-9), and ``2**(k + BOOST)``
    applied in two exact powers of two, so that only the last product rounds
    (into the subnormals, where it must).
    """
    if F64:
        t = tl.minimum(tl.maximum(s, -800.0), 0.0)
        k = tl.floor(t * 1.4426950408889634 + 0.5)
        r = tl.fma(k, -LN2_HI_64, t)
        r = tl.fma(k, -LN2_LO_64, r)
        p = _taylor(r, 0, 13)
        total = k + BOOST
        first = tl.maximum(total, -1000.0)
    else:
        t = tl.minimum(tl.maximum(s, -130.0), 0.0)
        k = tl.floor(t * 1.4426950408889634 + 0.5)
        r = tl.fma(k, -LN2_HI_32, t)
        r = tl.fma(k, -LN2_LO_32, r)
        p = _taylor(r, 0, 7)
        total = k + BOOST
        first = tl.maximum(total, -120.0)
    return p * _pow2(first, F64) * _pow2(total - first, F64)


@triton.jit
def _expm1_nonpositive(s, F64: tl.constexpr):
    """``exp(s) - 1`` for ``s <= 0``, to a few ulp: Taylor's series near 0, else exp."""
    small = s > -0.35
    r = tl.where(small, s, 0.0)
    p = _taylor(r, 2, 15) if F64 else _taylor(r, 2, 9)
    series = tl.fma(p * r, r, r)  # r + r²·Σ r**(k−2)/k!
    return tl.where(small, series, _exp_scaled(s, 0, F64) - 1.0)


LOG_SERIES = tl.constexpr(tuple(2.0 / (2 * j + 1) for j in range(1, 12)))
"""2/(2j + 1) for j from 1 to 11: ``log f = 2 atanh(s) = 2s + s·Σ 2 s**(2j)/(2j + 1)``."""


@triton.jit
def _log1p_wide(r):
    """``log(1 + r)`` for float64 ``r > −1`` (finite, ``1 + r`` normal), within an ulp.

    ``u = 1 + r`` and its rounding error ``c`` (TwoSum), so that
    ``log1p(r) = log u + c/u``; ``log u`` by fdlibm's reduction: ``u = 2**k·f``
    with ``f`` in [√2/2, √2), ``f − 1`` exact, ``s = (f − 1)/(f + 1)``, and
    ``log f = (f − 1) − (h − s·(h + R))`` with ``h = (f − 1)²/2`` and ``R`` the
    series in ``s²`` (|s| <= 0.172: eleven terms reach 1e-19).
    """
    u = 1.0 + r
    back = u - 1.0
    c = (1.0 - (u - back)) + (r - back)
    bits = u.to(tl.int64, bitcast=True)
    k = ((bits >> 52) & 0x7FF) - 1023
    f = ((bits & 0xFFFFFFFFFFFFF) | (1023 << 52)).to(tl.float64, bitcast=True)  # [1, 2)
    above = f > 1.4142135623730951
    f = tl.where(above, 0.5 * f, f)
    k = tl.where(above, k + 1, k).to(tl.float64)
    f1 = f - 1.0
    s = f1 / (2.0 + f1)
    z = s * s
    series = tl.full(z.shape, LOG_SERIES[10], tl.float64)
    for j in tl.static_range(9, -1, -1):
        series = tl.fma(series, z, LOG_SERIES[j])
    big_r = z * series
    h = 0.5 * f1 * f1
    log_u = k * LN2_HI_64 - ((h - (s * (h + big_r) + k * LN2_LO_64)) - f1)
    return log_u + c / u


@triton.jit
def _div(a, b, F64: tl.constexpr):
    """``a / b`` correctly rounded (Triton's float32 ``/`` is an approximate instruction)."""
    if F64:
        return a / b
    else:
        return tl.div_rn(a, b)


@triton.jit
def _sqrt(a, F64: tl.constexpr):
    """``sqrt(a)`` correctly rounded (Triton's float32 ``sqrt`` is an approximate instruction)."""
    if F64:
        return tl.sqrt(a)
    else:
        return tl.sqrt_rn(a)


@triton.jit
def _float32(x):
    """``x`` (any float type up to 32 bits) as float32, exactly.

    bfloat16 is the top half of a float32: widened by its bits, which is
    exact everywhere (Triton's interpreter converts its subnormals wrongly).
    """
    if x.dtype == tl.bfloat16:
        return (x.to(tl.uint16, bitcast=True).to(tl.uint32) << 16).to(tl.float32, bitcast=True)
    else:
        return x.to(tl.float32)


@triton.jit
def _wide(x):
    """``x`` in float64, exactly."""
    if x.dtype.primitive_bitwidth < 32:
        return _float32(x).to(tl.float64)
    else:
        return x.to(tl.float64)


@triton.jit
def _rounded(value, ptr):
    """``value`` rounded to nearest (ties to even) in the element type of ``ptr``.

    16-bit types go through float32: no conversion from float64 to 16 bits
    exists on every target, and rounding twice that way stays within half
    an ulp and 2**-16 of one. bfloat16 is rounded on the bits (Triton's
    interpreter neither rounds ties to even nor carries into the exponent).
    """
    target = ptr.dtype.element_ty
    if target == tl.bfloat16:
        bits = value.to(tl.float32).to(tl.uint32, bitcast=True)
        nearest = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
        quiet = (bits >> 16) | 0x40  # a NaN stays a NaN
        half = tl.where(value != value, quiet, nearest).to(tl.uint16)
        return half.to(tl.bfloat16, bitcast=True)
    elif target.primitive_bitwidth < 32:
        return value.to(tl.float32).to(target, fp_downcast_rounding="rtne")
    else:
        return value.to(target, fp_downcast_rounding="rtne")


@triton.jit
def _max_nan(a, b):
    return tl.maximum(a, b, propagate_nan=tl.PropagateNan.ALL)


@triton.jit
def _compute(x, F64: tl.constexpr):
    """``x`` in the dtype the formulas run in: float64 for float64, else float32."""
    if F64:
        return _wide(x)
    else:
        return _float32(x)


# --- elementwise: the sigmoid's derivatives -----------------------------------------------

SIGMOID_DERIVATIVE, SIGMOID_BACKWARD, SIGMOID_DERIVATIVE_BACKWARD = 0, 1, 2
"""The elementwise kernel's modes: σ'(x), g·σ'(x), g·σ''(x)."""


@triton.jit
def _sigmoid_kernel(
    x_ptr, g_ptr, out_ptr, n, MODE: tl.constexpr, F64: tl.constexpr, BLOCK: tl.constexpr
):
    offsets = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    inside = offsets < n
    x = _compute(tl.load(x_ptr + offsets, mask=inside, other=0.0), F64)
    t = -tl.abs(x)
    e = _exp_scaled(t, 0, F64)
    d = 1.0 + e
    if MODE == 2:
        # σ''(x) = -sign(x)·e·(1 - e)/(1 + e)³, with 1 - e = -expm1(-|x|).
        sign = (x > 0).to(x.dtype) - (x < 0).to(x.dtype)
        value = _div(sign * e * _expm1_nonpositive(t, F64), d * d * d, F64)
    else:
        # As the formula, e/(1 + e)², clamped at its maximum 1/4; with the
        # rounding errors of 1 + e (Fast2Sum) and of its square (fma) carried
        # as a first-order correction of the quotient, so that a product
        # with the gradient still lands within the contract.
        d_err = e - (d - 1.0)
        square = d * d
        square_err = tl.fma(d, d, -square) + 2.0 * d * d_err
        quotient = _div(e, square, F64)
        value = tl.fma(-quotient, _div(square_err, square, F64), quotient)
        value = tl.minimum(value, 0.25)
    if MODE != 0:
        value = value * _compute(tl.load(g_ptr + offsets, mask=inside, other=0.0), F64)
    value = tl.where(x != x, x, value)
    tl.store(out_ptr + offsets, _rounded(value, out_ptr), mask=inside)


# --- rows: softmax ------------------------------------------------------------------------


@triton.jit
def _softmax_terms(x, m, inside, CUTOFF: tl.constexpr, BOOST: tl.constexpr, F64: tl.constexpr):
    """The formula's scaled exponentials of one tile, given each row's maximum ``m``."""
    finite = tl.abs(m) < float("inf")  # False for ±inf and NaN
    shift = tl.where(finite, m, 0.0)
    s = x - shift
    back = s - x
    err = (x - (s - back)) + (-shift - back)  # TwoSum: the rounding error of s
    e = _exp_scaled(s, BOOST, F64)
    # Far below the maximum (or where x - m overflowed) e is 0, and err may
    # be NaN: it must not reach the product.
    e = tl.fma(e, tl.where(s > -CUTOFF, err, 0.0), e)
    at_max = ((x == m) & inside).to(x.dtype)
    e = tl.where(finite, e, at_max + tl.where(m != m, m, 0.0))
    return tl.where(inside, e, 0.0)


@triton.jit
def _rows_max(
    x_ptr, start, row_inside, n_cols, F64: tl.constexpr, ROWS: tl.constexpr, BLOCK: tl.constexpr
):
    """Each row's maximum (NaN where it holds one) in the compute dtype, tile by tile:
    the first pass of the row kernels over rows longer than a tile."""
    m = tl.full((ROWS, 1), float("-inf"), tl.float64 if F64 else tl.float32)
    for c in range(0, n_cols, BLOCK):
        cols = c + tl.arange(0, BLOCK)[None, :]
        inside = row_inside & (cols < n_cols)
        x = _compute(tl.load(x_ptr + start + cols, mask=inside, other=float("-inf")), F64)
        m = _max_nan(m, tl.reduce(x, 1, _max_nan, keep_dims=True))
    return m


SOFTMAX, LOG_SOFTMAX, LOGSUMEXP, LOG_SOFTMAX_BACKWARD, LOGSUMEXP_BACKWARD = range(5)
"""The exponential rows' kernel's modes: the softmax ``p``; the log-softmax; logsumexp
(one value a row); the log-softmax's gradient ``g − p·Σ g``; logsumexp's ``g·p``."""


@triton.jit
def _row_sums(e, x, m, inside, g, MODE: tl.constexpr):
    """A tile's part of each row's sums: of the terms (less the maxima's 1s, for the
    logarithms: ``r``), of the maxima (the logarithms'), of the gradient (the
    log-softmax's)."""
    if MODE == 1 or MODE == 2:
        at_max = ((x == m) & inside).to(tl.float64)
        total = tl.sum(e - at_max, axis=1, keep_dims=True)
        ones = tl.sum(at_max, axis=1, keep_dims=True)
    else:
        total = tl.sum(e, axis=1, keep_dims=True)
        ones = total
    gsum = tl.sum(g, axis=1, keep_dims=True) if MODE == 3 else total
    return total, ones, gsum


@triton.jit
def _log_softmax_tile(x, m, total, ones):
    """``(x − m) − log1p(r)`` in float64, with the rounding error of ``x − m`` added back
    (TwoSum); rows whose maximum is not finite their limits (as the formula's)."""
    finite = tl.abs(m) < float("inf")
    shift = tl.where(finite, m, 0.0)
    log1p_r = _log1p_wide(tl.where(finite, total + (ones - 1.0), 0.0))
    s = x - shift
    back = s - x
    err = (x - (s - back)) + (-shift - back)
    y = (s - log1p_r) + tl.where(tl.abs(s) < float("inf"), err, 0.0)
    share = -_log1p_wide(tl.maximum(ones, 1.0) - 1.0)
    limit = tl.where(m != m, m, tl.where(x == m, share, float("-inf")))
    return tl.where(finite, y, limit)


@triton.jit
def _logsumexp_row(m, total, ones):
    """``m + log1p(r)``; the maximum itself where it is not finite."""
    finite = tl.abs(m) < float("inf")
    log1p_r = _log1p_wide(tl.where(finite, total + (ones - 1.0), 0.0))
    return tl.where(finite, m + log1p_r, m)


@triton.jit
def _exp_rows_tile(x, e, g, m, total, ones, gsum, MODE: tl.constexpr):
    """One tile of the result (every mode but logsumexp's), from the rows' sums."""
    if MODE == 0:
        return e / total
    elif MODE == 1:
        return _log_softmax_tile(x, m, total, ones)
    elif MODE == 3:
        return g - (e / total) * gsum
    else:
        return g * (e / total)


@triton.jit
def _exp_rows_load(
    x_ptr,
    g_ptr,
    start,
    c,
    row_inside,
    n_cols,
    m,
    g_row,
    MODE: tl.constexpr,
    CUTOFF: tl.constexpr,
    BOOST: tl.constexpr,
    F64: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """The tile of columns from ``c`` of rows longer than a tile: its entries, their terms,
    the gradient's tile (or each row's value), its columns and mask."""
    cols = c + tl.arange(0, BLOCK)[None, :]
    inside = row_inside & (cols < n_cols)
    x = _compute(tl.load(x_ptr + start + cols, mask=inside, other=float("-inf")), F64)
    e = _softmax_terms(x, m, inside, CUTOFF, BOOST, F64).to(tl.float64)
    g = g_row
    if MODE == 3:
        g = _wide(tl.load(g_ptr + start + cols, mask=inside, other=0.0))
    return x, e, g, cols, inside


@triton.jit
def _exp_rows_kernel(
    x_ptr,
    g_ptr,
    out_ptr,
    n_rows,
    n_cols,
    MODE: tl.constexpr,
    CUTOFF: tl.constexpr,
    BOOST: tl.constexpr,
    F64: tl.constexpr,
    ROWS: tl.constexpr,
    BLOCK: tl.constexpr,
    SINGLE: tl.constexpr,
):
    """The softmax's family over rows (see the modes above): each row's maximum, its
    sums, then the result. The logarithms' modes compute in float64 (``F64``) with
    ``BOOST`` 0; ``g`` is read by the gradients' modes, elementwise or (logsumexp's)
    one value a row."""
    rows = tl.program_id(0).to(tl.int64) * ROWS + tl.arange(0, ROWS)[:, None]
    start = rows * n_cols
    row_inside = rows < n_rows
    g_row = tl.zeros((ROWS, 1), tl.float64)
    if MODE == 4:
        g_row = _wide(tl.load(g_ptr + rows, mask=row_inside, other=0.0))
    if SINGLE:  # the row in one tile: one read, one write
        cols = tl.arange(0, BLOCK)[None, :]
        inside = row_inside & (cols < n_cols)
        x = _compute(tl.load(x_ptr + start + cols, mask=inside, other=float("-inf")), F64)
        m = tl.reduce(x, 1, _max_nan, keep_dims=True)
        e = _softmax_terms(x, m, inside, CUTOFF, BOOST, F64).to(tl.float64)
        g = g_row
        if MODE == 3:
            g = _wide(tl.load(g_ptr + start + cols, mask=inside, other=0.0))
        total, ones, gsum = _row_sums(e, x, m, inside, g, MODE)
        if MODE == 2:
            value = _logsumexp_row(m, total, ones)
            tl.store(out_ptr + rows, _rounded(value, out_ptr), mask=row_inside)
        else:
            y = _exp_rows_tile(x, e, g, m, total, ones, gsum, MODE)
            tl.store(out_ptr + start + cols, _rounded(y, out_ptr), mask=inside)
    else:  # longer rows: the maximum, the sums, then the result, tile by tile
        m = _rows_max(x_ptr, start, row_inside, n_cols, F64, ROWS, BLOCK)
        total = tl.zeros((ROWS, 1), tl.float64)
        ones = tl.zeros((ROWS, 1), tl.float64)
        gsum = tl.zeros((ROWS, 1), tl.float64)
        for c in range(0, n_cols, BLOCK):
            x, e, g, cols, inside = _exp_rows_load(
                x_ptr,
                g_ptr,
                start,
                c,
                row_inside,
                n_cols,
                m,
                g_row,
                MODE,
                CUTOFF,
                BOOST,
                F64,
                BLOCK,
            )
            part, part_ones, part_g = _row_sums(e, x, m, inside, g, MODE)
            total += part
            ones += part_ones
            gsum += part_g
        if MODE == 2:
            value = _logsumexp_row(m, total, ones)
            tl.store(out_ptr + rows, _rounded(value, out_ptr), mask=row_inside)
        else:
            for c in range(0, n_cols, BLOCK):
                x, e, g, cols, inside = _exp_rows_load(
                    x_ptr,
                    g_ptr,
                    start,
                    c,
                    row_inside,
                    n_cols,
                    m,
                    g_row,
                    MODE,
                    CUTOFF,
                    BOOST,
                    F64,
                    BLOCK,
                )
                y = _exp_rows_tile(x, e, g, m, total, ones, gsum, MODE)
                tl.store(out_ptr + start + cols, _rounded(y, out_ptr), mask=inside)


@triton.jit
def _softmax_backward_kernel(
    g_ptr,
    y_ptr,
    out_ptr,
    n_rows,
    n_cols,
    ROWS: tl.constexpr,
    BLOCK: tl.constexpr,
    SINGLE: tl.constexpr,
):
    """``y·(g − Σ g·y)`` per row, in float64."""
    rows = tl.program_id(0).to(tl.int64) * ROWS + tl.arange(0, ROWS)[:, None]
    start = rows * n_cols
    row_inside = rows < n_rows
    if SINGLE:
        cols = tl.arange(0, BLOCK)[None, :]
        inside = row_inside & (cols < n_cols)
        g = _wide(tl.load(g_ptr + start + cols, mask=inside, other=0.0))
        y = _wide(tl.load(y_ptr + start + cols, mask=inside, other=0.0))
        dot = tl.sum(g * y, axis=1, keep_dims=True)
        tl.store(out_ptr + start + cols, _rounded(y * (g - dot), out_ptr), mask=inside)
    else:
        dot = tl.zeros((ROWS, 1), tl.float64)
        for c in range(0, n_cols, BLOCK):
            cols = c + tl.arange(0, BLOCK)[None, :]
            inside = row_inside & (cols < n_cols)
            g = _wide(tl.load(g_ptr + start + cols, mask=inside, other=0.0))
            y = _wide(tl.load(y_ptr + start + cols, mask=inside, other=0.0))
            dot += tl.sum(g * y, axis=1, keep_dims=True)
        for c in range(0, n_cols, BLOCK):
            cols = c + tl.arange(0, BLOCK)[None, :]
            inside = row_inside & (cols < n_cols)
            g = _wide(tl.load(g_ptr + start + cols, mask=inside, other=0.0))
            y = _wide(tl.load(y_ptr + start + cols, mask=inside, other=0.0))
            gx = y * (g - dot)
            tl.store(out_ptr + start + cols, _rounded(gx, out_ptr), mask=inside)


# --- elementwise: the logistic loss -----------------------------------------------------------


@triton.jit
def _logistic_kernel(
    z_ptr, y_ptr, out_ptr, n, LABELS: tl.constexpr, REDUCE: tl.constexpr, BLOCK: tl.constexpr
):
    """The logistic loss of logits ``z`` and labels ``y``, in float64, as the formula:
    ``(1 − y)·max(z, 0) + y·max(−z, 0) + log1p(exp(−|z|))``; or (``REDUCE``) each
    program's sum, into ``out_ptr[pid]`` (float64, for :func:`_loss_finish_kernel`).
    Without ``LABELS`` every label is 0 (none is read): softplus."""
    pid = tl.program_id(0)
    offsets = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    inside = offsets < n
    z = _wide(tl.load(z_ptr + offsets, mask=inside, other=0.0))
    y = tl.zeros(z.shape, tl.float64)
    if LABELS:
        y = _wide(tl.load(y_ptr + offsets, mask=inside, other=0.0))
    e = _exp_scaled(-tl.abs(z), 0, True)
    terms = tl.where(z >= 0, (1.0 - y) * z, -(y * z)) + _log1p_wide(e)
    terms = tl.where(z != z, z, terms)  # (_exp_scaled takes NaN as its floor)
    if REDUCE:
        tl.store(out_ptr + pid, tl.sum(tl.where(inside, terms, 0.0), axis=0))
    else:
        tl.store(out_ptr + offsets, _rounded(terms, out_ptr), mask=inside)


@triton.jit
def _logistic_backward_kernel(
    z_ptr,
    y_ptr,
    g_ptr,
    out_ptr,
    n,
    divisor,
    LABELS: tl.constexpr,
    G_SCALAR: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """The logistic loss's gradient in the logits, ``g·(σ(z) − y)``, as ``(1 − y) − σ(−z)``
    for ``z >= 0`` and ``σ(z) − y`` below (``−σ(−z)`` or ``σ(z)`` for hard labels, never
    ``σ(z) − 1``); ``g`` one value an element, or (``G_SCALAR``) one over ``divisor``.
    Without ``LABELS`` every label is 0: softplus' gradient, ``g·σ(z)``."""
    offsets = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    inside = offsets < n
    z = _wide(tl.load(z_ptr + offsets, mask=inside, other=0.0))
    y = tl.zeros(z.shape, tl.float64)
    if LABELS:
        y = _wide(tl.load(y_ptr + offsets, mask=inside, other=0.0))
    if G_SCALAR:
        g = _wide(tl.load(g_ptr)) / tl.cast(divisor, tl.float64)
    else:
        g = _wide(tl.load(g_ptr + offsets, mask=inside, other=0.0))
    e = _exp_scaled(-tl.abs(z), 0, True)
    s = e / (1.0 + e)  # σ(−|z|)
    slope = tl.where(z >= 0, (1.0 - y) - s, s - y)
    slope = tl.where(z != z, z, slope)
    tl.store(out_ptr + offsets, _rounded(slope * g, out_ptr), mask=inside)


# --- rows: the cross-entropy of class indices ------------------------------------------------


@triton.jit
def _label_sums(x, m, cols, label, inside, CUTOFF: tl.constexpr):
    """A tile's part of each row's sums for the cross-entropy: ``r`` (as the logarithms'),
    the maxima, the other classes' exponentials, and the label's logit."""
    e = _softmax_terms(x, m, inside, CUTOFF, 0, True).to(tl.float64)
    hot = (cols == label) & inside
    at_max = ((x == m) & inside).to(tl.float64)
    total = tl.sum(e - at_max, axis=1, keep_dims=True)
    ones = tl.sum(at_max, axis=1, keep_dims=True)
    others = tl.sum(tl.where(hot, 0.0, e), axis=1, keep_dims=True)
    x_label = tl.sum(tl.where(hot, x, 0.0), axis=1, keep_dims=True)
    return total, ones, others, x_label


@triton.jit
def _cross_entropy_row(m, total, ones, others, x_label, valid):
    """``−log softmax`` at the label, as the formula: ``−log1p(−q)`` where the label holds
    more than half the mass (``q`` the others'), else ``log1p(r) − (x_label − m)``; the
    limits of rows whose maximum is not finite; NaN for an index out of range."""
    finite = tl.abs(m) < float("inf")
    shift = tl.where(finite, m, 0.0)
    r = tl.where(finite, total + (ones - 1.0), 0.0)
    q = others / (1.0 + r)
    mostly = q < 0.5
    value = tl.where(
        mostly, -_log1p_wide(-tl.where(mostly, q, 0.0)), _log1p_wide(r) - (x_label - shift)
    )
    share = _log1p_wide(tl.maximum(ones, 1.0) - 1.0)
    limit = tl.where(m != m, m, tl.where(x_label == m, share, float("inf")))
    return tl.where(valid, tl.where(finite, value, limit), float("nan"))


@triton.jit
def _cross_entropy_kernel(
    x_ptr,
    t_ptr,
    out_ptr,
    n_rows,
    n_cols,
    CUTOFF: tl.constexpr,
    REDUCE: tl.constexpr,
    ROWS: tl.constexpr,
    BLOCK: tl.constexpr,
    SINGLE: tl.constexpr,
):
    """Each row's loss, in float64; or (``REDUCE``) each program's sum of its rows' losses,
    into ``out_ptr[pid]`` (float64, for :func:`_loss_finish_kernel`)."""
    pid = tl.program_id(0)
    rows = pid.to(tl.int64) * ROWS + tl.arange(0, ROWS)[:, None]
    start = rows * n_cols
    row_inside = rows < n_rows
    label = tl.load(t_ptr + rows, mask=row_inside, other=0).to(tl.int64)
    valid = (label >= 0) & (label < n_cols)
    if SINGLE:
        cols = tl.arange(0, BLOCK)[None, :]
        inside = row_inside & (cols < n_cols)
        x = _wide(tl.load(x_ptr + start + cols, mask=inside, other=float("-inf")))
        m = tl.reduce(x, 1, _max_nan, keep_dims=True)
        total, ones, others, x_label = _label_sums(x, m, cols, label, inside, CUTOFF)
    else:
        m = _rows_max(x_ptr, start, row_inside, n_cols, True, ROWS, BLOCK)
        total = tl.zeros((ROWS, 1), tl.float64)
        ones = tl.zeros((ROWS, 1), tl.float64)
        others = tl.zeros((ROWS, 1), tl.float64)
        x_label = tl.zeros((ROWS, 1), tl.float64)
        for c in range(0, n_cols, BLOCK):
            cols = c + tl.arange(0, BLOCK)[None, :]
            inside = row_inside & (cols < n_cols)
            x = _wide(tl.load(x_ptr + start + cols, mask=inside, other=float("-inf")))
            part, part_ones, part_others, part_label = _label_sums(
                x, m, cols, label, inside, CUTOFF
            )
            total += part
            ones += part_ones
            others += part_others
            x_label += part_label
    loss = _cross_entropy_row(m, total, ones, others, x_label, valid)
    if REDUCE:
        tl.store(out_ptr + pid, tl.sum(tl.where(row_inside, loss, 0.0)))
    else:
        tl.store(out_ptr + rows, _rounded(loss, out_ptr), mask=row_inside)


@triton.jit
def _cross_entropy_backward_kernel(
    x_ptr,
    t_ptr,
    g_ptr,
    out_ptr,
    n_rows,
    n_cols,
    divisor,
    G_SCALAR: tl.constexpr,
    CUTOFF: tl.constexpr,
    BOOST: tl.constexpr,
    F64: tl.constexpr,
    ROWS: tl.constexpr,
    BLOCK: tl.constexpr,
    SINGLE: tl.constexpr,
):
    """``g·(p − one_hot)`` per row, ``p`` the softmax, with the label's entry ``−g·Σ``
    of the other classes' ``p`` (never ``p − 1``); NaN for an index out of range.
    ``g`` a value a row, or (``G_SCALAR``) one for all, over ``divisor`` (an integer)."""
    rows = tl.program_id(0).to(tl.int64) * ROWS + tl.arange(0, ROWS)[:, None]
    start = rows * n_cols
    row_inside = rows < n_rows
    label = tl.load(t_ptr + rows, mask=row_inside, other=0).to(tl.int64)
    valid = (label >= 0) & (label < n_cols)
    if G_SCALAR:
        g = _wide(tl.load(g_ptr)) / tl.cast(divisor, tl.float64)
    else:
        g = _wide(tl.load(g_ptr + rows, mask=row_inside, other=0.0))
    if SINGLE:
        cols = tl.arange(0, BLOCK)[None, :]
        inside = row_inside & (cols < n_cols)
        x = _compute(tl.load(x_ptr + start + cols, mask=inside, other=float("-inf")), F64)
        m = tl.reduce(x, 1, _max_nan, keep_dims=True)
        e = _softmax_terms(x, m, inside, CUTOFF, BOOST, F64).to(tl.float64)
        hot = cols == label
        total = tl.sum(e, axis=1, keep_dims=True)
        others = tl.sum(tl.where(hot, 0.0, e), axis=1, keep_dims=True)
        y = tl.where(hot, -others, e) / total * g
        tl.store(
            out_ptr + start + cols, _rounded(tl.where(valid, y, float("nan")), out_ptr), mask=inside
        )
    else:
        m = _rows_max(x_ptr, start, row_inside, n_cols, F64, ROWS, BLOCK)
        total = tl.zeros((ROWS, 1), tl.float64)
        others = tl.zeros((ROWS, 1), tl.float64)
        for c in range(0, n_cols, BLOCK):
            cols = c + tl.arange(0, BLOCK)[None, :]
            inside = row_inside & (cols < n_cols)
            x = _compute(tl.load(x_ptr + start + cols, mask=inside, other=float("-inf")), F64)
            e = _softmax_terms(x, m, inside, CUTOFF, BOOST, F64).to(tl.float64)
            total += tl.sum(e, axis=1, keep_dims=True)
            others += tl.sum(tl.where(cols == label, 0.0, e), axis=1, keep_dims=True)
        for c in range(0, n_cols, BLOCK):
            cols = c + tl.arange(0, BLOCK)[None, :]
            inside = row_inside & (cols < n_cols)
            x = _compute(tl.load(x_ptr + start + cols, mask=inside, other=float("-inf")), F64)
            e = _softmax_terms(x, m, inside, CUTOFF, BOOST, F64).to(tl.float64)
            y = tl.where(cols == label, -others, e) / total * g
            y = tl.where(valid, y, float("nan"))
            tl.store(out_ptr + start + cols, _rounded(y, out_ptr), mask=inside)


# --- rows: normalize_rows -----------------------------------------------------------------


@triton.jit
def _row_scale(largest, SCALED: tl.constexpr):
    """A power of two bringing a float64 row's largest magnitude into [1, 4), exactly.

    Built from the exponent bits: 2**(1023 − e) for largest in [2**e, 2**(e+1)),
    kept normal (a row at the top of the range peaks below 4). Rows of
    float32 or less are squared in float64 as they are (scale 1): their
    squares can neither overflow nor underflow there.
    """
    if SCALED:
        exponent = (largest.to(tl.int64, bitcast=True) >> 52) & 0x7FF
        field = tl.maximum(2046 - exponent, 1)
        return (field << 52).to(tl.float64, bitcast=True)
    else:
        return tl.full(largest.shape, 1.0, tl.float64)


@triton.jit
def _normalize_tile(y, g, scale, squares, infinite, dot, BACKWARD: tl.constexpr):
    """One tile of the result, from the rows' statistics (see :func:`_normalize_kernel`)."""
    norm = tl.sqrt(squares)
    usable = tl.where(norm > 0, norm, 1.0)
    unit = y / usable
    if BACKWARD:
        result = (g - unit * (dot / usable)) * scale / usable
        result = tl.where(norm > 0, result, 0.0)
        result = tl.where(infinite > 0, 0.0, result)
    else:
        share = 1.0 / tl.sqrt(tl.maximum(infinite, 1.0))
        limit = tl.where(tl.abs(y) == float("inf"), tl.where(y > 0, share, -share), 0.0)
        result = tl.where(infinite > 0, limit, unit)
    return tl.where(squares != squares, squares, result)  # a NaN in the row


@triton.jit
def _normalize_kernel(
    x_ptr,
    g_ptr,
    out_ptr,
    n_rows,
    n_cols,
    BACKWARD: tl.constexpr,
    SCALED: tl.constexpr,
    ROWS: tl.constexpr,
    BLOCK: tl.constexpr,
    SINGLE: tl.constexpr,
):
    """Each row over its norm, or (``BACKWARD``) the gradient ``(g − y·Σ g·y) / ‖x‖``.

    In float64 throughout. A row holding ±inf becomes its limit (the
    infinite entries share the unit norm, the rest are 0); a row holding NaN
    becomes NaN; a zero row stays zero (and its gradient, undefined, is 0).
    """
    rows = tl.program_id(0).to(tl.int64) * ROWS + tl.arange(0, ROWS)[:, None]
    start = rows * n_cols
    row_inside = rows < n_rows
    if SINGLE:  # the row in one tile: one read (of each input), one write
        cols = tl.arange(0, BLOCK)[None, :]
        inside = row_inside & (cols < n_cols)
        x = _wide(tl.load(x_ptr + start + cols, mask=inside, other=0.0))
        scale = _row_scale(tl.reduce(tl.abs(x), 1, _max_nan, keep_dims=True), SCALED)
        y = x * scale
        is_inf = tl.abs(y) == float("inf")
        squares = tl.sum(tl.where(is_inf, 0.0, y * y), axis=1, keep_dims=True)
        infinite = tl.sum(is_inf.to(tl.float64), axis=1, keep_dims=True)
        g = y
        dot = squares
        if BACKWARD:
            g = _wide(tl.load(g_ptr + start + cols, mask=inside, other=0.0))
            dot = tl.sum(g * y, axis=1, keep_dims=True)
        result = _normalize_tile(y, g, scale, squares, infinite, dot, BACKWARD)
        tl.store(out_ptr + start + cols, _rounded(result, out_ptr), mask=inside)
    else:  # longer rows: (float64: the largest magnitude,) the sums, then the result
        largest = tl.zeros((ROWS, 1), tl.float64)
        if SCALED:
            for c in range(0, n_cols, BLOCK):
                cols = c + tl.arange(0, BLOCK)[None, :]
                inside = row_inside & (cols < n_cols)
                x = _wide(tl.load(x_ptr + start + cols, mask=inside, other=0.0))
                largest = _max_nan(largest, tl.reduce(tl.abs(x), 1, _max_nan, keep_dims=True))
        scale = _row_scale(largest, SCALED)
        squares = tl.zeros((ROWS, 1), tl.float64)
        infinite = tl.zeros((ROWS, 1), tl.float64)
        dot = tl.zeros((ROWS, 1), tl.float64)
        for c in range(0, n_cols, BLOCK):
            cols = c + tl.arange(0, BLOCK)[None, :]
            inside = row_inside & (cols < n_cols)
            y = _wide(tl.load(x_ptr + start + cols, mask=inside, other=0.0)) * scale
            is_inf = tl.abs(y) == float("inf")
            squares += tl.sum(tl.where(is_inf, 0.0, y * y), axis=1, keep_dims=True)
            infinite += tl.sum(is_inf.to(tl.float64), axis=1, keep_dims=True)
            if BACKWARD:
                g = _wide(tl.load(g_ptr + start + cols, mask=inside, other=0.0))
                dot += tl.sum(g * y, axis=1, keep_dims=True)
        for c in range(0, n_cols, BLOCK):
            cols = c + tl.arange(0, BLOCK)[None, :]
            inside = row_inside & (cols < n_cols)
            y = _wide(tl.load(x_ptr + start + cols, mask=inside, other=0.0)) * scale
            g = y
            if BACKWARD:
                g = _wide(tl.load(g_ptr + start + cols, mask=inside, other=0.0))
            result = _normalize_tile(y, g, scale, squares, infinite, dot, BACKWARD)
            tl.store(out_ptr + start + cols, _rounded(result, out_ptr), mask=inside)


# --- losses -------------------------------------------------------------------------------


@triton.jit
def _loss_difference(a, b, SCALED: tl.constexpr):
    """``(d, pre)`` with ``d = a·pre − b·pre`` and ``pre`` 1/4 where ``a − b`` could
    overflow, else 1: powers of two, so that ``d / pre`` is the exact difference
    rounded once. Below float64, ``a − b`` in float64 needs no ``pre``."""
    if SCALED:
        big = tl.maximum(tl.abs(a), tl.abs(b)) > 4.49423283715579e307  # a quarter of the largest
        pre = tl.where(big, 0.25, 1.0)
        return a * pre - b * pre, pre
    else:
        return a - b, tl.full(a.shape, 1.0, tl.float64)


@triton.jit
def _loss_elementwise_kernel(
    a_ptr,
    b_ptr,
    g_ptr,
    out_ptr,
    n,
    divisor,
    POWER: tl.constexpr,
    GRADIENT: tl.constexpr,
    G_SCALAR: tl.constexpr,
    SCALED: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """``|a − b|**POWER``, or (``GRADIENT``) its derivative in ``a`` times ``g / divisor``.

    ``divisor`` is an integer (the count, for a mean): a Python float would
    reach the kernel as a float32.
    """
    offsets = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    inside = offsets < n
    a = _wide(tl.load(a_ptr + offsets, mask=inside, other=0.0))
    b = _wide(tl.load(b_ptr + offsets, mask=inside, other=0.0))
    d, pre = _loss_difference(a, b, SCALED)
    if GRADIENT:
        if G_SCALAR:
            g = _wide(tl.load(g_ptr))
        else:
            g = _wide(tl.load(g_ptr + offsets, mask=inside, other=0.0))
        if POWER == 1:
            value = ((d > 0).to(tl.float64) - (d < 0).to(tl.float64)) * (
                g / tl.cast(divisor, tl.float64)
            )
        else:
            value = d * (2.0 * g / tl.cast(divisor, tl.float64)) / pre
        value = tl.where(d != d, d, value)
    else:
        value = tl.abs(d) / pre if POWER == 1 else d * d / (pre * pre)
    tl.store(out_ptr + offsets, _rounded(value, out_ptr), mask=inside)


@triton.jit
def _loss_partial_kernel(
    a_ptr,
    b_ptr,
    sums_ptr,
    scales_ptr,
    n,
    POWER: tl.constexpr,
    SCALED: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """One block's ``Σ |a − b|**POWER`` (times ``scale**POWER``, a power of two, for float64)."""
    pid = tl.program_id(0)
    offsets = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    inside = offsets < n
    a = _wide(tl.load(a_ptr + offsets, mask=inside, other=0.0))
    b = _wide(tl.load(b_ptr + offsets, mask=inside, other=0.0))
    d, pre = _loss_difference(a, b, SCALED)
    error = tl.abs(d)
    if SCALED:
        scale = _row_scale(tl.reduce(error, 0, _max_nan), SCALED)
        terms = error * (scale / pre)  # exact: powers of two
    else:
        scale = 1.0
        terms = error
    if POWER == 2:
        terms = terms * terms
    tl.store(sums_ptr + pid, tl.sum(terms, axis=0))
    tl.store(scales_ptr + pid, scale)


@triton.jit
def _loss_finish_kernel(
    sums_ptr,
    scales_ptr,
    out_ptr,
    n_parts,
    divisor,
    POWER: tl.constexpr,
    SCALED: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """The blocks' sums brought to one scale (the smallest: exact powers of two) and added;
    divided by ``divisor`` (the count, for a mean) and unscaled, reaching inf, not NaN,
    past the largest float. Without ``SCALED`` the sums are all of scale 1 (no scales
    are read)."""
    smallest = 1.0
    if SCALED:
        common = tl.full((BLOCK,), float("inf"), tl.float64)
        for c in range(0, n_parts, BLOCK):
            parts = c + tl.arange(0, BLOCK)
            common = tl.minimum(
                common, tl.load(scales_ptr + parts, mask=parts < n_parts, other=float("inf"))
            )
        smallest = tl.min(common, axis=0)
    total = tl.zeros((BLOCK,), tl.float64)
    for c in range(0, n_parts, BLOCK):
        parts = c + tl.arange(0, BLOCK)
        inside = parts < n_parts
        part = tl.load(sums_ptr + parts, mask=inside, other=0.0)
        ratio = 1.0
        if SCALED:
            ratio = smallest / tl.load(scales_ptr + parts, mask=inside, other=1.0)
        total += part * ratio if POWER == 1 else part * ratio * ratio
    value = tl.sum(total, axis=0) / tl.cast(divisor, tl.float64)  # an integer: exact below 2**53
    undo = 1.0 / smallest  # exact: 2**k with |k| <= 1022
    # One power at a time: an intermediate is finite and normal whenever the
    # result is (see the module's notes in docs/numerics.md).
    value = value * undo
    if POWER == 2:
        value = value * undo
    tl.store(out_ptr, _rounded(value, out_ptr))


# --- launching ----------------------------------------------------------------------------


class Launch(NamedTuple):
    """One kernel launch: its name, grid, the bytes it reads and writes, and its arguments."""

    kernel: str
    grid: tuple[int, ...]
    traffic: int
    function: Any = None
    args: tuple[Any, ...] = ()
    constants: dict[str, Any] = {}  # noqa: RUF012 (never mutated)


_recording: list[list[Launch]] = []


class recording:
    """Within it, launches are recorded (in the list it gives) instead of run.

    For the cost model on fake CUDA tensors, which have no memory to run on:
    the launchers below do all they do on a GPU but the launch itself.
    """

    def __enter__(self) -> list[Launch]:
        _recording.append([])
        return _recording[-1]

    def __exit__(self, *exc: object) -> None:
        _recording.pop()


def launch(kernel: Any, grid: tuple[int, ...], traffic: int, *args: Any, **constants: Any) -> None:
    """``kernel[grid](*args, **constants)`` on the tensors' device, declaring the bytes it
    moves (``traffic``).

    Contraction is off: a multiply-add fuses only where the kernel says so
    (``tl.fma``), so that the interpreter and the GPU round alike.
    """
    if _recording:
        _recording[-1].append(Launch(kernel.fn.__name__, grid, traffic, kernel, args, constants))
        return
    device = next(a.device for a in args if isinstance(a, torch.Tensor))
    if device.type != "cuda":  # CPU tensors, under Triton's interpreter
        kernel[grid](*args, **constants, enable_fp_fusion=False)
        return
    # Triton launches on the current device: make it the tensors' own.
    with torch.cuda.device(device):
        kernel[grid](*args, **constants, enable_fp_fusion=False)


def _warps(elements: int) -> int:
    """Warps for a tile: four elements a thread, which keeps the float64 kernels'
    registers below 100 for sm_90 (``tests/triton_targets.py`` compiles them)."""
    return max(4, min(32, elements // 128))


_ELEMENTWISE_BLOCK = 1024
_LOSS_BLOCK = 4096
_FINISH_BLOCK = 1024
MAX_ROW_BLOCK = 4096
"""The longest row a row kernel holds in one tile (longer rows take several passes)."""

CUTOFF = {
    torch.float32: 1.0 - math.log(2.0**-126 * 2.0**-23),
    torch.float64: 1.0 - math.log(2.0**-1022 * 2.0**-52),
}
"""Below the row maximum by more than this, an exponential underflows (as in the formula)."""

BOOST = {torch.float32: 27, torch.float64: 56}
"""log2 of the formula's softmax boost: mantissa bits + 4."""


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def _bytes(*tensors: torch.Tensor) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def _elementwise(mode: int, x: torch.Tensor, g: torch.Tensor | None) -> torch.Tensor:
    x = x.contiguous()
    out = torch.empty_like(x)
    gt = x if g is None else g.contiguous()
    n = x.numel()
    if n == 0:
        return out
    grid = (triton.cdiv(n, _ELEMENTWISE_BLOCK),)
    traffic = _bytes(x, out) + (0 if g is None else _bytes(gt))
    launch(
        _sigmoid_kernel,
        grid,
        traffic,
        x,
        gt,
        out,
        n,
        MODE=mode,
        F64=x.dtype == torch.float64,
        BLOCK=_ELEMENTWISE_BLOCK,
        num_warps=_warps(_ELEMENTWISE_BLOCK),
    )
    return out


def sigmoid_derivative(x: torch.Tensor) -> torch.Tensor:
    return _elementwise(SIGMOID_DERIVATIVE, x, None)


def sigmoid_backward(g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``g·σ'(x)``."""
    return _elementwise(SIGMOID_BACKWARD, x, g)


def sigmoid_derivative_backward(g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``g·σ''(x)``."""
    return _elementwise(SIGMOID_DERIVATIVE_BACKWARD, x, g)


def _rows_last(x: torch.Tensor, axes: Sequence[int]) -> tuple[torch.Tensor, Callable[..., Any]]:
    """``x`` as a contiguous (rows, columns) matrix over ``axes``, and the way back."""
    axes = sorted(axes)
    rest = [a for a in range(x.ndim) if a not in axes]
    order = rest + axes
    shape = (math.prod(x.shape[a] for a in rest), math.prod(x.shape[a] for a in axes))
    if order == list(range(x.ndim)):
        original = x.shape
        return x.contiguous().reshape(shape), lambda y: y.reshape(original)
    moved = x.permute(order)
    inverse = [order.index(a) for a in range(x.ndim)]
    return moved.contiguous().reshape(
        shape
    ), lambda y: y.reshape(moved.shape).permute(inverse).contiguous()


def _row_tiling(columns: int, max_block: int) -> tuple[int, int, bool]:
    """(rows per tile, tile width, whether one tile holds a whole row)."""
    block = min(triton.next_power_of_2(max(columns, 1)), max_block)
    single = columns <= block
    rows = max(1, 1024 // block) if single else 1
    return rows, block, single


def _passes(single: bool, reads: int) -> int:
    """How many times a row kernel reads its input: once per row tile, or ``reads`` times."""
    return 1 if single else reads


def _exp_rows(
    mode: int, x: torch.Tensor, g: torch.Tensor | None, out: torch.Tensor, max_block: int
) -> None:
    """Launch the exponential rows' kernel in ``mode`` on the (rows, columns) matrix ``x``
    (and ``g``), into ``out``."""
    n_rows, n_cols = x.shape
    if out.numel() == 0 or n_cols == 0:
        return
    rows, block, single = _row_tiling(n_cols, max_block)
    logarithm = mode in (LOG_SOFTMAX, LOGSUMEXP)
    compute = torch.float64 if logarithm else _compute_dtype(x)
    reads = 2 if mode == LOGSUMEXP else 3  # the maximum, the sums, the result
    traffic = _passes(single, reads) * _bytes(x) + _bytes(out)
    if g is not None:  # logsumexp's, a value a row, read once; else with the sums and result
        traffic += _bytes(g) if mode == LOGSUMEXP_BACKWARD else _passes(single, 2) * _bytes(g)
    launch(
        _exp_rows_kernel,
        (triton.cdiv(n_rows, rows),),
        traffic,
        x,
        x if g is None else g,
        out,
        n_rows,
        n_cols,
        MODE=mode,
        CUTOFF=CUTOFF[compute],
        BOOST=0 if logarithm else BOOST[compute],
        F64=compute == torch.float64,
        ROWS=rows,
        BLOCK=block,
        SINGLE=single,
        # The logarithms' float64 tiles take twice the registers: half the elements a thread.
        num_warps=_warps((2 if logarithm else 1) * rows * block),
    )


def softmax(x: torch.Tensor, axes: Sequence[int], max_block: int = MAX_ROW_BLOCK) -> torch.Tensor:
    matrix, back = _rows_last(x, axes)
    out = torch.empty_like(matrix)
    _exp_rows(SOFTMAX, matrix, None, out, max_block)
    return back(out)  # type: ignore[no-any-return]


def log_softmax(
    x: torch.Tensor, axes: Sequence[int], max_block: int = MAX_ROW_BLOCK
) -> torch.Tensor:
    matrix, back = _rows_last(x, axes)
    out = torch.empty_like(matrix)
    _exp_rows(LOG_SOFTMAX, matrix, None, out, max_block)
    return back(out)  # type: ignore[no-any-return]


def _reduced_shape(x: torch.Tensor, axes: Sequence[int], keepdim: bool) -> list[int]:
    if keepdim:
        return [1 if a in axes else n for a, n in enumerate(x.shape)]
    return [n for a, n in enumerate(x.shape) if a not in axes]


def logsumexp(
    x: torch.Tensor, axes: Sequence[int], keepdim: bool, max_block: int = MAX_ROW_BLOCK
) -> torch.Tensor:
    """One value a slice over ``axes``; an empty slice's is −inf."""
    matrix, _ = _rows_last(x, axes)
    out = torch.empty(matrix.shape[0], dtype=x.dtype, device=x.device)
    if matrix.shape[1] == 0:
        return out.fill_(-math.inf).reshape(_reduced_shape(x, axes, keepdim))
    _exp_rows(LOGSUMEXP, matrix, None, out, max_block)
    return out.reshape(_reduced_shape(x, axes, keepdim))


def log_softmax_backward(
    g: torch.Tensor, x: torch.Tensor, axes: Sequence[int], max_block: int = MAX_ROW_BLOCK
) -> torch.Tensor:
    """``g − p·Σ g`` over ``axes``, ``p`` the softmax of ``x``: the gradient through the
    log-softmax, from its input."""
    gm, _ = _rows_last(g, axes)
    xm, back = _rows_last(x, axes)
    out = torch.empty_like(xm)
    _exp_rows(LOG_SOFTMAX_BACKWARD, xm, gm, out, max_block)
    return back(out)  # type: ignore[no-any-return]


def logsumexp_backward(
    g: torch.Tensor,
    x: torch.Tensor,
    axes: Sequence[int],
    keepdim: bool,
    max_block: int = MAX_ROW_BLOCK,
) -> torch.Tensor:
    """``g·p``, ``g`` a value a slice over ``axes`` (kept or not) and ``p`` the softmax
    of ``x``: the gradient through logsumexp."""
    xm, back = _rows_last(x, axes)
    out = torch.empty_like(xm)
    _exp_rows(LOGSUMEXP_BACKWARD, xm, g.contiguous().reshape(-1), out, max_block)
    return back(out)  # type: ignore[no-any-return]


def softmax_backward(
    g: torch.Tensor, y: torch.Tensor, axes: Sequence[int], max_block: int = MAX_ROW_BLOCK
) -> torch.Tensor:
    """``y·(g − Σ g·y)`` over ``axes``: the gradient through softmax, from its output ``y``."""
    gm, _ = _rows_last(g, axes)
    ym, back = _rows_last(y, axes)
    out = torch.empty_like(ym)
    n_rows, n_cols = ym.shape
    if out.numel() == 0:
        return back(out)  # type: ignore[no-any-return]
    rows, block, single = _row_tiling(n_cols, max_block)
    launch(
        _softmax_backward_kernel,
        (triton.cdiv(n_rows, rows),),
        _passes(single, 2) * _bytes(gm, ym) + _bytes(out),
        gm,
        ym,
        out,
        n_rows,
        n_cols,
        ROWS=rows,
        BLOCK=block,
        SINGLE=single,
        num_warps=_warps(rows * block),
    )
    return back(out)  # type: ignore[no-any-return]


def logistic(
    z: torch.Tensor, y: torch.Tensor, reduction: str, finish_block: int = _FINISH_BLOCK
) -> torch.Tensor:
    """The logistic loss of logits ``z`` and labels ``y`` (binary_cross_entropy_with_logits):
    one launch for the terms, two for their sum or mean (the blocks' sums, then those)."""
    a, b = z.contiguous(), y.contiguous()
    n = a.numel()
    if reduction == "none":
        return _logistic(a, b, torch.empty_like(a))
    if n == 0:
        empty = 0.0 if reduction == "sum" else math.nan
        return torch.full((), empty, dtype=a.dtype, device=a.device)
    sums = torch.empty(triton.cdiv(n, _ELEMENTWISE_BLOCK), dtype=torch.float64, device=a.device)
    _logistic(a, b, sums, reduce=True)
    return _finish(sums, n if reduction == "mean" else 1, a, finish_block)


def _logistic(
    a: torch.Tensor, b: torch.Tensor | None, out: torch.Tensor, reduce: bool = False
) -> torch.Tensor:
    """Launch the logistic kernel on the contiguous ``a`` and labels ``b`` (None: labels 0)
    into ``out``: the terms, or (``reduce``) each block's float64 sum."""
    n = a.numel()
    if n:
        launch(
            _logistic_kernel,
            (triton.cdiv(n, _ELEMENTWISE_BLOCK),),
            _bytes(a, out) + (0 if b is None else _bytes(b)),
            a,
            a if b is None else b,
            out,
            n,
            LABELS=b is not None,
            REDUCE=reduce,
            BLOCK=_ELEMENTWISE_BLOCK,
            num_warps=_warps(2 * _ELEMENTWISE_BLOCK),
        )
    return out


def _finish(sums: torch.Tensor, divisor: int, like: torch.Tensor, block: int) -> torch.Tensor:
    """The float64 ``sums`` (each of scale 1) added, over ``divisor``, in ``like``'s dtype."""
    out = torch.empty((), dtype=like.dtype, device=like.device)
    launch(
        _loss_finish_kernel,
        (1,),
        _bytes(sums, out),
        sums,
        sums,  # no scales are read
        out,
        sums.numel(),
        divisor,
        POWER=1,
        SCALED=False,
        BLOCK=block,
        num_warps=_warps(block),
    )
    return out


def logistic_backward(
    g: torch.Tensor, z: torch.Tensor, y: torch.Tensor, reduction: str
) -> torch.Tensor:
    """The gradient in the logits, for the upstream ``g`` (one value an element, or one)."""
    return _pair_gradient(
        _logistic_backward_kernel,
        g,
        z,
        y,
        reduction,
        LABELS=True,
        num_warps=_warps(2 * _ELEMENTWISE_BLOCK),
    )


def softplus(x: torch.Tensor) -> torch.Tensor:
    """``log(1 + exp(x))``: the logistic loss of ``x`` with labels 0, in one launch."""
    a = x.contiguous()
    return _logistic(a, None, torch.empty_like(a))


def softplus_backward(g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``g·σ(x)``, softplus' gradient."""
    return _pair_gradient(
        _logistic_backward_kernel,
        g,
        x,
        None,
        "none",
        LABELS=False,
        num_warps=_warps(2 * _ELEMENTWISE_BLOCK),
    )


def cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    axis: int,
    reduction: str,
    max_block: int = MAX_ROW_BLOCK,
    finish_block: int = _FINISH_BLOCK,
) -> torch.Tensor:
    """The cross-entropy of class indices ``target`` along ``axis``: one launch for the
    examples' losses, or two for their sum or mean (the rows' programs' sums, then those)."""
    matrix, _ = _rows_last(logits, (axis,))
    labels = target.contiguous().reshape(-1)
    n_rows, n_cols = matrix.shape
    rows, block, single = _row_tiling(n_cols, max_block)
    reduce = reduction != "none"
    grid = (triton.cdiv(n_rows, rows),)
    if not reduce:
        out = torch.empty(n_rows, dtype=logits.dtype, device=logits.device)
        target_out = out
    else:
        if n_rows == 0:
            empty = 0.0 if reduction == "sum" else math.nan
            return torch.full((), empty, dtype=logits.dtype, device=logits.device)
        target_out = torch.empty(grid[0], dtype=torch.float64, device=logits.device)
    if n_rows:
        launch(
            _cross_entropy_kernel,
            grid,
            _passes(single, 2) * _bytes(matrix) + _bytes(labels, target_out),
            matrix,
            labels,
            target_out,
            n_rows,
            n_cols,
            CUTOFF=CUTOFF[torch.float64],
            REDUCE=reduce,
            ROWS=rows,
            BLOCK=block,
            SINGLE=single,
            num_warps=_warps(2 * rows * block),
        )
    if not reduce:
        return out.reshape(target.shape)
    return _finish(target_out, n_rows if reduction == "mean" else 1, logits, finish_block)


def cross_entropy_backward(
    g: torch.Tensor,
    logits: torch.Tensor,
    target: torch.Tensor,
    axis: int,
    reduction: str,
    max_block: int = MAX_ROW_BLOCK,
) -> torch.Tensor:
    """The gradient in ``logits`` for the upstream ``g`` (a value an example, or one)."""
    xm, back = _rows_last(logits, (axis,))
    labels = target.contiguous().reshape(-1)
    out = torch.empty_like(xm)
    n_rows, n_cols = xm.shape
    if out.numel() == 0:
        return back(out)  # type: ignore[no-any-return]
    scalar = reduction != "none"
    gt = g.contiguous().reshape(-1)
    rows, block, single = _row_tiling(n_cols, max_block)
    compute = _compute_dtype(xm)
    launch(
        _cross_entropy_backward_kernel,
        (triton.cdiv(n_rows, rows),),
        _passes(single, 3) * _bytes(xm)
        + _bytes(labels, out)
        + (gt.element_size() if scalar else _bytes(gt)),
        xm,
        labels,
        gt,
        out,
        n_rows,
        n_cols,
        n_rows if reduction == "mean" else 1,
        G_SCALAR=scalar,
        CUTOFF=CUTOFF[compute],
        BOOST=BOOST[compute],
        F64=compute == torch.float64,
        ROWS=rows,
        BLOCK=block,
        SINGLE=single,
        num_warps=_warps(rows * block),
    )
    return back(out)  # type: ignore[no-any-return]


def _normalize(
    x: torch.Tensor, g: torch.Tensor | None, max_block: int = MAX_ROW_BLOCK
) -> torch.Tensor:
    x = x.contiguous()
    gt = x if g is None else g.contiguous()
    out = torch.empty_like(x)
    n_rows, n_cols = x.shape
    if out.numel() == 0:
        return out
    rows, block, single = _row_tiling(n_cols, max_block)
    scaled = x.dtype == torch.float64
    launch(
        _normalize_kernel,
        (triton.cdiv(n_rows, rows),),
        _passes(single, 3 if scaled else 2) * _bytes(x)
        + _passes(single, 2) * (_bytes(gt) if g is not None else 0)
        + _bytes(out),
        x,
        gt,
        out,
        n_rows,
        n_cols,
        BACKWARD=g is not None,
        SCALED=scaled,
        ROWS=rows,
        BLOCK=block,
        SINGLE=single,
        num_warps=_warps(rows * block),
    )
    return out


def normalize_rows(x: torch.Tensor, max_block: int = MAX_ROW_BLOCK) -> torch.Tensor:
    return _normalize(x, None, max_block)


def normalize_rows_backward(
    g: torch.Tensor, x: torch.Tensor, max_block: int = MAX_ROW_BLOCK
) -> torch.Tensor:
    """``(g − y·Σ g·y) / ‖x‖`` per row, with ``y`` the rows of ``x`` normalised."""
    return _normalize(x, g, max_block)


def loss(
    yhat: torch.Tensor,
    y: torch.Tensor,
    reduction: str,
    power: int,
    *,
    block: int = _LOSS_BLOCK,
    finish_block: int = _FINISH_BLOCK,
) -> torch.Tensor:
    """L1/L2 loss: one elementwise launch, or a reduction in two (blocks, then their sums)."""
    a, b = yhat.contiguous(), y.contiguous()
    n = a.numel()
    scaled = a.dtype == torch.float64
    if reduction == "none":
        out = torch.empty_like(a)
        if n:
            launch(
                _loss_elementwise_kernel,
                (triton.cdiv(n, _ELEMENTWISE_BLOCK),),
                _bytes(a, b, out),
                a,
                b,
                a,
                out,
                n,
                1,
                POWER=power,
                GRADIENT=False,
                G_SCALAR=False,
                SCALED=scaled,
                BLOCK=_ELEMENTWISE_BLOCK,
                num_warps=_warps(_ELEMENTWISE_BLOCK),
            )
        return out
    if n == 0:
        empty = 0.0 if reduction == "sum" else math.nan
        return torch.full((), empty, dtype=a.dtype, device=a.device)
    parts = triton.cdiv(n, block)
    sums = torch.empty(parts, dtype=torch.float64, device=a.device)
    scales = torch.empty(parts, dtype=torch.float64, device=a.device)
    launch(
        _loss_partial_kernel,
        (parts,),
        _bytes(a, b, sums, scales),
        a,
        b,
        sums,
        scales,
        n,
        POWER=power,
        SCALED=scaled,
        BLOCK=block,
        num_warps=_warps(block),
    )
    out = torch.empty((), dtype=a.dtype, device=a.device)
    launch(
        _loss_finish_kernel,
        (1,),
        _bytes(sums, scales, scales, out),  # the scales twice: their minimum, then each
        sums,
        scales,
        out,
        parts,
        n if reduction == "mean" else 1,
        POWER=power,
        SCALED=True,
        BLOCK=finish_block,
        num_warps=_warps(finish_block),
    )
    return out


def loss_backward(
    g: torch.Tensor, yhat: torch.Tensor, y: torch.Tensor, reduction: str, power: int
) -> torch.Tensor:
    """The gradient in ``yhat`` (that in ``y`` is its negative), for the upstream ``g``."""
    return _pair_gradient(
        _loss_elementwise_kernel,
        g,
        yhat,
        y,
        reduction,
        POWER=power,
        GRADIENT=True,
        SCALED=yhat.dtype == torch.float64,
        num_warps=_warps(_ELEMENTWISE_BLOCK),
    )


def _pair_gradient(
    kernel: Any,
    g: torch.Tensor,
    yhat: torch.Tensor,
    y: torch.Tensor | None,
    reduction: str,
    **constants: Any,
) -> torch.Tensor:
    """An elementwise loss's gradient in ``yhat`` by ``kernel(yhat, y, g, out, n, divisor)``:
    ``g`` one value an element, or (a reduced loss) one, over the count for a mean. ``y``
    None: the kernel reads none (``yhat`` stands in its place)."""
    a = yhat.contiguous()
    b = a if y is None else y.contiguous()
    n = a.numel()
    out = torch.empty_like(a)
    if n == 0:
        return out
    scalar = reduction != "none"
    gt = g.contiguous()
    launch(
        kernel,
        (triton.cdiv(n, _ELEMENTWISE_BLOCK),),
        _bytes(a, out)
        + (0 if y is None else _bytes(b))
        + (gt.element_size() if scalar else _bytes(gt)),
        a,
        b,
        gt,
        out,
        n,
        n if reduction == "mean" else 1,
        G_SCALAR=scalar,
        BLOCK=_ELEMENTWISE_BLOCK,
        **constants,
    )
    return out
