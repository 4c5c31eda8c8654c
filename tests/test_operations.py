"""The registry of operations (``arraykit/_operations.py``): complete, consistent with
the package and its documentation, and its declarations true on every backend."""

from __future__ import annotations

import inspect
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import arraykit as ak
from arraykit._array_api import NUMPY_XP
from arraykit._operations import BY_NAME, CALLS, OPERATIONS
from backends import Backend

from . import reference
from .assertions import assert_close

DOCS = Path(__file__).resolve().parents[1] / "docs"
HOMES = {op.home for op in OPERATIONS}


def test_every_public_operation_is_declared_once() -> None:
    """The public functions of the operations' modules are exactly the registry's, each
    declared once, in the module the package imports it from."""
    homes: dict[str, str] = ak._HOMES  # type: ignore[attr-defined]
    public = {name for name, home in homes.items() if home in HOMES}
    assert public == set(BY_NAME)
    assert len(BY_NAME) == len(OPERATIONS)
    for op in OPERATIONS:
        assert homes[op.name] == op.home
        assert op.name in ak.__all__
        assert getattr(ak, op.name).__module__ == f"arraykit.{op.home}"


def test_declarations_name_what_exists() -> None:
    """Each reference is in tests/reference.py, each operation in the API page, each
    call's label starts with its operation's name."""
    api = (DOCS / "api.md").read_text()
    for op in OPERATIONS:
        assert op.reference is None or callable(getattr(reference, op.reference))
        assert f"arraykit.{op.name}\n" in api, op.name
        assert op.calls
        assert all(c.label.startswith(op.name) for c in op.calls)
        assert op.kind in ("elementwise", "rows", "reduction", "shape")
        assert "textbook" in op.peers


def test_the_benchmark_knows_every_peer() -> None:
    from benchmarks import primitives

    libraries = {prefix for prefixes in primitives._PEER_LIBRARIES.values() for prefix in prefixes}
    for op in OPERATIONS:
        for peer in op.peers:
            assert peer == "textbook" or peer.split(".", 1)[0] in libraries, (op.name, peer)


@pytest.mark.parametrize("label", list(CALLS))
def test_each_call_is_its_formula(label: str) -> None:
    """The public function and the declared formula agree (NumPy, float64, 4 ulp)."""
    op, call = CALLS[label]
    rng = np.random.default_rng(2)
    arrays = op.arguments([rng.normal(0.0, 4.0, shape) for shape in op.shapes(600, 30)])
    got, expected = np.asarray(call.public(*arrays)), np.asarray(call.formula(*arrays, xp=NUMPY_XP))
    assert got.shape == expected.shape
    np.testing.assert_array_max_ulp(got, expected, maxulp=4)


@pytest.mark.parametrize("name", [op.name for op in OPERATIONS if op.kind == "elementwise"])
def test_declared_derivatives_are_the_derivatives(name: str) -> None:
    """An elementwise operation's declared derivative against central differences of its
    formula (float64, step h = 1e-6·max(|x|, 1)): within their truncation error (1e-6
    relative) and the rounding of the two values differenced (8 ulp of 1 over 2h)."""
    op = BY_NAME[name]
    assert op.formula is not None
    assert op.derivative is not None
    x = np.linspace(-30.0, 30.0, 241) + 0.0123
    h = 1e-6 * np.maximum(np.abs(x), 1.0)
    differences = (op.formula(x + h, xp=NUMPY_XP) - op.formula(x - h, xp=NUMPY_XP)) / (2 * h)
    derivative = op.derivative(x, xp=NUMPY_XP)
    bound = 1e-6 * np.abs(derivative) + 8 * np.finfo(np.float64).eps / (2 * h)
    assert (np.abs(differences - derivative) <= bound).all()


def _special_cases() -> list[Any]:
    return [
        pytest.param(op.name, i, id=f"{op.name}-{i}")
        for op in OPERATIONS
        for i in range(len(op.special))
    ]


@pytest.mark.parametrize(("name", "case"), _special_cases())
def test_special_values(xb: Backend, dtype: str, name: str, case: int) -> None:
    """The registry's special values, exactly (1/√2 to an ulp), on every backend and
    dtype; a row operation's also over the first axis of the transpose, where it has one."""
    op = BY_NAME[name]
    values, desired = (np.array(v, dtype=np.float64) for v in op.special[case])
    function = getattr(ak, name)
    ulps = 0 if all(math.isnan(d) or d in (0.0, 0.25, 0.5, 1.0) for d in np.abs(desired)) else 1
    if op.kind == "rows":
        rows, limits = np.stack([values, values]), np.stack([desired, desired])
        if desired.size < values.size:  # a reduction: one result per row
            limits = limits[:, 0]
        assert_close(function(xb.asarray(rows, dtype)), limits, xb, dtype, ulps=ulps)
        if "axis" in inspect.signature(function).parameters:
            columns = function(xb.asarray(rows.T, dtype), axis=0)
            assert_close(columns, limits.T, xb, dtype, ulps=ulps)
    else:
        assert_close(function(xb.asarray(values, dtype)), desired, xb, dtype, ulps=ulps)
