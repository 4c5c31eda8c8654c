"""Optimizers as pure functions of arrays, in the style of optax, with torch.optim's semantics.

An optimizer is a pair of functions: ``init(params) -> state`` and
``update(params, grads, state) -> (params, state)``. Neither mutates its
arguments, so the same code runs on NumPy, CuPy and PyTorch arrays, on JAX's
immutable arrays (and under ``jax.jit`` or ``jax.lax.scan``) and on Dask's
lazy ones. Parameters may be one array or a tuple, list or dict of arrays
(nested freely); gradients and state have the same structure, and the state
keeps a step count and buffers for each parameter, as ``torch.optim`` does.

Each optimizer takes its step as ``torch.optim``'s does, operation for
operation (``arraykit/_updates.py``); on torch tensors each operation is one
multi-tensor launch for every parameter, as ``foreach=True``. ``lr`` is a
number, or a schedule: a function of the step count (0 for the first update)
that ``jax.jit`` can trace.

Examples
--------
>>> import numpy as np
>>> import arraykit as ak
>>> opt = ak.optim.adagrad(lr=1.0)
>>> params = (np.array(-120.0), np.array(-4.0))
>>> state = opt.init(params)
>>> params, state = opt.update(params, (np.array(2.0), np.array(-3.0)), state)
>>> params
(array(-121.), array(-3.))
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import array_api_compat
import numpy as np

from . import _updates
from ._array_api import Array, as_array, describe, namespace_of
from ._dispatch import lookup
from ._trees import Params, as_tree, dense, flat, matched_leaves, rebuilt, tree_leaves, tree_map

__all__ = [
    "AdagradState",
    "AdamState",
    "Optimizer",
    "RMSpropState",
    "SGDState",
    "Schedule",
    "adagrad",
    "adam",
    "adamw",
    "as_tree",
    "gradient_descent",
    "rmsprop",
    "step_in_place",
    "tree_leaves",
    "tree_map",
]


class Schedule(Protocol):
    """A learning rate as a function of the step count: 0 for the first update.

    Called with each parameter's count (a Python int, or under ``jax.jit`` a
    traced integer, so the schedule must be traceable: ``lambda t: 0.1 *
    0.99**t``, or an optax schedule), it returns a number or a 0-d array.
    A number is checked as it is used: finite and at least 0.

    Examples
    --------
    >>> import numpy as np
    >>> import arraykit as ak
    >>> opt = ak.optim.gradient_descent(lr=lambda t: 1.0 / (1 + t))
    >>> params = np.array([1.0])
    >>> state = opt.init(params)
    >>> for _ in range(3):  # steps of 1, 1/2 and 1/3 of the gradient
    ...     params, state = opt.update(params, np.array([6.0]), state)
    >>> params
    array([-10.])
    """

    def __call__(self, count: Any, /) -> Any: ...


class Optimizer(NamedTuple):
    """A pure optimizer: ``init`` builds the state, ``update`` takes one step.

    Attributes
    ----------
    init : callable
        ``init(params) -> state``; ``params`` a tree of arrays, or any
        iterable of them (``model.parameters()``).
    update : callable
        ``update(params, grads, state) -> (params, state)``: new arrays,
        nothing modified. :func:`step_in_place` writes them into the
        parameters instead.
    """

    init: Callable[[Params], Any]
    update: Callable[[Params, Params, Any], tuple[Params, Any]]


class SGDState(NamedTuple):
    """:func:`gradient_descent`'s state.

    Attributes
    ----------
    step : tree of int, or a 0-d JAX integer
        Each parameter's steps so far; for JAX parameters one count for all,
        a JAX integer (so that a jitted update compiles once).
    momentum_buffer : tree of arrays, or ()
        The momentum buffers; ``()`` without momentum.
    """

    step: Params
    momentum_buffer: Params


class AdagradState(NamedTuple):
    """:func:`adagrad`'s state.

    Attributes
    ----------
    step : tree of int, or a 0-d JAX integer
        Each parameter's steps so far (one count for JAX parameters).
    sum : tree of arrays
        Σ g², with the parameters' structure.
    """

    step: Params
    sum: Params


class RMSpropState(NamedTuple):
    """:func:`rmsprop`'s state.

    Attributes
    ----------
    step : tree of int, or a 0-d JAX integer
        Each parameter's steps so far (one count for JAX parameters).
    square_avg : tree of arrays
        The running average of g².
    grad_avg : tree of arrays, or ()
        The running average of g (``centered=True``), else ``()``.
    momentum_buffer : tree of arrays, or ()
        The momentum buffers (``momentum > 0``), else ``()``.
    """

    step: Params
    square_avg: Params
    grad_avg: Params
    momentum_buffer: Params


class AdamState(NamedTuple):
    """:func:`adam`'s and :func:`adamw`'s state.

    Attributes
    ----------
    step : tree of int, or a 0-d JAX integer
        Each parameter's steps so far (one count for JAX parameters).
    exp_avg : tree of arrays
        The first moment's running average.
    exp_avg_sq : tree of arrays
        The second moment's running average.
    max_exp_avg_sq : tree of arrays, or ()
        Its running maximum (``amsgrad=True``), else ``()``.
    """

    step: Params
    exp_avg: Params
    exp_avg_sq: Params
    max_exp_avg_sq: Params


# --- hyperparameters ----------------------------------------------------------------------


def _check_rate(name: str, value: float, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a Python number; got {type(value).__name__} {value!r}")
    if not (value > 0 if positive else value >= 0) or not math.isfinite(value):
        expected = "a finite number > 0" if positive else "a finite number >= 0"
        raise ValueError(f"{name} must be {expected}; got {value!r}")
    return float(value)


def _check_fraction(name: str, value: float, *, one: bool = False) -> float:
    rate = _check_rate(name, value)
    if rate > 1 or (rate == 1 and not one):
        raise ValueError(f"{name} must be in [0, {'1]' if one else '1)'}; got {value!r}")
    return rate


def _check_flag(name: str, value: bool) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False; got {type(value).__name__} {value!r}")
    return value


def _schedule(lr: float | Schedule) -> float | Schedule:
    """A constant rate, checked, or a schedule (called as the steps are taken)."""
    return lr if callable(lr) else _check_rate("lr", lr, positive=True)


def _rates(lr: float | Schedule, taken: list[Any], leaves: list[Array]) -> Any:
    """Each leaf's rate for this step: one number, or the schedule at each leaf's count."""
    if not callable(lr):
        return lr
    seen: dict[int, float] = {}
    rates = []
    for t, leaf in zip(taken, leaves, strict=True):
        if isinstance(t, int):
            if t not in seen:
                seen[t] = _scheduled(lr(t), t, leaf)
            rates.append(seen[t])
        elif rates and t is taken[0] and leaf.dtype == leaves[0].dtype:
            rates.append(rates[0])  # one JAX count for every leaf: one call of the schedule
        else:  # a JAX count, traced under jit: no value to check
            rates.append(_scheduled(lr(t), t, leaf))
    return rates


def _scheduled(value: Any, t: Any, leaf: Array) -> Any:
    """A schedule's value as a rate for ``leaf``: a checked Python float, or a 0-d array
    in the leaf's dtype (a float64 rate must not widen float32 parameters)."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, numbers.Real):
        rate = float(value)
        if not (math.isfinite(rate) and rate >= 0):
            raise ValueError(f"lr({t}) must be a finite number >= 0; got {value!r}")
        return rate
    if getattr(value, "dtype", None) is None:
        raise TypeError(f"lr({t}) must be a number or a 0-d array; got {describe(value)}")
    return value if value.dtype == leaf.dtype else namespace_of(leaf).astype(value, leaf.dtype)


