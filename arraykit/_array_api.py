"""Namespace inference, argument validation and the dtype a computation runs in.

Every public function goes through :func:`floating_args` (or :func:`array_args`)
once, at its entry, so that the generic implementations behind it can assume
validated arrays of one namespace, one device and a real floating dtype.
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any, NamedTuple

import array_api_compat
import numpy as np

Array = Any
"""Any array-API array (NumPy, CuPy, PyTorch, JAX, Dask, array-api-strict)."""

ArrayLike = Any
"""An array, or anything its namespace's ``asarray`` takes (nested lists, scalars)."""

Namespace = ModuleType
"""An array-API namespace, as returned by ``array_api_compat.array_namespace``."""


def describe(value: object) -> str:
    """Say what a value is, for error messages: type, shape, dtype and device."""
    if isinstance(value, type):  # a class, whose shape and dtype are descriptors
        return f"the class {value.__module__}.{value.__qualname__}"
    kind = type(value)
    name = f"{kind.__module__}.{kind.__qualname__}"
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    if shape is None or dtype is None:
        return f"{name} {value!r:.60}"
    text = f"{name} of shape {tuple(shape)} and dtype {dtype}"
    # Describing must never fail; the device is only a courtesy.
    with contextlib.suppress(Exception):
        text += f" on device {array_api_compat.device(value)}"
    return text


def _coerce_non_arrays(
    names: Sequence[str], values: Sequence[object], xp: Namespace
) -> list[Array]:
    arrays: list[Array] = []
    for name, value in zip(names, values, strict=True):
        if isinstance(value, np.ndarray):
            arrays.append(_plain_numpy(name, value))
            continue
        if array_api_compat.is_array_api_obj(value):
            arrays.append(_dense(name, value))
            continue
        try:
            arrays.append(xp.asarray(value))
        except Exception as exc:
            raise TypeError(
                f"{name} must be an array or a nested sequence of numbers; got {describe(value)}"
            ) from exc
    return arrays


def _dense(name: str, x: Array) -> Array:
    """Refuse torch's sparse and nested tensors, which the formulas' operations do not take."""
    torch = sys.modules.get("torch")
    if torch is None or not isinstance(x, torch.Tensor) or _dense_tensor(x, torch.strided):
        return x
    if x.is_nested:
        raise TypeError(
            f"{name} must be a dense tensor; got a nested tensor ({x.layout}) of "
            f"{x.size(0)} tensors of dtype {x.dtype} on device {x.device}: apply the function "
            f"to each of {name}.unbind(), or to torch.nested.to_padded_tensor({name}, ...)"
        )
    raise TypeError(
        f"{name} must be a dense tensor; got a sparse tensor (layout {x.layout}) of shape "
        f"{tuple(x.shape)} and dtype {x.dtype} on device {x.device}: pass {name}.to_dense()"
    )


_OPERATORS = (
    "__add__", "__sub__", "__mul__", "__truediv__", "__pow__", "__neg__", "__abs__",
    "__array_ufunc__", "__array_function__", "sum", "max", "mean",
)  # fmt: skip
"""What the formulas use of an ndarray: a subclass overriding any of these is refused."""


def _changed_operators(kind: type) -> tuple[str, ...]:
    """Which of :data:`_OPERATORS` the ndarray subclass ``kind`` overrides (remembered)."""
    changed = _CHANGED.get(kind)
    if changed is None:
        changed = _CHANGED[kind] = tuple(
            op for op in _OPERATORS if getattr(kind, op) is not getattr(np.ndarray, op)
        )
    return changed


_CHANGED: dict[type, tuple[str, ...]] = {}


def _dense_tensor(x: Any, strided: Any) -> bool:
    """Whether a torch tensor is dense: of the strided layout, and not nested."""
    return bool(x.layout is strided and not x.is_nested)


