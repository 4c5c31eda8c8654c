"""The shape sweep: every operation on the shapes and layouts users pass, beside its best peer.

``python -m benchmarks.sweep --json docs/benchmarks-sweep.json --plot docs/benchmark-sweep.png``
times, interleaved in one process, each cell — an operation, backend, dtype,
layout, shape and thread count — for arraykit and for every peer the
registry names that runs there (torch's own function, SciPy, the textbook
form in the backend's namespace, ``jax.nn`` and the jitted textbook form),
as CPU time per call (the steadiest figure on a shared machine; with two
threads, wall time, which is what the second thread buys). ``--smoke``
runs a few small cells only, which CI does.

The cells:

* softmax and normalize_rows on rows of 2, 3, 5, 8, 10, 16, 32, 100, 1000,
  1e4 and 1e5 values, about 1e6 elements in all (and batches of about 1e4
  for rows up to 1000): rows along the last axis of a C-ordered array, of a
  transposed one, of a strided view; softmax also over the first axis and
  over the middle axis of a 3-D array;
* the elementwise operations and the losses (each reduction) at 10 to 1e7
  elements, contiguous and strided.

The targets (docs/benchmarks.md): from about 1e4 elements, within 1.25× of
the best peer; below that, at most 1 µs over it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import arraykit as ak
import backends
from arraykit import _operations as operations

from .primitives import _peers
from .primitives import _textbook as primitive_textbook
from .timing import machine

ROW_LENGTHS = (2, 3, 5, 8, 10, 16, 32, 100, 1_000, 10_000, 100_000)
ELEMENTS = 1_000_000
BATCH = 10_000
SIZES = (10, 1_000, 100_000, 10_000_000)
BACKENDS = ("numpy", "torch:cpu", "jax:cpu")
AXIS_FUNCTIONS = ("softmax", "logsumexp", "log_softmax")
"""The row operations that take an axis: also measured over the first and a middle axis."""
CLASSES = (2, 10, 100, 1_000)
"""Classes per example in the cross-entropy's cells (and a batch of 4096 rows of 10)."""
RATIO = 1.25
"""From about 1e4 elements: arraykit within this factor of the best peer."""
SMALL = 1e4
OVER_SMALL = 1e-6
"""Below about 1e4 elements: at most this many seconds over the best peer."""


@dataclass(frozen=True)
class Cell:
    """One operation on one array layout: how to make its arguments, and call it."""

    function: str
    layout: str
    shape: tuple[int, ...]
    make: Callable[[np.ndarray], tuple[Any, ...]]
    """From the C-ordered values (of ``shape``), the arguments in the layout."""
    axis: int | None = None
    """softmax's axis (None: the last)."""
    label: str = ""
    """The registry's call (a loss's reduction)."""

    @property
    def elements(self) -> int:
        return int(np.prod(self.shape))


