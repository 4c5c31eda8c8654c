"""Native fast paths against their generic array-API twins.

The matrix already checks each public function (and so the fast path, where
one exists) against the references. Here the generic twin is checked on the
same backends, so that both implementations are held to the same contract,
and the two must agree on every special value.
"""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np
import pytest

from arraykit import _dispatch, _formulas
from arraykit._array_api import compute_dtype
from backends import Backend

from . import reference
from .assertions import assert_close, seen_by

TWINS = {
    "sigmoid": (_formulas.sigmoid, reference.sigmoid),
    "sigmoid_derivative": (_formulas.sigmoid_derivative, reference.sigmoid_derivative),
}


@pytest.mark.parametrize("name", TWINS)
def test_generic_twin_where_a_fast_path_exists(xb: Backend, dtype: str, name: str) -> None:
    xp = xb.namespace
    native = _dispatch.lookup(xp, name)
    if native is None:
        pytest.skip(f"{xb.id} has no fast path for {name}")
    generic, exact = TWINS[name]
    x = xb.asarray(reference.finite_values(dtype, 300, seed=10), dtype)
    work, _ = compute_dtype(xp, x, "x")
    values = xb.to_numpy(x).astype(np.float64)
    for implementation in (native, lambda a: generic(a, xp=xp)):
        result = implementation(xp.astype(x, work))
        assert_close(xp.astype(result, x.dtype), exact(values), xb, dtype)

    special = xb.asarray(np.array([-math.inf, math.inf, math.nan, 0.0, -0.0]), dtype)
    special = xp.astype(special, work)
    np.testing.assert_array_equal(
        xb.to_numpy(native(special)), xb.to_numpy(generic(special, xp=xp))
    )


def _row_cases(dtype: str) -> dict[str, tuple[Any, Any, Any]]:
    """name -> (input builder, generic call, reference) for the row-wise and loss twins."""
    from .test_primitives import _normalize_input, _softmax_input

    rng = np.random.default_rng(13)
    pair = (rng.normal(size=(6, 7)) * 3, rng.normal(size=(6, 7)) * 3)
    cases: dict[str, tuple[Any, Any, Any]] = {
        "softmax": (
            lambda: (_softmax_input(dtype, 2),),
            lambda xp, x: _formulas.softmax(x, (1,), xp=xp),
            reference.softmax_rows,
        ),
        "normalize_rows": (
            lambda: (_normalize_input(dtype, 4),),
            lambda xp, x: _formulas.normalize_rows(x, xp=xp),
            reference.normalize_rows,
        ),
    }
    for power, name in ((1, "l1_loss"), (2, "l2_loss")):
        for reduction in ("sum", "mean", "none"):
            cases[f"{name}-{reduction}"] = (
                lambda: pair,
                lambda xp, a, b, p=power, r=reduction: _formulas.loss(a, b, r, p, xp=xp),
                lambda a, b, p=power, r=reduction: reference.loss(a, b, p, r),
            )
    return cases


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    "name",
    ["softmax", "normalize_rows"]
    + [f"{n}-{r}" for n in ("l1_loss", "l2_loss") for r in ("sum", "mean", "none")],
)
def test_generic_row_and_loss_twins_on_numpy(name: str, dtype: str) -> None:
    import backends

    xb = backends.get("numpy")
    xp = xb.namespace
    build, generic, exact = _row_cases(dtype)[name]
    arrays = [xb.asarray(a, dtype) for a in build()]
    values = [xb.to_numpy(a).astype(np.float64) for a in arrays]
    assert _dispatch.lookup(xp, name.split("-")[0]) is not None, "the twin of a fast path"
    assert_close(generic(xp, *arrays), exact(*values), xb, dtype)


def test_torch_fast_path_is_skipped_when_recording_gradients() -> None:
    torch = pytest.importorskip("torch")
    import array_api_compat.torch as xp

    x = torch.tensor([30.0], dtype=torch.float64, requires_grad=True)
    native = _dispatch.lookup(xp, "sigmoid")
    assert native is not None
    native(x).backward()
    # torch.sigmoid's own backward, s * (1 - s), would give 9.3576e-14 · (1 ± 1e-3).
    assert x.grad is not None
    np.testing.assert_allclose(
        x.grad.numpy(), reference.sigmoid_derivative(np.array([30.0])), rtol=1e-14
    )


@pytest.mark.parametrize(
    "options",
    [{}, {"eps": 0.0}, {"lr_decay": 1e-3, "weight_decay": 1e-2, "initial_accumulator_value": 5.0}],
    ids=["defaults", "classic", "everything"],
)
@pytest.mark.parametrize("record_every", [1, 7])
def test_line_adagrad_in_floats_matches_array_steps(
    monkeypatch: pytest.MonkeyPatch, options: dict[str, float], record_every: int
) -> None:
    from arraykit import regression

    x, y = regression.classic_data()
    fast = regression.fit_line(
        x,
        y,
        optimizer="adagrad",
        lr=1.0,
        steps=3000,
        record_every=record_every,
        start=(-120.0, -4.0),
        **options,
    )
    # The loop in Python floats against the same recurrence in array operations.
    monkeypatch.setattr(
        regression._adagrad, "line_adagrad", regression._adagrad.line_adagrad_stepped
    )
    generic = regression.fit_line(
        x,
        y,
        optimizer="adagrad",
        lr=1.0,
        steps=3000,
        record_every=record_every,
        start=(-120.0, -4.0),
        **options,
    )
    assert fast.history.shape == generic.history.shape
    np.testing.assert_allclose(fast.history, generic.history, rtol=1e-13)
    np.testing.assert_allclose(fast.losses, generic.losses, rtol=1e-12)
    np.testing.assert_allclose(fast.params, generic.params, rtol=1e-13)
    assert (fast.steps, fast.diverged) == (generic.steps, generic.diverged)


# NumPy has three kernels behind each fast path: the compiled one for small
# arrays, the cache-blocked one for large arrays (for softmax, with compiled
# passes around NumPy's exp), and the blocked one in NumPy alone, for builds
# without a C compiler. The matrix's inputs are small, so here each is
# forced in turn, on one block and on many.
COPIES = [1, 2000]  # the second is past numpy.BLOCK elements for every input
NOT_COMPILED = "arraykit was built without its compiled kernels (no C compiler)"
NO_THREADS = "the compiled kernels were built without threads (C99, or -DARRAYKIT_NO_THREADS)"