def _plain_numpy(name: str, x: np.ndarray) -> np.ndarray:
    """A NumPy array as the kernels can take it: native byte order, no mask, no subclass
    whose operators differ from ndarray's (other subclasses, as ``np.memmap``, are read
    through a plain view; one registered as another namespace's array stays itself)."""
    kind = type(x)
    if kind is not np.ndarray and _NAMESPACE_OF_TYPE.get(kind, NUMPY_XP) is NUMPY_XP:
        if isinstance(x, np.ma.MaskedArray):
            raise TypeError(
                f"{name} must be an array without a mask (the formulas would use the masked "
                f"values); got {describe(x)}: pass {name}.filled(...) or {name}.compressed()"
            )
        changed = _changed_operators(kind)
        if changed:
            raise TypeError(
                f"{name} must be a NumPy array whose operators are ndarray's; got "
                f"{describe(x)}, whose {', '.join(changed)} differ (np.matrix's * is a "
                f"matrix product), so the formulas would compute something else: pass "
                f"np.asarray({name})"
            )
        x = np.asarray(x)
    if not x.dtype.isnative:
        return x.astype(x.dtype.newbyteorder("="))
    return x


def array_args(
    names: Sequence[str], values: Sequence[object], xp: Namespace | None
) -> tuple[Namespace, list[Array]]:
    """Return the one namespace of ``values`` and the values as its arrays.

    Python scalars and (nested) lists are converted in the namespace of the
    array arguments, or NumPy's when there are none. Arrays from two backends,
    or on two devices, are refused with the names of the arguments involved.
    """
    given = [v for v in values if array_api_compat.is_array_api_obj(v)]
    if xp is not None:
        xp = resolve_namespace(xp)
        _require_namespace(xp, names, values)
    else:
        try:
            xp = array_api_compat.array_namespace(*given) if given else NUMPY_XP
        except TypeError as exc:
            got = ", ".join(
                f"{n}: {describe(v)}"
                for n, v in zip(names, values, strict=True)
                if array_api_compat.is_array_api_obj(v)
            )
            raise TypeError(
                f"{' and '.join(names)} must be arrays of one backend; got {got}"
            ) from exc
        if given and type(given[0]) not in _QUICK:
            _remember(type(given[0]), xp)
    arrays = _coerce_non_arrays(names, values, xp)
    if len(arrays) > 1:
        # A JAX tracer has no device (None): beside a concrete array of its
        # backend it is normal (closed-over data, in_axes=None), not a mix.
        devices = [d for d in map(array_api_compat.device, arrays) if d is not None]
        if any(d != devices[0] for d in devices[1:]):
            got = ", ".join(f"{n}: {describe(a)}" for n, a in zip(names, arrays, strict=True))
            raise ValueError(f"{' and '.join(names)} must be on one device; got {got}")
    return xp, arrays


def mixed_args(
    names: Sequence[str], values: Sequence[object], xp: Namespace | None
) -> tuple[Namespace, list[Array]]:
    """:func:`array_args` for arguments of any dtype (class indices beside logits), with
    its inference skipped for arrays of one type seen before, on one device: then
    ``torch.compile`` traces it (array-api-compat's cached checks it warns about)."""
    if xp is None:
        first: Any = values[0]
        known = known_type(type(first))
        if (
            known is not None
            and all(type(v) is type(first) for v in values[1:])
            and all(known.same_device(first, v) for v in values[1:])
        ):
            return known.xp, list(values)
    return array_args(names, values, xp)


def resolve_namespace(xp: object) -> Namespace:
    """The array-API namespace that an ``xp=`` argument names.

    That is the namespace itself (``array_api_compat.torch``, ``jax.numpy``,
    ``array_api_strict``), or the namespace of a library's own module
    (``torch``, ``numpy``, ``cupy``, ``dask.array``), found once as the
    namespace of a 0-d array that module makes (on CuPy a host-to-device copy,
    the first time only); anything else is refused naming ``xp``.
    """
    try:
        return _RESOLVED[xp]  # type: ignore[index]
    except (KeyError, TypeError):
        pass
    problem = None
    if not isinstance(xp, ModuleType):
        problem = "it is not a module"
    elif xp.__name__.startswith("array_api_compat.") or xp.__name__ in _STANDARD_MODULES:
        resolved = xp  # a namespace as array_namespace returns them: no probe array
    else:
        try:
            resolved = array_api_compat.array_namespace(xp.asarray(0.0))
        except Exception as exc:
            problem = f"it makes no array-API array ({type(exc).__name__}: {exc})"
    if problem is not None:
        raise TypeError(
            f"xp must be an array namespace or an array library's module (numpy, torch, "
            f"cupy, jax.numpy, dask.array, array_api_strict); got {describe(xp)}, and {problem}"
        )
    _RESOLVED[xp] = resolved  # type: ignore[index]
    return resolved