def _rows_cells(function: str, smoke: bool) -> Iterator[Cell]:
    lengths = (3, 100) if smoke else ROW_LENGTHS
    totals = (BATCH,) if smoke else (ELEMENTS, BATCH)
    for total in totals:
        for length in lengths:
            if length > total or (total == BATCH and length > 1_000):
                continue
            rows = max(total // length, 1)
            yield Cell(function, "last axis", (rows, length), lambda v: (v,))
            yield Cell(
                function, "transposed", (rows, length), lambda v: (np.ascontiguousarray(v.T).T,)
            )
            yield Cell(
                function, "strided", (rows, length), lambda v: (np.repeat(v, 2, axis=1)[:, ::2],)
            )
            if function in AXIS_FUNCTIONS:
                yield Cell(function, "first axis", (length, rows), lambda v: (v,), axis=0)
                if rows >= 8:  # about the same elements, in 8 blocks of rows
                    yield Cell(
                        function, "middle axis", (8, length, rows // 8), lambda v: (v,), axis=1
                    )


def _flat_cells(function: str, arrays: int, smoke: bool) -> Iterator[Cell]:
    for size in (10, 10_000) if smoke else SIZES:

        def contiguous(v: np.ndarray, k: int = arrays) -> tuple[Any, ...]:
            return (v, *(v[::-1].copy() for _ in range(k - 1)))

        def strided(v: np.ndarray, k: int = arrays) -> tuple[Any, ...]:
            wide = np.repeat(v, 2)[::2]
            return (wide, *(np.repeat(v[::-1], 2)[::2] for _ in range(k - 1)))

        yield Cell(function, "contiguous", (size,), contiguous)
        yield Cell(function, "strided", (size,), strided)


def _labelled_cells(op: Any, smoke: bool) -> Iterator[Cell]:
    """An operation that takes labels or class indices: its arguments from the registry's
    domain (a second normal draw made into labels), then put in the layout."""

    def made(layout: Callable[[np.ndarray], np.ndarray]) -> Callable[..., tuple[Any, ...]]:
        def make(v: np.ndarray) -> tuple[Any, ...]:
            second = np.random.default_rng(1).normal(size=v.shape).astype(v.dtype)
            first, labels = op.arguments([v, second])
            return layout(first), (labels if labels.dtype.kind == "i" else layout(labels))

        return make

    def strided(a: np.ndarray) -> np.ndarray:
        return np.repeat(a, 2, axis=-1)[..., ::2]

    for call in op.calls:
        if op.kind == "rows":  # logits with the classes along the last axis
            shapes = [(4096, 10)] + [
                (max(total // c, 1), c)
                for total in ((BATCH,) if smoke else (ELEMENTS, BATCH))
                for c in ((10,) if smoke else CLASSES)
            ]
            for shape in shapes:
                yield Cell(op.name, "last axis", shape, made(lambda a: a), label=call.label)
                yield Cell(
                    op.name,
                    "transposed",
                    shape,
                    made(lambda a: np.ascontiguousarray(a.T).T),
                    label=call.label,
                )
                yield Cell(op.name, "strided", shape, made(strided), label=call.label)
                # The course's layout: one example per column, the classes along axis 0.
                yield Cell(
                    op.name,
                    "first axis",
                    shape,
                    made(lambda a: np.ascontiguousarray(a.T)),
                    axis=0,
                    label=call.label,
                )
        else:
            for size in (10, 10_000) if smoke else SIZES:
                yield Cell(op.name, "contiguous", (size,), made(lambda a: a), label=call.label)
                yield Cell(op.name, "strided", (size,), made(strided), label=call.label)


def cells(smoke: bool = False, functions: tuple[str, ...] | None = None) -> Iterator[Cell]:
    """Every cell of the sweep (a few small ones with ``smoke``; only ``functions``'s)."""
    for op in operations.OPERATIONS:
        if functions is not None and op.name not in functions:
            continue
        if op.domain is not None:
            yield from _labelled_cells(op, smoke)
        elif op.kind == "rows":
            yield from _rows_cells(op.name, smoke)
        elif op.kind in ("elementwise", "reduction"):
            for call in op.calls:
                for cell in _flat_cells(op.name, op.arrays, smoke):
                    yield Cell(cell.function, cell.layout, cell.shape, cell.make, label=call.label)


def _contenders(backend: backends.Backend, cell: Cell, args: tuple[Any, ...]) -> dict[str, Any]:
    """arraykit and the cell's peers, as calls of no arguments: the textbook form in the
    backend's namespace (jitted on JAX, as arraykit is there), and the libraries' own."""
    label = cell.label or cell.function
    _, call = operations.CALLS[label]
    reduction = label.partition(" ")[2]
    ours: Callable[..., Any] = call.public
    if cell.axis is not None:
        function = getattr(ak, cell.function)
        options: dict[str, Any] = {"axis": cell.axis}
        if reduction:
            options["reduction"] = reduction
        ours = lambda *a: function(*a, **options)  # noqa: E731
    textbook = _textbook(backend.namespace, cell, reduction)
    if backend.library == "jax":
        import jax

        ours, textbook = jax.jit(ours), jax.jit(textbook)
    contenders = {"arraykit": lambda: ours(*args), "textbook": lambda: textbook(*args)}
    if cell.function in LOSSES:
        contenders.update(_loss_peers(backend, cell, reduction, args))
    elif cell.axis is not None:
        contenders.update(_axis_peers(backend, cell.function, args[0], cell.axis))
    elif reduction in ("", "sum"):
        own = _peers(backend, cell.function, args)
        own.pop("textbook", None)
        contenders.update(own)
    elif backend.library == "torch":
        import torch.nn.functional as F

        loss = F.l1_loss if cell.function == "l1_loss" else F.mse_loss
        contenders[f"torch.nn.functional.{loss.__name__}"] = lambda: loss(
            *args, reduction=reduction
        )
    return contenders


LOSSES = ("binary_cross_entropy", "binary_cross_entropy_with_logits", "cross_entropy")
"""The classification losses, whose peers take a reduction (and the cross-entropy an axis)."""


def _reduced(xp: Any, terms: Any, reduction: str) -> Any:
    return {"mean": xp.mean, "sum": xp.sum, "none": lambda v: v}[reduction](terms)


def _loss_peers(
    backend: backends.Backend, cell: Cell, reduction: str, args: tuple[Any, ...]
) -> dict[str, Callable[[], Any]]:
    """torch's own loss (classes along dim 1: a transposed view for the course's layout)
    and JAX's, from ``jax.nn``, jitted."""
    peers: dict[str, Callable[[], Any]] = {}
    first, second = args
    if backend.library == "torch":
        import torch.nn.functional as F

        if cell.function == "cross_entropy":
            logits = first.T if cell.axis == 0 else first
            peers["torch.nn.functional.cross_entropy"] = lambda: F.cross_entropy(
                logits, second, reduction=reduction
            )
        else:
            own = getattr(F, cell.function)
            peers[f"torch.nn.functional.{cell.function}"] = lambda: own(
                first, second, reduction=reduction
            )
    elif backend.library == "jax":
        import jax
        import jax.numpy as jnp

        nn = jax.nn
        axis = -1 if cell.axis is None else cell.axis

        def terms(a: Any, b: Any) -> Any:
            if cell.function == "cross_entropy":
                log_p = nn.log_softmax(a, axis=axis)
                picked = jnp.take_along_axis(log_p, jnp.expand_dims(b, axis), axis)
                return -jnp.squeeze(picked, axis)
            if cell.function == "binary_cross_entropy_with_logits":
                return -(b * nn.log_sigmoid(a) + (1 - b) * nn.log_sigmoid(-a))
            return -(b * jnp.log(a) + (1 - b) * jnp.log1p(-a))

        own = jax.jit(lambda a, b: _reduced(jnp, terms(a, b), reduction))
        peers["jax.nn"] = lambda: own(first, second)
    return peers


def _textbook(xp: Any, cell: Cell, reduction: str) -> Callable[..., Any]:
    """The textbook form of the cell's call, a function of its arrays."""
    axis = -1 if cell.axis is None else cell.axis

    def logsumexp(x: Any) -> Any:
        m = xp.max(x, axis=axis, keepdims=True)
        return m + xp.log(xp.sum(xp.exp(x - m), axis=axis, keepdims=True))

    if cell.function == "cross_entropy":

        def cross_entropy(x: Any, t: Any) -> Any:
            shape = [1] * x.ndim
            shape[axis] = x.shape[axis]
            classes = xp.reshape(xp.arange(x.shape[axis], dtype=t.dtype), tuple(shape))
            hot = classes == xp.expand_dims(t, axis=axis)
            picked = xp.sum(xp.where(hot, x - logsumexp(x), 0.0), axis=axis)
            return _reduced(xp, -picked, reduction)

        return cross_entropy
    if cell.function in ("binary_cross_entropy", "binary_cross_entropy_with_logits"):
        logits = cell.function.endswith("logits")

        def binary(a: Any, y: Any) -> Any:
            p = 1.0 / (1.0 + xp.exp(-a)) if logits else a
            return _reduced(xp, -(y * xp.log(p) + (1.0 - y) * xp.log(1.0 - p)), reduction)

        return binary
    if cell.axis is not None:
        if cell.function == "logsumexp":
            return lambda x: xp.squeeze(logsumexp(x), axis=axis)
        if cell.function == "log_softmax":
            return lambda x: x - logsumexp(x)

        def softmax(x: Any) -> Any:
            e = xp.exp(x - xp.max(x, axis=axis, keepdims=True))
            return e / xp.sum(e, axis=axis, keepdims=True)

        return softmax
    if reduction:
        power = 1 if cell.function == "l1_loss" else 2
        total = {"sum": xp.sum, "mean": xp.mean, "none": lambda v: v}[reduction]
        return lambda a, b: total(xp.abs(a - b) ** power)
    return lambda *arrays: primitive_textbook(xp, cell.function, arrays)()


def _axis_peers(
    backend: backends.Backend, function: str, x: Any, axis: int
) -> dict[str, Callable[[], Any]]:
    """The libraries' own softmax, logsumexp or log_softmax over ``axis``."""
    peers: dict[str, Callable[[], Any]] = {}
    if backend.library == "numpy":
        import scipy.special

        scipy_own = getattr(scipy.special, function)
        peers[f"scipy.special.{function}"] = lambda: scipy_own(x, axis=axis)
    elif backend.library == "torch":
        import torch

        torch_own = getattr(torch, function)
        peers[f"torch.{function}"] = lambda: torch_own(x, dim=axis)
    elif backend.library == "jax":
        import jax

        jax_own = getattr(jax.nn, function)
        own = jax.jit(lambda v: jax_own(v, axis=axis))
        peers[f"jax.nn.{function}"] = lambda: own(x)
    return peers


def _put(backend: backends.Backend, cell: Cell, dtype: str) -> tuple[Any, ...]:
    """The cell's arguments on the backend, in its layout (torch: the same strides)."""
    values = np.random.default_rng(0).normal(0.0, 4.0, cell.shape).astype(dtype)
    arrays = cell.make(values)
    if backend.library == "torch":
        import torch

        return tuple(
            torch.from_numpy(np.ascontiguousarray(a) if _negative(a) else a) for a in arrays
        )
    if backend.library == "jax":
        return tuple(  # XLA's own layout; class indices stay integers
            backend.asarray(np.asarray(a), dtype if a.dtype.kind == "f" else None) for a in arrays
        )
    return arrays


def _negative(a: np.ndarray) -> bool:
    return any(s < 0 for s in a.strides)


def _time(
    contenders: dict[str, Callable[[], Any]],
    finish: Callable[[Any], Any],
    wall: bool,
    repeats: int,
    budget: float,
) -> dict[str, float]:
    """The median time per call of each contender, interleaved (CPU time, or wall time)."""
    clock = time.perf_counter if wall else time.process_time
    loops = {}
    for name, f in contenders.items():
        finish(f())
        start = time.perf_counter()
        finish(f())
        loops[name] = max(1, min(20_000, int(budget / max(time.perf_counter() - start, 1e-7))))
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, f in contenders.items():
            start = clock()
            for _ in range(loops[name] - 1):
                f()
            finish(f())
            samples[name].append((clock() - start) / loops[name])
    return {name: statistics.median(v) for name, v in samples.items()}


def run(
    smoke: bool = False,
    only: set[str] | None = None,
    dtypes: tuple[str, ...] = ("float32", "float64"),
    threads: tuple[int, ...] = (1, 2),
    repeats: int = 5,
    budget: float = 0.02,
    functions: tuple[str, ...] | None = None,
) -> list[dict[str, Any]]:
    """One row per cell, backend, dtype and thread count: the times and the verdict."""
    rows = []
    for backend_id in BACKENDS:
        backend = backends.get(backend_id)
        if (only and backend_id not in only) or not backend.available:
            continue
        counts = threads if backend.library == "torch" else (1,)
        with backend.scope():
            for index, cell in enumerate(cells(smoke, functions)):
                for dtype in dtypes:
                    args = _put(backend, cell, dtype)
                    for count in counts:
                        if index == 0 and dtype == dtypes[0] and not smoke:
                            # The run's first cell is timed once more, first, and that
                            # time dropped: it carries the process's warm-up (lazy
                            # set-up, the processor's clock; docs/benchmarks.md).
                            _time(
                                _contenders(backend, cell, args), backend.compute, False, 1, budget
                            )
                        if backend.library == "torch":
                            import torch

                            torch.set_num_threads(count)
                        times = _time(
                            _contenders(backend, cell, args),
                            backend.compute,
                            count > 1,
                            1 if smoke else repeats,
                            1e-4 if smoke else budget,
                        )
                        rows.append(_row(backend_id, cell, dtype, count, times))
    return rows


def _row(
    backend_id: str, cell: Cell, dtype: str, threads: int, times: dict[str, float]
) -> dict[str, Any]:
    ours = times["arraykit"]
    peers = {k: v for k, v in times.items() if k != "arraykit"}
    best_name = min(peers, key=peers.__getitem__)
    best = peers[best_name]
    met = ours <= RATIO * best if cell.elements >= SMALL else ours <= best + OVER_SMALL
    return {
        "backend": backend_id,
        "function": cell.label or cell.function,
        "layout": cell.layout,
        "shape": list(cell.shape),
        "axis": cell.axis,
        "elements": cell.elements,
        "dtype": dtype,
        "threads": threads,
        "times": times,
        "best_peer": best_name,
        "ratio": ours / best,
        "ns_per_element": ours / cell.elements * 1e9,
        "met": met,
    }


def summary(rows: list[dict[str, Any]]) -> str:
    """The misses, and how many cells met the targets, per backend and thread count."""
    lines = [
        "| backend | threads | cells | met | worst ratio (cell) |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    keys = sorted({(r["backend"], r["threads"]) for r in rows})
    for backend, threads in keys:
        subset = [r for r in rows if r["backend"] == backend and r["threads"] == threads]
        worst = max(subset, key=lambda r: r["ratio"])
        lines.append(
            f"| {backend} | {threads} | {len(subset)} | {sum(r['met'] for r in subset)} | "
            f"{worst['ratio']:.2f} ({_describe(worst)}) |"
        )
    return "\n".join(lines)


def _describe(r: dict[str, Any]) -> str:
    shape = "×".join(map(str, r["shape"]))
    return f"{r['function']} {r['dtype']} {r['layout']} {shape}, vs {r['best_peer']}"


def misses(rows: list[dict[str, Any]]) -> str:
    """Each cell that missed its target, worst first."""
    missed = sorted((r for r in rows if not r["met"]), key=lambda r: -r["ratio"])
    lines = [
        "| backend | threads | cell | arraykit | best peer | ratio |",
        "| --- | ---: | --- | ---: | ---: | ---: |",
    ]
    for r in missed:
        lines.append(
            f"| {r['backend']} | {r['threads']} | {_describe(r)} | "
            f"{r['times']['arraykit'] * 1e6:.3g} µs | {r['times'][r['best_peer']] * 1e6:.3g} µs | "
            f"{r['ratio']:.2f} |"
        )
    return "\n".join(lines)


def dump(rows: list[dict[str, Any]]) -> str:
    """The rows as JSON, one line each, times to four significant digits."""

    def rounded(value: Any) -> Any:
        if isinstance(value, float):
            return float(f"{value:.4g}")
        if isinstance(value, dict):
            return {k: rounded(v) for k, v in value.items()}
        return value

    lines = [json.dumps(rounded(r), ensure_ascii=False) for r in rows]
    return '{"machine": ' + json.dumps(machine()) + ',\n"rows": [\n' + ",\n".join(lines) + "\n]}\n"


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """Time per element against row length, per layout: softmax and normalize_rows,
    1e6 elements, one thread, float32, on each backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    functions = ("softmax", "normalize_rows")
    present = [b for b in BACKENDS if any(r["backend"] == b for r in rows)]
    fig, axes = plt.subplots(
        len(functions), len(present), figsize=(4.5 * len(present), 7), squeeze=False
    )
    for i, function in enumerate(functions):
        for j, backend in enumerate(present):
            ax = axes[i][j]
            subset = [
                r
                for r in rows
                if r["backend"] == backend
                and r["function"] == function
                and r["threads"] == 1
                and r["dtype"] == "float32"
                and r["elements"] > BATCH
            ]
            for layout in sorted({r["layout"] for r in subset}):
                points = sorted(
                    (
                        r["shape"][0]
                        if r["axis"] == 0
                        else r["shape"][1 if r["axis"] == 1 else -1],
                        r["ns_per_element"],
                    )
                    for r in subset
                    if r["layout"] == layout
                )
                ax.plot(*zip(*points, strict=False), marker="o", label=layout)
            best = sorted(
                (
                    r["shape"][0] if r["axis"] == 0 else r["shape"][1 if r["axis"] == 1 else -1],
                    r["times"][r["best_peer"]] / r["elements"] * 1e9,
                )
                for r in subset
                if r["layout"] == "last axis"
            )
            if best:
                ax.plot(
                    *zip(*best, strict=False),
                    color="black",
                    linestyle="--",
                    label="best peer (last axis)",
                )
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(f"{function} — {backend}", fontsize=10)
            ax.set_xlabel("row length")
            ax.set_ylabel("ns per element")
            if subset:
                ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="a few small cells (CI)")
    parser.add_argument("--backends", nargs="*", choices=BACKENDS)
    parser.add_argument("--dtypes", nargs="*", default=["float32", "float64"])
    parser.add_argument("--threads", nargs="*", type=int, default=[1, 2])
    parser.add_argument("--functions", nargs="*", help="only these operations (default: every one)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args()
    rows = run(
        args.smoke,
        set(args.backends or ()) or None,
        tuple(args.dtypes),
        tuple(args.threads),
        functions=tuple(args.functions) if args.functions else None,
    )
    if args.json:
        args.json.write_text(dump(rows))
    if args.plot:
        plot(rows, args.plot)
    print(summary(rows))
    print()
    print(misses(rows))


if __name__ == "__main__":
    main()
