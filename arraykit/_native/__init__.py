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

import importlib
import os
import warnings
from types import ModuleType

KERNELS_VARIABLE = "ARRAYKIT_KERNELS"
"""The environment variable that picks a build of the kernels, to measure or test
one: ``avx2`` (where the processor has AVX2), ``default``; unset, the best."""


def _for_this_processor(default: ModuleType) -> ModuleType:
    """The build of the kernels this processor runs best: the AVX2 build
    (``_kernels_avx2``) where it has AVX2 and the default build (``_kernels``) holds
    no AVX-512 clone it runs, else the default build. The default build says
    which the processor has, before any code for one level is loaded."""
    level, wanted = default.PROCESSOR, os.environ.get(KERNELS_VARIABLE, "")
    if wanted not in ("", "avx2", "default"):
        raise ValueError(f"{KERNELS_VARIABLE}={wanted!r}: expected 'avx2' or 'default'")
    has_avx2 = level in ("x86-64-v3", "x86-64-v4")
    if wanted == "avx2":  # asked for: an error, not another build, where it cannot run
        if not has_avx2:
            raise ValueError(f"{KERNELS_VARIABLE}=avx2: this processor ({level!r}) has no AVX2")
        return importlib.import_module("._kernels_avx2", __name__)
    clones = default.INSTRUCTIONS.startswith("clones")
    if wanted == "default" or not has_avx2 or (level == "x86-64-v4" and clones):
        return default
    try:
        return importlib.import_module("._kernels_avx2", __name__)
    except ImportError:  # not built (another compiler, or a build without it)
        return default


compiled: ModuleType | None
"""The compiled kernels (``_kernels.c``) in the build this processor runs best, or
None where they were not built."""
try:
    from . import _kernels as _default
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
else:
    compiled = _for_this_processor(_default)