_STANDARD_MODULES = {"jax.numpy", "array_api_strict"}
"""Libraries whose own module is their array-API namespace."""

_RESOLVED: dict[ModuleType, Namespace] = {}
"""``xp=`` arguments seen before, and the namespaces they name."""


def _require_namespace(xp: Namespace, names: Sequence[str], values: Sequence[object]) -> None:
    """Refuse arrays that ``xp`` does not compute: ``xp`` must be their namespace."""
    for name, value in zip(names, values, strict=True):
        if not array_api_compat.is_array_api_obj(value):
            continue  # lists and scalars: xp converts them
        try:
            own = namespace_of(value)
        except TypeError:
            own = None
        if own is not xp:
            expected = f"pass xp={own.__name__} or leave xp out" if own else "leave xp out"
            raise TypeError(
                f"xp is {xp.__name__}, but {name} is not its array: got {describe(value)}; "
                f"{expected}"
            )


_NUMPY_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
NUMPY_XP = array_api_compat.array_namespace(np.empty(0))
"""NumPy's array-API namespace: the default for Python scalars and lists."""


_NAMESPACE_OF_TYPE: dict[type, Namespace] = {np.ndarray: NUMPY_XP}


class _Known(NamedTuple):
    """What the entry checks need to know of an array type seen before."""

    xp: Namespace
    dtypes: tuple[Any, ...]  # the dtypes computed as they are: float32, float64
    same_device: Callable[[Any, Any], bool]
    # The layout the fast paths take, where the type has several (torch:
    # torch.strided, and not nested); None where every array of it is one.
    layout: Any = None

    def takes(self, x: Any) -> bool:
        """Whether the fast paths take ``x``, an array of this type, as it is."""
        return x.dtype in self.dtypes and (self.layout is None or _dense_tensor(x, self.layout))


def _same_device(a: Array, b: Array) -> bool:
    da, db = array_api_compat.device(a), array_api_compat.device(b)
    return da is None or db is None or bool(da == db)  # None: a tracer (see array_args)


_QUICK: dict[type, _Known] = {
    np.ndarray: _Known(NUMPY_XP, _NUMPY_FLOATS, lambda a, b: True),
}
"""Array types whose namespace the entry checks skip inferring (~1 µs a call).

Filled as types are first seen, for the libraries whose namespace follows
from the type alone; not array-api-strict, whose inference has side effects,
and not Dask, whose shapes may be unknown (its graphs cost far more than the
microsecond this saves).
"""


def _recognise_torch(kind: type) -> _Known | None:
    """Remember a torch tensor type by its class alone, without array-api-compat.

    The first call of a process may come inside ``torch.compile``: dynamo
    warns about array-api-compat's cached type checks, so torch tensors are
    recognised by ``issubclass`` against the ``torch.Tensor`` the caller has
    already imported (it is never imported here).
    """
    torch = sys.modules.get("torch")
    if torch is None or not issubclass(kind, torch.Tensor):
        return None
    import array_api_compat.torch as xp

    known = _QUICK[kind] = _Known(
        xp, (torch.float32, torch.float64), _same_torch_device, torch.strided
    )
    _NAMESPACE_OF_TYPE[kind] = xp
    return known


def _same_torch_device(a: Array, b: Array) -> bool:
    return bool(a.device == b.device)


def known_type(kind: type) -> _Known | None:
    """What the entry checks know of array type ``kind`` (see :data:`_QUICK`), or None."""
    return _QUICK.get(kind) or _recognise_torch(kind)


