"""Invariants, checked on inputs hypothesis chooses, on every backend."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import arraykit as ak
from backends import Backend

from .assertions import seen_by

# The backend fixture does not change between examples.
pinned = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])

finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
vectors = hnp.arrays(np.float64, st.integers(1, 12), elements=finite)
matrices = hnp.arrays(
    np.float64, hnp.array_shapes(min_dims=2, max_dims=2, max_side=6), elements=finite
)
# Multiples of 1/8 below 2^40: adding an integer to them is exact.
dyadic = st.integers(-(2**43), 2**43).map(lambda k: k / 8)
dyadic_matrices = hnp.arrays(
    np.float64, hnp.array_shapes(min_dims=2, max_dims=2, max_side=6), elements=dyadic
)

EPS = float(np.finfo(np.float64).eps)


@pinned
@given(x=vectors)
def test_sigmoid_range_and_symmetry(xb: Backend, x: np.ndarray) -> None:
    s = xb.to_numpy(ak.sigmoid(xb.asarray(x)))
    s_neg = xb.to_numpy(ak.sigmoid(xb.asarray(-x)))
    assert ((s >= 0) & (s <= 1)).all()
    np.testing.assert_allclose(s_neg, 1 - s, rtol=0, atol=2 * EPS)


@pinned
@given(x=vectors)
def test_sigmoid_derivative_is_the_product(xb: Backend, x: np.ndarray) -> None:
    d = xb.to_numpy(ak.sigmoid_derivative(xb.asarray(x)))
    s = xb.to_numpy(ak.sigmoid(xb.asarray(x)))
    s_neg = xb.to_numpy(ak.sigmoid(xb.asarray(-x)))
    assert ((d >= 0) & (d <= 0.25)).all()
    np.testing.assert_allclose(d, s * s_neg, rtol=8 * EPS, atol=1e-300)


@pinned
@given(x=matrices, axis=st.sampled_from([0, 1, -1]))
def test_softmax_sums_to_one(xb: Backend, x: np.ndarray, axis: int) -> None:
    p = xb.to_numpy(ak.softmax(xb.asarray(x), axis=axis))
    assert ((p >= 0) & (p <= 1)).all()
    np.testing.assert_allclose(p.sum(axis=axis), 1.0, rtol=0, atol=x.shape[axis] * EPS)


@pinned
@given(x=dyadic_matrices, shift=st.integers(-(2**20), 2**20))
def test_softmax_ignores_a_constant_shift(xb: Backend, x: np.ndarray, shift: int) -> None:
    p = xb.to_numpy(ak.softmax(xb.asarray(x)))
    q = xb.to_numpy(ak.softmax(xb.asarray(x + shift)))
    np.testing.assert_allclose(q, p, rtol=4 * EPS, atol=1e-300)


@pinned
@given(x=matrices)
def test_normalized_rows_have_unit_norm_or_are_zero(xb: Backend, x: np.ndarray) -> None:
    y = xb.to_numpy(ak.normalize_rows(xb.asarray(x)))
    norms = np.sqrt((y * y).sum(axis=1))
    zero = ~seen_by(xb, x, "float64").any(axis=1)
    np.testing.assert_allclose(norms[~zero], 1.0, rtol=4 * EPS)
    assert (y[zero] == 0).all()


@pinned
@given(data=st.data(), shape=hnp.array_shapes(max_dims=2, max_side=6))
def test_losses_are_non_negative_and_zero_only_for_equal_inputs(
    xb: Backend, data: st.DataObject, shape: tuple[int, ...]
) -> None:
    yhat = data.draw(hnp.arrays(np.float64, shape, elements=finite))
    y = data.draw(hnp.arrays(np.float64, shape, elements=finite))
    for function in (ak.l1_loss, ak.l2_loss):
        loss = float(xb.to_numpy(function(xb.asarray(yhat), xb.asarray(y))))
        same = float(xb.to_numpy(function(xb.asarray(y), xb.asarray(y))))
        assert loss >= 0
        assert same == 0
        equal = bool((seen_by(xb, yhat, "float64") == seen_by(xb, y, "float64")).all())
        assert (loss == 0) == equal or function is ak.l2_loss
        # A square may underflow to 0 only if the difference is below 2^-537
        # (its square below half the smallest subnormal), or below 2^-511 where
        # the backend flushes subnormal results to 0 (XLA).
        if function is ak.l2_loss and loss == 0:
            assert np.abs(yhat - y).max() < 2.0 ** (-511 if xb.flushes_subnormals else -537)