# --- the parameters and the state ---------------------------------------------------------

_FLOATING: set[tuple[type, Any, Any, bool]] = set()
"""(array type, dtype, layout, whether complex is taken) seen to be fine: checked once each."""


def _parameters(params: Params, complex_ok: bool = False, is_flat: bool = False) -> list[Array]:
    """``params``' leaves, each checked to be a dense floating array: real, or complex
    where ``complex_ok``; ``is_flat``: ``params`` is a list of them (:func:`flat`)."""
    leaves = params if is_flat else tree_leaves(params)
    for i, p in enumerate(leaves):
        key = (type(p), getattr(p, "dtype", None), getattr(p, "layout", None), complex_ok)
        if key not in _FLOATING:
            _require_parameter(i, p, complex_ok)
            _FLOATING.add(key)
    return leaves


def _require_parameter(i: int, p: Any, complex_ok: bool) -> None:
    if getattr(p, "dtype", None) is None or getattr(p, "shape", None) is None:
        raise TypeError(f"params leaf {i} must be an array; got {describe(p)}")
    if not dense(p):
        raise TypeError(f"params leaf {i} must be dense; got a sparse {describe(p)}")
    xp = namespace_of(p)
    if xp.isdtype(p.dtype, "complex floating"):
        if complex_ok:
            return
        raise TypeError(
            f"params leaf {i} must be real (a complex number would need to be treated as "
            f"a pair of reals, as torch.optim does); got {describe(p)}: pass the real and "
            f"imaginary parts as separate parameters"
        )
    if not xp.isdtype(p.dtype, "real floating"):
        raise TypeError(
            f"params leaf {i} must be a real floating array (a step is a fraction of a "
            f"gradient, which an integer cannot hold); got {describe(p)}"
        )


