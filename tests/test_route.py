"""The one route: a fast path computes or declines, and the dispatcher alone takes the
generic formula for what it declines. With the formulas made to fail, every kernel still
answers (a value, or None) for every layout, axis and special value it is handed, and
the public functions give the formula's values exactly where the kernels declined."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import arraykit as ak
from arraykit import _formulas
from arraykit._array_api import NUMPY_XP
from arraykit._native import _eager

FORMULAS = ("sigmoid", "sigmoid_derivative", "softmax", "normalize_rows", "loss")
"""The generic formulas a kernel might be tempted to call."""


def _forbidden(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("a kernel called a generic formula itself")


def _cases(dtype: str) -> Iterator[tuple[str, tuple[Any, ...]]]:
    """(kernel name, arguments) over layouts, axes, special values, empty and huge inputs."""
    rng = np.random.default_rng(3)
    x = rng.normal(0.0, 5.0, (6, 9)).astype(dtype)
    special = x.copy()
    special[1, 2], special[2, 0], special[3, :] = np.inf, np.nan, -np.inf
    cube = rng.normal(0.0, 5.0, (4, 5, 6)).astype(dtype)
    top = float(np.finfo(dtype).max) / 64  # entries near the largest float: squares overflow
    for a in (x, special, x.T, x[:, ::2], np.asfortranarray(special), x[:0]):
        yield "sigmoid", (a,)
        yield "sigmoid_derivative", (a,)
        if a.size:
            yield "normalize_rows", (a,)
            yield "normalize_rows", (a * top,)
        for axes in ((1,), (0,)):
            if a.shape[axes[0]]:
                yield "softmax", (a, axes)
    for axes in ((0,), (1,), (2,), (0, 2), (1, 2), (0, 1, 2)):
        yield "softmax", (cube, axes)
    for a, b in ((x, x[::-1].copy()), (x * top, -x * top), (x * 1e-30, x * 0), (x[:0], x[:0])):
        for reduction in ("none", "sum", "mean"):
            for power in (1, 2):
                yield "l1_loss", (a, b, reduction, power)


def _kernels(monkeypatch: pytest.MonkeyPatch, build: str) -> Any:
    from arraykit._native import numpy as kernels

    if build == "compiled" and kernels.compiled is None:
        pytest.skip("built without the compiled kernels")
    if build == "numpy-only":
        monkeypatch.setattr(kernels, "compiled", None)
    return kernels


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("build", ["compiled", "numpy-only"])
def test_numpy_kernels_compute_or_decline(
    monkeypatch: pytest.MonkeyPatch, build: str, dtype: str
) -> None:
    kernels = _kernels(monkeypatch, build)
    answers = []
    with monkeypatch.context() as patched:
        for name in FORMULAS:
            patched.setattr(_formulas, name, _forbidden)
        with np.errstate(all="ignore"):
            for name, args in _cases(dtype):
                answers.append((name, args, getattr(kernels, name)(*args)))
    declined = 0
    for name, args, answer in answers:
        formula = {"l1_loss": _formulas.loss}.get(name) or getattr(_formulas, name)
        routed = _eager.compute(kernels, name, formula, NUMPY_XP, *args)
        if answer is None:
            declined += 1
            np.testing.assert_array_equal(routed, formula(*args, xp=NUMPY_XP))
        else:
            assert isinstance(answer, np.ndarray)
            assert answer.dtype == args[0].dtype
            np.testing.assert_array_equal(routed, answer)
    # The careful losses decline on every build; the NumPy kernels decline special rows.
    assert declined >= (8 if build == "compiled" else 14)


def test_torch_cpu_kernels_compute_or_decline(monkeypatch: pytest.MonkeyPatch) -> None:
    """torch's CPU kernels answer (a tensor, or None) without the formulas; its operators
    take the formula in torch operations for what they decline."""
    torch = pytest.importorskip("torch")
    from arraykit._native import torch as operators

    _kernels(monkeypatch, "compiled")
    cases = []
    with monkeypatch.context() as patched:
        for name in FORMULAS:
            patched.setattr(_formulas, name, _forbidden)
        for name, args in _cases("float64"):
            tensors = [torch.from_numpy(np.ascontiguousarray(a)) for a in args[:2]]
            if name == "softmax":
                answer = operators._SOFTMAX_CPU(tensors[0], list(args[1]))
            elif name == "l1_loss":
                answer = operators._LOSS_CPU(tensors[0], tensors[1], *args[2:])
            else:
                answer = {
                    "sigmoid": operators._own_sigmoid,
                    "sigmoid_derivative": operators._SIGMOID_DERIVATIVE_CPU,
                    "normalize_rows": operators._NORMALIZE_CPU,
                }[name](tensors[0])
            cases.append((name, args, tensors, answer))
    for name, args, tensors, answer in cases:
        got = _public(name, args, tensors).numpy()
        if answer is not None:
            np.testing.assert_array_equal(got, answer.numpy())
        else:  # declined: the same values as NumPy's route (the formula, in each library)
            formula = {"l1_loss": _formulas.loss}.get(name) or getattr(_formulas, name)
            np.testing.assert_array_equal(got, formula(*args, xp=NUMPY_XP))


def _public(name: str, args: tuple[Any, ...], tensors: list[Any]) -> Any:
    """The public function behind the kernel ``name``, called as a user would."""
    if name == "softmax":
        return ak.softmax(tensors[0], axis=args[1])
    if name == "l1_loss":
        loss = ak.l1_loss if args[3] == 1 else ak.l2_loss
        return loss(*tensors, reduction=args[2])
    return getattr(ak, name)(tensors[0])


def test_a_declining_fast_path_takes_the_formula_on_the_namespace_it_names() -> None:
    """The dispatcher's rule, on a backend of stand-ins: None is a decline; the formula
    runs on the fast paths' ``FORMULA_NAMESPACE`` where they name one."""
    calls: list[str] = []

    class Paths:
        FORMULA_NAMESPACE = "adapted"

        @staticmethod
        def serves(x: int) -> int | None:
            calls.append("kernel")
            return x * 2 if x > 0 else None

    def formula(x: int, *, xp: Any) -> tuple[int, Any]:
        calls.append("formula")
        return x, xp

    assert _eager.compute(Paths, "serves", formula, "plain", 3) == 6
    assert _eager.compute(Paths, "serves", formula, "plain", -1) == (-1, "adapted")
    assert _eager.compute(None, "serves", formula, "plain", 5) == (5, "plain")
    assert calls == ["kernel", "kernel", "formula", "formula"]
