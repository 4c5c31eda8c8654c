"""The log-space family and the cross-entropies against mpmath, on every backend, dtype,
layout and axis; their gradients against exact derivatives; their refusals.

Tolerances: 4 ulp of the exact result for every value (``tests/reference.py``),
where the peers lose digits too (the largest entry of a log-softmax whose others
are far below, both tails of softplus, the logistic loss at |z| ≥ 40). The one
exception is logsumexp's own, documented: where the result is a cancellation of
the maximum ``m < 0`` and ``log1p(r)``, a few ulp of ``m``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import arraykit as ak
from backends import Backend

from . import reference
from .assertions import assert_close, assert_kind, seen_by, ulp

# --- inputs -----------------------------------------------------------------------------------


def _rows(dtype: str) -> np.ndarray:
    """Rows of 7 where the textbook forms fail, and random rows of every scale."""
    rng = np.random.default_rng(11)
    hard = [
        [0.0, -50.0, -60.0, -70.0, -80.0, -90.0, -100.0],  # the maximum holds nearly all
        [1e-3, -40.0, -45.0, -41.0, -43.0, -60.0, -100.0],
        [120.0, 0.0, 1.0, -3.0, 2.0, 0.5, 119.0],
        [1000.0, 1000.0, -1000.0, 999.0, 0.0, 5.0, 1000.0],  # ties at the maximum
        [-1000.0, -1001.0, -1000.5, -1200.0, -999.0, -1000.0, -1003.0],
        [-80.0, -81.0, -80.5, -79.0, -85.0, -90.0, -100.0],
    ]
    random = rng.normal(size=(30, 7)) * rng.choice([0.01, 1.0, 5.0, 30.0], size=(30, 1))
    return _rounded(np.concatenate([hard, random]), dtype)


def _rounded(values: np.ndarray, dtype: str) -> np.ndarray:
    """``values`` rounded to ``dtype`` (bfloat16 by ml_dtypes, which NumPy lacks), as float64."""
    if dtype == "bfloat16":
        import ml_dtypes

        return values.astype(ml_dtypes.bfloat16).astype(np.float64)
    return values.astype(dtype).astype(np.float64)


def _layouts(xb: Backend, data: np.ndarray, dtype: str) -> list[tuple[str, Any, int]]:
    """``data`` (2-D, classes along the last axis) in several layouts, each with the axis
    along which its classes lie: as it is, transposed (axis 0), a strided view, the
    middle axis of a 3-D array."""
    xp = xb.namespace
    wide = np.repeat(data, 2, axis=1)
    three = np.stack([data, data[::-1]], axis=0)  # (2, rows, classes)
    return [
        ("rows", xb.asarray(data, dtype), -1),
        ("transposed", xp.permute_dims(xb.asarray(data.T.copy(), dtype), (1, 0)), -1),
        ("columns", xb.asarray(data.T.copy(), dtype), 0),
        ("strided", xb.asarray(wide, dtype)[:, ::2], -1),
        ("middle axis", xp.permute_dims(xb.asarray(three, dtype), (0, 2, 1)), 1),
    ]


def _exact_rows(layout: str, data: np.ndarray, function: Callable[..., np.ndarray]) -> np.ndarray:
    """The reference of ``function`` (of rows along the last axis) in ``layout``'s shape."""
    if layout == "middle axis":
        out = np.stack([function(data), function(data[::-1])])
        return np.moveaxis(out, -1, 1) if out.ndim == 3 else out
    out = function(data)
    return out.T if layout == "columns" and out.ndim == 2 else out


def _assert_within(got: Any, exact: np.ndarray, xb: Backend, dtype: str, slack: np.ndarray) -> None:
    """4 ulp of ``exact``, plus ``slack`` (absolute) where a documented bound allows it."""
    values = xb.to_numpy(got).astype(np.float64)
    assert values.shape == exact.shape
    bound = 4 * ulp(exact, dtype) + slack
    with np.errstate(invalid="ignore"):
        bad = ~((np.abs(values - exact) <= bound) | (values == exact))
    assert not bad.any(), (values[bad][:5], exact[bad][:5])


