"""Every public operation, declared once.

Each entry says what an operation is — its public home, its generic formula
and derivative, its mpmath reference, its special values, the peers it is
measured against, and the ways it is called, each with its GPU cost budget
— and the test matrix (``tests/``), the benchmarks and the GPU cost model
(``benchmarks/``) and the documentation's support table (``docs/support.py``)
read it from here. How to add an operation: docs/architecture.md.

This module is read by tests and tools, never on a call's path: the public
functions go straight to their formula and fast paths (:mod:`arraykit._dispatch`).
It sits above them: it imports the public modules, and none of arraykit's
modules imports it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import _formulas, activations, losses, normalization, shapes
from ._array_api import Array, Namespace

inf, nan = math.inf, math.nan


@dataclass(frozen=True)
class Budget:
    """What one call may cost on a GPU, counted by ``benchmarks/gpu_costs.py``.

    ``torch``: launches of a forward call on torch:cuda (the Triton kernels),
    ``torch_backward`` of its backward (gradient in the first argument);
    ``torch_bytes``: bytes moved, at most this times torch's own function's;
    ``jax``: kernels in XLA's optimised program, with no data-dependent
    conditional (a host sync on a GPU).
    """

    torch: int = 1
    torch_backward: int = 1
    torch_bytes: float = 1.25
    jax: int = 3


@dataclass(frozen=True)
class Call:
    """One way of calling an operation, as the tests and the benchmarks call it.

    ``public(*arrays)`` calls the public function, ``formula(*arrays, xp=)``
    its generic formula on arrays already validated, both on arrays of the
    operation's :meth:`Operation.shapes`.
    """

    label: str
    public: Callable[..., Any]
    formula: Callable[..., Any]
    budget: Budget = Budget()


@dataclass(frozen=True)
class Operation:
    """A public operation: its declaration, which everything else reads."""

    name: str
    """The public function, ``arraykit.<name>``."""
    home: str
    """The module that defines it, ``arraykit.<home>``."""
    kind: str
    """"elementwise", "rows" (along the last axis), "reduction" or "shape"."""
    arrays: int
    """How many array arguments it takes."""
    formula: Callable[..., Any] | None
    """The generic formula in :mod:`arraykit._formulas` (None: a reshape)."""
    derivative: Callable[..., Any] | None
    """The formula of its derivative or backward pass, where it has one of its own."""
    reference: str | None
    """The mpmath reference: a function of ``tests/reference.py`` (None: exact by
    construction, a reshape)."""
    calls: tuple[Call, ...]
    """The ways the tests and benchmarks call it (a loss: once per reduction)."""
    peers: tuple[str, ...] = ()
    """What ``benchmarks/primitives.py`` measures it against, by name."""
    special: tuple[tuple[tuple[float, ...], tuple[float, ...]], ...] = field(default=())
    """Inputs (a row) and their exact results, on every backend and dtype."""

    def shapes(self, n: int, row: int = 100) -> list[tuple[int, ...]]:
        """The shapes of its arrays for about ``n`` elements: rows of ``row`` for the row
        operations, images of 10 × 10 for image2vector, else one axis."""
        if self.kind == "rows":
            shape: tuple[int, ...] = (max(n // row, 1), min(n, row))
        elif self.kind == "shape":
            shape = (max(n // 100, 1), 10, 10)
        else:
            shape = (n,)
        return [shape] * self.arrays


def _row(x: Array, xp: Namespace) -> tuple[int, ...]:
    return (x.ndim - 1,)


def _loss(name: str, power: int, torch_peer: str) -> Operation:
    """The L1 (power 1) or L2 (power 2) loss: one formula, called once per reduction."""
    function = losses.l1_loss if power == 1 else losses.l2_loss

    def formula(yhat: Array, y: Array, reduction: Any, *, xp: Namespace) -> Array:
        return _formulas.loss(yhat, y, reduction, power, xp=xp)

    def derivative(g: Array, yhat: Array, y: Array, reduction: Any, *, xp: Namespace) -> Array:
        return _formulas.loss_backward(g, yhat, y, reduction, power, xp=xp)

    def call(reduction: str) -> Call:
        return Call(
            f"{name} {reduction}",
            lambda yhat, y: function(yhat, y, reduction=reduction),  # type: ignore[arg-type]
            lambda yhat, y, *, xp: formula(yhat, y, reduction, xp=xp),
            # A reduction to one number: blocks, then their sums.
            Budget(torch=1 if reduction == "none" else 2),
        )

    return Operation(
        name,
        "losses",
        "reduction",
        2,
        formula,
        derivative,
        "loss",
        tuple(call(reduction) for reduction in ("sum", "mean", "none")),
        peers=("textbook", torch_peer),
    )


OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "sigmoid",
        "activations",
        "elementwise",
        1,
        _formulas.sigmoid,
        _formulas.sigmoid_derivative,
        "sigmoid",
        (Call("sigmoid", activations.sigmoid, _formulas.sigmoid),),
        peers=(
            "textbook",
            "scipy.special.expit",
            "torch.sigmoid",
            "jax.nn.sigmoid",
            "cupyx.scipy.special.expit",
        ),
        special=(((-inf, inf, nan, 0.0, -0.0), (0.0, 1.0, nan, 0.5, 0.5)),),
    ),
    Operation(
        "sigmoid_derivative",
        "activations",
        "elementwise",
        1,
        _formulas.sigmoid_derivative,
        _formulas.sigmoid_second_derivative,
        "sigmoid_derivative",
        (Call("sigmoid_derivative", activations.sigmoid_derivative, _formulas.sigmoid_derivative),),
        peers=("textbook", "torch.sigmoid s·(1 − s)"),
        special=(((-inf, inf, nan, 0.0), (0.0, 0.0, nan, 0.25)),),
    ),
    Operation(
        "image2vector",
        "shapes",
        "shape",
        1,
        None,
        None,
        None,
        (
            Call(
                "image2vector",
                shapes.image2vector,
                lambda x, *, xp: xp.reshape(x, (-1, 1)),
                Budget(torch=0, torch_backward=0),
            ),
        ),
        peers=("textbook",),
    ),
    Operation(
        "normalize_rows",
        "normalization",
        "rows",
        1,
        _formulas.normalize_rows,
        _formulas.normalize_rows_backward,
        "normalize_rows",
        (Call("normalize_rows", normalization.normalize_rows, _formulas.normalize_rows),),
        peers=("textbook", "np.linalg.norm", "torch.nn.functional.normalize"),
        special=(
            ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0)),  # a zero row stays zero
            ((inf, 1.0, 0.0), (1.0, 0.0, 0.0)),
            ((inf, -inf, 5.0), (1 / math.sqrt(2), -1 / math.sqrt(2), 0.0)),
            ((nan, 1.0, 0.0), (nan, nan, nan)),
            ((0.0, -2.0, 0.0), (0.0, -1.0, 0.0)),
        ),
    ),
    Operation(
        "softmax",
        "activations",
        "rows",
        1,
        _formulas.softmax,
        _formulas.softmax_backward,
        "softmax_rows",
        (
            Call(
                "softmax",
                activations.softmax,
                lambda x, *, xp: _formulas.softmax(x, _row(x, xp), xp=xp),
            ),
        ),
        peers=(
            "textbook",
            "scipy.special.softmax",
            "torch.softmax",
            "jax.nn.softmax",
            "cupyx.scipy.special.softmax",
        ),
        special=(
            ((inf, 0.0, inf, -inf), (0.5, 0.0, 0.5, 0.0)),  # the +inf entries share the mass
            ((-inf, -inf, -inf, -inf), (0.25, 0.25, 0.25, 0.25)),  # all equal: uniform
            ((nan, 1.0, 2.0, 3.0), (nan, nan, nan, nan)),  # NaN spreads over its row only
            ((-inf, 0.0, -inf, 0.0), (0.0, 0.5, 0.0, 0.5)),  # -inf entries get exactly 0
            ((inf, 1.0, 2.0, 3.0), (1.0, 0.0, 0.0, 0.0)),
        ),
    ),
    _loss("l1_loss", 1, "torch.nn.functional.l1_loss"),
    _loss("l2_loss", 2, "torch.nn.functional.mse_loss"),
)
"""The public operations, in the order the documentation lists them."""


BY_NAME: dict[str, Operation] = {op.name: op for op in OPERATIONS}
"""The operations by public name."""

CALLS: dict[str, tuple[Operation, Call]] = {
    call.label: (op, call) for op in OPERATIONS for call in op.calls
}
"""Every call of every operation, by its label ("l2_loss mean")."""
