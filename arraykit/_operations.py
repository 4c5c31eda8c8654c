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

import array_api_compat

from . import (
    _formulas,
    _log_space,
    activations,
    classification,
    log_space,
    losses,
    normalization,
    shapes,
)
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
    jax: int | None = 3
    """None: not held to a number of kernels yet (docs/benchmarks.md says how many)."""


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
    budget: Budget | None = Budget()
    """Its GPU cost budget; None where it has no GPU kernel yet: on CUDA tensors the
    formula in torch operations serves it (free of host syncs, ``tests/test_host_transfers.py``),
    and the cost model does not hold it to a number of launches."""


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
    """Inputs (a row) and their exact results (one per row for a reduction over it),
    on every backend and dtype."""
    domain: Callable[[list[Array]], list[Array]] | None = None
    """Turns draws of a normal distribution, in the shapes of :meth:`shapes`, into
    arguments it takes (probabilities, labels, class indices), in the draws' namespace
    and device; None: any real values."""

    def arguments(self, draws: list[Array]) -> list[Array]:
        """Its arguments from normal ``draws`` (floating, in the shapes of :meth:`shapes`)."""
        return list(draws) if self.domain is None else self.domain(list(draws))

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


def _labels(draws: list[Array]) -> list[Array]:
    """Logits, and labels of 0 and 1."""
    z, b = draws
    xp = array_api_compat.array_namespace(z, b)
    return [z, xp.astype(b > 0, z.dtype)]


def _probabilities(draws: list[Array]) -> list[Array]:
    """Probabilities in (0, 1), and labels of 0 and 1."""
    z, b = draws
    xp = array_api_compat.array_namespace(z, b)
    return [1 / (1 + xp.exp(-z)), xp.astype(b > 0, z.dtype)]


def _class_indices(draws: list[Array]) -> list[Array]:
    """Logits with the classes along the last axis, and a class index per row."""
    logits, b = draws
    xp = array_api_compat.array_namespace(logits, b)
    return [logits, xp.argmax(b, axis=-1)]


def _classification_loss(
    name: str,
    function: Callable[..., Any],
    formula: Callable[..., Any],
    domain: Callable[[list[Array]], list[Array]],
    kind: str,
    peers: tuple[str, ...],
    reference: str,
    gpu_kernel: bool = False,
) -> Operation:
    """A cross-entropy: one formula, called once per reduction. Without ``gpu_kernel`` the
    formula serves CUDA tensors, not held to a budget."""

    def call(reduction: str) -> Call:
        # A reduction to one number: the rows' sums, then theirs.
        budget = Budget(torch=1 if reduction == "none" else 2, jax=None) if gpu_kernel else None
        return Call(
            f"{name} {reduction}",
            lambda a, b: function(a, b, reduction=reduction),
            lambda a, b, *, xp: formula(a, b, reduction, None, xp=xp),
            budget,
        )

    return Operation(
        name,
        "classification",
        kind,
        2,
        formula,
        None,  # autodiff of the formula: accurate by construction (see _log_space)
        reference,
        tuple(call(reduction) for reduction in ("mean", "sum", "none")),
        peers=("textbook", *peers),
        domain=domain,
    )


