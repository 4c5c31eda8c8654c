"""The one registry of transformations: what a PyTorch or JAX user wraps a call in.

Each :class:`Transform` runs a function of backend arrays the way a user's
program would: compiled, exported, batched, or differentiated in forward or
reverse mode. Tests cross every public function with these (and compare with
independent references); benchmarks can time the same programs.

* ``kind="value"``: ``run(f, args)`` returns ``f(*args)`` computed under the
  transformation. ``batched`` ones return two stacked copies (vmap, a scan
  over two steps); ``shape_only`` ones (meta and fake tensors) carry no
  values.
* ``kind="forward"``: ``run(f, args, tangents)`` returns the Jacobian-vector
  product ``J·t``, shaped like the output.
* ``kind="reverse"``: ``run(f, args, weights)`` returns ``Jᵀ·w`` for each
  differentiated argument (a tuple, one per argument).

``first_only`` transformations differentiate (or batch) the first argument
and close over the others, as a training step closes over its data.
Backend libraries are imported only when a transformation runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

Function = Callable[..., Any]


@dataclass(frozen=True)
class Transform:
    """One way of calling a function inside a user's program."""

    id: str
    library: str
    kind: str  # "value", "forward" or "reverse"
    run: Callable[..., Any]
    batched: bool = False
    shape_only: bool = False
    first_only: bool = False
    slow: bool = False
    """Compiles (torch.compile, export): run by ``.ci/run``, not by default."""


# --- torch ------------------------------------------------------------------


def _weighted(f: Function, weights: Any) -> Function:
    """``sum(f(*a) * weights)``: the scalar a reverse-mode transformation differentiates."""

    def g(*a: Any) -> Any:
        return (f(*a) * weights).sum()

    return g


def _t_no_grad(f: Function, args: Sequence[Any]) -> Any:
    import torch

    with torch.no_grad():
        return f(*args)


def _t_inference(f: Function, args: Sequence[Any]) -> Any:
    import torch

    with torch.inference_mode():
        return f(*args)


def _t_recording(f: Function, args: Sequence[Any]) -> Any:
    return f(*(a.clone().requires_grad_(True) for a in args)).detach()


def _t_parameter(f: Function, args: Sequence[Any]) -> Any:
    import torch

    return f(*(torch.nn.Parameter(a.clone()) for a in args)).detach()


def _t_vmap(f: Function, args: Sequence[Any]) -> Any:
    import torch

    return torch.func.vmap(f)(*(torch.stack([a, a]) for a in args))


def _t_vmap_first(f: Function, args: Sequence[Any]) -> Any:
    import torch

    dims = (0,) + (None,) * (len(args) - 1)
    return torch.func.vmap(f, in_dims=dims)(torch.stack([args[0], args[0]]), *args[1:])


def _t_compile(dynamic: bool) -> Callable[..., Any]:
    def run(f: Function, args: Sequence[Any]) -> Any:
        import torch

        return torch.compile(f, fullgraph=True, dynamic=dynamic)(*args)

    return run


def _t_export(f: Function, args: Sequence[Any]) -> Any:
    import torch

    class Call(torch.nn.Module):
        def forward(self, *a: Any) -> Any:
            return f(*a)

    return torch.export.export(Call(), tuple(args)).module()(*args)


def _t_meta(f: Function, args: Sequence[Any]) -> Any:
    return f(*(a.to("meta") for a in args))


def _t_fake(f: Function, args: Sequence[Any]) -> Any:
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode() as mode:
        return f(*(mode.from_tensor(a) for a in args))


def _t_backward(f: Function, args: Sequence[Any], weights: Any) -> Any:
    import torch

    leaves = [a.clone().requires_grad_(True) for a in args]
    return torch.autograd.grad(_weighted(f, weights)(*leaves), leaves)


def _t_compiled_backward(f: Function, args: Sequence[Any], weights: Any) -> Any:
    import torch

    leaves = [a.clone().requires_grad_(True) for a in args]
    g = torch.compile(_weighted(f, weights), fullgraph=True)
    return torch.autograd.grad(g(*leaves), leaves)


def _t_forward_ad(f: Function, args: Sequence[Any], tangents: Sequence[Any]) -> Any:
    import torch.autograd.forward_ad as fwad

    with fwad.dual_level():
        out = f(*(fwad.make_dual(a, t) for a, t in zip(args, tangents, strict=True)))
        return fwad.unpack_dual(out).tangent


def _t_func_grad(f: Function, args: Sequence[Any], weights: Any) -> Any:
    import torch

    argnums = tuple(range(len(args)))
    return torch.func.grad(_weighted(f, weights), argnums=argnums)(*args)


def _t_func_grad_first(f: Function, args: Sequence[Any], weights: Any) -> Any:
    import torch

    rest = args[1:]
    return (torch.func.grad(_weighted(lambda a: f(a, *rest), weights))(args[0]),)


def _t_func_vjp(f: Function, args: Sequence[Any], weights: Any) -> Any:
    import torch

    pullback = torch.func.vjp(f, *args)[1]
    return pullback(weights)


