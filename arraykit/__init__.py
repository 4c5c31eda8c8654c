"""arraykit: the classic first exercises of machine learning, written once
against the Python array API standard, for NumPy, CuPy, PyTorch, JAX, Dask
and array-api-strict arrays alike."""

from . import optim, regression
from .activations import sigmoid, sigmoid_derivative, softmax
from .drivers import OptimizeResult, optimize, run_adagrad, run_gradient_descent
from .losses import l1_loss, l2_loss
from .normalization import normalize_rows
from .shapes import image2vector

__version__ = "0.2.0"

__all__ = [
    "OptimizeResult",
    "image2vector",
    "l1_loss",
    "l2_loss",
    "normalize_rows",
    "optim",
    "optimize",
    "regression",
    "run_adagrad",
    "run_gradient_descent",
    "sigmoid",
    "sigmoid_derivative",
    "softmax",
]

# Renamed in 0.2: ``ak.adagrad`` ran a loop while ``ak.optim.adagrad`` built an
# optimizer. The old names keep working, with a warning, until 0.3.
_RENAMED = {"adagrad": "run_adagrad", "gradient_descent": "run_gradient_descent"}


def __getattr__(name: str) -> object:
    if name in _RENAMED:
        import warnings

        new = _RENAMED[name]
        warnings.warn(
            f"arraykit.{name} was renamed arraykit.{new} (it runs a whole loop; "
            f"arraykit.optim.{name} is the optimizer); the old name goes in 0.3",
            DeprecationWarning,
            stacklevel=2,
        )
        return globals()[new]
    raise AttributeError(f"module 'arraykit' has no attribute {name!r}")
