"""The GPU cost model: what each primitive costs on torch:cuda, CuPy and jax:cuda, without a GPU.

``python -m benchmarks.gpu_costs [--json FILE]`` prints, for every public
primitive (forward, and backward where torch differentiates it) and the
optimizers' step:

* **torch:cuda**, counted on fake CUDA tensors (:mod:`benchmarks.fake_cuda`):
  kernel launches and bytes moved against torch's own function measured the
  same way, host syncs and host copies, in float16, bfloat16, float32 and
  float64;
* **CuPy**, counted through a namespace built like array-api-compat's CuPy
  one (:mod:`benchmarks.cupy_semantics`): kernels, bytes, host syncs;
* **jax:cuda**, read from XLA's optimised program (:mod:`benchmarks.xla_kernels`):
  kernels and data-dependent conditionals.

The budgets below are what ``tests/test_gpu_costs.py`` holds these to in CI.
None of these counts depends on the machine; a GPU run (``benchmarks/gpu_run.py``)
checks them against the device.
"""

from __future__ import annotations

import argparse
import functools
import json
from collections.abc import Callable
from typing import Any

import numpy as np

import arraykit as ak
from arraykit import _operations as operations

N = 1_000_000
"""Elements per input (rows of ROW for the row primitives)."""
ROW = 100


_BUDGETED = {
    label: (op, call) for label, (op, call) in operations.CALLS.items() if call.budget is not None
}

UNBUDGETED = tuple(label for label in operations.CALLS if label not in _BUDGETED)
"""The registry's calls with no GPU kernel yet (the formula in torch operations serves
them on CUDA): not held to a budget here, named in the table."""

CALLS: dict[str, tuple[Callable[..., Any], int]] = {
    label: (call.public, op.arrays) for label, (op, call) in _BUDGETED.items()
}
"""Each public operation's calls (the registry's) held to a budget, as functions of their
array arguments, and their number."""

LAUNCHES = {label: call.budget.torch for label, (_, call) in _BUDGETED.items()}  # type: ignore[union-attr]
"""torch:cuda launch budget per forward call (the registry's)."""

BACKWARD_LAUNCHES = {
    label: call.budget.torch_backward  # type: ignore[union-attr]
    for label, (_, call) in _BUDGETED.items()
}
"""torch:cuda launch budget per backward call (gradient in the first argument)."""

BYTES = {label: call.budget.torch_bytes for label, (_, call) in _BUDGETED.items()}  # type: ignore[union-attr]
"""torch:cuda budget: bytes moved, relative to torch's own function."""

JAX_KERNELS = {
    label: call.budget.jax  # type: ignore[union-attr]
    for label, (_, call) in _BUDGETED.items()
    if call.budget.jax is not None  # type: ignore[union-attr]
}
"""jax:cuda budget: kernels in XLA's optimised program (and no conditional), where the
registry holds the call to a number."""

TORCH_DTYPES = ("float16", "bfloat16", "float32", "float64")


def shapes(name: str) -> list[tuple[int, ...]]:
    return operations.CALLS[name][0].shapes(N, ROW)


# --- torch:cuda ----------------------------------------------------------------------------


def _torch_peers() -> dict[str, Callable[..., Any]]:
    """torch's own function for each call (benchmarks.primitives' table), image2vector a reshape."""
    from .primitives import torch_own

    peers: dict[str, Callable[..., Any]] = {"image2vector": lambda x: x.reshape(-1, 1)}
    for name in CALLS:
        function, _, reduction = name.partition(" ")
        own = torch_own(function, reduction or "sum")
        if own is not None:
            peers[name] = own
    return peers


def torch_rows(dtypes: tuple[str, ...] = TORCH_DTYPES) -> list[dict[str, Any]]:
    """Forward and backward costs of each primitive on fake CUDA tensors, with torch's own."""
    import torch

    from .fake_cuda import measure

    peers = _torch_peers()
    rows = []
    for dtype in dtypes:
        for name, (call, _) in CALLS.items():
            arguments = operations.CALLS[name][0].arguments
            for backward in (False, True):
                ours = measure(call, shapes(name), getattr(torch, dtype), backward, arguments)
                theirs = measure(
                    peers[name], shapes(name), getattr(torch, dtype), backward, arguments
                )
                rows.append(
                    {
                        "backend": "torch:cuda",
                        "primitive": name,
                        "pass": "backward" if backward else "forward",
                        "dtype": dtype,
                        "launches": ours.launches,
                        "native_launches": theirs.launches,
                        "bytes": ours.bytes,
                        "native_bytes": theirs.bytes,
                        "syncs": ours.syncs,
                        "host_copies": ours.host_copies,
                        "kernels": ours.kernels,
                    }
                )
    return rows


