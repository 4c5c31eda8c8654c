"""The Triton kernels that serve CUDA tensors, held to the matrix's references.

On a machine with a CUDA GPU these run on it; elsewhere on CPU tensors under
Triton's interpreter (``TRITON_INTERPRET=1``, set by ``conftest.py``), which
runs the same kernels operation by operation in NumPy. The kernels build
every transcendental from IEEE operations (no approximate instructions, no
libdevice), so the values checked here are those a GPU computes. Each kernel
is checked on the matrix's inputs, on rows longer than one tile (the
multi-pass form), on ±inf, NaN and the extremes of each dtype, and for the
bytes it declares to the cost model, counted here load by load.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Iterator
from typing import Any

import mpmath as mp
import numpy as np
import pytest

import backends

from . import reference
from .assertions import assert_close, ulp_error
from .test_primitives import _normalize_input, _softmax_input

SOFTMAX_SPECIAL_ROWS, SOFTMAX_SPECIAL_LIMITS = reference.special_rows("softmax")
NORMALIZE_SPECIAL_ROWS, NORMALIZE_SPECIAL_LIMITS = reference.special_rows("normalize_rows")

torch = pytest.importorskip("torch")
pytest.importorskip("triton")

from arraykit._native import _triton as kernels  # noqa: E402
from arraykit._native import torch as operators  # noqa: E402

ON_GPU = torch.cuda.is_available()
INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"
if not (ON_GPU or INTERPRETED):
    pytest.skip(
        "no CUDA GPU, and Triton's interpreter was not switched on (TRITON_INTERPRET=1) "
        "before the kernels were compiled",
        allow_module_level=True,
    )

XB = backends.get("torch:cuda" if ON_GPU else "torch:cpu")
DTYPES = ("float16", "bfloat16", "float32", "float64")


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    # The interpreter computes in NumPy, which warns where a GPU silently
    # gives inf or NaN (inf - inf inside a TwoSum, say); the results are checked.
    with np.errstate(all="ignore"):
        yield


def _put(values: Any, dtype: str) -> tuple[Any, np.ndarray]:
    array = XB.asarray(np.asarray(values, dtype=np.float64), dtype)
    return array, XB.to_numpy(array).astype(np.float64)


# --- forward kernels, against the matrix's references --------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_derivative(dtype: str) -> None:
    x, values = _put(reference.finite_values(dtype, 400, seed=1), dtype)
    limits, _ = _put([-math.inf, math.inf, math.nan, 0.0], dtype)
    with _quiet():
        assert_close(kernels.sigmoid_derivative(x), reference.sigmoid_derivative(values), XB, dtype)
        assert_close(kernels.sigmoid_derivative(limits), [0.0, 0.0, math.nan, 0.25], XB, dtype)


@pytest.mark.parametrize("max_block", [kernels.MAX_ROW_BLOCK, 4])
@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax(dtype: str, max_block: int) -> None:
    """Rows of the matrix's test (extremes included), in one tile and in tiles of 4."""
    with _quiet():
        x, values = _put(_softmax_input(dtype, seed=2), dtype)
        assert_close(kernels.softmax(x, (1,), max_block), reference.softmax_rows(values), XB, dtype)
        x, values = _put(np.random.default_rng(9).normal(size=(20, 100)) * 4, dtype)
        assert_close(kernels.softmax(x, (1,), max_block), reference.softmax_rows(values), XB, dtype)
        x, _ = _put(SOFTMAX_SPECIAL_ROWS, dtype)
        assert_close(kernels.softmax(x, (1,), max_block), SOFTMAX_SPECIAL_LIMITS, XB, dtype, ulps=0)


LOG_SOFTMAX_SPECIAL_ROWS, LOG_SOFTMAX_SPECIAL_LIMITS = reference.special_rows("log_softmax")
LOGSUMEXP_SPECIAL_ROWS, LOGSUMEXP_SPECIAL_LIMITS = reference.special_rows("logsumexp")


