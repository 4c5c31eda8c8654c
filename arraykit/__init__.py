"""arraykit: the classic first exercises of machine learning, written once
against the Python array API standard, for NumPy, CuPy, PyTorch, JAX, Dask
and array-api-strict arrays alike."""

from . import optim, regression
from .activations import sigmoid, sigmoid_derivative, softmax
from .drivers import OptimizeResult, adagrad, gradient_descent, optimize
from .losses import l1_loss, l2_loss
from .normalization import normalize_rows
from .shapes import image2vector

__version__ = "0.1.0"

__all__ = [
    "OptimizeResult",
    "adagrad",
    "gradient_descent",
    "image2vector",
    "l1_loss",
    "l2_loss",
    "normalize_rows",
    "optim",
    "optimize",
    "regression",
    "sigmoid",
    "sigmoid_derivative",
    "softmax",
]
