"""JAX fast paths: the generic twins, compiled, and a leaner softmax.

Eager JAX dispatches each operation separately (tens of microseconds a call,
and a full-size temporary each); under ``jax.jit`` XLA fuses the whole
formula into one pass. Inside a caller's own ``jit`` these are inlined.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from .. import _formulas, _line


@jax.jit
def sigmoid(x: Any) -> Any:
    return _formulas.sigmoid(x, xp=jnp)


@jax.jit
def sigmoid_derivative(x: Any) -> Any:
    return _formulas.sigmoid_derivative(x, xp=jnp)


@jax.jit
def normalize_rows(x: Any) -> Any:
    return _formulas.normalize_rows(x, xp=jnp)


@jax.jit(static_argnums=1)
def softmax(x: Any, axes: tuple[int, ...]) -> Any:
    """The generic twin's formula without its guards, where no guard is needed.

    The guards for ±inf, NaN and differences that overflow cost XLA as much as
    the softmax itself (their selects keep it from fusing the passes). One
    cheap test of the whole array (finite maxima, and no difference past the
    largest float) picks this lean form, or the generic twin, under
    ``lax.cond``; both give the same results on finite inputs.
    """
    finfo = jnp.finfo(x.dtype)
    # As in the generic twin: exponentials scaled so that the correction stays
    # a normal number, for XLA flushes subnormals to zero.
    boost = 2.0 ** (round(-math.log2(float(finfo.eps))) + 4)
    m = jnp.max(x, axis=axes, keepdims=True)
    plain = jnp.all(jnp.isfinite(m)) & (jnp.max(m) - jnp.min(x) <= float(finfo.max))

    def lean() -> Any:
        s = x - m
        back = s - x
        err = (x - (s - back)) + (-m - back)  # TwoSum: the rounding error of s
        e = jnp.exp(s) * boost
        return _formulas.divide_by_sum(e + e * err, axes, xp=jnp)

    return jax.lax.cond(plain, lean, lambda: _formulas.softmax(x, axes, xp=jnp))


@jax.jit(static_argnums=(2, 3))
def l1_loss(yhat: Any, y: Any, reduction: str, power: int) -> Any:
    return _formulas.loss(yhat, y, reduction, power, xp=jnp)


l2_loss = l1_loss  # the same compiled function; power selects the loss


# The line's closed form compiled once for every learning rate: eagerly its
# few dozen operations would each compile on first use.
line_descent = jax.jit(lambda *args: _line.descent_of(*args, xp=jnp), static_argnums=(8, 9))
