"""The ``arraykit`` command: ``arraykit regression`` runs the classic experiment."""

from __future__ import annotations

import argparse
import importlib
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import numpy as np

from . import regression
from .drivers import OptimizeResult

# What --backend accepts: the module holding each library's array-API
# namespace. (The test registry in backends/ is not installed with arraykit.)
NAMESPACES = {
    "numpy": "array_api_compat.numpy",
    "torch": "array_api_compat.torch",
    "cupy": "array_api_compat.cupy",
    "jax": "jax.numpy",
    "dask": "array_api_compat.dask.array",
    "array_api_strict": "array_api_strict",
}
EXTRAS = {
    "torch": "torch",
    "cupy": "cupy",
    "jax": "jax",
    "dask": "dask",
    "array_api_strict": "strict",
}

CLASSIC_RUNS = (("gd", 1e-7), ("gd", 1e-6), ("gd", 1e-5), ("adagrad", 1.0))
CLASSIC_STEPS = 100_000
START = regression.CLASSIC_START


class UsageError(Exception):
    """A bad option or an unusable backend: one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _positive(kind: type) -> Any:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not value > 0 or (kind is float and not math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="arraykit", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = commands.add_parser(
        "regression",
        help="fit y = b + w·x to the classic ten points by gradient descent and Adagrad",
        description="With no options: gradient descent at lr 1e-7, 1e-6 and 1e-5 and Adagrad "
        "at lr 1, 100,000 steps each, from (b, w) = (-120, -4). With --optimizer or --lr: "
        "one run.",
    )
    run.add_argument("--backend", choices=sorted(NAMESPACES), default="numpy")
    run.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    run.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    run.add_argument("--optimizer", choices=["gd", "adagrad"])
    run.add_argument(
        "--lr", type=_positive(float), help="learning rate (default: 1e-6 for gd, 1 for adagrad)"
    )
    run.add_argument("--steps", type=_positive(int), default=CLASSIC_STEPS)
    run.add_argument(
        "--print-every",
        type=_positive(int),
        metavar="N",
        help="print 'Step i, w, b, Loss' every N steps, as the classic notebook does",
    )
    run.add_argument(
        "--plot", metavar="FILE.png", help="draw the loss surface and the trajectories"
    )
    return parser


@dataclass
class Target:
    """Where the command computes: a namespace, a device and a dtype."""

    xp: Any
    device: Any
    dtype: Any

    def to_numpy(self, array: Any) -> np.ndarray:
        if hasattr(array, "compute"):  # Dask
            array = array.compute()
        if hasattr(array, "detach"):  # PyTorch
            array = array.detach().cpu()
        elif hasattr(array, "get") and not isinstance(array, np.ndarray):  # CuPy
            array = array.get()
        return np.from_dlpack(array) if hasattr(array, "__dlpack__") else np.asarray(array)


def open_backend(name: str, device: str, dtype: str) -> Target:
    """The namespace, device and dtype for ``--backend/--device/--dtype``."""
    try:
        importlib.import_module(name)  # the library itself: is it installed?
        if name == "jax":
            import jax

            jax.config.update("jax_enable_x64", True)  # float64 must be real float64
        xp = importlib.import_module(NAMESPACES[name])
    except ImportError as exc:
        raise UsageError(
            f"backend {name!r} is not installed ({exc}); pip install 'arraykit[{EXTRAS[name]}]'"
        ) from None
    if device == "cuda":
        where = _cuda_device(name)
    elif name == "cupy":
        raise UsageError("cupy runs on a GPU only: use --device cuda")
    elif name == "jax":
        import jax

        where = jax.devices("cpu")[0]
    elif name == "torch":
        import torch

        where = torch.device("cpu")
    else:
        where = None
    return Target(xp, where, getattr(xp, dtype))


def _cuda_device(name: str) -> Any:
    try:
        if name == "torch":
            import torch

            device = torch.device("cuda")
            torch.zeros(1, device=device).cpu()  # is_built() is not a GPU: allocate
            return device
        if name == "cupy":
            import cupy

            cupy.zeros(1).get()
            return cupy.cuda.Device()
        if name == "jax":
            import jax

            return jax.devices("cuda")[0]
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(
            f"--device cuda needs a CUDA GPU, and {name} found none ({reason})"
        ) from None
    raise UsageError(f"backend {name!r} runs on the CPU only: use --device cpu")


class ProgressBar:
    """A bar on stderr, for runs longer than a second, when stderr is a terminal."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.started = time.perf_counter()
        self.shown = False
        self.enabled = sys.stderr.isatty()

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or time.perf_counter() - self.started < 1.0:
            return
        width = 30
        filled = int(width * done / total)
        sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        sys.stderr.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\r" + " " * 79 + "\r")
            sys.stderr.flush()


@dataclass
class Run:
    optimizer: str
    lr: float
    result: OptimizeResult
    seconds: float
    history: np.ndarray
    losses: np.ndarray

    @property
    def label(self) -> str:
        name = "gradient descent" if self.optimizer == "gd" else "Adagrad"
        return f"{name}, lr {self.lr:g}"