def _local(xb: Backend) -> None:
    """Skip the cluster column but in the tests that keep it (its graphs are the local
    Dask column's, shipped to worker processes: each compute costs a second)."""
    if xb.remote:
        pytest.skip(
            "the cluster column runs in test_log_softmax_against_mpmath and "
            "test_cross_entropy_against_mpmath (rows) and in tests/test_dask.py; here it would "
            "repeat the local Dask column's graphs"
        )


# --- values -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["softplus", "log_sigmoid"])
def test_elementwise_against_mpmath(xb: Backend, dtype: str, name: str) -> None:
    """Over the whole range of the dtype, both tails included."""
    _local(xb)
    values = reference.finite_values(dtype, 600, seed=3)
    x = xb.asarray(values, dtype)
    exact = getattr(reference, name)(seen_by(xb, xb.to_numpy(x).astype(np.float64), dtype))
    assert_close(getattr(ak, name)(x), exact, xb, dtype)


def test_elementwise_tails(xb: Backend, dtype: str) -> None:
    """Where the peers' thresholds and the textbook forms give up: softplus past 20 is not
    x itself, log σ(40) is not 0, log σ(−1000) is not −inf."""
    _local(xb)
    points = np.array([-1000.0, -100.0, -40.0, -20.0, 20.0, 30.0, 40.0, 100.0, 1000.0])
    if dtype != "float64":
        points = points[np.abs(points) <= 60]
    x = xb.asarray(points, dtype)
    seen = xb.to_numpy(x).astype(np.float64)
    assert_close(ak.softplus(x), reference.softplus(seen_by(xb, seen, dtype)), xb, dtype)
    assert_close(ak.log_sigmoid(x), reference.log_sigmoid(seen), xb, dtype)


@pytest.mark.parametrize("layout", ["rows", "transposed", "columns", "strided", "middle axis"])
def test_log_softmax_against_mpmath(xb: Backend, dtype: str, layout: str) -> None:
    if layout != "rows":
        _local(xb)
    data = _rows(dtype)
    (_, x, axis) = next(item for item in _layouts(xb, data, dtype) if item[0] == layout)
    exact = _exact_rows(layout, data, reference.log_softmax)
    assert_close(ak.log_softmax(x, axis=axis), exact, xb, dtype)


@pytest.mark.parametrize("layout", ["rows", "transposed", "columns", "strided", "middle axis"])
def test_logsumexp_against_mpmath(xb: Backend, dtype: str, layout: str) -> None:
    _local(xb)
    data = _rows(dtype)
    (_, x, axis) = next(item for item in _layouts(xb, data, dtype) if item[0] == layout)
    exact = _exact_rows(layout, data, reference.logsumexp)
    # The documented exception: a result that is a cancellation of m < 0 and log1p(r).
    largest = _exact_rows(layout, data, lambda d: np.max(d, axis=-1))
    slack = np.where(largest < 0, 4 * ulp(largest, dtype), 0.0)
    result = ak.logsumexp(x, axis=axis)
    assert_kind(result, xb, dtype, exact.shape)
    _assert_within(result, exact, xb, dtype, slack)
    kept = ak.logsumexp(x, axis=axis, keepdims=True)
    assert tuple(kept.shape) == tuple(1 if i == axis % x.ndim else n for i, n in enumerate(x.shape))


def test_several_axes(xb: Backend, dtype: str) -> None:
    """Over a tuple of axes and over all: the same as over one axis of the reshaped array."""
    _local(xb)
    data = _rows(dtype)[:6]  # (6, 7)
    x = xb.asarray(data.reshape(2, 3, 7), dtype)
    flat = data.reshape(2, 21)
    exact = reference.logsumexp(flat)
    largest = np.max(flat, axis=-1)
    slack = np.where(largest < 0, 4 * ulp(largest, dtype), 0.0)
    _assert_within(ak.logsumexp(x, axis=(1, 2)), exact, xb, dtype, slack)
    assert_close(
        ak.log_softmax(x, axis=(1, 2)), reference.log_softmax(flat).reshape(2, 3, 7), xb, dtype
    )
    everything = reference.logsumexp(data.reshape(1, -1))[0]
    _assert_within(ak.logsumexp(x, axis=None), np.array(everything), xb, dtype, np.array(0.0))