def _log_space_rows(dtype: str) -> np.ndarray:
    """Rows at every scale, rows whose maximum holds nearly all the mass (the others
    far below, or all equal), ties at the maximum, and rows at the dtype's extremes."""
    rng = np.random.default_rng(21)
    scales = np.array([0.01, 1.0, 5.0, 30.0, 300.0])[rng.integers(0, 5, size=(24, 1))]
    rows = rng.normal(size=(24, 37)) * scales
    rows[0, :], rows[0, 3] = -50.0, 0.0
    rows[1, :], rows[1, 5] = -15.0, 1e-3
    rows[2, :4] = rows[2].max()
    big = float(np.finfo(dtype).max) if dtype in ("float32", "float64") else 6e4
    rows[3] = np.linspace(-0.5, 0.5, 37) * big
    return rows


@pytest.mark.parametrize("max_block", [kernels.MAX_ROW_BLOCK, 16])
@pytest.mark.parametrize("dtype", DTYPES)
def test_log_softmax_and_logsumexp(dtype: str, max_block: int) -> None:
    """Against mpmath, in one tile and in tiles of 16; the limits of ±inf and NaN rows."""
    with _quiet():
        x, values = _put(_log_space_rows(dtype), dtype)
        got = kernels.log_softmax(x, (1,), max_block)
        assert_close(got, reference.log_softmax(values), XB, dtype)
        got = kernels.logsumexp(x, (1,), False, max_block)
        assert_close(got, reference.logsumexp(values), XB, dtype)
        tiles = 2 if max_block < kernels.MAX_ROW_BLOCK else max_block  # the special rows: 4 long
        x, _ = _put(LOG_SOFTMAX_SPECIAL_ROWS, dtype)
        got = kernels.log_softmax(x, (1,), tiles)
        assert_close(got, LOG_SOFTMAX_SPECIAL_LIMITS, XB, dtype, ulps=0.5)
        x, _ = _put(LOGSUMEXP_SPECIAL_ROWS, dtype)
        got = kernels.logsumexp(x, (1,), True, tiles)
        assert_close(got, LOGSUMEXP_SPECIAL_LIMITS, XB, dtype, ulps=0.5)


def test_row_kernels_over_other_axes() -> None:
    """softmax, log_softmax and logsumexp (kept and reduced) over one axis and two,
    the first and the last, against the references of the rows moved last."""
    rng = np.random.default_rng(3)
    x, values = _put(rng.normal(size=(3, 4, 5)) * 5, "float64")
    with _quiet():
        for axes in ((0,), (0, 2), (1, 2)):
            keep = [a for a in range(3) if a not in axes]
            moved = np.transpose(values, keep + list(axes))
            flat = moved.reshape(int(np.prod([values.shape[a] for a in keep])), -1)
            back = np.argsort(keep + list(axes))
            for kernel, rows in (
                (kernels.softmax, reference.softmax_rows),
                (kernels.log_softmax, reference.log_softmax),
            ):
                desired = np.transpose(rows(flat).reshape(moved.shape), back)
                assert_close(kernel(x, axes), desired, XB, "float64")
            totals = reference.logsumexp(flat).reshape([values.shape[a] for a in keep])
            assert_close(kernels.logsumexp(x, axes, False), totals, XB, "float64")
            kept = kernels.logsumexp(x, axes, True)
            kept_shape = tuple(1 if a in axes else n for a, n in enumerate((3, 4, 5)))
            assert tuple(kept.shape) == kept_shape


@pytest.mark.parametrize("max_block", [kernels.MAX_ROW_BLOCK, 2])
@pytest.mark.parametrize("dtype", DTYPES)
def test_normalize_rows(dtype: str, max_block: int) -> None:
    """Rows at every scale of the dtype (their squares under- and overflow), and the limits."""
    with _quiet():
        x, values = _put(_normalize_input(dtype, seed=4), dtype)
        assert_close(
            kernels.normalize_rows(x, max_block), reference.normalize_rows(values), XB, dtype
        )
        x, _ = _put(NORMALIZE_SPECIAL_ROWS, dtype)
        assert_close(
            kernels.normalize_rows(x, max_block), NORMALIZE_SPECIAL_LIMITS, XB, dtype, ulps=1
        )


LOSS_SCALES = {"float16": 2.0**12, "bfloat16": 2.0**120, "float32": 2.0**120, "float64": 2.0**1016}


