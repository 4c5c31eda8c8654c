"""The second classic experiment: classifying handwritten digits with linear models.

Logistic regression (one class against the rest: is the digit odd?) and
softmax regression (the ten digits), trained by any optimizer of
:mod:`arraykit.optim` on the 1,797 8×8 images that ship with scikit-learn
(``sklearn.datasets.load_digits``, no download), in any array namespace.
The models are the course's: ``z = x·W + b``, the mean cross-entropy of
``z`` as the cost, and its gradient written out, ``∂J/∂z = (p − y)/m``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import numpy as np

from ._array_api import NUMPY_XP, Array, Namespace, device_of, namespace_of, resolve_namespace
from .activations import sigmoid, softmax
from .classification import binary_cross_entropy_with_logits, cross_entropy
from .drivers import OptimizeResult, optimize
from .optim import Optimizer

__all__ = ["Digits", "accuracy", "cost", "gradient", "load", "start", "train"]

Task = Literal["logistic", "softmax"]
TASKS = ("logistic", "softmax")
PIXEL_MAX = 16.0
"""The images' largest value: features are pixel / 16, in [0, 1]."""


class Digits(NamedTuple):
    """The images as feature rows, split into a training and a test set.

    Attributes
    ----------
    task : {"logistic", "softmax"}
        What the labels are: 1.0 for an odd digit and 0.0 for an even one,
        or the digit itself (an integer class index).
    x_train, x_test : arrays of shape (m, 64)
        Each row an 8×8 image, pixel by pixel, scaled to [0, 1].
    y_train, y_test : arrays of shape (m,)
        The labels.
    """

    task: str
    x_train: Array
    y_train: Array
    x_test: Array
    y_test: Array


