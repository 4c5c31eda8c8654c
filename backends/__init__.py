"""The one registry of array backends, shared by tests/ and benchmarks/.

Each :class:`Backend` knows how to tell whether it can run here (a GPU counts
only once a real allocation on it succeeds), how to put NumPy data on its
device in a given dtype, how to bring an array back to NumPy, and how to wait
for pending work. Backend libraries are imported only when a backend is
probed or used, never at import of this module.

Run ``python -m backends`` to see which backends this machine has.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")


@dataclass(frozen=True)
class Backend:
    """One column of the test matrix: a library, and a device in it."""

    id: str
    library: str
    """Import name of the library (``numpy``, ``torch``, ``jax``, ...)."""
    gpu: bool
    dtypes: tuple[str, ...]
    """Floating dtypes the backend has (bfloat16 only where it is native)."""
    _setup: Callable[[], Any] = field(repr=False)
    """Imports the library and returns its device object; raises if unusable."""
    _put: Callable[[np.ndarray, Any], Any] = field(repr=False)
    """(NumPy data already in the wanted dtype or float32, device) -> array."""
    _cast: Callable[[Any, str], Any] = field(repr=False)
    _get: Callable[[Any], np.ndarray] = field(repr=False)
    _sync: Callable[[Any], None] = field(repr=False)
    lazy: bool = False
    """Operations build a graph and compute only on demand (Dask)."""
    flushes_subnormals: bool = False
    """Arithmetic treats subnormal inputs as zero (XLA on CPU and GPU does)."""
    test_only: str = ""
    """Why this column exists, where it is a variant that only the tests use."""
    default_float: str = "float64"
    """The dtype integer inputs are promoted to (torch's default is float32)."""
    remote: bool = False
    """Work runs in other processes: every compute ships a graph (~30 ms here)."""
    _scope: Callable[[], contextlib.AbstractContextManager[Any]] = field(
        default=contextlib.nullcontext, repr=False
    )

    @functools.cached_property
    def unavailable(self) -> str | None:
        """None when usable here, else the reason it is not (for skips)."""
        try:
            self._setup()
        except Exception as exc:  # any failure to set up is a reason to skip
            return f"{self.id} is unavailable: {type(exc).__name__}: {exc}".strip()
        return None

    @property
    def available(self) -> bool:
        return self.unavailable is None

    @functools.cached_property
    def device(self) -> Any:
        """The device arrays of this backend are created on."""
        return self._setup()

    @property
    def namespace(self) -> Any:
        """The array-API namespace of this backend's arrays."""
        import array_api_compat

        return array_api_compat.array_namespace(self.asarray(np.zeros(1)))

    def asarray(self, data: Any, dtype: str | None = None) -> Any:
        """A new array on this backend's device holding ``data``.

        ``dtype`` is a name from :data:`FLOAT_DTYPES` (or any NumPy dtype
        name for non-floating data); by default the dtype of ``data``.
        """
        data = np.asarray(data)
        name = dtype or data.dtype.name
        if name == "bfloat16":
            return self._cast(self._put(data.astype(np.float32), self.device), name)
        return self._put(data.astype(name), self.device)

    def to_numpy(self, array: Any) -> np.ndarray:
        """The values of ``array`` as a NumPy array (bfloat16 as float32)."""
        return np.asarray(self._get(array))

    def sync(self, array: Any) -> Any:
        """Wait until ``array`` is computed; returns it (computed, for Dask)."""
        self._sync(array)
        return array

    def scope(self) -> contextlib.AbstractContextManager[Any]:
        """A context in which library code runs on this backend as a user's would.

        For the cluster column: Dask computations started inside (a driver's
        ``persist``, a ``bool()`` of a lazy flag) go to the cluster.
        """
        return self._scope()

    def compute(self, array: Any) -> Any:
        """``array`` with all pending work done (a concrete array for Dask)."""
        if not self.lazy:
            return self.sync(array)
        with self.scope():
            return array.compute()


# --- numpy ------------------------------------------------------------------


def _numpy_setup() -> str:
    return "cpu"


def _numpy_put(data: np.ndarray, device: Any) -> np.ndarray:
    return np.array(data, copy=True)


def _numpy_readonly_put(data: np.ndarray, device: Any) -> np.ndarray:
    out = np.array(data, copy=True)
    out.flags.writeable = False  # any attempt to mutate an input then raises
    return out


def _no_cast(array: Any, name: str) -> Any:
    raise ValueError(f"bfloat16 is not available here (asked for {name})")


def _numpy_get(array: Any) -> np.ndarray:
    return np.asarray(array)


def _no_sync(array: Any) -> None:
    return None


# --- array-api-strict -------------------------------------------------------


def _strict_setup(device_name: str | None) -> Callable[[], Any]:
    def setup() -> Any:
        import array_api_strict as xp

        return xp.Device(device_name) if device_name else xp.Device("CPU_DEVICE")

    return setup


def _strict_put(data: np.ndarray, device: Any) -> Any:
    import array_api_strict as xp

    return xp.asarray(data, device=device, copy=True)


def _strict_get(array: Any) -> np.ndarray:
    import array_api_strict as xp

    # The strict library refuses implicit conversion; this is its own way out.
    return np.asarray(xp.asarray(array, device=xp.Device("CPU_DEVICE")))  # type: ignore[no-any-return]


# --- torch ------------------------------------------------------------------


def _torch_setup(device_name: str) -> Callable[[], Any]:
    def setup() -> Any:
        import torch

        device = torch.device(device_name)
        # is_built() says nothing of a GPU being present: allocate for real.
        torch.zeros(1, device=device).add_(1).cpu()
        return device

    return setup


def _torch_put(data: np.ndarray, device: Any) -> Any:
    import torch

    return torch.from_numpy(np.array(data, copy=True)).to(device)


def _torch_cast(array: Any, name: str) -> Any:
    import torch

    return array.to(getattr(torch, name))


def _torch_get(array: Any) -> np.ndarray:
    import torch

    array = array.detach()
    if array.dtype == torch.bfloat16:
        array = array.float()
    return array.cpu().numpy()


def _torch_sync(array: Any) -> None:
    import torch

    if getattr(array, "is_cuda", False):
        torch.cuda.synchronize(array.device)


# --- cupy -------------------------------------------------------------------


def _cupy_setup() -> Any:
    import cupy

    cupy.zeros(1).sum().get()
    return cupy.cuda.Device()


def _cupy_put(data: np.ndarray, device: Any) -> Any:
    import cupy

    with device:
        return cupy.asarray(data)


def _cupy_get(array: Any) -> np.ndarray:
    return array.get()


def _cupy_sync(array: Any) -> None:
    import cupy

    cupy.cuda.get_current_stream().synchronize()


# --- jax --------------------------------------------------------------------


def _jax_setup(platform: str) -> Callable[[], Any]:
    def setup() -> Any:
        import jax

        # float64 must be switched on before any array exists, or it silently
        # becomes float32. Tests and benchmarks want the real float64.
        jax.config.update("jax_enable_x64", True)
        device = jax.devices(platform)[0]
        jax.device_put(np.zeros(1), device).block_until_ready()
        return device

    return setup


def _jax_put(data: np.ndarray, device: Any) -> Any:
    import jax

    return jax.device_put(data, device)


def _jax_cast(array: Any, name: str) -> Any:
    import jax.numpy as jnp

    return array.astype(getattr(jnp, name))


def _jax_get(array: Any) -> np.ndarray:
    import jax.numpy as jnp

    if array.dtype == jnp.bfloat16:
        array = array.astype(jnp.float32)
    return np.asarray(array)


def _jax_sync(array: Any) -> None:
    array.block_until_ready()


# --- dask -------------------------------------------------------------------


def _dask_setup() -> str:
    import dask.array  # noqa: F401

    return "cpu"


def _dask_put(data: np.ndarray, device: Any) -> Any:
    import dask.array as da

    # Split every axis in two, so that reductions along any axis cross chunk
    # boundaries (a row split across blocks is the case worth testing).
    chunks = tuple(max(1, (n + 1) // 2) for n in data.shape)
    return da.from_array(np.array(data, copy=True), chunks=chunks)


def _dask_get(array: Any) -> np.ndarray:
    return np.asarray(array.compute())


def _dask_sync(array: Any) -> None:
    array.compute()


# --- dask on a LocalCluster -------------------------------------------------


@functools.cache
def _cluster_client() -> Any:
    """A client of a small LocalCluster: two worker processes, one thread each.

    Worker processes make the column honest: every graph, function and block
    is pickled and shipped, as on a real cluster.
    """
    import logging

    from dask.distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",  # any free port: never clash with another cluster
        silence_logs=logging.ERROR,
    )
    client = Client(cluster, set_as_default=False)
    atexit.register(_close_cluster, client, cluster)
    return client


def _close_cluster(client: Any, cluster: Any) -> None:
    client.close()
    cluster.close()


def _cluster_setup() -> str:
    _cluster_client()
    return "cpu"


def _cluster_get(array: Any) -> np.ndarray:
    return np.asarray(_cluster_client().compute(array, sync=True))


def _cluster_sync(array: Any) -> None:
    _cluster_client().compute(array, sync=True)


@contextlib.contextmanager
def _cluster_scope() -> Iterator[None]:
    import dask

    with _cluster_client().as_current(), dask.config.set(scheduler="dask.distributed"):
        yield


_HALF = ("float16", "float32", "float64")
_ALL = FLOAT_DTYPES
_STANDARD = ("float32", "float64")

BACKENDS: dict[str, Backend] = {
    b.id: b
    for b in [
        Backend(
            "numpy", "numpy", False, _HALF, _numpy_setup, _numpy_put, _no_cast, _numpy_get, _no_sync
        ),
        Backend(
            "numpy:readonly",
            "numpy",
            False,
            _HALF,
            _numpy_setup,
            _numpy_readonly_put,
            _no_cast,
            _numpy_get,
            _no_sync,
            test_only="read-only inputs, which no function may write into",
        ),
        Backend(
            "array_api_strict",
            "array_api_strict",
            False,
            _STANDARD,
            _strict_setup(None),
            _strict_put,
            _no_cast,
            _strict_get,
            _no_sync,
        ),
        Backend(
            "array_api_strict:device1",
            "array_api_strict",
            False,
            _STANDARD,
            _strict_setup("device1"),
            _strict_put,
            _no_cast,
            _strict_get,
            _no_sync,
            test_only="array-api-strict's second device, which every result must stay on",
        ),
        Backend(
            "torch:cpu",
            "torch",
            False,
            _ALL,
            _torch_setup("cpu"),
            _torch_put,
            _torch_cast,
            _torch_get,
            _torch_sync,
            default_float="float32",
        ),
        Backend(
            "torch:cuda",
            "torch",
            True,
            _ALL,
            _torch_setup("cuda"),
            _torch_put,
            _torch_cast,
            _torch_get,
            _torch_sync,
            default_float="float32",
        ),
        Backend(
            "cupy", "cupy", True, _HALF, _cupy_setup, _cupy_put, _no_cast, _cupy_get, _cupy_sync
        ),
        Backend(
            "jax:cpu",
            "jax",
            False,
            _ALL,
            _jax_setup("cpu"),
            _jax_put,
            _jax_cast,
            _jax_get,
            _jax_sync,
            flushes_subnormals=True,
        ),
        Backend(
            "jax:cuda",
            "jax",
            True,
            _ALL,
            _jax_setup("cuda"),
            _jax_put,
            _jax_cast,
            _jax_get,
            _jax_sync,
            flushes_subnormals=True,
        ),
        Backend(
            "dask",
            "dask",
            False,
            _HALF,
            _dask_setup,
            _dask_put,
            _no_cast,
            _dask_get,
            _dask_sync,
            lazy=True,
        ),
        Backend(
            "dask:cluster",
            "dask",
            False,
            _HALF,
            _cluster_setup,
            _dask_put,
            _no_cast,
            _cluster_get,
            _cluster_sync,
            lazy=True,
            remote=True,
            _scope=_cluster_scope,
        ),
    ]
}
"""Every backend, by id, in the order the matrix shows them."""


def get(backend_id: str) -> Backend:
    """The backend called ``backend_id``; a KeyError lists the known ids."""
    try:
        return BACKENDS[backend_id]
    except KeyError:
        raise KeyError(f"unknown backend {backend_id!r}; known: {', '.join(BACKENDS)}") from None


def ids(**attributes: object) -> list[str]:
    """The ids of the backends with these attribute values, e.g. ``ids(lazy=True)``."""
    return [
        b.id
        for b in BACKENDS.values()
        if all(getattr(b, name) == value for name, value in attributes.items())
    ]


def available(ids: Collection[str] | None = None, *, remote: bool = True) -> list[Backend]:
    """The backends usable on this machine: of ``ids`` only where given, and without those
    whose work runs in other processes where ``remote`` is False.

    A backend left out is never set up: setting up ``dask:cluster`` starts
    worker processes, whose heartbeats would share the cores with whatever
    is measured next.
    """
    return [
        b
        for b in BACKENDS.values()
        if (ids is None or b.id in ids) and (remote or not b.remote) and b.available
    ]
