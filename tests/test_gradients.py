"""Gradients through the primitives: torch autograd and jax.grad give the
mathematically right derivative, never NaN for finite inputs."""

from __future__ import annotations

import mpmath as mp
import numpy as np
import pytest

import arraykit as ak
from backends import Backend

from . import reference
from .assertions import assert_close

AUTODIFF = ("torch", "jax")


def _grad(xb: Backend, function: object, *arrays: object) -> tuple[object, ...]:
    """Gradients of ``sum(function(*arrays) * weights)`` with respect to every array."""
    if xb.library == "torch":
        import torch

        leaves = [a.clone().requires_grad_(True) for a in arrays]  # type: ignore[attr-defined]
        out = function(*leaves)  # type: ignore[operator]
        weights = (
            torch.linspace(0.5, 1.5, out.numel(), dtype=out.dtype).reshape(out.shape).to(out.device)
        )
        torch.autograd.backward((out * weights).sum())
        return tuple(leaf.grad for leaf in leaves)
    import jax
    import jax.numpy as jnp

    def objective(*args: object) -> object:
        out = function(*args)  # type: ignore[operator]
        weights = jnp.linspace(0.5, 1.5, out.size, dtype=out.dtype).reshape(out.shape)
        return (out * weights).sum()

    return tuple(jax.grad(objective, argnums=tuple(range(len(arrays))))(*arrays))


def _weights(n: int) -> np.ndarray:
    return np.linspace(0.5, 1.5, n)


@pytest.fixture
def ad(xb: Backend) -> Backend:
    if xb.library not in AUTODIFF:
        pytest.skip(f"{xb.id} has no automatic differentiation")
    return xb


def _sigmoid_second_derivative(x: np.ndarray) -> np.ndarray:
    def one(v: float) -> float:
        s = 1 / (1 + mp.exp(-mp.mpf(float(v))))
        return float(s * (1 - s) * (1 - 2 * s))

    return np.array([one(v) for v in x])


def test_sigmoid_gradient(ad: Backend) -> None:
    values = np.concatenate([[0.0, -0.0, 30.0, -30.0, 700.0, -700.0], np.linspace(-40, 40, 41)])
    (grad,) = _grad(ad, ak.sigmoid, ad.asarray(values, "float64"))
    desired = reference.sigmoid_derivative(values) * _weights(values.size)
    assert_close(grad, desired, ad, "float64", ulps=8)
    assert ad.to_numpy(grad)[0] == 0.25 * 0.5  # d sigmoid/dx at 0 is exactly 1/4


def test_sigmoid_gradient_float32_tails(ad: Backend) -> None:
    values = np.array([17.0, 20.0, 30.0, 80.0, -17.0, -20.0, -30.0, -80.0])
    (grad,) = _grad(ad, ak.sigmoid, ad.asarray(values, "float32"))
    desired = reference.sigmoid_derivative(values) * _weights(values.size)
    assert_close(grad, desired, ad, "float32", ulps=8)


def test_sigmoid_derivative_gradient(ad: Backend) -> None:
    values = np.concatenate([[0.0, 30.0, -30.0, 700.0], np.linspace(-40, 40, 33)])
    (grad,) = _grad(ad, ak.sigmoid_derivative, ad.asarray(values, "float64"))
    desired = _sigmoid_second_derivative(values) * _weights(values.size)
    # A difference of two nearly equal terms near x = 0, where σ'' crosses 0:
    # compare with an absolute floor there.
    got = ad.to_numpy(grad)
    np.testing.assert_allclose(got, desired, rtol=1e-12, atol=1e-16)


def test_softmax_gradient(ad: Backend) -> None:
    rng = np.random.default_rng(7)
    values = rng.normal(size=(3, 5)) * 4
    values[1] += 1000.0
    (grad,) = _grad(ad, ak.softmax, ad.asarray(values, "float64"))
    s = np.exp(values - values.max(axis=1, keepdims=True))
    s /= s.sum(axis=1, keepdims=True)
    w = _weights(values.size).reshape(values.shape)
    desired = s * (w - (s * w).sum(axis=1, keepdims=True))  # J^T w for softmax
    np.testing.assert_allclose(ad.to_numpy(grad), desired, rtol=1e-10, atol=1e-15)


def test_normalize_rows_gradient(ad: Backend) -> None:
    values = np.array([[3.0, 4.0, 0.0], [1e-30, -2e-30, 2e-30], [1.0, 1.0, 1.0]])
    (grad,) = _grad(ad, ak.normalize_rows, ad.asarray(values, "float64"))
    w = _weights(values.size).reshape(values.shape)
    norm = np.sqrt((values**2).sum(axis=1, keepdims=True))
    y = values / norm
    desired = (w - y * (y * w).sum(axis=1, keepdims=True)) / norm
    np.testing.assert_allclose(ad.to_numpy(grad), desired, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", ["l1_loss", "l2_loss"])
def test_loss_gradients(ad: Backend, name: str) -> None:
    yhat = np.array([0.9, 0.2, 0.1, 0.4, 0.9])
    y = np.array([1.0, 0.0, 0.0, 1.0, 1.0])
    function = getattr(ak, name)
    g_yhat, g_y = _grad(ad, function, ad.asarray(yhat, "float64"), ad.asarray(y, "float64"))
    d = yhat - y
    weight = _weights(1)[0]  # the loss is one number, weighted like any output
    desired = weight * (np.sign(d) if name == "l1_loss" else 2 * d)
    np.testing.assert_allclose(ad.to_numpy(g_yhat), desired, rtol=1e-14)
    np.testing.assert_allclose(ad.to_numpy(g_y), -desired, rtol=1e-14)


@pytest.mark.parametrize("name", ["sigmoid", "sigmoid_derivative", "softmax"])
def test_no_nan_gradients_over_the_finite_range(ad: Backend, name: str) -> None:
    values = reference.finite_values("float32", 200, seed=8)
    (grad,) = _grad(ad, getattr(ak, name), ad.asarray(values, "float32"))
    assert np.isfinite(ad.to_numpy(grad)).all()
