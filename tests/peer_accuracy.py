"""The log-space family and the cross-entropies side by side with their peers: the worst
error of each, in ulps, against the mpmath references.

``python -m tests.peer_accuracy`` prints the table that docs/numerics.md records:
arraykit (NumPy, torch and JAX arrays) against the textbook form, SciPy, torch, JAX
and Keras (each where installed; Keras on its JAX backend), in float64 and float32,
on inputs where the textbook forms fail (both tails of softplus and the log-sigmoid,
a log-softmax whose largest entry holds nearly all the mass, logits past ±40) and on
random rows. A peer that returns ±inf or 0 where the exact result is a normal
number reads "inf".
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

import arraykit as ak

from . import reference
from .assertions import ulp_error

DTYPES = ("float64", "float32")


def _points(dtype: str) -> np.ndarray:
    limit = 700.0 if dtype == "float64" else 85.0
    return np.concatenate(
        [
            np.linspace(-limit, limit, 141),
            [-40.0, -30.0, -17.0, -1e-3, 0.0, 1e-3, 17.0, 30.0, 40.0],
            np.random.default_rng(1).normal(0, 10, 200),
        ]
    ).astype(dtype)


def _rows(dtype: str) -> np.ndarray:
    rng = np.random.default_rng(2)
    dominant = np.concatenate([np.zeros((20, 1)), rng.uniform(-70, -20, (20, 9))], axis=1)
    random = rng.normal(size=(40, 10)) * rng.choice([1.0, 5.0, 30.0], size=(40, 1))
    return np.concatenate([dominant, random]).astype(dtype)


def _labels(n: int) -> np.ndarray:
    return np.random.default_rng(3).integers(0, 2, n).astype(np.float64)


def _classes(rows: np.ndarray) -> np.ndarray:
    classes = np.random.default_rng(4).integers(0, rows.shape[1], rows.shape[0])
    classes[:10] = 0  # the label holds nearly all the mass: a loss near 0
    return classes


# --- the contenders: functions of NumPy arrays, returning NumPy arrays ----------------------


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        return None
    return torch


def _jax() -> Any:
    try:
        import jax
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)
    return jax


def _keras() -> Any:
    os.environ.setdefault("KERAS_BACKEND", "jax")
    try:
        import keras
    except ImportError:
        return None
    return keras


def contenders(function: str) -> dict[str, Callable[..., np.ndarray]]:
    """Every implementation of ``function`` that is installed, on NumPy inputs."""
    import scipy.special

    torch, jax, keras = _torch(), _jax(), _keras()
    out: dict[str, Callable[..., np.ndarray]] = {}
    ours = getattr(ak, function)
    extra = {"reduction": "none"} if "entropy" in function else {}
    out["arraykit (NumPy)"] = lambda *a: np.asarray(ours(*a, **extra))
    if torch is not None:
        out["arraykit (torch)"] = lambda *a: ours(*map(torch.from_numpy, a), **extra).numpy()
    if jax is not None:
        out["arraykit (JAX)"] = lambda *a: np.asarray(ours(*map(jax.numpy.asarray, a), **extra))

    def log_softmax_textbook(x: np.ndarray) -> np.ndarray:
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        with np.errstate(divide="ignore"):
            return np.log(e / e.sum(axis=-1, keepdims=True))

    def picked(table: np.ndarray, t: np.ndarray) -> np.ndarray:
        return np.take_along_axis(np.asarray(table), t[:, None], axis=-1)[:, 0]

    with_errstate = _quiet
    textbook: dict[str, Callable[..., np.ndarray]] = {
        "softplus": with_errstate(lambda x: np.log(1 + np.exp(x))),
        "log_sigmoid": with_errstate(lambda x: np.log(1 / (1 + np.exp(-x)))),
        "logsumexp": with_errstate(lambda x: np.log(np.exp(x).sum(axis=-1))),
        "log_softmax": with_errstate(log_softmax_textbook),
        "binary_cross_entropy_with_logits": with_errstate(
            lambda z, y: (
                -(y * np.log(1 / (1 + np.exp(-z))) + (1 - y) * np.log(1 - 1 / (1 + np.exp(-z))))
            )
        ),
        "cross_entropy": with_errstate(lambda x, t: -picked(log_softmax_textbook(x), t)),
    }
    out["textbook"] = textbook[function]
    scipy_table: dict[str, Callable[..., np.ndarray]] = {
        "softplus": lambda x: np.logaddexp(0, x),
        "log_sigmoid": scipy.special.log_expit,
        "logsumexp": lambda x: scipy.special.logsumexp(x, axis=-1),
        "log_softmax": lambda x: scipy.special.log_softmax(x, axis=-1),
        "cross_entropy": lambda x, t: -picked(scipy.special.log_softmax(x, axis=-1), t),
    }
    if function in scipy_table:
        out["SciPy" if function != "softplus" else "np.logaddexp"] = scipy_table[function]
    if torch is not None:
        F = torch.nn.functional
        t = torch.from_numpy
        torch_table: dict[str, Callable[..., Any]] = {
            "softplus": lambda x: F.softplus(t(x)),
            "log_sigmoid": lambda x: F.logsigmoid(t(x)),
            "logsumexp": lambda x: torch.logsumexp(t(x), dim=-1),
            "log_softmax": lambda x: torch.log_softmax(t(x), dim=-1),
            "binary_cross_entropy_with_logits": lambda z, y: F.binary_cross_entropy_with_logits(
                t(z), t(y), reduction="none"
            ),
            "cross_entropy": lambda x, k: F.cross_entropy(t(x), t(k), reduction="none"),
        }
        out["torch"] = lambda *a: torch_table[function](*a).numpy()
    if jax is not None:
        nn = jax.nn
        jnp = jax.numpy
        jax_table: dict[str, Callable[..., Any]] = {
            "softplus": nn.softplus,
            "log_sigmoid": nn.log_sigmoid,
            "logsumexp": lambda x: nn.logsumexp(x, axis=-1),
            "log_softmax": nn.log_softmax,
            "binary_cross_entropy_with_logits": lambda z, y: (
                -(y * nn.log_sigmoid(z) + (1 - y) * nn.log_sigmoid(-z))
            ),
            "cross_entropy": lambda x, k: (
                -jnp.take_along_axis(nn.log_softmax(x), k[:, None], axis=-1)[:, 0]
            ),
        }
        out["JAX (jax.nn)"] = lambda *a: np.asarray(jax_table[function](*map(jnp.asarray, a)))
    if keras is not None:
        ops = keras.ops
        keras_table: dict[str, Callable[..., Any]] = {
            "softplus": ops.softplus,
            "log_sigmoid": ops.log_sigmoid,
            "logsumexp": lambda x: ops.logsumexp(x, axis=-1),
            "log_softmax": ops.log_softmax,
            "binary_cross_entropy_with_logits": lambda z, y: ops.binary_crossentropy(
                y, z, from_logits=True
            ),
            "cross_entropy": lambda x, k: ops.sparse_categorical_crossentropy(
                k, x, from_logits=True
            ),
        }
        out["Keras"] = lambda *a: np.asarray(keras_table[function](*a))
    return out


def _quiet(f: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    def run(*a: Any) -> np.ndarray:
        with np.errstate(all="ignore"):
            return f(*a)

    return run


def cases(dtype: str) -> dict[str, tuple[tuple[np.ndarray, ...], np.ndarray]]:
    """Each function's inputs (in ``dtype``) and its exact results."""
    x = _points(dtype)
    seen = x.astype(np.float64)
    rows = _rows(dtype)
    rows64 = rows.astype(np.float64)
    z, y = x, _labels(x.size).astype(dtype)
    classes = _classes(rows)
    return {
        "softplus": ((x,), reference.softplus(seen)),
        "log_sigmoid": ((x,), reference.log_sigmoid(seen)),
        "logsumexp": ((rows,), reference.logsumexp(rows64)),
        "log_softmax": ((rows,), reference.log_softmax(rows64)),
        "binary_cross_entropy_with_logits": (
            (z, y),
            reference.binary_cross_entropy_with_logits(seen, y.astype(np.float64)),
        ),
        "cross_entropy": ((rows, classes), reference.cross_entropy(rows64, classes)),
    }


