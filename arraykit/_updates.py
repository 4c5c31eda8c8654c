"""The optimizers' steps, each once, in ``torch.optim``'s order of operations.

A step takes lists of leaves (parameters, gradients, state buffers) and
returns new lists; it modifies nothing. It is written against a small table of
operations over lists, :class:`Leafwise`: this module's applies array-API
operations leaf by leaf; torch's (``leafwise`` in :mod:`arraykit._native.torch`)
makes each operation one multi-tensor launch for every leaf, as
``torch.optim``'s ``foreach=True`` does. A scalar argument is a Python number,
a 0-d array (a step count traced by ``jax.jit``), or a list with one per leaf.

``counts`` are the steps taken by each leaf including this one (1 for the first
update), ``rates`` the learning rate of each leaf for this step. This module
imports no public module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._array_api import Array, namespace_of

Leaves = list[Array]
Scalars = Any
"""A Python number, a 0-d array, or a list of them with one per leaf."""


def each(c: Scalars, n: int) -> list[Any]:
    """The per-leaf values of ``c``."""
    return c if isinstance(c, list) else [c] * n


def _map(c: Scalars, function: Any) -> Scalars:
    return [function(v) for v in c] if isinstance(c, list) else function(c)


def _after_first(counts: Sequence[Any], later: float, first: float) -> list[Any]:
    """Per leaf, ``first`` on its first update and ``later`` after it."""
    return [
        (later if t > 1 else first)
        if isinstance(t, int)
        else namespace_of(t).where(t > 1, later, first)
        for t in counts
    ]


class Leafwise:
    """Operations over lists of arrays, leaf by leaf, in array-API operations.

    Each is the operation torch's multi-tensor ``_foreach_<name>`` performs, in the same order
    of floating-point operations (torch's own kernels may fuse a multiply-add).

    An operation named with a trailing ``_`` says that its first list is not
    read again by the step: a table may then write the result into it, where
    the list is its to write (a temporary it made, or what ``step_in_place``
    hands it). Here, as everywhere outside ``step_in_place`` on torch, it
    returns new arrays like the operation without the ``_``.
    """

    @staticmethod
    def add(xs: Leaves, ys: Leaves, alpha: Scalars = 1.0) -> Leaves:
        """``x + alpha·y``."""
        return [
            x + y if isinstance(a, int | float) and a == 1 else x + a * y
            for x, y, a in zip(xs, ys, each(alpha, len(xs)), strict=True)
        ]

    @staticmethod
    def add_scalar(xs: Leaves, c: Scalars) -> Leaves:
        return [x + v for x, v in zip(xs, each(c, len(xs)), strict=True)]

    @staticmethod
    def scale(xs: Leaves, c: Scalars) -> Leaves:
        return [v * x for x, v in zip(xs, each(c, len(xs)), strict=True)]

    @staticmethod
    def divide(xs: Leaves, c: Scalars) -> Leaves:
        return [x / v for x, v in zip(xs, each(c, len(xs)), strict=True)]

    @staticmethod
    def addcmul(xs: Leaves, ys: Leaves, zs: Leaves, c: Scalars) -> Leaves:
        """``x + c·y·z``."""
        return [x + v * y * z for x, y, z, v in zip(xs, ys, zs, each(c, len(xs)), strict=True)]

    @staticmethod
    def addcdiv(xs: Leaves, ys: Leaves, zs: Leaves, c: Scalars) -> Leaves:
        """``x + c·(y / z)``."""
        return [x + v * (y / z) for x, y, z, v in zip(xs, ys, zs, each(c, len(xs)), strict=True)]

    @staticmethod
    def lerp(xs: Leaves, ys: Leaves, weight: float) -> Leaves:
        """``x + w·(y − x)``, as torch computes it: from ``y``'s side when ``w ≥ 0.5``,
        where that form rounds less."""
        if abs(weight) < 0.5:
            return [x + weight * (y - x) for x, y in zip(xs, ys, strict=True)]
        return [y - (y - x) * (1 - weight) for x, y in zip(xs, ys, strict=True)]

    @staticmethod
    def sqrt(xs: Leaves) -> Leaves:
        return [namespace_of(x).sqrt(x) for x in xs]

    @staticmethod
    def maximum(xs: Leaves, ys: Leaves) -> Leaves:
        return [namespace_of(x).maximum(x, y) for x, y in zip(xs, ys, strict=True)]

    @staticmethod
    def clamp_negative(xs: Leaves) -> Leaves:
        """Negative entries made 0 (NaN stays NaN)."""
        return [namespace_of(x).where(x < 0, 0.0, x) for x in xs]

    @staticmethod
    def zero_to_one(xs: Leaves) -> Leaves:
        """Zero entries made 1 (NaN stays NaN): a denominator of 0 gives a zero step."""
        return [namespace_of(x).where(x == 0, 1.0, x) for x in xs]

    add_ = add
    add_scalar_ = add_scalar
    scale_ = scale
    divide_ = divide
    addcmul_ = addcmul
    addcdiv_ = addcdiv
    lerp_ = lerp
    sqrt_ = sqrt
    maximum_ = maximum
    clamp_negative_ = clamp_negative


LEAFWISE = Leafwise()


def _nonzero(ops: Leafwise, denominators: Leaves, eps: float) -> Leaves:
    """``√v + eps`` as a denominator: where ``eps`` rounds to 0 in a leaf's dtype (as
    in float16, or ``eps=0``), 0 where every gradient so far was 0, a 0/0 that
    is a zero step. Elsewhere ``eps`` keeps it positive, and the check costs nothing."""
    for d in denominators:
        finfo = namespace_of(d).finfo(d.dtype)
        if eps < float(finfo.smallest_normal) * float(finfo.eps):
            return ops.zero_to_one(denominators)
    return denominators


def _with_l2(ops: Leafwise, grads: Leaves, params: Leaves, weight_decay: float) -> Leaves:
    """``g + λ·θ``: weight decay as an L2 penalty, folded into the gradient first."""
    return ops.add(grads, params, weight_decay) if weight_decay else grads


def sgd_step(
    ops: Leafwise,
    params: Leaves,
    grads: Leaves,
    buffers: Leaves | None,
    counts: Sequence[Any],
    rates: Scalars,
    momentum: float,
    dampening: float,
    nesterov: bool,
    weight_decay: float,
) -> tuple[Leaves, Leaves | None]:
    """``torch.optim.SGD``: the momentum buffer is the first gradient itself, then
    ``b ← μ·b + (1 − dampening)·g``; the step is ``b``, or ``g + μ·b`` (Nesterov)."""
    grads = _with_l2(ops, grads, params, weight_decay)
    if buffers is not None:
        # A buffer starts at 0: μ·0 + 1·g is the first gradient, exactly.
        kept = _after_first(counts, momentum, 0.0)
        buffers = ops.add_(ops.scale_(buffers, kept), grads, _after_first(counts, 1 - dampening, 1))
        grads = ops.add_(grads, buffers, momentum) if nesterov else buffers
    return ops.add_(params, grads, _map(rates, lambda r: -r)), buffers


def adagrad_step(
    ops: Leafwise,
    params: Leaves,
    grads: Leaves,
    sums: Leaves,
    counts: Sequence[Any],
    rates: Scalars,
    eps: float,
    lr_decay: float,
    weight_decay: float,
) -> tuple[Leaves, Leaves]:
    """``torch.optim.Adagrad``: ``s ← s + g²``, ``θ ← θ − clr·g / (√s + eps)`` with
    ``clr = lr / (1 + (t − 1)·lr_decay)``."""
    grads = _with_l2(ops, grads, params, weight_decay)
    clr = [
        learning_rate(r, lr_decay, t) for r, t in zip(each(rates, len(params)), counts, strict=True)
    ]
    sums = ops.addcmul_(sums, grads, grads, 1.0)
    std = _nonzero(ops, ops.add_scalar_(ops.sqrt(sums), eps), eps)
    return ops.addcdiv_(params, grads, std, [-c for c in clr]), sums


def learning_rate(lr: Any, decay: float, step: Any) -> Any:
    """Adagrad's rate at step ``t`` (from 1): ``lr`` decayed by ``1 + (t − 1)·decay``."""
    return lr if decay == 0 else lr / (1 + (step - 1) * decay)