def plain_floating(x: object) -> bool:
    """Whether ``x`` is of an array type seen before, with a float32/float64 dtype."""
    known = known_type(type(x))
    return known is not None and known.takes(x)


def _remember(kind: type, xp: Namespace) -> None:
    if _recognise_torch(kind) is not None:  # torch's own device check, which dynamo traces
        return
    if any(
        check(xp)
        for check in (
            array_api_compat.is_torch_namespace,
            array_api_compat.is_jax_namespace,
            array_api_compat.is_cupy_namespace,
        )
    ):
        _QUICK[kind] = _Known(xp, (xp.float32, xp.float64), _same_device)


def namespace_of(x: Array) -> Namespace:
    """``array_namespace(x)``, remembered per array type.

    For hot loops (an optimizer step asks once per parameter): inference
    costs ~1 µs a call, 13 µs on array-api-strict; a dict lookup ~0.05 µs.
    Only for arguments already validated as arrays of one backend.
    """
    kind = type(x)
    xp = _NAMESPACE_OF_TYPE.get(kind)
    if xp is None:
        known = _recognise_torch(kind)
        xp = known.xp if known else array_api_compat.array_namespace(x)
        _NAMESPACE_OF_TYPE[kind] = xp
    return xp


def default_floating_dtype(xp: Namespace, device: Any) -> Any:
    """The backend's default real floating dtype on ``device``.

    That is float64 for NumPy, Dask and array-api-strict, the current
    ``torch.get_default_dtype()`` for PyTorch, and float32 or float64 for JAX
    depending on ``jax_enable_x64``.
    """
    return xp.__array_namespace_info__().default_dtypes(device=device)["real floating"]


def wider_sum_dtype(xp: Namespace, x: Array) -> Any | None:
    """float64 for summing float32 ``x`` where its namespace (and device) has it, else None.

    A float32 softmax summed in float32 is up to 7 ulp off on rows of 100
    (measured on JAX; 4.3 on NumPy); summed in float64, under 2.
    """
    if x.dtype != xp.float32:
        return None
    info = xp.__array_namespace_info__()
    try:
        dtypes = info.dtypes(device=device_of(x, xp), kind="real floating")
    except Exception:  # no device to ask about (a tracer, a lazy array)
        dtypes = info.dtypes(kind="real floating")
    return dtypes.get("float64")


def compute_dtype(xp: Namespace, x: Array, name: str, half: bool = False) -> tuple[Any, Any]:
    """Return ``(compute dtype, result dtype)`` for a floating-point primitive.

    Real floating inputs keep their dtype, except that float16 and bfloat16
    are computed in float32 (their few mantissa bits would otherwise be spent
    on intermediate rounding) and cast back, unless ``half`` says that the
    code behind takes them as they are (and computes them in float32
    itself, saving the casts' passes over memory). Integer and boolean
    inputs are promoted to the backend's default floating dtype. Anything
    else is refused.
    """
    dtype = x.dtype
    if xp.isdtype(dtype, "real floating"):
        bits = xp.finfo(dtype).bits
        if bits < 32:
            return (dtype if half else xp.float32), dtype
        if bits > 64:
            raise TypeError(
                f"{name} must have a dtype of at most 64 bits (the formulas' constants and "
                f"kernels are float16/32/64); got {describe(x)}: cast it to float64"
            )
        return dtype, dtype
    if xp.isdtype(dtype, ("integral", "bool")):
        default = default_floating_dtype(xp, array_api_compat.device(x))
        return default, default
    if xp.isdtype(dtype, "complex floating"):
        expected = "a real dtype (complex values have no order for the formulas used here)"
    else:
        expected = "a real floating, integer or boolean dtype"
    raise TypeError(f"{name} must have {expected}; got {describe(x)}")