def worst(got: np.ndarray, exact: np.ndarray, dtype: str) -> float:
    """The worst error in ulps over results that are normal numbers in ``dtype``."""
    tiny = float(np.finfo(dtype).tiny)
    normal = (
        np.isfinite(exact) & (np.abs(exact) >= tiny) & (np.abs(exact) < float(np.finfo(dtype).max))
    )
    errors = ulp_error(np.asarray(got, dtype=np.float64), exact, dtype)
    return float(np.max(np.where(normal, errors, 0.0)))


def table() -> str:
    rows: list[str] = []
    names: list[str] = []
    results: dict[tuple[str, str, str], float] = {}
    for dtype in DTYPES:
        for function, (args, exact) in cases(dtype).items():
            for name, run in contenders(function).items():
                if name not in names:
                    names.append(name)
                try:
                    results[(function, dtype, name)] = worst(run(*args), exact, dtype)
                except Exception:
                    results[(function, dtype, name)] = float("nan")
    rows.append("| function | dtype | " + " | ".join(names) + " |")
    rows.append("| --- | --- | " + " | ".join("---:" for _ in names) + " |")
    for function in cases("float64"):
        for dtype in DTYPES:
            cells = []
            for name in names:
                value = results.get((function, dtype, name))
                cells.append("—" if value is None or np.isnan(value) else _fmt(value))
            rows.append(f"| {function} | {dtype} | " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"


def _fmt(value: float) -> str:
    if not np.isfinite(value) or value > 1e300:  # ±inf, or 0 in a log where -inf is due
        return "inf"
    if value >= 1e6:
        return f"{value:.0e}"
    return f"{value:.3g}"


if __name__ == "__main__":
    print(table())
