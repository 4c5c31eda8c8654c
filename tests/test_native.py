"""Native fast paths against their generic array-API twins.

The matrix already checks each public function (and so the fast path, where
one exists) against the references. Here the generic twin is checked on the
same backends, so that both implementations are held to the same contract,
and the two must agree on every special value.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from arraykit import _native
from arraykit._array_api import compute_dtype
from arraykit.activations import _sigmoid, _sigmoid_derivative, _softmax
from backends import Backend

from . import reference
from .assertions import assert_close

TWINS = {
    "sigmoid": (_sigmoid, reference.sigmoid),
    "sigmoid_derivative": (_sigmoid_derivative, reference.sigmoid_derivative),
}


@pytest.mark.parametrize("name", TWINS)
def test_generic_twin_where_a_fast_path_exists(xb: Backend, dtype: str, name: str) -> None:
    xp = xb.namespace
    native = _native.lookup(xp, name)
    if native is None:
        pytest.skip(f"{xb.id} has no fast path for {name}")
    generic, exact = TWINS[name]
    x = xb.asarray(reference.finite_values(dtype, 300, seed=10), dtype)
    work, _ = compute_dtype(xp, x, "x")
    values = xb.to_numpy(x).astype(np.float64)
    for implementation in (native, lambda a: generic(a, xp)):
        result = implementation(xp.astype(x, work))
        assert_close(xp.astype(result, x.dtype), exact(values), xb, dtype)

    special = xb.asarray(np.array([-math.inf, math.inf, math.nan, 0.0, -0.0]), dtype)
    special = xp.astype(special, work)
    np.testing.assert_array_equal(xb.to_numpy(native(special)), xb.to_numpy(generic(special, xp)))


def _row_cases(dtype: str) -> dict[str, tuple[Any, Any, Any]]:
    """name -> (input builder, generic call, reference) for the row-wise and loss twins."""
    from arraykit.losses import _generic_loss
    from arraykit.normalization import _normalize_rows

    from .test_primitives import _normalize_input, _softmax_input

    rng = np.random.default_rng(13)
    pair = (rng.normal(size=(6, 7)) * 3, rng.normal(size=(6, 7)) * 3)
    cases: dict[str, tuple[Any, Any, Any]] = {
        "softmax": (
            lambda: (_softmax_input(dtype, 2),),
            lambda xp, x: _softmax(x, (1,), xp),
            reference.softmax_rows,
        ),
        "normalize_rows": (
            lambda: (_normalize_input(dtype, 4),),
            lambda xp, x: _normalize_rows(x, xp),
            reference.normalize_rows,
        ),
    }
    for power, name in ((1, "l1_loss"), (2, "l2_loss")):
        for reduction in ("sum", "mean", "none"):
            cases[f"{name}-{reduction}"] = (
                lambda: pair,
                lambda xp, a, b, p=power, r=reduction: _generic_loss(a, b, r, p, xp),
                lambda a, b, p=power, r=reduction: reference.loss(a, b, p, r),
            )
    return cases


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    "name",
    ["softmax", "normalize_rows"]
    + [f"{n}-{r}" for n in ("l1_loss", "l2_loss") for r in ("sum", "mean", "none")],
)
def test_generic_row_and_loss_twins_on_numpy(name: str, dtype: str) -> None:
    import backends

    xb = backends.get("numpy")
    xp = xb.namespace
    build, generic, exact = _row_cases(dtype)[name]
    arrays = [xb.asarray(a, dtype) for a in build()]
    values = [xb.to_numpy(a).astype(np.float64) for a in arrays]
    assert _native.lookup(xp, name.split("-")[0]) is not None, "the twin of a fast path"
    assert_close(generic(xp, *arrays), exact(*values), xb, dtype)


def test_torch_fast_path_is_skipped_when_recording_gradients() -> None:
    torch = pytest.importorskip("torch")
    import array_api_compat.torch as xp

    x = torch.tensor([30.0], dtype=torch.float64, requires_grad=True)
    native = _native.lookup(xp, "sigmoid")
    assert native is not None
    native(x).backward()
    # torch.sigmoid's own backward, s * (1 - s), would give 9.3576e-14 · (1 ± 1e-3).
    assert x.grad is not None
    np.testing.assert_allclose(
        x.grad.numpy(), reference.sigmoid_derivative(np.array([30.0])), rtol=1e-14
    )


@pytest.mark.parametrize(
    "options",
    [{}, {"eps": 0.0}, {"lr_decay": 1e-3, "weight_decay": 1e-2, "initial_accumulator_value": 5.0}],
    ids=["defaults", "classic", "everything"],
)
@pytest.mark.parametrize("record_every", [1, 7])
def test_adagrad_line_matches_the_generic_loop(
    monkeypatch: pytest.MonkeyPatch, options: dict[str, float], record_every: int
) -> None:
    from arraykit import regression

    x, y = regression.classic_data()
    fast = regression.fit_line(
        x, y, optimizer="adagrad", lr=1.0, steps=3000, record_every=record_every, **options
    )
    monkeypatch.setattr(regression, "_fast_adagrad", lambda xp, theta: None)
    generic = regression.fit_line(
        x, y, optimizer="adagrad", lr=1.0, steps=3000, record_every=record_every, **options
    )
    assert fast.history.shape == generic.history.shape
    np.testing.assert_allclose(fast.history, generic.history, rtol=1e-13)
    np.testing.assert_allclose(fast.losses, generic.losses, rtol=1e-12)
    np.testing.assert_allclose(fast.params, generic.params, rtol=1e-13)
    assert (fast.steps, fast.diverged) == (generic.steps, generic.diverged)
