"""Lazy stays lazy: no primitive computes a Dask graph, and every primitive
runs under ``jax.jit``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import arraykit as ak
import backends
from arraykit._operations import CALLS as REGISTRY


def _on_matrices(op: Any, call: Any) -> tuple[Callable[..., Any], list[np.ndarray]]:
    """The call, and its arguments from two matrices (X, Y): its arrays among them (labels
    or class indices made from Y where it takes those), an image of X for image2vector."""
    if op.kind == "shape":
        return (lambda x: call.public(x[:, :, None])), [X]
    return call.public, op.arguments([X, Y][: op.arrays])


_rng = np.random.default_rng(9)
X = _rng.normal(size=(6, 5)) * 3
Y = _rng.normal(size=(6, 5))

CALLS: dict[str, tuple[Callable[..., Any], list[np.ndarray]]] = {
    **{label: _on_matrices(op, call) for label, (op, call) in REGISTRY.items()},
    "softmax_axis0": (lambda x: ak.softmax(x, axis=0), [X]),
    "log_softmax_axis0": (lambda x: ak.log_softmax(x, axis=0), [X]),
    "cross_entropy_axis0": (
        lambda x, t: ak.cross_entropy(x, t, axis=0),
        [X, np.argmax(Y, axis=0)],
    ),
    "cross_entropy_probabilities": (
        lambda x, t: ak.cross_entropy(x, t),
        [X, ak.softmax(Y)],
    ),
}
"""Every call in the registry, and calls over the first axis, with their arguments."""


def _backend(backend_id: str) -> backends.Backend:
    backend = backends.get(backend_id)
    if not backend.available:
        pytest.skip(backend.unavailable)
    return backend


@pytest.mark.parametrize("xb", backends.ids(lazy=True), indirect=True)
@pytest.mark.parametrize("name", CALLS)
def test_dask_stays_lazy(name: str, xb: backends.Backend) -> None:
    import dask
    import dask.array as da

    function, arguments = CALLS[name]
    arrays = [xb.asarray(a) for a in arguments]

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a Dask graph was computed")

    with dask.config.set(scheduler=refuse):
        result = function(*arrays)
    assert isinstance(result, da.Array)
    expected = function(*arguments)
    np.testing.assert_allclose(xb.to_numpy(result), expected, rtol=1e-15, atol=1e-300)


@pytest.mark.parametrize("name", CALLS)
def test_jax_jit(name: str) -> None:
    jax_backend = _backend("jax:cpu")
    import jax

    function, arguments = CALLS[name]
    arrays = [jax_backend.asarray(a) for a in arguments]
    jitted = jax.jit(function)(*arrays)
    eager = function(*arrays)
    assert isinstance(jitted, jax.Array)
    assert jitted.dtype == eager.dtype
    assert jitted.shape == eager.shape
    # Compiled code may fuse operations differently; it agrees to a few ulp.
    np.testing.assert_allclose(np.asarray(jitted), np.asarray(eager), rtol=4e-16 * 4, atol=1e-300)
