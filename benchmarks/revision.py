"""This checkout against an earlier revision, interleaved in one process.

``python -m benchmarks.revision REV [--backends numpy torch:cpu]``: the
package at ``REV`` (``git archive``; its C kernels built in place) is
imported as ``arraykit_old`` beside this checkout's ``arraykit``, and each
primitive is timed on the same arrays, old and new calls alternating within
every repeat. A shared, noisy machine then slows both alike: runs hours apart
differed by 2-3x here, interleaved medians by a few percent.

Work split over threads is the exception: the two revisions' threads share
the cores in one process. Against a revision from before the torch kernels
ran in torch's own OpenMP threads, the old kernels' worker pool spins beside
the new ones' team (and torch's own), and torch rows from 1e5 elements say
more about that contention than about either; ``python -m benchmarks``
measures those, one revision at a time. NumPy arrays get one thread.
"""

from __future__ import annotations

import argparse
import importlib
import io
import statistics
import subprocess
import sys
import tarfile
import tempfile
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import backends
from arraykit._operations import OPERATIONS

ROOT = Path(__file__).resolve().parents[1]
NAMES = tuple(op.name for op in OPERATIONS if op.kind != "shape")
"""The registry's operations that compute (a reshape has nothing to compare)."""


def load_revision(rev: str, into: Path) -> Any:
    """The arraykit package of ``rev``, importable as ``arraykit_old`` (relative imports)."""
    archive = subprocess.run(
        ["git", "archive", rev, "arraykit"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    package = into / "arraykit_old"
    (into / "arraykit").rename(package)
    operators = package / "_native" / "torch.py"
    if operators.exists():
        # torch allows one definition of an operator namespace per process:
        # the old operators get a namespace of their own.
        text = operators.read_text()
        for old, new in (
            ('Library("arraykit"', 'Library("arraykit_old"'),
            ("torch.ops.arraykit", "torch.ops.arraykit_old"),
            ("arraykit::", "arraykit_old::"),
        ):
            text = text.replace(old, new)
        operators.write_text(text)
    source = package / "_native" / "_kernels.c"
    if source.exists():
        from setuptools import Distribution, Extension

        # A bare Distribution: no project configuration is read from the cwd.
        module = Extension("arraykit_old._native._kernels", [str(source)])
        build = Distribution({"ext_modules": [module]}).get_command_obj("build_ext")
        build.build_lib, build.build_temp = str(into), str(into / "build")  # type: ignore[attr-defined]
        build.ensure_finalized()
        build.run()
    sys.path.insert(0, str(into))
    return importlib.import_module("arraykit_old")


def _calls(ak: Any, name: str, x: Any, y: Any) -> Callable[[], Any]:
    function = getattr(ak, name)
    return (lambda: function(x, y)) if "loss" in name else (lambda: function(x))


def compare(old: Any, new: Any, backend_ids: list[str], sizes: list[int], repeats: int) -> None:
    rng = np.random.default_rng(0)
    print(f"{'backend':10} {'function':20} {'dtype':8} {'size':>10}  old      new      new/old")
    for backend in map(backends.get, backend_ids):
        if not backend.available:
            print(f"{backend.id}: skipped ({backend.unavailable})")
            continue
        for size in sizes:
            for dtype in ("float32", "float64"):
                shape = (max(size // 100, 1), min(size, 100))
                x = backend.asarray(rng.normal(size=shape), dtype)
                y = backend.asarray(rng.normal(size=shape), dtype)
                for name in NAMES:
                    pair = {tag: _calls(ak, name, x, y) for tag, ak in (("old", old), ("new", new))}
                    number = 2000 if size <= 1000 else max(1, 200_000 // size)
                    times: dict[str, list[float]] = {"old": [], "new": []}
                    for tag in pair:
                        backend.sync(pair[tag]())  # warm up, compile
                    for _ in range(repeats):
                        for tag, call in pair.items():
                            times[tag].append(timeit.timeit(call, number=number) / number)
                    t_old, t_new = (statistics.median(times[t]) for t in ("old", "new"))
                    print(
                        f"{backend.id:10} {name:20} {dtype:8} {size:>10,}  "
                        f"{t_old * 1e6:8.2f} {t_new * 1e6:8.2f}  {t_new / t_old:5.2f}"
                    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("revision", help="a git revision, e.g. HEAD~3 or a commit")
    parser.add_argument("--backends", nargs="*", default=["numpy", "torch:cpu"])
    parser.add_argument("--sizes", nargs="*", type=int, default=[10, 100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    import arraykit

    with tempfile.TemporaryDirectory() as tmp:
        old = load_revision(args.revision, Path(tmp))
        compare(old, arraykit, args.backends, args.sizes, args.repeats)


if __name__ == "__main__":
    main()