def test_the_largest_entry_keeps_its_digits(xb: Backend, dtype: str) -> None:
    """log_softmax([0, −50]) is −1.9e-22 (−log1p of the others), not 0; logsumexp the same."""
    _local(xb)
    x = xb.asarray([[0.0, -50.0], [0.0, -30.0]], dtype)
    exact = reference.log_softmax(np.array([[0.0, -50.0], [0.0, -30.0]]))
    assert_close(ak.log_softmax(x), exact, xb, dtype)
    if dtype in ("float32", "float64"):  # −1.9e-22 is below float16's range
        assert (xb.to_numpy(ak.log_softmax(x))[:, 0] < 0).all()


def test_short_rows_of_every_length(xb: Backend, dtype: str) -> None:
    """Rows of 1 to 17 entries, along the last axis and across memory (the columns'
    kernel's lanes, and the rows' kernel's rows shorter than a vector): ties at the
    maximum and entries just below it make log1p's argument span [0, 16]. Every length
    where compiled kernels serve (NumPy, torch's CPU); elsewhere, whose formula has no
    path that depends on the length, a few (each is a compile on JAX)."""
    _local(xb)
    rng = np.random.default_rng(23)
    compiled = xb.library in ("numpy", "torch") and not xb.gpu
    for length in range(1, 18) if compiled else (1, 2, 9, 17):
        ties = np.zeros((length, length))
        ties[np.triu_indices(length, 1)] = -rng.uniform(0.0, 3.0, length * (length - 1) // 2)
        scaled = rng.normal(size=(8, length)) * np.array([1e-8, 0.01, 1.0, 30.0] * 2)[:, None]
        data = _rounded(np.concatenate([ties, scaled]) + 5.0, dtype)
        exact, total = reference.log_softmax(data), reference.logsumexp(data)
        for layout, x, axis in _layouts(xb, data, dtype)[:3]:
            shaped = exact.T if layout == "columns" else exact
            assert_close(ak.log_softmax(x, axis=axis), shaped, xb, dtype)
            assert_close(ak.logsumexp(x, axis=axis), total, xb, dtype)


# --- the losses -------------------------------------------------------------------------------


def _labels(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2, n).astype(np.float64)


def test_binary_cross_entropy_with_logits_against_mpmath(xb: Backend, dtype: str) -> None:
    _local(xb)
    z = np.concatenate([np.linspace(-60, 60, 41), [-745.0, 745.0, -40.0, 40.0, 0.0]])
    if dtype != "float64":
        z = z[np.abs(z) <= 60]
    y = _labels(z.size, 1)
    y[: z.size // 4] = np.random.default_rng(2).uniform(0, 1, z.size // 4)  # soft labels
    w = np.random.default_rng(3).uniform(0.5, 2.0, z.size)
    zs, ys = (xb.asarray(v, dtype) for v in (z, y))
    seen = [xb.to_numpy(a).astype(np.float64) for a in (zs, ys)]
    assert_close(
        ak.binary_cross_entropy_with_logits(zs, ys, "none"),
        reference.binary_cross_entropy_with_logits(*seen, "none"),
        xb,
        dtype,
    )
    for reduction in ("mean", "sum"):
        ws = xb.asarray(w, dtype)
        exact = reference.binary_cross_entropy_with_logits(
            *seen, reduction, xb.to_numpy(ws).astype(np.float64)
        )
        got = ak.binary_cross_entropy_with_logits(zs, ys, reduction, weights=ws)
        assert_close(got, exact, xb, dtype, ulps=6)


def test_binary_cross_entropy_against_mpmath(xb: Backend, dtype: str) -> None:
    _local(xb)
    tiny = {"float64": 1e-300, "float32": 1e-30}.get(dtype, 1e-4)
    p = np.concatenate(
        [np.linspace(0.01, 0.99, 25), [tiny, 1 - 2.0**-20, 0.5, 1e-3, 1 - 1e-3, 0.0, 1.0]]
    )
    y = _labels(p.size, 4)
    y[-2], y[-1] = 0.0, 1.0  # 0·log 0 on both sides: a loss of 0
    ps, ys = (xb.asarray(v, dtype) for v in (p, y))
    seen = [xb.to_numpy(a).astype(np.float64) for a in (ps, ys)]
    exact = reference.binary_cross_entropy(*seen, "none")
    assert_close(ak.binary_cross_entropy(ps, ys, "none"), exact, xb, dtype)
    assert_close(
        ak.binary_cross_entropy(ps, ys),
        reference.binary_cross_entropy(*seen, "mean"),
        xb,
        dtype,
        ulps=6,
    )
    certain = ak.binary_cross_entropy(
        xb.asarray([0.0, 1.0, 1.0, np.nan], dtype), xb.asarray([1.0, 0.0, 1.0, 1.0], dtype), "none"
    )
    np.testing.assert_array_equal(xb.to_numpy(certain), [np.inf, np.inf, 0.0, np.nan])
    assert not np.signbit(xb.to_numpy(certain)[2])  # a loss of +0
    # Probabilities down to the subnormals and up to within an ulp of 1, soft labels.
    rng = np.random.default_rng(31)
    digits = {"float64": 323, "float32": 44, "float16": 7, "bfloat16": 39}[dtype]
    p = _rounded(np.concatenate([10.0 ** -rng.uniform(0, digits, 48), rng.uniform(size=16)]), dtype)
    p = np.concatenate([p, _rounded(1.0 - p, dtype)])  # up to an ulp below 1
    p = p[(seen_by(xb, p, dtype) > 0) & (p < 1)]  # (subnormals: 0 to XLA)
    y = _rounded(np.where(rng.uniform(size=p.size) < 0.5, rng.uniform(size=p.size), 1.0), dtype)
    ps, ys = (xb.asarray(v, dtype) for v in (p, y))
    exact = reference.binary_cross_entropy(p, y, "none")
    assert_close(ak.binary_cross_entropy(ps, ys, "none"), exact, xb, dtype)


def test_log_of_one_minus_where_xla_loses_digits(xb: Backend, dtype: str) -> None:
    """log(1 − p) for p in [0.28, 0.53], where XLA's float64 log1p on CPU is up to 129
    ulp off (jax-ml/jax#39707): the binary cross-entropy at label 0 and the
    cross-entropy where the label holds 1 − p of the mass stay within the contract."""
    _local(xb)
    p = _rounded(np.linspace(0.28, 0.53, 41), dtype)
    zeros = np.zeros_like(p)
    exact = reference.binary_cross_entropy(p, zeros, "none")
    assert_close(
        ak.binary_cross_entropy(xb.asarray(p, dtype), xb.asarray(zeros, dtype), "none"),
        exact,
        xb,
        dtype,
    )
    logits = _rounded(np.stack([np.log1p(-p), np.log(p)], axis=1), dtype)
    labels = np.zeros(p.size, dtype=np.int64)
    exact = reference.cross_entropy(logits, labels, -1, "none")
    got = ak.cross_entropy(xb.asarray(logits, dtype), xb.asarray(labels, "int64"), reduction="none")
    assert_close(got, exact, xb, dtype)


@pytest.mark.parametrize("layout", ["rows", "columns", "transposed", "middle axis"])
@pytest.mark.parametrize("target", ["indices", "probabilities"])
def test_cross_entropy_against_mpmath(xb: Backend, dtype: str, layout: str, target: str) -> None:
    if layout != "rows":
        _local(xb)
    data = _rows(dtype)
    (_, x, axis) = next(item for item in _layouts(xb, data, dtype) if item[0] == layout)
    rng = np.random.default_rng(5)
    if target == "indices":
        labels = rng.integers(0, data.shape[1], data.shape[0])
        labels[0], labels[2] = 0, 0  # the label holds nearly all; the label far below
        exact_of = lambda d, t: reference.cross_entropy(d, t)  # noqa: E731
        rows_target = labels
    else:
        q = rng.uniform(0, 1, data.shape) * (rng.uniform(size=data.shape) < 0.6)
        q[:, 0] += 0.01
        rows_target = _rounded(q / q.sum(axis=1, keepdims=True), dtype)
        exact_of = lambda d, t: reference.cross_entropy(d, t)  # noqa: E731
    if layout == "middle axis":
        both = np.stack([rows_target, rows_target[::-1]])
        t = xb.asarray(
            both if target == "indices" else np.moveaxis(both, -1, 1),
            None if target == "indices" else dtype,
        )
        exact = np.stack([exact_of(data, rows_target), exact_of(data[::-1], rows_target[::-1])])
    elif layout == "columns":
        t = xb.asarray(
            rows_target if target == "indices" else rows_target.T.copy(),
            None if target == "indices" else dtype,
        )
        exact = exact_of(data, rows_target)
    else:
        t = xb.asarray(rows_target, None if target == "indices" else dtype)
        exact = exact_of(data, rows_target)
    assert_close(ak.cross_entropy(x, t, axis=axis, reduction="none"), exact, xb, dtype)
    weights = rng.uniform(0.5, 2.0, exact.shape)
    ws = xb.asarray(weights, dtype)
    seen = xb.to_numpy(ws).astype(np.float64)
    for reduction in ("mean", "sum"):
        got = ak.cross_entropy(x, t, axis=axis, reduction=reduction, weights=ws)
        total = np.array(float(np.sum(exact * seen)))  # the terms are exact to 4 ulp: below
        if reduction == "mean":
            total = total / exact.size
        assert_close(got, total, xb, dtype, ulps=8)


def test_cross_entropy_where_the_textbook_is_inf(xb: Backend, dtype: str) -> None:
    """−log(softmax([0, 120]))[0] is inf in float32; the loss is 120."""
    _local(xb)
    logits = xb.asarray([[0.0, 120.0], [0.0, -120.0]], dtype)
    labels = xb.asarray(np.array([0, 0]))
    assert_close(
        ak.cross_entropy(logits, labels, reduction="none"),
        reference.cross_entropy(np.array([[0.0, 120.0], [0.0, -120.0]]), np.array([0, 0])),
        xb,
        dtype,
    )


def test_a_sum_of_losses_past_the_range_is_inf(xb: Backend) -> None:
    """Finite losses of 1e308: their sum is past the range, +inf, and their mean 1e308,
    with no error or floating-point warning."""
    _local(xb)
    if "float64" not in xb.dtypes:
        pytest.skip(f"{xb.id} has no float64")
    logits = xb.asarray([[0.0, 1e308], [0.0, 1e308]], "float64")
    labels = xb.asarray(np.array([0, 0]))
    assert np.isposinf(xb.to_numpy(ak.cross_entropy(logits, labels, reduction="sum")))
    mean = ak.cross_entropy(logits, labels, reduction="mean")
    assert_close(mean, np.array(1e308), xb, "float64")
    # float32 losses of 2e38, summed in float64: past float32's range, inf
    logits = xb.asarray([[0.0, 2e38], [0.0, 2e38]], "float32")
    assert np.isposinf(xb.to_numpy(ak.cross_entropy(logits, labels, reduction="sum")))


# --- gradients --------------------------------------------------------------------------------


def _grad(xb: Backend, function: Callable[..., Any], x: Any) -> np.ndarray:
    """The gradient of ``sum(function(x))`` in ``x``, by the backend's own autodiff."""
    if xb.library == "torch":
        import torch

        leaf = x.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(function(leaf).sum(), leaf)
        return grad.detach().cpu().double().numpy()
    import jax

    return np.asarray(jax.grad(lambda v: function(v).sum())(x), dtype=np.float64)


@pytest.fixture
def ad(xb: Backend) -> Backend:
    if xb.library not in ("torch", "jax"):
        pytest.skip(f"{xb.id} has no automatic differentiation")
    return xb


def _sigmoid_of(values: np.ndarray) -> np.ndarray:
    return reference.sigmoid(values)


@pytest.mark.parametrize("precision", ["float32", "float64"])
def test_logistic_loss_gradient_does_not_cancel(ad: Backend, precision: str) -> None:
    """d/dz of the logistic loss is σ(z) − y: for y = 1, −σ(−z) (−9.3576e-14 at z = 30,
    not σ(30) − 1), for y = 0, σ(z)."""
    z = np.array([30.0, 17.0, 5.0, 0.5, 0.0, -0.5, -5.0, -17.0, -30.0, 80.0, -80.0])
    for label in (0.0, 1.0):
        y = ad.asarray(np.full(z.size, label), precision)
        zs = ad.asarray(z, precision)
        seen = ad.to_numpy(zs).astype(np.float64)
        got = _grad(ad, lambda v, y=y: ak.binary_cross_entropy_with_logits(v, y, "none"), zs)
        exact = _sigmoid_of(seen) if label == 0 else -_sigmoid_of(-seen)
        assert_close(ad.asarray(got, precision), exact, ad, precision, ulps=8)


@pytest.mark.parametrize("precision", ["float32", "float64"])
def test_cross_entropy_gradient_is_softmax_minus_one_hot(ad: Backend, precision: str) -> None:
    """The label's entry is minus the sum of the others, not a rounded softmax − 1."""
    data = _rows(precision)
    labels = np.argmax(data, axis=1)  # the label holds the most mass: where it would cancel
    labels[5:10] = 0
    x = ad.asarray(data, precision)
    t = ad.asarray(labels)
    got = _grad(ad, lambda v: ak.cross_entropy(v, t, reduction="none"), x)
    exact = reference.cross_entropy_gradient(data, labels)
    assert_close(ad.asarray(got, precision), exact, ad, precision, ulps=16)


@pytest.mark.parametrize("precision", ["float32", "float64"])
def test_log_space_gradients(ad: Backend, precision: str) -> None:
    """softplus' = σ, log_sigmoid' = σ(−x), logsumexp's gradient the softmax."""
    points = np.array([-700.0, -30.0, -5.0, -0.5, 0.0, 0.5, 5.0, 30.0, 700.0])
    if precision == "float32":
        points = points[np.abs(points) < 100]
    x = ad.asarray(points, precision)
    seen = ad.to_numpy(x).astype(np.float64)
    assert_close(
        ad.asarray(_grad(ad, ak.softplus, x), precision), _sigmoid_of(seen), ad, precision, ulps=8
    )
    assert_close(
        ad.asarray(_grad(ad, ak.log_sigmoid, x), precision),
        _sigmoid_of(-seen),
        ad,
        precision,
        ulps=8,
    )
    data = _rows(precision)
    rows = ad.asarray(data, precision)
    shares = reference.softmax_rows(data)
    assert_close(
        ad.asarray(_grad(ad, ak.logsumexp, rows), precision), shares, ad, precision, ulps=8
    )


# --- special values and refusals --------------------------------------------------------------


def test_empty_and_zero_dimensional(xb: Backend) -> None:
    _local(xb)
    xp = xb.namespace
    empty = xb.asarray(np.zeros((3, 0)))
    np.testing.assert_array_equal(xb.to_numpy(ak.logsumexp(empty)), [-np.inf] * 3)
    assert tuple(ak.log_softmax(empty).shape) == (3, 0)
    scalar = xb.asarray(np.array(2.5))
    assert float(ak.logsumexp(scalar)) == 2.5
    assert float(ak.log_softmax(scalar)) == 0.0
    none = ak.cross_entropy(
        xb.asarray(np.zeros((0, 3))), xb.asarray(np.zeros(0, dtype=np.int64)), reduction="sum"
    )
    assert float(xp.asarray(none)) == 0.0


REFUSALS: list[tuple[str, Callable[[], Any], type[Exception], str]] = [
    (
        "index out of range",
        lambda: ak.cross_entropy(np.zeros((2, 3)), np.array([0, 3])),
        ValueError,
        "outside \\[0, 3\\)",
    ),
    (
        "negative index",
        lambda: ak.cross_entropy(np.zeros((2, 3)), np.array([-1, 0])),
        ValueError,
        "outside",
    ),
    (
        "float indices",
        lambda: ak.cross_entropy(np.zeros((2, 3)), np.array([0.0, 1.0])),
        TypeError,
        "integer dtype",
    ),
    (
        "integer probabilities",
        lambda: ak.cross_entropy(np.zeros((2, 3)), np.zeros((2, 3), dtype=int)),
        TypeError,
        "floating dtype",
    ),
    (
        "boolean target",
        lambda: ak.cross_entropy(np.zeros((2, 3)), np.array([True, False])),
        TypeError,
        "target must hold",
    ),
    (
        "target shape",
        lambda: ak.cross_entropy(np.zeros((2, 3)), np.array([0, 1, 2])),
        ValueError,
        "target must be class indices of shape \\(2,\\)",
    ),
    (
        "probabilities outside",
        lambda: ak.cross_entropy(np.zeros((1, 2)), np.array([[1.5, -0.5]])),
        ValueError,
        "target must hold probabilities",
    ),
    (
        "no class axis",
        lambda: ak.cross_entropy(np.zeros(()), np.array(0)),
        ValueError,
        "class axis",
    ),
    (
        "no classes",
        lambda: ak.cross_entropy(np.zeros((2, 0)), np.array([0, 0])),
        ValueError,
        "at least one class",
    ),
    (
        "axis",
        lambda: ak.cross_entropy(np.zeros((2, 3)), np.array([0, 1]), axis=2),
        ValueError,
        "axis 2 is out of range",
    ),
    (
        "reduction",
        lambda: ak.cross_entropy(np.zeros((2, 3)), np.array([0, 1]), reduction="avg"),
        ValueError,
        "reduction must be one of",
    ),
    (
        "weights",
        lambda: ak.cross_entropy(np.zeros((2, 3)), np.array([0, 1]), weights=np.ones(3)),
        ValueError,
        "weights must broadcast",
    ),
    (
        "p outside",
        lambda: ak.binary_cross_entropy(np.array([1.2]), np.array([1.0])),
        ValueError,
        "p must hold probabilities",
    ),
    (
        "p outside, beside a NaN",  # (a NaN makes the extremes NaN: the check reads on)
        lambda: ak.binary_cross_entropy(np.array([0.5, np.nan, 1.2]), np.ones(3)),
        ValueError,
        "p must hold probabilities",
    ),
    (
        "class indices outside",
        lambda: ak.cross_entropy(np.zeros((2, 3)), np.array([0, 3])),
        ValueError,
        "outside \\[0, 3\\)",
    ),
    (
        "y outside",
        lambda: ak.binary_cross_entropy_with_logits(np.array([1.2]), np.array([2.0])),
        ValueError,
        "y must hold probabilities",
    ),
    (
        "shapes",
        lambda: ak.binary_cross_entropy_with_logits(np.zeros(3), np.zeros(2)),
        ValueError,
        "same shape",
    ),
    ("complex", lambda: ak.softplus(np.array([1j])), TypeError, "real dtype"),
    (
        "logsumexp axis",
        lambda: ak.logsumexp(np.zeros((2, 3)), axis=(0, 0)),
        ValueError,
        "repeats an axis",
    ),
]


@pytest.mark.parametrize(("what", "call", "error", "match"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refusals_name_the_argument(
    what: str, call: Callable[[], Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        call()


def test_refusals_on_torch_cpu_and_mixed_backends() -> None:
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError, match="outside"):
        ak.cross_entropy(torch.zeros(2, 3), torch.tensor([0, 5]))
    with pytest.raises(TypeError, match="one backend"):
        ak.cross_entropy(torch.zeros(2, 3), np.array([0, 1]))


def test_under_jit_an_index_out_of_range_is_nan() -> None:
    """Under jax.jit nothing can be checked without a host sync: the loss says NaN."""
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    losses = jax.jit(lambda x, t: ak.cross_entropy(x, t, reduction="none"))(
        jnp.zeros((2, 3)), jnp.array([1, 7])
    )
    assert np.isfinite(np.asarray(losses)[0])
    assert np.isnan(np.asarray(losses)[1])


def test_inputs_are_not_written(xb: Backend) -> None:
    _local(xb)
    data = _rows("float64")
    x = xb.asarray(data)
    t = xb.asarray(np.argmax(data, axis=1))
    ak.cross_entropy(x, t)
    ak.log_softmax(x)
    np.testing.assert_array_equal(xb.to_numpy(x), data)


# --- the compiled rows' kernels: every layout, the same bits ----------------------------------


def _layouts_of(data: np.ndarray) -> list[tuple[str, np.ndarray, int]]:
    """``data`` (rows along the last axis) in every memory layout, with the axis of its rows."""
    fortran = np.asfortranarray(data)
    wide = np.repeat(data, 3, axis=1)[:, ::3]
    reversed_ = np.ascontiguousarray(data[::-1, ::-1])[::-1, ::-1]
    columns = np.ascontiguousarray(data.T)
    middle = np.ascontiguousarray(np.stack([data, data]).transpose(0, 2, 1))
    return [
        ("rows", data, -1),
        ("Fortran order", fortran, -1),
        ("strided", wide, -1),
        ("reversed", reversed_, -1),
        ("columns", columns, 0),
        ("middle axis", middle, 1),
    ]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("length", [1, 2, 5, 7, 8, 9, 16, 17, 100, 1000])
@pytest.mark.parametrize("library", ["numpy", "torch"])
def test_equal_rows_give_equal_bits_in_every_layout(library: str, length: int, dtype: str) -> None:
    """log_softmax, logsumexp and cross_entropy of equal rows, special rows included, give
    the same bits whatever the memory layout and axis (NumPy, and torch CPU tensors in an
    eager call: the compiled rows' kernels, which read any strides)."""
    rng = np.random.default_rng(length)
    data = (rng.normal(size=(40, length)) * rng.choice([1.0, 30.0], (40, 1))).astype(dtype)
    if length >= 4:
        data[1, 2], data[2, :] = np.inf, -np.inf
        data[3, 1] = np.nan
        data[4, :] = 0.0
        data[4, 0] = -200.0
    labels = rng.integers(0, length, 40)
    if library == "torch":
        torch = pytest.importorskip("torch")
        put: Callable[[np.ndarray], Any] = torch.from_numpy
        got: Callable[[Any], np.ndarray] = lambda t: t.numpy()  # noqa: E731
    else:
        put, got = (lambda a: a), np.asarray
    expected = None
    for name, x, axis in _layouts_of(data):
        if library == "torch" and name == "reversed":
            continue  # torch has no negative strides
        rows = np.moveaxis(np.asarray(got(ak.log_softmax(put(x), axis=axis))), axis, -1)
        if x.ndim == 3:
            rows = rows[0]
        totals = np.asarray(got(ak.logsumexp(put(x), axis=axis)))
        totals = totals[0] if x.ndim == 3 else totals
        t = labels if x.ndim == 2 else np.stack([labels, labels])
        losses = np.asarray(got(ak.cross_entropy(put(x), put(t), axis=axis, reduction="none")))
        losses = losses[0] if x.ndim == 3 else losses
        results = [r.view(f"u{r.itemsize}") for r in (rows, totals, losses)]
        if expected is None:
            expected = results
            continue
        for a, b in zip(results, expected, strict=True):
            np.testing.assert_array_equal(a, b, err_msg=name)