def _counts_zero(params: Params) -> Any:
    """The step counts before the first update: 0 for each leaf, or for JAX leaves one
    0-d JAX integer for them all.

    JAX arrays are immutable, so ``step_in_place`` never leaves some of them
    out and one count serves all (a jitted step's arguments are then those of
    optax's). A Python int would come back from a jitted update as an array,
    and the second call would compile again; a weakly typed JAX integer keeps
    a schedule's rate from changing the parameters' dtype.
    """
    leaves = tree_leaves(params)
    xp = namespace_of(leaves[0]) if leaves else None
    if xp is None or not xp.__name__.startswith("jax"):  # a name, not array-api-compat's
        return tree_map(lambda _: 0, params)  # cached checks, which torch.compile cannot trace
    # On the leaves' device: a jitted update's output count is committed there,
    # and an uncommitted first count would compile a second time.
    return xp.asarray(0, device=array_api_compat.device(leaves[0]))


def _taken(state: Any, n: int, is_flat: bool = False) -> tuple[list[Any], bool]:
    """Each leaf's steps so far, and whether one count serves them all (JAX's)."""
    step = state.step
    if n != 1 and getattr(step, "ndim", None) == 0:
        return [step] * n, True
    return _state_leaves(state, "step", n, is_flat), False


def _state_leaves(state: Any, field: str, n: int, is_flat: bool = False) -> list[Any]:
    """A field's leaves; where the parameters are a flat list, a list of ``n`` is one
    (``update`` returns them so)."""
    value = getattr(state, field)
    if is_flat and type(value) is list and len(value) == n:
        return value
    leaves = tree_leaves(value)
    if len(leaves) != n:
        raise ValueError(
            f"state holds {field} for {len(leaves)} parameters, not the {n} given: pass the "
            f"state that this optimizer's init built for these parameters"
        )
    return leaves


Step = Callable[..., tuple[list[Array], dict[str, list[Array]]]]
"""``step(ops, params, grads, buffers, counts, rates) -> (params, buffers)``, on lists."""


def _optimizer(
    kind: type, starts: dict[str, float | None], lr: Any, step: Step, complex_ok: bool = False
) -> Optimizer:
    """The ``init``/``update`` pair around ``step``.

    ``starts`` maps each buffer of the state (``kind``'s fields after ``step``)
    to the value it starts at, or None where this configuration has no such
    buffer (the field is then ``()``). ``complex_ok``: complex parameters are
    stepped as they are (gradient descent's step is linear in the gradient).
    """
    used = [name for name, start in starts.items() if start is not None]

    def init(params: Params) -> Any:
        params = as_tree(params)
        _parameters(params, complex_ok)

        def filled(start: float) -> Params:
            return tree_map(lambda p: namespace_of(p).full_like(p, start), params)

        buffers = {name: () if start is None else filled(start) for name, start in starts.items()}
        return kind(_counts_zero(params), **buffers)

    def update(params: Params, grads: Params, state: Any) -> tuple[Params, Any]:
        if not isinstance(state, kind):
            raise TypeError(
                f"state must be the {kind.__name__} this optimizer's init returns; got "
                f"{type(state).__name__}"
            )
        is_flat = flat(params)  # model.parameters(): the lists are their own leaves
        leaves = _parameters(params, complex_ok, is_flat)
        gradients = matched_leaves(params, grads)
        taken, shared = _taken(state, len(leaves), is_flat)
        buffers = {name: _state_leaves(state, name, len(leaves), is_flat) for name in used}
        # In step_in_place, the parameters and the buffers are torch.optim's to overwrite.
        writable = [leaves, *buffers.values()] if _writes_into(leaves) else []
        ops = _leafwise(leaves + gradients, writable)
        counts = [t + 1 for t in taken]
        new, buffers = step(ops, leaves, gradients, buffers, counts, _rates(lr, taken, leaves))

        def tree(arrays: list[Array]) -> Params:
            if isinstance(leaves[0], np.ndarray):  # NumPy makes 0-d results scalars
                arrays = [as_array(a) for a in arrays]
            return rebuilt(params, arrays, is_flat)

        fields = {name: tree(buffers[name]) if name in used else () for name in starts}
        counted = counts[0] if shared else rebuilt(params, counts, is_flat)
        return tree(new), kind(counted, **fields)

    return Optimizer(init, update)


