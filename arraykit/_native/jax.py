"""JAX fast paths: the generic twins themselves, compiled.

Eager JAX dispatches each operation separately (tens of microseconds a call,
and a full-size temporary each); under ``jax.jit`` XLA fuses the whole
formula into one pass. Inside a caller's own ``jit`` these are inlined.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from ..activations import _sigmoid, _sigmoid_derivative, _softmax
from ..losses import _generic_loss
from ..normalization import _normalize_rows


@jax.jit
def sigmoid(x: Any) -> Any:
    return _sigmoid(x, jnp)


@jax.jit
def sigmoid_derivative(x: Any) -> Any:
    return _sigmoid_derivative(x, jnp)


@jax.jit
def normalize_rows(x: Any) -> Any:
    return _normalize_rows(x, jnp)


@jax.jit(static_argnums=1)
def softmax(x: Any, axes: tuple[int, ...]) -> Any:
    return _softmax(x, axes, jnp)


@jax.jit(static_argnums=(2, 3))
def l1_loss(yhat: Any, y: Any, reduction: str, power: int) -> Any:
    return _generic_loss(yhat, y, reduction, power, jnp)


l2_loss = l1_loss  # the same compiled function; power selects the loss
