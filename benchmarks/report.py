"""Markdown tables from ``python -m benchmarks --json FILE``.

``python -m benchmarks.report FILE [--sizes 10 10000000]``: for each backend
and dtype, arraykit's median time per call, the best peer's (and which it
is), their ratio, and the fraction of a copy's bandwidth arraykit reaches.
``--summary``: one table of those ratios, a row per function and a column
per backend, dtype and size (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from .primitives import FUNCTIONS, _fmt


def tables(data: dict[str, Any], sizes: set[int] | None) -> str:
    cases: dict[tuple[str, str], dict[tuple[str, int], dict[str, Any]]] = defaultdict(dict)
    for row in data["rows"]:
        if sizes and row["size"] not in sizes:
            continue
        cases[(row["backend"], row["dtype"])].setdefault((row["function"], row["size"]), {})[
            row["implementation"]
        ] = row
    out = []
    for (backend, dtype), by_case in cases.items():
        out += [
            f"**{backend}, {dtype}**",
            "",
            "| function | elements | arraykit | best peer | ratio | of copy bandwidth |",
            "| --- | ---: | ---: | --- | ---: | ---: |",
        ]
        ordered = sorted(by_case, key=lambda k: (FUNCTIONS.index(k[0]), k[1]))
        for function, size in ordered:
            impls = by_case[(function, size)]
            ours = impls["arraykit"]
            peers = {k: v for k, v in impls.items() if k not in ("arraykit", "copy")}
            if peers:
                name, best = min(peers.items(), key=lambda kv: kv[1]["median"])
                peer = f"{_fmt(best['median']).strip()} ({name})"
                ratio = f"{ours['median'] / best['median']:.2f}"
            else:
                peer, ratio = "–", "–"
            out.append(
                f"| {function} | {size:,} | {_fmt(ours['median']).strip()} | {peer} | {ratio} "
                f"| {ours['copy_fraction']:.0%} |"
            )
        out.append("")
    return "\n".join(out)


def ratios(data: dict[str, Any]) -> dict[tuple[str, str, str, int], float]:
    """arraykit's median over the best peer's, per (backend, dtype, function, size)."""
    times: dict[tuple[str, str, str, int], dict[str, float]] = defaultdict(dict)
    for row in data["rows"]:
        key = (row["backend"], row["dtype"], row["function"], row["size"])
        times[key][row["implementation"]] = row["median"]
    out = {}
    for key, impls in times.items():
        peers = [v for k, v in impls.items() if k not in ("arraykit", "copy")]
        if peers and "arraykit" in impls:
            out[key] = impls["arraykit"] / min(peers)
    return out


def summary(data: dict[str, Any], backends: list[str], sizes: list[int]) -> str:
    """The ratios as one table: rows are functions, columns backend · dtype · size."""
    found = ratios(data)
    columns = [
        (backend, dtype, size)
        for backend in backends
        for dtype in ("float32", "float64")
        for size in sizes
    ]

    def size(n: int) -> str:
        return f"{n:,}" if n < 10_000 else f"{n:.0e}".replace("e+0", "e")

    prefix = (lambda b: "") if len(backends) == 1 else (lambda b: f"{b} ")
    head = " | ".join(f"{prefix(b)}{d}, {size(s)}" for b, d, s in columns)
    out = [f"| function | {head} |", "| --- |" + " ---: |" * len(columns)]
    for function in FUNCTIONS:
        cells = [found.get((b, d, function, s)) for b, d, s in columns]
        if all(c is None for c in cells):
            continue
        text = " | ".join("–" if c is None else f"{c:.2f}" for c in cells)
        out.append(f"| {function} | {text} |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("file")
    parser.add_argument("--sizes", nargs="*", type=int)
    parser.add_argument("--summary", nargs="*", metavar="BACKEND")
    args = parser.parse_args()
    data = json.loads(Path(args.file).read_text())
    if args.summary is not None:
        print(summary(data, args.summary or ["numpy", "torch:cpu"], args.sizes or [10, 10**7]))
        return
    print(tables(data, set(args.sizes) if args.sizes else None))


if __name__ == "__main__":
    main()
