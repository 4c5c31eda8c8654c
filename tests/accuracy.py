"""The worst error of each path, in ulps, against the mpmath references.

``python -m tests.accuracy`` prints the table that docs/numerics.md records,
for the machine and build it runs on (the compiled kernels are built for
several instruction levels and pick the processor's best). The paths:

* ``compiled``: NumPy arrays the compiled kernels read (contiguous);
* ``numpy kernels``: a strided view, which they do not read, so NumPy's
  operations serve (as they serve every array of a build without the
  compiled kernels);
* ``formula``: the generic formula, on array-api-strict (as on every backend
  without a fast path: CuPy, torch under forward mode and ``torch.func``).

The references are mpmath's; float64 errors are taken against the unrounded
value (the float64 reference and what its rounding left out), so they are
not whole numbers of ulps as against a rounded reference.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

import arraykit as ak

from . import reference
from .assertions import ulp, ulp_error

Case = tuple[str, Callable[..., Any], Callable[[np.ndarray], np.ndarray], np.ndarray]


def _elementwise_inputs(dtype: str, n: int) -> np.ndarray:
    rng = np.random.default_rng(7)
    spread = reference.finite_values(dtype, n, seed=7).astype(dtype)
    near = rng.uniform(-20.0, 20.0, n).astype(dtype)  # where both tails meet
    return np.concatenate([spread, near])


def _softmax_rows(n: int) -> Iterator[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    yield "rows of 8 in [-60, 60]", rng.uniform(-60.0, 60.0, (n, 8))
    for length in (5, 8, 16, 37, 100):
        for scale in (1.0, 30.0, 300.0):
            yield f"rows of {length}, scale {scale:g}", rng.normal(0.0, scale, (n, length))


def cases(dtype: str, n: int) -> Iterator[Case]:
    """(label, function, reference, input) for each measured function."""
    x = _elementwise_inputs(dtype, n)
    yield "sigmoid", ak.sigmoid, reference.sigmoid, x
    yield "sigmoid_derivative", ak.sigmoid_derivative, reference.sigmoid_derivative, x
    for label, rows in _softmax_rows(max(n // 40, 8)):
        yield f"softmax, {label}", ak.softmax, reference.softmax_rows, rows.astype(dtype)


def _strided(x: np.ndarray) -> np.ndarray:
    """The same values in a view the compiled kernels do not read."""
    wide = np.repeat(x, 2, axis=-1)
    return wide[..., ::2]


def paths(function: Callable[..., Any], x: np.ndarray) -> dict[str, np.ndarray]:
    """The function's results on each path, as NumPy arrays."""
    import array_api_strict as strict

    formula = function(strict.asarray(x))
    results = {
        "compiled": np.asarray(function(x)),
        "numpy kernels": np.asarray(function(_strided(x))),
        "formula": np.asarray(strict.asarray(formula, copy=True)._array),
    }
    peer = _SCIPY.get(function.__name__)
    if peer is not None:
        import scipy.special

        results["SciPy (peer)"] = np.asarray(getattr(scipy.special, peer)(x, axis=-1))
    return results


_SCIPY = {"softmax": "softmax"}
"""The functions measured beside SciPy's own (README's table)."""


def measure(n: int = 4000) -> list[dict[str, Any]]:
    """One row per function, dtype and path: the worst error where the result is normal."""
    rows = []
    for dtype in ("float32", "float64"):
        tiny = float(np.finfo(dtype).tiny)
        for label, function, exact, x in cases(dtype, n):
            desired = exact(x.astype(np.float64))
            left_out = exact(x.astype(np.float64), residual=True)
            normal = np.abs(desired) >= tiny
            for path, got in paths(function, x).items():
                error = ulp_error(got, desired, dtype)
                if dtype == "float64":  # |got − (desired + left_out)|, ulp for ulp
                    error = np.abs((got - desired) - left_out) / ulp(desired, dtype)
                rows.append(
                    {
                        "function": label,
                        "dtype": dtype,
                        "path": path,
                        "worst_ulp": float(error[normal].max()),
                    }
                )
    return rows


def machine() -> str:
    """The processor and the instruction level the compiled kernels run at here."""
    flags = ""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("flags"):
                    flags = line
                    break
    except OSError:
        pass
    level = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "baseline"
    return f"{platform.processor() or platform.machine()}, {level}"


def main() -> None:
    print(f"# worst error in ulps on {machine()}")
    print(f"{'function':<34} {'dtype':<8} {'path':<14} {'worst ulp':>9}")
    for row in measure():
        print(f"{row['function']:<34} {row['dtype']:<8} {row['path']:<14} {row['worst_ulp']:>9.2f}")
    print(
        "# paths: compiled = contiguous NumPy arrays (and torch CPU tensors); numpy kernels = "
        "other layouts, and builds without the compiled kernels; formula = the generic "
        "formula (array-api-strict, CuPy, torch under forward mode)"
    )


if __name__ == "__main__":
    main()
