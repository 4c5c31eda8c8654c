"""Composition beyond the per-function matrix: the import graph, graph breaks,
compile counts, optimizers and drivers inside transformations, and inputs
that used to crash or be silently wrong."""

from __future__ import annotations

import ast
import contextlib
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import arraykit as ak
from arraykit._operations import CALLS

from . import reference

PACKAGE = Path(ak.__file__).parent


# --- the import graph -------------------------------------------------------


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """arraykit modules imported anywhere in ``path`` (function bodies too)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("arraykit")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            if not target.startswith("arraykit"):
                continue
            for alias in node.names:  # `from . import x` imports the module x
                candidate = f"{target}.{alias.name}"
                found.add(candidate if _exists(candidate) else target)
    return found - {"arraykit", name}  # the package itself: every module imports it


def _exists(module: str) -> bool:
    path = PACKAGE.parent.joinpath(*module.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def _graph() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p) for p in PACKAGE.rglob("*.py")}


def _private(module: str) -> bool:
    # _formulas, _native.torch ...: private; __main__ is the command's entry, public.
    return any(p.startswith("_") and not p.startswith("__") for p in module.split(".")[1:])


def test_no_import_circle() -> None:
    graph = _graph()
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycle = [*path[path.index(nxt) :], nxt]
                raise AssertionError(f"import circle: {' -> '.join(cycle)}")
            if nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


REGISTRY = "arraykit._operations"
"""The registry of operations sits above the public modules: it imports them, and only
tests and tools (never arraykit's own modules) import it."""


def test_private_modules_import_no_public_module() -> None:
    for module, imported in _graph().items():
        if _private(module) and module != REGISTRY:
            public = sorted(m for m in imported if not _private(m))
            assert not public, f"{module} imports public modules {public}"


def test_no_module_of_arraykit_imports_the_registry() -> None:
    graph = _graph()
    assert "arraykit.activations" in graph[REGISTRY]
    assert not [module for module, imported in graph.items() if REGISTRY in imported]


def test_the_graph_is_read() -> None:
    graph = _graph()
    assert "arraykit._formulas" in graph["arraykit.activations"]
    assert "arraykit._formulas" in graph["arraykit._native.numpy"]


# --- torch: graph breaks, gradcheck, devices ---------------------------------


def _on_3_by_4(op: Any, call: Any) -> Any:
    """The call on arrays of shape (3, 4): an image of (2, 3, 2) for image2vector."""
    if op.kind == "shape":
        return lambda x: call.public(x.reshape(2, 3, 2))
    return call.public


PRIMITIVES = {label: (_on_3_by_4(op, call), op) for label, (op, call) in CALLS.items()}
"""Every call of every operation in the registry, on arrays of shape (3, 4), and the
operation (its arity and the arguments it takes)."""


def _arguments(op: Any, torch: Any) -> list[Any]:
    """The operation's arguments of shape (3, 4) as float64 tensors (class indices as
    int64), from normal draws."""
    draws = [np.random.default_rng(3).normal(size=(3, 4)) for _ in range(op.arrays)]
    return [torch.from_numpy(np.ascontiguousarray(a)) for a in op.arguments(draws)]


@pytest.mark.slow
@pytest.mark.parametrize("name", PRIMITIVES)
def test_no_graph_breaks(name: str) -> None:
    pytest.importorskip("torch")
    import torch
    import torch._dynamo

    function, op = PRIMITIVES[name]
    args = _arguments(op, torch)
    for grad in (False, True):
        inputs = [a.clone().requires_grad_(grad and a.is_floating_point()) for a in args]
        torch._dynamo.reset()
        explained = torch._dynamo.explain(function)(*inputs)
        assert explained.graph_break_count == 0, explained.break_reasons
        assert explained.graph_count == 1


@pytest.mark.slow
def test_compile_after_another_namespace_was_seen() -> None:
    """The dispatch cache stays traceable whatever namespaces it holds: here one built
    for a test, cached before torch's (a lookup keyed by namespace objects failed so)."""
    pytest.importorskip("torch")
    import torch
    import torch._dynamo

    from arraykit._native import _eager
    from benchmarks import cupy_semantics

    xp = cupy_semantics.namespace()
    saved = dict(_eager.MODULES)
    _eager.MODULES.clear()
    try:
        ak.softmax(cupy_semantics.put(xp, np.ones((2, 3)), "float64"), xp=xp)
        ak.softmax(torch.randn(3, 4))  # torch's namespace cached after it, eagerly
        torch._dynamo.reset()
        x = torch.randn(3, 4)
        compiled = torch.compile(ak.softmax, fullgraph=True)(x)
        torch.testing.assert_close(compiled, ak.softmax(x))
    finally:
        _eager.MODULES.clear()
        _eager.MODULES.update(saved)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["softmax", "log_softmax", "logsumexp", "normalize_rows"])
