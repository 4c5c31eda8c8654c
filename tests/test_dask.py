"""Dask: right whatever the chunking, and one pass over the blocks where that matters.

The registry's Dask columns split every axis in two; here hypothesis picks the
chunking too, on both the threaded scheduler and the LocalCluster.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import arraykit as ak
import backends
from backends import Backend

from . import reference
from .assertions import assert_close

da = pytest.importorskip("dask.array")

pinned = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
lazy = pytest.mark.parametrize(
    "xb",
    [
        pytest.param(i, marks=[pytest.mark.slow] if backends.get(i).remote else [])
        for i in backends.ids(lazy=True)
    ],
    indirect=True,
)

shapes = hnp.array_shapes(min_dims=2, max_dims=2, max_side=7)
finite = st.floats(-1e3, 1e3, allow_nan=False, width=64)


@st.composite
def chunked(draw: st.DrawFn, shape: tuple[int, ...]) -> tuple[tuple[int, ...], ...]:
    """Any chunking of ``shape``: each axis cut at points hypothesis picks."""
    chunks = []
    for n in shape:
        cuts = sorted(draw(st.sets(st.integers(1, n - 1), max_size=n - 1))) if n > 1 else []
        bounds = [0, *cuts, n]
        chunks.append(tuple(b - a for a, b in itertools.pairwise(bounds)))
    return tuple(chunks)


@st.composite
def matrices(draw: st.DrawFn) -> tuple[np.ndarray, tuple[tuple[int, ...], ...]]:
    shape = draw(shapes)
    return draw(hnp.arrays(np.float64, shape, elements=finite)), draw(chunked(shape))


@lazy
@pinned
@given(case=matrices())
def test_rowwise_functions_whatever_the_chunking(xb: Backend, case: Any) -> None:
    x, chunks = case
    lazy_x = da.from_array(x, chunks=chunks)
    assert_close(ak.normalize_rows(lazy_x), reference.normalize_rows(x), xb, "float64")
    assert_close(ak.softmax(lazy_x), reference.softmax_rows(x), xb, "float64")
    assert_close(ak.softmax(lazy_x, axis=0), reference.softmax_rows(x.T).T, xb, "float64")


@lazy
@pinned
@given(case=matrices(), data=st.data())
def test_losses_whatever_the_chunking(xb: Backend, case: Any, data: st.DataObject) -> None:
    yhat, chunks = case
    y = data.draw(hnp.arrays(np.float64, yhat.shape, elements=finite))
    # The target chunked differently: Dask aligns the blocks.
    lazy_yhat = da.from_array(yhat, chunks=chunks)
    lazy_y = da.from_array(y, chunks=data.draw(chunked(yhat.shape)))
    for loss, power in ((ak.l1_loss, 1), (ak.l2_loss, 2)):
        for reduction in ("sum", "mean", "none"):
            expected = reference.loss(yhat, y, power, reduction)
            assert_close(loss(lazy_yhat, lazy_y, reduction), expected, xb, "float64")


def _readers(graph: Any, source: str) -> list[int]:
    """For each block of the array named ``source``, how many tasks read it."""
    from dask.core import get_dependencies

    graph = dict(graph)
    counts = {key: 0 for key in graph if isinstance(key, tuple) and key[0] == source}
    for key in graph:
        for dependency in get_dependencies(graph, key):
            if dependency in counts:
                counts[dependency] += 1
    return list(counts.values())


ONE_PASS: dict[str, Callable[[Any, Any], Any]] = {
    "l1_loss": lambda x, y: ak.l1_loss(x, y),
    "l2_loss_mean": lambda x, y: ak.l2_loss(x, y, "mean"),
    "softmax_whole_rows": lambda x, y: ak.softmax(x),
    "normalize_rows_whole_rows": lambda x, y: ak.normalize_rows(x),
}


@pytest.mark.parametrize("name", ONE_PASS)
def test_each_block_is_read_once(name: str) -> None:
    """Data larger than memory streams only if no block is needed twice: a
    block read by two tasks waits in memory (or on disk) for the second."""
    from array_api_compat.dask import array as xp

    from arraykit import _formulas

    rng = np.random.default_rng(3)
    x = da.from_array(rng.normal(size=(8, 6)), chunks=(2, 6))  # whole rows per block
    y = da.from_array(rng.normal(size=(8, 6)), chunks=(2, 6))
    readers = _readers(ONE_PASS[name](x, y).__dask_graph__(), x.name)
    assert readers
    assert all(n == 1 for n in readers), readers
    # The generic twins, by contrast, read each block twice: the test can fail.
    twin = {
        "l1_loss": lambda: _formulas.loss(x, y, "sum", 1, xp=xp),
        "l2_loss_mean": lambda: _formulas.loss(x, y, "mean", 2, xp=xp),
        "softmax_whole_rows": lambda: _formulas.softmax(x, (1,), xp=xp),
        "normalize_rows_whole_rows": lambda: _formulas.normalize_rows(x, xp=xp),
    }[name]()
    assert max(_readers(twin.__dask_graph__(), x.name)) > 1


@lazy
def test_sizes_known_only_when_computing(xb: Backend) -> None:
    """Boolean indexing leaves Dask not knowing sizes: the losses count the
    blocks as they compute them, and empty blocks are fine."""
    x = da.from_array(np.arange(10.0), chunks=3)
    kept, none = x[x > 3], x[x > 100]
    assert np.isnan(kept.shape[0])
    values = np.arange(4.0, 10.0)
    for reduction in ("sum", "mean"):
        expected = reference.loss(values, 2 * values, 2, reduction)
        assert_close(ak.l2_loss(kept, 2 * kept, reduction), expected, xb, "float64")
    elementwise = xb.to_numpy(ak.l2_loss(kept, 2 * kept, "none"))  # its shape is unknown: (nan,)
    np.testing.assert_array_equal(elementwise, reference.loss(values, 2 * values, 2, "none"))
    assert xb.to_numpy(ak.l1_loss(none, none)) == 0.0
    assert np.isnan(xb.to_numpy(ak.l1_loss(none, none, "mean")))
    np.testing.assert_allclose(xb.to_numpy(ak.sigmoid(kept)), 1 / (1 + np.exp(-values)))


def test_unknown_sizes_that_must_be_known_are_named() -> None:
    x = da.from_array(np.arange(10.0), chunks=3)
    kept = x[x > 3]
    with pytest.raises(ValueError, match=r"x must have known chunk sizes .*compute_chunk_sizes"):
        ak.softmax(kept)
    with pytest.raises(ValueError, match=r"yhat must have known chunk sizes to be chunked like y"):
        ak.l1_loss(kept, da.ones(6, chunks=2))
    # Whole slices per block need no sizes: the softmax of one block of unknown length.
    single = da.from_array(np.arange(10.0), chunks=10)
    values = np.arange(4.0, 10.0)
    np.testing.assert_allclose(
        ak.softmax(single[single > 3]).compute(), np.exp(values) / np.exp(values).sum(), rtol=1e-15
    )
