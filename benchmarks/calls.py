"""The cost of a call on the batches a classifier's step hands over, beside torch's own.

``python -m benchmarks.calls [--json FILE]``: softmax, log_softmax, logsumexp and the
cross-entropy of class indices over the last axis (their defaults), on NumPy arrays
and torch CPU tensors of a few shapes from 16 values to 1e4, float32 and float64,
with torch's own function on the same tensor beside them; CPU time per call on one
thread, the best of nine runs. At these sizes the public function's fixed cost (its
checks, the dispatch, the views) weighs as much as the kernel: this is where a change
to either shows. To compare revisions, run it in each checkout (a ``git worktree``)
one after the other, twice, and keep each cell's best.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import arraykit as ak

SHAPES = ((4, 4), (1000, 10), (100, 100), (10, 1000), (625, 16))
"""Batches × classes: a toy, digits-like batches, and 1e4 values in rows of 10 to 1000."""


def best_time(call: Callable[[], Any], number: int, repeats: int = 9) -> float:
    """The least CPU time per call over ``repeats`` runs of ``number`` calls, in seconds."""
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        for _ in range(number):
            call()
        best = min(best, (time.process_time() - start) / number)
    return best


def contenders(x: np.ndarray, labels: np.ndarray) -> dict[str, tuple[Callable[[], Any], ...]]:
    """Per function: arraykit on the NumPy array, on its torch tensor, and torch's own."""
    import torch
    import torch.nn.functional as F

    t, t_labels = torch.from_numpy(x), torch.from_numpy(labels)
    return {
        "softmax": (lambda: ak.softmax(x), lambda: ak.softmax(t), lambda: t.softmax(-1)),
        "log_softmax": (
            lambda: ak.log_softmax(x),
            lambda: ak.log_softmax(t),
            lambda: t.log_softmax(-1),
        ),
        "logsumexp": (lambda: ak.logsumexp(x), lambda: ak.logsumexp(t), lambda: t.logsumexp(-1)),
        "cross_entropy": (
            lambda: ak.cross_entropy(x, labels),
            lambda: ak.cross_entropy(t, t_labels),
            lambda: F.cross_entropy(t, t_labels),
        ),
    }


def cells() -> list[dict[str, Any]]:
    import torch

    torch.set_num_threads(1)
    rows = []
    for shape in SHAPES:
        for dtype in ("float32", "float64"):
            x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
            labels = np.random.default_rng(1).integers(0, shape[1], shape[0])
            number = max(20, int(2e5 / x.size))
            for name, calls in contenders(x, labels).items():
                times = [best_time(call, number) * 1e6 for call in calls]
                rows.append(
                    {
                        "function": name,
                        "shape": list(shape),
                        "dtype": dtype,
                        "numpy_us": round(times[0], 2),
                        "torch_us": round(times[1], 2),
                        "torch_own_us": round(times[2], 2),
                    }
                )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--json", help="also write the cells to this file")
    args = parser.parse_args(argv)
    rows = cells()
    print("| function | shape | dtype | NumPy µs | torch µs | torch's own µs |")
    print("| --- | --- | --- | ---: | ---: | ---: |")
    for row in rows:
        shape = "×".join(map(str, row["shape"]))
        print(
            f"| {row['function']} | {shape} | {row['dtype']} | {row['numpy_us']:.1f} "
            f"| {row['torch_us']:.1f} | {row['torch_own_us']:.1f} |"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
