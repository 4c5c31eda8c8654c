"""The benchmark code runs, and its peers compute what they claim (no timings here)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from arraykit import regression
from benchmarks import primitives
from benchmarks import regression as regression_benchmark


def test_primitives_runner_smoke() -> None:
    rows = primitives.run(
        (10,), repeats=1, budget=1e-4, functions=("sigmoid", "l2_loss"), only={"numpy"}
    )
    names = {(r["function"], r["implementation"]) for r in rows}
    assert ("sigmoid", "arraykit") in names
    assert ("sigmoid", "textbook") in names
    assert ("l2_loss", "copy") in names
    assert all(r["median"] > 0 for r in rows)


@pytest.mark.parametrize("function", primitives.FUNCTIONS)
def test_peers_agree_with_arraykit(function: str) -> None:
    import backends

    numpy_backend = backends.get("numpy")
    case = primitives.case(numpy_backend, function, 1000, "float64")
    ours = np.asarray(case.contenders["arraykit"]())
    # The same function, not the same accuracy: the textbook s*(1 - s) loses
    # ~1e-9 relative by x = 16, which is arraykit's point.
    for name, peer in case.contenders.items():
        if name not in ("arraykit", "copy"):
            np.testing.assert_allclose(np.asarray(peer()), ours, rtol=1e-7, err_msg=name)


@pytest.mark.parametrize("adagrad", [False, True])
def test_classic_loops_compute_the_experiment(adagrad: bool) -> None:
    lr = 1.0 if adagrad else 1e-6
    expected = (
        regression.fit_line(
            *regression.classic_data(),
            optimizer="adagrad" if adagrad else "gd",
            lr=lr,
            steps=3000,
            eps=0.0,
            start=regression.CLASSIC_START,
        )
        if adagrad
        else regression.fit_line(
            *regression.classic_data(), lr=lr, steps=3000, start=regression.CLASSIC_START
        )
    )
    for loop in (regression_benchmark.classic_python, regression_benchmark.classic_numpy):
        np.testing.assert_allclose(loop(lr, 3000, adagrad), expected.params, rtol=1e-11)


def test_out_of_core_example_runs_and_agrees_with_numpy(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("dask.distributed")
    import dask.array as da

    from benchmarks import out_of_core

    tiny = ["--gigabytes", "0.002", "--columns", "64", "--chunk-mb", "0.25", "--workers", "1"]
    assert out_of_core.main([*tiny, "--in-memory-gigabytes", "0.001"]) == 0
    printed = capsys.readouterr().out
    assert "peak resident memory per worker" in printed
    assert "Dask per core / NumPy per core" in printed
    # The pipeline itself: Dask, blocks of whole rows, against NumPy on the same data.
    rng = np.random.default_rng(5)
    x, target = rng.normal(size=(40, 16)), rng.random((40, 16)) / 8
    lazy = out_of_core.pipeline(da.from_array(x, chunks=(7, 16)), da.from_array(target, chunks=5))
    for got, expected in zip(lazy, out_of_core.pipeline(x, target), strict=True):
        np.testing.assert_allclose(np.asarray(got.compute()), expected, rtol=1e-14)


@pytest.mark.parametrize("operation", ["dot", "outer", "elementwise", "matvec"])
def test_classic_loops_and_vectorised_calls_agree(operation: str) -> None:
    from array_api_compat import numpy as xp

    from benchmarks import vectorisation

    rng = np.random.default_rng(1)
    x1, x2, w = rng.normal(size=15), rng.normal(size=15), rng.normal(size=(3, 15))
    looped = vectorisation.loops(xp, x1, x2, w)[operation]()
    expected = {"dot": np.dot(x1, x2), "outer": np.outer(x1, x2), "elementwise": x1 * x2}
    expected["matvec"] = w @ x1
    np.testing.assert_allclose(looped, expected[operation], rtol=1e-13)
    np.testing.assert_allclose(
        vectorisation.vectorised(xp, x1, x2, w)[operation](), expected[operation], rtol=1e-13
    )


def test_crossover_compares_the_same_results() -> None:
    """benchmarks.crossover forces each kernel in turn: both must compute the function."""
    from arraykit._native import numpy as kernels
    from benchmarks import crossover

    from .test_native import NOT_COMPILED

    if kernels.compiled is None:
        pytest.skip(NOT_COMPILED)
    for name, call in crossover._calls(2048, "float64").items():
        compiled = np.asarray(crossover._forced(2**62, call)())
        plain = np.asarray(crossover._forced(0, call)())
        np.testing.assert_allclose(compiled, plain, rtol=1e-14, err_msg=name)
    assert kernels.COMPILED_UP_TO["sigmoid"] > 0, "the thresholds are restored"


@pytest.mark.slow  # half a minute; CI's GPU dry run runs it whole
def test_gpu_run_dry_sections(tmp_path: Any) -> None:
    """The prepared GPU run's sections, on the CPU at tiny sizes (``.ci/run`` runs it whole)."""
    pytest.importorskip("torch")
    import json

    from benchmarks import gpu_run

    gpu_run.main([str(tmp_path), "--dry-run", "--skip-tests", "--deadline", "120"])
    syncs = json.loads((tmp_path / "syncs.json").read_text())
    assert "softmax" in syncs["torch:cpu"]
    timings = json.loads((tmp_path / "timings.json").read_text())
    assert {r["function"] for r in timings} == set(gpu_run.FUNCTIONS)
    assert json.loads((tmp_path / "errors.json").read_text()) == []
    assert "| torch:cpu | softmax |" in (tmp_path / "summary.md").read_text()


def test_the_shape_sweep_smoke(tmp_path: Any) -> None:
    """The sweep's cells run on every layout and axis, beside their peers, and report."""
    from benchmarks import sweep

    rows = sweep.run(smoke=True, only={"numpy"}, dtypes=("float32",), threads=(1,))
    seen = {(r["function"], r["layout"]) for r in rows}
    for layout in ("last axis", "transposed", "strided", "first axis", "middle axis"):
        assert ("softmax", layout) in seen
    assert ("l2_loss mean", "strided") in seen
    assert all(r["times"]["arraykit"] > 0 and r["best_peer"] != "arraykit" for r in rows)
    assert "| numpy | 1 |" in sweep.summary(rows)
    sweep.misses(rows)
    sweep.plot(rows, tmp_path / "sweep.png")
    assert (tmp_path / "sweep.png").stat().st_size > 0


def test_the_calls_benchmark_times_every_cell(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch")
    from benchmarks import calls

    monkeypatch.setattr(calls, "SHAPES", ((4, 4),))
    timed = calls.best_time
    monkeypatch.setattr(calls, "best_time", lambda call, number: timed(call, 2, repeats=2))
    rows = calls.cells()
    functions = {"softmax", "log_softmax", "logsumexp", "cross_entropy"}
    assert {(r["function"], r["dtype"]) for r in rows} == {
        (f, d) for f in functions for d in ("float32", "float64")
    }
    assert all(r[k] > 0 for r in rows for k in ("numpy_us", "torch_us", "torch_own_us"))
