"""The classic experiment: fitting a line y = b + w·x to ten points.

The loss is the mean squared error L(b, w) = mean((y − (b + w·x))²), which
depends on the data only through a few moments. This module validates the
data, computes those moments once, in the caller's namespace, and hands
them to the formulas (:mod:`arraykit._line`, :mod:`arraykit._adagrad`): the
loss surface in one broadcast, gradient descent's whole trajectory in
closed form, and Adagrad's two-number loop.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Sequence
from typing import Any

import array_api_compat
import numpy as np

from . import _adagrad, _dispatch, _line, drivers, optim
from ._array_api import (
    NUMPY_XP,
    Array,
    ArrayLike,
    Namespace,
    array_args,
    compute_dtype,
    describe,
    host_copy,
    namespace_of,
    resolve_namespace,
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
    xp = NUMPY_XP if xp is None else resolve_namespace(xp)
    kwargs: dict[str, Any] = {"device": device} if device is not None else {}
    if dtype is not None:
        kwargs["dtype"] = dtype
    x = xp.asarray(CLASSIC_X, **kwargs)
    y = xp.asarray(CLASSIC_Y, **kwargs)
    if not xp.isdtype(x.dtype, "real floating"):
        raise TypeError(f"dtype must be a real floating dtype; got {x.dtype}")
    return x, y


def _moments(x: ArrayLike, y: ArrayLike, xp: Namespace | None) -> _line.Moments:
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
    # A constant x's mean is that constant exactly (a rounded mean would leave a
    # variance of a few roundings squared, and a slope of their ratio): its
    # variance is then exactly 0, the one case where the slope is undetermined.
    lowest = xp.min(x)
    mean_x = xp.where(lowest == xp.max(x), lowest, xp.mean(x))
    mean_y = xp.mean(y)
    dx = x - mean_x
    var_x = xp.mean(dx * dx)
    varies = var_x > 0
    slope = xp.mean(dx * (y - mean_y)) / xp.where(varies, var_x, 1.0)
    # Every line through (x̄, ȳ) fits constant data equally well; of them, the
    # point (b, w) nearest the origin, as numpy.linalg.lstsq chooses.
    nearest = mean_y / (1.0 + mean_x * mean_x)
    slope = xp.where(varies, slope, mean_x * nearest)
    intercept = xp.where(varies, mean_y - slope * mean_x, nearest)
    e = y - intercept - slope * x
    return _line.Moments(
        xp=xp,
        mean_x=mean_x,
        var_x=var_x,
        optimum=xp.stack([intercept, slope]),
        loss_at_optimum=xp.mean(e * e),
        residual_mean=xp.mean(e),
        residual_x_mean=xp.mean(e * x),
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
        Where every x is the same value c, every line through (c, ȳ) fits
        equally well: the one returned is the point of that line nearest the
        origin, ``[ȳ, c·ȳ] / (1 + c²)``, as :func:`numpy.linalg.lstsq` gives.

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
        1-D grids of intercepts and slopes, of any array library (NumPy ranges
        beside data on a GPU, say): they are taken to the data's namespace,
        device and dtype.
    xp : namespace, optional
        The data's namespace; inferred when omitted.

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
    namespace = m.xp
    # The grids are the caller's axes, often NumPy ranges beside data on a
    # GPU: arrays of another library come over through the host (they are
    # small), then everything follows the data's namespace and device.
    b, w = (
        namespace.asarray(host_copy(v))
        if array_api_compat.is_array_api_obj(v) and namespace_of(v) is not namespace
        else v
        for v in (b, w)
    )
    namespace, (b, w) = array_args(("b", "w"), (b, w), namespace)
    b, w = (_on_device_of(m.optimum, v, namespace) for v in (b, w))
    for name, grid in (("b", b), ("w", w)):
        if grid.ndim != 1:
            raise ValueError(f"{name} must be a 1-D grid; got {describe(grid)}")
    dtype = m.optimum.dtype
    b = namespace.reshape(namespace.astype(b, dtype), (1, -1))
    w = namespace.reshape(namespace.astype(w, dtype), (-1, 1))
    return _line.loss(m, b, w)


def _on_device_of(like: Array, value: Array, xp: Namespace) -> Array:
    """``value`` moved to ``like``'s device, where ``like`` has one (a tracer has none)."""
    device = array_api_compat.device(like)
    if device is None or array_api_compat.device(value) == device:
        return value
    return xp.asarray(value, device=device)


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
        moments = [getattr(m, name) for name in _line.FIELDS]
        history, losses = _dispatch.dispatch(
            xp,
            "line_descent",
            _line.descent_of,
            *moments,
            theta0,
            float(lr),
            record_every,
            steps // record_every + 1,
        )
        if steps % record_every:
            final = _dispatch.dispatch(
                xp, "line_descent", _line.descent_of, *moments, theta0, float(lr), steps, 2
            )[0][1, :]
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
        result = dataclasses.replace(result, losses=losses)
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


def _path_loss(m: _line.Moments, history: Array) -> Array:
    # A diverging run's loss overflows to inf, as the closed form reports it,
    # without NumPy's warning: the result says that it diverged.
    with np.errstate(over="ignore", invalid="ignore"):
        return _line.loss(m, history[:, 0], history[:, 1])


def _moment_vector(m: _line.Moments) -> Array:
    """The moments in the order of :data:`arraykit._adagrad.MOMENTS`."""
    xp = m.xp
    return xp.stack(
        [m.mean_x, m.var_x, m.optimum[0], m.optimum[1], m.residual_mean, m.residual_x_mean]
    )


def _on_numpy(m: _line.Moments) -> _line.Moments:
    import dask
    import numpy as np

    fields = ("mean_x", "var_x", "optimum", "loss_at_optimum", "residual_mean", "residual_x_mean")
    values = dask.compute(*(getattr(m, f) for f in fields))
    numpy = array_api_compat.array_namespace(np.empty(0))
    return _line.Moments(numpy, *(np.asarray(v) for v in values))


def _to_dask(result: OptimizeResult) -> OptimizeResult:
    import dask.array as da

    def wrap(a: Array) -> Array:
        return da.from_array(a, chunks=a.shape)

    return dataclasses.replace(
        result,
        params=wrap(result.params),
        history=wrap(result.history),
        losses=wrap(result.losses),
    )
