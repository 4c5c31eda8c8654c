"""The worst error of each path, in ulps, against the mpmath references.

``python -m tests.accuracy`` prints the table that docs/numerics.md records,
for the machine and build it runs on (the compiled kernels are built for
several instruction levels and pick the processor's best). The paths:

* ``compiled``: contiguous NumPy arrays, which the compiled kernels read;
* ``strided`` and ``Fortran order``: the same values in a strided view and in
  column-major memory (the kernels read a contiguous copy of those);
* ``numpy kernels``: NumPy's operations, which serve every array of a build
  without the compiled kernels;
* ``formula``: the generic formula, on array-api-strict (as on every backend
  without a fast path: CuPy, torch under forward mode and ``torch.func``).

The references are mpmath's; float64 errors are taken against the unrounded
value (the float64 reference and what its rounding left out), so they are
not whole numbers of ulps as against a rounded reference — except for
normalize_rows and the losses, whose references give the rounded value
only. Softmax is also measured over the first and a middle axis, where
every backend's sum runs across rows.
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


def _over_axis(axis: int) -> Callable[..., np.ndarray]:
    """The softmax reference over ``axis`` of an array of any rank."""

    def exact(x: np.ndarray, residual: bool = False) -> np.ndarray:
        moved = np.moveaxis(x, axis, -1)
        rows = reference.softmax_rows(moved.reshape(-1, moved.shape[-1]), residual)
        return np.moveaxis(rows.reshape(moved.shape), -1, axis)

    return exact


def _rounded_only(exact: Callable[[np.ndarray], np.ndarray]) -> Callable[..., np.ndarray]:
    """A reference without the residual: errors against its rounding (whole ulps)."""

    def reference_(x: np.ndarray, residual: bool = False) -> np.ndarray:
        value = exact(x)
        return np.zeros_like(value) if residual else value

    return reference_


def _named(function: Callable[..., Any], name: str) -> Callable[..., Any]:
    function.__name__ = name
    return function


def cases(dtype: str, n: int) -> Iterator[Case]:
    """(label, function, reference, input) for each measured function."""
    x = _elementwise_inputs(dtype, n)
    yield "sigmoid", ak.sigmoid, reference.sigmoid, x
    yield "sigmoid_derivative", ak.sigmoid_derivative, reference.sigmoid_derivative, x
    for label, rows in _softmax_rows(max(n // 40, 8)):
        yield f"softmax, {label}", ak.softmax, reference.softmax_rows, rows.astype(dtype)
    rng = np.random.default_rng(3)
    columns = rng.normal(0.0, 3.0, (700, 4)).astype(dtype)
    over_first = _named(lambda a: ak.softmax(a, axis=0), "softmax_axis_0")
    yield "softmax over axis 0, columns of 700", over_first, _over_axis(0), columns
    middle = rng.normal(0.0, 3.0, (7, 24, 13)).astype(dtype)
    over_middle = _named(lambda a: ak.softmax(a, axis=1), "softmax_axis_1")
    yield "softmax over axis 1 of (7, 24, 13)", over_middle, _over_axis(1), middle
    for length in (10, 100, 1000):
        rows = rng.normal(0.0, 3.0, (max(n // (4 * length), 4), length)).astype(dtype)
        normal = _rounded_only(reference.normalize_rows)
        yield f"normalize_rows, rows of {length}", ak.normalize_rows, normal, rows
    pairs = rng.normal(0.0, 1.0, (2, 4 * n)).astype(dtype)
    for power, name in ((1, "l1_loss"), (2, "l2_loss")):
        for reduction in ("sum", "mean"):
            loss = getattr(ak, name)
            function = _named(
                lambda a, f=loss, r=reduction: f(a[0, ...], a[1, ...], reduction=r),
                f"{name}_{reduction}",
            )
            exact = _rounded_only(lambda a, p=power, r=reduction: reference.loss(a[0], a[1], p, r))
            yield f"{name}, reduction {reduction}, {4 * n} pairs", function, exact, pairs


def _strided(x: np.ndarray) -> np.ndarray:
    """The same values in a view the compiled kernels do not read."""
    wide = np.repeat(x, 2, axis=-1)
    return wide[..., ::2]


def paths(function: Callable[..., Any], x: np.ndarray) -> dict[str, np.ndarray]:
    """The function's results on each path, as NumPy arrays."""
    import array_api_strict as strict

    from arraykit._native import numpy as kernels

    formula = function(strict.asarray(x))
    results = {
        "compiled": np.asarray(function(x)),
        "strided": np.asarray(function(_strided(x))),
        "Fortran order": np.asarray(function(np.asfortranarray(x))),
    }
    saved = dict(kernels.COMPILED_UP_TO)
    try:
        kernels.COMPILED_UP_TO.update(dict.fromkeys(saved, 0))  # as a build without them
        results["numpy kernels"] = np.asarray(function(x))
    finally:
        kernels.COMPILED_UP_TO.update(saved)
    results["formula"] = np.asarray(strict.asarray(formula, copy=True)._array)
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
        "# paths: compiled = contiguous NumPy arrays (and torch CPU tensors); strided, "
        "Fortran order = those layouts; numpy kernels = builds without the compiled "
        "kernels; formula = the generic "
        "formula (array-api-strict, CuPy, torch under forward mode)"
    )


if __name__ == "__main__":
    main()
