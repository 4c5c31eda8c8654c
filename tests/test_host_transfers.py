"""What leaves the device: the primitives' CUDA path copies nothing to or from the host.

A CUDA tensor is computed by the generic formulas in torch operations (the
operators' kernel for devices other than the CPU). Run on fake CUDA tensors
(``FakeTensorMode``: each op's meta kernel, the devices and dtypes of CUDA),
every op that would need a value on the host raises, and a Python scalar sent
to the device shows as a copy from the CPU: this test counts both.
"""

from __future__ import annotations

from typing import Any

import pytest

from arraykit import _formulas

torch = pytest.importorskip("torch")
xp = pytest.importorskip("array_api_compat.torch")

from torch._subclasses.fake_tensor import FakeTensorMode  # noqa: E402
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402


class HostTraffic(TorchDispatchMode):
    """Records copies between devices and host reads of tensor values."""

    READS = ("aten._local_scalar_dense", "aten.item", "aten.nonzero", "aten.is_nonzero")

    def __init__(self) -> None:
        super().__init__()
        self.transfers: list[str] = []

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        name = str(func.overloadpacket)
        out = func(*args, **kwargs)
        if name in self.READS:
            self.transfers.append(name)
        inputs = [a for a in args if isinstance(a, torch.Tensor)]
        copied = name in ("aten._to_copy", "aten.copy_") and isinstance(out, torch.Tensor)
        if copied and any(t.device != out.device for t in inputs):
            self.transfers.append(f"{name} {inputs[0].device} -> {out.device}")
        return out


CASES = {
    "sigmoid": lambda x, y: _formulas.sigmoid(x, xp=xp),
    "sigmoid_derivative": lambda x, y: _formulas.sigmoid_derivative(x, xp=xp),
    "softmax": lambda x, y: _formulas.softmax(x, (1,), xp=xp),
    "normalize_rows": lambda x, y: _formulas.normalize_rows(x, xp=xp),
    **{
        f"l{p}_loss-{r}": (lambda x, y, p=p, r=r: _formulas.loss(x, y, r, p, xp=xp))
        for p in (1, 2)
        for r in ("none", "sum", "mean")
    },
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_cuda_path_moves_nothing_to_or_from_the_host(name: str, dtype: str) -> None:
    with FakeTensorMode(allow_non_fake_inputs=False):
        x = torch.empty(64, 100, dtype=getattr(torch, dtype), device="cuda")
        y = torch.empty(64, 100, dtype=getattr(torch, dtype), device="cuda")
        with HostTraffic() as traffic:
            out = CASES[name](x, y)
    assert out.device.type == "cuda"
    assert traffic.transfers == []
