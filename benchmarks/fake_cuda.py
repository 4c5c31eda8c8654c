"""What a CUDA tensor would cost, counted on fake CUDA tensors without a GPU.

torch's ``FakeTensorMode`` makes tensors whose device is ``cuda:0`` on any
build: each operation runs its meta kernel, so the stream of operations, with
their shapes, dtypes and devices, is the one a GPU would get. :class:`Costs`
watches that stream:

* each ATen operation that runs a kernel is a **launch** (views and
  allocations are not), moving its CUDA inputs and outputs (**bytes**);
* each ``arraykit`` operator is replayed through the kernel it has on CUDA
  tensors (``arraykit._native.torch.CUDA_KERNELS``): the Triton launchers,
  with their launches recorded (and the bytes each declares, which
  ``tests/test_triton.py`` counts against the interpreter's own loads and
  stores), or the formula's ATen operations where there is no Triton;
* an operation that needs a value on the host (``item``, ``nonzero``, a
  data-dependent shape) is a **host sync**: fake tensors have no values, so
  it raises here, and is counted; a copy from the CPU to the device
  (a Python number turned into a device tensor, say) is a **host copy**,
  which synchronises too unless pinned.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

NO_KERNEL = {
    "aten.view",
    "aten._unsafe_view",
    "aten.expand",
    "aten.t",
    "aten.transpose",
    "aten.permute",
    "aten.squeeze",
    "aten.unsqueeze",
    "aten.alias",
    "aten.detach",
    "aten.slice",
    "aten.select",
    "aten.as_strided",
    "aten._reshape_alias",
    "aten.empty",
    "aten.empty_like",
    "aten.empty_strided",
    "aten.new_empty",
    "aten.new_empty_strided",
    "aten.resize_",
    "aten.set_",
    "aten.sym_size",
    "aten.sym_stride",
    "aten.sym_numel",
    "aten.sym_storage_offset",
    "aten.is_same_size",
    "aten.unbind",
    "aten.split",
    "aten.chunk",
    "aten.lift_fresh",
    "aten.movedim",
    "aten.reshape",
    "prim.device",
    "prim.layout",
    "profiler._record_function_enter_new",
    "profiler._record_function_exit",
}
"""Operations that launch no kernel: views, shapes and allocations."""

HOST_READS = {
    "aten._local_scalar_dense",
    "aten.item",
    "aten.nonzero",
    "aten.is_nonzero",
    "aten.equal",
    "aten.masked_select",
    "aten._unique2",
    "aten.unique_consecutive",
}
"""Operations whose result needs the device's values on the host."""


@dataclass
class Counts:
    """What one call costs on a CUDA device."""

    launches: int = 0
    bytes: int = 0
    syncs: list[str] = field(default_factory=list)
    host_copies: list[str] = field(default_factory=list)
    kernels: list[str] = field(default_factory=list)

    def add(self, other: Counts) -> None:
        self.launches += other.launches
        self.bytes += other.bytes
        self.syncs += other.syncs
        self.host_copies += other.host_copies
        self.kernels += other.kernels


def _device_bytes(tree: Any, device: str) -> int:
    return sum(
        t.numel() * t.element_size()
        for t in tree_flatten(tree)[0]
        if isinstance(t, torch.Tensor) and t.device.type == device
    )


class Costs(TorchDispatchMode):
    """Counts launches, bytes, host syncs and host copies of the operations run within,
    on tensors of ``device`` (``cuda``: fake CUDA tensors; ``meta`` where autograd runs)."""

    def __init__(self, device: str = "cuda") -> None:
        super().__init__()
        self.device = device
        self.counts = Counts()

    def __torch_dispatch__(
        self, func: Any, types: Any, args: Sequence[Any] = (), kwargs: Any = None
    ) -> Any:
        kwargs = kwargs or {}
        name = str(func.overloadpacket)
        if name.startswith("arraykit."):
            return self._replay(name.split(".", 1)[1], args)
        if name in HOST_READS:
            self.counts.syncs.append(name)
        try:
            out = func(*args, **kwargs)
        except Exception as exc:  # a fake tensor cannot give a value to the host
            self.counts.syncs.append(f"{name} ({type(exc).__name__})")
            raise
        inputs = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        device = self.device
        if name in ("aten._to_copy", "aten.copy_") and isinstance(out, torch.Tensor):
            if out.device.type == device and any(t.device.type == "cpu" for t in inputs):
                self.counts.host_copies.append(name)
                return out
            if out.device.type == "cpu" and any(t.device.type == device for t in inputs):
                self.counts.syncs.append(f"{name} to the host")
                return out
        moved = _device_bytes(inputs, device) + _device_bytes(out, device)
        if name not in NO_KERNEL and moved:
            self.counts.launches += 1
            self.counts.bytes += moved
            self.counts.kernels.append(name)
        return out

    def _replay(self, operator: str, args: Sequence[Any]) -> Any:
        """Run ``arraykit::operator`` as a CUDA tensor would: through its CUDA kernel."""
        from arraykit._native import torch as operators

        kernels = operators.triton_kernels()
        inner = Costs(self.device)
        with inner:
            if kernels is None:
                out = operators.CUDA_KERNELS[operator](*args)
                launches = []
            else:
                with kernels.recording() as launches:
                    out = operators.CUDA_KERNELS[operator](*args)
        self.counts.add(inner.counts)
        for launch in launches:
            self.counts.launches += 1
            self.counts.bytes += launch.traffic
            self.counts.kernels.append(f"triton {launch.kernel}")
        return out


def measure(
    call: Callable[..., Any],
    shapes: Sequence[tuple[int, ...]],
    dtype: torch.dtype,
    backward: bool = False,
    arguments: Callable[[list[Any]], list[Any]] | None = None,
) -> Counts:
    """The costs of ``call(*tensors)`` on fake CUDA tensors of these shapes.

    ``arguments`` turns the tensors into the arguments ``call`` takes (labels,
    class indices: the registry's ``Operation.arguments``), outside the count.
    With ``backward``, the costs of the backward pass alone: the gradient of
    the output (weighted by a tensor of its shape) with respect to the first
    argument, as in training (the targets of a loss need none). Autograd's engine
    needs a real device of the tensors' type, which a CPU-only build lacks
    for CUDA: the backward pass runs on meta tensors, whose operations are
    the same, with arraykit's operators replayed through their CUDA kernels.
    """
    prepare = arguments or list
    if backward:
        made = [torch.empty(shape, dtype=dtype, device="meta") for shape in shapes]
        args = prepare(made)
        args[0] = args[0].detach().requires_grad_()
        out = call(*args)
        weights = torch.empty_like(out)
        costs = Costs("meta")
        with costs:
            torch.autograd.grad(out, args[0], weights)
        return costs.counts
    with FakeTensorMode(allow_non_fake_inputs=True):
        args = prepare([torch.empty(shape, dtype=dtype, device="cuda") for shape in shapes])
        costs = Costs()
        try:
            with costs:
                call(*args)
        except Exception:
            if not costs.counts.syncs:
                raise
            # A fake tensor has no value to give the host: the call stops at
            # its first host sync, which is counted.
        return costs.counts
