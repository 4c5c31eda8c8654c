"""Compile every Triton kernel, as the launchers specialise it, for a GPU, without one.

``python -m tests.triton_targets [arch ...]`` (default: 90, the H100/H200):
each launcher is called on meta tensors of every dtype with its launches
recorded (``arraykit._native._triton.recording``), and each recorded launch
is compiled by Triton for that target, to PTX and then to machine code by
the ``ptxas`` Triton ships. The interpreter runs the kernels' arithmetic
(``tests/test_triton.py``); this catches what only the compiler sees: a
global that is not a ``tl.constexpr``, a type the lowering refuses, too many
registers. It must run where ``TRITON_INTERPRET`` is off (interpreted kernels
do not compile): ``tests/test_triton.py`` starts it in a subprocess.
"""

from __future__ import annotations

import os
import sys
from typing import Any

TYPES = {"float16": "fp16", "bfloat16": "bf16", "float32": "fp32", "float64": "fp64"}
INDICES = {"int64": "i64"}


def _type(value: Any) -> str:
    import torch

    if isinstance(value, torch.Tensor):
        name = str(value.dtype).rsplit(".", 1)[-1]
        return "*" + (TYPES.get(name) or INDICES[name])
    if isinstance(value, bool):
        return "i1"
    if isinstance(value, int):
        return "i32" if -(2**31) <= value < 2**31 else "i64"
    if isinstance(value, float):
        return "fp32"  # as Triton passes a Python float
    raise TypeError(f"no Triton type for {value!r}")


def launches() -> list[Any]:
    """Every distinct launch the launchers make, over dtypes, shapes and reductions."""
    import torch

    from arraykit._native import _triton as kernels

    recorded = []
    with kernels.recording() as found:
        for dtype in TYPES:
            t = getattr(torch, dtype)
            x = torch.empty(64, 100, dtype=t, device="meta")
            g = torch.empty(64, 100, dtype=t, device="meta")
            scalar = torch.empty((), dtype=t, device="meta")
            kernels.sigmoid_derivative(x)
            kernels.sigmoid_backward(g, x)
            kernels.sigmoid_derivative_backward(g, x)
            for max_block in (kernels.MAX_ROW_BLOCK, 16):
                kernels.softmax(x, (1,), max_block)
                kernels.softmax_backward(g, x, (1,), max_block)
                kernels.log_softmax(x, (1,), max_block)
                kernels.logsumexp(x, (1,), False, max_block)
                kernels.log_softmax_backward(g, x, (1,), max_block)
                kernels.logsumexp_backward(g[:, 0], x, (1,), False, max_block)
                labels = torch.empty(64, dtype=torch.int64, device="meta")
                for reduction in ("none", "mean"):
                    kernels.cross_entropy(x, labels, 1, reduction, max_block)
                    upstream = g[:, 0] if reduction == "none" else scalar
                    kernels.cross_entropy_backward(upstream, x, labels, 1, reduction, max_block)
                kernels.normalize_rows(x, max_block)
                kernels.normalize_rows_backward(g, x, max_block)
            kernels.softplus(x)
            kernels.softplus_backward(g, x)
            for reduction in ("mean", "none"):
                kernels.logistic(x, g, reduction)
                kernels.logistic_backward(scalar if reduction == "mean" else g, x, g, reduction)
            for power in (1, 2):
                for reduction in ("sum", "mean", "none"):
                    kernels.loss(x, g, reduction, power)
                    upstream = g if reduction == "none" else scalar
                    kernels.loss_backward(upstream, x, g, reduction, power)
        recorded = list(found)
    unique = {}
    for launch in recorded:
        signature = tuple(_type(a) for a in launch.args)
        key = (launch.kernel, signature, tuple(sorted(launch.constants.items())))
        unique.setdefault(key, launch)
    return list(unique.values())


def compile_all(arch: int = 90) -> dict[str, tuple[int, int]]:
    """Compile each launch for ``sm_<arch>``: its registers and stack bytes (spills), by kernel."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    target = GPUTarget("cuda", arch, 32)
    options_names = {"num_warps", "num_stages", "enable_fp_fusion"}
    usage = {}
    for launch in launches():
        function = launch.function
        constants = {k: v for k, v in launch.constants.items() if k not in options_names}
        options = {k: v for k, v in launch.constants.items() if k in options_names}
        signature = {
            name: _type(value) for name, value in zip(function.arg_names, launch.args, strict=False)
        }
        signature.update({name: "constexpr" for name in constants})
        source = ASTSource(fn=function, signature=signature, constexprs=constants)
        compiled = triton.compile(
            source, target=target, options={"enable_fp_fusion": False, **options}
        )
        types = ",".join(t for t in signature.values() if t != "constexpr")
        name = f"{launch.kernel}({types}) {sorted(constants.items())}"
        usage[name] = _resources(compiled.asm["cubin"])
    return usage


def _resources(cubin: bytes) -> tuple[int, int]:
    """(registers, stack bytes) of a kernel, read by the ``cuobjdump`` Triton ships."""
    import re
    import subprocess
    import tempfile
    from pathlib import Path

    import triton

    tool = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
    with tempfile.NamedTemporaryFile(suffix=".cubin") as handle:
        handle.write(cubin)
        handle.flush()
        text = subprocess.run(
            [str(tool), "-res-usage", handle.name], capture_output=True, text=True, check=True
        ).stdout
    found = re.search(r"REG:(\d+) STACK:(\d+)", text)
    if found is None:
        raise RuntimeError(f"no resource usage in cuobjdump's output: {text[:200]}")
    return int(found.group(1)), int(found.group(2))


if __name__ == "__main__":
    if os.environ.get("TRITON_INTERPRET") == "1":
        sys.exit("TRITON_INTERPRET=1: interpreted kernels do not compile")
    for arch in [int(a) for a in sys.argv[1:]] or [90]:
        usage = compile_all(arch)
        registers = max(r for r, _ in usage.values())
        spilled = sorted(k for k, (_, stack) in usage.items() if stack)
        print(
            f"sm_{arch}: {len(usage)} kernels compiled; at most {registers} registers; "
            f"spills: {spilled or 'none'}"
        )
        if spilled:
            sys.exit(1)
