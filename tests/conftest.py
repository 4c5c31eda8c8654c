"""The test matrix: backends from the registry, crossed with their dtypes.

A test asking for ``xb`` runs once per backend; one asking for ``xb`` and
``dtype`` runs once per backend and floating dtype that backend has. A
backend missing here is skipped with its probe's reason, so the GPU columns
always show up in the report. ``-m gpu`` selects just the GPU columns.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import hypothesis
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _interpret_triton_without_a_gpu() -> None:
    """Without a CUDA GPU, Triton kernels run on CPU tensors under Triton's interpreter.

    It must be on before a kernel is compiled, that is before
    ``arraykit._native._triton`` is first imported (``tests/test_triton.py``).
    """
    try:
        import torch
    except ImportError:
        return
    if not torch.cuda.is_available():
        os.environ.setdefault("TRITON_INTERPRET", "1")


_interpret_triton_without_a_gpu()

import backends  # noqa: E402

hypothesis.settings.register_profile("ci", max_examples=60, deadline=None, derandomize=True)
hypothesis.settings.register_profile("dev", max_examples=30, deadline=None)
hypothesis.settings.load_profile("ci" if os.environ.get("CI") else "dev")


def _param(backend: backends.Backend, *values: object) -> object:
    ident = "-".join([backend.id, *map(str, values[1:])])
    marks = [pytest.mark.gpu] if backend.gpu else []
    if backend.remote:  # every compute ships a graph to worker processes
        marks.append(pytest.mark.slow)
    return pytest.param(*values, id=ident, marks=marks)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    names = metafunc.fixturenames
    chosen = any(
        m.args and "xb" in m.args[0] for m in metafunc.definition.iter_markers("parametrize")
    )
    if "xb" not in names or chosen:  # a test may pick its own columns
        return
    registry = backends.BACKENDS.values()
    if "dtype" in names:
        metafunc.parametrize(
            ("xb", "dtype"),
            [_param(b, b.id, d) for b in registry for d in b.dtypes],
            indirect=["xb"],
        )
    else:
        metafunc.parametrize("xb", [_param(b, b.id) for b in registry], indirect=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``slow`` the lazy columns of the tests a module lists in ``SLOW_ON_LAZY``."""
    for item in items:
        slow_on_lazy = getattr(getattr(item, "module", None), "SLOW_ON_LAZY", ())
        callspec = getattr(item, "callspec", None)
        if getattr(item, "originalname", None) in slow_on_lazy and callspec is not None:
            backend_id = callspec.params.get("xb")
            if backend_id is not None and backends.get(backend_id).lazy:
                item.add_marker(pytest.mark.slow)


@pytest.fixture
def xb(request: pytest.FixtureRequest) -> Iterator[backends.Backend]:
    """The backend under test, inside its scope; skipped, with the reason, where unavailable."""
    backend = backends.get(request.param)
    if not backend.available:
        pytest.skip(backend.unavailable)
    with backend.scope():
        yield backend
