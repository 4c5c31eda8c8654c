"""NumPy fast paths.

Large-array time on NumPy is dominated by allocating full-size temporaries,
not by arithmetic, so these compute in one array they allocate themselves,
in place. NumPy's own warnings for an intermediate that overflows to a
harmless inf are silenced only where the final result is still exact.
"""

from __future__ import annotations

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
