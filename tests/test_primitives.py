"""Every primitive × backend × dtype, against the mpmath references."""

from __future__ import annotations

import numpy as np
import pytest

import arraykit as ak
from arraykit._operations import OPERATIONS
from backends import Backend

from . import reference
from .assertions import _FORMAT, assert_close, assert_kind, dtype_name, seen_by

ELEMENTWISE = {
    op.name: (getattr(ak, op.name), getattr(reference, op.reference))
    for op in OPERATIONS
    if op.kind == "elementwise" and op.reference is not None
}
"""The registry's elementwise operations, with their mpmath references."""


def _seen(xb: Backend, array: object) -> np.ndarray:
    """The exact values the backend's arithmetic sees in ``array``, as float64."""
    return seen_by(xb, xb.to_numpy(array), dtype_name(array.dtype))  # type: ignore[attr-defined]


def _put(xb: Backend, values: np.ndarray, dtype: str) -> tuple[object, np.ndarray]:
    """The array on the backend, and the exact values its arithmetic sees."""
    array = xb.asarray(values, dtype)
    return array, _seen(xb, array)


def _assert_unchanged(xb: Backend, array: object, before: np.ndarray) -> None:
    np.testing.assert_array_equal(_seen(xb, array), before)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_elementwise_whole_range(xb: Backend, dtype: str, name: str) -> None:
    function, exact = ELEMENTWISE[name]
    x, values = _put(xb, reference.finite_values(dtype, 400, seed=1), dtype)
    assert_close(function(x), exact(values), xb, dtype)
    _assert_unchanged(xb, x, values)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_elementwise_keeps_shape(xb: Backend, name: str) -> None:
    function, exact = ELEMENTWISE[name]
    x, values = _put(xb, np.linspace(-6, 6, 24).reshape(2, 3, 4), "float64")
    assert_close(function(x), exact(values), xb, "float64")
    x0, v0 = _put(xb, np.array(0.5), "float64")
    assert_close(function(x0), exact(v0), xb, "float64")


