"""The line y = b + w·x, fitted from its data's moments: the formulas, once.

The loss is the mean squared error L(b, w) = mean((y − (b + w·x))²). It
depends on the data only through a few moments, and its gradient is affine
in (b, w): ∇L(θ) = r + H·(θ − θ*), with θ* the least-squares optimum,
H = 2·[[1, x̄], [x̄, mean(x²)]] and r the (rounding-size) gradient at θ*.
Everything here takes those moments: the loss anywhere, and gradient
descent's whole trajectory in closed form. This module imports no public
module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import array_api_compat

from ._array_api import Array, Namespace
from ._formulas import log_one_minus

FIELDS = ("mean_x", "var_x", "optimum", "loss_at_optimum", "residual_mean", "residual_x_mean")


@dataclass(frozen=True)
class Moments:
    """What L depends on, centred so that nothing cancels badly."""

    xp: Any
    mean_x: Array
    var_x: Array
    optimum: Array  # [b*, w*]
    loss_at_optimum: Array
    residual_mean: Array  # mean(e), e = y - b* - w*·x: 0 but for rounding
    residual_x_mean: Array  # mean(e·x), likewise


def loss(m: Moments, b: Array, w: Array) -> Array:
    # L(b, w) = mean((e - db - dw·x)^2), expanded around the optimum: every
    # term but the (rounding-size) cross terms is non-negative, so the
    # surface keeps full accuracy near its minimum.
    db, dw = b - m.optimum[0], w - m.optimum[1]
    shift = db + dw * m.mean_x
    return (
        m.loss_at_optimum
        + shift * shift
        + dw * dw * m.var_x
        - 2.0 * (db * m.residual_mean + dw * m.residual_x_mean)
    )


def power_tables(h: Array, every: int, count: int, xp: Namespace) -> tuple[Array, Array, Array]:
    """``(1 − h)**t`` at ``t = 0, every, 2·every, ...`` (``count`` times), ``h >= 0``, as tables.

    The power at ``t = (j·block + k)·every`` is ``high[j]·low[k]``: two short
    tables, each entry an ``exp`` of an exact integer times the base's
    logarithm, so that a series ``c·(1 − h)**t`` costs one product per entry
    (:func:`series`), with no error that grows with t. The logarithm keeps the
    digits of small ``h`` (small learning rates) that forming ``1 − h`` first would
    lose, and that matter over 100,000 steps. For ``h > 1`` the base is negative and
    its sign alternates.

    Also returns the index of the first power past a quarter of the float
    range's exponent, from where a trajectory is reported as diverged (inf).
    Each table entry is capped there, so no product of two overflows, nor
    the loss (quadratic in the powers).
    """
    below = h < 1
    limit = math.log(float(xp.finfo(h.dtype).max)) / 4 - 5.0
    # Capped past the limit (so that the power at t = 1 is still past it): an
    # infinite h (a rate beyond the float range) would make 0·inf at t = 0.
    log_magnitude = xp.clip(
        xp.where(
            below, log_one_minus(xp.where(below, h, 0.0), xp), xp.log(xp.where(h > 1, h - 1.0, 1.0))
        ),
        max=2.0 * limit,
    )
    block = math.isqrt(max(count - 1, 0)) + 1
    device = array_api_compat.device(h)

    def table(length: int, stride: int) -> Array:
        t = xp.arange(0, length * stride, stride, dtype=h.dtype, device=device)
        value = xp.exp(xp.clip(t * log_magnitude, max=limit))
        value = xp.where(h == 1, xp.astype(t == 0, value.dtype), value)  # 0**0 = 1
        return xp.where((h > 1) & ((t % 2) == 1), -value, value)

    growing = log_magnitude > 0
    rate = every * xp.where(growing, log_magnitude, 1.0)
    first = xp.where(growing, xp.floor(limit / rate) + 1.0, float(count))
    return table(-(-count // block), block * every), table(block, every), first


def series(count: int, xp: Namespace, *terms: tuple[Array, Array, Array]) -> Array:
    """``Σ c·high[j]·low[k]`` over ``(c, high, low)`` terms, flattened to ``count`` entries."""
    flat = [xp.reshape((c * high)[:, None] * low[None, :], (-1,))[:count] for c, high, low in terms]
    total = flat[0]
    for more in flat[1:]:
        total = total + more
    return total


def descent(m: Moments, lr: float, start: Array, every: int, count: int) -> tuple[Array, Array]:
    """θ_t and L(θ_t) of full-batch gradient descent, at ``t = 0, every, ...``.

    θ_{t+1} − θ_f = M·(θ_t − θ_f) with M = I − lr·H and θ_f the fixed point
    of the gradient; in H's eigenbasis that is a power of each eigenvalue.
    """
    xp = m.xp
    a, var = m.mean_x, m.var_x
    q = var + a * a  # mean(x²)
    # θ_f = θ* − H⁻¹ r; H⁻¹ = [[q, −a], [−a, 1]] / (2·var), since det = var.
    r0, r1 = -2.0 * m.residual_mean, -2.0 * m.residual_x_mean
    # Where x is constant (var = 0) H is singular and the optimum already one
    # of the minima; the step then leaves the component along H's null
    # space as it is (its eigenvalue is 0).
    varies = var > 0
    fixed = m.optimum - xp.where(
        varies, xp.stack([q * r0 - a * r1, r1 - a * r0]) / (2.0 * xp.where(varies, var, 1.0)), 0.0
    )
    # Eigenvalues of [[1, a], [a, q]] (H/2); the small one as det / large,
    # which does not cancel.
    d = q - 1.0
    root = xp.sqrt(d * d + 4.0 * a * a)
    large = (1.0 + q + root) / 2.0
    small = var / large
    # Its eigenvector, from whichever form does not cancel.
    u0 = xp.where(d >= 0, a, (root - d) / 2.0)
    u1 = xp.where(d >= 0, (d + root) / 2.0, a)
    norm = xp.sqrt(u0 * u0 + u1 * u1)
    u0, u1 = u0 / norm, u1 / norm
    delta = start - fixed
    c_large = u0 * delta[0] + u1 * delta[1]
    c_small = -u1 * delta[0] + u0 * delta[1]
    high_l, low_l, first_l = power_tables(2.0 * lr * large, every, count, xp)
    high_s, low_s, first_s = power_tables(2.0 * lr * small, every, count, xp)
    # θ_t = θ_f + c_l·λ_l^t·u + c_s·λ_s^t·u⊥, one coordinate at a time (NumPy
    # broadcasts slowly along an axis of length 2), each a sum of two series.
    b = fixed[0] + series(count, xp, (u0 * c_large, high_l, low_l), (-u1 * c_small, high_s, low_s))
    w = fixed[1] + series(count, xp, (u1 * c_large, high_l, low_l), (u0 * c_small, high_s, low_s))
    total = loss(m, fixed[0], fixed[1]) + series(
        count,
        xp,
        (large * c_large * c_large, high_l * high_l, low_l * low_l),
        (small * c_small * c_small, high_s * high_s, low_s * low_s),
    )
    index = xp.arange(count, dtype=b.dtype, device=array_api_compat.device(b))
    diverging = index >= xp.minimum(first_l, first_s)
    # Row 0 is the start itself, not the sum of its parts in the eigenbasis.
    start_row = index == 0
    b = xp.where(start_row, start[0], xp.where(diverging, math.inf, b))
    w = xp.where(start_row, start[1], xp.where(diverging, math.inf, w))
    total = xp.where(start_row, loss(m, start[0], start[1]), xp.where(diverging, math.inf, total))
    return xp.stack([b, w], axis=-1), total


def descent_of(
    mean_x: Array,
    var_x: Array,
    optimum: Array,
    loss_at_optimum: Array,
    residual_mean: Array,
    residual_x_mean: Array,
    start: Array,
    lr: Any,
    every: int,
    count: int,
    /,
    *,
    xp: Namespace,
) -> tuple[Array, Array]:
    """:func:`descent` from the moments as arrays (in :data:`FIELDS`' order)."""
    m = Moments(xp, mean_x, var_x, optimum, loss_at_optimum, residual_mean, residual_x_mean)
    return descent(m, lr, start, every, count)