def rmsprop_step(
    ops: Leafwise,
    params: Leaves,
    grads: Leaves,
    square_avgs: Leaves,
    grad_avgs: Leaves | None,
    buffers: Leaves | None,
    rates: Scalars,
    alpha: float,
    eps: float,
    weight_decay: float,
    momentum: float,
) -> tuple[Leaves, Leaves, Leaves | None, Leaves | None]:
    """``torch.optim.RMSprop``: ``v ← α·v + (1 − α)·g²``; centered, ``ḡ ← lerp(ḡ, g, 1 − α)``
    and ``v − ḡ²`` for ``v``; the step ``g / (√v + eps)``, through a momentum buffer
    ``b ← μ·b + g / (√v + eps)`` where ``momentum > 0``.

    Centered, ``v − ḡ²`` is a variance that rounding can take below 0 (where the
    gradient hardly varies): it is taken as 0 there, where torch takes a NaN
    square root."""
    grads = _with_l2(ops, grads, params, weight_decay)
    square_avgs = ops.addcmul_(ops.scale_(square_avgs, alpha), grads, grads, 1 - alpha)
    if grad_avgs is not None:
        grad_avgs = ops.lerp_(grad_avgs, grads, 1 - alpha)
        spread = ops.clamp_negative_(ops.addcmul(square_avgs, grad_avgs, grad_avgs, -1.0))
        avg = ops.sqrt_(spread)
    else:
        avg = ops.sqrt(square_avgs)
    avg = _nonzero(ops, ops.add_scalar_(avg, eps), eps)
    if buffers is not None:
        buffers = ops.addcdiv_(ops.scale_(buffers, momentum), grads, avg, 1.0)
        params = ops.add_(params, buffers, _map(rates, lambda r: -r))
    else:
        params = ops.addcdiv_(params, grads, avg, _map(rates, lambda r: -r))
    return params, square_avgs, grad_avgs, buffers


