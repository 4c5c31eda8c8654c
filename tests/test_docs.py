"""The documentation: every public name typed, documented and in the API
reference; every code example on every page executed; the generated support
matrix current; and the site built with warnings as errors."""

from __future__ import annotations

import doctest
import importlib.util
import inspect
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import arraykit as ak

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = [*sorted(DOCS.glob("*.md")), ROOT / "README.md"]

MODULES: list[tuple[ModuleType, str]] = [
    (ak, "arraykit"),
    (ak.optim, "arraykit.optim"),
    (ak.regression, "arraykit.regression"),
]
PUBLIC = [
    (f"{prefix}.{name}", getattr(module, name))
    for module, prefix in MODULES
    for name in module.__all__
    if not inspect.ismodule(getattr(module, name))
]


@pytest.mark.parametrize(("name", "obj"), PUBLIC, ids=[n for n, _ in PUBLIC])
def test_documented_typed_and_in_the_reference(name: str, obj: object) -> None:
    doc = inspect.getdoc(obj) or ""
    assert doc, f"{name} has no docstring"
    assert re.search(rf"^\s*{re.escape(name)}$", (DOCS / "api.md").read_text(), re.M), (
        f"{name} is missing from docs/api.md"
    )
    if inspect.isfunction(obj):
        assert "Examples\n--------\n>>>" in doc, f"{name} has no example"
        signature = inspect.signature(obj)
        missing = [
            p for p in signature.parameters.values() if p.annotation is inspect.Parameter.empty
        ]
        assert not missing, f"{name}: no type hint for {[p.name for p in missing]}"
        assert signature.return_annotation is not inspect.Signature.empty, f"{name}: no return type"


# --- code examples ------------------------------------------------------------

FENCE = re.compile(r"^```(?P<info>[^\n`]*)\n(?P<body>.*?)^```[ \t]*$", re.M | re.S)
NOT_RUN = re.compile(r"<!--\s*not run:\s*(?P<why>.*?)\s*-->\s*$")


def examples(page: Path) -> list[tuple[str, str, int, str | None]]:
    """``(language, code, line, why not run)`` for each fenced block of ``page``."""
    text = page.read_text()
    found = []
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        skip = NOT_RUN.search(before)
        language = match.group("info").strip().split(" ")[0]
        found.append((language, match.group("body"), line, skip.group("why") if skip else None))
    return found


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_page_examples_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every ``python`` block runs and every ``pycon`` block prints what the page
    says, in page order, sharing one namespace; only blocks marked
    ``<!-- not run: why -->`` (needing a GPU) are left out."""
    monkeypatch.chdir(tmp_path)  # figures drawn by the examples land here
    namespace: dict[str, Any] = {"__name__": f"docs.{page.stem}"}
    parser = doctest.DocTestParser()
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    ran = 0
    for language, code, line, why in examples(page):
        if language not in ("python", "pycon") or why is not None:
            continue
        where = f"{page.relative_to(ROOT)}:{line}"
        if language == "python":
            exec(compile(code, where, "exec"), namespace)
        else:
            test = parser.get_doctest(code, namespace, where, str(page), line)
            report: list[str] = []
            runner = doctest.DocTestRunner(optionflags=flags)
            result = runner.run(test, out=report.append, clear_globs=False)
            assert result.failed == 0, "".join(report)
            namespace.update(test.globs)
        ran += 1
    if page.name in ("tutorial.md", "getting-started.md", "index.md", "dask.md"):
        assert ran, f"{page.name} has no executed example"


def test_skipped_examples_say_why() -> None:
    for page in PAGES:
        for _, _, line, why in examples(page):
            if why is not None:
                assert "GPU" in why, f"{page.name}:{line} is not run for a reason other than a GPU"


# --- generated pages and the site --------------------------------------------


def _support() -> Any:
    spec = importlib.util.spec_from_file_location("support", DOCS / "support.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_support_matrix_is_current() -> None:
    assert (DOCS / "support.md").read_text() == _support().render(), (
        "docs/support.md is stale: run python docs/support.py"
    )


def test_every_fast_path_says_what_it_pays_for() -> None:
    """docs/benchmarks.md has a row, per backend, naming each fast path its module
    defines (and no row for one that is gone): a copy of a formula stays only with the
    measurement of what it wins."""
    import re

    page = (DOCS / "benchmarks.md").read_text()
    table = page.split("## What each copy pays for", 1)[1].split("\n## ", 1)[0]
    listed: dict[str, set[str]] = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 3 and cells[0] not in ("backend", "---"):
            listed.setdefault(cells[0], set()).update(re.findall(r"`(\w+)`", cells[1]))
    support = _support()
    for library in ("numpy", "torch", "jax", "dask", "cupy"):
        defined = support.fast_paths(library)
        assert listed.get(library, set()) == defined, (library, sorted(defined))


def test_support_matrix_lists_every_backend_and_primitive() -> None:
    import backends

    page = (DOCS / "support.md").read_text()
    for backend_id in backends.BACKENDS:
        assert f"`{backend_id}`" in page
    for name in _support().PRIMITIVES:
        assert f"`{name}`" in page


@pytest.mark.slow  # a minute: .ci/run builds the site, and runs the slow tests
def test_site_builds_without_warnings(tmp_path: Path) -> None:
    for module in ("sphinx", "myst_parser", "numpydoc", "pydata_sphinx_theme"):
        pytest.importorskip(module)
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html"]
    command += ["-d", str(tmp_path / "doctrees"), str(DOCS), str(tmp_path / "html")]
    built = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False)
    assert built.returncode == 0, built.stdout + built.stderr
    assert (tmp_path / "html" / "generated" / "arraykit.softmax.html").exists()
    assert (tmp_path / "html" / "tutorial.html").exists()
    html = tmp_path / "html"
    pages = {p.relative_to(html).as_posix(): p.read_text() for p in html.rglob("*.html")}
    for name, text in pages.items():
        assert "Section Navigation" not in text, name  # no empty sidebars
    for name in (
        "generated/arraykit.optim.Optimizer.html",
        "generated/arraykit.optim.AdagradState.html",
    ):
        # A NamedTuple's page: its fields, not tuple's methods or a bare __init__.
        assert not re.search(r">(count|index|__init__)<", pages[name]), name
    assert "See also" in pages["generated/arraykit.softmax.html"]
    # Mathematics goes to MathJax, never shown as a raw caret; MathJax comes
    # with the site, so that pages read the same offline.
    assert 'class="math' in pages["guide.html"]
    for name, text in pages.items():
        scripts = re.findall(r'<script[^>]*src="([^"]*mathjax[^"]*)"', text, flags=re.IGNORECASE)
        for source in scripts:
            assert "://" not in source, (name, source)
            assert (html / Path(name).parent / source.split("?")[0]).resolve().exists(), source
    assert "e^−x" not in pages["guide.html"] + pages["tutorial.html"]
    assert "(test-only)" in pages["support.html"]


def test_the_gpu_cost_tables_are_current() -> None:
    """docs/benchmark-records.md shows what ``python -m benchmarks.gpu_costs`` prints now."""
    pytest.importorskip("triton")
    pytest.importorskip("jax")
    from benchmarks import gpu_costs

    tables = gpu_costs.markdown(
        gpu_costs.torch_rows(),
        gpu_costs.optimizer_rows(),
        gpu_costs.cupy_rows(),
        gpu_costs.jax_rows(),
    )
    assert tables.strip() in (DOCS / "benchmark-records.md").read_text(), (
        "regenerate: python -m benchmarks.gpu_costs --json docs/gpu-costs.json"
    )
