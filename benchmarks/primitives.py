"""The primitives against their peers, on every backend in backends/.

``python -m benchmarks`` (or ``python -m benchmarks.primitives``): each
public function on each available backend and device, float32 and float64,
at sizes from 10 elements up, measured interleaved with its peers in the
same run — the textbook expression in that backend, SciPy (on NumPy), the
backend's own function where it has one — and with a plain copy of the same
size. Each implementation is reported as its median time [min–max], its
ratio to the best peer (below 1 is faster), and the fraction of the copy's
bandwidth it reaches (the bytes a copy moves in the time it takes).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import arraykit as ak
import backends
from arraykit import _operations as operations

from .timing import machine

CPU_SIZES = (10, 1_000, 100_000, 10_000_000)
GPU_SIZES = (10, 1_000, 100_000, 10_000_000, 100_000_000)
SMALL_ONLY = {
    "dask": 100_000,
    "dask:cluster": 0,  # round trips to worker processes; see benchmarks.out_of_core
    "array_api_strict": 100_000,
    "array_api_strict:device1": 0,
    "numpy:readonly": 0,
}
"""Largest size per backend (0: skip) — graph building and strict checks are not the point."""
ROW = 100  # row length for softmax and normalize_rows


@dataclass
class Case:
    """One function on one backend, dtype and size, with its contenders."""

    function: str
    args: tuple[Any, ...]
    contenders: dict[str, Callable[[], Any]]


def _textbook(xp: Any, function: str, args: tuple[Any, ...]) -> Callable[[], Any]:
    """The textbook expression of ``function`` in the backend's namespace."""
    x = args[0]

    def sigmoid() -> Any:
        return 1.0 / (1.0 + xp.exp(-x))

    def sigmoid_derivative() -> Any:
        s = sigmoid()
        return s * (1.0 - s)

    def softmax() -> Any:
        e = xp.exp(x - xp.max(x, axis=-1, keepdims=True))
        return e / xp.sum(e, axis=-1, keepdims=True)

    def l2_loss() -> Any:
        d = args[0] - args[1]
        return xp.sum(d * d)

    def logsumexp() -> Any:
        m = xp.max(x, axis=-1, keepdims=True)
        return m + xp.log(xp.sum(xp.exp(x - m), axis=-1, keepdims=True))

    def cross_entropy() -> Any:
        target = args[1]
        log_p = x - logsumexp()
        hot = xp.arange(x.shape[-1], dtype=target.dtype) == xp.expand_dims(target, axis=-1)
        return -xp.mean(xp.sum(xp.where(hot, log_p, 0.0), axis=-1))

    def binary_cross_entropy(p: Any) -> Any:
        y = args[1]
        return -xp.mean(y * xp.log(p) + (1.0 - y) * xp.log(1.0 - p))

    forms: dict[str, Callable[[], Any]] = {
        "sigmoid": sigmoid,
        "sigmoid_derivative": sigmoid_derivative,
        "softmax": softmax,
        "normalize_rows": lambda: x / xp.sqrt(xp.sum(x * x, axis=1, keepdims=True)),
        "l1_loss": lambda: xp.sum(xp.abs(args[0] - args[1])),
        "l2_loss": l2_loss,
        "image2vector": lambda: xp.reshape(x, (-1, 1)),
        "softplus": lambda: xp.log(1.0 + xp.exp(x)),
        "log_sigmoid": lambda: xp.log(sigmoid()),
        "logsumexp": lambda: xp.reshape(logsumexp(), x.shape[:-1]),
        "log_softmax": lambda: x - logsumexp(),
        "binary_cross_entropy": lambda: binary_cross_entropy(x),
        "binary_cross_entropy_with_logits": lambda: binary_cross_entropy(sigmoid()),
        "cross_entropy": cross_entropy,
    }
    return forms[function]


