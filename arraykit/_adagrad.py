"""Adagrad on the line: the loop of :func:`arraykit._updates.adagrad_step` over two numbers.

The line y = b + w·x is fitted from six moments of its data, in this order:
``mean(x)``, ``var(x)``, the optimum ``b*``, ``w*``, and the means of the
residual ``e`` and of ``e·x`` at the optimum (0 but for rounding); its
gradient is ``r + H·(θ − θ*)`` with ``H = 2·[[1, x̄], [x̄, var + x̄²]]`` and
``r = −2·[mean(e), mean(e·x)]``. This module imports no public module.
"""

from __future__ import annotations

import math
from array import array

import array_api_compat
import numpy as np

from ._array_api import NUMPY_XP, Array, Namespace, host_copy
from ._native import compiled  # None where not built: the loop in Python
from ._updates import LEAFWISE, adagrad_step, learning_rate

MOMENTS = ("mean_x", "var_x", "b_opt", "w_opt", "residual_mean", "residual_x_mean")
"""The moments' order in the vector the line's loops take."""

DIVERGENCE_CHECK = 1000
"""Steps between the Python-float loop's looks at whether it still is finite."""


def line_gradient(moments: Array, xp: Namespace) -> tuple[Array, Array]:
    """The line's Hessian (2 × 2) and the gradient at the optimum (2,)."""
    a, var = moments[0], moments[1]
    one = xp.ones_like(a)
    hessian = 2.0 * xp.stack([xp.stack([one, a]), xp.stack([a, var + a * a])])
    return hessian, -2.0 * moments[4:6]


def line_adagrad(
    moments: Array,
    start: Array,
    steps: int,
    every: int,
    lr: float,
    eps: float,
    initial: float,
    decay: float,
    penalty: float,
    /,
    *,
    xp: Namespace,
) -> Array:
    """Adagrad on the line from ``start``: the iterates at ``t = 0, every, ...``, then the last.

    Shape ``(steps // every + 2, 2)``. Once the iterates stop being finite
    the rest are NaN. On two numbers an array operation costs far more than
    the arithmetic it does, on a GPU most of all: the loop runs on the host,
    fed by the moments and the start (copied there once, the path back once),
    in the data's own precision: compiled where the C kernels were built, else
    in Python floats (float64) or NumPy scalars' arrays (float32). Other
    dtypes step in array operations on the arrays' own device.
    """
    if moments.dtype not in (xp.float32, xp.float64):
        return line_adagrad_stepped(
            moments, start, steps, every, lr, eps, initial, decay, penalty, xp=xp
        )
    host_moments, host_start = host_copy(moments), host_copy(start)
    path = np.empty((steps // every + 2, 2), dtype=host_moments.dtype)
    options = (lr, eps, initial, decay, penalty)
    if compiled is None or not compiled.line_adagrad(
        host_moments, host_start, path, steps, every, *options, DIVERGENCE_CHECK
    ):
        if host_moments.dtype == np.float64:
            floats = [float(v) for v in host_moments]
            start_floats = (float(host_start[0]), float(host_start[1]))
            path = _line_adagrad_floats(floats, start_floats, steps, every, *options)
        else:
            # A diverging run overflows: the path reports it (NaN), not a warning.
            with np.errstate(over="ignore", invalid="ignore"):
                path = line_adagrad_stepped(
                    host_moments, host_start, steps, every, *options, xp=NUMPY_XP
                )
    return xp.asarray(path, dtype=start.dtype, device=array_api_compat.device(start))


def _line_adagrad_floats(
    moments: list[float],
    start: tuple[float, float],
    steps: int,
    every: int,
    lr: float,
    eps: float,
    initial: float,
    decay: float,
    penalty: float,
) -> np.ndarray:
    """:func:`line_adagrad` in Python floats, operation for operation."""
    mean_x, var_x, b_opt, w_opt, e_mean, ex_mean = moments
    h00, h01, h11 = 2.0, 2.0 * mean_x, 2.0 * (var_x + mean_x * mean_x)
    r0, r1 = -2.0 * e_mean, -2.0 * ex_mean
    b, w = start
    s0 = s1 = initial
    records = array("d", (b, w))
    count = steps // every + 1
    for taken in range(1, steps + 1):
        d0, d1 = b - b_opt, w - w_opt
        g0 = r0 + (h00 * d0 + h01 * d1)
        g1 = r1 + (h01 * d0 + h11 * d1)
        if penalty:
            g0, g1 = g0 + penalty * b, g1 + penalty * w
        clr = learning_rate(lr, decay, taken)
        s0 += g0 * g0
        s1 += g1 * g1
        std0, std1 = math.sqrt(s0) + eps, math.sqrt(s1) + eps
        b += -clr * (g0 / (std0 if std0 > 0 else 1.0))
        w += -clr * (g1 / (std1 if std1 > 0 else 1.0))
        if taken % every == 0:
            records.extend((b, w))
        if taken % DIVERGENCE_CHECK == 0 and not (math.isfinite(b) and math.isfinite(w)):
            b = w = math.nan
            break
    records.extend([math.nan] * (2 * (count - len(records) // 2)))
    records.extend((b, w))
    return np.frombuffer(records, dtype=np.float64).reshape(-1, 2)


def line_adagrad_stepped(
    moments: Array,
    start: Array,
    steps: int,
    every: int,
    lr: float,
    eps: float,
    initial: float,
    decay: float,
    penalty: float,
    /,
    *,
    xp: Namespace,
) -> Array:
    """:func:`line_adagrad` in array operations, step by step (differentiable)."""
    hessian, residual = line_gradient(moments, xp)
    optimum = moments[2:4]
    theta, s = start, xp.full_like(start, initial)
    records = [theta]
    for taken in range(1, steps + 1):
        g = residual + hessian @ (theta - optimum)
        (theta,), (s,) = adagrad_step(LEAFWISE, [theta], [g], [s], [taken], lr, eps, decay, penalty)
        if taken % every == 0:
            records.append(theta)
    records.append(theta)
    return xp.stack(records)
