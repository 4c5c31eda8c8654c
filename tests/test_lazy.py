"""Lazy stays lazy: no primitive computes a Dask graph, and every primitive
runs under ``jax.jit``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import arraykit as ak
import backends

CALLS: dict[str, Callable[..., Any]] = {
    "sigmoid": lambda x, y: ak.sigmoid(x),
    "sigmoid_derivative": lambda x, y: ak.sigmoid_derivative(x),
    "softmax": lambda x, y: ak.softmax(x),
    "softmax_axis0": lambda x, y: ak.softmax(x, axis=0),
    "normalize_rows": lambda x, y: ak.normalize_rows(x),
    "image2vector": lambda x, y: ak.image2vector(x[:, :, None]),
    "l1_loss": lambda x, y: ak.l1_loss(x, y),
    "l1_loss_mean": lambda x, y: ak.l1_loss(x, y, "mean"),
    "l1_loss_none": lambda x, y: ak.l1_loss(x, y, "none"),
    "l2_loss": lambda x, y: ak.l2_loss(x, y),
    "l2_loss_mean": lambda x, y: ak.l2_loss(x, y, "mean"),
    "l2_loss_none": lambda x, y: ak.l2_loss(x, y, "none"),
}

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
