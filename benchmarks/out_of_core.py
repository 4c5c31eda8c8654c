"""Out of core on a Dask cluster: a float32 matrix larger than this machine's memory.

``python -m benchmarks.out_of_core`` builds a ``rows × columns`` float32 matrix
and a target of the same shape, chunk by chunk, with Dask's random module
(never materialised: each block is generated where and when it is needed),
then computes, with arraykit's ordinary functions::

    p = softmax(sqrt(columns) * normalize_rows(x))   # unit-variance logits
    l1_loss(p, target, "mean"), l2_loss(p, target, "mean")

in one ``dask.compute`` on a ``dask.distributed`` LocalCluster (or on a real
cluster, with ``--scheduler tcp://host:8786``). It reports the throughput, the
peak resident memory of each worker process, and the same pipeline on NumPy
in memory, on a size that fits, for the throughput per core.

Workers run with spilling to disk turned off and the nanny's limit on: had a
worker needed more than ``--memory-limit``, it would have been restarted and
the run would have failed, so a finished run shows the bound held.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

import arraykit as ak

from .timing import machine

GB = 1e9


def pipeline(x: Any, target: Any) -> tuple[Any, Any]:
    """The work: row-normalise, softmax, and the two losses against ``target``."""
    logits = ak.normalize_rows(x) * math.sqrt(x.shape[1])
    p = ak.softmax(logits)
    return ak.l1_loss(p, target, "mean"), ak.l2_loss(p, target, "mean")


def _peak_rss_bytes() -> int:
    """This process's peak resident memory (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _warm_worker() -> int:
    import arraykit  # noqa: F401  (imports done before the peak is read)

    return _peak_rss_bytes()


