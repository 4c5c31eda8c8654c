"""One prepared run on a CUDA GPU: the GPU columns of the matrix, host syncs, timings.

From the repository root, on the GPU machine::

    python3 -m benchmarks.gpu_run OUT --wheels .whl --deadline 420

In order, each section saved to OUT as it finishes, so that a run cut short
keeps what it measured:

1. ``--wheels``: installs the wheels carried there (the image lacks
   array-api-compat, which arraykit needs) into OUT's scratch and puts them on
   the path of this process and of the tests it starts;
2. **the GPU columns** of the matrix (``pytest tests -m "gpu and not slow"``)
   and the Triton kernels and cost model on the device
   (``tests/test_triton.py``, ``tests/test_gpu_costs.py``), with JUnit output
   (``gpu.xml``, ``kernels.xml``), and the matrix run recorded as
   ``gpu.json`` (``docs/support.py``'s format: copy it to ``docs/verified/``);
3. **host syncs** on the device (``syncs.json``): every primitive's forward
   and backward and an optimizer step under
   ``torch.cuda.set_sync_debug_mode("error")``, every primitive on CuPy under
   ``cupyx.allow_synchronize(False)``, and XLA's GPU program of every
   primitive on jax:cuda (kernels, conditionals);
4. **timings** (``timings.json``, ``summary.md``): each primitive at 1e6 and
   1e8 elements, float32 and bfloat16, against the backend's own function and
   a device-to-device copy of its input, inputs made on the device, timed with
   CUDA events (torch, CuPy; JAX by wall clock ending in a sync).

``--dry-run`` runs the same code on the CPU (torch:cpu, jax:cpu, tiny sizes,
the matrix's GPU columns skipping with their reason): CI runs it, so the
script cannot rot between GPU runs.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .primitives import FUNCTIONS

ROOT = Path(__file__).resolve().parents[1]
GPU_BACKENDS = ("torch:cuda", "cupy", "jax:cuda")
DRY_BACKENDS = ("torch:cpu", "jax:cpu")


class Run:
    """The output folder, the deadline, and what has been measured so far."""

    def __init__(self, out: Path, deadline: float, dry: bool) -> None:
        self.out = out
        self.start = time.time()
        self.deadline = deadline
        self.dry = dry
        self.errors: list[str] = []
        out.mkdir(parents=True, exist_ok=True)

    def left(self) -> float:
        return self.deadline - (time.time() - self.start)

    def save(self, name: str, data: Any) -> None:
        (self.out / name).write_text(json.dumps(data, indent=1, default=str) + "\n")

    def failed(self, what: str) -> None:
        message = f"{what}: {traceback.format_exc().strip().splitlines()[-1]}"
        print(message, flush=True)
        self.errors.append(message)
        self.save("errors.json", self.errors)


# --- 1. wheels -----------------------------------------------------------------------------


def install_wheels(wheels: Path, run: Run) -> None:
    """The carried wheels, into a folder put first on this process's and the tests' path."""
    site = run.out / "site-packages"
    found = sorted(str(w) for w in wheels.glob("*.whl"))
    if found:
        pip = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps"]
        subprocess.run([*pip, "--no-compile", "--target", str(site), *found], check=True)
    sys.path.insert(0, str(site))
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(site), str(ROOT), os.environ.get("PYTHONPATH", "")]
    )


# --- 2. the GPU columns --------------------------------------------------------------------


def run_tests(run: Run) -> None:
    """The matrix's GPU columns, and the Triton kernels and cost model on this device."""
    env = dict(os.environ, XLA_PYTHON_CLIENT_PREALLOCATE="false", PYTHONUNBUFFERED="1")
    if run.dry:
        env["JAX_PLATFORMS"] = "cpu"
    suites = {
        "gpu.xml": ["tests", "-m", "gpu and not slow"],
        "kernels.xml": ["tests/test_triton.py", "tests/test_gpu_costs.py", "-m", "not slow"],
    }
    share = 0.45 if not run.dry else 0.8
    parallel: list[str] = []
    if not run.dry and importlib.util.find_spec("xdist") is not None:
        parallel = ["-n", "4"]  # one GPU shared by four processes (JAX told not to preallocate)
    for name, selection in suites.items():
        budget = max(30.0, run.left() * share)
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *parallel]
        command += [*selection, f"--junitxml={run.out / name}"]
        print(f"== {' '.join(command[1:])} (at most {budget:.0f} s)", flush=True)
        try:
            subprocess.run(command, cwd=ROOT, env=env, timeout=budget, check=False)
        except subprocess.TimeoutExpired:
            run.errors.append(f"{name}: stopped after {budget:.0f} s")
            run.save("errors.json", run.errors)
    if (run.out / "gpu.xml").exists():
        sys.path.insert(0, str(ROOT / "docs"))
        import support

        support.record(run.out / "gpu.xml", "gpu", directory=run.out)