def test_compiled_rows_over_every_axis_and_layout(name: str) -> None:
    """torch.compile of a row operation over every axis of C-ordered and transposed
    inputs gives the eager values, forward and backward. A CPU kernel that answered
    with its rows moved back as a view once broke the layout the operator's fake kernel
    promises (compile checks it), for axes long enough to take the rows' kernel."""
    torch = pytest.importorskip("torch")
    dynamo = pytest.importorskip("torch._dynamo")
    with _no_compile_caches():
        _compile_rows_everywhere(torch, dynamo, getattr(ak, name), name)


@contextlib.contextmanager
def _no_compile_caches() -> Iterator[None]:
    """torch.compile without its on-disk caches, whose keys do not cover an operator's
    fake kernel: a graph compiled against an older one would be taken for this one."""
    import torch._functorch.config as functorch_config
    import torch._inductor.config as inductor_config

    settings = [
        (config, name)
        for config, name in (
            (inductor_config, "fx_graph_cache"),
            (functorch_config, "enable_autograd_cache"),
        )
        if hasattr(config, name)
    ]
    saved = [getattr(config, name) for config, name in settings]
    try:
        for config, name in settings:
            setattr(config, name, False)
        yield
    finally:
        for (config, name), value in zip(settings, saved, strict=True):
            setattr(config, name, value)


def _compile_rows_everywhere(torch: Any, dynamo: Any, function: Any, name: str) -> None:
    cube = torch.from_numpy(np.random.default_rng(8).normal(size=(40, 3, 50)))
    for x in (cube, cube.transpose(0, 2), cube[:, 1]):
        axes: list[Any] = [None] if name == "normalize_rows" else list(range(x.ndim))
        for axis in axes:
            call = (lambda t: function(t)) if axis is None else (lambda t, a=axis: function(t, a))
            if name == "normalize_rows" and x.ndim != 2:
                continue
            dynamo.reset()
            compiled = torch.compile(call, fullgraph=True)
            eager_in, compiled_in = (x.clone().requires_grad_() for _ in range(2))
            expected, got = call(eager_in), compiled(compiled_in)
            torch.testing.assert_close(got, expected, rtol=1e-15, atol=0)
            weights = torch.ones_like(expected)
            (want,) = torch.autograd.grad(expected, eager_in, weights)
            (have,) = torch.autograd.grad(got, compiled_in, weights)
            torch.testing.assert_close(have, want, rtol=1e-13, atol=1e-15)


def _sigmoid_gradgrad_inputs(torch: Any) -> Any:
    values = [-700.0, -40.0, -30.0, -5.0, -1e-3, 0.5, 5.0, 30.0, 40.0, 700.0]
    return torch.tensor(values, dtype=torch.float64, requires_grad=True)


@pytest.mark.parametrize("name", PRIMITIVES)
def test_torch_gradcheck_and_gradgradcheck(name: str) -> None:
    torch = pytest.importorskip("torch")
    function, op = PRIMITIVES[name]
    arity = op.arrays
    if op.domain is not None:  # labels, class indices: the first argument is differentiated
        args = _arguments(op, torch)
        args[0].requires_grad_()
    elif name.startswith("sigmoid"):
        args = [_sigmoid_gradgrad_inputs(torch)]
    elif name == "image2vector":
        args = [torch.linspace(-3, 3, 12, dtype=torch.float64).reshape(3, 4).requires_grad_()]
    else:
        gen = torch.Generator().manual_seed(5)
        args = [
            (torch.rand(3, 4, generator=gen, dtype=torch.float64) * 8 - 4 + k).requires_grad_()
            for k in range(arity)
        ]
        if name == "softmax":
            args[0].data[1] += 1000.0  # large |x|: the shifted form must hold
    assert torch.autograd.gradcheck(function, args)
    assert torch.autograd.gradgradcheck(function, args)


