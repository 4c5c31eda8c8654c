"""JAX fast paths: the formulas compiled, in shapes XLA fuses into few kernels.

Eager JAX dispatches each operation separately (tens of microseconds a call,
and a full-size temporary each); under ``jax.jit`` XLA fuses a formula into a
few passes. Inside a caller's own ``jit`` these are inlined.

The forms here differ from the generic formulas only where that lets XLA
fuse more, and never on data-dependent control flow: a ``lax.cond`` on the
values copies its predicate to the host on a GPU, once per call. Each is
held to the same references as the generic formula, and
``tests/test_gpu_costs.py`` holds each to at most three kernels in XLA's
optimised program.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from .. import _formulas, _line
from .._array_api import wider_sum_dtype


@jax.jit
def sigmoid(x: Any) -> Any:
    return _formulas.sigmoid(x, xp=jnp)


@jax.jit
def sigmoid_derivative(x: Any) -> Any:
    return _formulas.sigmoid_derivative(x, xp=jnp)


@jax.jit(static_argnums=1)
def softmax(x: Any, axes: tuple[int, ...]) -> Any:
    """The generic formula's arithmetic with its guards as selects, not clips.

    XLA fuses selects into the passes around them, where the generic form's
    clips and halves cost it separate passes. The shift is the row maximum
    itself, so ``x − m`` can overflow (for ``x`` far below a large ``m``):
    there ``exp`` is 0 anyway, and the select keeps the error term's NaN out.
    """
    finfo = jnp.finfo(x.dtype)
    cutoff = 1.0 - math.log(float(finfo.smallest_normal) * float(finfo.eps))
    m = jnp.max(x, axis=axes, keepdims=True)
    finite = jnp.isfinite(m)
    shift = jnp.where(finite, m, 0.0)
    s = x - shift
    back = s - x
    err = (x - (s - back)) + (-shift - back)  # TwoSum: the rounding error of s
    e = jnp.exp(s) * _formulas.softmax_boost(finfo)
    e = e + e * jnp.where(s > -cutoff, err, 0.0)
    # Slices whose maximum is ±inf or NaN take their limit, as in the formula.
    at_max = (x == m).astype(x.dtype)
    e = jnp.where(finite, e, at_max + jnp.where(jnp.isnan(m), m, 0.0))
    return _formulas.divide_by_sum(e, axes, xp=jnp)


def _power_of_two_near(c: Any) -> Any:
    """``c`` (positive, normal) rounded to one significant bit: a power of two.

    Veltkamp's split with all but one bit in the low part. Multiplications
    and subtractions only: XLA fuses them into the passes around them, where
    ``log2``/``floor`` cost it separate passes.
    """
    t = c * (2.0 ** jnp.finfo(c.dtype).nmant + 1.0)
    return t - (t - c)


@jax.jit
def normalize_rows(x: Any) -> Any:
    """The generic formula with one exact power-of-two scale per row, built arithmetically."""
    finfo = jnp.finfo(x.dtype)
    largest = jnp.maximum(jnp.max(x, axis=-1, keepdims=True), -jnp.min(x, axis=-1, keepdims=True))
    finite = jnp.isfinite(largest)
    # The scale is near 16 / largest: scaled rows peak between 8 and 32, and
    # neither 16 / largest nor the scale is ever subnormal (which XLA
    # flushes to 0). The floor keeps Veltkamp's product finite; rows below
    # it still scale their squares well clear of underflow, and a zero row
    # stays zero whatever its scale.
    floor = 2.0 ** -(finfo.maxexp - finfo.nmant - 8)
    scale = _power_of_two_near(16.0 / jnp.maximum(largest, floor))
    # Rows holding ±inf or NaN: their limits, normalised below as in the formula.
    sign = 2.0 * (x > 0).astype(x.dtype) - 1.0
    limit = jnp.where(jnp.abs(x) == largest, sign, jnp.where(jnp.isnan(largest), largest, 0.0))
    # The result does not depend on the scale: no derivative flows through it.
    y = jnp.where(finite, x * jax.lax.stop_gradient(scale), limit)
    squares = jnp.square(y.astype(wider_sum_dtype(jnp, y) or y.dtype))
    total = jnp.sum(squares, axis=-1, keepdims=True)
    return y / jnp.sqrt(jnp.maximum(total, float(finfo.smallest_normal))).astype(y.dtype)


@jax.jit(static_argnums=(2, 3))
def l1_loss(yhat: Any, y: Any, reduction: str, power: int) -> Any:
    wide = wider_sum_dtype(jnp, yhat)
    if wide is None:
        return _formulas.loss(yhat, y, reduction, power, xp=jnp)
    # float32 in float64: differences and their squares can neither overflow
    # nor underflow there, so no scaling pass is needed.
    error = jnp.abs(yhat.astype(wide) - y.astype(wide))
    terms = error if power == 1 else error * error
    if reduction != "none":
        terms = jnp.sum(terms)
        if reduction == "mean":
            terms = terms / _formulas.element_count(yhat)
    return terms.astype(yhat.dtype)


l2_loss = l1_loss  # the same compiled function; power selects the loss


# The line's closed form compiled once for every learning rate: eagerly its
# few dozen operations would each compile on first use.
line_descent = jax.jit(lambda *args: _line.descent_of(*args, xp=jnp), static_argnums=(8, 9))
