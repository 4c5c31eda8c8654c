"""Every public function is typed, documented with an example, and in the docs."""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("make_api", ROOT / "docs" / "make_api.py")
assert spec is not None
assert spec.loader is not None
make_api = importlib.util.module_from_spec(spec)
spec.loader.exec_module(make_api)

PUBLIC = [
    (prefix, name, getattr(module, name))
    for _, module, prefix in make_api.SECTIONS
    for name in make_api.public_names(module)
]


@pytest.mark.parametrize(("prefix", "name", "obj"), PUBLIC, ids=[f"{p}.{n}" for p, n, _ in PUBLIC])
def test_documented_and_typed(prefix: str, name: str, obj: object) -> None:
    doc = inspect.getdoc(obj) or ""
    assert doc, f"{prefix}.{name} has no docstring"
    if inspect.isfunction(obj):
        assert "Examples\n--------\n>>>" in doc, f"{prefix}.{name} has no example"
        signature = inspect.signature(obj)
        missing = [
            p for p in signature.parameters.values() if p.annotation is inspect.Parameter.empty
        ]
        assert not missing, f"{prefix}.{name}: no type hint for {[p.name for p in missing]}"
        assert signature.return_annotation is not inspect.Signature.empty, (
            f"{prefix}.{name}: no return type"
        )


def test_api_reference_is_current() -> None:
    written = (ROOT / "docs" / "api.md").read_text()
    assert written == make_api.render(), "docs/api.md is stale: run python docs/make_api.py"