def load(
    task: Task = "softmax",
    *,
    xp: Namespace | None = None,
    device: Any = None,
    dtype: Any = None,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> Digits:
    """The digits, shuffled and split, as arrays of namespace ``xp``.

    Parameters
    ----------
    task : {"logistic", "softmax"}, default "softmax"
        Odd against even digits (labels 1.0 and 0.0, in ``dtype``), or the
        ten digits (integer class indices).
    xp : namespace, optional
        Where to create the arrays; NumPy by default.
    device : optional
        The device, in ``xp``'s terms.
    dtype : optional
        The features' real floating dtype; ``xp``'s default if omitted.
    test_fraction : float, default 0.2
        The share of the images held out for the test set.
    seed : int, default 0
        The shuffle's seed (NumPy's ``default_rng``): the same split on
        every backend.

    Returns
    -------
    Digits

    Raises
    ------
    ImportError
        Without scikit-learn, which holds the images (``pip install scikit-learn``).

    Examples
    --------
    >>> from arraykit import digits
    >>> data = digits.load("softmax")
    >>> data.x_train.shape, data.x_test.shape, data.y_train[:5]
    ((1438, 64), (359, 64), array([6, 6, 6, 2, 5]))
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}; got {task!r}")
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1); got {test_fraction!r}")
    try:
        from sklearn.datasets import load_digits  # type: ignore[import-untyped]
    except ImportError as exc:
        raise ImportError(
            "the digits ship with scikit-learn: pip install scikit-learn "
            "(from arraykit's checkout: pip install '.[classify]')"
        ) from exc
    images = load_digits()
    order = np.random.default_rng(seed).permutation(len(images.target))
    features = images.data[order] / PIXEL_MAX
    digit = images.target[order]
    labels = (digit % 2).astype(np.float64) if task == "logistic" else digit.astype(np.int64)
    cut = len(order) - round(len(order) * test_fraction)
    xp = NUMPY_XP if xp is None else resolve_namespace(xp)
    on: dict[str, Any] = {"device": device} if device is not None else {}
    typed = {**on, "dtype": dtype} if dtype is not None else on
    x = xp.asarray(features, **typed)
    if not xp.isdtype(x.dtype, "real floating"):
        raise TypeError(f"dtype must be a real floating dtype; got {x.dtype}")
    y = xp.asarray(labels, **({**on, "dtype": x.dtype} if task == "logistic" else on))
    return Digits(task, x[:cut, ...], y[:cut, ...], x[cut:, ...], y[cut:, ...])


def start(data: Digits) -> dict[str, Array]:
    """Zero weights and bias, as the course starts: ``{"w": ..., "b": ...}``.

    ``w`` is (64,) and ``b`` 0-d for logistic regression, (64, 10) and (10,)
    for softmax regression, in the features' namespace, dtype and device.

    Parameters
    ----------
    data : Digits
        From :func:`load`.

    Returns
    -------
    dict of arrays

    Examples
    --------
    >>> from arraykit import digits
    >>> params = digits.start(digits.load("softmax"))
    >>> params["w"].shape, params["b"].shape
    ((64, 10), (10,))
    """
    x = data.x_train
    xp = namespace_of(x)
    features = x.shape[1]
    shape = (features,) if data.task == "logistic" else (features, 10)
    on = {"dtype": x.dtype, "device": device_of(x, xp)}
    return {"w": xp.zeros(shape, **on), "b": xp.zeros(shape[1:], **on)}


def _logits(params: dict[str, Array], x: Array) -> Array:
    return x @ params["w"] + params["b"]


def cost(task: str, params: dict[str, Array], x: Array, y: Array) -> Array:
    """The mean cross-entropy of the model's logits on ``(x, y)``: the course's cost J.

    Parameters
    ----------
    task : {"logistic", "softmax"}
        Which model ``params`` are.
    params : dict of arrays
        ``w`` and ``b``, as :func:`start` makes them.
    x : array of shape (m, 64)
        The features.
    y : array of shape (m,)
        The labels.

    Returns
    -------
    array
        0-d, in the features' dtype.

    Examples
    --------
    >>> from arraykit import digits
    >>> data = digits.load("logistic")
    >>> print(f"{digits.cost('logistic', digits.start(data), data.x_train, data.y_train):.4f}")
    0.6931
    """
    z = _logits(params, x)
    if task == "logistic":
        return binary_cross_entropy_with_logits(z, y)
    return cross_entropy(z, y)


def gradient(task: str, params: dict[str, Array], x: Array, y: Array) -> dict[str, Array]:
    """The cost's gradient: ``∂J/∂z = (p − y)/m`` with ``p`` the model's probabilities,
    then ``∂J/∂w = xᵀ·∂J/∂z`` and ``∂J/∂b = Σ ∂J/∂z``.

    Parameters
    ----------
    task : {"logistic", "softmax"}
        Which model ``params`` are.
    params : dict of arrays
        ``w`` and ``b``.
    x : array of shape (m, 64)
        The features.
    y : array of shape (m,)
        The labels (class indices for softmax regression).

    Returns
    -------
    dict of arrays
        The gradients, with ``params``' keys and shapes.

    Examples
    --------
    >>> from arraykit import digits
    >>> data = digits.load("softmax")
    >>> g = digits.gradient("softmax", digits.start(data), data.x_train, data.y_train)
    >>> g["w"].shape, g["b"].shape
    ((64, 10), (10,))
    """
    xp = namespace_of(x)
    z = _logits(params, x)
    m = x.shape[0]
    if task == "logistic":
        dz = (sigmoid(z) - y) / m
    else:
        classes = params["b"].shape[0]
        one_hot = xp.astype(y[:, None] == xp.arange(classes, device=device_of(y, xp)), z.dtype)
        dz = (softmax(z, axis=-1) - one_hot) / m
    return {"w": xp.matrix_transpose(x) @ dz, "b": xp.sum(dz, axis=0)}


def accuracy(task: str, params: dict[str, Array], x: Array, y: Array) -> Array:
    """The share of ``x``'s images the model labels right.

    Logistic regression predicts odd where ``z > 0`` (probability above
    one half); softmax regression the class of the largest logit.

    Parameters
    ----------
    task : {"logistic", "softmax"}
        Which model ``params`` are.
    params : dict of arrays
        ``w`` and ``b``.
    x : array of shape (m, 64)
        The features.
    y : array of shape (m,)
        The labels.

    Returns
    -------
    array
        0-d, in the features' dtype.

    Examples
    --------
    >>> from arraykit import digits
    >>> data = digits.load("logistic")
    >>> acc = digits.accuracy("logistic", digits.start(data), data.x_test, data.y_test)
    >>> print(f"{float(acc):.3f}")  # z = 0 everywhere: every digit called even
    0.540
    """
    xp = namespace_of(x)
    z = _logits(params, x)
    predicted = xp.astype(z > 0, y.dtype) if task == "logistic" else xp.argmax(z, axis=-1)
    return xp.mean(xp.astype(predicted == xp.astype(y, predicted.dtype), x.dtype))


def train(
    optimizer: Optimizer,
    data: Digits,
    *,
    steps: int,
    record_every: int = 10,
    progress: Callable[[int, int], None] | None = None,
) -> OptimizeResult:
    """Train the model from :func:`start` on the training set, full batch.

    Parameters
    ----------
    optimizer : Optimizer
        From :mod:`arraykit.optim`.
    data : Digits
        From :func:`load`.
    steps : int
        Updates to take.
    record_every : int, default 10
        Steps between two recorded costs (and parameters).
    progress : callable, optional
        Called as :func:`arraykit.optimize` calls it.

    Returns
    -------
    OptimizeResult
        ``losses`` holds the training cost after every ``record_every`` steps.

    Examples
    --------
    >>> import arraykit as ak
    >>> from arraykit import digits
    >>> data = digits.load("softmax")
    >>> run = digits.train(ak.optim.adam(lr=0.01), data, steps=200, record_every=100)
    >>> [round(float(c), 3) for c in run.losses]
    [2.303, 0.315, 0.191]
    >>> round(float(digits.accuracy("softmax", run.params, data.x_test, data.y_test)), 3)
    0.967
    """
    task, x, y = data.task, data.x_train, data.y_train
    return optimize(
        optimizer,
        lambda p: gradient(task, p, x, y),
        start(data),
        steps=steps,
        record_every=record_every,
        loss=lambda p: cost(task, p, x, y),
    )
