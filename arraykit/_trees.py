"""Trees of arrays: an array, or a tuple, list, NamedTuple or dict of trees.

The optimizers' parameters, gradients and state are trees; these walk them,
and check that gradients match the parameters they step. This module imports
no public module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from ._array_api import Array, describe, namespace_of, same_shape

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
        tree = tree.values()
    elif not isinstance(tree, tuple | list):
        return [tree]
    leaves = []  # written out: an optimizer's step flattens a few trees
    for item in tree:
        if isinstance(item, dict | tuple | list):
            leaves.extend(tree_leaves(item))
        else:
            leaves.append(item)
    return leaves


def flat(tree: Params) -> bool:
    """Whether ``tree`` is a list of arrays (``model.parameters()``), rebuilt by ``list``."""
    return type(tree) is list and not any(isinstance(t, dict | tuple | list) for t in tree)


def rebuilt(tree: Params, leaves: list[Any], is_flat: bool | None = None) -> Params:
    """``tree``'s structure holding ``leaves`` (in :func:`tree_leaves` order); ``is_flat``
    is :func:`flat` of ``tree``, where known."""
    if flat(tree) if is_flat is None else is_flat:
        return list(leaves)
    remaining = iter(leaves)
    return tree_map(lambda _: next(remaining), tree)


def matched_leaves(params: Params, grads: Params, *, skipped: bool = False) -> list[Any]:
    """The leaves of ``grads``, checked against ``params``: the same structure (a list
    and a tuple are both sequences), and leaves of the parameters' shape, dtype and
    array type; with ``skipped``, a None leaf stands for a parameter left as it is."""
    out: list[Any] = []
    _match(params, grads, (), out, skipped)
    return out


def _where(path: tuple[Any, ...]) -> str:
    """``grads['w'][0]``: the place of a leaf, for error messages."""
    return "grads" + "".join(f"[{key!r}]" for key in path)


def _match(
    params: Params, grads: Params, path: tuple[Any, ...], out: list[Any], skipped: bool
) -> None:
    if isinstance(params, dict):
        if not isinstance(grads, dict) or grads.keys() != params.keys():
            raise TypeError(
                f"{_where(path)} must be a dict with the parameters' keys {list(params)}; got "
                f"{_outline(grads)}"
            )
        for k in params:
            _match(params[k], grads[k], (*path, k), out, skipped)
    elif isinstance(params, tuple | list):
        if not isinstance(grads, tuple | list) or len(grads) != len(params):
            raise TypeError(
                f"{_where(path)} must be a sequence of {len(params)} like the parameters; got "
                f"{_outline(grads)}"
            )
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            if isinstance(p, dict | tuple | list) or not isinstance(p, type(g)):
                # (a torch Parameter's gradient is a Tensor: the same kind of array)
                _match(p, g, (*path, i), out, skipped)
            elif g.shape == p.shape and g.dtype == p.dtype and dense(g):
                out.append(g)  # the common case, without a call (params are dense)
            else:
                _leaf(p, g, (*path, i), out)
    elif grads is None and skipped:
        out.append(None)
    else:
        _leaf(params, grads, path, out)


_DENSE: set[Any] = {None}
"""The layouts of dense arrays: none (every backend's but torch's), and torch.strided."""


def dense(a: Any) -> bool:
    """Whether ``a`` is a dense array (not one of torch's sparse layouts)."""
    layout = getattr(a, "layout", None)
    if layout in _DENSE:
        return True
    if str(layout) == "torch.strided":  # a name: torch is not imported here
        _DENSE.add(layout)
        return True
    return False


def _leaf(params: Any, grads: Any, path: tuple[Any, ...], out: list[Any]) -> None:
    where = _where(path)
    if getattr(grads, "shape", None) is None or getattr(grads, "dtype", None) is None:
        raise TypeError(f"{where} must be an array like its parameter; got {describe(grads)}")
    if namespace_of(grads) is not namespace_of(params):
        raise TypeError(
            f"{where} must be an array of the parameter's kind ({describe(params)}); "
            f"got {describe(grads)}"
        )
    if not same_shape(tuple(grads.shape), tuple(params.shape)):
        raise ValueError(
            f"{where} must have its parameter's shape {tuple(params.shape)}; got {describe(grads)}"
        )
    if grads.dtype != params.dtype:
        raise TypeError(
            f"{where} must have its parameter's dtype {params.dtype}; got {describe(grads)}"
        )
    if not dense(grads):  # the parameters are dense (the optimizers check)
        raise TypeError(
            f"{where} must be dense, as its parameter; got a {grads.layout} {describe(grads)}"
        )
    out.append(grads)


def _outline(tree: Any) -> str:
    if isinstance(tree, dict):
        return f"a dict with the keys {list(tree)}"
    if isinstance(tree, tuple | list):
        return f"a {type(tree).__name__} of {len(tree)}"
    return describe(tree)
