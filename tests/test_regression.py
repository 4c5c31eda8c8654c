"""The classic regression problem: data, optimum, loss surface, fitted lines."""

from __future__ import annotations

import warnings
from fractions import Fraction
from typing import Any

import numpy as np
import pytest

from arraykit import regression
from backends import Backend
from benchmarks.regression import classic_numpy

from .assertions import assert_close, assert_kind

X = np.array(regression.CLASSIC_X)
Y = np.array(regression.CLASSIC_Y)
START = regression.CLASSIC_START


def _data(xb: Backend, dtype: str = "float64") -> tuple[Any, Any]:
    return xb.asarray(X, dtype), xb.asarray(Y, dtype)


def _exact_optimum(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    xs, ys = [Fraction(float(v)) for v in x], [Fraction(float(v)) for v in y]
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    w = sum((a - mx) * (b - my) for a, b in zip(xs, ys, strict=True)) / sum(
        (a - mx) ** 2 for a in xs
    )
    return float(my - w * mx), float(w)


def _exact_loss(x: np.ndarray, y: np.ndarray, b: float, w: float) -> float:
    terms = [
        (Fraction(float(c)) - Fraction(b) - Fraction(w) * Fraction(float(a))) ** 2
        for a, c in zip(x, y, strict=True)
    ]
    return float(sum(terms) / len(terms))


def _classic_loop(lr: float, steps: int, adagrad: bool = False) -> np.ndarray:
    """The classic notebook's loop on the raw data, in float64: every iterate."""
    return classic_numpy(lr, steps, adagrad, path=True)  # type: ignore[no-any-return]


def test_classic_data(xb: Backend, dtype: str) -> None:
    if dtype not in ("float32", "float64"):
        pytest.skip("the classic data in the standard dtypes")
    x, y = regression.classic_data(
        xp=xb.namespace, device=xb.device, dtype=getattr(xb.namespace, dtype)
    )
    assert_close(x, X, xb, dtype, ulps=0)
    assert_close(y, Y, xb, dtype, ulps=0)


def test_least_squares(xb: Backend) -> None:
    x, y = _data(xb)
    assert_close(regression.least_squares(x, y), _exact_optimum(X, Y), xb, "float64", ulps=8)


def test_least_squares_float32(xb: Backend) -> None:
    if "float32" not in xb.dtypes:
        pytest.skip("no float32")
    x, y = _data(xb, "float32")
    # Rounding the data's centred sums in float32: the optimum to ~1e-5.
    got = xb.to_numpy(regression.least_squares(x, y)).astype(np.float64)
    np.testing.assert_allclose(got, _exact_optimum(X, Y), rtol=2e-5)


def test_loss_surface_orientation_and_values(xb: Backend) -> None:
    x, y = _data(xb)
    b = np.array([-200.0, -150.0, -188.43319666, -100.0, 0.0])
    w = np.array([-5.0, 2.66945497, 5.0])
    z = regression.loss_surface(x, y, xb.asarray(b, "float64"), xb.asarray(w, "float64"))
    desired = np.array([[_exact_loss(X, Y, bi, wj) for bi in b] for wj in w])
    assert_close(z, desired, xb, "float64", ulps=16)


@pytest.mark.parametrize("lr", [1e-7, 1e-6, 1e-5])
def test_gradient_descent_closed_form_matches_stepping(lr: float) -> None:
    steps = 100_000
    result = regression.fit_line(X, Y, lr=lr, steps=steps, start=START)
    stepped = _classic_loop(lr, steps)
    assert result.history.shape == (steps + 1, 2)
    scale = np.abs(stepped).max(axis=0)
    assert (np.abs(result.history - stepped) / scale).max() < 1e-9
    losses = np.array([_exact_loss(X, Y, *stepped[i]) for i in (0, 1, 10, 1000, steps)])
    np.testing.assert_allclose(result.losses[[0, 1, 10, 1000, steps]], losses, rtol=1e-11)
    assert not result.diverged


def test_gradient_descent_diverges_visibly() -> None:
    result = regression.fit_line(X, Y, lr=2e-5, steps=10_000, start=START)
    assert result.diverged
    assert result.steps < 10_000
    assert not np.isfinite(result.params).all()


def test_adagrad_matches_stepping() -> None:
    steps = 20_000
    result = regression.fit_line(
        X, Y, optimizer="adagrad", lr=1.0, steps=steps, eps=0.0, start=START
    )
    stepped = _classic_loop(1.0, steps, adagrad=True)
    scale = np.abs(stepped).max(axis=0)
    assert (np.abs(result.history - stepped) / scale).max() < 1e-9


def test_adagrad_reaches_the_optimum() -> None:
    result = regression.fit_line(X, Y, optimizer="adagrad", lr=1.0, steps=100_000, start=START)
    b, w = _exact_optimum(X, Y)
    distance = np.hypot(result.params[0] - b, result.params[1] - w)
    # Within 0.07 of (b*, w*) = (-188.43, 2.67), from 68 away; the loss within 1e-6 of its minimum.
    assert distance < 0.07
    assert result.losses[-1] < _exact_loss(X, Y, b, w) * (1 + 1e-6)


@pytest.mark.parametrize("optimizer", ["gd", "adagrad"])
def test_fit_line_on_every_backend(xb: Backend, optimizer: str) -> None:
    steps, lr = (2000, 1.0) if optimizer == "adagrad" else (100_000, 1e-5)
    x, y = _data(xb)
    result = regression.fit_line(
        x, y, optimizer=optimizer, lr=lr, steps=steps, record_every=100, start=START
    )
    reference = regression.fit_line(
        X, Y, optimizer=optimizer, lr=lr, steps=steps, record_every=100, start=START
    )
    assert_kind(result.history, xb, "float64", (steps // 100 + 1, 2))
    assert_kind(result.losses, xb, "float64", (steps // 100 + 1,))
    assert_kind(result.params, xb, "float64", (2,))
    np.testing.assert_allclose(xb.to_numpy(result.history), reference.history, rtol=1e-12)
    np.testing.assert_allclose(xb.to_numpy(result.losses), reference.losses, rtol=1e-12)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda: regression.fit_line(X, Y, optimizer="sgd", lr=1.0, steps=1),
            ValueError,
            "optimizer must be 'gd' or 'adagrad'",
        ),
        (
            lambda: regression.fit_line(X, Y, lr=0.0, steps=1),
            ValueError,
            "lr must be a finite number > 0",
        ),
        (
            lambda: regression.fit_line(X, Y, lr=1.0, steps=1, start=(1.0,)),
            ValueError,
            r"start must be \(b0, w0\)",
        ),
        (
            lambda: regression.fit_line(X, Y, lr=1.0, steps=1, eps=0.1),
            TypeError,
            "gradient descent takes no options",
        ),
        (
            lambda: regression.least_squares(X, Y[:5]),
            ValueError,
            "x and y must have the same shape",
        ),
        (
            lambda: regression.least_squares(X[:1], Y[:1]),
            ValueError,
            "a line needs at least 2 points",
        ),
        (lambda: regression.least_squares(X[None], Y[None]), ValueError, "x must be 1-D"),
    ],
)
def test_bad_arguments(call: Any, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize("optimizer", ["gd", "adagrad"])
def test_fit_line_on_other_data_starts_where_it_suits(optimizer: str) -> None:
    # The classic start belongs to the classic data: other data starts at the origin.
    lr = 0.5 if optimizer == "adagrad" else 0.05
    result = regression.fit_line(
        [1.0, 2.0, 3.0], [2.0, 4.0, 6.0], optimizer=optimizer, lr=lr, steps=5000
    )
    np.testing.assert_allclose(result.history[0], [0.0, 0.0])
    np.testing.assert_allclose(result.params, [0.0, 2.0], atol=1e-9)


def test_adagrad_on_torch_is_the_loop_and_differentiable() -> None:
    torch = pytest.importorskip("torch")
    x = torch.tensor(X, dtype=torch.float64, requires_grad=True)
    y = torch.tensor(Y, dtype=torch.float64)
    steps = 300
    result = regression.fit_line(x, y, optimizer="adagrad", lr=1.0, steps=steps, start=START)
    expected = regression.fit_line(X, Y, optimizer="adagrad", lr=1.0, steps=steps, start=START)
    np.testing.assert_allclose(result.history.detach().numpy(), expected.history, rtol=1e-12)
    # A derivative through all the steps, against central differences of the NumPy run.
    (gradient,) = torch.autograd.grad(result.params[1], x)
    h = 1e-4
    for i in (0, 5, 9):
        up, down = X.copy(), X.copy()
        up[i] += h
        down[i] -= h
        fd = (
            regression.fit_line(up, Y, optimizer="adagrad", lr=1.0, steps=steps, start=START).params
            - regression.fit_line(
                down, Y, optimizer="adagrad", lr=1.0, steps=steps, start=START
            ).params
        )[1] / (2 * h)
        np.testing.assert_allclose(float(gradient[i]), fd, rtol=1e-5)


def test_adagrad_loop_marks_divergence_and_is_cut() -> None:
    # From the edge of the float range the first gradient overflows.
    result = regression.fit_line(X, Y, optimizer="adagrad", lr=1.0, steps=5000, start=(1e308, 0.0))
    assert result.diverged
    # Cut at the first non-finite record, as a loop that checked each step would stop.
    assert result.steps == 1
    assert result.history.shape == (2, 2)
    assert np.isnan(result.history[1]).all()


OPTIONS = [
    ((-120.0, -4.0), (1.0, 1e-10, 0.0, 0.0, 0.0)),
    ((-120.0, -4.0), (0.5, 0.0, 0.1, 0.01, 0.001)),
    ((1e308, 0.0), (1.0, 1e-10, 0.0, 0.0, 0.0)),  # the gradient overflows: a divergence
]
"""Starts, and Adagrad's (lr, eps, initial, decay, penalty): torch's defaults, every option."""


@pytest.mark.parametrize(("begin", "options"), OPTIONS)
def test_compiled_line_adagrad_is_the_python_loop(
    begin: tuple[float, float], options: tuple[float, ...]
) -> None:
    """float64: the compiled loop gives the Python-float loop's iterates bit for bit;
    float32: those of stepping float32 arrays, rounding for rounding."""
    from arraykit import _adagrad
    from arraykit._array_api import NUMPY_XP

    if _adagrad.compiled is None:
        pytest.skip("the C kernels were not built")
    moments = np.array([5.5, 8.25, -188.43, 2.67, 1e-13, -3e-12])
    start = np.array(begin)
    out = np.empty((5000 // 7 + 2, 2))
    assert _adagrad.compiled.line_adagrad(moments, start, out, 5000, 7, *options, 1000)
    floats = _adagrad._line_adagrad_floats([float(v) for v in moments], begin, 5000, 7, *options)
    np.testing.assert_array_equal(out, floats)
    if begin[0] > 1e300:
        assert np.isnan(out[-1]).all()  # diverged, and marked so
    m32 = moments.astype(np.float32)
    s32 = np.clip(start, -3e38, 3e38).astype(np.float32)  # a divergence in float32 too
    out32 = np.empty((300 // 7 + 2, 2), dtype=np.float32)
    assert _adagrad.compiled.line_adagrad(m32, s32, out32, 300, 7, *options, 1000)
    with np.errstate(over="ignore", invalid="ignore"):  # a divergence, in NumPy
        stepped = _adagrad.line_adagrad_stepped(m32, s32, 300, 7, *options, xp=NUMPY_XP)
    # Equal here; a BLAS that fuses the 2 × 2 product's multiply-adds may differ by ulps.
    np.testing.assert_allclose(out32, stepped, rtol=4e-6)


def test_float32_adagrad_on_torch_runs_the_host_loop() -> None:
    """torch float32 takes the host loop, as NumPy does: a few dozen torch operations
    (the moments, the path's loss), not 100,000 steps of a dozen each."""
    torch = pytest.importorskip("torch")
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        operations = 0

        def __torch_dispatch__(
            self, func: Any, types: Any, args: Any = (), kwargs: Any = None
        ) -> Any:
            Count.operations += 1
            return func(*args, **(kwargs or {}))

    x, y = regression.classic_data()
    x32, y32 = x.astype(np.float32), y.astype(np.float32)
    options = {"optimizer": "adagrad", "lr": 1.0, "steps": 100_000, "start": START}
    with Count():
        ours = regression.fit_line(torch.from_numpy(x32), torch.from_numpy(y32), **options)
    assert Count.operations < 200
    numpy_run = regression.fit_line(x32, y32, **options)
    assert ours.params.dtype == torch.float32
    # The moments are each backend's own float32 sums: paths agree to their rounding.
    np.testing.assert_allclose(ours.history.numpy(), numpy_run.history, rtol=1e-5, atol=1e-5)


def _stepped(x: np.ndarray, y: np.ndarray, lr: float, steps: int, start: Any) -> np.ndarray:
    """Gradient descent on the mean squared error, one step at a time, in float64."""
    b, w = start
    for _ in range(steps):
        e = y - b - w * x
        b, w = b + lr * 2.0 * e.mean(), w + lr * 2.0 * (e * x).mean()
    return np.array([b, w])


@pytest.mark.parametrize("value", [3.0, 0.1, -2.5])
def test_constant_x_is_stepped_not_nan(xb: Backend, value: float) -> None:
    # Every line through (c, ȳ) fits; gradient descent still converges, to
    # the point of that line that the steps reach. (0.1: a mean that rounds.)
    x, y = np.full(10, value), np.arange(10.0)
    start = (3.0, -2.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = regression.fit_line(
            xb.asarray(x, "float64"), xb.asarray(y, "float64"), lr=0.02, steps=300, start=start
        )
        optimum = regression.least_squares(xb.asarray(x, "float64"), xb.asarray(y, "float64"))
    assert not result.diverged
    np.testing.assert_allclose(
        xb.to_numpy(result.params), _stepped(x, y, 0.02, 300, start), rtol=1e-12, atol=1e-12
    )
    lstsq = np.linalg.lstsq(np.stack([np.ones(10), x], axis=1), y, rcond=None)[0]
    np.testing.assert_allclose(xb.to_numpy(optimum), lstsq, rtol=1e-13)
    adagrad = regression.fit_line(x, y, optimizer="adagrad", lr=0.1, steps=3000, start=start)
    b, w = adagrad.params
    assert abs(b + w * value - y.mean()) < 1e-6  # on the line of best fits


def test_a_rate_beyond_the_float_range_diverges_at_step_one() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = regression.fit_line(X, Y, lr=1e308, steps=100, start=START)
    assert result.diverged
    assert result.steps == 1
    np.testing.assert_array_equal(result.history[0], START)
    assert result.losses[0] == _exact_loss(X, Y, *START)


@pytest.mark.parametrize("start", [(0.0, 0.0), START, (1e-300, 3.0)])
def test_the_first_record_is_the_start_exactly(start: tuple[float, float]) -> None:
    for steps in (0, 1, 1000):
        result = regression.fit_line(X, Y, lr=1e-6, steps=steps, start=start)
        np.testing.assert_array_equal(result.history[0], start)
        if steps == 0:
            np.testing.assert_array_equal(result.params, start)
            assert result.history.shape == (1, 2)


def test_the_result_says_which_steps_it_kept() -> None:
    import arraykit as ak

    result = regression.fit_line(X, Y, lr=1e-6, steps=100, record_every=7, start=START)
    assert result.record_every == 7
    assert list(result.recorded_steps) == list(range(0, 100, 7))
    assert len(result.recorded_steps) == result.history.shape[0]
    stepped = _classic_loop(1e-6, 100)
    np.testing.assert_allclose(result.history, stepped[list(result.recorded_steps)], rtol=1e-12)
    # A history thinned to its memory budget says so too.
    big = np.ones(3_000_000)
    thinned = ak.optimize(ak.optim.gradient_descent(0.1), lambda p: p, big, steps=40)
    assert thinned.record_every > 1
    assert (
        list(thinned.recorded_steps)
        == list(range(0, 41, thinned.record_every))[: thinned.history.shape[0]]
    )


def test_ctrl_c_stops_the_compiled_loop_at_once() -> None:
    import signal
    import subprocess
    import sys
    import time

    from arraykit import _adagrad

    if _adagrad.compiled is None:
        pytest.skip("the C kernels were not built")
    code = (
        "import arraykit as ak\n"
        "x, y = ak.regression.classic_data()\n"
        "print('ready', flush=True)\n"
        "try:\n"
        "    ak.regression.fit_line(x, y, optimizer='adagrad', lr=1.0, steps=10**11,"
        " record_every=10**10)\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted', flush=True)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    assert child.stdout.readline() == "ready\n"
    time.sleep(0.5)  # inside the loop, which would take minutes
    sent = time.perf_counter()
    child.send_signal(signal.SIGINT)
    out, _ = child.communicate(timeout=60)
    assert out == "interrupted\n"
    assert time.perf_counter() - sent < 5.0
