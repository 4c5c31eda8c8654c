"""Bad input gets a TypeError or ValueError that names the argument and says
what it got and what was expected."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

import arraykit as ak
import backends
from backends import Backend

from .assertions import assert_kind

UNARY = [ak.sigmoid, ak.sigmoid_derivative, ak.softmax, ak.normalize_rows, ak.image2vector]
SHAPED = {ak.normalize_rows: (2, 3), ak.image2vector: (2, 2, 2)}


def _input(xb: Backend, function: object, dtype: str) -> object:
    shape = SHAPED.get(function, (2, 3))  # type: ignore[call-overload]
    return xb.asarray(np.ones(shape), dtype)


def _complex_capable(xb: Backend) -> bool:
    return xb.library != "dask"  # dask arrays of complex work, but are slow to build here


@pytest.mark.parametrize("function", UNARY, ids=lambda f: f.__name__)
def test_complex_input_is_refused(xb: Backend, function: object) -> None:
    if not _complex_capable(xb):
        pytest.skip("checked on the eager backends")
    shape = SHAPED.get(function, (2, 3))  # type: ignore[call-overload]
    x = xb.asarray(np.ones(shape, dtype=np.complex128))
    with pytest.raises(TypeError, match=r"(?s)must have a real dtype.*complex128"):
        function(x)  # type: ignore[operator]


def test_complex_loss_is_refused(xb: Backend) -> None:
    if not _complex_capable(xb):
        pytest.skip("checked on the eager backends")
    y = xb.asarray(np.ones(3, dtype=np.complex64))
    with pytest.raises(TypeError, match=r"yhat must have a real dtype"):
        ak.l1_loss(y, y)


@pytest.mark.parametrize("shape", [(4,), (2, 3, 4)])
def test_normalize_rows_needs_a_matrix(xb: Backend, shape: tuple[int, ...]) -> None:
    x = xb.asarray(np.ones(shape), "float64")
    with pytest.raises(
        ValueError,
        match=rf"x must be 2-D, a matrix of shape \(rows, columns\); got .* of shape \({shape[0]},",
    ):
        ak.normalize_rows(x)


@pytest.mark.parametrize("shape", [(4,), (2, 3), (1, 2, 3, 4)])
def test_image2vector_needs_three_dimensions(xb: Backend, shape: tuple[int, ...]) -> None:
    x = xb.asarray(np.ones(shape), "float32")
    with pytest.raises(
        ValueError,
        match=r"image must be 3-D, an image of shape \(length, height, depth\); got .*shape",
    ):
        ak.image2vector(x)


@pytest.mark.parametrize("function", [ak.l1_loss, ak.l2_loss], ids=lambda f: f.__name__)
def test_loss_shapes_must_match(xb: Backend, function: object) -> None:
    yhat = xb.asarray(np.ones((3, 1)), "float64")
    y = xb.asarray(np.ones(3), "float64")
    with pytest.raises(
        ValueError, match=r"yhat and y must have the same shape; got yhat: .*\(3, 1\).*y: .*\(3,\)"
    ):
        function(yhat, y)  # type: ignore[operator]


def test_unknown_reduction(xb: Backend) -> None:
    y = xb.asarray(np.ones(3), "float64")
    with pytest.raises(
        ValueError, match=r"reduction must be one of \('sum', 'mean', 'none'\); got 'avg'"
    ):
        ak.l2_loss(y, y, "avg")  # type: ignore[arg-type]


@pytest.mark.parametrize("axis", [2, -3, (0, 5)])
def test_softmax_axis_out_of_range(xb: Backend, axis: object) -> None:
    x = xb.asarray(np.ones((2, 3)), "float64")
    with pytest.raises(ValueError, match=r"axis -?\d is out of range for an array of 2 dimensions"):
        ak.softmax(x, axis=axis)  # type: ignore[arg-type]


def test_softmax_axis_type_and_repeats(xb: Backend) -> None:
    x = xb.asarray(np.ones((2, 3)), "float64")
    with pytest.raises(TypeError, match=r"axis must be an int, a tuple of ints or None; got 1\.5"):
        ak.softmax(x, axis=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"axis repeats an axis: \(1, -1\)"):
        ak.softmax(x, axis=(1, -1))


def test_softmax_of_a_scalar_is_one_slice(xb: Backend) -> None:
    # As torch.softmax takes a 0-d tensor: one slice of one element, whatever
    # the axis names (-1, 0 or None); NaN stays NaN.
    for axis in (-1, 0, None):
        assert xb.to_numpy(ak.softmax(xb.asarray(np.array(-3.5), "float64"), axis=axis)) == 1.0
    assert np.isnan(xb.to_numpy(ak.softmax(xb.asarray(np.array(np.nan), "float64"))))
    with pytest.raises(ValueError, match="axis 1 is out of range for a 0-d x"):
        ak.softmax(xb.asarray(np.array(1.0), "float64"), axis=1)


LIBRARY_MODULES = {"jax": "jax.numpy", "dask": "dask.array"}
"""The module a user of each library passes as ``xp=``, where it is not the library's name."""


