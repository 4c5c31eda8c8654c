"""Where the compiled kernels stop paying: the size thresholds of the NumPy fast paths.

``python -m benchmarks.crossover``: each NumPy fast path timed with its
compiled kernel and with the NumPy kernels alone, interleaved, at sizes
around the thresholds in ``arraykit._native.numpy.COMPILED_UP_TO``, float32
and float64. The compiled kernels should win up to each threshold and lose
beyond it; the report says where the winner changes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

import backends
from arraykit._native import numpy as kernels

from .primitives import Case, interleaved
from .timing import Timing, machine

SIZES = (64, 256, 1024, 2048, 4096, 8192, 16384, 32768)
ROW = 64  # row length for softmax and normalize_rows


@contextlib.contextmanager
def _compiled_up_to(limit: int) -> Iterator[None]:
    saved = dict(kernels.COMPILED_UP_TO)
    kernels.COMPILED_UP_TO.update(dict.fromkeys(saved, limit))
    try:
        yield
    finally:
        kernels.COMPILED_UP_TO.update(saved)


def _calls(size: int, dtype: str) -> dict[str, Callable[[], Any]]:
    rng = np.random.default_rng(0)
    x = (rng.normal(size=size) * 4).astype(dtype)
    y = rng.normal(size=size).astype(dtype)
    rows = x.reshape(-1, ROW)
    return {
        "sigmoid": lambda: kernels.sigmoid(x),
        "sigmoid_derivative": lambda: kernels.sigmoid_derivative(x),
        "softmax": lambda: kernels.softmax(rows, (1,)),
        "normalize_rows": lambda: kernels.normalize_rows(rows),
        "loss": lambda: kernels.l2_loss(x, y, "sum", 2),
    }


def _forced(limit: int, call: Callable[[], Any]) -> Callable[[], Any]:
    def run() -> Any:
        with _compiled_up_to(limit):
            return call()

    return run


def run(repeats: int, budget: float) -> list[dict[str, Any]]:
    if kernels.compiled is None:
        raise SystemExit("arraykit was built without its compiled kernels: nothing to compare")
    numpy = backends.get("numpy")
    rows = []
    for dtype in ("float32", "float64"):
        for size in SIZES:
            for name, call in _calls(size, dtype).items():
                contenders = {"compiled": _forced(2**62, call), "numpy": _forced(0, call)}
                times = interleaved(Case(name, (), contenders), numpy, repeats, budget)
                compiled, plain = times["compiled"], times["numpy"]
                rows.append(
                    {
                        "function": name,
                        "dtype": dtype,
                        "size": size,
                        "compiled": compiled,
                        "numpy": plain,
                        "ratio": compiled["median"] / plain["median"],
                        "threshold": kernels.COMPILED_UP_TO[name],
                    }
                )
                print(_line(rows[-1]), flush=True)
    return rows


def _line(row: dict[str, Any]) -> str:
    def text(t: dict[str, float]) -> str:
        return str(Timing(t["median"], t["low"], t["high"], 0))

    used = "compiled" if row["size"] <= row["threshold"] else "numpy"
    return (
        f"{row['function']:>18} {row['dtype']} {row['size']:>6}: compiled {text(row['compiled'])}"
        f", numpy {text(row['numpy'])}, ratio {row['ratio']:.2f} (arraykit uses {used})"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--budget", type=float, default=0.02, help="seconds per sample")
    parser.add_argument("--json", type=Path, help="write the measurements as JSON")
    args = parser.parse_args(argv)
    rows = run(args.repeats, args.budget)
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