def _softmax_input(dtype: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    largest = {"float16": 6e4, "bfloat16": 1e38, "float32": 1e38, "float64": 1e307}[dtype]
    rows = [rng.normal(size=9) * scale for scale in (0.1, 1.0, 10.0, 100.0, 1000.0)]
    rows.append(rng.normal(size=9) * 30 + 1e3)  # large offset: x - max inexact
    rows.append(np.array([largest, -largest, 0.0, 1.0, -1.0, largest / 2, 3.0, -3.0, 5.0]))
    rows.append(reference.sample(dtype, 9, seed))
    rows.append(np.full(9, 7.25))
    return np.clip(np.stack(rows), -largest, largest)


def test_softmax_rows(xb: Backend, dtype: str) -> None:
    x, values = _put(xb, _softmax_input(dtype, seed=2), dtype)
    assert_close(ak.softmax(x), reference.softmax_rows(values), xb, dtype)
    _assert_unchanged(xb, x, values)
    # Rows as long as the benchmarks': their sums add rounding (float32 is
    # summed in float64 where the backend has it; JAX's float64 sums are
    # compensated, its own being 6 ulp off here, docs/numerics.md).
    x, values = _put(xb, np.random.default_rng(9).normal(size=(20, 100)) * 4, dtype)
    assert_close(ak.softmax(x), reference.softmax_rows(values), xb, dtype)


@pytest.mark.parametrize("axis", [0, 1, -1, (0, 2), None])
def test_softmax_axes(xb: Backend, axis: int | tuple[int, ...] | None) -> None:
    rng = np.random.default_rng(3)
    x, values = _put(xb, rng.normal(size=(3, 4, 5)) * 5, "float64")
    axes = range(3) if axis is None else [a % 3 for a in np.atleast_1d(axis)]
    keep = [a for a in range(3) if a not in axes]
    reduced = [a for a in range(3) if a in axes]
    moved = np.transpose(values, keep + reduced)
    flat = moved.reshape(int(np.prod([values.shape[a] for a in keep])), -1)
    desired = reference.softmax_rows(flat).reshape(moved.shape)
    desired = np.transpose(desired, np.argsort(keep + reduced))
    assert_close(ak.softmax(x, axis=axis), desired, xb, "float64")


def _normalize_input(dtype: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    emin = _FORMAT[dtype][1]
    emax = {"float16": 15, "bfloat16": 127, "float32": 127, "float64": 1023}[dtype]
    # Row scales across the whole range: squares of the extremes under- or overflow.
    exponents = np.linspace(emin + 4, emax - 4, 7)
    rows = [rng.normal(size=6) * 2.0**e for e in exponents]
    rows += [np.zeros(6), np.array([0, 0, -3.0, 0, 0, 0]), rng.normal(size=6)]
    rows.append(reference.sample(dtype, 6, seed))
    return np.stack(rows)


def test_normalize_rows(xb: Backend, dtype: str) -> None:
    x, values = _put(xb, _normalize_input(dtype, seed=4), dtype)
    assert_close(ak.normalize_rows(x), reference.normalize_rows(values), xb, dtype)
    _assert_unchanged(xb, x, values)


LOSSES = {"l1_loss": (ak.l1_loss, 1), "l2_loss": (ak.l2_loss, 2)}


@pytest.mark.parametrize("reduction", ["sum", "mean", "none"])
@pytest.mark.parametrize("name", LOSSES)
def test_losses(xb: Backend, dtype: str, name: str, reduction: str) -> None:
    function, power = LOSSES[name]
    rng = np.random.default_rng(5)
    yhat, yhat_values = _put(xb, rng.normal(size=(6, 7)) * 3, dtype)
    y, y_values = _put(xb, rng.normal(size=(6, 7)) * 3, dtype)
    desired = reference.loss(yhat_values, y_values, power, reduction)
    assert_close(function(yhat, y, reduction), desired, xb, dtype, ulps=4)
    _assert_unchanged(xb, yhat, yhat_values)
    _assert_unchanged(xb, y, y_values)


@pytest.mark.parametrize("reduction", ["sum", "mean", "none"])
@pytest.mark.parametrize("name", LOSSES)
def test_losses_whole_range(xb: Backend, dtype: str, name: str, reduction: str) -> None:
    function, power = LOSSES[name]
    scale = {"float16": 2.0**12, "bfloat16": 2.0**120, "float32": 2.0**120, "float64": 2.0**1016}[
        dtype
    ]
    for exponent in (-1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0):
        rng = np.random.default_rng(6)
        size = scale**exponent
        yhat, yhat_values = _put(xb, rng.normal(size=20) * size, dtype)
        y, y_values = _put(xb, rng.normal(size=20) * size, dtype)
        desired = reference.loss(yhat_values, y_values, power, reduction)
        assert_close(function(yhat, y, reduction), desired, xb, dtype, ulps=4)


def test_image2vector(xb: Backend, dtype: str) -> None:
    values = np.arange(18.0).reshape(3, 3, 2) - 8.5
    image, exact = _put(xb, values, dtype)
    assert_close(ak.image2vector(image), exact.reshape(18, 1), xb, dtype, ulps=0)
    _assert_unchanged(xb, image, exact)


@pytest.mark.parametrize("source", ["int32", "int64", "bool"])
def test_integers_promote_to_default_float(xb: Backend, source: str) -> None:
    values = (
        np.array([[0, 1, 1], [1, 0, 1]]) if source == "bool" else np.array([[1, 2, 3], [-4, 0, 5]])
    )
    x, exact = _put(xb, values, source)
    dtype = xb.default_float
    assert_close(ak.sigmoid(x), reference.sigmoid(exact), xb, dtype)
    assert_close(ak.sigmoid_derivative(x), reference.sigmoid_derivative(exact), xb, dtype)
    assert_close(ak.softmax(x), reference.softmax_rows(exact), xb, dtype)
    assert_close(ak.normalize_rows(x), reference.normalize_rows(exact), xb, dtype)
    zero = xb.asarray(np.zeros_like(values), source)
    assert_close(ak.l1_loss(x, zero), np.abs(exact).sum(), xb, dtype, ulps=0)
    assert_close(ak.l2_loss(x, zero, "none"), exact**2, xb, dtype, ulps=0)
    image = xb.asarray(values.reshape(2, 3, 1), source)
    assert_close(ak.image2vector(image), exact.reshape(6, 1), xb, dtype, ulps=0)


def test_reductions_return_arrays(xb: Backend) -> None:
    yhat, _ = _put(xb, np.array([0.9, 0.2, 0.1, 0.4, 0.9]), "float32")
    y, _ = _put(xb, np.array([1.0, 0.0, 0.0, 1.0, 1.0]), "float32")
    for function in (ak.l1_loss, ak.l2_loss):
        for reduction in ("sum", "mean"):
            assert_kind(function(yhat, y, reduction), xb, "float32", ())


def test_mixed_float_precisions_promote(xb: Backend) -> None:
    yhat, a = _put(xb, np.array([0.5, 2.0]), "float32")
    y, b = _put(xb, np.array([1.0, 1.0 / 3.0]), "float64")
    assert_close(ak.l2_loss(yhat, y), reference.loss(a, b, 2, "sum"), xb, "float64")