def _leafwise(leaves: list[Array], writable: list[list[Array]]) -> _updates.Leafwise:
    """The backend's operations over lists (torch's multi-tensor launches, which may write
    into the lists ``writable``), else leaf by leaf."""
    if leaves:
        table = lookup(namespace_of(leaves[0]), "leafwise")
        if table is not None:  # it checks that the leaves are its arrays
            ops = table(leaves, writable)
            if ops is not None:
                return ops  # type: ignore[no-any-return]
    return _updates.LEAFWISE


# --- the optimizers -----------------------------------------------------------------------


def gradient_descent(
    lr: float | Schedule,
    momentum: float = 0.0,
    dampening: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
) -> Optimizer:
    """Gradient descent, with momentum: the semantics of ``torch.optim.SGD``.

    Each step: ``g ← g + weight_decay·θ``; with momentum, the buffer ``b`` is
    the first gradient itself, then ``b ← momentum·b + (1 − dampening)·g``, and
    ``g ← b`` (or ``g + momentum·b`` with Nesterov); ``θ ← θ − lr·g``.

    Parameters
    ----------
    lr : float or callable
        The learning rate, a Python number (so it never changes the
        parameters' dtype), or a :data:`Schedule` of the step count.
    momentum : float, default 0.0
        The momentum factor; 0 keeps no buffer.
    dampening : float, default 0.0
        In [0, 1]: the share of each gradient left out of the buffer.
    nesterov : bool, default False
        Nesterov momentum (needs ``momentum > 0`` and ``dampening = 0``).
    weight_decay : float, default 0.0
        An L2 penalty, added to the gradient.

    Returns
    -------
    Optimizer
        ``init(params)`` returns an :class:`SGDState`.

    See Also
    --------
    adagrad, rmsprop, adam
        Per-coordinate learning rates.
    step_in_place
        Applying a step to a torch model, as ``torch.optim`` does.
    arraykit.run_gradient_descent
        A whole run, with history.

    Notes
    -----
    optax's ``sgd(momentum=...)`` starts its buffer at 0 (the first step is
    ``lr·g``, here too) but scales it differently with ``nesterov``, and has
    no dampening; its ``add_decayed_weights`` is the same L2 penalty.

    Examples
    --------
    >>> import numpy as np
    >>> import arraykit as ak
    >>> opt = ak.optim.gradient_descent(lr=0.1, momentum=0.9)
    >>> params = np.array([1.0, 2.0])
    >>> state = opt.init(params)
    >>> for _ in range(2):
    ...     params, state = opt.update(params, np.array([10.0, -10.0]), state)
    >>> params  # steps of 0.1·10, then 0.1·(0.9·10 + 10)
    array([-1.9,  4.9])
    """
    rate = _schedule(lr)
    momentum = _check_rate("momentum", momentum)
    dampening = _check_fraction("dampening", dampening, one=True)
    nesterov = _check_flag("nesterov", nesterov)
    weight_decay = _check_rate("weight_decay", weight_decay)
    if nesterov and (momentum == 0 or dampening != 0):
        raise ValueError(
            f"nesterov=True needs momentum > 0 and dampening = 0; got momentum={momentum!r}, "
            f"dampening={dampening!r}"
        )

    def step(ops: Any, params: Any, grads: Any, buffers: Any, counts: Any, rates: Any) -> Any:
        params, kept = _updates.sgd_step(
            ops, params, grads, buffers.get("momentum_buffer"), counts, rates,
            momentum, dampening, nesterov, weight_decay,
        )  # fmt: skip
        return params, {"momentum_buffer": kept}

    starts = {"momentum_buffer": 0.0 if momentum else None}
    return _optimizer(SGDState, starts, rate, step, complex_ok=True)


def adagrad_settings(
    lr: float,
    eps: float,
    initial_accumulator_value: float,
    lr_decay: float,
    weight_decay: float,
) -> tuple[float, float, float, float, float]:
    """Adagrad's hyperparameters, checked, as floats in :func:`adagrad`'s order."""
    return (
        _check_rate("lr", lr, positive=True),
        _check_rate("eps", eps),
        _check_rate("initial_accumulator_value", initial_accumulator_value),
        _check_rate("lr_decay", lr_decay),
        _check_rate("weight_decay", weight_decay),
    )


