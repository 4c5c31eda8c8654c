"""Markdown tables from ``python -m benchmarks --json FILE``.

``python -m benchmarks.report FILE [--sizes 10 10000000]``: for each backend
and dtype, arraykit's median time per call, the best peer's (and which it
is), their ratio, and the fraction of a copy's bandwidth arraykit reaches.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("file")
    parser.add_argument("--sizes", nargs="*", type=int)
    args = parser.parse_args()
    data = json.loads(Path(args.file).read_text())
    print(tables(data, set(args.sizes) if args.sizes else None))


if __name__ == "__main__":
    main()
