"""The classic experiment: fitting a line y = b + w·x to ten points.

The loss is the mean squared error L(b, w) = mean((y − (b + w·x))²). It
depends on the data only through a few moments, and its gradient is affine
in (b, w): ∇L(θ) = r + H·(θ − θ*), with θ* the least-squares optimum,
H = 2·[[1, x̄], [x̄, mean(x²)]] and r the (rounding-size) gradient at θ*.
This module computes those moments once, in the caller's namespace, and
everything else from them: the loss surface in one broadcast, and the whole
gradient-descent trajectory in closed form.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import array_api_compat
import numpy as np

from . import _adagrad, _dispatch, drivers, optim
from ._array_api import (
    NUMPY_XP,
    Array,
    ArrayLike,
    Namespace,
    array_args,
    compute_dtype,
    describe,
    same_shape,
)
from .drivers import OptimizeResult

__all__ = ["classic_data", "fit_line", "least_squares", "loss_surface"]

CLASSIC_X = (338.0, 333.0, 328.0, 207.0, 226.0, 25.0, 179.0, 60.0, 208.0, 606.0)
CLASSIC_Y = (640.0, 633.0, 619.0, 393.0, 428.0, 27.0, 193.0, 66.0, 226.0, 1591.0)
CLASSIC_START = (-120.0, -4.0)
"""The classic starting point (b, w)."""


def classic_data(
    xp: Namespace | None = None, device: Any = None, dtype: Any = None
) -> tuple[Array, Array]:
    """The ten (x, y) points of the classic experiment.

    Parameters
    ----------
    xp : namespace, optional
        Where to create the arrays; NumPy by default.
    device : optional
        The device, in ``xp``'s terms (e.g. ``torch.device("cuda")``).
    dtype : optional
        A real floating dtype of ``xp``; its default floating dtype if omitted.

    Returns
    -------
    x, y : arrays of shape (10,)

    See Also
    --------
    fit_line
        Fitting the line to them.
    loss_surface
        The loss over (b, w) for them.

    Examples
    --------
    >>> import arraykit as ak
    >>> x, y = ak.regression.classic_data()
    >>> x[:3], y[:3]
    (array([338., 333., 328.]), array([640., 633., 619.]))
    """
    if xp is None:
        xp = NUMPY_XP
    kwargs: dict[str, Any] = {"device": device} if device is not None else {}
    if dtype is not None:
        kwargs["dtype"] = dtype
    x = xp.asarray(CLASSIC_X, **kwargs)
    y = xp.asarray(CLASSIC_Y, **kwargs)
    if not xp.isdtype(x.dtype, "real floating"):
        raise TypeError(f"dtype must be a real floating dtype; got {x.dtype}")
    return x, y


@dataclass(frozen=True)
class _Moments:
    """What L depends on, centred so that nothing cancels badly."""

    xp: Any
    mean_x: Array
    var_x: Array
    optimum: Array  # [b*, w*]
    loss_at_optimum: Array
    residual_mean: Array  # mean(e), e = y - b* - w*·x: 0 but for rounding
    residual_x_mean: Array  # mean(e·x), likewise


def _moments(x: ArrayLike, y: ArrayLike, xp: Namespace | None) -> _Moments:
    xp, (x, y) = array_args(("x", "y"), (x, y), xp)
    for name, value in (("x", x), ("y", y)):
        if value.ndim != 1:
            raise ValueError(f"{name} must be 1-D, one value per point; got {describe(value)}")
    if not same_shape(x.shape, y.shape):
        raise ValueError(
            f"x and y must have the same shape; got x: {describe(x)}, y: {describe(y)}"
        )
    if x.shape[0] is not None and x.shape[0] < 2:
        raise ValueError(f"a line needs at least 2 points; got {describe(x)}")
    work = xp.result_type(compute_dtype(xp, x, "x")[0], compute_dtype(xp, y, "y")[0])
    x, y = xp.astype(x, work), xp.astype(y, work)
    mean_x, mean_y = xp.mean(x), xp.mean(y)
    dx = x - mean_x
    var_x = xp.mean(dx * dx)
    slope = xp.mean(dx * (y - mean_y)) / var_x
    intercept = mean_y - slope * mean_x
    e = y - intercept - slope * x
    return _Moments(
        xp=xp,
        mean_x=mean_x,
        var_x=var_x,
        optimum=xp.stack([intercept, slope]),
        loss_at_optimum=xp.mean(e * e),
        residual_mean=xp.mean(e),
        residual_x_mean=xp.mean(e * x),
    )


def _loss(m: _Moments, b: Array, w: Array) -> Array:
    # L(b, w) = mean((e - db - dw·x)^2), expanded around the optimum: every
    # term but the (rounding-size) cross terms is non-negative, so the
    # surface keeps full accuracy near its minimum.
    db, dw = b - m.optimum[0], w - m.optimum[1]
    shift = db + dw * m.mean_x
    return (
        m.loss_at_optimum
        + shift * shift
        + dw * dw * m.var_x
        - 2.0 * (db * m.residual_mean + dw * m.residual_x_mean)
    )


def least_squares(x: ArrayLike, y: ArrayLike, *, xp: Namespace | None = None) -> Array:
    """The exact optimum ``[b*, w*]`` of the mean squared error, in closed form.

    Parameters
    ----------
    x, y : array_like
        1-D arrays of the same length (at least 2, with x not all equal).
    xp : namespace, optional
        The arrays' namespace; inferred when omitted.

    Returns
    -------
    array of shape (2,)
        ``w* = cov(x, y) / var(x)`` and ``b* = ȳ − w*·x̄``, from centred sums.

    See Also
    --------
    fit_line
        Getting there by gradient descent or Adagrad.

    Examples
    --------
    >>> import arraykit as ak
    >>> ak.regression.least_squares(*ak.regression.classic_data())
    array([-188.43319666,    2.66945497])
    """
    return _moments(x, y, xp).optimum


def loss_surface(
    x: ArrayLike, y: ArrayLike, b: ArrayLike, w: ArrayLike, *, xp: Namespace | None = None
) -> Array:
    """The loss on a grid: ``Z[j, i] = L(b[i], w[j])``.

    Parameters
    ----------
    x, y : array_like
        The data, 1-D arrays of the same length.
    b, w : array_like
        1-D grids of intercepts and slopes.
    xp : namespace, optional
        The arrays' namespace; inferred when omitted.

    Returns
    -------
    array of shape (len(w), len(b))
        Rows follow ``w`` and columns ``b``, as ``matplotlib.pyplot.contour``
        expects. Computed from five moments of the data in one broadcast.

    See Also
    --------
    fit_line
        Trajectories across the surface.
    least_squares
        Its minimum.

    Examples
    --------
    >>> import numpy as np
    >>> import arraykit as ak
    >>> x, y = ak.regression.classic_data()
    >>> ak.regression.loss_surface(x, y, np.array([-120.0, 0.0]), np.array([-4.0])).round(1)
    array([[3670819., 3299875.]])
    """
    m = _moments(x, y, xp)
    namespace, (b, w) = array_args(("b", "w"), (b, w), m.xp)
    dtype = m.optimum.dtype
    b = namespace.reshape(namespace.astype(b, dtype), (1, -1))
    w = namespace.reshape(namespace.astype(w, dtype), (-1, 1))
    return _loss(m, b, w)


def _powers(h: Array, every: int, count: int, xp: Namespace) -> tuple[Array, Array]:
    """``(1 − h)**t`` at ``t = 0, every, 2·every, ...`` (``count`` times), ``h >= 0``.

    Returns the powers and where they diverge. Each power is one product of
    two from short tables (t = j·block + k), each table entry an ``exp`` of
    an exact integer times the base's logarithm: one pass over the result
    instead of an ``exp`` per entry, and no error that grows with t. The
    logarithm goes through ``log1p(−h)`` for small ``h`` (small learning
    rates), where forming ``1 − h`` first would lose the digits that matter
    over 100,000 steps. For ``h > 1`` the base is negative and its sign
    alternates.
    """
    below = h < 1
    log_magnitude = xp.where(
        below, xp.log1p(-xp.where(below, h, 0.0)), xp.log(xp.where(h > 1, h - 1.0, 1.0))
    )
    # A power past a quarter of the float range's exponent marks the
    # trajectory as diverged (inf) from there on. Each table entry is capped
    # there, so no product of two overflows, nor the loss (quadratic in the
    # powers) computed from them.
    limit = math.log(float(xp.finfo(h.dtype).max)) / 4 - 5.0
    block = math.isqrt(max(count - 1, 0)) + 1
    device = array_api_compat.device(h)

    def table(length: int, stride: int) -> Array:
        t = xp.arange(0, length * stride, stride, dtype=h.dtype, device=device)
        value = xp.exp(xp.clip(t * log_magnitude, max=limit))
        value = xp.where(h == 1, xp.astype(t == 0, value.dtype), value)  # 0**0 = 1
        return xp.where((h > 1) & ((t % 2) == 1), -value, value)

    high = table(-(-count // block), block * every)
    low = table(block, every)
    powers = xp.reshape(high[:, None] * low[None, :], (-1,))[:count]
    return powers, xp.abs(powers) >= math.exp(limit)


def _gradient_descent_closed_form(
    m: _Moments, lr: float, start: Array, every: int, count: int
) -> tuple[Array, Array]:
    """θ_t and L(θ_t) of full-batch gradient descent, at ``t = 0, every, ...``.

    θ_{t+1} − θ_f = M·(θ_t − θ_f) with M = I − lr·H and θ_f the fixed point
    of the gradient; in H's eigenbasis that is a power of each eigenvalue.
    """
    xp = m.xp
    a, var = m.mean_x, m.var_x
    q = var + a * a  # mean(x²)
    # θ_f = θ* − H⁻¹ r; H⁻¹ = [[q, −a], [−a, 1]] / (2·var), since det = var.
    r0, r1 = -2.0 * m.residual_mean, -2.0 * m.residual_x_mean
    fixed = m.optimum - xp.stack([q * r0 - a * r1, r1 - a * r0]) / (2.0 * var)
    # Eigenvalues of [[1, a], [a, q]] (H/2); the small one as det / large,
    # which does not cancel.
    d = q - 1.0
    root = xp.sqrt(d * d + 4.0 * a * a)
    large = (1.0 + q + root) / 2.0
    small = var / large
    # Its eigenvector, from whichever form does not cancel.
    u0 = xp.where(d >= 0, a, (root - d) / 2.0)
    u1 = xp.where(d >= 0, (d + root) / 2.0, a)
    norm = xp.sqrt(u0 * u0 + u1 * u1)
    u0, u1 = u0 / norm, u1 / norm
    delta = start - fixed
    c_large = u0 * delta[0] + u1 * delta[1]
    c_small = -u1 * delta[0] + u0 * delta[1]
    p_large, over_large = _powers(2.0 * lr * large, every, count, xp)
    p_small, over_small = _powers(2.0 * lr * small, every, count, xp)
    k_large, k_small = c_large * p_large, c_small * p_small
    diverging = over_large | over_small
    # Column by column: NumPy broadcasts slowly along an axis of length 2.
    b = xp.where(diverging, math.inf, fixed[0] + u0 * k_large - u1 * k_small)
    w = xp.where(diverging, math.inf, fixed[1] + u1 * k_large + u0 * k_small)
    loss = _loss(m, fixed[0], fixed[1]) + large * k_large * k_large + small * k_small * k_small
    params = xp.stack([b, w], axis=-1)
    return params, xp.where(diverging, math.inf, loss)


def fit_line(
    x: ArrayLike,
    y: ArrayLike,
    *,
    optimizer: str = "gd",
    lr: float,
    steps: int,
    start: Sequence[float] | ArrayLike = (0.0, 0.0),
    record_every: int = 1,
    stop_on_divergence: bool = True,
    sync_every: int = 1000,
    progress: Callable[[int, int], None] | None = None,
    xp: Namespace | None = None,
    **optimizer_options: Any,
) -> OptimizeResult:
    """Fit y = b + w·x by gradient descent or Adagrad on the mean squared error.

    Parameters
    ----------
    x, y : array_like
        The data, 1-D arrays of the same length.
    optimizer : {"gd", "adagrad"}, default "gd"
        Plain full-batch gradient descent, or :func:`arraykit.optim.adagrad`.
    lr : float
        The learning rate.
    steps : int
        Number of updates.
    start : (b0, w0), default (0, 0)
        The starting point. The classic experiment starts at
        :data:`CLASSIC_START`, (−120, −4), far from the classic data's
        optimum on purpose; pass it with :func:`classic_data`.
    record_every : int, default 1
        Keep every ``record_every``-th iterate in ``history`` and ``losses``.
    stop_on_divergence, sync_every, progress
        As for :func:`arraykit.optimize` (the closed form needs no checks).
    xp : namespace, optional
        The data's namespace; inferred when omitted.
    **optimizer_options
        Passed to :func:`arraykit.optim.adagrad` (``eps``, ...).

    Returns
    -------
    OptimizeResult
        ``params`` is ``[b, w]``; ``history`` has shape
        ``(steps // record_every + 1, 2)``; ``losses`` is filled.

    See Also
    --------
    least_squares
        Where the runs are headed, in closed form.
    loss_surface
        The landscape they cross.
    arraykit.run_adagrad
        Adagrad on a gradient of your own.

    Notes
    -----
    Gradient descent on a least-squares loss is an affine recurrence, so its
    whole trajectory is computed in closed form, from powers of the
    iteration matrix's eigenvalues: 100,000 steps take milliseconds and
    agree with stepping one by one to about 1e-12. Adagrad is stepped, with
    the gradient from the data's moments; on JAX that loop is compiled. On
    Dask the moments are computed in one pass over the data and the
    two-parameter loop runs on NumPy; the results come back as Dask arrays.

    Examples
    --------
    >>> import arraykit as ak
    >>> x, y = ak.regression.classic_data()
    >>> result = ak.regression.fit_line(x, y, optimizer="adagrad", lr=1.0, steps=100_000,
    ...                                 start=ak.regression.CLASSIC_START)
    >>> result.params.round(4), result.history.shape
    (array([-188.3668,    2.6693]), (100001, 2))

    On other data, from the origin:

    >>> ak.regression.fit_line([1.0, 2.0, 3.0], [2.0, 4.0, 6.0], optimizer="adagrad",
    ...                        lr=0.5, steps=5000).params.round(4)
    array([0., 2.])
    """
    if optimizer not in ("gd", "adagrad"):
        raise ValueError(f"optimizer must be 'gd' or 'adagrad'; got {optimizer!r}")
    m = _moments(x, y, xp)
    caller = m.xp
    if array_api_compat.is_dask_namespace(caller):
        # The loop over two numbers gains nothing from a task graph: compute
        # the moments once and run it on NumPy.
        m = _on_numpy(m)
    xp = m.xp
    theta0 = xp.asarray(start, dtype=m.optimum.dtype, device=array_api_compat.device(m.optimum))
    if theta0.shape != (2,):
        raise ValueError(f"start must be (b0, w0); got {describe(theta0)}")
    if optimizer == "gd":
        if optimizer_options:
            raise TypeError(f"gradient descent takes no options; got {sorted(optimizer_options)}")
        drivers.check_counts(steps, record_every, sync_every)
        optim.gradient_descent(lr)  # validates lr
        history, losses = _gradient_descent_closed_form(
            m, float(lr), theta0, record_every, steps // record_every + 1
        )
        if steps % record_every:
            final = _gradient_descent_closed_form(m, float(lr), theta0, steps, 2)[0][1, :]
        else:
            final = history[-1, :]
        result = drivers.finish_run(
            final, history, losses, steps, record_every, stop_on_divergence, xp
        )
    elif array_api_compat.is_jax_namespace(xp) and (
        drivers.traced([theta0, m.optimum]) or m.optimum.dtype != xp.float64
    ):
        # Compiled: jax.lax.scan over the update, traceable under jit and vmap.
        # (Concrete float64 arrays take the two-number loop below.)
        hessian, residual = _adagrad.line_gradient(_moment_vector(m), xp)

        def grad(theta: Array) -> Array:
            return residual + hessian @ (theta - m.optimum)

        result = drivers.run_adagrad(
            grad,
            theta0,
            lr=lr,
            steps=steps,
            record_every=record_every,
            stop_on_divergence=stop_on_divergence,
            sync_every=sync_every,
            progress=progress,
            **optimizer_options,
        )
        history = result.history
        losses = _path_loss(m, history)
        result = OptimizeResult(result.params, history, losses, result.steps, result.diverged)
    else:
        drivers.check_counts(steps, record_every, sync_every)
        settings = inspect.signature(optim.adagrad).bind(lr, **optimizer_options)
        settings.apply_defaults()
        rate, *options = optim.adagrad_settings(*settings.args)
        path = _dispatch.dispatch(
            xp,
            "line_adagrad",
            _adagrad.line_adagrad,
            _moment_vector(m),
            theta0,
            steps,
            record_every,
            rate,
            *options,
        )
        history = path[:-1, :]
        losses = _path_loss(m, history)
        result = drivers.finish_run(
            path[-1, :], history, losses, steps, record_every, stop_on_divergence, xp
        )
        if progress is not None:
            progress(steps, steps)
    if caller is not xp:
        result = _to_dask(result)
    return result


def _path_loss(m: _Moments, history: Array) -> Array:
    # A diverging run's loss overflows to inf, as the closed form reports it,
    # without NumPy's warning: the result says that it diverged.
    with np.errstate(over="ignore", invalid="ignore"):
        return _loss(m, history[:, 0], history[:, 1])


def _moment_vector(m: _Moments) -> Array:
    """The moments in the order of :data:`arraykit._adagrad.MOMENTS`."""
    xp = m.xp
    return xp.stack(
        [m.mean_x, m.var_x, m.optimum[0], m.optimum[1], m.residual_mean, m.residual_x_mean]
    )


def _on_numpy(m: _Moments) -> _Moments:
    import dask
    import numpy as np

    fields = ("mean_x", "var_x", "optimum", "loss_at_optimum", "residual_mean", "residual_x_mean")
    values = dask.compute(*(getattr(m, f) for f in fields))
    numpy = array_api_compat.array_namespace(np.empty(0))
    return _Moments(numpy, *(np.asarray(v) for v in values))


def _to_dask(result: OptimizeResult) -> OptimizeResult:
    import dask.array as da

    def wrap(a: Array) -> Array:
        return da.from_array(a, chunks=a.shape)

    return OptimizeResult(
        wrap(result.params),
        wrap(result.history),
        wrap(result.losses),
        result.steps,
        result.diverged,
    )