@pytest.mark.parametrize("reduction", ["sum", "mean", "none"])
@pytest.mark.parametrize("power", [1, 2])
@pytest.mark.parametrize("dtype", DTYPES)
def test_losses(dtype: str, power: int, reduction: str) -> None:
    """Errors across the whole range; sums over several blocks, finished in several chunks."""
    with _quiet():
        for exponent in (-1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0):
            rng = np.random.default_rng(6)
            size = LOSS_SCALES[dtype] ** exponent
            yhat, a = _put(rng.normal(size=20) * size, dtype)
            y, b = _put(rng.normal(size=20) * size, dtype)
            desired = reference.loss(a, b, power, reduction)
            assert_close(kernels.loss(yhat, y, reduction, power), desired, XB, dtype)
            small = kernels.loss(yhat, y, reduction, power, block=4, finish_block=2)
            assert_close(small, desired, XB, dtype)


def test_losses_overflow_only_when_the_result_does() -> None:
    big = 1e308
    yhat, _ = _put([big, -big, 0.0], "float64")
    y, _ = _put([-big, big, 0.0], "float64")
    with _quiet():
        assert_close(kernels.loss(yhat, y, "none", 1), [math.inf, math.inf, 0.0], XB, "float64")
        assert_close(kernels.loss(yhat, y, "sum", 1), math.inf, XB, "float64", ulps=0)
        assert_close(kernels.loss(yhat, y, "mean", 1), 4 * (big / 3), XB, "float64", ulps=2)
        tiny, _ = _put(np.full(100, 3e-155), "float64")
        zero, _ = _put(np.zeros(100), "float64")
        desired = float(mp.mpf(3e-155) ** 2 * 100)
        assert_close(kernels.loss(tiny, zero, "sum", 2), desired, XB, "float64")


def test_empty_inputs_launch_nothing() -> None:
    empty, _ = _put(np.zeros((0, 3)), "float32")
    with kernels.recording() as launches:
        assert kernels.sigmoid_derivative(empty).shape == (0, 3)
        assert kernels.normalize_rows(empty).shape == (0, 3)
        assert kernels.softmax(empty, (1,)).shape == (0, 3)
        assert kernels.loss(empty, empty, "none", 2).shape == (0, 3)
    assert launches == []
    with _quiet():
        assert_close(kernels.loss(empty, empty, "sum", 1), 0.0, XB, "float32", ulps=0)
        assert_close(kernels.loss(empty, empty, "mean", 2), math.nan, XB, "float32", ulps=0)


# --- backward kernels, against exact derivatives -------------------------------------------

mp.mp.prec = 113


def _assert_gradient(got: Any, exact: np.ndarray, scale: np.ndarray, dtype: str) -> None:
    """Within 4 ulp of the exact gradient, or of 4 ulp of ``scale`` (the size of the
    terms that cancel in it, row by row) where cancellation leaves less."""
    values = XB.to_numpy(got).astype(np.float64)
    err = ulp_error(values, exact, dtype)
    spacing = {"float16": 2.0**-10, "bfloat16": 2.0**-7, "float32": 2.0**-23}.get(dtype, 2.0**-52)
    cancelled = np.abs(values - exact) <= 4 * spacing * scale
    assert ((err <= 4) | cancelled).all(), f"max {err.max():.3g} ulp at {np.argmax(err)}"


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_backwards(dtype: str) -> None:
    x, values = _put(reference.finite_values(dtype, 300, seed=7), dtype)
    g, weights = _put(np.linspace(-1.5, 2.5, values.size), dtype)

    def times(function: Callable[[mp.mpf], mp.mpf]) -> np.ndarray:
        return np.array(
            [float(function(mp.mpf(v)) * mp.mpf(w)) for v, w in zip(values, weights, strict=True)]
        )

    def first(v: mp.mpf) -> mp.mpf:
        return mp.exp(-abs(v)) / (1 + mp.exp(-abs(v))) ** 2

    def second(v: mp.mpf) -> mp.mpf:
        e = mp.exp(-abs(v))
        return -mp.sign(v) * e * -mp.expm1(-abs(v)) / (1 + e) ** 3

    with _quiet():
        assert_close(kernels.sigmoid_backward(g, x), times(first), XB, dtype)
        assert_close(kernels.sigmoid_derivative_backward(g, x), times(second), XB, dtype)


def _rows_exact(function: Callable[..., list[mp.mpf]], *matrices: np.ndarray) -> np.ndarray:
    return np.array([[float(v) for v in function(*rows)] for rows in zip(*matrices, strict=True)])