def test_torch_mixed_devices_still_refused() -> None:
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError, match="yhat and y must be on one device"):
        ak.l2_loss(torch.ones(3), torch.ones(3, device="meta"))
    with pytest.raises(TypeError, match="must be arrays of one backend"):
        ak.l2_loss(torch.ones(3), np.ones(3))


def test_torch_no_grad_takes_the_kernel_and_autograd_the_formula() -> None:
    """What the dispatcher picks, observed from outside: torch.sigmoid's own
    backward would give 0 at x = 20 in float32; arraykit's gives σ'(20)."""
    torch = pytest.importorskip("torch")
    x = torch.tensor([20.0], requires_grad=True)
    ak.sigmoid(x).backward()
    assert x.grad is not None
    np.testing.assert_allclose(
        x.grad.numpy(), reference.sigmoid_derivative(np.array([20.0])), rtol=1e-6
    )
    with torch.no_grad():
        assert not ak.sigmoid(x).requires_grad


# --- optimizers and drivers inside transformations --------------------------


def _steps() -> tuple[np.ndarray, list[np.ndarray]]:
    rng = np.random.default_rng(4)
    return rng.normal(size=4), [rng.normal(size=4) for _ in range(3)]


def test_jitted_update_compiles_once() -> None:
    jax = pytest.importorskip("jax")
    import backends

    xb = backends.get("jax:cpu")
    if not xb.available:
        pytest.skip(xb.unavailable)
    import jax.numpy as jnp

    p0, grads = _steps()
    for opt in [make() for make, _ in OPTIMIZERS.values()]:
        for put in (lambda a: xb.asarray(a, "float32"), lambda a: jnp.asarray(a, "float32")):
            traces = []

            def counted(p: Any, g: Any, s: Any, o: Any = opt, seen: list[int] = traces) -> Any:
                seen.append(1)  # runs only while JAX traces the update
                return o.update(p, g, s)

            update = jax.jit(counted)
            p = put(p0)
            state = opt.init(p)
            for g in grads:
                p, state = update(p, put(g), state)
            assert len(traces) == 1
            assert str(p.dtype) == "float32"


OPTIMIZERS = {
    # name: (arraykit's optimizer, torch.optim's, given its parameters)
    "adagrad": (
        lambda: ak.optim.adagrad(lr=0.1, lr_decay=0.01),
        lambda torch, p: torch.optim.Adagrad(p, lr=0.1, lr_decay=0.01),
    ),
    "sgd-nesterov": (
        lambda: ak.optim.gradient_descent(0.1, momentum=0.9, nesterov=True, weight_decay=0.1),
        lambda torch, p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1),
    ),
    "rmsprop-centered": (
        lambda: ak.optim.rmsprop(momentum=0.5, centered=True),
        lambda torch, p: torch.optim.RMSprop(p, momentum=0.5, centered=True),
    ),
    "adam-amsgrad": (
        lambda: ak.optim.adam(lr=0.1, amsgrad=True),
        lambda torch, p: torch.optim.Adam(p, lr=0.1, amsgrad=True),
    ),
    "adamw": (
        lambda: ak.optim.adamw(lambda t: 0.1 / (1 + t)),
        lambda torch, p: torch.optim.AdamW(p, lr=0.1),
    ),
}


def _torch_optim_reference(name: str, p0: np.ndarray, grads: list[np.ndarray]) -> np.ndarray:
    """torch.optim's parameters after the steps, in float64 (AdamW with 0.1/(1 + t) set by
    LambdaLR)."""
    torch = pytest.importorskip("torch")
    p = torch.tensor(p0, requires_grad=True)
    opt = OPTIMIZERS[name][1](torch, [p])
    scheduler = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1 / (1 + t))
    for g in grads:
        p.grad = torch.tensor(g)
        opt.step()
        if name == "adamw":
            scheduler.step()
    return p.detach().numpy()


# torch.compile compiles each optimizer for a few seconds: two of them, the rest eager.
COMPILED = ("adagrad", "adam-amsgrad")


