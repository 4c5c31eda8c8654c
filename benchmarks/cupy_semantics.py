"""What a CuPy array would cost, counted without a GPU: a namespace built like CuPy's.

:func:`namespace` returns an array-API namespace named like array-api-compat's
CuPy one (so arraykit dispatches it to its CuPy fast paths), over NumPy
arrays of a subclass that records what CuPy would do with them:

* every ufunc, reduction, ``where``, cast and fill is one **kernel**, moving
  its array inputs and outputs (**bytes**); views are free;
* a **host sync** wherever CuPy reads the device from the host: a boolean
  mask used to index (CuPy counts its true entries on the host first),
  ``bool``/``float``/``int``/``item``/``tolist`` of an array, and any
  conversion to a host array; a Python number made an array is a host copy.

The namespace's ``clip`` and ``sign`` do what array-api-compat's do for CuPy
(1.16: the common ``clip`` writes each bound through a boolean mask;
``sign`` fixes NaN through one), so a formula that calls them is charged
their syncs; everything else comes from array-api-compat's NumPy namespace,
whose functions CuPy's mirrors.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import array_api_compat.numpy as npx
import numpy as np

VIEWS = {
    "broadcast_to",
    "reshape",
    "expand_dims",
    "squeeze",
    "ravel",
    "transpose",
    "moveaxis",
    "permute_dims",
    "shape",
    "ndim",
    "result_type",
    "can_cast",
    "isdtype",
}


@dataclass
class Ledger:
    """What the calls since it was opened cost."""

    kernels: int = 0
    bytes: int = 0
    syncs: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)

    def kernel(self, name: str, *arrays: Any) -> None:
        self.kernels += 1
        self.bytes += sum(np.asarray(a).nbytes for a in arrays if isinstance(a, np.ndarray))
        self.names.append(name)

    def sync(self, why: str) -> None:
        self.syncs.append(why)


_LEDGERS: list[Ledger] = []


@contextmanager
def counting() -> Iterator[Ledger]:
    """Record the costs of what runs within."""
    ledger = Ledger()
    _LEDGERS.append(ledger)
    try:
        yield ledger
    finally:
        _LEDGERS.pop()


def _ledger() -> Ledger:
    return _LEDGERS[-1] if _LEDGERS else Ledger()


def _host(a: Any) -> Any:
    return a.view(np.ndarray) if isinstance(a, DeviceArray) else a


def _device(a: Any) -> Any:
    if isinstance(a, np.ndarray) and not isinstance(a, DeviceArray):
        return a.view(DeviceArray)
    if isinstance(a, np.generic):
        return np.asarray(a).view(DeviceArray)
    return a


class DeviceArray(np.ndarray):
    """A NumPy array standing for a CuPy one: it records what CuPy would do."""

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        host = [_host(a) for a in inputs]
        if "out" in kwargs:
            kwargs["out"] = tuple(_host(o) for o in kwargs["out"])
        result = getattr(ufunc, method)(*host, **kwargs)
        _ledger().kernel(f"{ufunc.__name__}.{method}", *host, result)
        return _device(result)

    def __array_function__(self, func: Any, types_: Any, args: Any, kwargs: Any) -> Any:
        host_args = [_host(a) for a in args]
        host_kwargs = {k: _host(v) for k, v in kwargs.items()}
        result = func(*host_args, **host_kwargs)
        if func.__name__ not in VIEWS:
            _ledger().kernel(func.__name__, *host_args, *host_kwargs.values(), result)
        return _device(result)

    def astype(self, dtype: Any, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        result = _host(self).astype(dtype, *args, **kwargs)
        if result is not _host(self):
            _ledger().kernel("astype", _host(self), result)
        return _device(result)

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, np.ndarray) and key.dtype == bool:
            _ledger().sync("boolean mask (getitem)")
            result = _host(self)[_host(key)]
            _ledger().kernel("scan+gather(mask)", _host(self), _host(key), result)
            return _device(result)
        return _device(_host(self)[key])

    def __setitem__(self, key: Any, value: Any) -> None:
        if isinstance(key, np.ndarray) and key.dtype == bool:
            _ledger().sync("boolean mask (setitem)")
            _ledger().kernel("scan+scatter(mask)", _host(self), _host(key))
        else:
            _ledger().kernel("copy (setitem)", _host(value))
        _host(self)[_host(key)] = _host(value)

    def _read(self, why: str) -> np.ndarray:
        _ledger().sync(why)
        return _host(self)

    def __bool__(self) -> bool:
        return bool(self._read("bool()"))

    def __float__(self) -> float:
        return float(self._read("float()"))

    def __int__(self) -> int:
        return int(self._read("int()"))

    def __index__(self) -> int:
        return int(self._read("index"))

    def item(self, *args: Any) -> Any:
        return self._read("item()").item(*args)

    def tolist(self) -> Any:
        return self._read("tolist()").tolist()

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        # CuPy refuses implicit conversion; count it, since arraykit must never do it.
        return np.asarray(self._read("conversion to a host array"), dtype=dtype)


def _created(function: Callable[..., Any], fills: bool) -> Callable[..., Any]:
    def create(*args: Any, **kwargs: Any) -> Any:
        kwargs.pop("device", None)
        result = np.asarray(function(*(_host(a) for a in args), **kwargs))
        if fills:
            _ledger().kernel(function.__name__, result)
        return result.view(DeviceArray)

    return create


def _asarray(obj: Any, /, *, dtype: Any = None, device: Any = None, copy: Any = None) -> Any:
    if isinstance(obj, DeviceArray):
        return obj if dtype is None or obj.dtype == dtype else obj.astype(dtype)
    _ledger().sync("host-to-device copy (asarray of host data)")
    return np.asarray(obj, dtype=dtype).view(DeviceArray)


def _masked_clip(xp: Any) -> Callable[..., Any]:
    """array-api-compat's common ``clip``, as CuPy gets it: a copy, then each bound
    written through a boolean mask."""

    def clip(x: Any, /, min: Any = None, max: Any = None) -> Any:
        out = xp.empty(x.shape, dtype=x.dtype)
        out[()] = x
        for bound, outside in ((min, np.less), (max, np.greater)):
            if bound is None:
                continue
            b = xp.broadcast_to(xp.asarray(bound, dtype=x.dtype), x.shape)
            mask = outside(out, b) | xp.isnan(b)
            out[mask] = b[mask]
        return out[()]

    return clip


def _masked_sign(x: Any, /) -> Any:
    """array-api-compat's CuPy ``sign``: CuPy's, with NaN written back through a mask."""
    out = np.sign(x)
    out[np.isnan(x)] = np.nan
    return out


def namespace() -> Any:
    """A fresh CuPy-like array-API namespace (see the module docstring)."""
    xp = types.ModuleType("array_api_compat.cupy")
    xp.__dict__.update({k: getattr(npx, k) for k in dir(npx) if not k.startswith("__")})
    xp.__array_namespace_info__ = npx.__array_namespace_info__
    for name in ("zeros", "ones", "full", "zeros_like", "ones_like", "full_like", "arange"):
        setattr(xp, name, _created(getattr(np, name), fills=True))
    for name in ("empty", "empty_like"):
        setattr(xp, name, _created(getattr(np, name), fills=False))
    xp.asarray = _asarray
    xp.broadcast_to = lambda x, shape: _device(np.broadcast_to(_host(x), shape))
    xp.clip = _masked_clip(xp)
    xp.sign = _masked_sign
    # Its arrays are this namespace's, as a CuPy array is CuPy's: arraykit
    # refuses an xp= that is not the arrays' own namespace, and would take
    # these NumPy subclasses for NumPy's.
    from arraykit import _array_api

    _array_api._NAMESPACE_OF_TYPE[DeviceArray] = xp
    return xp


def put(xp: Any, values: Any, dtype: str) -> Any:
    """``values`` as an array of this namespace, already on the device (not counted)."""
    return np.asarray(values, dtype=dtype).view(DeviceArray)
