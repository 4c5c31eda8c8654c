"""±inf, NaN, empty arrays, and values whose textbook formulas overflow (beyond the
special values each operation declares in the registry: ``tests/test_operations.py``).

Expected values are exact by mathematics (the documented limits), so each
check holds to the last bit. Any warning fails the test (filterwarnings).
"""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest

import arraykit as ak
from backends import Backend

from .assertions import assert_close

inf, nan = math.inf, math.nan


def test_softmax_large_inputs_are_exact(xb: Backend) -> None:
    x = xb.asarray(np.array([1000.0, 1001.0]), "float64")
    e = math.exp(-1.0)
    assert_close(ak.softmax(x), [e / (1 + e), 1 / (1 + e)], xb, "float64", ulps=1)


def test_softmax_extreme_finite_rows(xb: Backend) -> None:
    big = float(np.finfo(np.float64).max)
    x = xb.asarray(np.array([[big, -big], [-big, -big]]), "float64")
    assert_close(ak.softmax(x), [[1.0, 0.0], [0.5, 0.5]], xb, "float64", ulps=0)


@pytest.mark.parametrize("shape", [(0,), (0, 3), (3, 0), (2, 0, 4)])
def test_softmax_empty(xb: Backend, shape: tuple[int, ...]) -> None:
    x = xb.asarray(np.zeros(shape), "float32")
    assert_close(ak.softmax(x), np.zeros(shape), xb, "float32", ulps=0)


def test_softmax_single_element_slices(xb: Backend) -> None:
    x = xb.asarray(np.array([[3.0], [-inf], [nan]]), "float64")
    assert_close(ak.softmax(x, axis=1), [[1.0], [1.0], [nan]], xb, "float64", ulps=0)
    assert_close(
        ak.softmax(xb.asarray(np.array(2.5), "float64"), axis=None), 1.0, xb, "float64", ulps=0
    )


@pytest.mark.parametrize("magnitude", [1e-30, 1e-20, 1e20, 1e30])
def test_normalize_rows_tiny_and_huge_float32(xb: Backend, magnitude: float) -> None:
    rows = np.array([[3.0, 4.0], [1.0, 0.0], [-5.0, 12.0]]) * magnitude
    x = xb.asarray(rows, "float32")
    exact = xb.to_numpy(x).astype(np.float64)
    desired = exact / np.sqrt((exact**2).sum(axis=1, keepdims=True))  # exact in float64 here
    assert_close(ak.normalize_rows(x), desired, xb, "float32")


@pytest.mark.parametrize("shape", [(0, 3), (3, 0)])
def test_normalize_rows_empty(xb: Backend, shape: tuple[int, int]) -> None:
    x = xb.asarray(np.zeros(shape), "float64")
    assert_close(ak.normalize_rows(x), np.zeros(shape), xb, "float64", ulps=0)


@pytest.mark.parametrize("function", [ak.l1_loss, ak.l2_loss])
def test_losses_of_empty_arrays(xb: Backend, function: object) -> None:
    empty = xb.asarray(np.zeros((0, 2)), "float64")
    assert_close(function(empty, empty), 0.0, xb, "float64", ulps=0)  # type: ignore[operator]
    assert_close(function(empty, empty, "mean"), nan, xb, "float64", ulps=0)  # type: ignore[operator]
    assert_close(function(empty, empty, "none"), np.zeros((0, 2)), xb, "float64", ulps=0)  # type: ignore[operator]


def test_losses_overflow_only_when_the_result_does(xb: Backend) -> None:
    big = 1e308
    yhat = xb.asarray(np.array([big, -big, 0.0]), "float64")
    y = xb.asarray(np.array([-big, big, 0.0]), "float64")
    assert_close(ak.l1_loss(yhat, y, "none"), [inf, inf, 0.0], xb, "float64", ulps=0)
    assert_close(ak.l1_loss(yhat, y), inf, xb, "float64", ulps=0)
    # (2e308 + 2e308 + 0) / 3 = 1.333e308 is finite, though its terms are not.
    assert_close(ak.l1_loss(yhat, y, "mean"), 4 * (big / 3), xb, "float64", ulps=2)
    half = xb.asarray(np.array([1e19, 1e19, 1e19, 1e19]), "float32")
    zero = xb.asarray(np.zeros(4), "float32")
    exact = float(np.float32(1e19)) ** 2
    assert_close(ak.l2_loss(half, zero, "mean"), exact, xb, "float32")
    assert_close(ak.l2_loss(half, zero), inf, xb, "float32", ulps=0)


def test_losses_tiny_errors_do_not_underflow(xb: Backend) -> None:
    # Each square is subnormal (and would lose its precision), the sum is not.
    for dtype, value in (("float32", 3e-20), ("float64", 3e-155)):
        yhat = xb.asarray(np.full(100, value), dtype)
        zero = xb.asarray(np.zeros(100), dtype)
        exact = xb.to_numpy(yhat).astype(np.float64)[0]
        desired = float(mp.mpf(float(exact)) ** 2 * 100)
        assert_close(ak.l2_loss(yhat, zero), desired, xb, dtype)


@pytest.mark.parametrize(("dtype", "scipy_worst"), [("float32", 32), ("float64", 32)])
def test_small_softmax_outputs_beyond_scipy(dtype: str, scipy_worst: float) -> None:
    """The README's table: SciPy's exp of a rounded difference against arraykit."""
    special = pytest.importorskip("scipy.special")
    rng = np.random.default_rng(0)
    worst = {"scipy": 0.0, "arraykit": 0.0}
    with mp.workprec(113):
        for _ in range(200):
            row = rng.uniform(-60, 60, 8).astype(dtype)
            top = mp.mpf(float(row.max()))
            e = [mp.exp(mp.mpf(float(v)) - top) for v in row]
            exact = np.array([float(v / mp.fsum(e)) for v in e])
            spacing = np.spacing(exact.astype(dtype)).astype(np.float64)
            for name, got in (("scipy", special.softmax(row)), ("arraykit", ak.softmax(row))):
                error = np.abs(got.astype(np.float64) - exact) / spacing
                worst[name] = max(worst[name], float(error.max()))
    assert worst["arraykit"] <= 4
    assert worst["scipy"] > scipy_worst  # the claim: SciPy loses tens of ulps here


def test_every_path_within_the_contract() -> None:
    """docs/numerics.md's table, by ``python -m tests.accuracy``: every path (the compiled
    kernels, other layouts, NumPy's operations, the generic formula) within 4 ulp, over
    the last, first and a middle axis."""
    pytest.importorskip("array_api_strict")
    pytest.importorskip("scipy")
    from .accuracy import measure

    for row in measure(n=2000):
        if row["path"] != "SciPy (peer)":
            assert row["worst_ulp"] <= 4.0, row
