"""Native fast paths: a backend's own kernels, used where they are faster.

Each backend module here defines functions named like the public ones, taking
the generic formula's arguments (less ``xp``): arrays already validated and
cast to their compute dtype. A fast path computes, within the accuracy
contract of the generic formula (:mod:`arraykit._formulas`), or declines by
returning None; the dispatcher (:func:`arraykit._native._eager.compute`) then
takes the formula. ``tests/test_native.py`` checks the values on every
backend that has one, ``tests/test_route.py`` that no fast path calls a
formula itself. These modules import the formulas' shared parts, never a
public module.
"""

from __future__ import annotations

import os
import warnings
from types import ModuleType

compiled: ModuleType | None
"""The compiled kernels (``_kernels.c``), or None where they were not built."""
try:
    from . import _kernels as compiled
except ImportError:
    compiled = None
    # Said once, where the kernels are first looked for: their absence changes
    # speed, and values within the tested accuracy, with nothing else to show it.
    warnings.warn(
        "arraykit runs without its compiled kernels (arraykit._native._kernels is not "
        f"built beside {os.path.dirname(os.path.dirname(__file__))!r}): NumPy arrays take "
        "NumPy's operations instead, and torch CPU tensors torch's, with values within the "
        "same tested accuracy but up to 8 times slower on small arrays. That happens when "
        "Python imports arraykit from a source checkout that was installed without "
        "building it in place (pip install '.[...]' builds it elsewhere) or where no C "
        "compiler was found: run 'pip install -e .' in the checkout with a C compiler, "
        "or run Python outside the checkout",
        RuntimeWarning,
        stacklevel=2,
    )