def adagrad(
    lr: float | Schedule = 1e-2,
    eps: float = 1e-10,
    initial_accumulator_value: float = 0.0,
    lr_decay: float = 0.0,
    weight_decay: float = 0.0,
) -> Optimizer:
    """Adagrad, with the semantics and defaults of ``torch.optim.Adagrad``.

    Each step, in torch's order: ``g ← g + weight_decay·θ``;
    ``clr = lr / (1 + (t − 1)·lr_decay)``; ``s ← s + g²``;
    ``θ ← θ − clr·g / (√s + eps)``.

    Parameters
    ----------
    lr : float or callable, default 1e-2
        The base learning rate, or a :data:`Schedule` of the step count.
    eps : float, default 1e-10
        Added to ``√s``; 0 gives the classic form ``lr·g/√Σg²``.
    initial_accumulator_value : float, default 0.0
        The starting value of ``s``.
    lr_decay : float, default 0.0
        Decay of the learning rate with the step count ``t``.
    weight_decay : float, default 0.0
        L2 penalty, added to the gradient before it is accumulated.

    Returns
    -------
    Optimizer
        ``init(params)`` returns an :class:`AdagradState`.

    See Also
    --------
    gradient_descent
        One learning rate for every coordinate.
    step_in_place
        Applying a step to a torch model, as ``torch.optim`` does.
    arraykit.run_adagrad
        A whole run, with history.

    Notes
    -----
    A coordinate whose gradients have all been 0 (so ``√s + eps`` is 0, as
    with ``eps=0``, or in float16 where 1e-10 rounds to 0) takes a zero step,
    never ``0/0 = NaN``. optax's ``adagrad`` puts ``eps`` inside the square
    root, ``g/√(s + eps)``, and starts ``s`` at 0.1.

    Examples
    --------
    >>> import numpy as np
    >>> import arraykit as ak
    >>> opt = ak.optim.adagrad(lr=1.0, eps=0.0)
    >>> state = opt.init(np.zeros(2))
    >>> params, state = opt.update(np.zeros(2), np.array([4.0, 0.0]), state)
    >>> params, state.sum
    (array([-1.,  0.]), array([16.,  0.]))
    """
    rate = _schedule(lr)
    _, eps, start, decay, penalty = adagrad_settings(
        1.0, eps, initial_accumulator_value, lr_decay, weight_decay
    )

    def step(ops: Any, params: Any, grads: Any, buffers: Any, counts: Any, rates: Any) -> Any:
        params, sums = _updates.adagrad_step(
            ops, params, grads, buffers["sum"], counts, rates, eps, decay, penalty
        )
        return params, {"sum": sums}

    return _optimizer(AdagradState, {"sum": start}, rate, step)


