"""Which code computes a call: a backend's fast path, or the generic formula.

The choice is made from the namespace of the arguments, that is from what
the arrays are, never from flags a transformation can hide (``requires_grad``
on a ``torch.func`` wrapper, ``.device`` on a JAX tracer). The eager
backends' modules are found by :mod:`arraykit._native._eager`; Dask's is
added here. This module imports no public module of arraykit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._array_api import known_type
from ._native import _eager


def dispatch(xp: Any, name: str, generic: Callable[..., Any], *args: Any) -> Any:
    """``name`` on ``xp``: its fast path, else ``generic`` (see :func:`_eager.compute`)."""
    return _eager.compute(fast_paths(xp), name, generic, xp, *args)


def lookup(xp: Any, name: str) -> Callable[..., Any] | None:
    """The fast path for ``name`` on namespace ``xp``, or None."""
    return getattr(fast_paths(xp), name, None)


def fast_paths(xp: Any) -> Any:
    """The fast paths of namespace ``xp`` (a dict lookup once seen), or None."""
    # _eager.fast_paths, inlined: this runs once per call of a public function.
    try:
        entry = _eager.MODULES[xp.__name__]
    except (AttributeError, KeyError):
        entry = None
    if entry is None or entry[0] is not xp:
        return _eager.fast_paths(xp, _module_for)
    return entry[1]


def route(x: Any, xp: Any, name: str, *args: Any) -> Any:
    """``name(x, *args)`` computed by the fast path alone for a one-array function, or
    None (where the entry checks are needed, or the fast path declines).

    Where ``x`` is an array of a type seen before with a float32 or float64
    dtype and no namespace is given, the entry checks have nothing to infer,
    cast or finish: a backend's fast path returns its input's type and
    dtype. Skipping them saves about half of their microsecond a call
    (docs/benchmark-records.md), which ``torch.sigmoid`` on 1e5 elements notices.
    """
    if xp is not None:
        return None
    kind = type(x)
    entry = _ROUTES.get(kind)
    if entry is None:
        known = known_type(kind)
        if known is None:
            return None
        entry = _ROUTES[kind] = (
            known.dtypes,
            _eager.fast_paths(known.xp, _module_for),
            known.layout,
        )
    if x.dtype not in entry[0]:
        return None
    # _Known.takes, written out: a call here is a tenth of what the route saves.
    if entry[2] is not None and (x.layout is not entry[2] or x.is_nested):
        return None  # a sparse or nested tensor: the entry checks refuse it
    fast = getattr(entry[1], name, None)
    return None if fast is None else fast(x, *args)


_ROUTES: dict[type, tuple[tuple[Any, ...], Any, Any]] = {}
"""Array type -> (the dtypes its fast paths take as they are, its fast paths,
the layout they take, where the type has several (torch.strided), else None)."""


def computes_half(xp: Any) -> bool:
    """Whether ``xp``'s fast path takes float16 and bfloat16 arrays as they are."""
    return bool(getattr(_eager.fast_paths(xp, _module_for), "COMPUTES_HALF", False))


def _module_for(xp: Any) -> Any:
    if getattr(xp, "__name__", "") == "array_api_compat.dask.array":
        from ._native import dask

        return dask
    return _eager.module_for(xp)