def fit(backend: Target, optimizer: str, lr: float, steps: int, x: Any, y: Any) -> Run:
    bar = ProgressBar(f"{optimizer} lr {lr:g}")
    started = time.perf_counter()
    result = regression.fit_line(
        x, y, optimizer=optimizer, lr=lr, steps=steps, start=START, progress=bar
    )
    # Back to the host once, after the run: nothing left the device during it.
    history = backend.to_numpy(result.history)
    losses = backend.to_numpy(result.losses)
    seconds = time.perf_counter() - started
    bar.close()
    return Run(optimizer, lr, result, seconds, history, losses)


def print_steps(run: Run, every: int) -> None:
    # The classic notebook's line: w and b after step i, and the loss at the
    # point where step i's gradient was taken.
    for i in range(0, run.result.steps, every):
        b, w = run.history[i + 1]
        print("Step %i, w: %0.4f, b: %.4f, Loss: %.4f" % (i, w, b, run.losses[i]))  # noqa: UP031


def regression_command(args: argparse.Namespace) -> int:
    backend = open_backend(args.backend, args.device, args.dtype)
    x, y = regression.classic_data(xp=backend.xp, device=backend.device, dtype=backend.dtype)
    optimum = backend.to_numpy(regression.least_squares(x, y))
    single = args.optimizer is not None or args.lr is not None
    if single:
        optimizer = args.optimizer or "gd"
        lr = args.lr if args.lr is not None else (1e-6 if optimizer == "gd" else 1.0)
        plan = [(optimizer, lr)]
    else:
        plan = list(CLASSIC_RUNS)
    runs = [fit(backend, optimizer, lr, args.steps, x, y) for optimizer, lr in plan]
    for run in runs:
        if args.print_every:
            print(f"# {run.label}")
            print_steps(run, args.print_every)
    print(
        f"backend {args.backend} ({args.device}, {args.dtype}); {args.steps} steps "
        f"from (b, w) = {regression.CLASSIC_START}"
    )
    print(f"closed-form optimum: b* = {optimum[0]:.4f}, w* = {optimum[1]:.4f}")
    header = f"{'run':<28} {'b':>10} {'w':>8} {'loss':>12} {'distance':>10} {'time':>9}"
    print(header)
    print("-" * len(header))
    for run in runs:
        b, w = run.history[-1]
        loss = run.losses[-1]
        distance = math.hypot(b - optimum[0], w - optimum[1])
        note = "  (diverged)" if run.result.diverged else ""
        print(
            f"{run.label:<28} {b:>10.4f} {w:>8.4f} {loss:>12.4f} {distance:>10.4f} "
            f"{run.seconds * 1e3:>7.1f}ms{note}"
        )
    if args.plot:
        plot(args.plot, runs, x, y, optimum, backend)
        print(f"figure written to {args.plot}")
    return 0


def plot(
    path: str, runs: Sequence[Run], x: Any, y: Any, optimum: np.ndarray, backend: Target
) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UsageError("--plot needs matplotlib: pip install 'arraykit[plot]'") from None
    b_grid = np.linspace(-200, -100, 201)
    w_grid = np.linspace(-5, 5, 201)
    xp = backend.xp
    z = backend.to_numpy(
        regression.loss_surface(
            x,
            y,
            xp.asarray(b_grid, dtype=backend.dtype, **_on(backend)),
            xp.asarray(w_grid, dtype=backend.dtype, **_on(backend)),
        )
    )
    fig, ax = plt.subplots(figsize=(8, 6), dpi=120)
    filled = ax.contourf(b_grid, w_grid, np.log10(z), levels=50, cmap="viridis", alpha=0.8)
    fig.colorbar(filled, ax=ax, label="log10 L(b, w)")
    colours = {1e-7: "#d62728", 1e-6: "#1f77b4", 1e-5: "#2ca02c"}
    # Adagrad underneath: the gradient-descent runs crawl along the same
    # valley floor and would be hidden under it.
    for run in sorted(runs, key=lambda r: r.optimizer != "adagrad"):
        adagrad = run.optimizer == "adagrad"
        trail = run.history[np.isfinite(run.history).all(axis=1)]
        keep = np.unique(np.geomspace(1, len(trail), 400).astype(int) - 1)  # log-spaced samples
        ax.plot(
            trail[keep, 0],
            trail[keep, 1],
            "-",
            lw=1.5 if adagrad else 3.0,
            color="black" if adagrad else colours.get(run.lr, "#9467bd"),
            zorder=2 if adagrad else 3,
            label=f"{run.label}: ends at ({trail[-1, 0]:.1f}, {trail[-1, 1]:.2f})",
        )
        ax.plot(
            trail[-1, 0],
            trail[-1, 1],
            "o",
            ms=6,
            color="black" if adagrad else colours.get(run.lr, "#9467bd"),
            zorder=4,
        )
    ax.plot(
        [optimum[0]],
        [optimum[1]],
        "x",
        ms=14,
        mew=3,
        color="orange",
        label=f"optimum ({optimum[0]:.1f}, {optimum[1]:.2f})",
    )
    ax.set_xlim(-200, -100)
    ax.set_ylim(-5, 5)
    ax.set_xlabel("b (intercept)")
    ax.set_ylabel("w (slope)")
    ax.set_title(f"y = b + w·x on the classic data: {CLASSIC_STEPS:,} steps from (-120, -4)")
    ax.legend(loc="lower left", fontsize=8, framealpha=0.9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _on(backend: Target) -> dict[str, Any]:
    return {"device": backend.device} if backend.device is not None else {}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command == "regression":
            return regression_command(args)
    except UsageError as exc:
        print(f"arraykit: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0
