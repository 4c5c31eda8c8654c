"""The classic regression experiment: arraykit against the classic loops.

Run ``python -m benchmarks.regression`` (``--quick`` for fewer steps). It
times, side by side in one run, 100,000 steps of gradient descent and of
Adagrad from the classic start, and the 100 × 100 loss surface:

* the classic notebook's loops: pure Python over the ten points, and NumPy
  with one vectorised gradient per step;
* ``arraykit.regression.fit_line`` on every available backend (closed form
  for gradient descent; for Adagrad the two-number loop on the host, in C
  where the kernels were built, fed by the moments computed on the backend);
* the generic drivers ``ak.run_gradient_descent`` / ``ak.run_adagrad`` stepping a
  user gradient written with the array namespace;
* ``loss_surface`` against the triple loop.

Each row reports the median [min–max] and the speed-up over the classic
pure-Python loop. Results go to stdout and, with ``--json``, to a file.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np

import arraykit as ak
import backends
from arraykit import regression

from .timing import Timing, machine, measure

X = list(regression.CLASSIC_X)
Y = list(regression.CLASSIC_Y)
START = regression.CLASSIC_START
STEPPED_ON = ("numpy", "torch:cpu", "torch:cuda", "cupy", "jax:cpu", "jax:cuda")
"""Backends on which 100,000 generic driver steps are worth timing (not Dask, not strict)."""


def classic_python(lr: float, steps: int, adagrad: bool) -> tuple[float, float]:
    """The notebook's loop: Python floats, a loop over the points each step."""
    b, w = START
    sum_b = sum_w = 0.0
    n = len(X)
    for _ in range(steps):
        grad_b = grad_w = 0.0
        for xi, yi in zip(X, Y, strict=True):
            r = yi - b - w * xi
            grad_b -= 2.0 * r
            grad_w -= 2.0 * r * xi
        grad_b /= n
        grad_w /= n
        if adagrad:
            sum_b += grad_b * grad_b
            sum_w += grad_w * grad_w
            b -= lr / math.sqrt(sum_b) * grad_b
            w -= lr / math.sqrt(sum_w) * grad_w
        else:
            b -= lr * grad_b
            w -= lr * grad_w
    return b, w


def classic_numpy(lr: float, steps: int, adagrad: bool, path: bool = False) -> Any:
    """The vectorised variant: one NumPy gradient per step, Python scalars for b, w.

    Returns the final (b, w), or with ``path`` every iterate as an array.
    """
    x, y = np.array(X), np.array(Y)
    b, w = START
    sum_b = sum_w = 0.0
    iterates = [(b, w)]
    for _ in range(steps):
        r = y - b - w * x
        grad_b, grad_w = -2.0 * np.mean(r), -2.0 * np.mean(r * x)
        if adagrad:
            sum_b += grad_b**2
            sum_w += grad_w**2
            b -= lr / np.sqrt(sum_b) * grad_b
            w -= lr / np.sqrt(sum_w) * grad_w
        else:
            b -= lr * grad_b
            w -= lr * grad_w
        if path:
            iterates.append((b, w))
    return np.array(iterates) if path else (float(b), float(w))


