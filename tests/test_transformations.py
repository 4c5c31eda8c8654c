"""The transformation matrix: every public primitive × the programs users write around it.

Each function runs under every transformation of its backend's library
(``backends.transforms``: jit, vmap, compile, export, autograd in both modes,
``torch.func``, meta and fake tensors, ...) in float32 and float64, and is
compared with independent references: mpmath values, mpmath derivatives for
the elementwise functions, and float64 finite differences of the mpmath
references for the Jacobians of the others. Transformations that compile
(``torch.compile``, ``torch.export``, ``jax.export``) are marked ``slow``:
``.ci/run`` runs them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

import arraykit as ak
import backends
from backends import Backend
from backends.transforms import Transform, for_library

from . import reference
from .assertions import assert_close, assert_kind, dtype_name
from .test_gradients import _sigmoid_second_derivative


@dataclass(frozen=True)
class Case:
    """A public function, its inputs, and its exact values (and derivative, if elementwise)."""

    call: Callable[..., Any]
    inputs: Callable[[], list[np.ndarray]]
    exact: Callable[..., np.ndarray]
    derivative: Callable[[np.ndarray], np.ndarray] | None = None
    closed: Callable[[], list[np.ndarray]] | None = None
    """Arguments closed over, never transformed (labels, class indices), as a user
    closes over them: ``call`` takes them, put on the backend (floating ones in the
    tested dtype), and returns the function of the others; ``exact`` takes them last."""

    def function(self, xb: Backend, dtype: str) -> tuple[Callable[..., Any], list[np.ndarray]]:
        """The function to transform, and the closed-over values as the backend holds them."""
        if self.closed is None:
            return self.call, []
        values = self.closed()
        arrays = [xb.asarray(v, dtype if v.dtype.kind == "f" else None) for v in values]
        seen = [v.astype(dtype).astype(np.float64) if v.dtype.kind == "f" else v for v in values]
        return self.call(*arrays), seen


def _points() -> list[np.ndarray]:
    return [np.array([-30.0, -6.0, -1.5, -0.25, 0.0, 0.7, 2.0, 6.0, 19.0])]


def _rows() -> list[np.ndarray]:
    return [np.array([[1.0, -2.0, 0.5, 3.0, -0.5], [2.5, 2.0, -1.0, 0.25, 4.0]])]


def _pair() -> list[np.ndarray]:
    yhat = np.array([[0.9, 0.2, 0.1], [0.4, 0.9, -1.5]])
    return [yhat, np.array([[1.0, 0.0, 0.5], [1.0, 1.0, -0.5]])]


CASES: dict[str, Case] = {
    "sigmoid": Case(ak.sigmoid, _points, reference.sigmoid, reference.sigmoid_derivative),
    "sigmoid_derivative": Case(
        ak.sigmoid_derivative,
        _points,
        reference.sigmoid_derivative,
        _sigmoid_second_derivative,
    ),
    "softmax": Case(ak.softmax, _rows, reference.softmax_rows),
    "normalize_rows": Case(ak.normalize_rows, _rows, reference.normalize_rows),
    "image2vector": Case(
        ak.image2vector,
        lambda: [np.linspace(-3.0, 3.0, 12).reshape(2, 3, 2)],
        lambda x: np.reshape(x, (-1, 1)),
    ),
}


def _labels() -> list[np.ndarray]:
    return [np.array([1.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0])]


def _probabilities() -> list[np.ndarray]:
    return [np.array([0.05, 0.2, 0.5, 0.7, 0.999, 3e-3, 0.35, 0.9, 0.6])]


def _classes() -> list[np.ndarray]:
    return [np.array([3, 4])]


def _class_probabilities() -> list[np.ndarray]:
    return [np.array([[0.1, 0.0, 0.2, 0.7, 0.0], [0.25, 0.25, 0.0, 0.0, 0.5]])]


CASES.update(
    {
        "softplus": Case(ak.softplus, _points, reference.softplus, lambda x: reference.sigmoid(x)),
        "log_sigmoid": Case(
            ak.log_sigmoid, _points, reference.log_sigmoid, lambda x: reference.sigmoid(-x)
        ),
        "logsumexp": Case(ak.logsumexp, _rows, reference.logsumexp),
        "log_softmax": Case(ak.log_softmax, _rows, reference.log_softmax),
        "cross_entropy-probabilities": Case(
            lambda t: lambda x: ak.cross_entropy(x, t, reduction="none"),
            _rows,
            lambda x, t: reference.cross_entropy(x, t),
            closed=_class_probabilities,
        ),
    }
)
# The elementwise losses unreduced, the cross-entropy reduced: the reduction is one
# shared part (_log_space.reduce), whichever loss it sums.
for _reduction in ("none",):
    CASES[f"binary_cross_entropy_with_logits-{_reduction}"] = Case(
        functools.partial(
            lambda y, r: lambda z: ak.binary_cross_entropy_with_logits(z, y, r), r=_reduction
        ),
        _points,
        functools.partial(
            lambda z, y, r: reference.binary_cross_entropy_with_logits(z, y, r), r=_reduction
        ),
        closed=_labels,
    )
    CASES[f"binary_cross_entropy-{_reduction}"] = Case(
        functools.partial(lambda y, r: lambda p: ak.binary_cross_entropy(p, y, r), r=_reduction),
        _probabilities,
        functools.partial(lambda p, y, r: reference.binary_cross_entropy(p, y, r), r=_reduction),
        closed=_labels,
    )
CASES["cross_entropy-mean"] = Case(
    lambda t: lambda x: ak.cross_entropy(x, t, reduction="mean"),
    _rows,
    lambda x, t: reference.cross_entropy(x, t, -1, "mean"),
    closed=_classes,
)

for _power, _name in ((1, "l1_loss"), (2, "l2_loss")):
    for _reduction in ("sum", "mean", "none"):
        CASES[f"{_name}-{_reduction}"] = Case(
            functools.partial(lambda a, b, f, r: f(a, b, r), f=getattr(ak, _name), r=_reduction),
            _pair,
            functools.partial(
                lambda a, b, p, r: reference.loss(a, b, p, r), p=_power, r=_reduction
            ),
        )

COLUMNS = [b for b in backends.BACKENDS.values() if b.library in ("torch", "jax")]


def _params() -> list[Any]:
    out = []
    for b in COLUMNS:
        for t in for_library(b.library):
            for name in CASES:
                for dtype in ("float32", "float64"):
                    marks = [pytest.mark.gpu] if b.gpu else []
                    if t.slow:
                        marks.append(pytest.mark.slow)
                    out.append(
                        pytest.param(
                            b.id, t, name, dtype, id=f"{t.id}-{name}-{b.id}-{dtype}", marks=marks
                        )
                    )
    return out


def _seen(xb: Backend, arrays: list[Any]) -> list[np.ndarray]:
    return [xb.to_numpy(a).astype(np.float64) for a in arrays]


@functools.cache
def _jacobians(name: str, dtype: str) -> tuple[np.ndarray, ...]:
    """∂out/∂arg for each argument, by central differences of the exact function.

    Shaped ``out.shape + arg.shape``; computed in float64 at the values the
    backend sees in ``dtype``.
    """
    case = CASES[name]
    values = [v.astype(dtype).astype(np.float64) for v in case.inputs()]
    closed = [] if case.closed is None else case.closed()
    closed = [v.astype(dtype).astype(np.float64) if v.dtype.kind == "f" else v for v in closed]
    out_shape = np.shape(case.exact(*values, *closed))
    jacobians = []
    for i, v in enumerate(values):
        jac = np.empty(out_shape + v.shape)
        for k in np.ndindex(v.shape):
            h = 1e-6 * max(1.0, abs(v[k]))
            plus, minus = [w.copy() for w in values], [w.copy() for w in values]
            plus[i][k] += h
            minus[i][k] -= h
            jac[(..., *k)] = (case.exact(*plus, *closed) - case.exact(*minus, *closed)) / (2 * h)
        jacobians.append(jac)
    return tuple(jacobians)


def _directions(shapes: list[tuple[int, ...]], seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.uniform(0.5, 1.5, size=s) * rng.choice([-1.0, 1.0], size=s) for s in shapes]


_CLOSED_AS_ARGUMENTS = {"torch:meta", "torch:fake", "jax:export"}
"""Where closed-over labels are passed as arguments instead: meta and fake tensors (they
must be where the others are), an export with a symbolic batch (they have its length)."""


@pytest.fixture
def column(request: pytest.FixtureRequest) -> Backend:
    backend = backends.get(request.param)
    if not backend.available:
        pytest.skip(backend.unavailable)
    return backend


@pytest.mark.parametrize(("column", "transform", "name", "dtype"), _params(), indirect=["column"])
def test_transformation(column: Backend, transform: Transform, name: str, dtype: str) -> None:
    case = CASES[name]
    xb = column
    args = [xb.asarray(v, dtype) for v in case.inputs()]
    values = _seen(xb, args)
    if name == "image2vector" and transform.kind != "value" and dtype == "float32":
        pytest.skip("a reshape: its derivative is exact in every dtype, tested in float64")
    if transform.slow and transform.library == "torch":
        # Each cell is its own program: the cases share one lambda, whose
        # recompilations would otherwise pile up past dynamo's limit.
        import torch._dynamo

        torch._dynamo.reset()
    function, closed = case.function(xb, dtype)
    if transform.id in _CLOSED_AS_ARGUMENTS and case.closed is not None:
        taken = len(args)
        args = [
            *args,
            *(xb.asarray(v, dtype if v.dtype.kind == "f" else None) for v in case.closed()),
        ]
        function = lambda *a: case.call(*a[taken:])(*a[:taken])  # noqa: E731
    if transform.kind == "value":
        _check_value(xb, transform, function, case, args, [*values, *closed], dtype)
    else:
        _check_derivative(xb, transform, function, name, args, values, closed, dtype)


def _check_value(
    xb: Backend,
    transform: Transform,
    function: Callable[..., Any],
    case: Case,
    args: list[Any],
    values: list[np.ndarray],
    dtype: str,
) -> None:
    result = transform.run(function, args)
    exact = case.exact(*values)
    if transform.batched:
        exact = np.stack([exact, exact])
    if transform.shape_only:
        assert tuple(result.shape) == exact.shape
        assert dtype_name(result.dtype) == dtype
        return
    assert_close(result, exact, xb, dtype)


def _check_derivative(
    xb: Backend,
    transform: Transform,
    function: Callable[..., Any],
    name: str,
    args: list[Any],
    values: list[np.ndarray],
    closed: list[np.ndarray],
    dtype: str,
) -> None:
    case = CASES[name]
    out_shape = np.shape(case.exact(*values, *closed))
    jacobians = _jacobians(name, dtype)
    used = 1 if transform.first_only else len(args)
    if transform.kind == "forward":
        tangents = _directions([v.shape for v in values], seed=1)
        got = transform.run(function, args, [xb.asarray(t, dtype) for t in tangents])
        if case.derivative is not None:  # elementwise: J·1 is the derivative itself
            ones = [xb.asarray(np.ones(v.shape), dtype) for v in values]
            exact = case.derivative(values[0])
            assert_close(transform.run(function, args, ones), exact, xb, dtype, ulps=16)
        desired = sum(
            np.tensordot(j, t, axes=t.ndim) for j, t in zip(jacobians, tangents, strict=True)
        )
        _assert_derivative(xb, got, desired, dtype)
        return
    (weights,) = _directions([out_shape], seed=2)
    grads = transform.run(function, args, xb.asarray(weights, dtype))
    assert len(grads) == used
    for grad, jac in zip(grads, jacobians[:used], strict=True):
        desired = np.tensordot(weights, jac, axes=weights.ndim)
        _assert_derivative(xb, grad, desired, dtype)
    if case.derivative is not None:
        ones = xb.asarray(np.ones(out_shape), dtype)
        (grad,) = transform.run(function, args, ones)
        assert_close(grad, case.derivative(values[0]), xb, dtype, ulps=16)


def _assert_derivative(xb: Backend, got: Any, desired: np.ndarray, dtype: str) -> None:
    """Within finite differences' accuracy (float64) or float32's, relative to the largest."""
    assert_kind(got, xb, dtype, desired.shape)
    rtol = 1e-6 if dtype == "float64" else 2e-5
    scale = float(np.max(np.abs(desired))) if desired.size else 1.0
    np.testing.assert_allclose(
        xb.to_numpy(got).astype(np.float64), desired, rtol=rtol, atol=rtol * scale
    )
