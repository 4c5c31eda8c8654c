"""What the arraykit commands share: backends, options' checks, the progress bar.

A bad option or an unusable backend is a :class:`UsageError`: one line on
stderr and exit status 2, raised before anything is computed.
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    import numpy as np

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
    "cupy": "cupy",
    "jax": "jax",
    "dask": "dask",
    "array_api_strict": "strict",
    "plot": "plot",
    "classify": "classify",
}
"""The extra of arraykit's pyproject.toml that installs each optional library."""

TORCH_BUILDS = (
    "install the PyTorch build you want first: the CPU one with "
    "'pip install torch --index-url https://download.pytorch.org/whl/cpu', a CUDA one as "
    "https://pytorch.org/get-started/locally/ says"
)


def install_hint(name: str) -> str:
    """How to install what backend or extra ``name`` needs (arraykit has no release yet)."""
    if name == "torch":
        return TORCH_BUILDS
    return f"from arraykit's checkout, pip install '.[{EXTRAS[name]}]'"


class UsageError(Exception):
    """A bad option or an unusable backend: one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def add_backend_options(command: argparse.ArgumentParser) -> None:
    """``--backend``, ``--device`` and ``--dtype``, which every experiment takes."""
    command.add_argument(
        "--backend",
        choices=sorted(NAMESPACES),
        default="numpy",
        help="the array library (default: %(default)s)",
    )
    command.add_argument(
        "--device",
        choices=["cpu", "cuda"],
        default="cpu",
        help="where the arrays live (default: %(default)s)",
    )
    command.add_argument(
        "--dtype",
        choices=["float64", "float32"],
        default="float64",
        help="the arrays' dtype (default: %(default)s)",
    )


def positive(kind: type) -> Any:
    noun = "an integer" if kind is int else "a number"

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {noun}, got {text!r}") from None
        if kind is float and math.isinf(value):
            raise argparse.ArgumentTypeError(
                f"must be a finite positive number; {text} is beyond the largest float64 "
                f"({sys.float_info.max:.4g})"
            )
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
        return value

    return parse


def check_plot_path(path: str) -> None:
    """The figure's file: a writable directory, and a format matplotlib writes."""
    if not path.strip():
        raise UsageError("argument --plot: expected a file name, got ''")
    if os.path.isdir(path):
        raise UsageError(f"argument --plot: {path!r} is a directory; name a file in it")
    try:
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError:
        raise UsageError(f"--plot needs matplotlib; {install_hint('plot')}") from None
    formats = Figure().canvas.get_supported_filetypes()
    extension = os.path.splitext(path)[1]
    extension = extension[1:].lower()
    if not extension:
        raise UsageError(
            f"argument --plot: {path!r} has no extension, so the format is unknown; "
            f"to write a PNG, say {path + '.png'!r}"
        )
    if extension not in formats:
        raise UsageError(
            f"argument --plot: matplotlib {matplotlib.__version__} cannot write "
            f".{extension} files; use one of {', '.join(sorted(formats))}"
        )
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UsageError(f"argument --plot: {_why_no_directory(folder)}")
    existed = os.path.exists(path)
    try:  # the one sure test of writability: open it, as savefig will
        with open(path, "ab"):
            pass
    except OSError as exc:
        raise UsageError(f"argument --plot: cannot write {path!r}: {exc.strerror}") from None
    if not existed:
        os.remove(path)


def _why_no_directory(folder: str) -> str:
    """Why ``folder`` cannot hold the figure: the first part of it that is missing or a file."""
    parts = []
    head = folder
    while head and not os.path.exists(head):
        parts.append(head)
        head, tail = os.path.split(head)
        if not tail:
            break
    if head and os.path.exists(head) and not os.path.isdir(head):
        within = "" if head == folder else f", so {folder!r} cannot be in it"
        return f"{head!r} is a file, not a directory{within}"
    return f"the directory {folder!r} does not exist"


@dataclass
class Target:
    """Where the command computes: a namespace, a device and a dtype."""

    xp: Any
    device: Any
    dtype: Any

    def to_numpy(self, array: Any) -> np.ndarray:
        import numpy as np

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
            f"backend {name!r} is not installed ({exc}); {install_hint(name)}"
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
            self.shown = False


def on(backend: Target) -> dict[str, Any]:
    return {"device": backend.device} if backend.device is not None else {}
