"""Running an optimizer for many steps, with history, losses and divergence."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import array_api_compat
import numpy as np

from . import _formulas, optim
from ._array_api import Array
from ._trees import Params, tree_leaves, tree_map
from .optim import Optimizer

__all__ = ["OptimizeResult", "optimize", "run_adagrad", "run_gradient_descent"]

Gradient = Callable[[Params], Params]
Loss = Callable[[Params], Array]


@dataclass(frozen=True)
class OptimizeResult:
    """What a run of an optimizer produced, in the parameters' namespace and device.

    Attributes
    ----------
    params
        The final parameters (after ``steps`` updates, or where the run
        stopped), with the structure of the starting parameters.
    history
        The recorded iterates, stacked: for a parameter of shape ``S``, an
        array of shape ``(records, *S)`` holding the start and every
        ``record_every``-th iterate.
    losses
        The loss at each recorded iterate, shape ``(records,)``, when a loss
        function was given; else None.
    steps
        The number of updates taken.
    record_every
        The steps between two records: ``history[i]`` is the iterate after
        ``i·record_every`` updates (:attr:`recorded_steps` lists them). It is
        larger than 1 where it was asked for, or where ``record_every=None``
        thinned the history of large parameters to fit in 64 MiB.
    diverged
        True if the parameters stopped being finite. The run then stops at
        the next check (every ``sync_every`` steps) unless
        ``stop_on_divergence=False``. Under a JAX transformation (``jit``,
        ``vmap``, ``grad``) the values cannot be looked at while tracing:
        ``diverged`` is then a boolean JAX array, and the run is not cut
        (the records after a divergence are non-finite).
    """

    params: Params
    history: Params
    losses: Array | None
    steps: int
    diverged: bool | Array
    record_every: int = 1

    @property
    def recorded_steps(self) -> range:
        """The step after which each record of ``history`` was taken (0: the start)."""
        count = tree_leaves(self.history)[0].shape[0]
        return range(0, count * self.record_every, self.record_every)

    def __repr__(self) -> str:
        status = "diverged" if self.diverged is True else "finite"
        if not isinstance(self.diverged, bool):
            status = f"diverged={self.diverged!r}"
        return f"OptimizeResult(steps={self.steps}, {status}, params={self.params!r})"


def _namespace(params: Params) -> Any:
    return array_api_compat.array_namespace(*tree_leaves(params))


def _finite_flag(params: Params, xp: Any) -> Array:
    """A 0-d boolean array: whether every parameter is finite."""
    flags = [xp.all(xp.isfinite(leaf)) for leaf in tree_leaves(params)]
    combined = flags[0]
    for flag in flags[1:]:
        combined = combined & flag
    return combined


def _all_finite(params: Params, xp: Any) -> bool:
    return bool(_finite_flag(params, xp))  # the one host transfer of a check


def _stack(records: list[Params], xp: Any) -> Params:
    return tree_map(lambda *leaves: xp.stack(leaves), records[0], *records[1:])


HISTORY_BUDGET = 64 * 2**20
"""Bytes the history may take by default (``record_every=None``)."""

PROGRESS_EVERY = 1000
"""Steps between calls of a run's ``progress`` callback."""

DEVICE_CHECK_EVERY = 1000
"""Steps between divergence checks where a check costs a device-to-host copy."""

LAZY_CHECK_EVERY = 20
"""Steps between Dask's checks, each a ``persist``: building a graph costs more per step
the longer it is (each operation merges its inputs' layers), so a short one is
cheaper to build than the check costs (docs/benchmarks.md, "Dask's steps")."""


def check_counts(steps: int, record_every: int | None, sync_every: int | None) -> None:
    for name, value, low in (
        ("steps", steps, 0),
        ("record_every", record_every, 1),
        ("sync_every", sync_every, 1),
    ):
        if value is None and name != "steps":
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int; got {type(value).__name__} {value!r}")
        if value < low:
            raise ValueError(f"{name} must be >= {low}; got {value}")