def floating_args(
    names: Sequence[str],
    values: Sequence[object],
    xp: Namespace | None,
    half: Callable[[Namespace], bool] | None = None,
) -> tuple[Namespace, list[Array], Any]:
    """Validate floating-point arguments and bring them to one compute dtype.

    Returns the namespace, the arrays cast to the dtype the computation runs
    in, and the dtype of the result. Several arguments are promoted together
    (float32 with float64 gives float64), following the namespace's
    ``result_type``. ``half(xp)`` says whether the code behind takes float16
    and bfloat16 as they are (see :func:`compute_dtype`).
    """
    # The common case, in a fraction of a microsecond: arrays of one known
    # type and one float32/float64 dtype (on one device) need no inference,
    # promotion or cast. (Written out for one and two arguments: a generator
    # alone costs ~0.3 µs.)
    if xp is None:
        first: Any = values[0]
        known = known_type(type(first))
        # _Known.takes, written out: this runs once per call of a public function.
        if (
            known is not None
            and first.dtype in known.dtypes
            and (known.layout is None or _dense_tensor(first, known.layout))
        ):
            if len(values) == 1:
                return known.xp, list(values), first.dtype
            second: Any = values[1]
            if (
                len(values) == 2
                and type(second) is type(first)
                and second.dtype == first.dtype
                and known.same_device(first, second)
                and (known.layout is None or _dense_tensor(second, known.layout))
            ):
                return known.xp, list(values), first.dtype
    xp, arrays = array_args(names, values, xp)
    keep = half is not None and half(xp)
    pairs = [compute_dtype(xp, a, n, keep) for n, a in zip(names, arrays, strict=True)]
    if len(pairs) == 1:
        work, result = pairs[0]
    else:
        work = xp.result_type(*(p[0] for p in pairs))
        result = xp.result_type(*(p[1] for p in pairs))
    cast = [a if a.dtype == work else xp.astype(a, work) for a in arrays]
    return xp, cast, result


def host_copy(x: Array) -> np.ndarray:
    """``x``'s values in a NumPy array on the host, in as few transfers as the library allows.

    DLPack's copy to the CPU (the standard's one way across devices: CuPy,
    PyTorch, JAX) is one transfer; libraries without it are converted by
    NumPy, or element by element as a last resort (a read per element).
    """
    if isinstance(x, np.ndarray):
        return x
    with contextlib.suppress(Exception):
        return np.from_dlpack(x, device="cpu", copy=True)
    with contextlib.suppress(Exception):
        return np.asarray(x)
    return np.array([float(v) for v in x.reshape(-1)]).reshape(tuple(x.shape))


def as_array(value: Array) -> Array:
    """NumPy turns 0-d results of arithmetic into scalars: make them 0-d arrays again."""
    return np.asarray(value) if isinstance(value, np.generic) else value


def finish(xp: Namespace, result: Array, dtype: Any) -> Array:
    """Cast a result computed in a wider dtype back to the caller's dtype,
    as an array of the caller's kind (never a NumPy scalar)."""
    result = as_array(result)
    if result.dtype == dtype:
        return result
    return narrow(xp, result, dtype)


def narrow(xp: Namespace, v: Array, dtype: Any) -> Array:
    """``v`` rounded to the narrower floating ``dtype``: ±inf from where it rounds
    there (half an ulp past the largest float), without the warning NumPy-based
    backends give a cast that overflows; NaN stays NaN."""
    threshold = _rounds_past(xp.finfo(dtype))
    v = xp.where(v >= threshold, math.inf, xp.where(v <= -threshold, -math.inf, v))
    return xp.astype(v, dtype)


def narrow_float(value: float, dtype: Any) -> np.ndarray:
    """A Python float as a 0-d NumPy array of ``dtype``, as :func:`narrow` rounds it
    (one comparison where ``narrow`` takes a pass of array operations)."""
    threshold = _rounds_past(np.finfo(dtype))
    if abs(value) >= threshold:
        value = math.copysign(math.inf, value)
    return np.asarray(value, dtype=dtype)


def _rounds_past(finfo: Any) -> float:
    """Where a wider value rounds past the largest finite one: half an ulp beyond it."""
    largest, eps = float(finfo.max), float(finfo.eps)
    return largest + largest * eps / (2 - eps) / 2


