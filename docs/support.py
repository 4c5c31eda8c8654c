"""The backend support matrix, generated from backends/ and recorded test runs.

Two steps:

``python docs/support.py record report.xml --run cpu``
    Summarise a ``python -m pytest --junitxml=report.xml`` run into
    ``docs/verified/cpu.json``: per backend and public function, the tests
    that passed, failed and were skipped (with why), and the machine.
    A GPU run is recorded the same way, as ``--run gpu``.

``python docs/support.py``
    Write ``docs/support.md`` from the registry (every backend and device),
    the fast path each function takes there (read from ``arraykit/_native``
    without importing any backend), and the recorded runs.
    ``tests/test_docs.py`` fails when the page is out of date.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import arraykit as ak  # noqa: E402
import backends  # noqa: E402
from arraykit._operations import OPERATIONS  # noqa: E402

VERIFIED = ROOT / "docs" / "verified"
PAGE = ROOT / "docs" / "support.md"

PRIMITIVES = [op.name for op in OPERATIONS]  # the registry's operations
OPTIMIZERS = [
    "optim.gradient_descent",
    "optim.adagrad",
    "optim.step_in_place",
    "optimize",
    "run_gradient_descent",
    "run_adagrad",
]
REGRESSION = [f"regression.{name}" for name in ak.regression.__all__]
FUNCTIONS = PRIMITIVES + OPTIMIZERS + REGRESSION

# Which tests exercise which function, beyond those that name it: by test file.
FILE_FUNCTIONS = {
    "test_optim": ["optim.gradient_descent", "optim.adagrad", "optim.step_in_place"],
    "test_drivers": ["optimize", "run_gradient_descent", "run_adagrad"],
    "test_regression": REGRESSION,
}

_NATIVE_NOTES = {
    ("numpy", False): (
        "compiled, vectorised kernels at every size (where built; NumPy's cache-blocked "
        "kernels otherwise)"
    ),
    ("torch", False): (
        "torch.library operators: torch.sigmoid, the compiled kernels on the tensor's "
        "memory (torch's thread count; eager calls on plain tensors straight to them); "
        "a registered backward; the formulas for forward mode and torch.func"
    ),
    ("torch", True): (
        "torch.library operators: one Triton kernel each, forward and backward (the "
        "formulas without Triton); torch.sigmoid"
    ),
    ("cupy", True): "the formulas, clipped by minimum/maximum: no host sync",
    ("jax", False): "the formulas under jax.jit, in shapes XLA fuses; no data-dependent branch",
    ("jax", True): "the formulas under jax.jit, in shapes XLA fuses; no data-dependent branch",
    ("dask", False): "each block through its backend's kernels; losses in one pass",
}


def fast_paths(library: str) -> set[str]:
    """Names defined by ``arraykit/_native/<library>.py``, read without importing it."""
    path = Path(ak.__file__).resolve().parent / "_native" / f"{library}.py"  # as installed
    if not path.exists():
        return set()
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef) and node.name == "FastPaths":  # bound to a namespace
            for item in node.body:
                if isinstance(item, ast.FunctionDef):
                    names.add(item.name)
                elif isinstance(item, ast.Assign):
                    names.update(t.id for t in item.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names & set(PRIMITIVES)


# --- recording a run ----------------------------------------------------------


def _backend_of(params: str) -> str | None:
    for backend_id in sorted(backends.BACKENDS, key=len, reverse=True):
        if params == backend_id or params.startswith(backend_id + "-"):
            return backend_id
    return None


def _functions_of(module: str, test: str) -> list[str]:
    """The public functions a test exercises: those it names, longest first."""
    found, rest = [], test
    for name in sorted(PRIMITIVES, key=len, reverse=True):
        pattern = rf"(?<![a-z]){re.escape(name)}(?![a-z])"
        if re.search(pattern, rest):
            found.append(name)
            rest = re.sub(pattern, "", rest)
    return found or FILE_FUNCTIONS.get(module.rsplit(".", 1)[-1], [])


def record(report: Path, run: str, directory: Path = VERIFIED) -> Path:
    """Summarise a JUnit report into ``<directory>/<run>.json`` (``docs/verified/``)."""
    root = ET.parse(report).getroot()
    cells: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    totals = {"passed": 0, "failed": 0, "skipped": 0}
    for case in root.iter("testcase"):
        name, module = case.get("name", ""), case.get("classname", "")
        skipped = case.find("skipped")
        failed = case.find("failure") is not None or case.find("error") is not None
        outcome = "skipped" if skipped is not None else "failed" if failed else "passed"
        totals[outcome] += 1
        match = re.search(r"\[(.*)\]$", name)
        backend_id = _backend_of(match.group(1)) if match else None
        if backend_id is None:
            continue
        for function in _functions_of(module, name):
            cell = cells[backend_id].setdefault(
                function, {"passed": 0, "failed": 0, "skipped": 0, "why": []}
            )
            cell[outcome] += 1
            if skipped is not None:
                why = (skipped.get("message") or "").split("\n")[0][:120]
                if why and why not in cell["why"]:
                    cell["why"].append(why)
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    from benchmarks.timing import machine

    summary = {
        "run": run,
        "device": _gpu_name() if run == "gpu" else None,
        "machine": machine(),
        "seconds": float(suite.get("time", "nan")) if suite is not None else None,
        "totals": totals,
        "cells": cells,
    }
    directory.mkdir(exist_ok=True)
    target = directory / f"{run}.json"
    target.write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")
    return target


def _gpu_name() -> str | None:
    try:
        import torch

        return str(torch.cuda.get_device_name(0))
    except Exception:  # no torch, or no CUDA: the run says what it had
        return None


# --- the page -----------------------------------------------------------------


def _cell(run: dict[str, Any] | None, backend_id: str, function: str) -> str:
    if run is None:
        return "not run"
    cell = run["cells"].get(backend_id, {}).get(function)
    if cell is None:
        return "—"
    if cell["failed"]:
        return f"✗ {cell['failed']} failed"
    if cell["passed"]:
        return f"✓ {cell['passed']}"
    return "skipped"


def render() -> str:
    runs = {p.stem: json.loads(p.read_text()) for p in sorted(VERIFIED.glob("*.json"))}
    cpu, gpu = runs.get("cpu"), runs.get("gpu")
    lines = [
        "# Backend support matrix",
        "",
        "Generated by `python docs/support.py` from the registry in `backends/` and the",
        "recorded test runs in `docs/verified/`; a test fails when this page is stale.",
        "",
        "## Backends and devices",
        "",
        "| backend | library | device | dtypes | how arraykit runs there |",
        "| --- | --- | --- | --- | --- |",
    ]
    for b in backends.BACKENDS.values():
        how = _NATIVE_NOTES.get((b.library, b.gpu), "the generic array-API code")
        if b.remote:
            how += "; a LocalCluster of two worker processes"
        if b.test_only:
            how = f"*a variant the tests add*: {b.test_only}; otherwise as `{b.library}`"
        lines.append(
            f"| `{b.id}` | {b.library} | {'GPU' if b.gpu else 'CPU'} | "
            f"{', '.join(b.dtypes)} | {how} |"
        )
    lines += [
        "",
        "Every function runs on every backend: the generic code uses only the array",
        "API standard. Where a backend has a faster native path it is used, and the",
        "test matrix holds it to the same accuracy as the generic code.",
        "",
        "## Fast paths",
        "",
        "| function | " + " | ".join(_libraries()) + " |",
        "| --- | " + " | ".join("---" for _ in _libraries()) + " |",
    ]
    native = {library: fast_paths(library) for library in _libraries()}
    for function in PRIMITIVES:
        marks = ["native" if function in native[lib] else "generic" for lib in _libraries()]
        lines.append(f"| `{function}` | " + " | ".join(marks) + " |")
    lines += ["", "## What was verified where", ""]
    lines += _run_header("CPU", cpu)
    lines += _run_header("GPU", gpu)
    shown = [b.id for b in backends.BACKENDS.values()]
    lines += [
        "Tests passed (✓ n), failed, or skipped, per function and backend, in the",
        "recorded runs (GPU columns from the GPU run when there is one). A test counts",
        "for each primitive it names; the optimizer, driver and regression tests count",
        "for every function of their module.",
        "",
        "| function | "
        + " | ".join(
            f"`{i}` (test-only)" if backends.BACKENDS[i].test_only else f"`{i}`" for i in shown
        )
        + " |",
        "| --- | " + " | ".join("---" for _ in shown) + " |",
    ]
    for function in FUNCTIONS:
        cells = [
            _cell(gpu if backends.BACKENDS[i].gpu and gpu else cpu, i, function) for i in shown
        ]
        lines.append(f"| `{function}` | " + " | ".join(cells) + " |")
    reasons = sorted(
        {
            why
            for run in (cpu, gpu)
            if run
            for backend_cells in run["cells"].values()
            for cell in backend_cells.values()
            if not cell["passed"]
            for why in cell["why"]
        }
    )
    if reasons:
        lines += ["", "Why the cells that only skipped did:", ""]
        lines += [f"- {why}" for why in reasons]
    return "\n".join(lines) + "\n"


def _libraries() -> list[str]:
    return list(dict.fromkeys(b.library for b in backends.BACKENDS.values()))


def _run_header(kind: str, run: dict[str, Any] | None) -> list[str]:
    if run is None and kind == "GPU":
        return [
            "- **GPU**: no run recorded: no GPU was available where this page was last",
            "  generated. The GPU columns exist in the matrix and skip with their probe's",
            "  reason where there is no device; `python -m pytest -m gpu --junitxml=gpu.xml`",
            "  runs them on a machine that has one, and `python docs/support.py record",
            "  gpu.xml --run gpu` records the run here.",
            "",
        ]
    if run is None:
        return [f"- **{kind}**: no run recorded: `python docs/support.py record report.xml`.", ""]
    m, t = run["machine"], run["totals"]
    versions = ", ".join(f"{k} {m[k]}" for k in ("numpy", "torch", "jax", "dask", "cupy") if k in m)
    device = f"{run['device']}, " if run.get("device") else ""
    return [
        f"- **{kind}**: {m['date']}, {device}{m['processor']} ({m['machine']}), Python "
        f"{m['python']}; {versions}. {t['passed']} passed, {t['failed']} failed, "
        f"{t['skipped']} skipped in {run['seconds']:.0f} s.",
        "",
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    rec = sub.add_parser("record", help="summarise a JUnit report into docs/verified/")
    rec.add_argument("report", type=Path)
    rec.add_argument("--run", choices=("cpu", "gpu"), default="cpu")
    args = parser.parse_args(argv)
    if args.command == "record":
        print(f"wrote {record(args.report, args.run)}", file=sys.stderr)
    PAGE.write_text(render())
    print(f"wrote {PAGE}", file=sys.stderr)


if __name__ == "__main__":
    main()
