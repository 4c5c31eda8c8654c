"""CuPy fast paths: the formulas, through a namespace whose ``clip`` never synchronises.

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

from .. import _formulas, _line


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
    """The primitives whose formulas clip, bound to one CuPy namespace."""

    def __init__(self, xp: Any) -> None:
        self.xp = SyncFree(xp)

    def sigmoid_derivative(self, x: Any) -> Any:
        return _formulas.sigmoid_derivative(x, xp=self.xp)

    def softmax(self, x: Any, axes: tuple[int, ...]) -> Any:
        return _formulas.softmax(x, axes, xp=self.xp)

    def normalize_rows(self, x: Any) -> Any:
        return _formulas.normalize_rows(x, xp=self.xp)

    def l1_loss(self, yhat: Any, y: Any, reduction: str, power: int) -> Any:
        return _formulas.loss(yhat, y, reduction, power, xp=self.xp)

    l2_loss = l1_loss  # power selects the loss, as in the generic formula

    def line_descent(self, *args: Any) -> Any:
        return _line.descent_of(*args, xp=self.xp)
