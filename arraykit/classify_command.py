"""`arraykit classify`: logistic and softmax regression on the handwritten digits.

With no ``--optimizer``, every optimizer trains the model from the same start
(the lecture's comparison); with one, that run alone. Each run prints the
course's "Cost after iteration i" lines, then the train and test accuracy.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._command import (
    ProgressBar,
    Target,
    UsageError,
    add_backend_options,
    check_plot_path,
    install_hint,
    open_backend,
    positive,
)

if TYPE_CHECKING:
    import numpy as np

    from .optim import Optimizer

OPTIMIZERS: dict[str, tuple[str, float]] = {
    # name: (what the table calls it, the default learning rate)
    "gd": ("gradient descent", 0.5),
    "momentum": ("momentum 0.9", 0.5),
    "adagrad": ("Adagrad", 0.1),
    "rmsprop": ("RMSProp alpha 0.9", 0.003),
    "adam": ("Adam", 0.01),
}
"""The optimizers compared, in the table's order, with rates that suit the digits'
features in [0, 1] on the mean cost (the course's rates are those of its own data).
RMSProp averages over ten steps (α = 0.9, the lecture's and optax's): with torch's
α = 0.99 at rates that train as fast, its steps here are chaotic, and each backend's
rounding of the matrix product sends it elsewhere (docs/results.md)."""

DEFAULT_STEPS = 1000


def add_parser(commands: Any) -> None:
    """The ``classify`` subcommand and its options."""
    run = commands.add_parser(
        "classify",
        help="train logistic or softmax regression on the handwritten digits, by each optimizer",
        description="Softmax regression (the ten digits) or logistic regression (odd against "
        "even) on scikit-learn's 1,797 8x8 digits, 80% to train and 20% to test, full "
        "batch from zero weights. With no --optimizer: gradient descent, momentum, Adagrad, "
        "RMSProp and Adam compared; with one, that run.",
    )
    run.add_argument(
        "--model",
        choices=["softmax", "logistic"],
        default="softmax",
        help="softmax regression over the ten digits, or logistic regression: is the digit "
        "odd? (default: %(default)s)",
    )
    add_backend_options(run)
    run.add_argument(
        "--optimizer",
        choices=list(OPTIMIZERS),
        help="one run of this optimizer (default: all of them, compared)",
    )
    run.add_argument(
        "--lr",
        type=positive(float),
        help="learning rate of the one run (default: "
        + ", ".join(f"{lr:g} for {name}" for name, (_, lr) in OPTIMIZERS.items())
        + ")",
    )
    run.add_argument("--steps", type=positive(int), default=DEFAULT_STEPS,
                     help="updates of each run (default: %(default)s)")  # fmt: skip
    run.add_argument(
        "--print-every",
        type=positive(int),
        default=100,
        metavar="N",
        help="print 'Cost after iteration i' every N steps (default: %(default)s)",
    )
    run.add_argument(
        "--plot",
        metavar="FILE",
        help="draw the runs' cost curves into FILE (.png, .pdf, .svg, ...; default: none)",
    )


def make_optimizer(name: str, lr: float) -> Optimizer:
    from . import optim

    if name == "gd":
        return optim.gradient_descent(lr)
    if name == "momentum":
        return optim.gradient_descent(lr, momentum=0.9)
    if name == "rmsprop":
        return optim.rmsprop(lr, alpha=0.9)
    makers: dict[str, Callable[[float], Optimizer]] = {"adagrad": optim.adagrad, "adam": optim.adam}
    return makers[name](lr)


@dataclass
class Run:
    optimizer: str
    lr: float
    steps: int
    costs: np.ndarray  # the training cost after each of recorded_steps
    recorded_steps: np.ndarray
    train_accuracy: float
    test_accuracy: float
    seconds: float

    @property
    def label(self) -> str:
        return f"{OPTIMIZERS[self.optimizer][0]}, lr {self.lr:g}"


def train(backend: Target, data: Any, name: str, lr: float, steps: int, every: int) -> Run:
    import numpy as np

    from . import digits

    bar = ProgressBar(f"{name} lr {lr:g}")
    started = time.perf_counter()
    try:
        result = digits.train(
            make_optimizer(name, lr), data, steps=steps, record_every=every, progress=bar
        )
        # Back to the host once, after the run: nothing left the device during it.
        costs = backend.to_numpy(result.losses)
        accuracies = [
            float(backend.to_numpy(digits.accuracy(data.task, result.params, x, y)))
            for x, y in ((data.x_train, data.y_train), (data.x_test, data.y_test))
        ]
    finally:
        bar.close()
    seconds = time.perf_counter() - started
    recorded = np.minimum(np.arange(len(costs)) * result.record_every, result.steps)
    train_accuracy, test_accuracy = accuracies
    return Run(name, lr, result.steps, costs, recorded, train_accuracy, test_accuracy, seconds)


def run(args: argparse.Namespace) -> int:
    from . import digits

    if args.plot is not None:
        check_plot_path(args.plot)
    if args.lr is not None and args.optimizer is None:
        raise UsageError("argument --lr: names the rate of one run; give --optimizer too")
    backend = open_backend(args.backend, args.device, args.dtype)
    try:
        data = digits.load(args.model, xp=backend.xp, device=backend.device, dtype=backend.dtype)
    except ImportError:
        raise UsageError(
            f"the digits ship with scikit-learn, which is not installed; {install_hint('classify')}"
        ) from None
    names = [args.optimizer] if args.optimizer else list(OPTIMIZERS)
    every = _record_every(args.print_every, args.steps, lazy=args.backend == "dask")
    runs = []
    for name in names:
        lr = args.lr if args.lr is not None else OPTIMIZERS[name][1]
        run = train(backend, data, name, lr, args.steps, every)
        runs.append(run)
        print(f"# {run.label}")
        for step, value in zip(run.recorded_steps, run.costs, strict=True):
            if step % args.print_every == 0 and step < run.steps:
                print(f"Cost after iteration {step}: {value:.6f}")
        print(f"train accuracy: {100 * run.train_accuracy:.2f} %")
        print(f"test accuracy: {100 * run.test_accuracy:.2f} %")
    model = {
        "softmax": "softmax regression over the ten digits",
        "logistic": "logistic regression: odd against even digits",
    }[args.model]
    print(
        f"\n{model}; backend {args.backend} ({args.device}, {args.dtype}); {args.steps} steps; "
        f"{data.x_train.shape[0]} images to train, {data.x_test.shape[0]} to test"
    )
    header = f"{'run':<28} {'final cost':>11} {'train acc':>10} {'test acc':>9} {'time':>9}"
    print(header)
    print("-" * len(header))
    for run in runs:
        print(
            f"{run.label:<28} {run.costs[-1]:>11.6f} {100 * run.train_accuracy:>9.2f}% "
            f"{100 * run.test_accuracy:>8.2f}% {run.seconds * 1e3:>7.0f}ms"
        )
    if args.plot:
        plot(args.plot, runs, model, args)
        print(f"figure written to {args.plot}")
    return 0


def _record_every(print_every: int, steps: int, lazy: bool) -> int:
    """The costs recorded for the curves: at least every ``print_every`` steps, and
    enough for a smooth curve (about 200 points), but on Dask, where a cost is a
    graph of a hundred tasks, only the printed ones."""
    import math

    if lazy:
        return print_every
    fine = max(1, steps // 200)
    return math.gcd(print_every, fine) if fine < print_every else print_every


def plot(path: str, runs: list[Run], model: str, args: argparse.Namespace) -> None:
    """The lecture's comparison: each optimizer's training cost against the step."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UsageError(f"--plot needs matplotlib; {install_hint('plot')}") from None
    fig, ax = plt.subplots(figsize=(8, 5.2), dpi=110, layout="constrained")
    for i, run in enumerate(runs):
        label = (
            f"{run.label}: cost {run.costs[-1]:.3f}, test accuracy {100 * run.test_accuracy:.1f} %"
        )
        ax.plot(run.recorded_steps, run.costs, color=f"C{i}", lw=2, label=label)
    ax.set_yscale("log")
    ax.set_xlim(0, args.steps)
    ax.set_xlabel("iteration")
    ax.set_ylabel("training cost (mean cross-entropy, log scale)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper right", fontsize=9, framealpha=0.95)
    ax.set_title(
        f"{model}: {args.steps} full-batch steps from zero weights\n"
        f"({args.backend}, {args.device}, {args.dtype})",
        fontsize=11,
    )
    fig.savefig(path)
    plt.close(fig)
