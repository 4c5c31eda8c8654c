"""NumPy fast paths.

Large-array time on NumPy is dominated by allocating full-size temporaries,
not by arithmetic, so these compute in one array they allocate themselves,
in place. NumPy's own warnings for an intermediate that overflows to a
harmless inf are silenced only where the final result is still exact.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np


def sigmoid(x: np.ndarray) -> np.ndarray:
    # 1/(1 + exp(-x)) is accurate to ~2 ulp down to the subnormal range; its
    # only flaw is the overflow of exp(-x) for x < -709 (float64), after
    # which 1/(1 + inf) = 0 is the right answer.
    out: np.ndarray = np.negative(x, out=np.empty_like(x))
    with np.errstate(over="ignore"):
        np.exp(out, out=out)
    out += 1.0
    np.reciprocal(out, out=out)
    return out


def adagrad_line(
    moments: Any,
    start: np.ndarray,
    lr: float,
    steps: int,
    record_every: int,
    stop_on_divergence: bool,
    sync_every: int,
    progress: Callable[[int, int], None] | None,
    eps: float = 1e-10,
    initial_accumulator_value: float = 0.0,
    lr_decay: float = 0.0,
    weight_decay: float = 0.0,
) -> tuple[np.ndarray, int, bool]:
    """Adagrad on the line's two parameters, in Python floats.

    The same recurrence as ``optim.adagrad`` stepping ``regression``'s
    gradient ``r + H·(θ − θ*)``, operation for operation, for float64: on two
    numbers a NumPy call costs ~1 µs, ten times the arithmetic it does.
    Returns the recorded iterates (and the final one, last), the steps
    taken, and whether the parameters stopped being finite.
    """
    b_opt, w_opt = (float(v) for v in moments.optimum)
    mean_x, var_x = float(moments.mean_x), float(moments.var_x)
    h00, h01, h11 = 2.0, 2.0 * mean_x, 2.0 * (var_x + mean_x * mean_x)
    r0, r1 = -2.0 * float(moments.residual_mean), -2.0 * float(moments.residual_x_mean)
    b, w = (float(v) for v in start)
    s0 = s1 = float(initial_accumulator_value)
    records = [(b, w)]
    diverged, taken = False, 0
    for taken in range(1, steps + 1):
        d0, d1 = b - b_opt, w - w_opt
        g0 = r0 + (h00 * d0 + h01 * d1)
        g1 = r1 + (h01 * d0 + h11 * d1)
        if weight_decay:
            g0, g1 = g0 + weight_decay * b, g1 + weight_decay * w
        clr = lr if lr_decay == 0 else lr / (1 + (taken - 1) * lr_decay)
        s0 += g0 * g0
        s1 += g1 * g1
        std0, std1 = math.sqrt(s0) + eps, math.sqrt(s1) + eps
        b += -clr * (g0 / (std0 if std0 > 0 else 1.0))
        w += -clr * (g1 / (std1 if std1 > 0 else 1.0))
        if taken % record_every == 0:
            records.append((b, w))
        if taken % sync_every == 0 or taken == steps:
            if progress is not None:
                progress(taken, steps)
            if not (math.isfinite(b) and math.isfinite(w)):
                diverged = True
                if stop_on_divergence:
                    break
    records.append((b, w))
    return np.array(records), taken, diverged