def rmsprop(
    lr: float | Schedule = 0.01,
    alpha: float = 0.99,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
    centered: bool = False,
) -> Optimizer:
    """RMSProp, with the semantics and defaults of ``torch.optim.RMSprop``.

    Each step: ``g ← g + weight_decay·θ``; ``v ← α·v + (1 − α)·g²``;
    centered, ``ḡ ← ḡ + (1 − α)·(g − ḡ)`` and ``v − ḡ²`` stands for ``v``;
    ``θ ← θ − lr·g / (√v + eps)``, or with momentum
    ``b ← momentum·b + g / (√v + eps)``, ``θ ← θ − lr·b``.

    Parameters
    ----------
    lr : float or callable, default 0.01
        The learning rate, or a :data:`Schedule` of the step count.
    alpha : float, default 0.99
        In [0, 1]: the running averages' decay.
    eps : float, default 1e-8
        Added to ``√v``.
    weight_decay : float, default 0.0
        An L2 penalty, added to the gradient.
    momentum : float, default 0.0
        The momentum factor; 0 keeps no buffer.
    centered : bool, default False
        Divide by an estimate of the gradient's standard deviation, not its
        root mean square.

    Returns
    -------
    Optimizer
        ``init(params)`` returns an :class:`RMSpropState`.

    See Also
    --------
    adam
        RMSProp's denominator with a running average of the gradient.
    adagrad
        The sum of squares, not a running average.

    Notes
    -----
    optax's ``rmsprop`` has ``decay=0.9`` and ``eps=1e-8`` *inside* the
    square root (``g/√(v + eps)``), and starts ``v`` at 0 as torch does.
    Centered, a variance ``v − ḡ²`` that rounding takes below 0 (a
    gradient that hardly varies) is taken as 0, where torch takes a NaN
    square root.

    Examples
    --------
    >>> import numpy as np
    >>> import arraykit as ak
    >>> opt = ak.optim.rmsprop(lr=0.01, alpha=0.75)
    >>> params, state = opt.update(np.zeros(2), np.array([3.0, -0.5]), opt.init(np.zeros(2)))
    >>> params  # g/√(0.25·g²) is ±2, for every size of g
    array([-0.02,  0.02])
    """
    rate = _schedule(lr)
    alpha = _check_fraction("alpha", alpha, one=True)
    eps = _check_rate("eps", eps)
    weight_decay = _check_rate("weight_decay", weight_decay)
    momentum = _check_rate("momentum", momentum)
    centered = _check_flag("centered", centered)

    def step(ops: Any, params: Any, grads: Any, buffers: Any, counts: Any, rates: Any) -> Any:
        params, square, mean, kept = _updates.rmsprop_step(
            ops, params, grads, buffers["square_avg"], buffers.get("grad_avg"),
            buffers.get("momentum_buffer"), rates, alpha, eps, weight_decay, momentum,
        )  # fmt: skip
        return params, {"square_avg": square, "grad_avg": mean, "momentum_buffer": kept}

    starts = {
        "square_avg": 0.0,
        "grad_avg": 0.0 if centered else None,
        "momentum_buffer": 0.0 if momentum else None,
    }
    return _optimizer(RMSpropState, starts, rate, step)


def adam(
    lr: float | Schedule = 0.001,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    amsgrad: bool = False,
) -> Optimizer:
    """Adam, with the semantics and defaults of ``torch.optim.Adam``.

    Each step ``t`` (from 1): ``g ← g + weight_decay·θ``;
    ``m ← m + (1 − β₁)·(g − m)``; ``v ← β₂·v + (1 − β₂)·g²``;
    ``θ ← θ − lr/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + eps)``, with ``v`` the
    running maximum of ``v`` for AMSGrad.

    Parameters
    ----------
    lr : float or callable, default 0.001
        The learning rate, or a :data:`Schedule` of the step count.
    betas : (float, float), default (0.9, 0.999)
        Each in [0, 1): the decays of the running averages of ``g`` and ``g²``.
    eps : float, default 1e-8
        Added to the bias-corrected ``√v``.
    weight_decay : float, default 0.0
        An L2 penalty, added to the gradient (:func:`adamw` decouples it).
    amsgrad : bool, default False
        Divide by the running maximum of ``v``.

    Returns
    -------
    Optimizer
        ``init(params)`` returns an :class:`AdamState`.

    See Also
    --------
    adamw
        Adam with decoupled weight decay.
    rmsprop
        Without the running average of ``g`` or the bias corrections.

    Notes
    -----
    optax's ``adam`` (``b1``, ``b2``, ``eps``) adds ``eps`` to ``√v̂`` as torch
    does, and agrees with this one to rounding; its ``eps_root`` (0 by
    default) sits inside the square root. Its ``amsgrad`` keeps the maximum of
    the bias-corrected ``v̂``, torch's (and this one's) of ``v``.

    Examples
    --------
    >>> import numpy as np
    >>> import arraykit as ak
    >>> opt = ak.optim.adam(lr=0.1)
    >>> params, state = opt.update(np.zeros(2), np.array([3.0, -0.5]), opt.init(np.zeros(2)))
    >>> params  # the first step is lr·sign(g), whatever the size of g
    array([-0.1,  0.1])
    """
    return _adam(lr, betas, eps, weight_decay, amsgrad, decoupled=False)