@contextmanager
def _client(args: argparse.Namespace) -> Iterator[Any]:
    import dask
    from dask.distributed import Client, LocalCluster

    if args.scheduler:
        with Client(args.scheduler) as client:
            yield client
        return
    # No spilling: a worker over its limit is restarted, which fails the run.
    settings = {
        "distributed.worker.memory.target": False,
        "distributed.worker.memory.spill": False,
        "distributed.worker.memory.pause": 0.85,
        "distributed.worker.memory.terminate": 0.95,
    }
    with (
        dask.config.set(settings),
        LocalCluster(
            n_workers=args.workers,
            threads_per_worker=1,
            processes=True,
            memory_limit=args.memory_limit,
            dashboard_address=":0",  # any free port: never clash with another cluster
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def run_dask(args: argparse.Namespace) -> dict[str, Any]:
    import dask
    import dask.array as da

    columns = args.columns
    rows_per_chunk = max(1, int(args.chunk_mb * 1e6 / (4 * columns)))
    rows = max(rows_per_chunk, int(args.gigabytes * GB / (4 * columns)))
    shape, chunks = (rows, columns), (rows_per_chunk, columns)
    x = da.random.default_rng(1).standard_normal(shape, chunks=chunks, dtype=np.float32)
    target = da.random.default_rng(2).random(shape, chunks=chunks, dtype=np.float32)
    target = target * np.float32(2 / columns)  # mean 1/columns, like a softmax row
    l1, l2 = pipeline(x, target)
    with _client(args) as client:
        cores = sum(client.nthreads().values())
        before = client.run(_warm_worker)
        start = time.perf_counter()
        l1_value, l2_value = dask.compute(l1, l2)
        seconds = time.perf_counter() - start
        peaks = client.run(_peak_rss_bytes)
    return {
        "shape": list(shape),
        "chunks": list(chunks),
        "blocks": len(x.chunks[0]),
        "gigabytes": x.nbytes / GB,
        "workers": len(peaks),
        "cores": cores,
        "memory_limit": args.memory_limit,
        "seconds": seconds,
        "gb_per_s": x.nbytes / GB / seconds,
        "gb_per_s_per_core": x.nbytes / GB / seconds / cores,
        "peak_rss_gb": sorted(p / GB for p in peaks.values()),
        "rss_after_startup_gb": sorted(p / GB for p in before.values()),
        "l1_mean": float(l1_value),
        "l2_mean": float(l2_value),
    }


def run_numpy(gigabytes: float, columns: int, repeats: int = 3) -> dict[str, Any]:
    """The same work on one NumPy array in memory, on one core: the median run."""
    runs = sorted(
        (_numpy_once(gigabytes, columns) for _ in range(repeats)),
        key=lambda run: run["gb_per_s_per_core"],
    )
    return {**runs[len(runs) // 2], "repeats": repeats}


def _numpy_once(gigabytes: float, columns: int) -> dict[str, Any]:
    rows = max(1, int(gigabytes * GB / (4 * columns)))
    start = time.perf_counter()
    x = np.random.default_rng(1).standard_normal((rows, columns), dtype=np.float32)
    target = np.random.default_rng(2).random((rows, columns), dtype=np.float32)
    target *= np.float32(2 / columns)
    generated = time.perf_counter()
    l1, l2 = pipeline(x, target)
    done = time.perf_counter()
    return {
        "shape": [rows, columns],
        "gigabytes": x.nbytes / GB,
        "generate_seconds": generated - start,
        "pipeline_seconds": done - generated,
        # Per core, generation included, as in the Dask run.
        "gb_per_s_per_core": x.nbytes / GB / (done - start),
        "pipeline_gb_per_s": x.nbytes / GB / (done - generated),
        "l1_mean": float(l1),
        "l2_mean": float(l2),
    }


def report(result: dict[str, Any]) -> str:
    d, n = result["dask"], result["numpy"]
    ratio = d["gb_per_s_per_core"] / n["gb_per_s_per_core"]
    peaks = ", ".join(f"{p:.2f}" for p in d["peak_rss_gb"])
    return "\n".join(
        [
            f"Dask: {d['gigabytes']:.1f} GB float32 matrix {tuple(d['shape'])} in "
            f"{d['blocks']} blocks of {tuple(d['chunks'])}, {d['workers']} workers × 1 thread",
            f"  {d['seconds']:.1f} s, {d['gb_per_s']:.3f} GB/s "
            f"({d['gb_per_s_per_core']:.3f} GB/s per core)",
            f"  peak resident memory per worker: {peaks} GB (limit {d['memory_limit']}; "
            f"{', '.join(f'{p:.2f}' for p in d['rss_after_startup_gb'])} GB after start-up)",
            f"  l1 mean {d['l1_mean']:.6g}, l2 mean {d['l2_mean']:.6g}",
            f"NumPy in memory: {n['gigabytes']:.2f} GB, generate {n['generate_seconds']:.2f} s "
            f"+ pipeline {n['pipeline_seconds']:.2f} s on one core: "
            f"{n['gb_per_s_per_core']:.3f} GB/s per core "
            f"(pipeline alone {n['pipeline_gb_per_s']:.3f} GB/s; median of {n['repeats']})",
            f"  l1 mean {n['l1_mean']:.6g}, l2 mean {n['l2_mean']:.6g}",
            f"Dask per core / NumPy per core: {ratio:.2f}",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.out_of_core", description=__doc__)
    parser.add_argument("--gigabytes", type=float, default=40.0, help="size of the matrix")
    parser.add_argument("--columns", type=int, default=4096, help="row length")
    parser.add_argument("--chunk-mb", type=float, default=64.0, help="block size, in MB")
    parser.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes")
    parser.add_argument("--memory-limit", default="2GB", help="per LocalCluster worker")
    parser.add_argument("--scheduler", help="address of a running cluster, e.g. tcp://host:8786")
    parser.add_argument("--in-memory-gigabytes", type=float, default=1.0, help="the NumPy run")
    parser.add_argument("--json", type=Path, help="write the numbers here")
    args = parser.parse_args(argv)
    result = {
        "machine": machine(),
        "dask": run_dask(args),
        "numpy": run_numpy(args.in_memory_gigabytes, args.columns),
    }
    print(report(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