def constant(x: Array, xp: Namespace) -> Array:
    """``x`` as a constant to automatic differentiation (torch's ``detach``, JAX's
    ``stop_gradient``): a value that an algorithm chooses (a shift) and that the
    result does not depend on, whose derivative would only add rounding."""
    # By the namespace's name: array-api-compat's checks are cached functions,
    # which torch.compile warns about when it traces them.
    name = getattr(xp, "__name__", "")
    if name == "array_api_compat.torch":
        return x.detach()
    if name == "jax.numpy":
        import jax

        return jax.lax.stop_gradient(x)
    return x


def device_of(x: Array, xp: Namespace) -> Any:
    """``x``'s device, for making arrays beside it; a torch tensor's read directly, so that
    ``torch.compile`` traces it (array-api-compat's cached checks it warns about)."""
    if getattr(xp, "__name__", "") == "array_api_compat.torch":
        return x.device
    return array_api_compat.device(x)


def host_view(x: Array) -> np.ndarray | None:
    """``x``'s values as a NumPy array where they can be read without a device
    synchronisation, a copy or a break in a trace: a NumPy or array-api-strict array,
    a JAX array on the CPU (not a tracer), a plain torch CPU tensor in an eager call.
    None for lazy (Dask) and device arrays, tracers, fake and compiled tensors.

    Checks of values go through it: on NumPy they cannot be staged into a trace (a
    JAX operation inside ``jax.jit`` is, even on a concrete array)."""
    if type(x) is np.ndarray:  # not a subclass that stands for device memory
        return x
    module = type(x).__module__
    if module.startswith("array_api_strict"):
        return np.from_dlpack(x)
    if module.startswith("torch"):
        import torch

        from ._native import _torch_private

        if type(x) is torch.Tensor and x.is_cpu and _torch_private.untransformed():
            held = x.detach()
            # NumPy has no bfloat16: its values, exactly, in float32.
            return (held.float() if held.dtype == torch.bfloat16 else held).numpy(force=True)
        return None
    if module.startswith(("jax", "jaxlib")):
        import jax

        if isinstance(x, jax.core.Tracer) or any(d.platform != "cpu" for d in x.devices()):
            return None
        return np.asarray(x)
    return None


def require_ndim(x: Array, name: str, ndim: int, meaning: str) -> None:
    """Refuse an array that does not have exactly ``ndim`` dimensions."""
    if x.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, {meaning}; got {describe(x)}")


def one_axis(axis: int, ndim: int) -> tuple[int] | None:
    """``(axis,)`` made non-negative, for the routes that skip the entry checks; None for
    a 0-d array or an axis out of range (the entry checks answer those)."""
    return (axis % ndim,) if -ndim <= axis < ndim else None


def normalize_axis(
    axis: int | Sequence[int] | None, ndim: int, name: str = "axis"
) -> tuple[int, ...]:
    """Turn an axis argument into a tuple of distinct non-negative axes."""
    if type(axis) is int and -ndim <= axis < ndim:
        return (axis % ndim,)  # the common case, quickly
    if axis is None:
        return tuple(range(ndim))
    message = f"{name} must be an int, a tuple of ints or None; got {axis!r}"
    if isinstance(axis, int | np.integer):
        items: tuple[object, ...] = (axis,)
    elif isinstance(axis, tuple | list):
        items = tuple(axis)
    else:
        raise TypeError(message)
    out = []
    for a in items:
        if not isinstance(a, int | np.integer) or isinstance(a, bool):
            raise TypeError(message)
        if not -ndim <= a < ndim:
            raise ValueError(
                f"{name} {int(a)} is out of range for an array of {ndim} dimension"
                f"{'' if ndim == 1 else 's'} (expected {-ndim} <= {name} < {ndim})"
            )
        out.append(int(a) % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"{name} repeats an axis: {axis!r}")
    return tuple(out)


def unknown_size(n: Any) -> bool:
    """A dimension a lazy backend does not know yet: None (the standard) or NaN (Dask)."""
    return n is None or (isinstance(n, float) and math.isnan(n))


def same_shape(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    """Equal shapes; a dimension a lazy backend does not know yet matches any."""
    if a == b:
        return True
    return len(a) == len(b) and all(
        m == n or unknown_size(m) or unknown_size(n) for m, n in zip(a, b, strict=True)
    )