@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize("program", ["jax.jit", "jax.vmap", "torch.func.vmap", "torch.compile"])
def test_optimizer_updates_inside_transformations(program: str, name: str) -> None:
    library = program.split(".")[0]
    pytest.importorskip(library)
    if program == "torch.compile" and name not in COMPILED:
        pytest.skip("compiled for two optimizers (COMPILED); their steps share the rest's code")
    import backends

    xb = backends.get(f"{library}:cpu")
    if not xb.available:
        pytest.skip(xb.unavailable)
    opt = OPTIMIZERS[name][0]()
    p0, grads = _steps()
    desired = _torch_optim_reference(name, p0, grads)

    def run(p: Any, *gs: Any) -> Any:
        state = opt.init(p)
        for g in gs:
            p, state = opt.update(p, g, state)
        return p

    p, gs = xb.asarray(p0), [xb.asarray(g) for g in grads]
    if program == "jax.jit":
        import jax

        got = jax.jit(run)(p, *gs)
    elif program == "jax.vmap":
        import jax
        import jax.numpy as jnp

        got = jax.vmap(run)(jnp.stack([p, p]), *(jnp.stack([g, g]) for g in gs))[1]
    elif program == "torch.func.vmap":
        import torch

        got = torch.func.vmap(run)(torch.stack([p, p]), *(torch.stack([g, g]) for g in gs))[1]
    else:
        import torch

        got = torch.compile(run, fullgraph=True)(p, *gs)
    np.testing.assert_allclose(xb.to_numpy(got), desired, rtol=1e-13)


def _gd_reference(p: np.ndarray, lr: float, steps: int) -> np.ndarray:
    for _ in range(steps):
        p = p - lr * 2 * p
    return p


def test_drivers_under_jit_and_vmap() -> None:
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    import backends

    xb = backends.get("jax:cpu")
    if not xb.available:
        pytest.skip(xb.unavailable)
    p0 = np.array([1.0, -2.0, 0.5])

    def run(p: Any) -> Any:
        return ak.optimize(ak.optim.gradient_descent(0.1), lambda q: 2 * q, p, steps=5)

    result = jax.jit(run)(xb.asarray(p0))  # the whole OptimizeResult comes back
    np.testing.assert_allclose(np.asarray(result.params), _gd_reference(p0, 0.1, 5), rtol=1e-14)
    assert result.history.shape == (6, 3)
    assert not bool(result.diverged)
    batched = jax.vmap(lambda p: run(p).params)(jnp.stack([xb.asarray(p0), xb.asarray(2 * p0)]))
    np.testing.assert_allclose(np.asarray(batched[1]), _gd_reference(2 * p0, 0.1, 5), rtol=1e-14)
    # A diverging run under jit reports divergence as an array, uncut.
    diverging = jax.jit(
        lambda p: ak.optimize(ak.optim.gradient_descent(1e200), lambda q: q * 1e200, p, steps=3)
    )(xb.asarray(p0))
    assert bool(diverging.diverged)
    assert diverging.history.shape == (4, 3)


def test_fit_line_under_jit_matches_numpy() -> None:
    jax = pytest.importorskip("jax")
    import backends

    xb = backends.get("jax:cpu")
    if not xb.available:
        pytest.skip(xb.unavailable)
    x, y = ak.regression.classic_data()
    for optimizer, lr in (("gd", 1e-6), ("adagrad", 1.0)):
        expected = ak.regression.fit_line(
            x, y, optimizer=optimizer, lr=lr, steps=200, start=(-120.0, -4.0)
        )

        def fit(a: Any, b: Any, o: str = optimizer, r: float = lr) -> Any:
            return ak.regression.fit_line(
                a, b, optimizer=o, lr=r, steps=200, start=(-120.0, -4.0)
            ).params

        got = jax.jit(fit)(xb.asarray(x), xb.asarray(y))
        np.testing.assert_allclose(np.asarray(got), expected.params, rtol=1e-10)


# --- NumPy inputs computed right or refused ---------------------------------


@pytest.mark.parametrize("order", [">", "<"])
def test_any_byte_order(order: str) -> None:
    x = np.array([[1.0, 2.0, 3.0], [1000.0, 1001.0, -5.0]]).astype(f"{order}f8")
    exact = reference.softmax_rows(x.astype(np.float64))
    np.testing.assert_allclose(ak.softmax(x), exact, rtol=4e-16)
    np.testing.assert_allclose(ak.normalize_rows(x), reference.normalize_rows(x), rtol=4e-16)
    np.testing.assert_allclose(ak.sigmoid(x), reference.sigmoid(x), rtol=4e-16)
    assert ak.l2_loss(x, x * 0)[()] == pytest.approx(float(reference.loss(x, x * 0, 2, "sum")))


