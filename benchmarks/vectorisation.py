"""Loops against vectorised calls: the classic exercise, on every backend.

``python -m benchmarks.vectorisation``: the dot product, outer product,
elementwise product and matrix–vector product (a 3 × n matrix, as in the
exercise) of random vectors of n elements, written as Python loops over the
backend's elements and as one vectorised call each, timed interleaved in the
same run on each local backend of backends/. Reports the medians [min–max]
and the speed-up of the vectorised call.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import backends

from .primitives import SMALL_ONLY, Case, interleaved
from .timing import Timing, machine

OPERATIONS = ("dot", "outer", "elementwise", "matvec")
SIZES = (15, 100)


def loops(xp: Any, x1: Any, x2: Any, w: Any) -> dict[str, Callable[[], Any]]:
    """The classic loops, element by element, in the backend's own arrays."""
    n = x1.shape[0]

    def dot() -> Any:
        total = 0.0
        for i in range(n):
            total += x1[i] * x2[i]
        return total

    def outer() -> Any:
        # Immutable backends (JAX) cannot fill a preallocated array: the
        # products are gathered, then stacked once, on every backend alike.
        return xp.reshape(xp.stack([x1[i] * x2[j] for i in range(n) for j in range(n)]), (n, n))

    def elementwise() -> Any:
        return xp.stack([x1[i] * x2[i] for i in range(n)])

    def matvec() -> Any:
        rows = []
        for r in range(w.shape[0]):
            total = 0.0
            for j in range(n):
                total += w[r, j] * x1[j]
            rows.append(total)
        return xp.stack(rows)

    return {"dot": dot, "outer": outer, "elementwise": elementwise, "matvec": matvec}


def vectorised(xp: Any, x1: Any, x2: Any, w: Any) -> dict[str, Callable[[], Any]]:
    return {
        "dot": lambda: xp.vecdot(x1, x2),
        "outer": lambda: x1[:, None] * x2[None, :],
        "elementwise": lambda: x1 * x2,
        "matvec": lambda: w @ x1,
    }


def run(sizes: tuple[int, ...], repeats: int, budget: float) -> list[dict[str, Any]]:
    rows = []
    for backend in backends.available(remote=False):
        if SMALL_ONLY.get(backend.id) == 0:
            continue
        xp = backend.namespace
        for n in sizes:
            rng = np.random.default_rng(n)
            x1, x2 = (backend.asarray(rng.normal(size=n)) for _ in range(2))
            w = backend.asarray(rng.normal(size=(3, n)))
            looped, fast = loops(xp, x1, x2, w), vectorised(xp, x1, x2, w)
            for operation in OPERATIONS:
                contenders = {"loops": looped[operation], "vectorised": fast[operation]}
                result = interleaved(Case(operation, (x1,), contenders), backend, repeats, budget)
                rows.append(
                    {
                        "backend": backend.id,
                        "operation": operation,
                        "n": n,
                        "loops": result["loops"],
                        "vectorised": result["vectorised"],
                        "speedup": result["loops"]["median"] / result["vectorised"]["median"],
                    }
                )
                print(_line(rows[-1]), flush=True)
    return rows


def _time(t: dict[str, float]) -> str:
    return str(Timing(t["median"], t["low"], t["high"], 0))


def _line(row: dict[str, Any]) -> str:
    return (
        f"{row['backend']:18} {row['operation']:12} n={row['n']:<4} loops {_time(row['loops']):28}"
        f" vectorised {_time(row['vectorised']):28} {row['speedup']:8.0f}×"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--budget", type=float, default=0.05, help="seconds per sample")
    parser.add_argument("--json", type=Path, help="write the rows here")
    args = parser.parse_args(argv)
    rows = run(tuple(args.sizes), args.repeats, args.budget)
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