def adamw(
    lr: float | Schedule = 0.001,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.01,
    amsgrad: bool = False,
) -> Optimizer:
    """AdamW, with the semantics and defaults of ``torch.optim.AdamW``.

    :func:`adam`, with the weight decay decoupled from the gradient:
    ``θ ← θ·(1 − lr·weight_decay)`` before each step.

    Parameters
    ----------
    lr : float or callable, default 0.001
        The learning rate, or a :data:`Schedule` of the step count.
    betas : (float, float), default (0.9, 0.999)
        Each in [0, 1): the decays of the running averages of ``g`` and ``g²``.
    eps : float, default 1e-8
        Added to the bias-corrected ``√v``.
    weight_decay : float, default 0.01
        The decoupled decay, scaled by the learning rate.
    amsgrad : bool, default False
        Divide by the running maximum of ``v``.

    Returns
    -------
    Optimizer
        ``init(params)`` returns an :class:`AdamState`.

    See Also
    --------
    adam
        The L2 penalty in the gradient instead.

    Notes
    -----
    optax's ``adamw`` has ``weight_decay=1e-4`` and applies it after the Adam
    direction, ``θ ← θ − lr·(u + λ·θ)``: the same step to rounding.

    Examples
    --------
    >>> import numpy as np
    >>> import arraykit as ak
    >>> opt = ak.optim.adamw(lr=0.1, weight_decay=0.5)
    >>> params, state = opt.update(np.ones(2), np.array([3.0, -0.5]), opt.init(np.ones(2)))
    >>> params  # 1·(1 − 0.1·0.5), then ∓0.1
    array([0.85, 1.05])
    """
    return _adam(lr, betas, eps, weight_decay, amsgrad, decoupled=True)


def _adam(
    lr: float | Schedule,
    betas: tuple[float, float],
    eps: float,
    weight_decay: float,
    amsgrad: bool,
    *,
    decoupled: bool,
) -> Optimizer:
    rate = _schedule(lr)
    if not isinstance(betas, tuple | list) or len(betas) != 2:
        raise TypeError(f"betas must be a pair of numbers; got {describe(betas)}")
    b1, b2 = _check_fraction("betas[0]", betas[0]), _check_fraction("betas[1]", betas[1])
    eps = _check_rate("eps", eps)
    weight_decay = _check_rate("weight_decay", weight_decay)
    amsgrad = _check_flag("amsgrad", amsgrad)

    def step(ops: Any, params: Any, grads: Any, buffers: Any, counts: Any, rates: Any) -> Any:
        params, m, v, peak = _updates.adam_step(
            ops, params, grads, buffers["exp_avg"], buffers["exp_avg_sq"],
            buffers.get("max_exp_avg_sq"), counts, rates, (b1, b2), eps, weight_decay,
            decoupled,
        )  # fmt: skip
        return params, {"exp_avg": m, "exp_avg_sq": v, "max_exp_avg_sq": peak}

    starts = {"exp_avg": 0.0, "exp_avg_sq": 0.0, "max_exp_avg_sq": 0.0 if amsgrad else None}
    return _optimizer(AdamState, starts, rate, step)


# --- in place, for torch models -----------------------------------------------------------

_IN_PLACE: list[list[Array] | None] = [None]
"""The parameters :func:`step_in_place` is stepping: a backend whose step can write
into them (torch's multi-tensor launches) does, rather than into new arrays copied
back after. Set only around its own call of ``update``, after every check. (A plain
global, which torch.compile traces; a thread that finds another's targets here sees
other tensors, and computes into new arrays as ever.)"""


def _writes_into(leaves: list[Array]) -> bool:
    targets = _IN_PLACE[0]
    return (
        targets is not None
        and len(targets) == len(leaves)
        and all(a is b for a, b in zip(targets, leaves, strict=True))
    )