def test_strided_input() -> None:
    x = np.linspace(-5, 5, 40).reshape(4, 10)[:, ::3]
    np.testing.assert_allclose(ak.softmax(x), reference.softmax_rows(x), rtol=4e-16)


@pytest.mark.skipif(np.finfo(np.longdouble).bits == 64, reason="longdouble is float64 here")
@pytest.mark.parametrize(
    "call",
    [
        lambda a: ak.softmax(a),
        lambda a: ak.sigmoid(a),
        lambda a: ak.normalize_rows(a.reshape(1, -1)),
        lambda a: ak.l1_loss(a, a),
        lambda a: ak.l2_loss(a, np.zeros(3)),
    ],
)
def test_longdouble_is_refused_by_name(call: Any) -> None:
    with pytest.raises(TypeError, match=r"at most 64 bits.*float128|at most 64 bits"):
        call(np.ones(3, dtype=np.longdouble))


def test_masked_arrays_are_refused() -> None:
    masked = np.ma.masked_array([1.0, 1000.0, 2.0], mask=[0, 1, 0])
    for call in (ak.softmax, ak.sigmoid, lambda m: ak.l2_loss(m, m, "mean")):
        with pytest.raises(TypeError, match="without a mask"):
            call(masked)


@pytest.mark.parametrize("make", [ak.optim.adagrad, ak.optim.rmsprop, ak.optim.adam])
def test_per_coordinate_optimizers_refuse_complex_and_sparse(make: Any) -> None:
    opt = make(lr=0.1)
    with pytest.raises(TypeError, match="params leaf 0 must be real"):
        opt.init(np.ones(2, dtype=complex))
    state = opt.init(np.ones(2))
    with pytest.raises(TypeError, match=r"grads must have its parameter's dtype float64"):
        opt.update(np.ones(2), np.ones(2, dtype=complex), state)
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="grads must be dense, as its parameter"):
        opt.update(torch.ones(3), torch.ones(3).to_sparse(), opt.init(torch.ones(3)))


def test_gradient_descent_on_complex_follows_sgd() -> None:
    p = np.array([1.0 + 2.0j])
    opt = ak.optim.gradient_descent(0.5, momentum=0.5)
    new, state = opt.update(p, np.array([2.0 - 2.0j]), opt.init(p))
    np.testing.assert_array_equal(new, [0.0 + 3.0j])
    torch = pytest.importorskip("torch")
    q = torch.tensor([1.0 + 2.0j], requires_grad=True)
    sgd = torch.optim.SGD([q], lr=0.5, momentum=0.5)
    for g in ([2.0 - 2.0j], [1.0 + 1.0j]):
        q.grad = torch.tensor(g)
        sgd.step()
        if g != [2.0 - 2.0j]:
            new, state = opt.update(new, np.array(g), state)
    np.testing.assert_array_equal(new, q.detach().numpy())


# --- lazy and symbolic sizes ------------------------------------------------


def test_dask_unknown_sizes() -> None:
    da = pytest.importorskip("dask.array")
    x = da.from_array(np.arange(10.0), chunks=3)
    kept = x[x > 3]  # sizes unknown until computed
    result = ak.regression.fit_line(kept, 2 * kept + 1, lr=1e-3, steps=50)
    expected = ak.regression.fit_line(
        np.arange(4.0, 10.0), 2 * np.arange(4.0, 10.0) + 1, lr=1e-3, steps=50
    )
    np.testing.assert_allclose(result.params.compute(), expected.params, rtol=1e-12)
    image = da.ones((4, 3, 2), chunks=2)
    unknown = image[image[:, 0, 0] > 0]
    with pytest.raises(ValueError, match=r"image must have a known shape.*compute_chunk_sizes"):
        ak.image2vector(unknown)


def test_an_unknown_size_never_makes_a_mean_nan() -> None:
    jax = pytest.importorskip("jax")
    from jax import export

    (n,) = export.symbolic_shape("n")
    spec = jax.ShapeDtypeStruct((n,), "float32")
    exported = export.export(jax.jit(lambda a, b: ak.l1_loss(a, b, "mean")))(spec, spec)
    a, b = np.array([1.0, 2.0, 4.0], np.float32), np.zeros(3, np.float32)
    assert float(exported.call(a, b)) == pytest.approx(7.0 / 3.0)
    assert not math.isnan(float(exported.call(a[:2], b[:2])))
