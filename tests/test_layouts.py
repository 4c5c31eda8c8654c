"""Equal inputs give equal values whatever their layout: C or Fortran order,
transposed, strided, reversed or misaligned memory, and softmax over any axis
(the same bits as over the last axis of the moved array), on NumPy and on torch's
CPU tensors. Their accuracy against mpmath, per layout and axis, is
``tests/accuracy.py``'s (``test_every_path_within_the_contract``)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import array_api_compat
import numpy as np
import pytest

import arraykit as ak

from .test_robustness import _at_offset


def _layouts(x: np.ndarray, negative: bool = True) -> Iterator[tuple[str, np.ndarray]]:
    """The values of the C-ordered ``x`` in other memory layouts (each equal to ``x``);
    ``negative``: with negative strides too (torch tensors have none)."""
    yield "Fortran order", np.asfortranarray(x)
    yield "strided", np.repeat(x, 2, axis=-1)[..., ::2]
    if negative:
        yield "reversed", np.ascontiguousarray(x[..., ::-1])[..., ::-1]
    yield "transposed", np.ascontiguousarray(x.T).T
    yield "misaligned", _at_offset(x, 4)


FUNCTIONS: dict[str, Callable[[Any], Any]] = {
    "sigmoid": ak.sigmoid,
    "sigmoid_derivative": ak.sigmoid_derivative,
    "softmax": ak.softmax,
    "normalize_rows": ak.normalize_rows,
    "softplus": ak.softplus,
    "log_sigmoid": ak.log_sigmoid,
    "log_softmax": ak.log_softmax,
    "logsumexp": ak.logsumexp,
    "l1_loss none": lambda a: ak.l1_loss(a, a[::-1, ::-1].copy(), reduction="none"),
    "l2_loss sum": lambda a: ak.l2_loss(a, a[::-1, ::-1].copy(), reduction="sum"),
    "l1_loss mean": lambda a: ak.l1_loss(a, a[::-1, ::-1].copy()),
    "binary_cross_entropy_with_logits none": lambda a: _logistic(a, "none"),
    "binary_cross_entropy_with_logits mean": lambda a: _logistic(a, "mean"),
    "binary_cross_entropy none": lambda a: _probabilities(a, "none"),
    "binary_cross_entropy mean": lambda a: _probabilities(a, "mean"),
}


def _probabilities(x: Any, reduction: str) -> Any:
    """The binary cross-entropy of ``σ(x)`` (probabilities of the same values in any
    layout of ``x``, 0 and 1 among them) with labels read off the signs."""
    xp = array_api_compat.array_namespace(x)
    labels = xp.astype(x > 0, x.dtype)
    return ak.binary_cross_entropy(ak.sigmoid(x), labels, reduction=reduction)


def _logistic(z: Any, reduction: str) -> Any:
    """The logistic loss of ``z`` with labels read off its signs (any layout of ``z``
    gives labels of the same values)."""
    xp = array_api_compat.array_namespace(z)
    labels = xp.astype(z > 0, z.dtype)
    return ak.binary_cross_entropy_with_logits(z, labels, reduction=reduction)


def _inputs(dtype: str) -> Iterator[np.ndarray]:
    rng = np.random.default_rng(5)
    for shape in [(3, 2), (7, 5), (64, 37), (300, 100), (40, 2000)]:
        x = rng.normal(0.0, 8.0, shape).astype(dtype)
        x[0, 0] = -745.0 if dtype == "float64" else -103.0  # a subnormal sigmoid
        yield x
        # Rows that take their limits (+inf, NaN, -inf alone) between finite ones.
        x = x.copy()
        x[1, -1], x[2, 0], x[-1, :] = np.inf, np.nan, -np.inf
        yield x


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_numpy_values_do_not_depend_on_the_layout(name: str, dtype: str) -> None:
    f = FUNCTIONS[name]
    for x in _inputs(dtype):
        expected = f(x)
        for layout, view in _layouts(x):
            np.testing.assert_array_equal(f(view), expected, err_msg=f"{layout} {x.shape}")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_torch_values_do_not_depend_on_the_layout(name: str, dtype: str) -> None:
    torch = pytest.importorskip("torch")
    f = _torch_loss(name) if name.split()[0].endswith("_loss") else FUNCTIONS[name]
    for x in _inputs(dtype):
        expected = f(torch.from_numpy(x)).numpy()
        for layout, view in _layouts(x, negative=False):
            got = f(torch.from_numpy(view)).numpy()
            np.testing.assert_array_equal(got, expected, err_msg=f"{layout} {x.shape}")
        transposed = torch.from_numpy(np.ascontiguousarray(x.T)).T
        np.testing.assert_array_equal(f(transposed).numpy(), expected)


def _torch_loss(name: str) -> Callable[[Any], Any]:
    loss, reduction = name.split()
    function = getattr(ak, loss)
    return lambda t: function(t, t.flip(0, 1).contiguous(), reduction=reduction)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("library", ["numpy", "torch"])
@pytest.mark.parametrize("name", ["softmax", "log_softmax", "logsumexp"])
def test_softmax_over_any_axis_is_the_last_axis_moved(name: str, library: str, dtype: str) -> None:
    """Softmax, log_softmax and logsumexp over the first or a middle axis give, bit for
    bit, their values over the last axis of the array with that axis moved last (the
    rows' kernel and the columns' kernel share their arithmetic)."""
    function = getattr(ak, name)
    rng = np.random.default_rng(6)
    wrap: Callable[[np.ndarray], Any] = np.asarray
    if library == "torch":
        torch = pytest.importorskip("torch")
        wrap = torch.from_numpy
    # Axes up to 512 take the columns' kernel (whole vectors of columns and a padded
    # last one), whose lanes follow the rows' kernel's order (for softmax's rows of a
    # vector and more, the log-space pair's of 64 (float64) or 128 (float32) and
    # more); longer ones the rows' kernel on the axis moved last.
    shapes = [(9, 31, 12), (7, 5, 19), (3, 2, 40), (15, 33), (2, 1, 3)]
    shapes += [(130, 3, 5), (3, 200, 9), (600, 2)]
    for shape in shapes:
        x = rng.normal(0.0, 6.0, shape).astype(dtype)
        x.reshape(-1)[::7] *= 30.0  # entries far below their rows' maxima
        x.reshape(-1)[5::41] = np.inf  # rows (along any axis) taking their limits
        x.reshape(-1)[11::53] = np.nan
        for axis in range(-x.ndim, x.ndim):
            moved = np.ascontiguousarray(np.moveaxis(x, axis, -1))
            expected = np.asarray(function(wrap(moved)))
            if name != "logsumexp":  # (which drops the axis: its order is the moved one's)
                expected = np.moveaxis(expected, -1, axis)
            for layout, view in [("C order", x), *_layouts(x, negative=library == "numpy")]:
                got = np.asarray(function(wrap(view), axis=axis))
                message = f"{shape}, axis {axis}, {layout}"
                np.testing.assert_array_equal(got, expected, err_msg=message)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_paths_that_read_memory_in_place_allocate_only_the_result(dtype: str) -> None:
    """Counted with tracemalloc (NumPy reports its allocations there): every layout
    allocates the result and nothing near its size. Contiguous rows; short softmax axes
    across memory (a transposed array's rows, the first or a middle axis: the columns'
    kernel); strided, reversed and transposed inputs and long axes across memory, which
    the kernels gather a stretch at a time (or, for strided rows longer than that, a
    block of rows)."""
    import tracemalloc

    rng = np.random.default_rng(9)
    flat = rng.normal(size=1_200_000).astype(dtype)
    wide = rng.normal(size=(600, 4000)).astype(dtype)
    strided, reversed_ = wide[:, ::2], wide[::-1, ::-1][:, :1000]
    other = rng.normal(size=(1000, 600)).astype(dtype)[::-1].T  # the reversed's shape
    cases = [
        ("sigmoid, strided", lambda: ak.sigmoid(strided)),
        ("sigmoid_derivative, transposed", lambda: ak.sigmoid_derivative(wide.T)),
        ("softmax, strided rows", lambda: ak.softmax(strided)),
        ("softmax, reversed rows", lambda: ak.softmax(reversed_)),
        ("softmax, long strided rows", lambda: ak.softmax(wide.reshape(150, -1)[:, ::2])),
        ("softmax over a long first axis", lambda: ak.softmax(wide, axis=0)),
        ("softmax over two axes", lambda: ak.softmax(wide.reshape(600, 40, 100), axis=(0, 2))),
        ("normalize_rows, transposed", lambda: ak.normalize_rows(wide.T)),
        ("normalize_rows, long strided rows", lambda: ak.normalize_rows(wide[:, ::-1][::2])),
        ("l1_loss none, strided", lambda: ak.l1_loss(strided, wide[:, 1::2], reduction="none")),
        ("l2_loss none, transposed", lambda: ak.l2_loss(wide.T, wide.T, reduction="none")),
        ("sigmoid", lambda: ak.sigmoid(flat)),
        ("sigmoid_derivative", lambda: ak.sigmoid_derivative(flat)),
        ("softmax rows", lambda: ak.softmax(flat.reshape(-1, 100))),
        ("normalize_rows", lambda: ak.normalize_rows(flat.reshape(-1, 100))),
        ("l2_loss none", lambda: ak.l2_loss(flat, flat, reduction="none")),
        ("softmax, transposed rows of 3", lambda: ak.softmax(flat.reshape(3, -1).T)),
        ("softmax over axis 0", lambda: ak.softmax(flat.reshape(5, -1), axis=0)),
        ("softmax over a middle axis", lambda: ak.softmax(flat.reshape(40, 6, -1), axis=1)),
    ]
    for name, call in cases:
        call()  # first calls set up what they keep
        tracemalloc.start()
        try:
            result = call()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        # Beside the result, only small things (Python's own, which vary with
        # how the package was installed): any temporary of the data's size breaks it.
        assert peak < result.nbytes + result.nbytes // 8, (name, peak, result.nbytes)
    # The reduced losses allocate nothing of the data's size at all.
    pairs = [
        ("l2_loss, strided", ak.l2_loss, strided, wide[:, 1::2]),
        ("l1_loss, reversed", ak.l1_loss, reversed_, other),
        ("l2_loss, transposed", ak.l2_loss, wide.T, wide.T[::-1]),
    ]
    for (name, function, a, b), reduction in itertools.product(pairs, ("mean", "sum")):
        function(a, b, reduction=reduction)
        tracemalloc.start()
        try:
            function(a, b, reduction=reduction)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < strided.nbytes // 8, (name, reduction, peak)