def test_a_library_module_is_taken_as_xp(xb: Backend) -> None:
    import importlib

    module = importlib.import_module(LIBRARY_MODULES.get(xb.library, xb.library))
    x = xb.asarray(np.array([-710.0, -1.0, 0.0, 30.0]), "float64")
    got = ak.sigmoid(x, xp=module)
    assert_kind(got, xb, "float64", (4,))
    np.testing.assert_array_equal(xb.to_numpy(got), xb.to_numpy(ak.sigmoid(x)))
    data = ak.regression.classic_data(xp=module, device=xb.device, dtype=xb.namespace.float64)
    assert type(data[0]) is type(x)
    # The natural grids beside data of any library: NumPy ranges.
    surface = ak.regression.loss_surface(*data, np.array([-120.0, 0.0]), np.array([-4.0]))
    assert type(surface) is type(x)
    np.testing.assert_allclose(xb.to_numpy(surface), [[3670819.0, 3299875.0]], rtol=1e-12)


def test_an_xp_that_is_not_the_arrays_namespace_is_refused(xb: Backend) -> None:
    x = xb.asarray(np.ones(3), "float64")
    other = np if xb.library != "numpy" else pytest.importorskip("array_api_strict")
    with pytest.raises(TypeError, match=r"xp is .*, but x is not its array: got "):
        ak.sigmoid(x, xp=other)
    with pytest.raises(TypeError, match=r"xp is .*, but x is not its array"):
        ak.regression.least_squares(x, x, xp=other)
    for bad in ("numpy", np.ndarray, warnings):
        with pytest.raises(TypeError, match="xp must be an array namespace or an array library"):
            ak.sigmoid(x, xp=bad)


