"""arraykit: the classic first exercises of machine learning, written once
against the Python array API standard, for NumPy, CuPy, PyTorch, JAX, Dask
and array-api-strict arrays alike.

The public names are imported on first use, and this module itself imports
only :mod:`arraykit._fork` (which imports only :mod:`os`: it must see every
fork after ``import arraykit``), so that ``import arraykit`` costs almost
nothing: the ``arraykit`` command must answer Ctrl-C with one line from its
first moment, and the package is imported before its code can catch anything.
"""

from . import _fork  # noqa: F401  (registers its fork handler)

__version__ = "0.2.0"

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing: see above
if TYPE_CHECKING:
    from . import digits, optim, regression
    from .activations import sigmoid, sigmoid_derivative, softmax
    from .classification import (
        binary_cross_entropy,
        binary_cross_entropy_with_logits,
        cross_entropy,
    )
    from .drivers import OptimizeResult, optimize, run_adagrad, run_gradient_descent
    from .log_space import log_sigmoid, log_softmax, logsumexp, softplus
    from .losses import l1_loss, l2_loss
    from .normalization import normalize_rows
    from .shapes import image2vector

_HOMES = {
    "OptimizeResult": "drivers",
    "binary_cross_entropy": "classification",
    "binary_cross_entropy_with_logits": "classification",
    "cross_entropy": "classification",
    "image2vector": "shapes",
    "l1_loss": "losses",
    "l2_loss": "losses",
    "log_sigmoid": "log_space",
    "log_softmax": "log_space",
    "logsumexp": "log_space",
    "normalize_rows": "normalization",
    "optimize": "drivers",
    "run_adagrad": "drivers",
    "run_gradient_descent": "drivers",
    "sigmoid": "activations",
    "sigmoid_derivative": "activations",
    "softmax": "activations",
    "softplus": "log_space",
}
"""Each public function's module."""

_MODULES = {
    "activations",
    "classification",
    "cli",
    "digits",
    "drivers",
    "log_space",
    "losses",
    "normalization",
    "optim",
    "regression",
    "shapes",
}
"""The submodules reachable as attributes, as if imported here."""

__all__ = [
    "OptimizeResult",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "digits",
    "image2vector",
    "l1_loss",
    "l2_loss",
    "log_sigmoid",
    "log_softmax",
    "logsumexp",
    "normalize_rows",
    "optim",
    "optimize",
    "regression",
    "run_adagrad",
    "run_gradient_descent",
    "sigmoid",
    "sigmoid_derivative",
    "softmax",
    "softplus",
]

# Renamed in 0.2: ``ak.adagrad`` ran a loop while ``ak.optim.adagrad`` built an
# optimizer. The old names keep working, with a warning, until 0.3.
_RENAMED = {"adagrad": "run_adagrad", "gradient_descent": "run_gradient_descent"}


def __getattr__(name: str) -> object:
    import importlib

    if name in _HOMES:
        value = getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
    elif name in _MODULES:
        value = importlib.import_module(f".{name}", __name__)
    elif name in _RENAMED:
        import warnings

        new = _RENAMED[name]
        warnings.warn(
            f"arraykit.{name} was renamed arraykit.{new} (it runs a whole loop; "
            f"arraykit.optim.{name} is the optimizer); the old name goes in 0.3",
            DeprecationWarning,
            stacklevel=2,
        )
        return __getattr__(new)
    else:
        raise AttributeError(f"module 'arraykit' has no attribute {name!r}")
    globals()[name] = value  # once: later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__, *_MODULES})
