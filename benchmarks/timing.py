"""Timing with warm-up and device synchronisation, reported as median and range."""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Timing:
    median: float
    low: float
    high: float
    repeats: int

    def __str__(self) -> str:
        return f"{_seconds(self.median)} [{_seconds(self.low)}–{_seconds(self.high)}]"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _seconds(value: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if value >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value / 1e-9:.3g} ns"


def measure(
    function: Callable[[], Any],
    *,
    repeats: int = 7,
    warmup: int = 1,
    finish: Callable[[Any], Any] = lambda result: result,
) -> Timing:
    """Median, min and max wall time of ``finish(function())`` over ``repeats`` runs.

    ``finish`` waits for the result (a backend's ``sync`` or ``compute``), so
    that asynchronous and lazy backends are timed for the work, not the launch.
    """
    for _ in range(warmup):
        finish(function())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        finish(function())
        times.append(time.perf_counter() - start)
    return Timing(statistics.median(times), min(times), max(times), repeats)


def machine() -> dict[str, str]:
    """What the numbers were measured on."""
    import numpy

    info = {
        "date": time.strftime("%Y-%m-%d"),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": _cpu_name(),
        "numpy": numpy.__version__,
    }
    from arraykit._native import compiled

    info["kernels"] = "not built" if compiled is None else compiled.INSTRUCTIONS
    for name in ("torch", "jax", "dask", "cupy", "scipy"):
        try:
            module = __import__(name)
            info[name] = module.__version__
        except ImportError:
            pass
    return info


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