def test_sparse_and_nested_tensors_are_refused_by_name() -> None:
    torch = pytest.importorskip("torch")
    dense = torch.tensor([[0.0, 1.0], [2.0, 0.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch: "in beta", "prototype stage"
        sparse = [dense.to_sparse(), dense.to_sparse_csr()]
        nested = torch.nested.nested_tensor([torch.ones(2), torch.ones(3)])
    calls = [
        ak.sigmoid,
        ak.sigmoid_derivative,
        ak.softmax,
        ak.normalize_rows,
        ak.image2vector,
        lambda t: ak.l2_loss(t, dense),
    ]
    for call in calls:
        for tensor in sparse:
            with pytest.raises(
                TypeError,
                match=r"must be a dense tensor; got a sparse tensor .*"
                r"to_dense\(\)",
            ):
                call(tensor)
        with pytest.raises(TypeError, match=r"must be a dense tensor; got a nested tensor"):
            call(nested)
    with pytest.raises(TypeError, match=r"^y must be a dense tensor"):
        ak.l1_loss(dense, sparse[0])


@pytest.mark.parametrize("function", [ak.softmax, ak.normalize_rows], ids=lambda f: f.__name__)
def test_an_empty_result_stays_in_autograd(function: Any) -> None:
    torch = pytest.importorskip("torch")
    x = torch.empty(0, 3, dtype=torch.float64, requires_grad=True)
    result = function(x)
    assert result.shape == (0, 3)
    assert result.requires_grad
    result.sum().backward()
    assert x.grad is not None
    assert x.grad.shape == (0, 3)


def test_arrays_of_two_backends_are_refused(xb: Backend) -> None:
    if xb.library == "numpy":
        pytest.skip("needs a second backend beside NumPy")
    theirs = xb.asarray(np.ones(3), "float64")
    ours = np.ones(3)
    with pytest.raises(
        TypeError, match=r"yhat and y must be arrays of one backend; got yhat: numpy\.ndarray.*y: "
    ):
        ak.l1_loss(ours, theirs)


def test_arrays_on_two_devices_are_refused() -> None:
    first, second = backends.get("array_api_strict"), backends.get("array_api_strict:device1")
    if not first.available:
        pytest.skip(first.unavailable)
    yhat = first.asarray(np.ones(3), "float64")
    y = second.asarray(np.ones(3), "float64")
    with pytest.raises(
        ValueError, match=r"yhat and y must be on one device; got .*CPU_DEVICE.*device1"
    ):
        ak.l2_loss(yhat, y)


@pytest.mark.parametrize("function", UNARY, ids=lambda f: f.__name__)
def test_non_numeric_input(function: object) -> None:
    with pytest.raises(
        TypeError, match=r"must (be an array|have a real floating, integer or boolean dtype)"
    ):
        function([["a", "b"], ["c", "d"]])  # type: ignore[operator]


def test_python_lists_and_scalars_are_numpy() -> None:
    assert isinstance(ak.sigmoid(0.0), np.ndarray)
    assert isinstance(ak.l2_loss([1.0, 2.0], [1.0, 0.0]), np.ndarray)
    assert ak.image2vector([[[1, 2]], [[3, 4]]]).shape == (4, 1)


@pytest.mark.parametrize("function", [ak.sigmoid, ak.sigmoid_derivative], ids=lambda f: f.__name__)
def test_explicit_namespace_skips_inference(xb: Backend, dtype: str, function: Any) -> None:
    # Without xp=, a plain float32/float64 array goes straight to its backend's
    # fast path (dispatch.route): the same values, type and dtype as through
    # the entry checks, whose result finish() would have cast.
    x = xb.asarray(np.array([[-40.0, -1.5, 0.0], [0.25, 3.0, 700.0]]), dtype)
    quick, checked = function(x), function(x, xp=xb.namespace)
    assert_kind(quick, xb, dtype, (2, 3))
    assert_kind(checked, xb, dtype, (2, 3))
    np.testing.assert_array_equal(xb.to_numpy(quick), xb.to_numpy(checked))


LAST_AXIS = {
    "softmax": lambda x, **kw: ak.softmax(x, **kw),
    "log_softmax": lambda x, **kw: ak.log_softmax(x, **kw),
    "logsumexp": lambda x, **kw: ak.logsumexp(x, **kw),
    "logsumexp, keepdims": lambda x, **kw: ak.logsumexp(x, keepdims=True, **kw),
}


@pytest.mark.parametrize("name", LAST_AXIS)
@pytest.mark.parametrize("shape", [(7,), (3, 5), (2, 3, 17), (0, 4), (4, 0)])
def test_the_one_axis_route_gives_the_entry_checks_bits(
    xb: Backend, dtype: str, name: str, shape: tuple[int, ...]
) -> None:
    # An int axis without xp= goes straight to the fast path (dispatch.route): the
    # same values, type, dtype and shape as through the entry checks, special
    # values, empty slices and the layouts it declines included; an axis out of
    # range the entry checks' error.
    rng = np.random.default_rng(5)
    values = rng.normal(0.0, 30.0, shape)
    if values.size > 4:
        values.flat[[0, 2, 3]] = [np.inf, -np.inf, np.nan]
    function = LAST_AXIS[name]
    layouts = [xb.asarray(values, dtype)]
    if values.ndim == 2:  # and its transpose's memory, read across
        layouts.append(xb.asarray(values.T.copy(), dtype).T)
    for x in layouts:
        for axis in range(-x.ndim, x.ndim):
            quick, checked = function(x, axis=axis), function(x, axis=axis, xp=xb.namespace)
            assert_kind(quick, xb, dtype, tuple(checked.shape))
            np.testing.assert_array_equal(xb.to_numpy(quick), xb.to_numpy(checked))
        with pytest.raises(ValueError, match=f"axis {x.ndim} is out of range"):
            function(x, axis=x.ndim)


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("axis", [-1, 0])
def test_the_cross_entropy_route_gives_the_entry_checks_bits(
    xb: Backend, dtype: str, reduction: str, axis: int
) -> None:
    # Class indices along any axis, without weights or xp=: straight to the fast
    # path, contiguous or strided, int64 or int32 labels (which it declines).
    rng = np.random.default_rng(6)
    wide = rng.normal(0.0, 20.0, (9, 10))
    wide[2, 2] = np.inf
    classes, examples = (5, 9) if axis == -1 else (9, 5)
    for index_dtype in (np.int64, np.int32):
        target = xb.asarray(rng.integers(0, classes, examples).astype(index_dtype))
        for x in (xb.asarray(wide[:, ::2].copy(), dtype), xb.asarray(wide, dtype)[:, ::2]):
            quick = ak.cross_entropy(x, target, axis=axis, reduction=reduction)
            checked = ak.cross_entropy(x, target, axis=axis, reduction=reduction, xp=xb.namespace)
            assert_kind(quick, xb, dtype, tuple(checked.shape))
            np.testing.assert_array_equal(xb.to_numpy(quick), xb.to_numpy(checked))