_LN2, _LN4 = math.log(2.0), math.log(4.0)

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
    Operation(
        "softplus",
        "log_space",
        "elementwise",
        1,
        _log_space.softplus,
        _formulas.sigmoid,
        "softplus",
        (Call("softplus", log_space.softplus, _log_space.softplus),),
        peers=("textbook", "np.logaddexp", "torch.nn.functional.softplus", "jax.nn.softplus"),
        special=(((-inf, inf, nan, 0.0), (0.0, inf, nan, _LN2)),),
    ),
    Operation(
        "log_sigmoid",
        "log_space",
        "elementwise",
        1,
        _log_space.log_sigmoid,
        lambda x, *, xp: _formulas.sigmoid(-x, xp=xp),
        "log_sigmoid",
        # torch's own F.logsigmoid on torch:cuda (docs/benchmarks.md).
        (Call("log_sigmoid", log_space.log_sigmoid, _log_space.log_sigmoid, Budget()),),
        peers=(
            "textbook",
            "scipy.special.log_expit",
            "torch.nn.functional.logsigmoid",
            "jax.nn.log_sigmoid",
        ),
        special=(((-inf, inf, nan, 0.0), (-inf, 0.0, nan, -_LN2)),),
    ),
    Operation(
        "logsumexp",
        "log_space",
        "rows",
        1,
        _log_space.logsumexp,
        None,  # autodiff of the formula: the softmax (see _log_space)
        "logsumexp",
        (
            Call(
                "logsumexp",
                log_space.logsumexp,
                lambda x, *, xp: _log_space.logsumexp(x, _row(x, xp), False, xp=xp),
                Budget(jax=None),
            ),
        ),
        peers=("textbook", "scipy.special.logsumexp", "torch.logsumexp", "jax.nn.logsumexp"),
        special=(
            ((inf, 0.0, inf, -inf), (inf,)),
            ((-inf, -inf, -inf, -inf), (-inf,)),  # the log of a sum of zeros
            ((nan, 1.0, 2.0, 3.0), (nan,)),
            ((-inf, 0.0, -inf, 0.0), (_LN2,)),
            ((inf, 1.0, 2.0, 3.0), (inf,)),
        ),
    ),
    Operation(
        "log_softmax",
        "log_space",
        "rows",
        1,
        _log_space.log_softmax,
        None,  # autodiff of the formula (see _log_space)
        "log_softmax",
        (
            Call(
                "log_softmax",
                log_space.log_softmax,
                lambda x, *, xp: _log_space.log_softmax(x, _row(x, xp), xp=xp),
                Budget(jax=None),
            ),
        ),
        peers=(
            "textbook",
            "scipy.special.log_softmax",
            "torch.log_softmax",
            "jax.nn.log_softmax",
        ),
        special=(  # softmax's limits, logged
            ((inf, 0.0, inf, -inf), (-_LN2, -inf, -_LN2, -inf)),
            ((-inf, -inf, -inf, -inf), (-_LN4, -_LN4, -_LN4, -_LN4)),
            ((nan, 1.0, 2.0, 3.0), (nan, nan, nan, nan)),
            ((-inf, 0.0, -inf, 0.0), (-inf, -_LN2, -inf, -_LN2)),
            ((inf, 1.0, 2.0, 3.0), (0.0, -inf, -inf, -inf)),
        ),
    ),
    _classification_loss(
        "binary_cross_entropy",
        classification.binary_cross_entropy,
        _log_space.binary_cross_entropy,
        _probabilities,
        "reduction",
        ("torch.nn.functional.binary_cross_entropy",),
        "binary_cross_entropy",
    ),
    _classification_loss(
        "binary_cross_entropy_with_logits",
        classification.binary_cross_entropy_with_logits,
        _log_space.binary_cross_entropy_with_logits,
        _labels,
        "reduction",
        ("torch.nn.functional.binary_cross_entropy_with_logits",),
        "binary_cross_entropy_with_logits",
        gpu_kernel=True,
    ),
    _classification_loss(
        "cross_entropy",
        classification.cross_entropy,
        lambda logits, target, *rest, xp: _log_space.cross_entropy_indices(
            logits, target, logits.ndim - 1, *rest, xp=xp
        ),
        _class_indices,
        "rows",
        ("torch.nn.functional.cross_entropy", "optax.softmax_cross_entropy_with_integer_labels"),
        "cross_entropy",
        gpu_kernel=True,
    ),
)
"""The public operations, in the order the documentation lists them."""


BY_NAME: dict[str, Operation] = {op.name: op for op in OPERATIONS}
"""The operations by public name."""

CALLS: dict[str, tuple[Operation, Call]] = {
    call.label: (op, call) for op in OPERATIONS for call in op.calls
}
"""Every call of every operation, by its label ("l2_loss mean")."""
