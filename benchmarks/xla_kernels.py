"""What a JAX call would cost on a GPU, read from XLA's optimised program on the CPU.

``jax.jit(f).lower(*args).compile().as_text()`` is the program XLA runs after
fusion. Each instruction of its entry computation that computes (a fusion,
or an operation left unfused) is one kernel; a ``conditional`` is one too,
and on a GPU XLA copies its predicate to the host to choose the branch: a
host sync per call when the predicate depends on the data. The CPU compiler
fuses differently from the GPU one (it fuses reductions into their consumers
only when its YNNPACK fusions take every operation involved), so these counts
are a proxy, to be checked on a GPU run.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

FREE = {"parameter", "constant", "tuple", "get-tuple-element", "bitcast"}
"""Entry-computation instructions that compute nothing."""


@dataclass
class Program:
    """The kernels and conditionals of one compiled call."""

    kernels: list[str]
    conditionals: int


def compiled(function: Callable[..., Any], *args: Any) -> Program:
    """The optimised program of ``jax.jit(function)(*args)``."""
    import jax

    text = jax.jit(function).lower(*args).compile().as_text()
    entry = text[text.index("ENTRY") :]
    entry = entry[: entry.index("\n}")]
    operations = re.findall(r"= [^ ]+ ([\w-]+)\(", entry)
    return Program(
        [op for op in operations if op not in FREE],
        len(re.findall(r"\bconditional\(", text)),
    )
