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


def _on_matrices(op: Any, call: Any) -> Callable[..., Any]:
    """The call on two matrices (x, y): its arrays among them, an image of x for image2vector."""
    if op.kind == "shape":
        return lambda x, y: call.public(x[:, :, None])
    return lambda x, y: call.public(*(x, y)[: op.arrays])


CALLS: dict[str, Callable[..., Any]] = {
    **{label: _on_matrices(op, call) for label, (op, call) in REGISTRY.items()},
    "softmax_axis0": lambda x, y: ak.softmax(x, axis=0),
}
"""Every call in the registry, and softmax over the first axis."""

_rng = np.random.default_rng(9)
X = _rng.normal(size=(6, 5)) * 3
Y = _rng.normal(size=(6, 5))


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

    x, y = xb.asarray(X), xb.asarray(Y)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a Dask graph was computed")

    with dask.config.set(scheduler=refuse):
        result = CALLS[name](x, y)
    assert isinstance(result, da.Array)
    np.testing.assert_allclose(xb.to_numpy(result), CALLS[name](X, Y), rtol=1e-15, atol=1e-300)


@pytest.mark.parametrize("name", CALLS)
def test_jax_jit(name: str) -> None:
    jax_backend = _backend("jax:cpu")
    import jax

    x, y = jax_backend.asarray(X), jax_backend.asarray(Y)
    jitted = jax.jit(CALLS[name])(x, y)
    eager = CALLS[name](x, y)
    assert isinstance(jitted, jax.Array)
    assert jitted.dtype == eager.dtype
    assert jitted.shape == eager.shape
    # Compiled code may fuse operations differently; it agrees to a few ulp.
    np.testing.assert_allclose(np.asarray(jitted), np.asarray(eager), rtol=4e-16 * 4, atol=1e-300)