def classic_surface(b: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The notebook's triple loop over the grid and the points."""
    z = np.zeros((len(w), len(b)))
    for i in range(len(b)):
        for j in range(len(w)):
            total = 0.0
            for xi, yi in zip(X, Y, strict=True):
                total += (yi - b[i] - w[j] * xi) ** 2
            z[j][i] = total / len(X)
    return z


def _how(adagrad: bool) -> str:
    """How fit_line computes a concrete float64 run."""
    if not adagrad:
        return "closed form"
    from arraykit import _adagrad

    return "host loop, " + ("C" if _adagrad.compiled is not None else "Python floats")


def _driver(backend: backends.Backend, optimizer: str, lr: float, steps: int) -> Callable[[], Any]:
    xp = backend.namespace
    x, y = backend.asarray(np.array(X)), backend.asarray(np.array(Y))
    start = backend.asarray(np.array(START))

    def grad(theta: Any) -> Any:
        r = y - theta[0] - theta[1] * x
        return xp.stack([-2.0 * xp.mean(r), -2.0 * xp.mean(r * x)])

    run = ak.run_adagrad if optimizer == "adagrad" else ak.run_gradient_descent
    return lambda: run(grad, start, lr=lr, steps=steps).params


class Report:
    """Rows of one run, printed as they come, each with its speed-up over a baseline."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def add(
        self, task: str, name: str, timing: Timing, baseline: Timing | None, note: str = ""
    ) -> None:
        ratio = baseline.median / timing.median if baseline else 1.0
        self.rows.append(
            {
                "task": task,
                "implementation": name,
                **timing.as_dict(),
                "speedup": ratio,
                "note": note,
            }
        )
        print(f"  {name:<48} {timing!s:<30} {ratio:>8.1f}x  {note}", flush=True)


def optimizer_rows(report: Report, optimizer: str, lr: float, steps: int, repeats: int) -> None:
    adagrad = optimizer == "adagrad"
    task = f"{'Adagrad' if adagrad else 'gradient descent'}, lr {lr:g}, {steps:,} steps"
    print(task)
    base = measure(lambda: classic_python(lr, steps, adagrad), repeats=repeats, warmup=0)
    report.add(task, "classic loop (Python floats)", base, None)
    vectorised = measure(lambda: classic_numpy(lr, steps, adagrad), repeats=repeats, warmup=0)
    report.add(task, "classic loop (NumPy gradient per step)", vectorised, base)
    for backend in _local_backends():
        x, y = backend.asarray(np.array(X)), backend.asarray(np.array(Y))

        def fit(x: Any = x, y: Any = y) -> Any:
            return regression.fit_line(
                x, y, optimizer=optimizer, lr=lr, steps=steps, start=START
            ).params

        timing = measure(fit, repeats=repeats, warmup=1, finish=backend.compute)
        report.add(task, f"fit_line on {backend.id} ({_how(adagrad)})", timing, base)
    for backend in _local_backends():
        if backend.id not in STEPPED_ON:
            continue
        compiled = backend.library == "jax"
        timing = measure(
            _driver(backend, optimizer, lr, steps),
            repeats=5 if compiled else repeats,
            warmup=1 if compiled else 0,
            finish=backend.compute,
        )
        note = "data gradient each step" + (", lax.scan" if compiled else "")
        report.add(
            task,
            f"ak.run_{'adagrad' if adagrad else 'gradient_descent'} driver on {backend.id}",
            timing,
            base,
            note,
        )


def _local_backends() -> list[backends.Backend]:
    """Backends computing in this process: a cluster's round trips would be
    all these small problems measure (the cluster has benchmarks.out_of_core)."""
    return backends.available(remote=False)


def surface_rows(report: Report, repeats: int) -> None:
    task = "loss surface, 100 x 100 grid"
    print(task)
    b_grid, w_grid = np.linspace(-200, -100, 100), np.linspace(-5, 5, 100)
    base = measure(lambda: classic_surface(b_grid, w_grid), repeats=repeats, warmup=0)
    report.add(task, "classic triple loop", base, None)
    for backend in _local_backends():
        args = [backend.asarray(a) for a in (np.array(X), np.array(Y), b_grid, w_grid)]
        timing = measure(
            lambda args=args: regression.loss_surface(*args),
            repeats=20,
            warmup=2,
            finish=backend.compute,
        )
        report.add(task, f"loss_surface on {backend.id}", timing, base)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="10,000 steps, one repeat of the slow loops"
    )
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    steps = 10_000 if args.quick else 100_000
    repeats = 1 if args.quick else 3
    report = Report()
    for optimizer, lr in (("gd", 1e-6), ("adagrad", 1.0)):
        optimizer_rows(report, optimizer, lr, steps, repeats)
    surface_rows(report, repeats)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"machine": machine(), "steps": steps, "rows": report.rows}, handle, indent=1)
        print(f"written to {args.json}")


if __name__ == "__main__":
    main()