def adam_step(
    ops: Leafwise,
    params: Leaves,
    grads: Leaves,
    exp_avgs: Leaves,
    exp_avg_sqs: Leaves,
    max_exp_avg_sqs: Leaves | None,
    counts: Sequence[Any],
    rates: Scalars,
    betas: tuple[float, float],
    eps: float,
    weight_decay: float,
    decoupled: bool,
) -> tuple[Leaves, Leaves, Leaves, Leaves | None]:
    """``torch.optim.Adam`` (``decoupled``: ``AdamW``): ``m ← lerp(m, g, 1 − β₁)``,
    ``v ← β₂·v + (1 − β₂)·g²``, ``θ ← θ − lr/(1 − β₁ᵗ) · m / (√v̂ / √(1 − β₂ᵗ) + eps)``
    with ``v̂`` the running maximum of ``v`` (AMSGrad) or ``v``. Weight decay is
    an L2 penalty in the gradient, or (decoupled) ``θ ← θ·(1 − lr·λ)`` first."""
    b1, b2 = betas
    if decoupled and weight_decay:
        params = ops.scale_(params, _map(rates, lambda r: 1 - r * weight_decay))
    elif weight_decay:
        grads = _with_l2(ops, grads, params, weight_decay)
    exp_avgs = ops.lerp_(exp_avgs, grads, 1 - b1)
    exp_avg_sqs = ops.addcmul_(ops.scale_(exp_avg_sqs, b2), grads, grads, 1 - b2)
    n = len(params)
    steps = [-(r / (1 - b1**t)) for r, t in zip(each(rates, n), counts, strict=True)]
    corrections = [(1 - b2**t) ** 0.5 for t in counts]
    if max_exp_avg_sqs is not None:
        max_exp_avg_sqs = ops.maximum_(max_exp_avg_sqs, exp_avg_sqs)
        second = max_exp_avg_sqs
    else:
        second = exp_avg_sqs
    denominators = ops.add_scalar_(ops.divide_(ops.sqrt(second), corrections), eps)
    params = ops.addcdiv_(params, exp_avgs, _nonzero(ops, denominators, eps), steps)
    return params, exp_avgs, exp_avg_sqs, max_exp_avg_sqs
