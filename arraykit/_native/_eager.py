"""The fast-path modules of the eager backends: NumPy, PyTorch, JAX, CuPy.

Below :mod:`arraykit._dispatch`, which adds Dask: a Dask block is an eager
array, so the Dask fast path dispatches each block through this module
without importing the dispatcher above it. A fast-path module is imported
only once the caller has handed us that backend's arrays.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def dispatch(xp: Any, name: str, generic: Callable[..., Any], *args: Any) -> Any:
    """``name`` on the eager namespace ``xp`` (see :func:`compute`)."""
    return compute(fast_paths(xp, module_for), name, generic, xp, *args)


def compute(paths: Any, name: str, generic: Callable[..., Any], xp: Any, *args: Any) -> Any:
    """``name``'s fast path among ``paths`` applied to ``args``, else ``generic(*args, xp=)``.

    The one route from a public function to a value: a fast path computes or
    declines (returns None: a layout, dtype or value it does not serve), and
    the generic formula takes what it declines, on the namespace the
    backend's fast paths name for it (``FORMULA_NAMESPACE``, CuPy's), else on
    ``xp``. Fast paths never call the formulas themselves.
    """
    native = getattr(paths, name, None)
    if native is not None:
        result = native(*args)
        if result is not None:
            return result
    return generic(*args, xp=getattr(paths, "FORMULA_NAMESPACE", xp))


def fast_paths(xp: Any, find: Callable[[Any], Any]) -> Any:
    """``xp``'s fast paths, found by ``find`` the first time: a dict lookup per call.

    Keyed by the namespace's name, with the namespace itself kept beside its
    fast paths and compared by identity: torch.compile traces this lookup on
    the first call of a compiled function, and dynamo can compare strings,
    not every namespace object another caller may have cached (a module
    built for a test, say).
    """
    key = getattr(xp, "__name__", "")
    entry = MODULES.get(key)
    if entry is None or entry[0] is not xp:
        entry = MODULES[key] = (xp, find(xp))
    return entry[1]


MODULES: dict[str, tuple[Any, Any]] = {}
"""Namespace name -> (the namespace, its fast paths: a module, an object, or None).
Shared with :mod:`arraykit._dispatch`, which finds Dask's too."""


def module_for(xp: Any) -> Any:
    """The fast paths of namespace ``xp`` (a module, or an object of functions), or None.

    By the namespace's name rather than array-api-compat's cached checks, and
    with import statements rather than importlib: the first call may come
    while torch.compile traces it, and dynamo traces neither of those.
    """
    namespace = getattr(xp, "__name__", "")
    if namespace in ("numpy", "array_api_compat.numpy"):
        from . import numpy as module
    elif namespace == "array_api_compat.torch":
        from . import torch as module  # type: ignore[no-redef]
    elif namespace == "jax.numpy":
        from . import jax as module  # type: ignore[no-redef]
    elif namespace == "array_api_compat.cupy":
        from . import cupy

        return cupy.FastPaths(xp)
    else:
        return None
    return module