def _t_func_jvp(f: Function, args: Sequence[Any], tangents: Sequence[Any]) -> Any:
    import torch

    return torch.func.jvp(f, tuple(args), tuple(tangents))[1]


def _t_jacobian(mode: str) -> Callable[..., Any]:
    def run(f: Function, args: Sequence[Any], weights: Any) -> Any:
        import torch

        jac = getattr(torch.func, mode)(f, argnums=tuple(range(len(args))))(*args)
        return tuple(torch.tensordot(weights, j, dims=weights.ndim) for j in jac)

    return run


def _t_grad_of_vmap(f: Function, args: Sequence[Any], weights: Any) -> Any:
    import torch

    def g(*a: Any) -> Any:
        out = torch.func.vmap(f)(*(x.unsqueeze(0) for x in a))[0]
        return (out * weights).sum()

    return torch.func.grad(g, argnums=tuple(range(len(args))))(*args)


def _t_vmap_of_jvp(f: Function, args: Sequence[Any], tangents: Sequence[Any]) -> Any:
    import torch

    def one(*a: Any) -> Any:
        return torch.func.jvp(f, a, tuple(tangents))[1]

    return torch.func.vmap(one)(*(x.unsqueeze(0) for x in args))[0]


# --- jax --------------------------------------------------------------------


def _j_jit(f: Function, args: Sequence[Any]) -> Any:
    import jax

    return jax.jit(f)(*args)


def _j_jit_closure(f: Function, args: Sequence[Any]) -> Any:
    import jax

    rest = args[1:]
    return jax.jit(lambda a: f(a, *rest))(args[0])


def _j_vmap(f: Function, args: Sequence[Any]) -> Any:
    import jax
    import jax.numpy as jnp

    return jax.vmap(f)(*(jnp.stack([a, a]) for a in args))


def _j_vmap_first(f: Function, args: Sequence[Any]) -> Any:
    import jax
    import jax.numpy as jnp

    axes = (0,) + (None,) * (len(args) - 1)
    return jax.vmap(f, in_axes=axes)(jnp.stack([args[0], args[0]]), *args[1:])


def _j_checkpoint(f: Function, args: Sequence[Any]) -> Any:
    import jax

    return jax.checkpoint(f)(*args)


def _j_scan(f: Function, args: Sequence[Any]) -> Any:
    import jax

    def body(carry: Any, _: None) -> Any:
        return carry, f(*carry)

    return jax.lax.scan(body, tuple(args), None, length=2)[1]


def _j_fori_loop(f: Function, args: Sequence[Any]) -> Any:
    import jax
    import jax.numpy as jnp

    shape = jax.eval_shape(f, *args)
    start = jnp.zeros(shape.shape, shape.dtype)
    return jax.lax.fori_loop(0, 2, lambda i, _: f(*args), start)


def _j_export(f: Function, args: Sequence[Any]) -> Any:
    """Exported with a symbolic leading dimension, then called on the arrays."""
    import jax
    from jax import export

    (size,) = export.symbolic_shape("n")
    specs = [jax.ShapeDtypeStruct((size, *a.shape[1:]), a.dtype) for a in args]
    return export.export(jax.jit(f))(*specs).call(*args)


def _j_grad(wrap: Callable[[Function], Function]) -> Callable[..., Any]:
    def run(f: Function, args: Sequence[Any], weights: Any) -> Any:
        import jax

        argnums = tuple(range(len(args)))
        return wrap(jax.grad(_weighted(f, weights), argnums=argnums))(*args)

    return run


def _j_value_and_grad(f: Function, args: Sequence[Any], weights: Any) -> Any:
    import jax

    argnums = tuple(range(len(args)))
    return jax.value_and_grad(_weighted(f, weights), argnums=argnums)(*args)[1]


def _j_grad_first(f: Function, args: Sequence[Any], weights: Any) -> Any:
    import jax

    rest = args[1:]
    return (jax.jit(jax.grad(_weighted(lambda a: f(a, *rest), weights)))(args[0]),)


def _j_checkpoint_grad(f: Function, args: Sequence[Any], weights: Any) -> Any:
    import jax

    argnums = tuple(range(len(args)))
    return jax.grad(jax.checkpoint(_weighted(f, weights)), argnums=argnums)(*args)


def _j_vjp(f: Function, args: Sequence[Any], weights: Any) -> Any:
    import jax

    _, pullback = jax.vjp(f, *args)
    return pullback(weights)


def _j_jvp(f: Function, args: Sequence[Any], tangents: Sequence[Any]) -> Any:
    import jax

    return jax.jvp(f, tuple(args), tuple(tangents))[1]


def _j_jacobian(mode: str) -> Callable[..., Any]:
    def run(f: Function, args: Sequence[Any], weights: Any) -> Any:
        import jax
        import jax.numpy as jnp

        jac = getattr(jax, mode)(f, argnums=tuple(range(len(args))))(*args)
        return tuple(jnp.tensordot(weights, j, axes=weights.ndim) for j in jac)

    return run


