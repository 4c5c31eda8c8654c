"""The arraykit command: `arraykit regression` and `arraykit classify` run the classic
experiments.

Every bad option is one line on stderr and exit status 2, found before any
computation; Ctrl-C is one line and exit status 130 at any moment, the
imports included (so NumPy and the library are imported inside
:func:`main`); a closed standard output (``| head``) ends the command
quietly, with the status of a process that SIGPIPE ended (141).
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import __version__, classify_command
from ._command import (
    Parser,
    ProgressBar,
    Target,
    UsageError,
    add_backend_options,
    check_plot_path,
    install_hint,
    on,
    open_backend,
    positive,
)
from ._interrupt import INTERRUPTED, MESSAGE, from_ctrl_c

if TYPE_CHECKING:
    import numpy as np

    from .drivers import OptimizeResult

CLASSIC_RUNS = (("gd", 1e-7), ("gd", 1e-6), ("gd", 1e-5), ("adagrad", 1.0))
CLASSIC_STEPS = 100_000
CLOSED_PIPE = 141
"""Exit status when standard output was closed: 128 + SIGPIPE."""


DESCRIPTION = (
    "The classic first exercises of machine learning on any array library. "
    "'arraykit regression' fits y = b + w*x to the classic ten points; 'arraykit classify' "
    "trains logistic and softmax regression on the handwritten digits."
)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="arraykit", description=DESCRIPTION)
    parser.add_argument("-V", "--version", action="version", version=f"arraykit {__version__}")
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=Parser
    )
    run = commands.add_parser(
        "regression",
        help="fit y = b + w·x to the classic ten points by gradient descent and Adagrad",
        description="With no options: gradient descent at lr 1e-7, 1e-6 and 1e-5 and Adagrad "
        "at lr 1, 100,000 steps each, from (b, w) = (-120, -4), the classic experiment. With "
        "--optimizer or --lr: one run.",
    )
    add_backend_options(run)
    run.add_argument(
        "--optimizer",
        choices=["gd", "adagrad"],
        help="one run of this optimizer (default: the four classic runs)",
    )
    run.add_argument(
        "--lr",
        type=positive(float),
        help="learning rate of the one run (default: 1e-6 for gd, 1 for adagrad)",
    )
    run.add_argument(
        "--steps",
        type=positive(int),
        default=CLASSIC_STEPS,
        help="steps of each run (default: %(default)s)",
    )
    run.add_argument(
        "--gradient",
        choices=["mean", "sum"],
        default="mean",
        help="the loss whose gradient is followed: 'mean', the mean squared error, or 'sum', "
        "the sum of squared errors, as the classic notebook does, so that a learning rate "
        "means what it means there: with 'sum' the gradient is 10 times larger on the ten "
        "points, and lr 1e-8 steps as 'mean' does with lr 1e-7 (Adagrad is almost unchanged: "
        "it divides by the gradients' size) (default: %(default)s)",
    )
    run.add_argument(
        "--print-every",
        type=positive(int),
        metavar="N",
        help="print 'Step i, w, b, Loss' every N steps, as the classic notebook does "
        "(default: not printed)",
    )
    run.add_argument(
        "--plot",
        metavar="FILE",
        help="draw the loss surface and the trajectories into FILE (.png, .pdf, .svg, ...; "
        "default: no figure)",
    )
    classify_command.add_parser(commands)
    return parser


BYTES_PER_STEP = 3 * 8 * 3
"""Memory a run's step takes: b, w and the loss in float64, and room for the
temporaries that compute them."""


def check_arguments(args: argparse.Namespace) -> None:
    """Everything about the options that can fail, before anything is computed."""
    if args.steps + 1 > 2**53:  # the closed form indexes steps exactly in float64
        raise UsageError(f"argument --steps: at most 2**53 - 1, got {args.steps}")
    runs = 1 if args.optimizer is not None or args.lr is not None else len(CLASSIC_RUNS)
    needed = runs * (args.steps + 1) * BYTES_PER_STEP
    memory = _physical_memory()
    if memory is not None and needed > memory / 2:
        raise UsageError(
            f"argument --steps: {args.steps} steps would keep {needed / 2**30:.3g} GiB of "
            f"history, more than half this machine's {memory / 2**30:.3g} GiB; use fewer"
        )
    if args.plot is not None:
        check_plot_path(args.plot)


def _physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


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


def fit(
    backend: Target,
    optimizer: str,
    lr: float,
    steps: int,
    x: Any,
    y: Any,
    gradient: str = "mean",
) -> Run:
    from . import regression

    rate, options = mean_convention(optimizer, lr, gradient, len(regression.CLASSIC_X))
    bar = ProgressBar(f"{optimizer} lr {lr:g}")
    started = time.perf_counter()
    try:
        result = regression.fit_line(
            x,
            y,
            optimizer=optimizer,
            lr=rate,
            steps=steps,
            start=regression.CLASSIC_START,
            progress=bar,
            **options,
        )
        # Back to the host once, after the run: nothing left the device during it.
        history = backend.to_numpy(result.history)
        losses = backend.to_numpy(result.losses)
    finally:
        bar.close()  # the progress line is cleared, also on Ctrl-C
    seconds = time.perf_counter() - started
    return Run(optimizer, lr, result, seconds, history, losses)


def mean_convention(
    optimizer: str, lr: float, gradient: str, points: int
) -> tuple[float, dict[str, Any]]:
    """The learning rate (and Adagrad's options) that follow the mean loss as ``gradient`` asks.

    The sum of squared errors is ``points`` times the mean, and so is its
    gradient: gradient descent at rate lr on the sum steps as it does at
    ``points·lr`` on the mean. Adagrad divides by the root of its summed
    squared gradients, so the factor cancels but in ``eps``, which is added
    to that root: ``eps / points`` on the mean is ``eps`` on the sum.
    """
    if gradient == "mean":
        return lr, {}
    if optimizer == "gd":
        return lr * points, {}
    from . import optim

    default_eps = inspect.signature(optim.adagrad).parameters["eps"].default
    return lr, {"eps": default_eps / points}


def print_steps(run: Run, every: int) -> None:
    # The classic notebook's line: w and b after step i, and the loss at the
    # point where step i's gradient was taken.
    for i in range(0, run.result.steps, every):
        b, w = run.history[i + 1]
        print("Step %i, w: %0.4f, b: %.4f, Loss: %.4f" % (i, w, b, run.losses[i]))  # noqa: UP031


def number(value: float, width: int, decimals: int = 4) -> str:
    """``value`` in ``width`` characters: fixed-point while it fits, else in exponent form."""
    text = f"{value:>{width}.{decimals}f}"
    if len(text) > width:
        text = f"{value:>{width}.{max(decimals - 1, 1)}e}"
    return text


def regression_command(args: argparse.Namespace) -> int:
    from . import regression

    check_arguments(args)
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
    runs = [fit(backend, optimizer, lr, args.steps, x, y, args.gradient) for optimizer, lr in plan]
    for run in runs:
        if args.print_every:
            print(f"# {run.label}")
            print_steps(run, args.print_every)
    convention = "" if args.gradient == "mean" else "; gradient of the sum of squared errors"
    print(
        f"backend {args.backend} ({args.device}, {args.dtype}); {args.steps} steps "
        f"from (b, w) = {regression.CLASSIC_START}{convention}"
    )
    print(f"closed-form optimum: b* = {optimum[0]:.4f}, w* = {optimum[1]:.4f}")
    header = f"{'run':<28} {'b':>10} {'w':>10} {'loss':>12} {'distance':>10} {'time':>9}"
    print(header)
    print("-" * len(header))
    for run in runs:
        b, w = run.history[-1]
        loss = run.losses[-1]
        distance = math.hypot(b - optimum[0], w - optimum[1])
        note = f"  (diverged at step {run.result.steps:,})" if run.result.diverged else ""
        print(
            f"{run.label:<28} {number(b, 10)} {number(w, 10)} {number(loss, 12)} "
            f"{number(distance, 10)} {run.seconds * 1e3:>7.1f}ms{note}"
        )
    if args.plot:
        plot(args.plot, runs, x, y, optimum, backend, args.steps)
        print(f"figure written to {args.plot}")
    return 0


def plot(
    path: str,
    runs: Sequence[Run],
    x: Any,
    y: Any,
    optimum: np.ndarray,
    backend: Target,
    steps: int = CLASSIC_STEPS,
) -> None:
    """The figure: the runs' paths over the loss surface, and their w and b step by step.

    The paths share their first stretch (straight up the slope in w, where
    the gradient is steepest) and then creep along the valley floor at
    speeds a thousand times apart, so no one panel can show them all: beside
    the surface, w and b against the step on a log scale separate every run,
    and show the oscillation of the largest rate.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UsageError(f"--plot needs matplotlib; {install_hint('plot')}") from None
    import numpy as np

    from . import regression

    b_range, w_range = (-200.0, -100.0), (-5.0, 8.0)
    b_grid = np.linspace(*b_range, 201)
    w_grid = np.linspace(*w_range, 261)
    xp = backend.xp
    z = backend.to_numpy(
        regression.loss_surface(
            x,
            y,
            xp.asarray(b_grid, dtype=backend.dtype, **on(backend)),
            xp.asarray(w_grid, dtype=backend.dtype, **on(backend)),
        )
    )
    fig = plt.figure(figsize=(13, 6.2), dpi=110, layout="constrained")
    grid = fig.add_gridspec(2, 2, width_ratios=(1.45, 1))
    ax = fig.add_subplot(grid[:, 0])
    ax_w, ax_b = fig.add_subplot(grid[0, 1]), fig.add_subplot(grid[1, 1])
    # Grey, so that the runs' colours stand out; white along the valley floor.
    filled = ax.contourf(b_grid, w_grid, np.log10(z), levels=40, cmap="Greys", alpha=0.5)
    fig.colorbar(filled, ax=ax, label="log10 L(b, w)", location="left", pad=0.02)
    b0, w0 = regression.CLASSIC_START
    for run in sorted(runs, key=_draw_order):
        style = _style(run)
        trail = run.history[np.isfinite(run.history).all(axis=1)]
        if run.result.diverged:
            ending = f"diverged at step {run.result.steps:,}"
        else:
            ending = f"ends at ({trail[-1, 0]:.1f}, {trail[-1, 1]:.2f})"
        label = f"{run.label}: {ending}"
        # Every step while they are few (the swings of a large rate), then
        # log-spaced ones: the paths' shapes at a few thousand points.
        keep = np.unique(
            np.concatenate([np.arange(min(len(trail), 60)), np.geomspace(1, len(trail), 2000)])
        ).astype(int)
        keep = np.unique(np.minimum(keep, len(trail) - 1))
        ax.plot(trail[keep, 0], trail[keep, 1], label=label, **style)
        ax.plot(trail[-1, 0], trail[-1, 1], "o", ms=8, mec="white", color=style["color"], zorder=8)
        recorded = np.arange(len(trail)) + 1  # step + 1, on a log axis
        for panel, column in ((ax_w, 1), (ax_b, 0)):
            panel.plot(recorded[keep], trail[keep, column], **_thin(style))
    ax.plot(
        [b0], [w0], "s", ms=9, color="black", mfc="white", mew=2, zorder=9,
        label=f"start ({b0:g}, {w0:g})",
    )  # fmt: skip
    ax.plot(
        [optimum[0]], [optimum[1]], "*", ms=17, mec="white", color="black", zorder=9,
        label=f"least-squares optimum ({optimum[0]:.1f}, {optimum[1]:.2f})",
    )  # fmt: skip
    ax.set_xlim(*b_range)
    ax.set_ylim(*w_range)
    ax.set_xlabel("b (intercept)")
    ax.set_ylabel("w (slope)")
    ax.set_title("the runs over the loss surface")
    ax.legend(loc="lower left", fontsize=8.5, framealpha=0.95)
    for panel, name, value in ((ax_w, "w", optimum[1]), (ax_b, "b", optimum[0])):
        panel.axhline(value, color="black", lw=0.8, ls=":", zorder=1)
        panel.set_xscale("log")
        panel.set_xlim(1, max(steps, 10) + 1)
        panel.set_ylabel(name)
        panel.grid(True, which="major", alpha=0.3)
    ax_w.set_ylim(*w_range)
    ax_w.set_title("w and b after each step (dotted: the optimum)")
    ax_b.set_xlabel("step + 1 (log scale)")
    fig.suptitle(f"y = b + w·x on the classic data: {steps:,} steps from (b, w) = ({b0:g}, {w0:g})")
    fig.savefig(path)
    plt.close(fig)


# The tutorial's figures draw the four classic runs in matplotlib's first
# four colours, in this order; other learning rates get the next ones.
RUN_COLOURS = {("gd", 1e-7): "C0", ("gd", 1e-6): "C1", ("gd", 1e-5): "C2", ("adagrad", 1.0): "C3"}


def _style(run: Run) -> dict[str, Any]:
    """Each run's line over the surface: recognisable where the paths overlap.

    The slowest rate is drawn first and widest, as a pale band; each faster
    rate narrower on top of it, dashed or dotted, so that the paths that
    share the first stretch stay visible inside one another. Adagrad, whose
    path runs along the valley floor beyond theirs, is solid and beneath
    them, so that theirs show where the two overlap.
    """
    colour = RUN_COLOURS.get((run.optimizer, run.lr), "C4" if run.optimizer == "gd" else "C5")
    if run.optimizer == "adagrad":
        return {"color": colour, "lw": 2.2, "ls": "-", "zorder": 3}
    style = {1e-7: (7.0, "-", 0.45), 1e-6: (3.0, "--", 0.95), 1e-5: (1.4, "-", 0.95)}
    width, line, alpha = style.get(run.lr, (1.6, "-.", 0.95))
    return {"color": colour, "lw": width, "ls": line, "alpha": alpha, "zorder": 5 - width / 10}


def _thin(style: dict[str, Any]) -> dict[str, Any]:
    """The same run in the small panels: its colour and dashes, at a readable width."""
    return {**style, "lw": min(style["lw"], 2.2), "alpha": 0.95}


def _draw_order(run: Run) -> float:
    """Slowest first: the widest band underneath, the faster runs on top."""
    return run.lr if run.optimizer == "gd" else math.inf


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns its exit status."""
    try:
        return _main(argv)
    except UsageError as exc:
        print(f"arraykit: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        sys.stderr.write(MESSAGE)
        return INTERRUPTED
    except BrokenPipeError:
        # The reader left (``| head``): nothing more to say to anyone. Standard
        # output goes to the null device, so that the interpreter's own flush
        # at exit does not fail on the closed pipe again.
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return CLOSED_PIPE
    except Exception as exc:
        if not from_ctrl_c(exc):
            raise
        sys.stderr.write(MESSAGE)
        return INTERRUPTED


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv:
        parser.print_help()
        return 0
    args = parser.parse_args(argv)
    if args.command == "regression":
        return regression_command(args)
    if args.command == "classify":
        return classify_command.run(args)
    return 0