def optimizer_rows(tensors: int = 8) -> list[dict[str, Any]]:
    """One optimizer step over ``tensors`` CUDA parameters: arraykit's against torch.optim's."""
    import torch
    from torch._subclasses.fake_tensor import FakeTensorMode

    from .fake_cuda import Costs

    shapes_ = [(256, 128), (128,)] * (tensors // 2)
    rows = []
    cases = {
        "adagrad": (ak.optim.adagrad(lr=0.1), lambda p: torch.optim.Adagrad(p, lr=0.1)),
        "adagrad weight_decay": (
            ak.optim.adagrad(lr=0.1, weight_decay=1e-3),
            lambda p: torch.optim.Adagrad(p, lr=0.1, weight_decay=1e-3),
        ),
        "gradient_descent": (
            ak.optim.gradient_descent(lr=0.1),
            lambda p: torch.optim.SGD(p, lr=0.1),
        ),
        "gradient_descent momentum nesterov": (
            ak.optim.gradient_descent(lr=0.1, momentum=0.9, nesterov=True),
            lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
        ),
        "rmsprop": (ak.optim.rmsprop(), torch.optim.RMSprop),
        "rmsprop centered momentum": (
            ak.optim.rmsprop(centered=True, momentum=0.9),
            lambda p: torch.optim.RMSprop(p, centered=True, momentum=0.9),
        ),
        "adam": (ak.optim.adam(), torch.optim.Adam),
        "adam amsgrad weight_decay": (
            ak.optim.adam(amsgrad=True, weight_decay=1e-2),
            lambda p: torch.optim.Adam(p, amsgrad=True, weight_decay=1e-2),
        ),
        "adamw": (ak.optim.adamw(), torch.optim.AdamW),
    }
    for name, (opt, theirs) in cases.items():
        with FakeTensorMode(allow_non_fake_inputs=True):
            params = [torch.nn.Parameter(torch.empty(s, device="cuda")) for s in shapes_]
            for p in params:
                p.grad = torch.empty_like(p)
            state = opt.init(params)
            costs = Costs()
            with costs:
                ak.optim.step_in_place(opt, params, state)
        rows.append(
            {
                "optimizer": name,
                "tensors": tensors,
                "launches": costs.counts.launches,
                "native_launches": _torch_optim_launches(theirs, shapes_),
                "syncs": costs.counts.syncs,
                "host_copies": costs.counts.host_copies,
                "kernels": costs.counts.kernels,
            }
        )
    return rows


def _torch_optim_launches(make: Callable[..., Any], shapes_: list[tuple[int, ...]]) -> int:
    """Kernels ``torch.optim`` launches for one step with ``foreach=True``, on a GPU.

    Counted on CPU tensors (its step counters are CPU tensors on a GPU too,
    and fake tensors cannot give them to ``item()``): every operation on the
    parameters, gradients or state, that is on tensors of more than one element.
    """
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    from .fake_cuda import NO_KERNEL

    class Count(TorchDispatchMode):
        launches = 0

        def __torch_dispatch__(
            self, func: Any, types: Any, args: Any = (), kwargs: Any = None
        ) -> Any:
            from torch.utils._pytree import tree_flatten

            tensors = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
            if str(func.overloadpacket) not in NO_KERNEL and any(t.numel() > 1 for t in tensors):
                Count.launches += 1
            return func(*args, **(kwargs or {}))

    params = [torch.nn.Parameter(torch.ones(s)) for s in shapes_]
    for p in params:
        p.grad = torch.ones_like(p)
    optimizer = make(params)
    optimizer.defaults["foreach"] = True
    for group in optimizer.param_groups:
        group["foreach"] = True
    optimizer.step()  # creates the state
    with Count():
        optimizer.step()
    return Count.launches


# --- CuPy ----------------------------------------------------------------------------------


@functools.cache  # counted once per process: the tests and the docs' check share it
def cupy_rows(dtypes: tuple[str, ...] = ("float32", "float64")) -> list[dict[str, Any]]:
    """Kernels, bytes and host syncs of each primitive on a CuPy-like namespace."""
    from . import cupy_semantics as cs

    rows = []
    rng = np.random.default_rng(0)
    for dtype in dtypes:
        xp = cs.namespace()
        for name, (op, _) in operations.CALLS.items():
            draws = op.arguments([rng.normal(size=s) for s in shapes(name)])
            arrays = [cs.put(xp, a, dtype if a.dtype.kind == "f" else a.dtype.name) for a in draws]
            with cs.counting() as ledger, np.errstate(all="ignore"):
                _call_with_namespace(name, arrays, xp)
            rows.append(
                {
                    "backend": "cupy",
                    "primitive": name,
                    "dtype": dtype,
                    "kernels": ledger.kernels,
                    "bytes": ledger.bytes,
                    "syncs": ledger.syncs,
                    "names": ledger.names,
                }
            )
    return rows


def _call_with_namespace(name: str, arrays: list[Any], xp: Any) -> Any:
    function, _, reduction = name.partition(" ")
    if reduction:
        return getattr(ak, function)(*arrays, reduction=reduction, xp=xp)
    return getattr(ak, function)(*arrays, xp=xp)


# --- jax:cuda ------------------------------------------------------------------------------


@functools.cache  # compiled once per process: the tests and the docs' check share it
def jax_rows(dtypes: tuple[str, ...] = ("float32", "float64")) -> list[dict[str, Any]]:
    """Kernels and conditionals in XLA's optimised program of each primitive."""
    import jax
    import jax.numpy as jnp

    from .xla_kernels import compiled

    jax.config.update("jax_enable_x64", True)  # as backends/ does: float64 is real
    rows = []
    for dtype in dtypes:
        for name, (op, call) in operations.CALLS.items():
            arrays = op.arguments([jnp.zeros(s, dtype=dtype) for s in shapes(name)])
            program = compiled(call.public, *arrays)
            rows.append(
                {
                    "backend": "jax:cuda",
                    "primitive": name,
                    "dtype": dtype,
                    "kernels": len(program.kernels),
                    "conditionals": program.conditionals,
                    "names": program.kernels,
                }
            )
    return rows


# --- the table -----------------------------------------------------------------------------


def markdown(
    torch_: list[dict[str, Any]],
    optim: list[dict[str, Any]],
    cupy: list[dict[str, Any]],
    jax_: list[dict[str, Any]],
) -> str:
    """The cost model as Markdown tables (docs/benchmark-records.md)."""
    out = [
        f"**torch:cuda** (fake CUDA tensors, {N:,} elements, rows of {ROW}): launches "
        "(torch's own function's), bytes moved relative to torch's own, host syncs and "
        "host copies. Budget: launches as the registry (`arraykit/_operations.py`) lists "
        f"them, bytes ≤ {max(BYTES.values())}× torch's, no sync.",
        "",
        "| primitive | pass | " + " | ".join(TORCH_DTYPES) + " |",
        "| --- | --- | " + " | ".join("---:" for _ in TORCH_DTYPES) + " |",
    ]
    keyed = {(r["primitive"], r["pass"], r["dtype"]): r for r in torch_}
    for name in CALLS:
        for pass_ in ("forward", "backward"):
            cells = []
            for dtype in TORCH_DTYPES:
                r = keyed.get((name, pass_, dtype))
                if r is None:
                    cells.append("—")
                    continue
                moved = f"{r['bytes'] / r['native_bytes']:.2f}×" if r["native_bytes"] else "a view"
                syncs = len(r["syncs"]) + len(r["host_copies"])
                cells.append(
                    f"{r['launches']} ({r['native_launches']}), {moved}"
                    + (f", **{syncs} sync**" if syncs else "")
                )
            out.append(f"| {name} | {pass_} | " + " | ".join(cells) + " |")
    if UNBUDGETED:
        out += [
            "",
            "Not held to a torch:cuda budget yet (no GPU kernel: the formula in torch operations, "
            "checked free of host syncs by `tests/test_host_transfers.py`): "
            + ", ".join(f"`{label}`" for label in UNBUDGETED)
            + ".",
        ]
    out += [
        "",
        "**Optimizer step on torch:cuda** (`step_in_place`, float32): launches against "
        "`torch.optim` with `foreach=True`, host syncs.",
        "",
        "| optimizer | parameters | launches | torch.optim | syncs |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for r in optim:
        syncs = len(r["syncs"]) + len(r["host_copies"])
        out.append(
            f"| {r['optimizer']} | {r['tensors']} | {r['launches']} | {r['native_launches']} "
            f"| {syncs} |"
        )
    out += [
        "",
        "**CuPy** (array-api-compat's CuPy namespace, counted on NumPy) and **jax:cuda** "
        "(XLA's optimised program, compiled for the CPU): kernels, and host syncs "
        "(CuPy) or data-dependent conditionals (JAX).",
        "",
        "| primitive | CuPy float32 | CuPy float64 | JAX float32 | JAX float64 |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    cupy_keyed = {(r["primitive"], r["dtype"]): r for r in cupy}
    jax_keyed = {(r["primitive"], r["dtype"]): r for r in jax_}
    for name in operations.CALLS:
        cells = []
        for dtype in ("float32", "float64"):
            r = cupy_keyed.get((name, dtype))
            cells.append("—" if r is None else f"{r['kernels']}, {len(r['syncs'])} sync")
        for dtype in ("float32", "float64"):
            r = jax_keyed.get((name, dtype))
            cells.append("—" if r is None else f"{r['kernels']}, {r['conditionals']} conditional")
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    unheld = [label for label in CALLS if label not in JAX_KERNELS]
    if unheld:
        out += [
            "",
            f"JAX's kernels are held to the registry's number (at most "
            f"{max(JAX_KERNELS.values())}, float32 with x64) but for "
            + ", ".join(f"`{label}`" for label in unheld)
            + " (see docs/benchmarks.md).",
        ]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", help="also write every count to this file")
    args = parser.parse_args(argv)
    torch_, optim, cupy, jax_ = torch_rows(), optimizer_rows(), cupy_rows(), jax_rows()
    print(markdown(torch_, optim, cupy, jax_))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {"torch": torch_, "optimizers": optim, "cupy": cupy, "jax": jax_}, f, indent=1
            )


if __name__ == "__main__":
    main()
