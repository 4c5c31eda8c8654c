"""Assertions that check what a result is before checking its values.

Modelled on SciPy's ``xp_assert_close``: array type, dtype, shape and device
must all be the caller's before the values are compared, in units in the
last place (ulp) of the result's dtype against a higher-precision reference.
"""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np

from backends import Backend

# Stored mantissa bits and minimum normal exponent of each floating dtype.
_FORMAT = {
    "float16": (10, -14),
    "bfloat16": (7, -126),
    "float32": (23, -126),
    "float64": (52, -1022),
}
_MAX_EXPONENT = {"float16": 15, "bfloat16": 127, "float32": 127, "float64": 1023}


def overflow_threshold(dtype: str) -> float:
    """Values at least this large round to inf in ``dtype``."""
    mantissa, _ = _FORMAT[dtype]
    emax = _MAX_EXPONENT[dtype]
    return float((2 - 2.0 ** -(mantissa + 1)) * 2.0**emax) if dtype != "float64" else np.inf


def seen_by(xb: Backend, values: np.ndarray, dtype: str) -> np.ndarray:
    """``values`` (float64) as ``xb``'s arithmetic sees them in ``dtype``.

    Backends that flush subnormals (XLA) see them as zero; half precision is
    computed in float32, so it is float32's range that counts.
    """
    values = np.asarray(values, dtype=np.float64)
    if not xb.flushes_subnormals:
        return values
    tiny = 2.0 ** _FORMAT["float64" if dtype == "float64" else "float32"][1]
    return np.where(np.abs(values) < tiny, 0.0 * values, values)


def dtype_name(dtype: Any) -> str:
    """``torch.float32``, ``array_api_strict.float32``, ``dtype('float32')`` -> ``float32``."""
    return str(dtype).rsplit(".", 1)[-1]


def ulp(values: np.ndarray, dtype: str) -> np.ndarray:
    """The spacing of ``dtype`` at each of ``values`` (at least the subnormal spacing)."""
    mantissa, emin = _FORMAT[dtype]
    with np.errstate(divide="ignore"):
        exponent = np.floor(np.log2(np.abs(values)))
    exponent = np.maximum(np.nan_to_num(exponent, neginf=emin), emin)
    return np.ldexp(1.0, (exponent - mantissa).astype(int))


def ulp_error(actual: np.ndarray, desired: np.ndarray, dtype: str) -> np.ndarray:
    """Error of ``actual`` in ulps of ``dtype``; 0 where both agree on inf or NaN."""
    actual = np.asarray(actual, dtype=np.float64)
    desired = np.asarray(desired, dtype=np.float64)
    same = (actual == desired) | (np.isnan(actual) & np.isnan(desired))
    with np.errstate(all="ignore"):
        err = np.abs(actual - desired) / ulp(desired, dtype)
    return np.where(same, 0.0, np.nan_to_num(err, nan=np.inf))


def assert_kind(actual: Any, xb: Backend, dtype: str, shape: tuple[int, ...]) -> None:
    """``actual`` is an array of ``xb``'s type, on its device, of this dtype and shape."""
    expected_type = type(xb.asarray(np.zeros(1)))
    assert type(actual) is expected_type, (
        f"namespace: expected a {expected_type.__module__}.{expected_type.__name__}, "
        f"got {type(actual).__module__}.{type(actual).__name__}"
    )
    assert dtype_name(actual.dtype) == dtype, f"dtype: expected {dtype}, got {actual.dtype}"
    assert tuple(actual.shape) == tuple(shape), f"shape: expected {shape}, got {actual.shape}"
    device = array_api_compat.device(actual)
    assert device == xb.device, f"device: expected {xb.device}, got {device}"


def assert_close(
    actual: Any,
    desired: Any,
    xb: Backend,
    dtype: str,
    *,
    ulps: float = 4.0,
) -> None:
    """Check kind (type, dtype, shape, device), then values within ``ulps``.

    ``desired`` is the exact result (a float64 array correctly rounded from a
    higher-precision computation, or exact by construction). Where it is
    below the smallest normal number of ``dtype`` the result may be anything
    within that smallest normal of it: subnormal results carry no relative
    accuracy promise. Infinities and NaNs must match exactly.
    """
    with np.errstate(all="ignore"):  # inf - inf and friends are expected here
        _assert_close(actual, desired, xb, dtype, ulps)


def _assert_close(actual: Any, desired: Any, xb: Backend, dtype: str, ulps: float) -> None:
    desired = np.asarray(desired, dtype=np.float64)
    # The reference is exact; in dtype, what is beyond its range is infinite.
    desired = np.where(
        np.abs(desired) >= overflow_threshold(dtype), np.copysign(np.inf, desired), desired
    )
    assert_kind(actual, xb, dtype, desired.shape)
    values = xb.to_numpy(actual).astype(np.float64)
    err = ulp_error(values, desired, dtype)
    emin = _FORMAT[dtype][1]
    subnormal = np.abs(desired) < 2.0**emin
    bad = np.where(subnormal, np.abs(values - desired) > 2.0**emin, err > ulps)
    bad &= ~((values == desired) | (np.isnan(values) & np.isnan(desired)))
    if bad.any():
        where = np.argwhere(bad)[:5]
        rows = "\n".join(
            f"  at {tuple(int(i) for i in w)}: got {values[tuple(w)]!r}, "
            f"expected {desired[tuple(w)]!r} ({err[tuple(w)]:.3g} ulp)"
            for w in where
        )
        raise AssertionError(
            f"{int(bad.sum())} of {bad.size} values off by more than {ulps} ulp "
            f"({dtype}, max {np.max(np.where(subnormal, 0, err)):.3g} ulp):\n{rows}"
        )
