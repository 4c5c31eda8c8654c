"""Write docs/api.md, the API reference, from the public names' docstrings.

Run ``python docs/make_api.py``; ``tests/test_docs.py`` fails when the file
is out of date, so the reference cannot drift from the code.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path
from types import ModuleType

import arraykit as ak

SECTIONS: list[tuple[str, ModuleType, str]] = [
    ("Primitives", ak, "arraykit"),
    ("Optimizers: `arraykit.optim`", ak.optim, "arraykit.optim"),
    ("The regression problem: `arraykit.regression`", ak.regression, "arraykit.regression"),
]
SKIP = {"optim", "regression", "tree_leaves", "tree_map"}


def public_names(module: ModuleType) -> list[str]:
    """The documented public callables of ``module``, in ``__all__`` order."""
    return [n for n in module.__all__ if n not in SKIP and callable(getattr(module, n))]


def render() -> str:
    lines = [
        "# API reference",
        "",
        "Generated from the docstrings by `python docs/make_api.py`; every example",
        "below runs as a doctest in CI. `import arraykit as ak`.",
        "",
    ]
    for title, module, prefix in SECTIONS:
        lines += [f"## {title}", ""]
        for name in public_names(module):
            obj = getattr(module, name)
            lines += [f"### `{prefix}.{name}{inspect.signature(obj)}`", ""]
            doc = inspect.cleandoc(obj.__doc__ or "")
            lines += ["```text", doc, "```", ""]
    return "\n".join(lines).rstrip() + "\n"


def main() -> None:
    target = Path(__file__).with_name("api.md")
    target.write_text(render())
    print(f"wrote {target}", file=sys.stderr)


if __name__ == "__main__":
    main()
