"""Optimizers as pure functions of arrays, in the style of optax.

An optimizer is a pair of functions: ``init(params) -> state`` and
``update(params, grads, state) -> (params, state)``. Neither mutates its
arguments, so the same code runs on NumPy, CuPy and PyTorch arrays, on JAX's
immutable arrays (and under ``jax.jit`` or ``jax.lax.scan``) and on Dask's
lazy ones. Parameters may be one array or a tuple, list or dict of arrays
(nested freely); gradients and state have the same structure.

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

from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import array_api_compat

from ._adagrad import adagrad_step, learning_rate
from ._array_api import Array, as_array, describe, namespace_of
from ._dispatch import lookup

__all__ = [
    "AdagradState",
    "Optimizer",
    "adagrad",
    "as_tree",
    "gradient_descent",
    "step_in_place",
    "tree_leaves",
    "tree_map",
]

Params = Any
"""An array, or a tuple, list or dict of them (nested freely)."""


def as_tree(params: Params) -> Params:
    """``params`` as a tree: an iterator (``model.parameters()``) becomes a list.

    Parameters
    ----------
    params : array, tree of arrays, or iterable of arrays
        What an optimizer's ``init`` or :func:`step_in_place` is given.

    Returns
    -------
    tree
        ``params`` itself, or a list of what the iterator yields.

    Examples
    --------
    >>> import numpy as np
    >>> from arraykit.optim import as_tree
    >>> as_tree(p for p in (np.zeros(1), np.ones(1)))
    [array([0.]), array([1.])]
    """
    if isinstance(params, Iterator):
        return list(params)
    return params


def tree_map(function: Callable[..., Any], tree: Params, *rest: Params) -> Params:
    """Apply ``function`` leaf by leaf to trees of the same structure.

    Parameters
    ----------
    function : callable
        Called as ``function(leaf, *matching_leaves)`` for each array.
    tree : array or tuple, list, NamedTuple or dict of trees
        The structure of the result.
    *rest : trees
        Trees of the same structure, whose leaves are passed alongside.

    Returns
    -------
    tree
        ``tree``'s structure, holding ``function``'s results.

    Examples
    --------
    >>> import numpy as np
    >>> from arraykit.optim import tree_map
    >>> tree_map(lambda p, g: p - 0.5 * g, {"b": np.array([1.0]), "w": np.array([2.0, 3.0])},
    ...          {"b": np.array([2.0]), "w": np.array([4.0, 2.0])})
    {'b': array([0.]), 'w': array([0., 2.])}
    """
    if isinstance(tree, dict):
        return {k: tree_map(function, tree[k], *(r[k] for r in rest)) for k in tree}
    if isinstance(tree, tuple | list):
        mapped = [tree_map(function, *leaves) for leaves in zip(tree, *rest, strict=True)]
        return type(tree)(mapped) if not hasattr(tree, "_fields") else type(tree)(*mapped)
    return function(tree, *rest)


def tree_leaves(tree: Params) -> list[Array]:
    """The arrays of a tree, in a fixed order.

    Parameters
    ----------
    tree : array or tuple, list, NamedTuple or dict of trees
        Parameters, gradients or optimizer state.

    Returns
    -------
    list of arrays
        Depth first; dict entries in insertion order.

    Examples
    --------
    >>> import numpy as np
    >>> from arraykit.optim import tree_leaves
    >>> tree_leaves({"b": np.array(1.0), "w": (np.array([2.0]), np.array([3.0]))})
    [array(1.), array([2.]), array([3.])]
    """
    if isinstance(tree, dict):
        return [leaf for k in tree for leaf in tree_leaves(tree[k])]
    if isinstance(tree, tuple | list):
        return [leaf for item in tree for leaf in tree_leaves(item)]
    return [tree]


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


def _check_rate(name: str, value: float, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a Python number; got {type(value).__name__} {value!r}")
    if value < 0 or (positive and value == 0) or value != value:
        expected = "> 0" if positive else ">= 0"
        raise ValueError(f"{name} must be {expected}; got {value!r}")
    return float(value)


def gradient_descent(lr: float) -> Optimizer:
    """Plain gradient descent: ``θ ← θ − lr·g``, as ``torch.optim.SGD``.

    Parameters
    ----------
    lr : float
        The learning rate, a Python number (so it never changes the
        parameters' dtype).

    Returns
    -------
    Optimizer
        ``init`` returns an empty state; ``update`` returns new parameters.

    See Also
    --------
    adagrad
        Per-coordinate learning rates.
    step_in_place
        Applying a step to a torch model, as ``torch.optim`` does.
    arraykit.run_gradient_descent
        A whole run, with history.

    Examples
    --------
    >>> import numpy as np
    >>> import arraykit as ak
    >>> opt = ak.optim.gradient_descent(lr=0.1)
    >>> params, state = opt.update(np.array([1.0, 2.0]), np.array([10.0, -10.0]), opt.init(None))
    >>> params
    array([0., 3.])
    """
    rate = _check_rate("lr", lr, positive=True)

    def init(params: Params) -> tuple[()]:
        return ()

    def update(params: Params, grads: Params, state: tuple[()]) -> tuple[Params, tuple[()]]:
        leaves = tree_leaves(params)
        together = _all_at_once(leaves, "descent_update")
        if together is not None:
            stepped = together(leaves, tree_leaves(grads), rate)
            if stepped is not None:
                return _rebuilt(params, stepped), state
        return tree_map(lambda p, g: as_array(p + (-rate) * g), params, grads), state

    return Optimizer(init, update)


def _all_at_once(leaves: list[Array], name: str) -> Callable[..., Any] | None:
    """The backend's step of all the leaves at once (multi-tensor launches), if it has one."""
    if not leaves:
        return None
    xp = namespace_of(leaves[0])
    if any(namespace_of(leaf) is not xp for leaf in leaves):
        return None
    return lookup(xp, name)


def _rebuilt(tree: Params, leaves: list[Array]) -> Params:
    """``tree``'s structure holding ``leaves`` (in :func:`tree_leaves` order)."""
    remaining = iter(leaves)
    return tree_map(lambda _: next(remaining), tree)


def _require_real_dense(name: str, a: Array, xp: Any) -> None:
    """Adagrad's accumulator is defined for real, dense arrays: refuse the others by name."""
    if xp.isdtype(a.dtype, "complex floating"):
        raise TypeError(
            f"{name} must be real for Adagrad (a complex number would need to be treated as "
            f"a pair of reals, as torch.optim does); got {describe(a)}: pass the real and "
            f"imaginary parts as separate parameters"
        )
    if not _dense(a):
        raise TypeError(f"{name} must be dense for Adagrad; got a sparse {describe(a)}")


def _dense(a: Array) -> bool:
    layout = getattr(a, "layout", None)  # torch's sparse tensors have another layout
    return layout is None or str(layout) == "torch.strided"


def _step_zero(params: Params) -> Any:
    """The step count before the first update: 0, or a JAX integer for JAX parameters.

    A Python int would come back from a jitted update as an array, and the
    second call would compile again; a weakly typed JAX integer keeps the
    learning rate from changing the parameters' dtype.
    """
    leaves = tree_leaves(params)
    if not leaves:
        return 0
    xp = namespace_of(leaves[0])
    if not xp.__name__.startswith("jax"):  # a name, not array-api-compat's cached checks,
        return 0  # which torch.compile cannot trace
    # On the parameters' device: a jitted update's output step is committed
    # there, and an uncommitted first step would compile a second time.
    return xp.asarray(0, device=array_api_compat.device(leaves[0]))


class AdagradState(NamedTuple):
    """Adagrad's state: the step count and the running sum of squared gradients.

    Attributes
    ----------
    step : int or 0-d JAX integer array
        Steps taken so far: a Python int, or a 0-d JAX integer for JAX
        parameters (so that a jitted update compiles once).
    sum : tree of arrays
        Σ g², with the parameters' structure.
    """

    step: Any
    sum: Params


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
    lr: float = 1e-2,
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
    lr : float, default 1e-2
        The base learning rate.
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
    never ``0/0 = NaN``.

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
    rate, eps, start, decay, penalty = adagrad_settings(
        lr, eps, initial_accumulator_value, lr_decay, weight_decay
    )

    def init(params: Params) -> AdagradState:
        def zeros(p: Array) -> Array:
            xp = namespace_of(p)
            _require_real_dense("params", p, xp)
            return xp.full_like(p, start)

        params = as_tree(params)
        return AdagradState(_step_zero(params), tree_map(zeros, params))

    def update(params: Params, grads: Params, state: AdagradState) -> tuple[Params, AdagradState]:
        step = state.step + 1
        clr = learning_rate(rate, decay, step)
        leaves, gradients = tree_leaves(params), tree_leaves(grads)
        together = _all_at_once(leaves, "adagrad_update")
        if together is not None:
            for p, g in zip(leaves, gradients, strict=True):
                if g.dtype != p.dtype or not _dense(g):  # as the per-array step checks
                    _require_real_dense("grads", g, namespace_of(g))
            stepped = together(leaves, gradients, tree_leaves(state.sum), clr, eps, penalty)
            if stepped is not None:
                new_params, new_sum = stepped
                return _rebuilt(params, new_params), AdagradState(step, _rebuilt(params, new_sum))

        def one(p: Array, g: Array, s: Array) -> tuple[Array, Array]:
            xp = namespace_of(p)
            if g.dtype != p.dtype or not _dense(g):
                _require_real_dense("grads", g, xp)
            p, s = adagrad_step(p, g, s, clr, eps, penalty, xp=xp)
            return as_array(p), as_array(s)

        pairs = tree_map(one, params, grads, state.sum)
        new_params = tree_map(lambda _, pair: pair[0], params, pairs)
        new_sum = tree_map(lambda _, pair: pair[1], params, pairs)
        return new_params, AdagradState(step, new_sum)

    return Optimizer(init, update)


def step_in_place(
    optimizer: Optimizer, params: Params, state: Any, grads: Params | None = None
) -> Any:
    """One step written into the parameters themselves, as ``torch.optim`` does.

    The natural loop for a ``torch.nn.Module``: ``loss.backward()``, then
    ``state = step_in_place(opt, model.parameters(), state)``. The update is
    computed as :meth:`Optimizer.update` computes it, without recording
    autograd history (under ``torch.no_grad()``), and copied into each
    parameter, which stays the same leaf tensor with its ``.grad``.

    Parameters
    ----------
    optimizer : Optimizer
        From this module, e.g. ``adagrad(lr=0.1)``.
    params : tree or iterable of arrays
        Writable arrays: torch tensors (``model.parameters()``) or NumPy
        arrays. JAX arrays are immutable: use ``update``.
    state : optimizer state
        From ``optimizer.init`` (over the same parameters, in the same order)
        or the previous call.
    grads : tree of arrays, optional
        The gradients; by default each torch parameter's ``.grad``.

    Returns
    -------
    state
        The optimizer's new state.

    See Also
    --------
    Optimizer
        The pure ``init``/``update`` pair it applies.
    adagrad, gradient_descent
        The optimizers.

    Examples
    --------
    >>> import torch
    >>> import arraykit as ak
    >>> model = torch.nn.Linear(3, 1)
    >>> opt = ak.optim.adagrad(lr=0.1)
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
    leaves = tree_leaves(params)
    if grads is None:
        missing = [i for i, p in enumerate(leaves) if getattr(p, "grad", None) is None]
        if missing:
            raise ValueError(
                f"grads were not given and parameters {missing} have no .grad "
                f"(call loss.backward() first, or pass grads=)"
            )
        grads = tree_map(lambda p: p.grad, params)
    torch = _torch_of(leaves)
    if torch is not None:
        from ._native import _torch_private

        with torch.no_grad():
            new_params, state = optimizer.update(params, grads, state)
            _torch_private.foreach_copy_(leaves, tree_leaves(new_params))  # one launch for all
        return state
    for i, p in enumerate(leaves):
        if not _writable(p):
            raise TypeError(
                f"params[{i}] must be a writable array (torch tensor or NumPy array) to be "
                f"updated in place; got {describe(p)}: use optimizer.update, which returns "
                f"new arrays"
            )
    new_params, state = optimizer.update(params, grads, state)
    for p, new in zip(leaves, tree_leaves(new_params), strict=True):
        p[...] = new
    return state


def _torch_of(leaves: list[Array]) -> Any:
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and leaves and all(isinstance(p, torch.Tensor) for p in leaves):
        return torch
    return None


def _writable(a: Array) -> bool:
    flags = getattr(a, "flags", None)
    return flags is not None and bool(getattr(flags, "writeable", False))