# --- inputs on the device ------------------------------------------------------------------


def device_inputs(backend: Any, function: str, size: int, dtype: str) -> tuple[Any, ...]:
    """Random inputs made on the device (host RNG at 1e8 would cost seconds per case), in
    the registry's shapes and domain (probabilities, labels, class indices)."""
    from arraykit._operations import BY_NAME

    from . import primitives

    op = BY_NAME[function]
    if function == "image2vector":
        shapes = [(max(size // 100, 1), 10, 10)]
    else:
        shapes = op.shapes(size, primitives.ROW)
    draws = [_random(backend, shape, dtype, seed) for seed, shape in enumerate(shapes)]
    return tuple(op.arguments(draws))


def _random(backend: Any, shape: tuple[int, ...], dtype: str, seed: int) -> Any:
    if backend.library == "torch":
        import torch

        generator = torch.Generator(device=backend.device).manual_seed(seed)
        x = torch.randn(shape, generator=generator, device=backend.device)
        return (x * 4).to(getattr(torch, dtype))
    if backend.library == "cupy":
        import cupy

        with backend.device:
            return (cupy.random.default_rng(seed).standard_normal(shape) * 4).astype(dtype)
    import jax

    x = jax.random.normal(jax.random.key(seed), shape) * 4
    return jax.device_put(x.astype(dtype), backend.device)


# --- 3. host syncs -------------------------------------------------------------------------


def torch_syncs(backend: Any, size: int) -> dict[str, Any]:
    """Each primitive forward and backward, and an optimizer step, with syncs as errors."""
    import torch

    import arraykit as ak

    from .gpu_costs import CALLS

    rows: dict[str, Any] = {}
    for name, (call, _) in CALLS.items():
        args = device_inputs(backend, name.split()[0], size, "float32")
        first = args[0].clone().requires_grad_(True)

        def forward(call: Any = call, args: Any = args) -> Any:
            return call(*args)

        def backward(call: Any = call, args: Any = args, first: Any = first) -> Any:
            return call(first, *args[1:]).sum().backward()

        rows[name] = {}
        for label, step in (("forward", forward), ("backward", backward)):
            step()  # compiles and loads the kernels first
            rows[name][label] = _with_sync_errors(step, backend.gpu)
    params = [torch.nn.Parameter(_random(backend, (1000, 100), "float32", k)) for k in range(4)]
    for p in params:
        p.grad = torch.ones_like(p)
    opt = ak.optim.adagrad(lr=0.1)
    state = opt.init(params)
    ak.optim.step_in_place(opt, params, state)
    rows["adagrad step_in_place"] = _with_sync_errors(
        lambda: ak.optim.step_in_place(opt, params, state), backend.gpu
    )
    return rows


def _with_sync_errors(step: Callable[[], Any], gpu: bool) -> str:
    import torch

    if not gpu:
        step()
        return "no CUDA device: not checked"
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        step()
        return "no sync"
    except RuntimeError as exc:
        return f"SYNC: {str(exc).splitlines()[0][:160]}"
    finally:
        torch.cuda.set_sync_debug_mode("default")


def cupy_syncs(backend: Any, size: int) -> dict[str, str]:
    import cupy
    import cupyx

    import arraykit as ak

    rows = {}
    for name in FUNCTIONS:
        args = device_inputs(backend, name, size, "float32")
        call = getattr(ak, name)
        call(*args)
        cupy.cuda.get_current_stream().synchronize()
        try:
            with cupyx.allow_synchronize(False):
                call(*args)
            rows[name] = "no sync"
        except Exception as exc:
            rows[name] = f"SYNC: {type(exc).__name__}: {str(exc)[:160]}"
    return rows


def jax_programs(backend: Any, size: int) -> dict[str, Any]:
    """XLA's program of each primitive for this device: kernels and conditionals."""
    import arraykit as ak

    from .xla_kernels import compiled

    rows = {}
    for name in FUNCTIONS:
        args = device_inputs(backend, name, size, "float32")
        program = compiled(getattr(ak, name), *args)
        rows[name] = {"kernels": program.kernels, "conditionals": program.conditionals}
    return rows


# --- 4. timings ----------------------------------------------------------------------------


def timed(function: Callable[[], Any], backend: Any, budget: float = 0.05) -> dict[str, float]:
    """Seconds per call: median (and range) of five loops, each long enough to measure.

    On CUDA, torch and CuPy loops are timed by CUDA events recorded around
    them on the stream; otherwise by the wall clock, ending in the backend's sync.
    """
    backend.sync(function())
    start = time.perf_counter()
    backend.sync(function())
    once = max(time.perf_counter() - start, 1e-6)
    loops = max(1, min(1000, int(budget / once)))
    samples = []
    for _ in range(5):
        samples.append(_loop(function, backend, loops) / loops)
    return {"median": statistics.median(samples), "low": min(samples), "high": max(samples)}


def _loop(function: Callable[[], Any], backend: Any, loops: int) -> float:
    if backend.gpu and backend.library in ("torch", "cupy"):
        if backend.library == "torch":
            import torch

            begin, end = (torch.cuda.Event(enable_timing=True) for _ in range(2))
        else:
            import cupy

            begin, end = cupy.cuda.Event(), cupy.cuda.Event()
        begin.record()
        for _ in range(loops):
            function()
        end.record()
        end.synchronize()
        if backend.library == "torch":
            return float(begin.elapsed_time(end)) / 1e3
        import cupy

        return float(cupy.cuda.get_elapsed_time(begin, end)) / 1e3
    start = time.perf_counter()
    for _ in range(loops - 1):
        function()
    backend.sync(function())
    return time.perf_counter() - start


def _nbytes(a: Any) -> int:
    if callable(getattr(a, "numel", None)):  # torch
        return int(a.numel() * a.element_size())
    return int(a.size * a.dtype.itemsize)


def minimum_bytes(function: str, args: tuple[Any, ...]) -> int:
    """The inputs read once and the result written once (a reduction's result is negligible)."""
    if function == "image2vector":
        return 0  # a view
    written = 0 if function in ("l1_loss", "l2_loss") else _nbytes(args[0])
    return sum(_nbytes(a) for a in args) + written


def timing_rows(
    backend: Any, sizes: tuple[int, ...], dtypes: tuple[str, ...], run: Run
) -> list[dict[str, Any]]:
    import arraykit as ak

    from . import primitives

    rows = []
    for size in sizes:
        for dtype in dtypes:
            if dtype == "bfloat16" and backend.library == "cupy":
                continue
            for function in FUNCTIONS:
                if run.left() < 10:
                    run.errors.append(f"deadline: no timing of {backend.id} {function} {size}")
                    continue
                try:
                    args = device_inputs(backend, function, size, dtype)
                    contenders = {"arraykit": lambda f=function, a=args: getattr(ak, f)(*a)}
                    contenders.update(primitives._peers(backend, function, args))
                    contenders["copy"] = primitives._copy(backend, args[0])
                    times = {name: timed(fn, backend) for name, fn in contenders.items()}
                except Exception:
                    run.failed(f"timing {backend.id} {function} {size} {dtype}")
                    continue
                rows.append(_timing_row(backend.id, function, size, dtype, args, times))
                run.save("timings.json", rows)
    return rows


def _timing_row(
    backend_id: str,
    function: str,
    size: int,
    dtype: str,
    args: tuple[Any, ...],
    times: dict[str, Any],
) -> dict[str, Any]:
    ours, copy = times["arraykit"]["median"], times["copy"]["median"]
    peers = {k: v["median"] for k, v in times.items() if k not in ("arraykit", "copy")}
    own = {k: v for k, v in peers.items() if k != "textbook"}
    best = min(own.values()) if own else min(peers.values(), default=math.nan)
    needed, copied = minimum_bytes(function, args), 2 * _nbytes(args[0])
    return {
        "backend": backend_id,
        "function": function,
        "size": size,
        "dtype": dtype,
        "times": times,
        "vs_own": ours / best if best == best else None,
        "copy_bandwidth_fraction": (needed / ours) / (copied / copy) if needed else None,
    }


def summary(rows: list[dict[str, Any]], syncs: dict[str, Any], device: str) -> str:
    lines = [
        f"# GPU run: {device}, {time.strftime('%Y-%m-%d')}",
        "",
        "| backend | function | size | dtype | arraykit | own/best peer | ratio | copy | "
        "of copy bandwidth |",
        "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        t = r["times"]
        peers = [(k, v["median"]) for k, v in t.items() if k not in ("arraykit", "copy")]
        peer = min(peers, key=lambda kv: kv[1]) if peers else ("—", math.nan)
        fraction = r["copy_bandwidth_fraction"]
        lines.append(
            f"| {r['backend']} | {r['function']} | {r['size']:.0e} | {r['dtype']} | "
            f"{t['arraykit']['median'] * 1e6:.1f} µs | {peer[0]} {peer[1] * 1e6:.1f} µs | "
            f"{r['vs_own'] or math.nan:.2f} | {t['copy']['median'] * 1e6:.1f} µs | "
            f"{'—' if fraction is None else f'{fraction:.0%}'} |"
        )
    lines += ["", "Host syncs:", "", "```", json.dumps(syncs, indent=1, default=str), "```"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("out", type=Path, help="the output folder")
    parser.add_argument("--wheels", type=Path, help="a folder of wheels to install first")
    parser.add_argument("--deadline", type=float, default=420.0, help="seconds, all sections")
    parser.add_argument("--dry-run", action="store_true", help="on the CPU, at tiny sizes (CI)")
    parser.add_argument("--skip-tests", action="store_true", help="leave out section 2")
    args = parser.parse_args(argv)
    run = Run(args.out, args.deadline, args.dry_run)
    if args.wheels:
        install_wheels(args.wheels, run)
    sys.path.insert(0, str(ROOT))
    import backends

    from .timing import machine

    found = [backends.get(i) for i in (DRY_BACKENDS if run.dry else GPU_BACKENDS)]
    found = [b for b in found if b.available]
    device = "CPU (dry run)"
    if not run.dry:
        import torch

        device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device"
    run.save("machine.json", {**machine(), "device": device, "backends": [b.id for b in found]})
    print(f"gpu_run on {device}: {[b.id for b in found]}", flush=True)
    if not args.skip_tests:
        run_tests(run)
    size = 1000 if run.dry else 1_000_000
    syncs: dict[str, Any] = {}
    for backend in found:
        check = {"torch": torch_syncs, "cupy": cupy_syncs, "jax": jax_programs}[backend.library]
        try:
            syncs[backend.id] = check(backend, size)
        except Exception:
            run.failed(f"syncs {backend.id}")
        run.save("syncs.json", syncs)
    sizes = (1000, 10_000) if run.dry else (1_000_000, 100_000_000)
    rows: list[dict[str, Any]] = []
    for backend in found:
        dtypes = ("float32", "bfloat16") if backend.library == "torch" else ("float32",)
        rows += timing_rows(backend, sizes, dtypes, run)
    (run.out / "summary.md").write_text(summary(rows, syncs, device))
    run.save("errors.json", run.errors)
    print(
        f"gpu_run: {time.time() - run.start:.0f} s, {len(rows)} timings, {len(run.errors)} errors",
        flush=True,
    )


if __name__ == "__main__":
    main()
