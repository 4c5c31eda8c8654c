"""CuPy: the formulas, through a namespace whose ``clip`` never synchronises.

array-api-compat's CuPy namespace takes most functions from CuPy itself, but
its ``clip`` is the common one, which writes each bound through a boolean
mask: CuPy counts a mask's true entries on the host before it can index, a
device-to-host synchronisation per bound and call. The formulas clip only
with Python-number bounds, and CuPy's own ``minimum`` and ``maximum`` (which
the namespace exposes unchanged) take a Python number as a kernel argument:
one elementwise kernel per bound, no synchronisation, NaN kept. (The formulas
use no ``sign`` either, whose CuPy fix-up for NaN is a masked write too.)

Nothing here imports CuPy: the functions are bound to the namespace the
dispatcher was handed (:func:`arraykit._native._eager.module_for`), so a
namespace built like CuPy's, over arrays that count what they do, measures
the same code on a machine without a GPU (``benchmarks.gpu_costs``).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any


class SyncFree(ModuleType):
    """A CuPy array-API namespace, with a ``clip`` made of ``minimum`` and ``maximum``."""

    def __init__(self, xp: Any) -> None:
        super().__init__(xp.__name__)
        self._xp = xp

    def __getattr__(self, name: str) -> Any:
        return getattr(self._xp, name)

    def clip(self, x: Any, /, min: float | None = None, max: float | None = None) -> Any:
        if max is not None:
            x = self._xp.minimum(x, max)
        if min is not None:
            x = self._xp.maximum(x, min)
        return x


class FastPaths:
    """CuPy's fast paths: no kernels of their own (the GPU cost model counts what the
    formulas launch, ``benchmarks.gpu_costs``); the formulas run on the namespace
    above, bound to the CuPy namespace the dispatcher was handed."""

    def __init__(self, xp: Any) -> None:
        self.FORMULA_NAMESPACE = SyncFree(xp)