@pytest.mark.parametrize("max_block", [kernels.MAX_ROW_BLOCK, 4])
@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_backward(dtype: str, max_block: int) -> None:
    rng = np.random.default_rng(11)
    with _quiet():
        x, _ = _put(rng.normal(size=(6, 9)) * 3, dtype)
        y, ys = _put(XB.to_numpy(kernels.softmax(x, (1,))), dtype)
    g, gs = _put(rng.normal(size=(6, 9)), dtype)

    def row(yr: np.ndarray, gr: np.ndarray) -> list[mp.mpf]:
        dot = mp.fsum(mp.mpf(a) * mp.mpf(b) for a, b in zip(gr, yr, strict=True))
        return [mp.mpf(a) * (mp.mpf(b) - dot) for a, b in zip(yr, gr, strict=True)]

    scale = np.abs(ys) * (np.abs(gs) + np.abs(gs * ys).sum(axis=1, keepdims=True))
    with _quiet():
        got = kernels.softmax_backward(g, y, (1,), max_block)
    _assert_gradient(got, _rows_exact(row, ys, gs), scale, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_softplus(dtype: str) -> None:
    """softplus (the logistic kernel without labels) over the whole finite range and its
    limits, against mpmath; its gradient g·σ(x) against mpmath's σ."""
    x, values = _put(reference.finite_values(dtype, 400, seed=28), dtype)
    limits, _ = _put([-math.inf, math.inf, math.nan, 0.0], dtype)
    g, gs = _put(np.random.default_rng(29).normal(size=values.size), dtype)
    with _quiet():
        assert_close(kernels.softplus(x), reference.softplus(values), XB, dtype)
        assert_close(kernels.softplus(limits), [0.0, math.inf, math.nan, math.log(2)], XB, dtype)
        got = kernels.softplus_backward(g, x)
    exact = reference.sigmoid(values) * gs  # exact products of rounded σ: within 1 ulp
    _assert_gradient(got, exact, np.abs(exact), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_logistic(dtype: str) -> None:
    """binary_cross_entropy_with_logits' kernel, each reduction (sums over several
    programs, finished in chunks of 2), against mpmath, over the logits' range, with
    hard and soft labels; the gradient in the logits against the exact σ(z) − y."""
    rng = np.random.default_rng(27)
    scales = np.resize([0.1, 1.0, 10.0, 40.0, 100.0, 700.0], 3000)
    big = float(np.finfo(dtype).max) if dtype in ("float32", "float64") else 6e4
    values = np.clip(rng.normal(size=3000) * scales, -big, big)
    labels = (rng.random(3000) > 0.5) * 1.0
    labels[::7] = rng.random(labels[::7].size)
    with _quiet():
        z, zs = _put(values, dtype)
        y, ys = _put(labels, dtype)
        for reduction in ("none", "sum", "mean"):
            got = kernels.logistic(z, y, reduction, 2)
            assert_close(
                got, reference.binary_cross_entropy_with_logits(zs, ys, reduction), XB, dtype
            )
        g, gs = _put(rng.normal(size=3000), dtype)
        got = kernels.logistic_backward(g, z, y, "none")

    def slope(a: float, b: float, w: float) -> float:
        # σ(z) − y without its cancellation: (1 − y) − σ(−z) for z >= 0.
        z_, y_ = mp.mpf(a), mp.mpf(b)
        if z_ >= 0:
            return float(((1 - y_) - 1 / (1 + mp.exp(z_))) * mp.mpf(w))
        return float((1 / (1 + mp.exp(-z_)) - y_) * mp.mpf(w))

    with mp.workdps(40):
        exact = np.array([slope(a, b, w) for a, b, w in zip(zs, ys, gs, strict=True)])
    hard = ys == np.round(ys)  # soft labels' σ(z) − y may cancel: within 4 ulp of its terms
    _assert_gradient(got, exact, np.where(hard, np.abs(exact), np.abs(gs)), dtype)


@pytest.mark.parametrize("max_block", [kernels.MAX_ROW_BLOCK, 16])
@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy(dtype: str, max_block: int) -> None:
    """Each reduction against mpmath (the sums over several programs, finished in chunks
    of 2); labels holding nearly all the mass, and none of it; the limits; NaN for an
    index out of range."""
    rows = _log_space_rows(dtype)
    labels = np.random.default_rng(24).integers(0, rows.shape[1], rows.shape[0])
    labels[0], labels[1] = 3, 0  # the label holding all the mass; one holding none
    with _quiet():
        x, values = _put(rows, dtype)
        t = torch.tensor(labels, device=x.device)
        for reduction in ("none", "sum", "mean"):
            got = kernels.cross_entropy(x, t, 1, reduction, max_block, 2)
            exact = reference.cross_entropy(values, labels, -1, reduction)
            assert_close(got, exact, XB, dtype)
        x, _ = _put(LOG_SOFTMAX_SPECIAL_ROWS, dtype)
        tiles = 2 if max_block < kernels.MAX_ROW_BLOCK else max_block  # the special rows: 4 long
        for picked in ([0, 1, 0, 1, 0], [1, 0, 1, 0, 1]):
            labels_ = torch.tensor(picked, device=x.device)
            got = kernels.cross_entropy(x, labels_, 1, "none", tiles)
            expected = -LOG_SOFTMAX_SPECIAL_LIMITS[np.arange(5), picked]
            assert_close(got, expected, XB, dtype, ulps=0.5)
        outside = torch.tensor([5, -1, 0, 1, 0], device=x.device)
        got = XB.to_numpy(kernels.cross_entropy(x, outside, 1, "none"))
        assert np.isnan(got[:2]).all()


@pytest.mark.parametrize("max_block", [kernels.MAX_ROW_BLOCK, 4])
@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_backward(dtype: str, max_block: int) -> None:
    """The softmax with the label's entry minus the others' sum (to 4 ulp: no
    cancellation), times an upstream value an example, or one over the count."""
    rows = _log_space_rows(dtype)[4:12, :9] * 0.2
    rows[0, :], rows[0, 2] = -8.0, 30.0  # p = 1 − 9e-14 at the label, in float64
    labels = np.random.default_rng(25).integers(0, 9, 8)
    labels[0] = 2
    x, xs = _put(rows, dtype)
    t = torch.tensor(labels, device=x.device)
    g, gs = _put(np.random.default_rng(26).normal(size=8), dtype)
    exact = reference.cross_entropy_gradient(xs, labels)
    with _quiet():
        got = kernels.cross_entropy_backward(g, x, t, 1, "none", max_block)
    _assert_gradient(got, exact * gs[:, None], np.abs(exact * gs[:, None]), dtype)
    scalar, value = _put(0.75, dtype)
    with _quiet():
        got = kernels.cross_entropy_backward(scalar, x, t, 1, "mean", max_block)
    _assert_gradient(got, exact * float(value) / 8, np.abs(exact) * float(value) / 8, dtype)


def _softmax_exact(xr: np.ndarray) -> list[mp.mpf]:
    shares = [mp.exp(v) for v in reference._log_softmax_row(xr)]
    return shares


@pytest.mark.parametrize("max_block", [kernels.MAX_ROW_BLOCK, 4])
@pytest.mark.parametrize("dtype", DTYPES)
def test_log_softmax_and_logsumexp_backward(dtype: str, max_block: int) -> None:
    """``g − p·Σ g`` and ``g·p``, ``p`` the softmax of the input, against mpmath."""
    rng = np.random.default_rng(23)
    x, xs = _put(rng.normal(size=(6, 9)) * 3, dtype)
    g, gs = _put(rng.normal(size=(6, 9)), dtype)
    h, hs = _put(rng.normal(size=6), dtype)

    def log_softmax_row(xr: np.ndarray, gr: np.ndarray) -> list[mp.mpf]:
        p = _softmax_exact(xr)
        total = mp.fsum(mp.mpf(v) for v in gr)
        return [mp.mpf(a) - b * total for a, b in zip(gr, p, strict=True)]

    p = np.array([[float(v) for v in _softmax_exact(r)] for r in xs])
    scale = np.abs(gs) + p * np.abs(gs).sum(axis=1, keepdims=True)
    with _quiet():
        got = kernels.log_softmax_backward(g, x, (1,), max_block)
    _assert_gradient(got, _rows_exact(log_softmax_row, xs, gs), scale, dtype)
    pairs = zip(xs, hs, strict=True)
    exact = np.array([[float(mp.mpf(w) * v) for v in _softmax_exact(r)] for r, w in pairs])
    with _quiet():
        got = kernels.logsumexp_backward(h, x, (1,), False, max_block)
    _assert_gradient(got, exact, np.abs(exact), dtype)


@pytest.mark.parametrize("max_block", [kernels.MAX_ROW_BLOCK, 2])
@pytest.mark.parametrize("dtype", DTYPES)
def test_normalize_rows_backward(dtype: str, max_block: int) -> None:
    x, xs = _put(_normalize_input(dtype, seed=4)[:8], dtype)  # scaled rows and a zero row
    g, gs = _put(np.random.default_rng(12).normal(size=xs.shape), dtype)

    def row(xr: np.ndarray, gr: np.ndarray) -> list[mp.mpf]:
        norm = mp.sqrt(mp.fsum(mp.mpf(v) ** 2 for v in xr))
        if norm == 0:
            return [mp.mpf(0)] * len(xr)
        unit = [mp.mpf(v) / norm for v in xr]
        dot = mp.fsum(mp.mpf(a) * u for a, u in zip(gr, unit, strict=True))
        return [(mp.mpf(a) - u * dot) / norm for a, u in zip(gr, unit, strict=True)]

    norms = np.array([float(mp.sqrt(mp.fsum(mp.mpf(v) ** 2 for v in r))) for r in xs])[:, None]
    usable = np.where(norms > 0, norms, 1)
    units = xs / usable
    scale = (np.abs(gs) + np.abs(units) * np.abs(gs * units).sum(axis=1, keepdims=True)) / usable
    with _quiet():
        got = kernels.normalize_rows_backward(g, x, max_block)
    _assert_gradient(got, _rows_exact(row, xs, gs), scale, dtype)
    with _quiet():
        x, _ = _put(NORMALIZE_SPECIAL_ROWS, dtype)
        g, _ = _put(np.ones(NORMALIZE_SPECIAL_ROWS.shape), dtype)
        got = XB.to_numpy(kernels.normalize_rows_backward(g, x, max_block))
    # Zero and infinite rows: 0; a NaN row: NaN.
    np.testing.assert_array_equal(got[:3], 0.0)
    assert np.isnan(got[3]).all()


@pytest.mark.parametrize("reduction", ["sum", "mean", "none"])
@pytest.mark.parametrize("power", [1, 2])
@pytest.mark.parametrize("dtype", DTYPES)
def test_loss_backward(dtype: str, power: int, reduction: str) -> None:
    rng = np.random.default_rng(13)
    for exponent in (-1.0, 0.0, 1.0):
        size = LOSS_SCALES[dtype] ** exponent
        yhat, a = _put(rng.normal(size=12) * size, dtype)
        y, b = _put(np.where(np.arange(12) == 3, a, rng.normal(size=12) * size), dtype)
        shape = () if reduction != "none" else (12,)
        g, weights = _put(rng.normal(size=shape) if shape else 0.75, dtype)
        count = 12 if reduction == "mean" else 1

        def one(u: float, v: float, w: float, count: int = count) -> float:
            d = mp.mpf(u) - mp.mpf(v)
            slope = mp.sign(d) if power == 1 else 2 * d
            return float(slope * mp.mpf(w) / count)

        triples = zip(a, b, np.broadcast_to(weights, (12,)), strict=True)
        exact = np.array([one(u, v, w) for u, v, w in triples])
        with _quiet():
            assert_close(kernels.loss_backward(g, yhat, y, reduction, power), exact, XB, dtype)


# --- the bytes each launch declares to the cost model --------------------------------------


@contextlib.contextmanager
def _counting_memory() -> Iterator[list[int]]:
    """Bytes each interpreted launch loads and stores (a scalar read by every program once)."""
    from triton.runtime import interpreter

    builder = interpreter.InterpreterBuilder
    load, store = builder.create_masked_load, builder.create_masked_store
    counts: list[int] = []
    scalars: set[int] = set()

    def counted_load(self: Any, ptrs: Any, mask: Any, *rest: Any) -> Any:
        out = load(self, ptrs, mask, *rest)
        if ptrs.data.size == 1:
            if int(ptrs.data.flat[0]) not in scalars:
                scalars.add(int(ptrs.data.flat[0]))
                counts[-1] += out.data.itemsize
        else:
            counts[-1] += int(mask.data.sum()) * out.data.itemsize
        return out

    def counted_store(self: Any, ptrs: Any, value: Any, mask: Any, *rest: Any) -> Any:
        counts[-1] += int(np.broadcast_to(mask.data, ptrs.data.shape).sum()) * (value.data.itemsize)
        return store(self, ptrs, value, mask, *rest)

    original = kernels.launch

    def each(*args: Any, **constants: Any) -> None:
        counts.append(0)
        scalars.clear()
        original(*args, **constants)

    builder.create_masked_load, builder.create_masked_store = counted_load, counted_store
    kernels.launch = each
    try:
        yield counts
    finally:
        builder.create_masked_load, builder.create_masked_store = load, store
        kernels.launch = original


def _calls(dtype: str) -> dict[str, Callable[[], Any]]:
    rng = np.random.default_rng(14)
    x, _ = _put(rng.normal(size=(6, 10)), dtype)
    g, _ = _put(rng.normal(size=(6, 10)), dtype)
    scalar, _ = _put(0.5, dtype)
    labels = torch.tensor(rng.integers(0, 10, 6), device=x.device)
    return {
        "sigmoid_derivative": lambda: kernels.sigmoid_derivative(x),
        "sigmoid_backward": lambda: kernels.sigmoid_backward(g, x),
        "softmax": lambda: kernels.softmax(x, (1,)),
        "softmax in tiles": lambda: kernels.softmax(x, (1,), max_block=4),
        "softmax_backward": lambda: kernels.softmax_backward(g, x, (1,)),
        "softmax_backward in tiles": lambda: kernels.softmax_backward(g, x, (1,), max_block=4),
        "log_softmax": lambda: kernels.log_softmax(x, (1,)),
        "log_softmax in tiles": lambda: kernels.log_softmax(x, (1,), max_block=4),
        "logsumexp": lambda: kernels.logsumexp(x, (1,), False),
        "logsumexp in tiles": lambda: kernels.logsumexp(x, (1,), False, max_block=4),
        "log_softmax_backward": lambda: kernels.log_softmax_backward(g, x, (1,)),
        "log_softmax_backward in tiles": lambda: kernels.log_softmax_backward(g, x, (1,), 4),
        "softplus": lambda: kernels.softplus(x),
        "softplus_backward": lambda: kernels.softplus_backward(g, x),
        "logistic none": lambda: kernels.logistic(x, g, "none"),
        "logistic mean": lambda: kernels.logistic(x, g, "mean", finish_block=2),
        "logistic_backward none": lambda: kernels.logistic_backward(g, x, g, "none"),
        "logistic_backward sum": lambda: kernels.logistic_backward(scalar, x, g, "sum"),
        "cross_entropy none": lambda: kernels.cross_entropy(x, labels, 1, "none"),
        "cross_entropy mean in tiles": lambda: kernels.cross_entropy(x, labels, 1, "mean", 4, 2),
        "cross_entropy_backward none": lambda: kernels.cross_entropy_backward(
            g[:, 0], x, labels, 1, "none"
        ),
        "cross_entropy_backward sum in tiles": lambda: kernels.cross_entropy_backward(
            scalar, x, labels, 1, "sum", 4
        ),
        "logsumexp_backward": lambda: kernels.logsumexp_backward(g[:, 0], x, (1,), False),
        "logsumexp_backward in tiles": lambda: kernels.logsumexp_backward(
            g[:, 0], x, (1,), False, 4
        ),
        "normalize_rows": lambda: kernels.normalize_rows(x),
        "normalize_rows in tiles": lambda: kernels.normalize_rows(x, max_block=4),
        "normalize_rows_backward": lambda: kernels.normalize_rows_backward(g, x),
        "normalize_rows_backward in tiles": lambda: kernels.normalize_rows_backward(g, x, 4),
        "l2_loss none": lambda: kernels.loss(x, g, "none", 2),
        "l1_loss sum": lambda: kernels.loss(x, g, "sum", 1, block=16, finish_block=2),
        "loss_backward sum": lambda: kernels.loss_backward(scalar, x, g, "sum", 2),
        "loss_backward none": lambda: kernels.loss_backward(g, x, g, "none", 1),
    }


@pytest.mark.skipif(not INTERPRETED, reason="counts the interpreter's loads and stores")
@pytest.mark.parametrize("dtype", ["bfloat16", "float32", "float64"])
@pytest.mark.parametrize("name", list(_calls("float32")))
def test_declared_traffic_is_what_the_kernels_move(name: str, dtype: str) -> None:
    call = _calls(dtype)[name]
    with kernels.recording() as declared:
        call()
    with _quiet(), _counting_memory() as counted:
        call()
    assert counted == [launch.traffic for launch in declared]


# --- the operators' CUDA kernels are these ---------------------------------------------------


def test_every_cuda_kernel_is_registered_and_matches_the_cpu_operator() -> None:
    """Each operator's CUDA kernel, called on CPU tensors, gives what the operator gives."""
    rng = np.random.default_rng(15)
    x = torch.tensor(rng.normal(size=(4, 6)), dtype=torch.float64)
    g = torch.tensor(rng.normal(size=(4, 6)), dtype=torch.float64)
    labels = torch.tensor([5, 0, 2, 3])
    args: dict[str, tuple[Any, ...]] = {
        "sigmoid_derivative": (x,),
        "sigmoid_derivative_differentiable": (x,),
        "sigmoid_backward": (g, x),
        "sigmoid_derivative_backward": (g, x),
        "softmax": (x, [1]),
        "softmax_differentiable": (x, [1]),
        "softmax_backward": (g, torch.softmax(x, 1), [1]),
        "log_softmax": (x, [1]),
        "log_softmax_differentiable": (x, [0]),
        "log_softmax_backward": (g, x, [1]),
        "logsumexp": (x, [1], False),
        "logsumexp_differentiable": (x, [0], True),
        "logsumexp_backward": (g[:, 0], x, [1], False),
        "softplus": (x,),
        "softplus_differentiable": (x,),
        "softplus_backward": (g, x),
        "logistic": (x, torch.rand_like(x), "mean"),
        "logistic_differentiable": (x, torch.rand_like(x), "none"),
        "logistic_backward": (g, x, torch.rand_like(x), "none"),
        "cross_entropy": (x, labels, 1, "mean"),
        "cross_entropy_differentiable": (x, labels, 1, "none"),
        "cross_entropy_backward": (g[:, 0], x, labels, 1, "none"),
        "normalize_rows": (x,),
        "normalize_rows_differentiable": (x,),
        "normalize_rows_backward": (g, x),
        "loss": (x, g, "mean", 2),
        "loss_differentiable": (x, g, "sum", 1),
        "loss_backward": (torch.tensor(0.5, dtype=torch.float64), x, g, "mean", 2),
    }
    served = {"sigmoid", "sigmoid_differentiable", "line_adagrad"}  # torch.sigmoid, Python floats
    assert set(operators.CUDA_KERNELS) == set(args) | served
    for name, call in args.items():
        assert torch._C._dispatch_has_kernel_for_dispatch_key(f"arraykit::{name}", "CUDA")
        with _quiet():
            got = operators.CUDA_KERNELS[name](*call)
        expected = getattr(torch.ops.arraykit, name)(*call)
        torch.testing.assert_close(got, expected, rtol=1e-13, atol=1e-15, msg=name)


def test_without_triton_cuda_tensors_take_the_formulas(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARRAYKIT_TRITON", "0")
    operators.triton_kernels.cache_clear()
    try:
        x = torch.tensor([[1.0, 2.0, 3.0]], dtype=torch.float64)
        with kernels.recording() as launches:
            out = operators.CUDA_KERNELS["softmax"](x, [1])
        assert launches == []
        torch.testing.assert_close(out, torch.softmax(x, 1))
    finally:
        monkeypatch.delenv("ARRAYKIT_TRITON")
        operators.triton_kernels.cache_clear()


def test_every_kernel_compiles_for_the_gpu_without_spills() -> None:
    """Every launch the launchers make, compiled by Triton for sm_90 (H100/H200) — no
    GPU needed — with no register spill (``tests/triton_targets.py``, in a process
    without the interpreter, whose kernels do not compile)."""
    import subprocess
    import sys
    from pathlib import Path

    environment = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    done = subprocess.run(
        [sys.executable, "-m", "tests.triton_targets", "90"],
        cwd=Path(__file__).resolve().parents[1],
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "spills: none" in done.stdout
