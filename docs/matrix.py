"""Summarise a pytest JUnit XML report as the backend support matrix.

``python -m pytest --junitxml=report.xml`` then ``python docs/matrix.py
report.xml``: one row per backend of the registry in backends/, with the
tests that passed, failed and were skipped there (and why they were skipped).
"""

from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import backends


def backend_of(test_name: str) -> str | None:
    match = re.search(r"\[(.*)\]$", test_name)
    if not match:
        return None
    ident = match.group(1)
    for backend_id in sorted(backends.BACKENDS, key=len, reverse=True):
        if ident == backend_id or ident.startswith(backend_id + "-"):
            return backend_id
    return None


def summarise(report: Path) -> str:
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    reasons: dict[str, set[str]] = defaultdict(set)
    for case in ET.parse(report).getroot().iter("testcase"):
        backend_id = backend_of(case.get("name", "")) or "(backend-independent)"
        skipped = case.find("skipped")
        if skipped is not None:
            counts[backend_id]["skipped"] += 1
            reasons[backend_id].add((skipped.get("message") or "").split("\n")[0][:110])
        elif case.find("failure") is not None or case.find("error") is not None:
            counts[backend_id]["failed"] += 1
        else:
            counts[backend_id]["passed"] += 1
    rows = [
        "| backend | device | passed | failed | skipped | why skipped |",
        "| --- | --- | ---: | ---: | ---: | --- |",
    ]
    for backend_id in [*backends.BACKENDS, "(backend-independent)"]:
        c = counts.get(backend_id, Counter())
        device = (
            "GPU"
            if backend_id in backends.BACKENDS and backends.BACKENDS[backend_id].gpu
            else "CPU"
        )
        why = "; ".join(sorted(r for r in reasons.get(backend_id, set()) if r)) or ""
        if len(why) > 160:
            why = why[:157] + "..."
        rows.append(
            f"| {backend_id} | {device} | {c['passed']} | {c['failed']} | {c['skipped']} | {why} |"
        )
    return "\n".join(rows)


if __name__ == "__main__":
    print(summarise(Path(sys.argv[1] if len(sys.argv) > 1 else "report.xml")))
