"""The GPU cost model, held to its budgets without a GPU (``benchmarks.gpu_costs``).

torch:cuda on fake CUDA tensors: each primitive one launch (two for a loss
reduced to a number), forward and backward, moving at most 1.25× the bytes
of torch's own function, with no host sync or host copy, in every dtype; an
optimizer step in no more launches than ``torch.optim``'s multi-tensor one.
CuPy through a namespace built like array-api-compat's: no host sync. JAX:
no data-dependent conditional, and (float32 with x64 on) at most three
kernels in XLA's program.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from benchmarks import gpu_costs

torch = pytest.importorskip("torch")


def _needs_triton() -> None:
    pytest.importorskip("triton")
    if os.environ.get("ARRAYKIT_TRITON") == "0":
        pytest.skip("ARRAYKIT_TRITON=0: CUDA tensors take the formulas")


@pytest.mark.parametrize("dtype", gpu_costs.TORCH_DTYPES)
@pytest.mark.parametrize("name", list(gpu_costs.CALLS))
def test_torch_cuda_within_budget(name: str, dtype: str) -> None:
    _needs_triton()
    rows = [r for r in gpu_costs.torch_rows((dtype,)) if r["primitive"] == name]
    for r in rows:
        budget = (gpu_costs.BACKWARD_LAUNCHES if r["pass"] == "backward" else gpu_costs.LAUNCHES)[
            name
        ]
        where = f"{name} {r['pass']} {dtype}: {r['kernels']}"
        assert r["launches"] <= budget, where
        assert r["bytes"] <= gpu_costs.BYTES[name] * r["native_bytes"], where
        assert r["syncs"] == [], where
        assert r["host_copies"] == [], where


def test_the_formulas_on_cuda_are_sync_free_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without Triton, CUDA tensors take the formulas in torch operations: more
    launches, still no host sync or copy (and the model sees the difference)."""
    from arraykit._native import torch as operators

    monkeypatch.setenv("ARRAYKIT_TRITON", "0")
    operators.triton_kernels.cache_clear()
    try:
        rows = gpu_costs.torch_rows(("float32",))
    finally:
        monkeypatch.delenv("ARRAYKIT_TRITON")
        operators.triton_kernels.cache_clear()
    for r in rows:
        assert r["syncs"] == [], r["primitive"]
        assert r["host_copies"] == [], r["primitive"]
    softmax = next(r for r in rows if r["primitive"] == "softmax" and r["pass"] == "forward")
    assert softmax["launches"] > gpu_costs.LAUNCHES["softmax"]


def test_the_model_sees_a_host_sync() -> None:
    """An operation whose result needs the device's values on the host is charged
    for it. (On a CPU-only build a fake CUDA tensor fails such a read before it is
    dispatched, so the watcher is shown one on meta tensors.)"""
    from benchmarks.fake_cuda import Costs

    x = torch.empty(10, device="meta")
    costs = Costs("meta")
    with pytest.raises(NotImplementedError), costs:  # a meta tensor has no values to give
        x[x > 0]  # boolean-mask indexing: nonzero, a sync on CUDA
    assert [s.split()[0] for s in costs.counts.syncs] == ["aten.index"]


def test_optimizer_steps_within_torch_optims_launches() -> None:
    for r in gpu_costs.optimizer_rows():
        assert r["syncs"] == [], r
        assert r["host_copies"] == [], r
        # Centered RMSProp's variance is clamped at 0 (where torch takes a NaN
        # square root): one launch more.
        extra = 1 if "centered" in r["optimizer"] else 0
        assert r["launches"] <= r["native_launches"] + extra, r


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cupy_without_host_syncs(dtype: str) -> None:
    for r in gpu_costs.cupy_rows((dtype,)):
        assert r["syncs"] == [], (r["primitive"], r["syncs"])
        assert r["kernels"] > 0 or r["primitive"] == "image2vector"


def test_cupy_semantics_see_the_masked_clip() -> None:
    """The formula through array-api-compat's own CuPy clip would synchronise:
    the namespace charges its boolean masks."""
    from arraykit import _formulas
    from benchmarks import cupy_semantics as cs

    xp = cs.namespace()
    x = cs.put(xp, np.random.default_rng(0).normal(size=(10, 100)), "float32")
    with cs.counting() as ledger:
        _formulas.softmax(x, (1,), xp=xp)
    assert any("boolean mask" in s for s in ledger.syncs)


def test_jax_without_conditionals_in_few_kernels() -> None:
    pytest.importorskip("jax")
    for r in gpu_costs.jax_rows(("float32", "float64")):
        assert r["conditionals"] == 0, r
        if r["dtype"] == "float32" and r["primitive"] in gpu_costs.JAX_KERNELS:
            assert r["kernels"] <= gpu_costs.JAX_KERNELS[r["primitive"]], r
