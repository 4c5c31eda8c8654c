"""The drivers: history, losses, divergence, laziness, on every backend."""

from __future__ import annotations

import contextlib
import warnings
from typing import Any

import numpy as np
import pytest

import arraykit as ak
import backends
from backends import Backend

from .assertions import assert_kind


def _quadratic(xb: Backend, dtype: str = "float64") -> tuple[Any, Any, Any]:
    target = xb.asarray(np.array([3.0, -1.0]), dtype)

    def grad(p: Any) -> Any:
        return 2.0 * (p - target)

    def loss(p: Any) -> Any:
        d = p - target
        return xb.namespace.sum(d * d)

    return grad, loss, xb.asarray(np.zeros(2), dtype)


@pytest.mark.parametrize("record_every", [1, 3, 10])
def test_history_and_losses(xb: Backend, record_every: int) -> None:
    grad, loss, start = _quadratic(xb)
    result = ak.run_gradient_descent(
        grad, start, lr=0.1, steps=10, record_every=record_every, loss=loss
    )
    records = 10 // record_every + 1
    assert_kind(result.history, xb, "float64", (records, 2))
    assert_kind(result.losses, xb, "float64", (records,))
    assert_kind(result.params, xb, "float64", (2,))
    # Gradient descent on (p - t)^2 with lr 0.1 shrinks the distance by 0.8 a step.
    t = np.arange(records) * record_every
    expected = np.array([3.0, -1.0]) * (1 - 0.8 ** t[:, None])
    np.testing.assert_allclose(xb.to_numpy(result.history), expected, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(xb.to_numpy(result.losses), 10.0 * 0.64**t, rtol=1e-12)
    np.testing.assert_allclose(
        xb.to_numpy(result.params), np.array([3.0, -1.0]) * (1 - 0.8**10), rtol=1e-13
    )
    assert result.steps == 10
    assert not result.diverged


def test_tuple_parameters(xb: Backend) -> None:
    b0, w0 = xb.asarray(np.array(0.0), "float64"), xb.asarray(np.array(0.0), "float64")

    def grad(params: Any) -> Any:
        b, w = params
        return (2.0 * (b - 1.0), 2.0 * (w + 2.0))

    result = ak.run_adagrad(grad, (b0, w0), lr=0.5, steps=4)
    assert isinstance(result.history, tuple)
    assert_kind(result.history[0], xb, "float64", (5,))
    np.testing.assert_allclose(
        xb.to_numpy(result.history[0])[1], 0.5
    )  # first Adagrad step is lr·sign(g)


def test_divergence_is_reported_and_stops(xb: Backend) -> None:
    grad, _, start = _quadratic(xb)
    start = xb.asarray(np.array([1e300, 0.0]), "float64")
    with contextlib.ExitStack() as stack:
        # The user's gradient overflows on NumPy-based backends; np.errstate is
        # per thread, so Dask must compute in this one to honour it.
        stack.enter_context(np.errstate(over="ignore", invalid="ignore"))
        if xb.lazy:
            import dask

            stack.enter_context(dask.config.set(scheduler="synchronous"))
        result = ak.run_gradient_descent(grad, start, lr=10.0, steps=5000, sync_every=100)
        kept = ak.run_gradient_descent(
            grad, start, lr=10.0, steps=500, sync_every=100, stop_on_divergence=False
        )
    assert result.diverged
    assert result.steps < 5000
    assert kept.diverged
    assert kept.steps == 500
    assert not np.isfinite(xb.to_numpy(kept.params)).all()


@pytest.mark.parametrize("optimizer", ["gradient_descent", "adam"])
@pytest.mark.parametrize("xb", backends.ids(lazy=True), indirect=True)
def test_dask_graph_stays_bounded(xb: Backend, optimizer: str) -> None:
    import dask

    if xb.remote and optimizer == "adam":
        pytest.skip("Adam's graphs on the cluster are the local column's, at 1 s a compute")

    grad, loss, start = _quadratic(xb)
    opt = ak.optim.gradient_descent(0.1) if optimizer == "gradient_descent" else ak.optim.adam(0.1)
    options = {"sync_every": 25, "record_every": 25, "loss": loss}
    short = ak.optimize(opt, grad, start, steps=50, **options)
    long = ak.optimize(opt, grad, start, steps=500, **options)
    # Persisted every 25 steps, the final parameters hang on a graph of at most
    # 25 steps, however many were taken; history and losses on a graph that
    # grows with the records kept (a stack of persisted pieces), not the steps.
    assert len(long.params.__dask_graph__()) <= len(short.params.__dask_graph__())
    for name in ("history", "losses"):
        per_record = [len(getattr(r, name).__dask_graph__()) / len(r.losses) for r in (short, long)]
        assert per_record[1] <= per_record[0], name
    # Trajectory and losses come back together, in one pass.
    history, losses = dask.compute(long.history, long.losses)
    np.testing.assert_allclose(
        history[-1], [3.0, -1.0], rtol=1e-12 if optimizer != "adam" else 1e-3
    )
    np.testing.assert_allclose(losses, ((history - [3.0, -1.0]) ** 2).sum(axis=1), atol=1e-24)


def test_jax_runs_compiled_and_cuts_at_divergence() -> None:
    jax_backend = backends.get("jax:cpu")
    if not jax_backend.available:
        pytest.skip(jax_backend.unavailable)
    grad, loss, start = _quadratic(jax_backend)
    start = jax_backend.asarray(np.array([1e300, 0.0]), "float64")
    result = ak.run_gradient_descent(grad, start, lr=10.0, steps=100, loss=loss)
    assert result.diverged
    history = np.asarray(result.history)
    assert np.isfinite(history[:-1]).all()
    assert not np.isfinite(history[-1]).all()
    assert result.steps == len(history) - 1


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"steps": -1}, ValueError, "steps must be >= 0; got -1"),
        ({"steps": 2.5}, TypeError, "steps must be an int; got float"),
        ({"steps": 5, "record_every": 0}, ValueError, "record_every must be >= 1"),
        ({"steps": 5, "sync_every": 0}, ValueError, "sync_every must be >= 1"),
    ],
)
def test_bad_counts(options: dict[str, Any], error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        ak.run_gradient_descent(lambda p: p, np.zeros(2), lr=0.1, **options)


@pytest.mark.parametrize("xb", ["numpy", "torch:cpu", "array_api_strict"], indirect=True)
def test_divergence_stops_at_once_and_silently(xb: Backend) -> None:
    # p ← p − 10·2p = −19·p: float64 overflows after log(1.8e308)/log(19) = 241 steps.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = ak.optimize(
            ak.optim.gradient_descent(lr=10.0),
            lambda p: 2 * p,
            xb.asarray(np.ones(3), "float64"),
            steps=1000,
        )
    history = xb.to_numpy(result.history)
    first_bad = int(np.argmax(~np.isfinite(history).all(axis=1)))
    assert result.diverged
    assert result.steps == first_bad == 242
    assert np.isfinite(history[:first_bad]).all()


def test_default_history_fits_its_budget() -> None:
    from arraykit import drivers

    big = np.zeros((1000, 1000))
    result = ak.optimize(ak.optim.gradient_descent(0.1), lambda p: p, big, steps=100)
    assert result.history.nbytes <= drivers.HISTORY_BUDGET
    assert result.history.shape == (7, 1000, 1000)  # the start and every 15th step
    small = ak.optimize(ak.optim.gradient_descent(0.1), lambda p: p, np.zeros(2), steps=100)
    assert small.history.shape == (101, 2)


@pytest.mark.parametrize(
    ("old", "new"), [("adagrad", "run_adagrad"), ("gradient_descent", "run_gradient_descent")]
)
def test_old_runner_names_warn_and_still_work(old: str, new: str) -> None:
    with pytest.warns(DeprecationWarning, match=f"arraykit.{old} was renamed arraykit.{new}"):
        runner = getattr(ak, old)
    assert runner is getattr(ak, new)
    lr = 1.0 if old == "adagrad" else 0.25
    result = runner(lambda p: 2 * (p - 3.0), np.array(0.0), lr=lr, steps=500)
    assert abs(float(result.params) - 3.0) < 1e-6