def default_record_every(params: Params, steps: int, xp: Any) -> int:
    """Every iterate while the history fits :data:`HISTORY_BUDGET`, else evenly spaced ones."""
    size = 0
    for leaf in tree_leaves(params):
        count = _formulas.element_count(leaf)
        if count is None or not isinstance(count, int):
            return max(steps, 1)  # unknown sizes: the start and the end
        bits = (
            xp.finfo if xp.isdtype(leaf.dtype, ("real floating", "complex floating")) else xp.iinfo
        )(leaf.dtype).bits
        size += count * (bits // 8)
    fit = max(HISTORY_BUDGET // max(size, 1) - 1, 1)  # records after the start
    return max(-(-steps // fit), 1)


def _check_every(params: Params, xp: Any) -> int:
    """Every step where looking at the values is free (host memory), every 20 on Dask,
    else every 1000."""
    if array_api_compat.is_dask_namespace(xp):
        return LAZY_CHECK_EVERY  # each check persists the graph
    leaf = tree_leaves(params)[0]
    if array_api_compat.is_numpy_namespace(xp) or xp.__name__ == "array_api_strict":
        return 1
    device = getattr(leaf, "device", None)
    return 1 if getattr(device, "type", None) == "cpu" else DEVICE_CHECK_EVERY


def optimize(
    optimizer: Optimizer,
    grad: Gradient,
    params: Params,
    *,
    steps: int,
    record_every: int | None = None,
    loss: Loss | None = None,
    stop_on_divergence: bool = True,
    sync_every: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> OptimizeResult:
    """Take ``steps`` updates of ``optimizer`` with gradients from ``grad``.

    Parameters
    ----------
    optimizer : Optimizer
        From :mod:`arraykit.optim`, e.g. ``ak.optim.adagrad(lr=1.0)``.
    grad : callable
        ``grad(params) -> grads``, written with the parameters' namespace.
    params : array or tuple, list or dict of arrays
        The starting point; never modified.
    steps : int
        Number of updates.
    record_every : int, optional
        Keep every ``record_every``-th iterate (and the start) in ``history``.
        By default every iterate while the history fits in 64 MiB, else
        evenly spaced ones that do: 100 steps of a 1000 × 1000 float64
        parameter keep every 15th (8 MB a record).
    loss : callable, optional
        ``loss(params) -> 0-d array``, evaluated at every recorded iterate.
    stop_on_divergence : bool, default True
        Stop at the first check that finds non-finite parameters.
    sync_every : int, optional
        How often (in steps) the loop looks at the values, to find a
        divergence. By default every step where that is free (NumPy,
        array-api-strict and CPU tensors), every 1000 steps where it is a
        device-to-host copy (CUDA), and every 20 on Dask, where it is a
        ``persist`` that keeps the task graph short (a long one costs more to
        build, per step, than the check). Between checks nothing leaves the
        device.
    progress : callable, optional
        ``progress(done, steps)``, called every 1000 steps and at the end
        (e.g. for a progress bar).

    Returns
    -------
    OptimizeResult

    See Also
    --------
    run_gradient_descent, run_adagrad
        The same loop with the optimizer built for you.
    arraykit.optim.step_in_place
        One step at a time, into a torch model's parameters.

    Notes
    -----
    A run that overflows is reported by the result (``diverged``), not by
    NumPy's floating-point warnings, which are silenced for overflow and
    invalid operations while it steps.

    On JAX the loop is compiled: ``jax.lax.scan`` over the same ``update``,
    with divergence found after the scan and the result cut at the first
    non-finite record.

    On Dask, each check persists the parameters, the optimizer state and the
    records and losses kept since the last check, in one call: the final
    parameters hang on a graph of at most ``sync_every`` steps, and
    ``history`` and ``losses`` on one that grows with the records, not the
    steps. ``dask.compute(result.history, result.losses)`` brings both back
    in one pass.

    Examples
    --------
    >>> import numpy as np
    >>> import arraykit as ak
    >>> result = ak.optimize(ak.optim.gradient_descent(0.25), lambda p: 2 * p,
    ...                      np.array([8.0]), steps=3, loss=lambda p: (p * p).sum())
    >>> result.history.ravel(), result.losses
    (array([8., 4., 2., 1.]), array([64., 16.,  4.,  1.]))

    A learning rate too large for the problem: the run stops at once.

    >>> ak.optimize(ak.optim.gradient_descent(10.0), lambda p: 2 * p, np.ones(3), steps=1000)
    OptimizeResult(steps=242, diverged, params=array([inf, inf, inf]))
    """
    check_counts(steps, record_every, sync_every)
    xp = _namespace(params)
    if record_every is None:
        record_every = default_record_every(params, steps, xp)
    if array_api_compat.is_jax_namespace(xp):  # compiled: no checks to report progress at
        return _optimize_jax(optimizer, grad, params, steps, record_every, loss, stop_on_divergence)
    if sync_every is None:
        sync_every = _check_every(params, xp)
    lazy = array_api_compat.is_dask_namespace(xp)
    state = optimizer.init(params)
    records, losses = [params], ([loss(params)] if loss else [])
    synced = 1  # records before this index are already persisted
    diverged, taken = False, 0
    with np.errstate(over="ignore", invalid="ignore"):
        for taken in range(1, steps + 1):
            params, state = optimizer.update(params, grad(params), state)
            if taken % record_every == 0:
                records.append(params)
                if loss:
                    losses.append(loss(params))
            last = taken == steps
            if progress is not None and (taken % PROGRESS_EVERY == 0 or last):
                progress(taken, steps)
            if taken % sync_every == 0 or last:
                if lazy:
                    import dask

                    params, state, fresh, fresh_losses = dask.persist(
                        params, state, records[synced:], losses[synced:]
                    )
                    records[synced:], losses[synced:] = fresh, fresh_losses
                    synced = len(records)
                if not _all_finite(params, xp):
                    diverged = True
                    if stop_on_divergence:
                        break
    return OptimizeResult(
        params=params,
        history=_stack(records, xp),
        losses=xp.stack(losses) if loss else None,
        steps=taken,
        diverged=diverged,
        record_every=record_every,
    )


def _optimize_jax(
    optimizer: Optimizer,
    grad: Gradient,
    params: Params,
    steps: int,
    record_every: int,
    loss: Loss | None,
    stop_on_divergence: bool,
) -> OptimizeResult:
    import jax
    import jax.numpy as jnp

    _register_pytree(jax)

    def step(carry: Any, _: None) -> tuple[Any, None]:
        p, s = carry
        return optimizer.update(p, grad(p), s), None

    def record(carry: Any, _: None) -> tuple[Any, Any]:
        if record_every == 1:  # a nested scan of length 1 costs microseconds a step
            carry, _ = step(carry, None)
        else:
            carry, _ = jax.lax.scan(step, carry, None, length=record_every)
        p = carry[0]
        return carry, (p, loss(p) if loss else jnp.zeros(()))

    records = steps // record_every
    carry = (params, optimizer.init(params))
    carry, (history, losses) = jax.lax.scan(record, carry, None, length=records)
    carry, _ = jax.lax.scan(step, carry, None, length=steps - records * record_every)
    history = tree_map(lambda p0, h: jnp.concatenate([p0[None], h]), params, history)
    losses = jnp.concatenate([loss(params)[None], losses]) if loss else None
    return finish_run(carry[0], history, losses, steps, record_every, stop_on_divergence, jnp)


_REGISTERED: list[Any] = []


def _register_pytree(jax: Any) -> None:
    """Make OptimizeResult a JAX pytree, so jitted functions can return it (once)."""
    if not _REGISTERED:
        jax.tree_util.register_dataclass(
            OptimizeResult,
            data_fields=["params", "history", "losses", "diverged"],
            meta_fields=["steps", "record_every"],
        )
        _REGISTERED.append(jax)


def traced(leaves: list[Array]) -> bool:
    """Whether any of these are JAX tracers (values unknown until the program runs)."""
    jax = sys.modules.get("jax")
    return jax is not None and any(isinstance(leaf, jax.core.Tracer) for leaf in leaves)


def finish_run(
    final: Params,
    history: Params,
    losses: Array | None,
    steps: int,
    record_every: int,
    stop_on_divergence: bool,
    xp: Any,
) -> OptimizeResult:
    """The result of a run whose whole history was computed at once.

    Where the parameters stopped being finite and ``stop_on_divergence`` is
    set, the run is cut at the first non-finite record, as a stepping loop
    that checked every record would have stopped.
    """
    leaves = tree_leaves(history)
    # One reduction over each whole history; the per-record check (a slow
    # reduction along short rows) only where a run has to be cut.
    records_flag = _finite_flag(history, xp)
    if traced([*leaves, *tree_leaves(final)]):
        # No host checks while tracing: divergence is reported as an array.
        diverged = ~(records_flag & _finite_flag(final, xp))
        return OptimizeResult(final, history, losses, steps, diverged, record_every)
    records_finite = bool(records_flag)
    if records_finite and _all_finite(final, xp):
        return OptimizeResult(final, history, losses, steps, False, record_every)
    if records_finite or not stop_on_divergence:
        return OptimizeResult(final, history, losses, steps, True, record_every)
    count = leaves[0].shape[0]
    finite = xp.all(xp.isfinite(xp.reshape(leaves[0], (count, -1))), axis=1)
    for leaf in leaves[1:]:
        finite = finite & xp.all(xp.isfinite(xp.reshape(leaf, (count, -1))), axis=1)
    keep = int(xp.argmax(xp.astype(~finite, xp.int8))) + 1  # up to the first bad record
    history = tree_map(lambda h: h[:keep, ...], history)
    final = tree_map(lambda h: h[keep - 1, ...], history)
    losses = losses[:keep] if losses is not None else None
    return OptimizeResult(final, history, losses, (keep - 1) * record_every, True, record_every)


def run_gradient_descent(
    grad: Gradient,
    params: Params,
    *,
    lr: float,
    steps: int,
    record_every: int | None = None,
    loss: Loss | None = None,
    stop_on_divergence: bool = True,
    sync_every: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> OptimizeResult:
    """Run plain gradient descent, ``θ ← θ − lr·grad(θ)``, for ``steps`` steps.

    Parameters are those of :func:`optimize`; ``lr`` is the learning rate.
    The optimizer itself, for a loop of your own, is
    :func:`arraykit.optim.gradient_descent`.

    Returns
    -------
    OptimizeResult

    See Also
    --------
    optimize
        The loop for any optimizer.
    arraykit.optim.gradient_descent
        The optimizer, for a loop of your own.

    Examples
    --------
    >>> import numpy as np
    >>> import arraykit as ak
    >>> result = ak.run_gradient_descent(lambda p: 2 * (p - 3.0), np.array(0.0), lr=0.25, steps=60)
    >>> round(float(result.params), 6), result.history.shape
    (3.0, (61,))
    """
    return optimize(
        optim.gradient_descent(lr),
        grad,
        params,
        steps=steps,
        record_every=record_every,
        loss=loss,
        stop_on_divergence=stop_on_divergence,
        sync_every=sync_every,
        progress=progress,
    )


def run_adagrad(
    grad: Gradient,
    params: Params,
    *,
    lr: float,
    steps: int,
    record_every: int | None = None,
    loss: Loss | None = None,
    stop_on_divergence: bool = True,
    sync_every: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    **adagrad_options: float,
) -> OptimizeResult:
    """Run Adagrad (``torch.optim.Adagrad``'s semantics) for ``steps`` steps.

    Parameters are those of :func:`optimize`; ``lr`` and ``adagrad_options``
    (``eps``, ``initial_accumulator_value``, ``lr_decay``, ``weight_decay``)
    go to :func:`arraykit.optim.adagrad`, the optimizer itself, for a loop of
    your own.

    Returns
    -------
    OptimizeResult

    See Also
    --------
    optimize
        The loop for any optimizer.
    arraykit.optim.adagrad
        The optimizer, for a loop of your own.

    Examples
    --------
    >>> import numpy as np
    >>> import arraykit as ak
    >>> result = ak.run_adagrad(lambda p: 2 * (p - 3.0), np.array(0.0), lr=1.0, steps=500)
    >>> round(float(result.params), 6)
    3.0
    """
    return optimize(
        optim.adagrad(lr, **adagrad_options),
        grad,
        params,
        steps=steps,
        record_every=record_every,
        loss=loss,
        stop_on_divergence=stop_on_divergence,
        sync_every=sync_every,
        progress=progress,
    )
