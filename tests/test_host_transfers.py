"""What leaves the device: the primitives' CUDA path copies nothing to or from the host.

Without Triton a CUDA tensor is computed by the formulas in torch operations.
Run on fake CUDA tensors (``FakeTensorMode``: each op's meta kernel, the
devices and dtypes of CUDA), every op that would need a value on the host
raises, and a Python scalar sent to the device shows as a copy from the CPU:
the cost model's watcher (``benchmarks.fake_cuda``) counts both. The Triton
kernels' path is held to the same by ``tests/test_gpu_costs.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

from arraykit._operations import CALLS

torch = pytest.importorskip("torch")
xp = pytest.importorskip("array_api_compat.torch")

from torch._subclasses.fake_tensor import FakeTensorMode  # noqa: E402

from benchmarks.fake_cuda import Costs  # noqa: E402

CASES = {label: (op, call) for label, (op, call) in CALLS.items() if op.kind != "shape"}
"""The generic formula of every call in the registry (a reshape computes nothing), on
(64, 100) arrays (class indices: one per row)."""


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_cuda_path_moves_nothing_to_or_from_the_host(name: str, dtype: str) -> None:
    op, call = CASES[name]
    examples = op.arguments([np.zeros((64, 100))] * op.arrays)
    shapes, kinds = [a.shape for a in examples], [a.dtype for a in examples]
    with FakeTensorMode(allow_non_fake_inputs=False):
        arrays = [
            torch.empty(
                shape,
                dtype=torch.int64 if kind.kind == "i" else getattr(torch, dtype),
                device="cuda",
            )
            for shape, kind in zip(shapes, kinds, strict=True)
        ]
        costs = Costs()
        with costs:
            out = call.formula(*arrays, xp=xp)
    assert out.device.type == "cuda"
    assert costs.counts.syncs == []
    assert costs.counts.host_copies == []