def _library_peer(name: str, function: str) -> Callable[..., Any] | None:
    """A library's function named as a peer, taking the arrays (None: torch has none).

    Imported only when its backend is measured (never for other backends).
    """
    library = name.split(".", 1)[0]
    if library in ("scipy", "np"):
        import scipy.special

        table: dict[str, Callable[..., Any]] = {
            "scipy.special.expit": scipy.special.expit,
            "scipy.special.softmax": lambda x: scipy.special.softmax(x, axis=-1),
            "np.linalg.norm": lambda x: x / np.linalg.norm(x, axis=1, keepdims=True),
            "np.logaddexp": lambda x: np.logaddexp(0.0, x),
            "scipy.special.log_expit": scipy.special.log_expit,
            "scipy.special.logsumexp": lambda x: scipy.special.logsumexp(x, axis=-1),
            "scipy.special.log_softmax": lambda x: scipy.special.log_softmax(x, axis=-1),
        }
        return table[name]
    if library == "torch":
        return torch_own(function)
    if library == "jax":
        import jax

        jax_table: dict[str, Callable[..., Any]] = {
            "jax.nn.sigmoid": jax.nn.sigmoid,
            "jax.nn.softmax": jax.nn.softmax,
            "jax.nn.softplus": jax.nn.softplus,
            "jax.nn.log_sigmoid": jax.nn.log_sigmoid,
            "jax.nn.logsumexp": lambda x: jax.nn.logsumexp(x, axis=-1),
            "jax.nn.log_softmax": jax.nn.log_softmax,
        }
        return jax.jit(jax_table[name])
    if library == "optax":
        try:
            import optax
        except ImportError:  # an optional peer: measured where it is installed
            return None
        import jax

        return jax.jit(lambda x, t: optax.softmax_cross_entropy_with_integer_labels(x, t).mean())
    if library == "cupyx":
        import cupyx.scipy.special

        cupy_table: dict[str, Callable[..., Any]] = {
            "cupyx.scipy.special.expit": cupyx.scipy.special.expit,
            "cupyx.scipy.special.softmax": lambda x: cupyx.scipy.special.softmax(x, axis=-1),
        }
        return cupy_table[name]
    raise ValueError(f"no peer named {name!r} in benchmarks/primitives.py")


def _peers(
    backend: backends.Backend, function: str, args: tuple[Any, ...]
) -> dict[str, Callable[[], Any]]:
    """The registry's peers of ``function`` that run on ``backend``: the textbook
    expression in its namespace, and the libraries' own functions on theirs."""
    peers: dict[str, Callable[[], Any]] = {}
    for name in operations.BY_NAME[function].peers:
        if name == "textbook":
            peers[name] = _textbook(backend.namespace, function, args)
            continue
        if name.split(".", 1)[0] not in _PEER_LIBRARIES.get(backend.library, ()):
            continue
        own = _library_peer(name, function)
        if own is not None:
            peers[name] = lambda own=own: own(*args)
    return peers


_PEER_LIBRARIES = {
    "numpy": ("scipy", "np"),
    "torch": ("torch",),
    "jax": ("jax", "optax"),
    "cupy": ("cupyx",),
}
"""Which libraries' peers each backend's arrays go to."""


def torch_own(function: str, reduction: str = "sum") -> Callable[..., Any] | None:
    """torch's own function for a primitive, taking its arrays; None where torch has none.

    sigmoid_derivative's is ``s·(1 − s)`` of ``torch.sigmoid``, the textbook
    form torch's own sigmoid backward uses.
    """
    import torch
    import torch.nn.functional as F

    def derivative(x: Any) -> Any:
        s = torch.sigmoid(x)
        return s * (1 - s)

    own: dict[str, Callable[..., Any]] = {
        "sigmoid": torch.sigmoid,
        "sigmoid_derivative": derivative,
        "softmax": lambda x: torch.softmax(x, dim=-1),
        "normalize_rows": lambda x: F.normalize(x, dim=1),
        "l1_loss": lambda a, b: F.l1_loss(a, b, reduction=reduction),
        "l2_loss": lambda a, b: F.mse_loss(a, b, reduction=reduction),
        "softplus": F.softplus,
        "log_sigmoid": F.logsigmoid,
        "logsumexp": lambda x: torch.logsumexp(x, dim=-1),
        "log_softmax": lambda x: torch.log_softmax(x, dim=-1),
        "binary_cross_entropy": lambda p, y: F.binary_cross_entropy(p, y, reduction=reduction),
        "binary_cross_entropy_with_logits": lambda z, y: F.binary_cross_entropy_with_logits(
            z, y, reduction=reduction
        ),
        "cross_entropy": lambda x, t: F.cross_entropy(x, t, reduction=reduction),
    }
    return own.get(function)