@pytest.fixture(params=["compiled", "blocked", "numpy-only"])
def numpy_kernels(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Any:
    from arraykit._native import numpy as kernels

    if request.param != "numpy-only" and kernels.compiled is None:
        pytest.skip(NOT_COMPILED)
    limit = 2**62 if request.param == "compiled" else 0
    for key in kernels.COMPILED_UP_TO:
        monkeypatch.setitem(kernels.COMPILED_UP_TO, key, limit)
    if request.param == "numpy-only":
        monkeypatch.setattr(kernels, "compiled", None)
    return _Routed(kernels)


class _Routed:
    """The NumPy kernels through the one route: what a kernel declines, the formula takes."""

    FORMULAS: ClassVar[dict[str, Any]] = {
        "sigmoid": _formulas.sigmoid,
        "sigmoid_derivative": _formulas.sigmoid_derivative,
        "softmax": _formulas.softmax,
        "normalize_rows": _formulas.normalize_rows,
        "l1_loss": _formulas.loss,
    }

    def __init__(self, kernels: Any) -> None:
        self.kernels = kernels

    def __getattr__(self, name: str) -> Any:
        from arraykit._array_api import NUMPY_XP
        from arraykit._native import _eager

        formula = self.FORMULAS[name]
        return lambda *args: _eager.compute(self.kernels, name, formula, NUMPY_XP, *args)


@pytest.mark.parametrize("copies", COPIES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", TWINS)
def test_numpy_kernels_elementwise(numpy_kernels: Any, name: str, dtype: str, copies: int) -> None:
    import backends

    x = reference.finite_values(dtype, 200, seed=11).astype(dtype)
    desired = TWINS[name][1](x.astype(np.float64))
    result = getattr(numpy_kernels, name)(np.tile(x, copies))
    assert_close(result, np.tile(desired, copies), backends.get("numpy"), dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_sigmoid_tail_on_every_layout_and_build(numpy_kernels: Any, dtype: str) -> None:
    # Below -log(largest float) exp(-x) overflows, and σ(x) = exp(x) is
    # subnormal: the same value from a contiguous array, a reversed or
    # strided view, a Fortran-ordered one, and without the compiled kernels.
    import mpmath

    import arraykit as ak

    low = {"float32": (-103.0, -88.8), "float64": (-744.0, -709.9)}[dtype]
    x = np.linspace(*low, 40).astype(dtype)
    with mpmath.workdps(60):
        desired = np.array([float(mpmath.exp(mpmath.mpf(float(v)))) for v in x]).astype(dtype)
    for layout in (
        x,
        x[::-1].copy()[::-1],
        np.repeat(x, 2)[::2],
        np.asfortranarray(x.reshape(8, 5)),
    ):
        got = ak.sigmoid(layout).reshape(-1)
        flat = np.asarray(layout).reshape(-1)
        tiny = np.finfo(dtype).smallest_subnormal
        expected = np.array([desired[list(x).index(v)] for v in flat])
        assert (np.abs(got - expected) <= tiny).all(), (layout.strides, got, expected)
        assert (got > 0).all()


def test_a_build_without_the_compiled_kernels_says_so_once() -> None:
    import subprocess
    import sys

    code = (
        "import sys, warnings\n"
        "sys.modules['arraykit._native._kernels'] = None  # as if never built\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    import numpy as np, arraykit as ak\n"
        "    ak.sigmoid(np.ones(3)); ak.softmax(np.ones((2, 3)))\n"
        "    ak.regression.fit_line(*ak.regression.classic_data(), optimizer='adagrad',"
        " lr=1.0, steps=10)\n"
        "from arraykit._native import numpy as kernels\n"
        "assert kernels.compiled is None\n"
        "for w in caught:\n"
        "    print(w.category.__name__, w.message)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    (line,) = done.stdout.splitlines()
    assert line.startswith("RuntimeWarning arraykit runs without its compiled kernels")
    assert "pip install -e ." in line


@pytest.mark.parametrize("copies", COPIES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_numpy_kernels_rows(numpy_kernels: Any, dtype: str, copies: int) -> None:
    import backends

    from .test_primitives import _normalize_input, _softmax_input

    xb = backends.get("numpy")
    rng = np.random.default_rng(8)
    typical = rng.normal(size=(20, 100)) * 4  # as the benchmarks; rows past 128 below
    for x in (_softmax_input(dtype, 2), typical, np.tile(_softmax_input(dtype, 2), (1, 20))):
        x = x.astype(dtype)
        desired = reference.softmax_rows(x.astype(np.float64))
        result = numpy_kernels.softmax(np.tile(x, (copies // 10 or 1, 1)), (1,))
        assert_close(result, np.tile(desired, (copies // 10 or 1, 1)), xb, dtype)
    for x in (_normalize_input(dtype, 4), typical, np.tile(_normalize_input(dtype, 4), (1, 30))):
        x = x.astype(dtype)
        desired = reference.normalize_rows(x.astype(np.float64))
        result = numpy_kernels.normalize_rows(np.tile(x, (copies // 10 or 1, 1)))
        assert_close(result, np.tile(desired, (copies // 10 or 1, 1)), xb, dtype)


@pytest.mark.parametrize("copies", COPIES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("power", [1, 2])
def test_numpy_kernels_losses(numpy_kernels: Any, power: int, dtype: str, copies: int) -> None:
    import backends

    xb = backends.get("numpy")
    largest = {"float32": 2.0**120, "float64": 2.0**1016}[dtype]
    rng = np.random.default_rng(6)
    for exponent in (-1.0, -0.5, 0.0, 0.5, 1.0):
        pair = [(rng.normal(size=30) * largest**exponent).astype(dtype) for _ in range(2)]
        tiled = [np.tile(a, copies) for a in pair]
        exact = [a.astype(np.float64) for a in pair]
        for reduction in ("sum", "mean", "none"):
            result = numpy_kernels.l1_loss(*tiled, reduction, power)
            if reduction == "none":
                desired = np.tile(reference.loss(*exact, power, reduction), copies)
            else:
                desired = reference.loss(*exact, power, reduction, copies=copies)
            assert_close(result, desired, xb, dtype)
    # equal arrays: an exact zero, on the fast path (a tiny sum goes to the generic twin)
    tiny = {"float32": 2.0**-140, "float64": 2.0**-538}[dtype]  # squares round to 0
    for a, b in ((rng.normal(size=30), None), (np.full(30, tiny), np.zeros(30))):
        yhat = np.tile(a.astype(dtype), copies)
        y = yhat.copy() if b is None else np.tile(b.astype(dtype), copies)
        desired = reference.loss(a.astype(np.float64), a if b is None else b, power, "sum")
        assert_close(numpy_kernels.l1_loss(yhat, y, "sum", power), desired * copies, xb, dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_binary_cross_entropy_kernel_in_every_binade(dtype: str) -> None:
    """The compiled binary cross-entropy (float32: its logarithms in float lanes, log(1 − p)
    reduced from p) over probabilities from every binade and every distance below 1, hard
    and soft labels, in whole vectors and tails: each term against float64 (whose error is
    far below a float32 ulp) or mpmath, and the sum against the terms."""
    from arraykit._native._compiled import PROBABILITIES, compiled

    if compiled is None:
        pytest.skip("the compiled kernels are not built")
    import backends

    rng = np.random.default_rng(41)
    low = {"float32": -149, "float64": -1074}[dtype]
    small = 2.0 ** rng.uniform(low, 0, 40_000)
    p = np.concatenate([small, 1 - small, rng.uniform(size=20_000)]).astype(dtype)
    p = p[(p > 0) & (p < 1)][:60_013]  # an odd length: a padded last vector
    for y in (np.ones_like(p), np.zeros_like(p), rng.uniform(size=p.size).astype(dtype)):
        out = np.empty_like(p)
        assert compiled.loss_elements(p, y, out, PROBABILITIES, 1)
        total = compiled.loss_sum(p, y, PROBABILITIES, 1)
        np.testing.assert_allclose(total, np.sum(out, dtype=np.float64), rtol=1e-12)
        if dtype == "float32":
            wide, labels = p.astype(np.float64), y.astype(np.float64)
            exact = -(labels * np.log(wide) + (1 - labels) * np.log1p(-wide))
        else:  # (mpmath: a sample)
            exact = reference.binary_cross_entropy(p[::20], y[::20], "none")
            out = out[::20]
        assert_close(out, exact, backends.get("numpy"), dtype, ulps=2)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_within_unit_interval_in_one_pass(dtype: str) -> None:
    """The probabilities' check in one pass: True just where every value is in [0, 1]
    (either zero), for a value outside (by the least amount, infinite, NaN) in the
    vectors or the tail, whatever the length; None for what the kernels do not read."""
    from arraykit._native._compiled import compiled, within_unit_interval

    if compiled is None:
        pytest.skip("the compiled kernels are not built")
    rng = np.random.default_rng(43)
    least = np.finfo(dtype).smallest_subnormal
    for n in (0, 1, 5, 16, 17, 33, 4099, 100_003):
        x = rng.uniform(size=n).astype(dtype)
        assert within_unit_interval(x) is True
        for bad in (-least, np.nextafter(np.array(1, dtype), 2), np.nan, np.inf, -np.inf):
            for position in sorted({0, n // 2, n - 1}) if n else ():
                y = x.copy()
                y[position] = bad
                assert within_unit_interval(y) is False, (n, bad, position)
    assert within_unit_interval(np.array([0.0, -0.0, 1.0], dtype)) is True
    grid = rng.uniform(size=(30, 40)).astype(dtype)
    assert within_unit_interval(grid.T) is True  # Fortran order: read as its transpose
    assert within_unit_interval(grid[:, ::2]) is None
    assert within_unit_interval(grid.astype(np.float16)) is None


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_compensated_sum_against_the_exact_sum(dtype: str) -> None:
    """The losses' total in compensated lanes: within a rounding of math.fsum's (the
    exact sum, rounded) for terms of one sign spread over many binades, in the vectors
    and the tail, whatever the length; NaN where a term is inf or NaN (the caller sums
    those plainly); None for what the kernels do not read."""
    from arraykit._native._compiled import compensated_sum, compiled

    if compiled is None:
        pytest.skip("the compiled kernels are not built")
    rng = np.random.default_rng(44)
    for n in (0, 1, 7, 8, 9, 100, 4095, 4096, 100_003):
        for scale in (1e-30, 1.0, 1e30):
            x = (rng.exponential(size=n) * scale * 10.0 ** rng.integers(-12, 1, n)).astype(dtype)
            exact = math.fsum(x.astype(np.float64).tolist())
            total = compensated_sum(x)
            assert total is not None
            assert abs(total - exact) <= math.ulp(exact), (n, scale, total, exact)
    # Many tiny terms beside a large one: a plain float64 sum loses them all.
    x = np.concatenate([[1.0], np.full(4096, 2.0**-60)]).astype(dtype)
    assert compensated_sum(x) == math.fsum(x.astype(np.float64).tolist())
    for bad in (np.inf, np.nan):
        assert math.isnan(compensated_sum(np.array([1.0, bad, 2.0], dtype)))  # type: ignore[arg-type]
    grid = rng.uniform(size=(30, 40)).astype(dtype)
    assert compensated_sum(grid[:, ::2]) is None
    assert compensated_sum(grid.astype(np.float16)) is None


def _every_kernel_on(kernels: Any, dtype: str) -> list[np.ndarray]:
    """Every compiled kernel's results on one battery of inputs: rows of every length
    class (short, a vector, long), special values, strided and reversed views, both
    loss powers, one thread and two."""
    rng = np.random.default_rng(17)
    values = (rng.normal(scale=30.0, size=(64, 300))).astype(dtype)
    values[3, 7], values[5, :4], values[9, 2] = np.inf, -np.inf, np.nan
    results = []
    for x in (values, values[:, ::3], values[::-1, ::-1], values[:, :5], values[:, :17]):
        for threads in (1, 2):
            for name in ("sigmoid", "sigmoid_derivative", "softplus", "log_sigmoid"):
                out = np.empty(x.shape, dtype)
                assert getattr(kernels, name)(x, out, threads)
                results.append(out)
            for name in ("softmax_rows", "normalize_rows", "log_softmax_rows"):
                out = np.empty(x.shape, dtype)
                assert getattr(kernels, name)(x, out, x.shape[1], threads)
                results.append(out)
            out = np.empty(x.shape[0], dtype)
            assert kernels.logsumexp_rows(x, out, x.shape[1], threads)
            results.append(out)
            for power in (1, 2):
                out = np.empty(x.shape, dtype)
                assert kernels.loss_elements(x, x[::-1], out, power, threads)
                results += [out, np.float64(kernels.loss_sum(x, x[::-1], power, threads))]
            labels = (x[::-1] > 0).astype(dtype)  # the logistic loss's
            out = np.empty(x.shape, dtype)
            assert kernels.loss_elements(x, labels, out, 3, threads)
            results += [out, np.float64(kernels.loss_sum(x, labels, 3, threads))]
            with np.errstate(invalid="ignore"):  # the NaN's
                p = np.abs(np.tanh(x / 30)).astype(dtype)  # the cross-entropy's, in [0, 1]
            out = np.empty(x.shape, dtype)
            assert kernels.loss_elements(p, labels, out, 4, threads)
            results += [out, np.float64(kernels.loss_sum(p, labels, 4, threads))]
    for length in (2, 5, 7, 20, 70):  # shorter than a vector of doubles, and longer
        x = np.ascontiguousarray(values[:, : 4 * length].reshape(64, length, 4))
        for name in ("softmax_columns", "log_softmax_columns"):
            out = np.empty(x.shape, dtype)
            assert getattr(kernels, name)(x, out, length, 4, 1)
            results.append(out)
        out = np.empty((64, 4), dtype)
        assert kernels.logsumexp_columns(x, out, length, 4, 1)
        results.append(out)
    return results


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_avx2_build_gives_the_default_builds_bits(dtype: str) -> None:
    """The kernels built for AVX2 alone (``_kernels_avx2``, which processors with AVX2
    and without AVX-512 run) compute what the default build computes, bit for bit:
    the same vectors, comparisons made of halves."""
    import importlib

    from arraykit import _native

    if _native.compiled is None:
        pytest.skip(NOT_COMPILED)
    default = importlib.import_module("arraykit._native._kernels")
    if default.PROCESSOR not in ("x86-64-v3", "x86-64-v4"):
        pytest.skip(f"this processor ({default.PROCESSOR!r}) has no AVX2")
    try:
        avx2 = importlib.import_module("arraykit._native._kernels_avx2")
    except ImportError:
        pytest.skip("the AVX2 build is not built here (another compiler or architecture)")
    if not default.INSTRUCTIONS.startswith("clones"):
        pytest.skip("the default build has no AVX2 clone (fused as the AVX2 build) to compare")
    assert avx2.INSTRUCTIONS.startswith("x86-64-v3")
    for got, want in zip(
        _every_kernel_on(avx2, dtype), _every_kernel_on(default, dtype), strict=True
    ):
        np.testing.assert_array_equal(got.view(f"u{got.itemsize}"), want.view(f"u{want.itemsize}"))


def test_the_build_for_this_processor(monkeypatch: pytest.MonkeyPatch) -> None:
    """The AVX2 build serves processors with AVX2 and without AVX-512 (or where the
    default build holds no AVX-512 clone); ``ARRAYKIT_KERNELS`` picks a build, and
    refuses one the processor cannot run."""
    import importlib.util
    from types import SimpleNamespace

    from arraykit import _native

    if _native.compiled is None:
        pytest.skip(NOT_COMPILED)
    choose = _native._for_this_processor
    built = importlib.util.find_spec("arraykit._native._kernels_avx2") is not None
    monkeypatch.delenv(_native.KERNELS_VARIABLE, raising=False)
    clones, one_level = "clones: x86-64-v4, x86-64-v3, baseline", "x86-64 baseline (SSE2) only"
    for level, instructions, avx2 in [
        ("x86-64-v4", clones, False),
        ("x86-64-v3", clones, True),
        ("x86-64-v4", one_level, True),  # a compiler without clones
        ("x86-64", clones, False),
        ("", one_level, False),  # another architecture
    ]:
        default = SimpleNamespace(PROCESSOR=level, INSTRUCTIONS=instructions)
        chosen = choose(default)  # type: ignore[arg-type]
        # (where the AVX2 build is absent, the default serves)
        assert (chosen is not default) == (avx2 and built), (level, instructions)
        assert chosen is default or chosen.__name__ == "arraykit._native._kernels_avx2"
    old = SimpleNamespace(PROCESSOR="x86-64", INSTRUCTIONS=clones)
    monkeypatch.setenv(_native.KERNELS_VARIABLE, "avx2")
    with pytest.raises(ValueError, match="has no AVX2"):
        choose(old)  # type: ignore[arg-type]
    monkeypatch.setenv(_native.KERNELS_VARIABLE, "avx-9000")
    with pytest.raises(ValueError, match="expected 'avx2' or 'default'"):
        choose(old)  # type: ignore[arg-type]
    monkeypatch.setenv(_native.KERNELS_VARIABLE, "default")
    modern = SimpleNamespace(PROCESSOR="x86-64-v3", INSTRUCTIONS=clones)
    assert choose(modern) is modern  # type: ignore[arg-type]


def test_compiled_kernels_decline_what_they_cannot_read() -> None:
    """Memory and types the C code does not read (misaligned strides, a strided
    result, other dtypes) it declines; the public functions then still serve."""
    from arraykit._native import numpy as kernels

    if kernels.compiled is None:
        pytest.skip(NOT_COMPILED)
    x = np.linspace(-3.0, 3.0, 12)
    readonly = np.empty_like(x)
    readonly.flags.writeable = False
    raw = np.zeros(8 * 13, dtype=np.uint8)
    declined = [
        (x[::2], np.empty(12)[::2]),  # a result not contiguous (inputs may have any strides)
        (np.lib.stride_tricks.as_strided(raw.view(np.float64)[:6], (6,), (12,)), np.empty(6)),
        (x.astype(">f8"), np.empty(12)),  # not native byte order
        (x, np.empty(12, dtype=np.float32)),  # two dtypes
        (x, np.empty(11)),  # two sizes
        (x.astype(np.int64), np.empty(12)),  # not floating
        (x, readonly),
    ]
    for a, out in declined:
        assert kernels.compiled.sigmoid(a, out) is False
    assert kernels.compiled.softmax_rows(x, np.empty(12), 5) is False  # 12 is not rows of 5
    long_rows = np.zeros((2, 2 * 4097))[:, ::2]  # strided rows longer than a stretch
    assert kernels.compiled.softmax_rows(long_rows, np.empty((2, 4097)), 4097) is False
    # and through the public functions, the NumPy kernels serve them
    import arraykit as ak

    for a in (x[::2], x.astype(">f8")):
        desired = reference.sigmoid(np.array(a, dtype=np.float64))
        np.testing.assert_allclose(ak.sigmoid(a), desired, rtol=4 * np.finfo(np.float64).eps)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_normalize_columns_gives_the_rows_bits(dtype: str) -> None:
    """normalize's columns' kernel (a transposed matrix's rows, read in place) gives
    each row the bits the rows' kernel gives it, at every length it takes (sums in
    eight lanes, the tail, both, pairwise halves above 128 values), with careful rows
    among the others: zero, ±inf, NaN, rows whose squares overflow or vanish into
    subnormals. (Rows of up to 32 values take the columns' arithmetic in the rows'
    kernel too, transposed a chunk at a time.)"""
    from arraykit._native import _compiled

    kernels = _compiled.compiled
    if kernels is None:
        pytest.skip(NOT_COMPILED)
    rng = np.random.default_rng(23)
    big, small = {"float32": (1e30, 1e-30), "float64": (1e200, 1e-200)}[dtype]
    for length in (*range(1, 20), 31, 33, 64, 100, 127, 128, 129, 200, 1000, 4096):
        rows = rng.normal(size=(150, length)).astype(dtype)
        rows[3], rows[7, 0], rows[11, -1], rows[19] = 0.0, np.inf, np.nan, -0.0
        rows[23] *= big
        rows[29] *= small
        rows[31, : (length + 1) // 2] = -np.inf
        want = np.empty_like(rows)
        assert kernels.normalize_rows(rows, want, length, 1)
        memory = np.ascontiguousarray(rows.T)  # the transposed matrix's memory
        for threads in (1, 2):
            got = np.empty_like(memory)
            assert kernels.normalize_columns(memory, got, length, 150, threads)
            bits = f"u{got.itemsize}"
            np.testing.assert_array_equal(got.T.view(bits), want.view(bits), err_msg=str(length))
    longer = np.zeros((kernels.COLUMNS_LONGEST + 1, 4), dtype)
    assert kernels.normalize_columns(longer, np.empty_like(longer), len(longer), 4, 1) is False


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_columns_give_the_rows_bits(dtype: str) -> None:
    """The softmax family's columns' kernels (an axis across memory, read in place) give
    each row the bits the rows' kernel gives it, at every length they take: their lanes
    follow the rows' kernel's order of summation (a vector's lanes, its overlapping
    last vector, the lanes' totals) and its scaling. Rows below a vector (softmax) or
    64 (float64) and 128 (float32) values (the log-space pair) take the columns'
    arithmetic in the rows' kernel too. Entries of similar size, where a sum's
    rounding depends on its order; rows with ±inf and NaN."""
    from arraykit._native import _compiled

    kernels = _compiled.compiled
    if kernels is None:
        pytest.skip(NOT_COMPILED)
    rng = np.random.default_rng(29)
    for length in (1, 2, 7, 8, 9, 15, 16, 17, 33, 63, 64, 65, 100, 127, 128, 129, 300, 512):
        rows = rng.uniform(-3.0, 0.0, (2000, length)) * rng.choice([1.0, 1e-3], (2000, 1))
        rows = rows.astype(dtype)
        rows[3, 0], rows[7, -1], rows[11] = np.inf, np.nan, -np.inf
        memory = np.ascontiguousarray(rows.T)
        bits = f"u{rows.itemsize}"
        for name in ("softmax", "log_softmax"):
            want = np.empty_like(rows)
            assert getattr(kernels, f"{name}_rows")(rows, want, length, 1)
            for threads in (1, 2):
                got = np.empty_like(memory)
                assert getattr(kernels, f"{name}_columns")(memory, got, length, 2000, threads)
                message = f"{name}, {length}"
                np.testing.assert_array_equal(got.T.view(bits), want.view(bits), err_msg=message)
        want_total = np.empty(2000, dtype)
        assert kernels.logsumexp_rows(rows, want_total, length, 1)
        for threads in (1, 2):
            total = np.empty(2000, dtype)
            assert kernels.logsumexp_columns(memory, total, length, 2000, threads)
            np.testing.assert_array_equal(total.view(bits), want_total.view(bits))
    longer = np.zeros((513, 4), dtype)
    for name in ("softmax_columns", "log_softmax_columns"):
        assert getattr(kernels, name)(longer, np.empty_like(longer), 513, 4, 1) is False


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cross_entropy_rows_give_the_log_softmax_bits(dtype: str) -> None:
    """The cross-entropy's kernel, which reads the labels and writes one loss per row,
    gives each the negated log-softmax entry at its label bit for bit, at row lengths
    on both sides of the short rows' path and up to its stretch, rows with ±inf and
    NaN, one thread and two; it declines (writing nothing) labels out of range, labels
    that are not int64, and rows longer than its stretch."""
    from arraykit._native import _compiled

    kernels = _compiled.compiled
    if kernels is None:
        pytest.skip(NOT_COMPILED)
    rng = np.random.default_rng(37)
    for length in (1, 2, 15, 16, 17, 63, 64, 65, 127, 128, 129, 1000, 4096):
        rows = (rng.standard_normal((300, length)) * 6).astype(dtype)
        rows[3, 0], rows[7, -1], rows[11] = np.inf, np.nan, -np.inf
        labels = rng.integers(0, length, 300)
        entries = np.empty_like(rows)
        assert kernels.log_softmax_rows(rows, entries, length, 1)
        want = -entries[np.arange(300), labels]
        for threads in (1, 2):
            losses = np.empty(300, dtype)
            assert kernels.cross_entropy_rows(rows, labels, losses, length, threads)
            bits = f"u{losses.itemsize}"
            np.testing.assert_array_equal(losses.view(bits), want.view(bits), err_msg=str(length))
    untouched = np.full(300, 7.0, dtype)
    for bad in (labels + length, labels - length, labels.astype(np.int32)):
        assert kernels.cross_entropy_rows(rows, bad, untouched, length, 1) is False
    assert (untouched == 7.0).all()
    long, first = np.zeros((2, 4097), dtype), np.zeros(2, np.int64)
    assert kernels.cross_entropy_rows(long, first, np.empty(2, dtype), 4097) is False


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_short_rows_give_each_row_its_own_bits(dtype: str) -> None:
    """Short rows go through the columns' chunks a vector of rows at a time, moved in
    and out by register tiles where a whole tile fits and an entry at a time at the
    edges: a row among 37 (two whole vectors of float64 rows and a partial one, or one
    and a partial of float32's) gives the bits it gives alone (a partial vector, all
    edges), at lengths around the tile's width; softmax's short rows likewise."""
    import backends
    from arraykit._native import _compiled

    kernels = _compiled.compiled
    if kernels is None:
        pytest.skip(NOT_COMPILED)
    rng = np.random.default_rng(31)
    for length in (1, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 63, 64, 100, 127):
        # (Above 0, where logsumexp's m and log1p(r) do not cancel: docs/numerics.md.)
        rows = (rng.standard_normal((37, length)) * 4 + 16).astype(dtype)
        for name in ("log_softmax_rows", "softmax_rows", "logsumexp_rows"):
            kernel = getattr(kernels, name)
            width = 1 if name == "logsumexp_rows" else length
            together = np.empty((37, width), dtype)
            assert kernel(rows, together, length)
            for i in (0, 7, 8, 15, 16, 17, 31, 32, 36):
                alone = np.empty((1, width), dtype)
                assert kernel(np.ascontiguousarray(rows[i : i + 1]), alone, length)
                bits = f"u{alone.itemsize}"
                np.testing.assert_array_equal(
                    together[i].view(bits), alone[0].view(bits), err_msg=f"{name} {length} {i}"
                )
            wide = rows.astype(np.float64)
            if name == "log_softmax_rows":
                exact = reference.log_softmax(wide)
            elif name == "softmax_rows":
                exact = reference.softmax_rows(wide)
            else:
                exact = reference.logsumexp(wide)[:, None]
            assert_close(together, exact, backends.get("numpy"), dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_compiled_row_range_at_every_position(dtype: str) -> None:
    """The row maximum and the NaN check see every entry, whether in a vector, in the last
    vector overlapping the one before, or in rows shorter than a vector: a row holding NaN
    or +inf takes its limit there, and the rows beside it their own values."""
    import backends
    from arraykit._native import numpy as kernels

    if kernels.compiled is None:
        pytest.skip(NOT_COMPILED)
    for n in range(1, 40):
        for p in range(n):
            x = np.linspace(-3.0, 0.0, n).astype(dtype)
            x[p] = 1000.0  # the maximum: exp(x - m) overflows unless m is it
            out = np.empty_like(x)
            assert kernels.compiled.softmax_rows(x, out, n) is True
            desired = reference.softmax_rows(x[None].astype(np.float64))[0]
            assert_close(out, desired, backends.get("numpy"), dtype)
            x[p] = np.nan
            assert kernels.compiled.softmax_rows(x, out, n) is True
            assert np.isnan(out).all()
            rows = np.tile(np.linspace(-3.0, 0.0, n).astype(dtype), (3, 1))
            good = np.empty_like(rows)
            assert kernels.compiled.softmax_rows(rows, good, n) is True
            rows[1, p] = np.inf  # in a row of its own, between good ones
            out = np.empty_like(rows)
            assert kernels.compiled.softmax_rows(rows, out, n) is True
            np.testing.assert_array_equal(out[1], np.arange(n) == p)
            np.testing.assert_array_equal(out[::2], good[::2])


def test_compiled_kernels_are_built_where_required() -> None:
    """CI sets ARRAYKIT_REQUIRE_COMPILED=1, so that a failed build cannot pass unseen."""
    import os

    from arraykit._native import numpy as kernels

    if kernels.compiled is None and os.environ.get("ARRAYKIT_REQUIRE_COMPILED") != "1":
        pytest.skip(NOT_COMPILED)
    assert kernels.compiled is not None, "the optional C extension failed to build"


_WITHOUT_X64 = """
import sys
import numpy as np
import jax

jax.config.update("jax_enable_x64", False)  # JAX's default: no float64 at all
import jax.numpy as jnp
import arraykit as ak

given = dict(np.load(sys.argv[1]))
results = {}
for name, values in given.items():
    kind, _, rest = name.partition(":")
    x = jnp.asarray(values)
    if kind == "softmax":
        results[name] = ak.softmax(x)
    elif kind == "normalize_rows":
        results[name] = ak.normalize_rows(x)
    elif kind == "yhat":
        function, reduction = rest.split(":")
        y = jnp.asarray(given["y:" + rest])
        results["loss:" + rest] = getattr(ak, function)(x, y, reduction)
for name, value in results.items():
    assert value.dtype == jnp.float32, (name, value.dtype)
np.savez(sys.argv[2], **{k: np.asarray(v) for k, v in results.items()})
"""


def test_jax_float32_without_x64(tmp_path: Any) -> None:
    """JAX's default (x64 off) has no float64 to compute float32 in: softmax,
    normalize_rows and the losses take their guarded float32 forms there, held
    to the contract through the public functions in a process of their own."""
    pytest.importorskip("jax")
    import subprocess
    import sys
    from pathlib import Path

    import backends

    from .test_primitives import _normalize_input, _softmax_input

    SOFTMAX_SPECIAL_ROWS, SOFTMAX_SPECIAL_LIMITS = reference.special_rows("softmax")
    NORMALIZE_SPECIAL_ROWS, NORMALIZE_SPECIAL_LIMITS = reference.special_rows("normalize_rows")

    xb = backends.get("jax:cpu")
    if not xb.available:
        pytest.skip(xb.unavailable or "")
    rng = np.random.default_rng(5)
    given = {
        "softmax:rows": _softmax_input("float32", 2),
        "softmax:typical": rng.normal(size=(20, 100)) * 4,
        "softmax:special": SOFTMAX_SPECIAL_ROWS,
        "normalize_rows:rows": _normalize_input("float32", 4),
        "normalize_rows:special": NORMALIZE_SPECIAL_ROWS,
    }
    pairs = (rng.normal(size=(6, 7)) * 3, rng.normal(size=(6, 7)) * 3)
    for function in ("l1_loss", "l2_loss"):
        for reduction in ("sum", "mean", "none"):
            given[f"yhat:{function}:{reduction}"], given[f"y:{function}:{reduction}"] = pairs
    given = {k: np.asarray(v, dtype=np.float32) for k, v in given.items()}
    np.savez(tmp_path / "in.npz", **given)
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_X64, str(tmp_path / "in.npz"), str(tmp_path / "out.npz")],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    got = dict(np.load(tmp_path / "out.npz"))

    def check(name: str, exact: np.ndarray, ulps: float = 4) -> None:
        assert_close(xb.asarray(got[name], "float32"), exact, xb, "float32", ulps=ulps)

    def seen(name: str) -> np.ndarray:
        return seen_by(xb, given[name].astype(np.float64), "float32")

    for name in ("softmax:rows", "softmax:typical"):
        check(name, reference.softmax_rows(seen(name)))
    check("softmax:special", SOFTMAX_SPECIAL_LIMITS, ulps=0)
    check("normalize_rows:rows", reference.normalize_rows(seen("normalize_rows:rows")))
    check("normalize_rows:special", NORMALIZE_SPECIAL_LIMITS, ulps=1)
    for function, power in (("l1_loss", 1), ("l2_loss", 2)):
        for reduction in ("sum", "mean", "none"):
            a, b = seen(f"yhat:{function}:{reduction}"), seen(f"y:{function}:{reduction}")
            check(f"loss:{function}:{reduction}", reference.loss(a, b, power, reduction))


def _threads_inputs(dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """Rows of 100, enough of them for five threads of the compiled kernels."""
    rng = np.random.default_rng(12)
    shape = (2000, 100)  # 5 · 2^15 elements and more
    return (rng.normal(size=shape) * 4).astype(dtype), rng.normal(size=shape).astype(dtype)


@functools.cache
def _threads_references(dtype: str) -> dict[str, np.ndarray]:
    """mpmath's values for the inputs of the thread tests (once for both pools)."""
    x, y = (a.astype(np.float64) for a in _threads_inputs(dtype))
    desired = {
        "softmax": reference.softmax_rows(x),
        "softmax, rows of 7": reference.softmax_rows(x.reshape(-1, 8)[:, :7]),
        "sigmoid": reference.sigmoid(x),
        "sigmoid_derivative": reference.sigmoid_derivative(x),
        "normalize_rows": x / np.linalg.norm(x, axis=1, keepdims=True),
    }
    for power in (1, 2):
        for reduction in ("sum", "none"):
            desired[f"l{power} {reduction}"] = reference.loss(x, y, power, reduction)
    return desired


@pytest.fixture(params=["arraykit's pool", "torch's OpenMP"])
def thread_pool(request: pytest.FixtureRequest) -> Iterator[str]:
    """The compiled kernels' threaded work in arraykit's own pool, or in torch's OpenMP team."""
    from arraykit._native import numpy as kernels

    if kernels.compiled is None:
        pytest.skip(NOT_COMPILED)
    if request.param == "arraykit's pool":
        kernels.compiled.share_threads(None)
    else:
        pytest.importorskip("torch")
        from arraykit._native import torch as operators

        if not operators.share_threads():
            pytest.skip("torch has no OpenMP runtime here to share")
    yield request.param
    # Back as the session had it: torch's threads once its fast paths were imported.
    operators = sys.modules.get("arraykit._native.torch")
    if operators is None or not operators.share_threads():
        kernels.compiled.share_threads(None)


def test_torch_threads_shared_where_torch_uses_openmp(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """Where torch runs its operators in OpenMP threads (its Linux and macOS builds), the
    compiled kernels find that runtime and split their work in its threads."""
    torch = pytest.importorskip("torch")
    from arraykit._native import numpy as kernels
    from arraykit._native import torch as operators

    if kernels.compiled is None:
        pytest.skip(NOT_COMPILED)
    if sys.platform not in ("linux", "darwin") or not torch.backends.openmp.is_available():
        pytest.skip("torch does not use OpenMP here")
    if not kernels.compiled.THREADS:
        pytest.skip(NO_THREADS)
    assert operators.SHARES_THREADS
    if sys.platform == "linux":  # a torch whose library is not beside its Python files
        monkeypatch.setattr(torch, "__file__", str(tmp_path / "torch" / "__init__.py"))
        assert [p.name for p in operators._torch_cpu_libraries()] == ["libtorch_cpu.so"]


@pytest.mark.usefixtures("thread_pool")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_compiled_kernels_in_threads(dtype: str) -> None:
    """Split over threads, the compiled kernels give the references' values, bit for bit
    the same whatever the thread count (a loss's stretches are summed in one order)."""
    import backends
    from arraykit._native import numpy as kernels

    if kernels.compiled is None:
        pytest.skip(NOT_COMPILED)
    xb = backends.get("numpy")
    x, y = _threads_inputs(dtype)
    desired = _threads_references(dtype)
    cases = {
        "softmax": lambda t: kernels.softmax(x, (1,), threads=t),
        "softmax, rows of 7": lambda t: kernels.softmax(x.reshape(-1, 8)[:, :7], (1,), threads=t),
        "sigmoid": lambda t: kernels.sigmoid(x, threads=t),
        "sigmoid_derivative": lambda t: kernels.sigmoid_derivative(x, threads=t),
        "normalize_rows": lambda t: kernels.normalize_rows(x, threads=t),
    }
    for power in (1, 2):
        for reduction in ("sum", "none"):
            cases[f"l{power} {reduction}"] = lambda t, p=power, r=reduction: kernels.l1_loss(
                x, y, r, p, threads=t
            )
    for name, run in cases.items():
        alone = run(1)
        assert_close(alone, desired[name], xb, dtype)
        for threads in (2, 3, 5):
            np.testing.assert_array_equal(run(threads), alone, err_msg=f"{name}, {threads} threads")
    # ±inf, NaN and the largest floats in the last thread's rows: the whole array
    # goes to the NumPy kernels, which give those rows the generic formula's limits
    from .test_primitives import _softmax_input

    special = _softmax_input(dtype, 2)
    rng = np.random.default_rng(13)
    narrow = np.concatenate([rng.normal(size=(20000, special.shape[1])) * 4, special])
    narrow = narrow.astype(dtype)
    desired = reference.softmax_rows(narrow.astype(np.float64))
    for threads in (1, 3):
        assert_close(kernels.softmax(narrow, (1,), threads=threads), desired, xb, dtype)


@pytest.mark.usefixtures("thread_pool")
def test_compiled_kernels_on_results_of_fresh_memory() -> None:
    """A result over 32 MiB (fresh pages from the system, which the kernels fault in
    from one thread before several write it) holds the same values as one thread's."""
    from arraykit._native import numpy as kernels

    if kernels.compiled is None:
        pytest.skip(NOT_COMPILED)
    rows = ((32 << 20) // 4 + 4096) // 100
    x = (np.random.default_rng(17).normal(size=(rows, 100)) * 4).astype(np.float32)
    y = x[::-1].copy()
    cases = {
        "softmax": lambda t: kernels.softmax(x, (1,), threads=t),
        "sigmoid": lambda t: kernels.sigmoid(x, threads=t),
        "sigmoid_derivative": lambda t: kernels.sigmoid_derivative(x, threads=t),
        "normalize_rows": lambda t: kernels.normalize_rows(x, threads=t),
        "l2 none": lambda t: kernels.l1_loss(x, y, "none", 2, threads=t),
    }
    for name, run in cases.items():
        together = run(2)
        assert together.nbytes > 32 << 20
        np.testing.assert_array_equal(together, run(1), err_msg=name)


POOL_FORK_SCRIPT = """
import multiprocessing, numpy as np
from arraykit._native import _kernels
{setup}

x = np.linspace(-1.0, 1.0, 1 << 18)
total = _kernels.loss_sum(x, x[::-1].copy(), 2, 2)  # starts the compiled kernels' workers

def child():
    again = _kernels.loss_sum(x, x[::-1].copy(), 2, 2)
    raise SystemExit(0 if again == total else 1)

process = multiprocessing.get_context("fork").Process(target=child)
process.start()
process.join(timeout=60)
if process.exitcode is None:
    process.kill()
    raise SystemExit("the forked child hung")
raise SystemExit(f"child exit code {process.exitcode}" if process.exitcode else 0)
"""


FORK_SETUPS = {
    "arraykit's pool": "",
    # torch's OpenMP team has run arraykit's work and torch's own before the fork.
    "torch's OpenMP": (
        "import torch\n"
        "from arraykit._native import torch as operators\n"
        "assert operators.SHARES_THREADS\n"
        "torch.ones(1 << 22).exp()"
    ),
}


@pytest.mark.parametrize("pool", list(FORK_SETUPS))
def test_compiled_threads_after_fork(pool: str) -> None:
    """A child forked after the compiled kernels' threads started splits work again."""
    import os
    import subprocess
    import sys

    from arraykit._native import numpy as kernels

    if kernels.compiled is None:
        pytest.skip(NOT_COMPILED)
    if not hasattr(os, "fork"):
        pytest.skip("no fork on this platform")
    if pool == "torch's OpenMP":
        if not kernels.compiled.THREADS:
            pytest.skip(NO_THREADS)
        torch = pytest.importorskip("torch")
        if not torch.backends.openmp.is_available() or sys.platform not in ("linux", "darwin"):
            pytest.skip("torch does not use OpenMP here")
    script = POOL_FORK_SCRIPT.replace("{setup}", FORK_SETUPS[pool])
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_torch_direct_calls_only_for_plain_tensors() -> None:
    """Eager calls skip the dispatcher only for torch's own CPU tensors outside every
    transformation and mode; anything a transformation made keeps the operator."""
    torch = pytest.importorskip("torch")
    import torch.autograd.forward_ad as forward_ad
    from torch._subclasses.fake_tensor import FakeTensorMode

    from arraykit._native import torch as operators

    x = torch.ones(3)
    assert operators.direct(x)
    assert operators.direct(x, torch.zeros(3))
    leaf = torch.ones(3, requires_grad=True)
    assert not operators.direct(leaf)
    assert not operators.direct(x, leaf)
    with torch.no_grad():
        assert operators.direct(leaf)
    assert not operators.direct(torch.nn.Parameter(torch.ones(3)))
    assert not operators.direct(torch.ones(3, device="meta"))
    assert not operators.direct(torch.ones(3).to_sparse())
    seen: list[bool] = []
    torch.func.vmap(lambda t: seen.append(operators.direct(t)) or t)(torch.ones(2, 3))
    torch.func.grad(lambda t: seen.append(operators.direct(t)) or t.sum())(torch.ones(3))
    assert seen == [False, False]
    with forward_ad.dual_level():
        assert not operators.direct(x)
    with FakeTensorMode() as mode:
        assert not operators.direct(mode.from_tensor(x))
    with torch.device("cpu"):  # a torch-function mode
        assert not operators.direct(x)
    # torch's own sigmoid serves wherever nothing can differentiate the call.
    assert operators.undifferentiated(x)
    assert not operators.undifferentiated(leaf)
    with torch.no_grad():
        assert operators.undifferentiated(leaf)
    with torch.device("cpu"), FakeTensorMode() as mode:
        assert operators.undifferentiated(mode.from_tensor(x))
    with forward_ad.dual_level():
        assert not operators.undifferentiated(x)
    torch.func.vmap(lambda t: seen.append(operators.undifferentiated(t)) or t)(torch.ones(2, 3))
    assert seen == [False, False, False]


def test_torch_kernels_on_tensor_memory() -> None:
    """torch's CPU kernels (the losses' too) read a contiguous float32/float64 tensor's own
    memory; other layouts, negative views and half precision go through NumPy views of it,
    and what the kernels decline (empty tensors, sums that need the careful form) takes the
    formula. Every case gives the NumPy route's values, bit for bit, and the references'."""
    torch = pytest.importorskip("torch")
    import backends
    from arraykit._native import numpy as kernels
    from arraykit._native import torch as operators

    if kernels.compiled is None:
        pytest.skip(NOT_COMPILED)
    rng = np.random.default_rng(21)
    finite = rng.normal(size=(1500, 40)) * 6  # 60,000 elements: split over threads
    special = finite.copy()
    special[7, 3], special[9, 0] = np.inf, np.nan
    xb = backends.get("numpy")
    for dtype in (torch.float16, torch.float32, torch.float64):
        seen = torch.tensor(finite[:50], dtype=dtype).double().numpy()
        desired = {
            "sigmoid_derivative": reference.sigmoid_derivative(seen),
            "softmax": reference.softmax_rows(seen),
            "normalize_rows": seen / np.linalg.norm(seen, axis=1, keepdims=True),
        }
        for values in (finite, special):
            t = torch.tensor(values, dtype=dtype)
            # A negative view (as the imaginary part of a conjugate can be) keeps
            # its memory un-negated.
            for x in (t, t.T, t[:, ::2], t[5:6], t[:0], torch._neg_view(t)):
                a = x.numpy(force=True)  # the values, a negative view's resolved
                a = a.astype(np.float32) if dtype == torch.float16 else a
                got = {
                    "sigmoid_derivative": operators.sigmoid_derivative(x),
                    "softmax": operators.softmax(x, (1,)),
                    "normalize_rows": operators.normalize_rows(x),
                }
                routed = _Routed(kernels)
                want = {
                    "sigmoid_derivative": routed.sigmoid_derivative(a),
                    "softmax": routed.softmax(a, (1,)),
                    "normalize_rows": routed.normalize_rows(a),
                }
                for name, result in got.items():
                    assert result.dtype == dtype, name
                    assert result.shape == x.shape, name
                    expected = torch.from_numpy(want[name]).to(dtype).numpy()
                    np.testing.assert_array_equal(result.numpy(), expected, err_msg=name)
                    if x is t and values is finite and dtype != torch.float16:
                        name_of = "float32" if dtype == torch.float32 else "float64"
                        assert_close(result.numpy()[:50], desired[name], xb, name_of)
                _check_losses_on_memory(torch, x, x.flip(0))
    for dtype in (torch.float32, torch.float64):  # sums that need the careful form
        top = torch.finfo(dtype).max
        ones = torch.ones(100, dtype=dtype)
        for yhat, y in ((ones, ones), (ones * 1e-30, -ones * 1e-30), (ones * top, -ones * top)):
            _check_losses_on_memory(torch, yhat, y)


def _check_losses_on_memory(torch: Any, yhat: Any, y: Any) -> None:
    """The torch CPU loss route against the NumPy one, bit for bit, every reduction."""
    from arraykit._native import numpy as kernels
    from arraykit._native import torch as operators

    a, b = (
        t.float().numpy(force=True) if t.dtype == torch.float16 else t.numpy(force=True)
        for t in (yhat, y)
    )
    for power in (1, 2):
        for reduction in ("sum", "mean", "none"):
            got = operators.l1_loss(yhat, y, reduction, power)
            want = torch.from_numpy(np.asarray(_Routed(kernels).l1_loss(a, b, reduction, power)))
            assert got.dtype == yhat.dtype
            np.testing.assert_array_equal(
                got.numpy(), want.to(yhat.dtype).numpy(), err_msg=f"{reduction}, power {power}"
            )


@pytest.mark.usefixtures("thread_pool")
def test_compiled_threads_from_several_python_threads() -> None:
    """Calls from several Python threads at once (the kernels release the GIL) each get
    their own right answer: one job holds the workers, the others run alone."""
    from concurrent.futures import ThreadPoolExecutor

    from arraykit._native import numpy as kernels

    if kernels.compiled is None:
        pytest.skip(NOT_COMPILED)
    x, y = _threads_inputs("float64")
    inputs = [x * (k + 1) for k in range(8)]
    expected = [kernels.softmax(a, (1,)) for a in inputs]
    totals = [kernels.l1_loss(a, y, "sum", 2) for a in inputs]
    with ThreadPoolExecutor(4) as pool:
        for _ in range(5):
            results = list(pool.map(lambda a: kernels.softmax(a, (1,), threads=2), inputs))
            sums = list(pool.map(lambda a: kernels.l1_loss(a, y, "sum", 2, threads=3), inputs))
            for got, want in zip(results, expected, strict=True):
                np.testing.assert_array_equal(got, want)
            for got, want in zip(sums, totals, strict=True):
                np.testing.assert_array_equal(got, want)
