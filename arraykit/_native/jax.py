"""JAX fast paths: the formulas compiled, in shapes XLA fuses into few kernels.

Eager JAX dispatches each operation separately (tens of microseconds a call,
and a full-size temporary each); under ``jax.jit`` XLA fuses a formula into a
few passes. Inside a caller's own ``jit`` these are inlined.

The forms here differ from the generic formulas only where that lets XLA
fuse more, and never on data-dependent control flow: a ``lax.cond`` on the
values copies its predicate to the host on a GPU, once per call. Each is
held to the same references as the generic formula, and
``tests/test_gpu_costs.py`` holds each, in float32 with x64 on, to at most
three kernels in XLA's optimised program (docs/benchmark-records.md gives the
other dtypes' counts).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp

from .. import _formulas, _line, _log_space
from .._array_api import wider_sum_dtype


def _compensated_sum(x: Any, axes: tuple[int, ...]) -> Any:
    """``Σ x`` along the (non-negative) ``axes``, kept as length-1 axes, with
    the rounding error of every addition carried (TwoSum) and added back.

    For softmax's rows where there is no wider dtype to sum in (float64;
    float32 without x64, JAX's default): XLA's own sums of a row of 100 are
    up to 6 ulp off, and softmax passes that error on whole. (Its long sums
    are accurate; so are the row norms, whose square root halves it.) One
    variadic reduction of (sum, error) pairs, each pair's error exact
    whatever order XLA adds them in; slower than a plain sum, which XLA
    vectorises. The derivative is the plain sum's.
    """

    def add(a: Any, b: Any) -> Any:
        (s1, c1), (s2, c2) = a, b
        total = s1 + s2
        back = total - s1
        return total, c1 + c2 + ((s1 - (total - back)) + (s2 - back))

    zero = jnp.zeros((), x.dtype)
    # No tangent enters the reduction (JAX has no derivative for a custom one).
    constant = jax.lax.stop_gradient(x)
    total, error = jax.lax.reduce((constant, jnp.zeros_like(constant)), (zero, zero), add, axes)
    # Past the largest float (or NaN) the error is NaN: the sum says it all.
    accurate = jnp.where(jnp.isfinite(total), total + error, total)
    plain = jnp.sum(x, axis=axes)
    result = plain + jax.lax.stop_gradient(accurate - plain)
    return jnp.expand_dims(result, axes)


@jax.jit
def sigmoid(x: Any) -> Any:
    return _formulas.sigmoid(x, xp=jnp)


@jax.jit
def sigmoid_derivative(x: Any) -> Any:
    return _formulas.sigmoid_derivative(x, xp=jnp)


@jax.jit(static_argnums=1)
def softmax(x: Any, axes: tuple[int, ...]) -> Any:
    """Softmax with no data-dependent branch: float32 where float64 exists is the
    formula's (one fused kernel); otherwise the rows' TwoSum with selects below."""
    if wider_sum_dtype(jnp, x) is not None:
        return _formulas.softmax(x, axes, xp=jnp)
    return _softmax_twosum(x, axes)


def _softmax_twosum(x: Any, axes: tuple[int, ...]) -> Any:
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
    # No wider dtype to sum in here: XLA's own row sums would be 6 ulp off.
    return e / _compensated_sum(e, axes)


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
    """In one kernel for float32 where float64 exists; else in four, with a select."""
    if wider_sum_dtype(jnp, x) is not None:
        return _normalize_in_float64(x)
    return _normalize_scaled(x)


@jax.custom_jvp
def _normalize_in_float64(x: Any) -> Any:
    """float32 rows in float64, clamped at ±2**278 and scaled by 2**−278 (exact).

    The squares can then neither overflow nor underflow, for any float32
    row, and a row holding ±inf gives its limit without a select: the
    infinite entries become ±1 and share the norm, the finite ones fall
    below 2**−150 and round to 0. The clamp is two negated minimums (XLA's
    ``clamp`` would keep its CPU compiler from fusing the whole function).
    """
    beyond = 2.0**278
    z = -jnp.minimum(-jnp.minimum(x.astype(jnp.float64), beyond), beyond) * 2.0**-278
    total = jnp.sum(z * z, axis=-1, keepdims=True)
    return (z / jnp.sqrt(jnp.maximum(total, 2.0**-1022))).astype(x.dtype)


@_normalize_in_float64.defjvp
def _normalize_in_float64_jvp(primals: Any, tangents: Any) -> Any:
    # The Jacobian is symmetric: its product with a tangent is the backward
    # formula's (0 for zero rows, whose guard above has a huge slope).
    (x,), (t,) = primals, tangents
    return _normalize_in_float64(x), _formulas.normalize_rows_backward(t, x, xp=jnp)


def _normalize_scaled(x: Any) -> Any:
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
    total = jnp.sum(y * y, axis=-1, keepdims=True)  # within 3 ulp in XLA's order
    return y / jnp.sqrt(jnp.maximum(total, float(finfo.smallest_normal))).astype(y.dtype)


# The formula, compiled once per reduction and power: eagerly its operations would
# each dispatch on their own.
l1_loss = jax.jit(functools.partial(_formulas.loss, xp=jnp), static_argnums=(2, 3))

l2_loss = l1_loss  # the same compiled function; power selects the loss


# The line's closed form compiled once for every learning rate: eagerly its
# few dozen operations would each compile on first use.
line_descent = jax.jit(lambda *args: _line.descent_of(*args, xp=jnp), static_argnums=(8, 9))


# The log-space formulas, compiled once per static argument (axes, reduction):
# eagerly their few dozen operations would each dispatch on their own. Inside a
# caller's jit they are inlined, as the formula itself would be.
softplus = jax.jit(functools.partial(_log_space.softplus, xp=jnp))
log_sigmoid = jax.jit(functools.partial(_log_space.log_sigmoid, xp=jnp))
logsumexp = jax.jit(functools.partial(_log_space.logsumexp, xp=jnp), static_argnums=(1, 2))
log_softmax = jax.jit(functools.partial(_log_space.log_softmax, xp=jnp), static_argnums=(1,))
binary_cross_entropy = jax.jit(
    functools.partial(_log_space.binary_cross_entropy, xp=jnp), static_argnums=(2,)
)
binary_cross_entropy_with_logits = jax.jit(
    functools.partial(_log_space.binary_cross_entropy_with_logits, xp=jnp), static_argnums=(2,)
)
cross_entropy = jax.jit(
    functools.partial(_log_space.cross_entropy_indices, xp=jnp), static_argnums=(2, 3)
)
cross_entropy_probabilities = jax.jit(
    functools.partial(_log_space.cross_entropy_probabilities, xp=jnp), static_argnums=(2, 3)
)