def step_in_place(
    optimizer: Optimizer, params: Params, state: Any, grads: Params | None = None
) -> Any:
    """One step written into the parameters themselves, as ``torch.optim`` does.

    The natural loop for a ``torch.nn.Module``: ``loss.backward()``, then
    ``state = step_in_place(opt, model.parameters(), state)``. The update is
    computed as :meth:`Optimizer.update` computes it, without recording
    autograd history (under ``torch.no_grad()``), and copied into each
    parameter, which stays the same leaf tensor with its ``.grad``.

    As in ``torch.optim``, a parameter whose gradient is None (a frozen
    layer's) is left as it is, and so is its state. Everything is checked
    before anything is written: a step that fails (a gradient of the wrong
    shape, say) leaves every parameter and the state as they were. On torch,
    as ``torch.optim`` does, the step writes into the parameters and the
    state's tensors with multi-tensor operations (use the state returned,
    not the one passed in); elsewhere the new values are copied into the
    parameters, and the state returned is new.

    Parameters
    ----------
    optimizer : Optimizer
        From this module, e.g. ``adam(lr=1e-3)``.
    params : tree or iterable of arrays
        Writable arrays: torch tensors (``model.parameters()``) or NumPy
        arrays. JAX arrays are immutable: use ``update``.
    state : optimizer state
        From ``optimizer.init`` (over the same parameters, in the same order)
        or the previous call.
    grads : tree of arrays, optional
        The gradients, with None for a parameter to leave; by default each
        torch parameter's ``.grad``.

    Returns
    -------
    state
        The optimizer's new state.

    See Also
    --------
    Optimizer
        The pure ``init``/``update`` pair it applies.
    adam, adamw, rmsprop, adagrad, gradient_descent
        The optimizers.

    Examples
    --------
    >>> import torch
    >>> import arraykit as ak
    >>> model = torch.nn.Linear(3, 1)
    >>> opt = ak.optim.adam(lr=0.1)
    >>> state = opt.init(model.parameters())
    >>> x, y = torch.randn(8, 3), torch.randn(8, 1)
    >>> for _ in range(5):
    ...     model.zero_grad()
    ...     torch.nn.functional.mse_loss(model(x), y).backward()
    ...     state = ak.optim.step_in_place(opt, model.parameters(), state)
    >>> model.weight.is_leaf, model.weight.grad is not None
    (True, True)
    """
    params = as_tree(params)
    is_flat = flat(params)
    leaves = params if is_flat else tree_leaves(params)
    if grads is None:
        for i, p in enumerate(leaves):
            if not hasattr(p, "grad"):
                raise TypeError(
                    f"grads were not given and params leaf {i} has no .grad attribute: pass "
                    f"grads= (for {describe(p)})"
                )
        gradients = [p.grad for p in leaves]
    else:
        gradients = matched_leaves(params, grads, skipped=True)
    chosen = [i for i, g in enumerate(gradients) if g is not None]
    if not chosen:
        return state
    torch = _torch_of(leaves)
    if torch is None:
        for i in chosen:
            if not _writable(leaves[i]):
                raise TypeError(
                    f"params leaf {i} must be a writable array (torch tensor or NumPy array) "
                    f"to be updated in place; got {describe(leaves[i])}: use "
                    f"optimizer.update, which returns new arrays"
                )
    targets = [leaves[i] for i in chosen]
    picked = [gradients[i] for i in chosen]
    if len(chosen) == len(leaves):
        subset, sub_state = params, state
        picked = rebuilt(params, picked, is_flat)
    else:
        subset, sub_state = targets, _picked(state, chosen, len(leaves))
    if torch is not None:
        previous, _IN_PLACE[0] = _IN_PLACE[0], targets
        try:
            with torch.no_grad():
                new, new_state = optimizer.update(subset, picked, sub_state)
                written = new if flat(new) else tree_leaves(new)
                if any(a is not b for a, b in zip(targets, written, strict=True)):
                    from ._native import _torch_private

                    _torch_private.foreach_copy_(targets, written)  # one launch for all
        finally:
            _IN_PLACE[0] = previous
    else:
        new, new_state = optimizer.update(subset, picked, sub_state)
        for p, value in zip(targets, tree_leaves(new), strict=True):
            p[...] = value
    if len(chosen) == len(leaves):
        return new_state
    return _placed(state, new_state, chosen)


def _per_parameter(state: Any) -> bool:
    return isinstance(state, tuple) and hasattr(state, "_fields")


def _empty(field: Any) -> bool:
    """A state field this configuration does not use: ``()``."""
    return isinstance(field, tuple) and not field


def _picked(state: Any, chosen: list[int], n: int) -> Any:
    """The state of the ``chosen`` parameters alone, as lists."""
    if not _per_parameter(state):
        raise TypeError(
            f"some parameters have no gradient, and a {type(state).__name__} state cannot "
            f"leave them out: give every parameter a gradient"
        )
    fields = []
    for name in state._fields:
        field = getattr(state, name)
        fields.append(
            field if _empty(field) else [_state_leaves(state, name, n)[i] for i in chosen]
        )
    return type(state)(*fields)


def _placed(state: Any, update: Any, chosen: list[int]) -> Any:
    """``state`` with the ``chosen`` parameters' entries from ``update``."""
    fields = []
    for old, new in zip(state, update, strict=True):
        if _empty(old):
            fields.append(old)
            continue
        leaves = tree_leaves(old)
        for i, value in zip(chosen, tree_leaves(new), strict=True):
            leaves[i] = value
        fields.append(rebuilt(old, leaves))
    return type(state)(*fields)


def _torch_of(leaves: list[Array]) -> Any:
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and leaves and all(isinstance(p, torch.Tensor) for p in leaves):
        return torch
    return None


def _writable(a: Array) -> bool:
    flags = getattr(a, "flags", None)
    return flags is not None and bool(getattr(flags, "writeable", False))
