"""What leaves the device: the primitives' CUDA path copies nothing to or from the host.

Without Triton a CUDA tensor is computed by the formulas in torch operations.
Run on fake CUDA tensors (``FakeTensorMode``: each op's meta kernel, the
devices and dtypes of CUDA), every op that would need a value on the host
raises, and a Python scalar sent to the device shows as a copy from the CPU:
the cost model's watcher (``benchmarks.fake_cuda``) counts both. The Triton
kernels' path is held to the same by ``tests/test_gpu_costs.py``.
"""

from __future__ import annotations

import pytest

from arraykit._operations import CALLS

torch = pytest.importorskip("torch")
xp = pytest.importorskip("array_api_compat.torch")

from torch._subclasses.fake_tensor import FakeTensorMode  # noqa: E402

from benchmarks.fake_cuda import Costs  # noqa: E402

CASES = {
    label: (lambda x, y, op=op, call=call: call.formula(*(x, y)[: op.arrays], xp=xp))
    for label, (op, call) in CALLS.items()
    if op.kind != "shape"  # a reshape computes nothing
}
"""The generic formula of every call in the registry, on the same (64, 100) arrays."""


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_cuda_path_moves_nothing_to_or_from_the_host(name: str, dtype: str) -> None:
    with FakeTensorMode(allow_non_fake_inputs=False):
        x = torch.empty(64, 100, dtype=getattr(torch, dtype), device="cuda")
        y = torch.empty(64, 100, dtype=getattr(torch, dtype), device="cuda")
        costs = Costs()
        with costs:
            out = CASES[name](x, y)
    assert out.device.type == "cuda"
    assert costs.counts.syncs == []
    assert costs.counts.host_copies == []
