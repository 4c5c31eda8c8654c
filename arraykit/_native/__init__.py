"""Native fast paths: a backend's own kernels, used where they are faster.

Each backend module here defines functions named like the public ones, taking
the generic twin's arguments (less ``xp``): arrays already validated and cast
to their compute dtype. A fast path must
give the same results as the generic array-API twin within the accuracy
contract; ``tests/test_native.py`` checks that on every backend that has one.
A backend module is imported only once the caller has handed us that
backend's arrays, so arraykit never imports a backend library itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import array_api_compat


def dispatch(xp: Any, name: str, generic: Callable[..., Any], *args: Any) -> Any:
    """``name``'s fast path on ``xp`` applied to ``args``, else ``generic(*args, xp)``."""
    native = lookup(xp, name)
    return native(*args) if native is not None else generic(*args, xp)


def lookup(xp: Any, name: str) -> Callable[..., Any] | None:
    """The fast path for ``name`` on namespace ``xp``, or None."""
    try:
        module = _MODULES[xp]
    except KeyError:
        module = _MODULES.setdefault(xp, _module_for(xp))
    return getattr(module, name, None)


_MODULES: dict[Any, Any] = {}
"""Namespace -> its fast-path module (or None): a dict lookup per call."""


def _module_for(xp: Any) -> Any:
    if array_api_compat.is_numpy_namespace(xp):
        from . import numpy as module
    elif array_api_compat.is_torch_namespace(xp):
        from . import torch as module  # type: ignore[no-redef]
    elif array_api_compat.is_jax_namespace(xp):
        from . import jax as module  # type: ignore[no-redef]
    elif array_api_compat.is_dask_namespace(xp):
        from . import dask as module  # type: ignore[no-redef]
    else:
        return None
    return module