def _inputs(backend: backends.Backend, function: str, size: int, dtype: str) -> tuple[Any, ...]:
    """The registry's arguments of ``function`` for about ``size`` elements (rows of
    ``ROW``), drawn from a normal distribution (its domain's where it has one:
    probabilities, labels, class indices)."""
    rng = np.random.default_rng(0)
    op = operations.BY_NAME[function]
    if function == "image2vector":
        shapes = [(max(size // 100, 1), min(size, 10), 10 if size >= 100 else 1)]
    else:
        shapes = op.shapes(size, ROW)
    draws = [rng.normal(size=shape) * (4 if i == 0 else 1) for i, shape in enumerate(shapes)]
    return tuple(
        backend.asarray(a, dtype if a.dtype.kind == "f" else None) for a in op.arguments(draws)
    )


def _copy(backend: backends.Backend, x: Any) -> Callable[[], Any]:
    if backend.library in ("numpy", "cupy", "dask"):
        return x.copy  # type: ignore[no-any-return]
    if backend.library == "torch":
        return x.clone
    if backend.library == "jax":
        import jax.numpy as jnp

        return lambda: jnp.array(x, copy=True)
    return lambda: backend.namespace.asarray(x, copy=True)


def case(backend: backends.Backend, function: str, size: int, dtype: str) -> Case:
    args = _inputs(backend, function, size, dtype)
    ours = getattr(ak, function)  # looked up once, as the peers' functions are
    contenders: dict[str, Callable[[], Any]] = {"arraykit": lambda: ours(*args)}
    contenders.update(_peers(backend, function, args))
    contenders["copy"] = _copy(backend, args[0])
    return Case(function, args, contenders)


def interleaved(
    case: Case, backend: backends.Backend, repeats: int, budget: float
) -> dict[str, dict[str, float]]:
    """Time every contender, round-robin, ``repeats`` times; per call, in seconds."""
    finish = backend.compute
    loops = {}
    for name, fn in case.contenders.items():
        finish(fn())  # warm-up (and JAX compilation)
        # The fastest of three calls: one call held up by the machine would
        # leave a contender a loop or two per sample, and its median noisy.
        once = 1.0
        for _ in range(3):
            start = time.perf_counter()
            finish(fn())
            once = min(once, time.perf_counter() - start)
        loops[name] = max(1, min(10_000, int(budget / max(once, 1e-7))))
    samples: dict[str, list[float]] = {name: [] for name in case.contenders}
    for _ in range(repeats):
        for name, fn in case.contenders.items():
            n = loops[name]
            start = time.perf_counter()
            for _ in range(n - 1):
                fn()
            finish(fn())
            samples[name].append((time.perf_counter() - start) / n)
    return {
        name: {"median": statistics.median(v), "low": min(v), "high": max(v), "loops": loops[name]}
        for name, v in samples.items()
    }


FUNCTIONS = tuple(op.name for op in operations.OPERATIONS)
"""The registry's operations."""


def run(
    sizes_cpu: tuple[int, ...],
    repeats: int,
    budget: float,
    functions: tuple[str, ...],
    only: set[str] | None,
) -> list[dict[str, Any]]:
    rows = []
    measured = [i for i in backends.BACKENDS if SMALL_ONLY.get(i) != 0 and (not only or i in only)]
    for backend in backends.available(measured):
        sizes = GPU_SIZES if backend.gpu else sizes_cpu
        limit = SMALL_ONLY.get(backend.id, max(sizes))
        for dtype in ("float32", "float64"):
            for function in functions:
                for size in sizes:
                    if size > limit:
                        continue
                    result = interleaved(
                        case(backend, function, size, dtype), backend, repeats, budget
                    )
                    peers = [k for k in result if k not in ("arraykit", "copy")]
                    best = min((result[k]["median"] for k in peers), default=float("nan"))
                    for name, timing in result.items():
                        rows.append(
                            {
                                "backend": backend.id,
                                "dtype": dtype,
                                "function": function,
                                "size": size,
                                "implementation": name,
                                **timing,
                                "vs_best_peer": timing["median"] / best if peers else None,
                                "copy_fraction": result["copy"]["median"] / timing["median"],
                            }
                        )
                    ours = result["arraykit"]
                    ratio = ours["median"] / best if peers else float("nan")
                    copy = result["copy"]["median"]
                    print(
                        f"{backend.id:10} {dtype:8} {function:19} {size:>10,}"
                        f"  arraykit {_fmt(ours['median'])}  best peer {_fmt(best)}"
                        f"  ratio {ratio:5.2f}  copy {_fmt(copy)}"
                        f"  ({copy / ours['median']:.0%} of copy)",
                        flush=True,
                    )
    return rows


def _fmt(seconds: float) -> str:
    if seconds != seconds:
        return "     -   "
    for unit, scale in (("s ", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:7.3g} {unit}"
    return f"{seconds / 1e-9:7.3g} ns"


def plot(rows: list[dict[str, Any]], directory: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for backend_id in sorted({r["backend"] for r in rows}):
        subset = [r for r in rows if r["backend"] == backend_id and r["dtype"] == "float64"]
        functions = [f for f in FUNCTIONS if any(r["function"] == f for r in subset)]
        if not functions:
            continue
        fig, axes = plt.subplots(2, 4, figsize=(16, 7.5), dpi=90)
        for ax, function in zip(axes.flat, functions, strict=False):
            for name in dict.fromkeys(
                r["implementation"] for r in subset if r["function"] == function
            ):
                points = sorted(
                    (r["size"], r["median"])
                    for r in subset
                    if r["function"] == function and r["implementation"] == name
                )
                style = {
                    "arraykit": dict(lw=2.5, color="black"),
                    "copy": dict(ls=":", color="grey"),
                }.get(name, {})
                ax.loglog(*zip(*points, strict=True), marker="o", ms=3, label=name, **style)
            ax.set_title(function)
            ax.set_xlabel("elements")
            ax.set_ylabel("seconds per call")
            ax.legend(fontsize=7)
        for ax in list(axes.flat)[len(functions) :]:
            ax.axis("off")
        fig.suptitle(f"arraykit against its peers on {backend_id}, float64 (median per call)")
        fig.tight_layout()
        path = directory / f"benchmark-{backend_id.replace(':', '-')}.png"
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="sizes up to 1e5, 3 repeats")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument(
        "--budget", type=float, default=0.02, help="seconds per sample (small sizes loop)"
    )
    parser.add_argument("--functions", nargs="*", default=list(FUNCTIONS), choices=FUNCTIONS)
    parser.add_argument("--backends", nargs="*", help="backend ids (default: all available)")
    parser.add_argument(
        "--sizes", nargs="*", type=int, help=f"CPU sizes in elements (default: {CPU_SIZES})"
    )
    parser.add_argument("--json", metavar="FILE", help="write the measurements as JSON")
    parser.add_argument("--plots", metavar="DIR", help="write one plot per backend into DIR")
    args = parser.parse_args(argv)
    sizes = tuple(args.sizes) if args.sizes else CPU_SIZES[:-1] if args.quick else CPU_SIZES
    repeats = 3 if args.quick else args.repeats
    rows = run(sizes, repeats, args.budget, tuple(args.functions), set(args.backends or []) or None)
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine(), "rows": rows}, indent=1))
        print(f"written to {args.json}")
    if args.plots:
        for path in plot(rows, Path(args.plots)):
            print(f"plot written to {path}")


if __name__ == "__main__":
    main()