def _j_vmap_of_grad(f: Function, args: Sequence[Any], weights: Any) -> Any:
    import jax
    import jax.numpy as jnp

    argnums = tuple(range(len(args)))
    grads = jax.vmap(jax.grad(_weighted(f, weights), argnums=argnums))(
        *(jnp.stack([a, a]) for a in args)
    )
    return tuple(g[1] for g in grads)


def _j_grad_in_scan(f: Function, args: Sequence[Any], weights: Any) -> Any:
    import jax

    argnums = tuple(range(len(args)))
    step = jax.grad(_weighted(f, weights), argnums=argnums)

    def body(carry: Any, _: None) -> Any:
        return carry, step(*carry)

    return tuple(g[-1] for g in jax.lax.scan(body, tuple(args), None, length=2)[1])


def _identity(wrapped: Function) -> Function:
    return wrapped


def _jit(wrapped: Function) -> Function:
    import jax

    return jax.jit(wrapped)  # type: ignore[no-any-return]


def _eager(f: Function, args: Sequence[Any]) -> Any:
    return f(*args)


TRANSFORMS: dict[str, Transform] = {
    t.id: t
    for t in [
        # torch: values
        Transform("torch:eager", "torch", "value", _eager),
        Transform("torch:no_grad", "torch", "value", _t_no_grad),
        Transform("torch:inference_mode", "torch", "value", _t_inference),
        Transform("torch:recording_grad", "torch", "value", _t_recording),
        Transform("torch:parameter", "torch", "value", _t_parameter),
        Transform("torch:func.vmap", "torch", "value", _t_vmap, batched=True),
        Transform(
            "torch:func.vmap_in_dims_none",
            "torch",
            "value",
            _t_vmap_first,
            batched=True,
            first_only=True,
        ),
        Transform("torch:meta", "torch", "value", _t_meta, shape_only=True),
        Transform("torch:fake", "torch", "value", _t_fake, shape_only=True),
        Transform("torch:compile", "torch", "value", _t_compile(False), slow=True),
        Transform("torch:compile_dynamic", "torch", "value", _t_compile(True), slow=True),
        Transform("torch:export", "torch", "value", _t_export, slow=True),
        # torch: derivatives
        Transform("torch:backward", "torch", "reverse", _t_backward),
        Transform("torch:forward_ad", "torch", "forward", _t_forward_ad),
        Transform("torch:func.grad", "torch", "reverse", _t_func_grad),
        Transform("torch:func.grad_first", "torch", "reverse", _t_func_grad_first, first_only=True),
        Transform("torch:func.vjp", "torch", "reverse", _t_func_vjp),
        Transform("torch:func.jvp", "torch", "forward", _t_func_jvp),
        Transform("torch:func.jacrev", "torch", "reverse", _t_jacobian("jacrev")),
        Transform("torch:func.jacfwd", "torch", "reverse", _t_jacobian("jacfwd")),
        Transform("torch:func.grad_of_vmap", "torch", "reverse", _t_grad_of_vmap),
        Transform("torch:func.vmap_of_jvp", "torch", "forward", _t_vmap_of_jvp),
        Transform("torch:compile_backward", "torch", "reverse", _t_compiled_backward, slow=True),
        # jax: values
        Transform("jax:eager", "jax", "value", _eager),
        Transform("jax:jit", "jax", "value", _j_jit),
        Transform("jax:jit_closure", "jax", "value", _j_jit_closure, first_only=True),
        Transform("jax:vmap", "jax", "value", _j_vmap, batched=True),
        Transform(
            "jax:vmap_in_axes_none", "jax", "value", _j_vmap_first, batched=True, first_only=True
        ),
        Transform("jax:checkpoint", "jax", "value", _j_checkpoint),
        Transform("jax:scan", "jax", "value", _j_scan, batched=True),
        Transform("jax:fori_loop", "jax", "value", _j_fori_loop),
        Transform("jax:export", "jax", "value", _j_export, slow=True),
        # jax: derivatives
        Transform("jax:grad", "jax", "reverse", _j_grad(_identity)),
        Transform("jax:jit_grad", "jax", "reverse", _j_grad(_jit)),
        Transform("jax:value_and_grad", "jax", "reverse", _j_value_and_grad),
        Transform("jax:grad_first", "jax", "reverse", _j_grad_first, first_only=True),
        Transform("jax:checkpoint_grad", "jax", "reverse", _j_checkpoint_grad),
        Transform("jax:vjp", "jax", "reverse", _j_vjp),
        Transform("jax:jvp", "jax", "forward", _j_jvp),
        Transform("jax:jacfwd", "jax", "reverse", _j_jacobian("jacfwd")),
        Transform("jax:jacrev", "jax", "reverse", _j_jacobian("jacrev")),
        Transform("jax:vmap_of_grad", "jax", "reverse", _j_vmap_of_grad),
        Transform("jax:grad_in_scan", "jax", "reverse", _j_grad_in_scan),
    ]
}
"""Every transformation, by id (``library:name``), grouped by library."""


def for_library(library: str, kind: str | None = None) -> list[Transform]:
    """The transformations of ``library`` (``"torch"``, ``"jax"``), of one kind if given."""
    return [
        t for t in TRANSFORMS.values() if t.library == library and (kind is None or t.kind == kind)
    ]
