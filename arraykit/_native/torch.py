"""PyTorch fast paths: ``torch.library`` operators, whose kernels the dispatcher chooses.

Each primitive ``p`` is three operators in the ``arraykit`` namespace:

* ``p``, what the public function calls. Its **Autograd** kernel sees the
  tensors after ``torch.func`` has unwrapped its layers, so ``requires_grad``
  and forward-mode tangents are the true ones there. Where a forward-mode
  tangent is present it computes the formula in torch operations, whose
  autograd keeps every tangent (custom operators have no forward-mode rule);
  where only a reverse-mode gradient is wanted it calls ``p_differentiable``;
  otherwise it hands the call to the device's kernel.
* ``p_differentiable``, the same values with a registered backward:
  ``p_backward``, computed from what the forward saved.
* ``p_backward``, itself differentiable (its formula in torch operations)
  when a higher derivative is wanted, and a kernel otherwise.

The device kernels: on CPU tensors the compiled kernels over the tensor's own
memory (a real dense tensor there, never a wrapper), or NumPy's kernels on a
view of it where those cannot serve, and the backward formulas in torch
operations; on CUDA tensors the Triton kernels of
:mod:`arraykit._native._triton`, one or two launches each, where Triton is
installed; ``torch.sigmoid`` for the sigmoid's value on every device; the
formulas in torch operations everywhere else. float16 and bfloat16 tensors
are taken as they are: the Triton kernels compute them in float32 and round
once, the other kernels upcast to float32 and round back, as the public
layer does for every other backend.

A fake kernel gives shapes to ``torch.compile``, ``torch.export``, meta and
fake tensors, and a vmap rule batches each operator for ``torch.func.vmap``.
So compile and export see opaque operators (no graph break), and the choice
between kernels is the dispatcher's, made from what the tensors are.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import array_api_compat.torch as xp
import numpy as np
import torch
import torch.autograd.forward_ad as forward_ad

from .. import _adagrad, _fork, _formulas, _log_space, _updates
from .._array_api import one_axis
from . import _compiled
from . import _torch_private as private

_LIBRARY = torch.library.Library("arraykit", "DEF")

COMPUTES_HALF = True
"""float16 and bfloat16 tensors reach these operators uncast (see the module docstring)."""

_HALF = (torch.float16, torch.bfloat16)


@functools.cache
def triton_kernels() -> ModuleType | None:
    """The Triton kernels, imported on the first CUDA call; None without Triton.

    ``ARRAYKIT_TRITON=0`` leaves them out (the formulas in torch operations
    serve CUDA tensors then): for comparisons, and as a way out should a
    Triton release fail on some GPU.
    """
    if os.environ.get("ARRAYKIT_TRITON", "1") == "0":
        return None
    try:
        from . import _triton
    except ImportError:
        return None
    return _triton


def _tangent(tensors: Sequence[torch.Tensor]) -> bool:
    return any(forward_ad.unpack_dual(t).tangent is not None for t in tensors)


def _recording(tensors: Sequence[torch.Tensor]) -> bool:
    return torch.is_grad_enabled() and private.any_requires_grad(*tensors)


def _inside_torch_func() -> bool:
    """Whether a ``torch.func`` transform is running: inside one, no ``autograd.Function``
    (such as a registered backward) can run from an Autograd kernel."""
    return bool(private.transforms_active())


# Bound once: direct() runs on every eager call, where attribute lookups count.
_untransformed = private.untransformed
_function_modes = private.function_modes
_dispatch_modes = private.dispatch_modes
_grad_enabled = torch.is_grad_enabled
_wrapped = private.is_wrapped
_STRIDED = torch.strided


def undifferentiated(x: torch.Tensor) -> bool:
    """Whether nothing can take the derivative of an eager call on ``x``.

    Then torch's own function may compute a value whose derivative torch
    would take less accurately than the operator's registered one (the
    sigmoid's), on any device, tensor subclass or mode: only autograd
    would see the difference.
    """
    return _untransformed() and not (x.requires_grad and _grad_enabled())


def direct(*tensors: torch.Tensor) -> bool:
    """Whether an eager call on ``tensors`` may go straight to their CPU kernel.

    The dispatcher's route costs microseconds per call (the operator's
    Autograd and CPU kernels are Python functions it calls back), as much as
    the kernel itself on 1e5 elements. It is skipped only where the tensors
    themselves settle every choice it would make: torch's own dense CPU
    tensors (no subclass: fake, functional and the caller's own subclasses
    keep the dispatcher), none wrapped by ``torch.func``, outside
    ``torch.compile``, tracing, any ``torch.func`` transform, torch-function
    or dispatch mode and forward-mode level. On such tensors
    ``requires_grad`` is the truth, and a call that would record a gradient
    keeps the operator too.
    """
    if not _untransformed() or _function_modes() or _dispatch_modes():
        return False
    grad = _grad_enabled()
    for t in tensors:
        if (
            type(t) is not torch.Tensor
            or not t.is_cpu
            or t.layout is not _STRIDED
            or (grad and t.requires_grad)
            or _wrapped(t)
        ):
            return False
    return True


def _in_float32(kernel: Callable[..., Any], tensors: int) -> Callable[..., Any]:
    """``kernel`` taking half-precision tensors: computed in float32, rounded back once."""

    def run(*args: Any) -> Any:
        dtype = args[0].dtype
        if dtype not in _HALF:
            return kernel(*args)
        wide = [t.float() if t.is_floating_point() else t for t in args[:tensors]]
        result = kernel(*wide, *args[tensors:])
        return None if result is None else result.to(dtype)

    return run


def _numpy_view(t: torch.Tensor) -> np.ndarray:
    # Only CPU kernels call this, so force's copy to the CPU never happens;
    # what it does do, detaching and resolving a negative bit, in one call
    # (below autograd, detaching only drops a flag no kernel here reads).
    return t.numpy(force=True)


def share_threads() -> bool:
    """Run the compiled kernels' threaded work in torch's own OpenMP threads; True if it does.

    torch's CPU operators run in an OpenMP team whose threads spin for a
    while after each operator. A second pool of threads beside them, as
    arraykit's own, competes with those for the cores, and the split work
    waits for its slowest part: on a machine with as many threads as cores
    that costs the kernels most of their second thread. So where torch uses
    OpenMP, the kernels start their teams with the runtime torch loaded
    (its ``GOMP_parallel``, which LLVM's and Intel's runtimes provide too),
    found through ``libtorch_cpu``'s own dependencies. Nothing is built
    against torch, and where no such runtime is found (another parallel
    backend, Windows) arraykit's own pool serves. A forked child goes back to
    arraykit's pool, also where this module is first imported there: an
    OpenMP runtime's threads do not survive a fork (see :mod:`arraykit._fork`).
    """
    kernels = _compiled.compiled
    if kernels is None or not torch.backends.openmp.is_available() or _fork.forked:
        return False
    return any(kernels.share_threads(str(library)) for library in _torch_cpu_libraries())


def _torch_cpu_libraries() -> list[Path]:
    """Where ``libtorch_cpu`` may be: beside torch's Python files (its wheels), else
    wherever this process mapped it from (a Linux build that keeps it elsewhere, as
    conda's do)."""
    found = sorted((Path(torch.__file__).parent / "lib").glob("libtorch_cpu.*"))
    maps = Path("/proc/self/maps")
    if not found and maps.exists():
        mapped = (line.split()[-1] for line in maps.read_text().splitlines())
        found = sorted({Path(p) for p in mapped if Path(p).name.startswith("libtorch_cpu.")})
    return found


SHARES_THREADS = share_threads()
"""Whether the compiled kernels' threads are torch's (see :func:`share_threads`)."""


def _through_numpy(kernel: Callable[..., Any], tensors: int = 1) -> Callable[..., Any]:
    """A CPU kernel: the compiled ``kernel`` (:mod:`arraykit._native._compiled`, any
    layout) on the NumPy views of the (dense, CPU) tensors, split over torch's thread
    count, as torch's own CPU kernels are; None where it declines."""

    def cpu(*args: Any) -> torch.Tensor | None:
        arrays = [_numpy_view(t) for t in args[:tensors]]
        result = kernel(*arrays, *args[tensors:], threads=torch.get_num_threads())
        return None if result is None else torch.from_numpy(np.asarray(result))

    return _in_float32(cpu, tensors)


_KINDS = {torch.float32: "f", torch.float64: "d"}


def _memory(t: torch.Tensor) -> tuple[int, int, str] | None:
    """``t``'s memory as the compiled kernels take it, (address, elements, kind), or None
    where they cannot read it: another dtype or layout, or a negative view (whose memory
    holds the values' negations, as the imaginary part of a conjugate can)."""
    kind = _KINDS.get(t.dtype)
    if kind is None or not t.is_contiguous() or t.is_neg():
        return None
    return t.data_ptr(), t.numel(), kind


def _on_memory(
    name: str, fallback: Callable[..., Any], rows: bool = False, reduced: bool = False
) -> Callable[..., Any]:
    """A CPU kernel: the compiled kernel ``name`` on the tensor's own memory (see
    :func:`_memory`) where it can read it, else ``fallback``.

    The kernel gets the memory as (address, elements, kind), the tensors held
    by this frame: a NumPy view and the NumPy layer around the kernel cost a
    microsecond a call, as much as the kernel on a few thousand elements. The
    result is allocated by NumPy, which asks for huge pages for large arrays:
    torch's allocator takes a page fault every 4 KiB of a fresh result, which
    made a 1e7-element call up to three times slower.
    ``rows``: the kernel works on rows along the last axis, whose length it
    is given (the arguments after the tensor go to ``fallback`` alone);
    ``reduced``: with one result per row, the last argument saying whether
    the reduced axis is kept (a reduction's ``keepdim``).
    """
    kernel = getattr(_compiled.compiled, name, None)
    if kernel is None:
        return fallback

    def cpu(x: torch.Tensor, *rest: Any) -> Any:
        memory = _memory(x)
        if memory is not None and (not rows or x.ndim):
            out = np.empty(x.shape[:-1] if reduced else x.shape, dtype=memory[2])
            shape = (x.shape[-1],) if rows else ()
            if kernel(memory, out, *shape, torch.get_num_threads()):
                result = torch.from_numpy(out)
                return result.unsqueeze(-1) if reduced and rest[-1] else result
        return fallback(x, *rest)

    return cpu


def _across(name: str, fallback: Callable[..., Any], reduced: bool = False) -> Callable[..., Any]:
    """A CPU kernel over one axis other than the last, ``cpu(x, axes, *rest)``: the
    compiled columns' kernel ``name`` on the tensor's own memory (see :func:`_on_memory`),
    whose rows then run across it, where it can read it; else ``fallback``.
    ``reduced``: with one result per row, the last argument saying whether the
    reduced axis is kept."""
    kernel = getattr(_compiled.compiled, name, None)
    if kernel is None:
        return fallback

    def cpu(x: torch.Tensor, axes: Sequence[int], *rest: Any) -> Any:
        memory = _memory(x)
        if memory is not None and len(axes) == 1 and memory[1]:
            axis = axes[0]
            length = x.shape[axis]
            if length <= _compiled.COLUMNS_UP_TO:
                shape = x.shape[:axis] + x.shape[axis + 1 :] if reduced else x.shape
                out = np.empty(shape, dtype=memory[2])
                width = math.prod(x.shape[axis + 1 :])
                if kernel(memory, out, length, width, torch.get_num_threads()):
                    result = torch.from_numpy(out)
                    return result.unsqueeze(axis) if reduced and rest[-1] else result
        return fallback(x, axes, *rest)

    return cpu


def _on_cuda(launcher: str, fallback: Callable[..., Any]) -> Callable[..., torch.Tensor]:
    """A CUDA kernel: the Triton launcher called ``launcher``, or ``fallback`` without Triton."""

    def cuda(*args: Any) -> torch.Tensor:
        kernels = triton_kernels()
        if kernels is None:
            return fallback(*args)  # type: ignore[no-any-return]
        return getattr(kernels, launcher)(*args)  # type: ignore[no-any-return]

    return cuda


CUDA_KERNELS: dict[str, Callable[..., torch.Tensor]] = {}
"""What each operator runs on a CUDA tensor, by operator name: its CUDA kernel, or the
kernel that serves every device. Tests and the cost model call these directly (on CPU
tensors under Triton's interpreter, on fake CUDA tensors with launches recorded)."""


def _op(schema: str) -> Any:
    _LIBRARY.define(schema)
    return getattr(torch.ops.arraykit, schema.split("(", 1)[0]).default


def _impl(
    name: str,
    generic: Callable[..., Any],
    fake: Callable[..., Any],
    vmap: Callable[..., Any],
    tensors: int,
    cpu: Callable[..., Any] | None,
    cuda: str | None,
    everywhere: Callable[..., Any] | None,
) -> None:
    """Register a defined operator's device kernels, fake kernel and vmap rule.

    ``everywhere`` (torch's own kernel) takes half precision as it is; the
    formula is computed in float32 for it.
    """
    default = everywhere or _in_float32(generic, tensors)
    _LIBRARY.impl(name, default, "CompositeExplicitAutograd")
    if cpu is not None:
        _LIBRARY.impl(name, _or_else(cpu, default), "CPU")
    CUDA_KERNELS[name] = _on_cuda(cuda, default) if cuda is not None else default
    if cuda is not None:
        _LIBRARY.impl(name, CUDA_KERNELS[name], "CUDA")
    torch.library.register_fake(f"arraykit::{name}", fake, lib=_LIBRARY)
    torch.library.register_vmap(f"arraykit::{name}", vmap, lib=_LIBRARY)


def _or_else(kernel: Callable[..., Any], default: Callable[..., Any]) -> Callable[..., Any]:
    """An operator's kernel: ``kernel``, and ``default`` (the formula in torch operations)
    where it declines: the dispatcher's route, inside the operator. Its result is laid
    out as the fake kernel says (:func:`_laid_out`)."""

    def run(*args: Any) -> Any:
        result = kernel(*args)
        return default(*args) if result is None else _laid_out(result, args[0])

    return run


def _laid_out(result: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``result`` in the layout the fake kernels promise, which ``torch.compile`` checks:
    that of ``torch.empty_like(x)`` for a result of ``x``'s shape, else contiguous. A
    kernel over another axis may give a view of its rows moved back; that is copied."""
    if result.shape != x.shape:
        return result.contiguous()
    if result.stride() == x.stride() or (result.is_contiguous() and x.is_contiguous()):
        return result
    like = torch.empty_like(x)
    return result if result.stride() == like.stride() else like.copy_(result)


def _define(
    schema: str,
    formula: Callable[..., Any],
    fake: Callable[..., Any],
    vmap: Callable[..., Any],
    *,
    cpu: Callable[..., Any] | None = None,
    cuda: str | None = None,
    everywhere: Callable[..., Any] | None = None,
    differentiable: Callable[..., Any] | None = None,
) -> Any:
    """Register ``arraykit::<schema>`` with its kernels and Autograd kernel; return it.

    Where a derivative is wanted, the Autograd kernel computes ``formula`` in
    torch operations, or, for reverse mode alone, calls ``differentiable``.
    ``cpu``/``cuda`` serve those devices, ``everywhere`` the rest (by
    default the formula).
    """
    op = _op(schema)
    name = schema.split("(", 1)[0]
    tensors = schema.count("Tensor ")

    def generic(*args: Any) -> Any:
        return formula(*args, xp=xp)

    differentiated = _in_float32(generic, tensors)

    def autograd(keyset: Any, *args: Any) -> Any:
        inputs = args[:tensors]
        tangent = _tangent(inputs)
        recording = _recording(inputs)
        if recording and differentiable is not None and not (tangent or _inside_torch_func()):
            return differentiable(*args)
        if tangent or recording:
            out = differentiated(*args)
            # Under torch.func.jvp a Python float times a 0-d float32 tensor
            # has a float64 tangent (the value stays float32); a copying cast
            # brings the tangent back to the value's dtype.
            return out.to(out.dtype, copy=True) if out.ndim == 0 else out
        if not private.CAN_REDISPATCH:
            return differentiated(*args)
        with private.below_autograd():
            return op.redispatch(private.after_autograd(keyset), *args)

    _impl(name, generic, fake, vmap, tensors, cpu, cuda, everywhere)
    _LIBRARY.impl(name, autograd, "Autograd", with_keyset=True)
    return op


def _define_differentiable(
    schema: str,
    formula: Callable[..., Any],
    fake: Callable[..., Any],
    vmap: Callable[..., Any],
    setup: Callable[..., None],
    backward: Callable[..., Any],
    *,
    cpu: Callable[..., Any] | None = None,
    cuda: str | None = None,
    everywhere: Callable[..., Any] | None = None,
) -> Any:
    """Register ``arraykit::<schema>``: the primitive's values with a registered backward."""
    op = _op(schema)
    name = schema.split("(", 1)[0]

    def generic(*args: Any) -> Any:
        return formula(*args, xp=xp)

    _impl(name, generic, fake, vmap, schema.count("Tensor "), cpu, cuda, everywhere)
    torch.library.register_autograd(
        f"arraykit::{name}", backward, setup_context=setup, lib=_LIBRARY
    )
    return op


def _define_primitive(
    schema: str,
    formula: Callable[..., Any],
    fake: Callable[..., Any],
    vmap: Callable[[Callable[..., Any]], Callable[..., Any]],
    setup: Callable[..., None],
    backward: Callable[..., Any],
    *,
    cpu: Callable[..., Any] | None = None,
    cuda: str | None = None,
    everywhere: Callable[..., Any] | None = None,
) -> Any:
    """Register a primitive's two operators, ``arraykit::<name>`` (what the public
    function calls) and ``arraykit::<name>_differentiable`` (the same values with the
    registered ``backward``, which the first calls for a reverse-mode gradient), with
    the same kernels; return the first. ``vmap`` makes an operator's vmap rule from it."""
    name, arguments = schema.split("(", 1)
    differentiable = _define_differentiable(
        f"{name}_differentiable({arguments}",
        formula,
        fake,
        vmap(lambda *a: differentiable(*a)),
        setup,
        backward,
        cpu=cpu,
        cuda=cuda,
        everywhere=everywhere,
    )
    op = _define(
        schema,
        formula,
        fake,
        vmap(lambda *a: op(*a)),
        cpu=cpu,
        cuda=cuda,
        everywhere=everywhere,
        differentiable=differentiable,
    )
    return op


def _same_shape(x: torch.Tensor, *rest: Any) -> torch.Tensor:
    return torch.empty_like(x)


def _batched(info: Any, in_dims: Sequence[Any], tensors: Sequence[torch.Tensor]) -> list[Any]:
    """The tensors with their batch dimension first (an unbatched one broadcast)."""
    out = []
    for t, dim in zip(tensors, in_dims, strict=False):
        t = t.movedim(dim, 0) if dim is not None else t.unsqueeze(0)
        out.append(t.expand(info.batch_size, *t.shape[1:]))
    return out


def _elementwise_vmap(op: Callable[..., Any], tensors: int) -> Callable[..., Any]:
    """The vmap rule of an elementwise operator of ``tensors`` same-shaped tensors."""

    def rule(info: Any, in_dims: tuple[Any, ...], *args: Any) -> Any:
        if tensors == 1:
            return op(*args), in_dims[0]
        return op(*_batched(info, in_dims, args[:tensors]), *args[tensors:]), 0

    return rule


def _rows_vmap(op: Callable[..., Any], tensors: int) -> Callable[..., Any]:
    """The vmap rule of an operator on the rows (last axis) of ``tensors`` matrices."""

    def rule(info: Any, in_dims: tuple[Any, ...], *args: Any) -> Any:
        if all(d is None for d in in_dims[:tensors]):
            return op(*args), None
        batched = _batched(info, in_dims, args[:tensors])
        shape = batched[0].shape
        rows = [t.reshape(-1, shape[-1]) for t in batched]
        return op(*rows, *args[tensors:]).reshape(shape), 0

    return rule


def _axes_vmap(op: Callable[..., Any], tensors: int) -> Callable[..., Any]:
    """The vmap rule of an operator over ``axes`` (the argument after the tensors)."""

    def rule(info: Any, in_dims: tuple[Any, ...], *args: Any) -> Any:
        axes = args[tensors]
        if all(d is None for d in in_dims[:tensors]):
            return op(*args), None
        batched = _batched(info, in_dims, args[:tensors])
        return op(*batched, [a + 1 for a in axes], *args[tensors + 1 :]), 0

    return rule


# --- sigmoid ------------------------------------------------------------------------------

sigmoid_backward: Any = _define(
    "sigmoid_backward(Tensor g, Tensor x) -> Tensor",
    lambda g, x, xp: g * _formulas.sigmoid_derivative(x, xp=xp),
    _same_shape,
    _elementwise_vmap(lambda *a: sigmoid_backward(*a), 2),
    cuda="sigmoid_backward",
)


def _save_input(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
    ctx.save_for_backward(inputs[0])
    ctx.rest = inputs[1:]


def _own_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """``torch.sigmoid``, on a contiguous copy of a CPU tensor that is not contiguous.

    torch's CPU kernel rounds differently in its vector loop and in the
    scalar loop that takes what the vectors leave (short rows, gaps in
    memory): equal values would give different results by layout.
    """
    if not x.is_contiguous() and x.is_cpu:
        x = x.contiguous()
    return torch.sigmoid(x)


def _sigmoid_backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
    (x,) = ctx.saved_tensors
    return sigmoid_backward(grad, x)  # type: ignore[no-any-return]


_sigmoid: Any = _define_primitive(
    "sigmoid(Tensor x) -> Tensor",
    _formulas.sigmoid,
    _same_shape,
    lambda op: _elementwise_vmap(op, 1),
    _save_input,
    _sigmoid_backward,
    # torch's own kernel gives the value on every device, within the
    # contract; only its derivative, s·(1 − s), is not taken.
    everywhere=_own_sigmoid,
)


def sigmoid(x: torch.Tensor) -> torch.Tensor:
    return _own_sigmoid(x) if undifferentiated(x) else _sigmoid(x)


# --- sigmoid_derivative -------------------------------------------------------------------

sigmoid_derivative_backward: Any = _define(
    "sigmoid_derivative_backward(Tensor g, Tensor x) -> Tensor",
    lambda g, x, xp: g * _formulas.sigmoid_second_derivative(x, xp=xp),
    _same_shape,
    _elementwise_vmap(lambda *a: sigmoid_derivative_backward(*a), 2),
    cuda="sigmoid_derivative_backward",
)


def _sigmoid_derivative_backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
    (x,) = ctx.saved_tensors
    return sigmoid_derivative_backward(grad, x)  # type: ignore[no-any-return]


_SIGMOID_DERIVATIVE_CPU = _on_memory(
    "sigmoid_derivative", _through_numpy(_compiled.sigmoid_derivative)
)

_sigmoid_derivative: Any = _define_primitive(
    "sigmoid_derivative(Tensor x) -> Tensor",
    _formulas.sigmoid_derivative,
    _same_shape,
    lambda op: _elementwise_vmap(op, 1),
    _save_input,
    _sigmoid_derivative_backward,
    cpu=_SIGMOID_DERIVATIVE_CPU,
    cuda="sigmoid_derivative",
)


def sigmoid_derivative(x: torch.Tensor) -> torch.Tensor:
    result = _SIGMOID_DERIVATIVE_CPU(x) if direct(x) else None
    return _sigmoid_derivative(x) if result is None else result  # type: ignore[no-any-return]


# --- softmax ------------------------------------------------------------------------------


# The operator's int[] arrives as a list; the NumPy kernel wants the tuple of axes.
_SOFTMAX_NUMPY = _through_numpy(
    lambda x, axes, threads: _compiled.softmax(x, tuple(axes), threads=threads)
)
_SOFTMAX_ROWS = _on_memory("softmax_rows", _SOFTMAX_NUMPY, rows=True)


def _last_axis(x: torch.Tensor, axes: Sequence[int]) -> bool:
    """Whether ``axes`` (the public layer's: nonnegative) are ``x``'s last axis alone."""
    return len(axes) == 1 and axes[0] == x.ndim - 1


_SOFTMAX_ACROSS = _across("softmax_columns", _SOFTMAX_NUMPY)


def _SOFTMAX_CPU(x: torch.Tensor, axes: Sequence[int]) -> torch.Tensor:
    return (_SOFTMAX_ROWS if _last_axis(x, axes) else _SOFTMAX_ACROSS)(x, axes)  # type: ignore[no-any-return]


def _softmax_formula(x: torch.Tensor, axes: Sequence[int], xp: Any) -> torch.Tensor:
    return _formulas.softmax(x, tuple(axes), xp=xp)  # type: ignore[no-any-return]


softmax_backward_op: Any = _define(
    "softmax_backward(Tensor g, Tensor y, int[] axes) -> Tensor",
    lambda g, y, axes, xp: _formulas.softmax_backward(g, y, tuple(axes), xp=xp),
    _same_shape,
    _axes_vmap(lambda *a: softmax_backward_op(*a), 2),
    cuda="softmax_backward",
)


def _save_output(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
    ctx.save_for_backward(output)
    ctx.rest = inputs[1:]


def _softmax_backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
    (y,) = ctx.saved_tensors
    return softmax_backward_op(grad, y, *ctx.rest), None


_softmax: Any = _define_primitive(
    "softmax(Tensor x, int[] axes) -> Tensor",
    _softmax_formula,
    _same_shape,
    lambda op: _axes_vmap(op, 1),
    _save_output,
    _softmax_backward,
    cpu=_SOFTMAX_CPU,
    cuda="softmax",
)


def softmax_along(x: torch.Tensor, axis: int) -> torch.Tensor | None:
    """The softmax over one axis, for :func:`arraykit._dispatch.route` (eager CPU calls
    alone; None sends the rest through the entry checks to :func:`softmax`)."""
    axes = one_axis(axis, x.ndim)
    return None if axes is None or not direct(x) else _SOFTMAX_CPU(x, axes)


def softmax(x: torch.Tensor, axes: tuple[int, ...]) -> torch.Tensor:
    result = _SOFTMAX_CPU(x, axes) if direct(x) else None
    return _softmax(x, list(axes)) if result is None else result  # type: ignore[no-any-return]


# --- normalize_rows -----------------------------------------------------------------------

normalize_rows_backward: Any = _define(
    "normalize_rows_backward(Tensor g, Tensor x) -> Tensor",
    _formulas.normalize_rows_backward,
    _same_shape,
    _rows_vmap(lambda *a: normalize_rows_backward(*a), 2),
    cuda="normalize_rows_backward",
)


def _normalize_rows_backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
    (x,) = ctx.saved_tensors
    return normalize_rows_backward(grad, x)  # type: ignore[no-any-return]


_NORMALIZE_CPU = _on_memory("normalize_rows", _through_numpy(_compiled.normalize_rows), rows=True)

_normalize_rows: Any = _define_primitive(
    "normalize_rows(Tensor x) -> Tensor",
    _formulas.normalize_rows,
    _same_shape,
    lambda op: _rows_vmap(op, 1),
    _save_input,
    _normalize_rows_backward,
    cpu=_NORMALIZE_CPU,
    cuda="normalize_rows",
)


def normalize_rows(x: torch.Tensor) -> torch.Tensor:
    result = _NORMALIZE_CPU(x) if direct(x) else None
    return _normalize_rows(x) if result is None else result  # type: ignore[no-any-return]


# --- losses -------------------------------------------------------------------------------


def _loss_fake(yhat: torch.Tensor, y: torch.Tensor, reduction: str, power: int) -> torch.Tensor:
    return torch.empty_like(yhat) if reduction == "none" else yhat.new_empty(())


def _loss_vmap(op: Callable[..., Any]) -> Callable[..., Any]:
    def rule(
        info: Any, in_dims: tuple[Any, ...], yhat: torch.Tensor, y: torch.Tensor, *rest: Any
    ) -> Any:
        pair = _batched(info, in_dims, (yhat, y))
        if rest[0] == "none":
            return op(*pair, *rest), 0
        # A reduction per batch element; each goes through the operator itself.
        return torch.stack([op(a, b, *rest) for a, b in zip(*pair, strict=True)]), 0

    return rule


def _loss_backward_vmap_of(op: Callable[..., Any]) -> Callable[..., Any]:
    """The vmap rule of a loss's backward ``op(g, yhat, y, reduction, ...)``."""

    def rule(
        info: Any,
        in_dims: tuple[Any, ...],
        g: torch.Tensor,
        yhat: torch.Tensor,
        y: torch.Tensor,
        *rest: Any,
    ) -> Any:
        g, yhat, y = _batched(info, in_dims, (g, yhat, y))
        if rest[0] == "none":
            return op(g, yhat, y, *rest), 0
        return torch.stack([op(*one, *rest) for one in zip(g, yhat, y, strict=True)]), 0

    return rule


loss_backward: Any = _define(
    "loss_backward(Tensor g, Tensor yhat, Tensor y, str reduction, int power) -> Tensor",
    _formulas.loss_backward,
    lambda g, yhat, *rest: torch.empty_like(yhat),
    _loss_backward_vmap_of(lambda *a: loss_backward(*a)),
    cuda="loss_backward",
)


def _save_loss(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
    ctx.save_for_backward(*inputs[:2])
    ctx.rest = inputs[2:]


def _loss_backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:
    yhat, y = ctx.saved_tensors
    gradient = loss_backward(grad, yhat, y, *ctx.rest)
    first, second = ctx.needs_input_grad[:2]
    return (gradient if first else None, -gradient if second else None, None, None)


_LOSS_NUMPY = _through_numpy(_compiled.loss, tensors=2)


def _LOSS_CPU(
    yhat: torch.Tensor, y: torch.Tensor, reduction: str, power: int
) -> torch.Tensor | None:
    """The loss's CPU kernel: the compiled kernels on the tensors' own memory (see
    :func:`_memory`) where they can read both, of one dtype and shape, else through
    NumPy views; None where the plain sum needs the careful form."""
    kernels = _compiled.compiled
    a, b = _memory(yhat), _memory(y)
    if (
        kernels is not None
        and a is not None
        and b is not None
        and a[1] > 0
        and y.dtype == yhat.dtype
        and y.shape == yhat.shape
    ):
        n, kind = a[1], a[2]
        threads = torch.get_num_threads()
        if reduction == "none":
            out = np.empty(yhat.shape, dtype=kind)  # NumPy's allocation: see _on_memory
            if kernels.loss_elements(a, b, out, power, threads):
                return torch.from_numpy(out)
        else:
            total = kernels.loss_sum(a, b, power, threads)
            if total is not None:
                equal = lambda: bool(torch.equal(yhat, y))  # noqa: E731
                value = _compiled.reduced_loss(total, n, kind, power, reduction, equal)
                return None if value is None else torch.from_numpy(np.asarray(value, dtype=kind))
    return _LOSS_NUMPY(yhat, y, reduction, power)  # type: ignore[no-any-return]


_loss: Any = _define_primitive(
    "loss(Tensor yhat, Tensor y, str reduction, int power) -> Tensor",
    _formulas.loss,
    _loss_fake,
    _loss_vmap,
    _save_loss,
    _loss_backward,
    cpu=_LOSS_CPU,
    cuda="loss",
)


def l1_loss(yhat: torch.Tensor, y: torch.Tensor, reduction: str, power: int) -> torch.Tensor:
    result = _LOSS_CPU(yhat, y, reduction, power) if direct(yhat, y) else None
    return _loss(yhat, y, reduction, power) if result is None else result  # type: ignore[no-any-return]


l2_loss = l1_loss  # power selects the loss, as in the generic formula


# --- the logistic loss (binary_cross_entropy_with_logits) -------------------------------
# An operator as the losses': the compiled kernel with the logistic term on CPU, Triton's
# on CUDA, a registered backward (σ(z) − y without its cancellation); weights multiply
# its terms in torch operations.


def _logistic_cpu(z: torch.Tensor, y: torch.Tensor, reduction: str) -> torch.Tensor | None:
    return _LOSS_CPU(z, y, reduction, _compiled.LOGISTIC)


def _logistic_formula(z: torch.Tensor, y: torch.Tensor, reduction: str, xp: Any) -> Any:
    return _log_space.binary_cross_entropy_with_logits(z, y, reduction, None, xp=xp)


logistic_backward_op: Any = _define(
    "logistic_backward(Tensor g, Tensor z, Tensor y, str reduction) -> Tensor",
    _log_space.logistic_backward,
    lambda g, z, *rest: torch.empty_like(z),
    _loss_backward_vmap_of(lambda *a: logistic_backward_op(*a)),
    cuda="logistic_backward",
)


def _logistic_backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:
    z, y = ctx.saved_tensors
    (reduction,) = ctx.rest
    wanted_z, wanted_y = ctx.needs_input_grad[:2]
    dz = logistic_backward_op(grad, z, y, reduction) if wanted_z else None
    dy = -z * (grad / z.numel() if reduction == "mean" else grad) if wanted_y else None
    return dz, dy, None


_logistic: Any = _define_primitive(
    "logistic(Tensor z, Tensor y, str reduction) -> Tensor",
    _logistic_formula,
    lambda z, y, reduction: torch.empty_like(z) if reduction == "none" else z.new_empty(()),
    _loss_vmap,
    _save_loss,
    _logistic_backward,
    cpu=_logistic_cpu,
    cuda="logistic",
)


def binary_cross_entropy_with_logits(
    z: torch.Tensor, y: torch.Tensor, reduction: str, weights: torch.Tensor | None
) -> torch.Tensor:
    if weights is None:
        result = _logistic_cpu(z, y, reduction) if direct(z, y) else None
        return _logistic(z, y, reduction) if result is None else result  # type: ignore[no-any-return]
    wide = _weighing_dtype(z)
    terms = _logistic(z.to(wide), y.to(wide), "none") * weights.to(wide)
    value = _log_space.reduce(terms, reduction, wide, xp=xp)
    return value.to(z.dtype)  # type: ignore[no-any-return]


def binary_cross_entropy(
    p: torch.Tensor, y: torch.Tensor, reduction: str, weights: torch.Tensor | None
) -> torch.Tensor | None:
    """Eager CPU calls that record no gradient: the losses' compiled kernel with the
    binary cross-entropy's term. Elsewhere (autograd, transforms, CUDA, weights), the
    formula in torch operations."""
    if weights is None and direct(p, y):
        return _LOSS_CPU(p, y, reduction, _compiled.PROBABILITIES)
    return None


def _weighing_dtype(x: torch.Tensor) -> torch.dtype:
    """Where weighted losses are summed: float32 for half precision (whose weighted sums
    overflow), else ``x``'s dtype."""
    return torch.float32 if x.dtype in _HALF else x.dtype


# --- the line's Adagrad -------------------------------------------------------------------


def _line_adagrad_fake(
    moments: torch.Tensor, start: torch.Tensor, steps: int, every: int, *options: float
) -> torch.Tensor:
    return start.new_empty((steps // every + 2, 2))


def _line_adagrad_vmap(
    info: Any, in_dims: tuple[Any, ...], moments: torch.Tensor, start: torch.Tensor, *rest: Any
) -> Any:
    pair = _batched(info, in_dims, (moments, start))
    return torch.stack([line_adagrad(m, s, *rest) for m, s in zip(*pair, strict=True)]), 0


line_adagrad: Any = _define(
    "line_adagrad(Tensor moments, Tensor start, int steps, int every, float lr, float eps, "
    "float initial, float decay, float penalty) -> Tensor",
    _adagrad.line_adagrad_stepped,
    _line_adagrad_fake,
    _line_adagrad_vmap,
    # Not differentiated: on every device, the loop on the host (float32 and
    # float64; other dtypes step in torch operations), fed by the moments
    # copied there once.
    everywhere=lambda *args: _adagrad.line_adagrad(*args, xp=xp),
)


# --- optimizers: each operation of a step one multi-tensor launch for every parameter ------


def _foreach_serves(tensors: Sequence[torch.Tensor]) -> bool:
    """Whether torch's multi-tensor operations can take this step: no derivative wanted
    through it (the per-parameter formula serves those, and torch.func). Tensors of
    several devices or dtypes they take too, a kernel per tensor where the lists mix."""
    if _inside_torch_func() or (private.forward_levels() and _tangent(tensors)):
        return False
    # Read tensor by tensor: torch.compile traces this (it is the caller's
    # code, not a kernel), and cannot trace torch's private _any_requires_grad.
    return not (torch.is_grad_enabled() and any(t.requires_grad for t in tensors))


def _one(c: Any) -> float | None:
    """``c`` as one Python number for a multi-tensor launch (a list of equal ones is one),
    or None: per-leaf values that differ, or a tensor, take the per-leaf operations."""
    if isinstance(c, list):
        return c[0] if c and isinstance(c[0], int | float) and all(v == c[0] for v in c) else None
    return c if isinstance(c, int | float) else None


def _launched(generic: str, name: str, keyword: str | None = None, scalar: bool = True) -> Any:
    """A :class:`Foreach` operation and its ``_`` form: torch's ``_foreach_<name>`` and
    ``_foreach_<name>_`` (looked up in :mod:`_torch_private` at each call, where a test
    may take them away), with the last argument a scalar given as ``keyword`` (or
    positionally), or none; the per-leaf form where that scalar differs by leaf."""

    def run(suffix: str, xs: list[Any], lists: tuple[Any, ...], value: Any) -> Any:
        function = getattr(private, f"foreach_{name}{suffix}")
        if not scalar:
            return function(xs, *lists)
        return function(xs, *lists, **{keyword: value}) if keyword else function(xs, *lists, value)

    def split(rest: tuple[Any, ...]) -> tuple[tuple[Any, ...], Any, bool]:
        if not scalar:
            return rest, None, True
        value = _one(rest[-1])
        return rest[:-1], value, value is not None

    def new(self: Foreach, xs: list[Any], *rest: Any) -> list[Any]:
        lists, value, together = split(rest)
        if not together:
            return self._new(getattr(_updates.Leafwise, generic)(xs, *rest))
        return self._new(run("", xs, lists, value))

    def written(self: Foreach, xs: list[Any], *rest: Any) -> list[Any]:
        lists, value, together = split(rest)
        if not (together and self._mine(xs)):
            return new(self, xs, *rest)
        run("_", xs, lists, value)
        return xs

    return new, written


class Foreach(_updates.Leafwise):
    """:class:`arraykit._updates.Leafwise` as torch's multi-tensor (foreach) launches, one
    an operation for every parameter (as ``torch.optim``'s ``foreach=True``); an
    operation with per-leaf scalars that differ takes the per-leaf form.

    One table serves one step. An operation with a trailing ``_`` writes into its
    first list where that list is the table's: a temporary it made during the
    step, or one of ``writable`` (the parameters and state buffers that
    ``step_in_place`` steps, which torch.optim also updates in place).
    """

    def __init__(self, writable: Sequence[list[torch.Tensor]] = ()) -> None:
        self._owned: list[list[torch.Tensor]] = list(writable)

    def _mine(self, xs: list[torch.Tensor]) -> bool:
        return any(xs is owned for owned in self._owned)

    def _new(self, out: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        made = list(out)
        self._owned.append(made)
        return made

    add, add_ = _launched("add", "add", keyword="alpha")
    add_scalar, add_scalar_ = _launched("add_scalar", "add")
    scale, scale_ = _launched("scale", "mul")
    divide, divide_ = _launched("divide", "div")
    addcmul, addcmul_ = _launched("addcmul", "addcmul", keyword="value")
    addcdiv, addcdiv_ = _launched("addcdiv", "addcdiv", keyword="value")
    lerp, lerp_ = _launched("lerp", "lerp")
    sqrt, sqrt_ = _launched("sqrt", "sqrt", scalar=False)
    maximum, maximum_ = _launched("maximum", "maximum", scalar=False)

    def clamp_negative(self, xs: list[Any]) -> list[Any]:  # type: ignore[override]
        return self._new(private.foreach_clamp_min(xs, 0.0))  # NaN stays NaN

    def clamp_negative_(self, xs: list[Any]) -> list[Any]:  # type: ignore[override]
        if not self._mine(xs):
            return self.clamp_negative(xs)
        private.foreach_clamp_min_(xs, 0.0)
        return xs


def leafwise(
    tensors: Sequence[torch.Tensor], writable: Sequence[list[torch.Tensor]]
) -> Foreach | None:
    """The multi-tensor operations for one step of ``tensors``, writing into the lists
    ``writable`` where the step allows, or None where they cannot serve."""
    if not all(isinstance(t, torch.Tensor) for t in tensors) or not _foreach_serves(tensors):
        return None
    return Foreach(writable)


# --- softplus: an operator; the log-sigmoid: torch's own --------------------------------

softplus_backward_op: Any = _define(
    "softplus_backward(Tensor g, Tensor x) -> Tensor",
    lambda g, x, xp: g * _formulas.sigmoid(x, xp=xp),
    _same_shape,
    _elementwise_vmap(lambda *a: softplus_backward_op(*a), 2),
    # σ by torch's own kernel, within the contract (the sigmoid's fast path).
    cpu=lambda g, x: g * _own_sigmoid(x),
    cuda="softplus_backward",
)


def _softplus_backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
    (x,) = ctx.saved_tensors
    return softplus_backward_op(grad, x)  # type: ignore[no-any-return]


_SOFTPLUS_CPU = _on_memory("softplus", _through_numpy(_compiled.softplus))

_softplus: Any = _define_primitive(
    "softplus(Tensor x) -> Tensor",
    _log_space.softplus,
    _same_shape,
    lambda op: _elementwise_vmap(op, 1),
    _save_input,
    _softplus_backward,
    cpu=_SOFTPLUS_CPU,
    cuda="softplus",
)


def softplus(x: torch.Tensor) -> torch.Tensor:
    """The compiled kernel on CPU, one Triton launch on CUDA, a registered backward
    ``g·σ(x)`` (``F.softplus`` returns ``x`` itself past its threshold of 20)."""
    result = _SOFTPLUS_CPU(x) if direct(x) else None
    return _softplus(x) if result is None else result  # type: ignore[no-any-return]


def log_sigmoid(x: torch.Tensor) -> torch.Tensor | None:
    """``F.logsigmoid``: within the contract on every device, and so is its derivative
    ``σ(−x)`` in both modes (docs/numerics.md); one launch on CUDA. Declined inside
    ``torch.func`` transforms, whose batching of its forward-mode rule resizes an
    output (a warning, deprecated behaviour): the formula serves there."""
    if _inside_torch_func():
        return None
    return torch.nn.functional.logsigmoid(x)


# --- logsumexp and the log-softmax: operators, as softmax's -------------------------------
# Their CPU kernels are the compiled rows' kernels, their CUDA kernels Triton's; their
# backward is the softmax's (from the input, never ``exp`` of a rounded output), by the
# CPU kernel or Triton's, and differentiable again as formulas where a higher derivative
# is wanted.


_LOG_SOFTMAX_NUMPY = _through_numpy(
    lambda x, axes, threads: _compiled.log_softmax(x, tuple(axes), threads=threads)
)
_LOG_SOFTMAX_ROWS = _on_memory("log_softmax_rows", _LOG_SOFTMAX_NUMPY, rows=True)


def _logsumexp_numpy(
    x: np.ndarray, axes: Sequence[int], keepdim: bool, threads: int
) -> np.ndarray | None:
    out = _compiled.logsumexp(x, tuple(axes), threads=threads)
    return out if out is None or not keepdim else np.expand_dims(out, tuple(axes))


_LOGSUMEXP_NUMPY = _through_numpy(_logsumexp_numpy)
_LOGSUMEXP_ROWS = _on_memory("logsumexp_rows", _LOGSUMEXP_NUMPY, rows=True, reduced=True)


_LOG_SOFTMAX_ACROSS = _across("log_softmax_columns", _LOG_SOFTMAX_NUMPY)
_LOGSUMEXP_ACROSS = _across("logsumexp_columns", _LOGSUMEXP_NUMPY, reduced=True)


def _LOG_SOFTMAX_CPU(x: torch.Tensor, axes: Sequence[int]) -> torch.Tensor | None:
    return (_LOG_SOFTMAX_ROWS if _last_axis(x, axes) else _LOG_SOFTMAX_ACROSS)(x, axes)  # type: ignore[no-any-return]


def _LOGSUMEXP_CPU(x: torch.Tensor, axes: Sequence[int], keepdim: bool) -> torch.Tensor | None:
    return (_LOGSUMEXP_ROWS if _last_axis(x, axes) else _LOGSUMEXP_ACROSS)(x, axes, keepdim)  # type: ignore[no-any-return]


def _softmax_then(backward: Callable[..., Any]) -> Callable[..., Any]:
    """A backward's CPU kernel: ``backward(g, p, axes, …)`` with ``p`` the softmax of the
    input by its CPU kernel; None (the formula) where that declines."""

    def cpu(g: torch.Tensor, x: torch.Tensor, axes: Sequence[int], *rest: Any) -> Any:
        p = _SOFTMAX_CPU(x, axes)
        return None if p is None else backward(g, p, tuple(axes), *rest, xp=xp)

    return _in_float32(cpu, 2)


def _log_softmax_backward_formula(
    g: torch.Tensor, x: torch.Tensor, axes: Sequence[int], xp: Any
) -> torch.Tensor:
    p = _formulas.softmax(x, tuple(axes), xp=xp)
    return _log_space.log_softmax_backward(g, p, tuple(axes), xp=xp)  # type: ignore[no-any-return]


def _logsumexp_backward_formula(
    g: torch.Tensor, x: torch.Tensor, axes: Sequence[int], keepdim: bool, xp: Any
) -> torch.Tensor:
    p = _formulas.softmax(x, tuple(axes), xp=xp)
    return _log_space.logsumexp_backward(g, p, tuple(axes), keepdim, xp=xp)  # type: ignore[no-any-return]


log_softmax_backward_op: Any = _define(
    "log_softmax_backward(Tensor g, Tensor x, int[] axes) -> Tensor",
    _log_softmax_backward_formula,
    _same_shape,
    _axes_vmap(lambda *a: log_softmax_backward_op(*a), 2),
    cpu=_softmax_then(_log_space.log_softmax_backward),
    cuda="log_softmax_backward",
)

logsumexp_backward_op: Any = _define(
    "logsumexp_backward(Tensor g, Tensor x, int[] axes, bool keepdim) -> Tensor",
    _logsumexp_backward_formula,
    # Laid out as _laid_out lays out a result of another shape than the first argument's.
    lambda g, x, *rest: torch.empty_like(g) if g.shape == x.shape else x.new_empty(x.shape),
    _axes_vmap(lambda *a: logsumexp_backward_op(*a), 2),
    cpu=_softmax_then(_log_space.logsumexp_backward),
    cuda="logsumexp_backward",
)


def _log_softmax_backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
    (x,) = ctx.saved_tensors
    return log_softmax_backward_op(grad, x, *ctx.rest), None


def _logsumexp_backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
    (x,) = ctx.saved_tensors
    return logsumexp_backward_op(grad, x, *ctx.rest), None, None


def _log_softmax_formula(x: torch.Tensor, axes: Sequence[int], xp: Any) -> torch.Tensor:
    return _log_space.log_softmax(x, tuple(axes), xp=xp)  # type: ignore[no-any-return]


def _logsumexp_formula(
    x: torch.Tensor, axes: Sequence[int], keepdim: bool, xp: Any
) -> torch.Tensor:
    return _log_space.logsumexp(x, tuple(axes), keepdim, xp=xp)  # type: ignore[no-any-return]


def _logsumexp_fake(x: torch.Tensor, axes: Sequence[int], keepdim: bool) -> torch.Tensor:
    shape = [
        (1 if any(i == a for a in axes) else n)
        for i, n in enumerate(x.shape)
        if keepdim or all(i != a for a in axes)
    ]
    return x.new_empty(shape)


_log_softmax: Any = _define_primitive(
    "log_softmax(Tensor x, int[] axes) -> Tensor",
    _log_softmax_formula,
    _same_shape,
    lambda op: _axes_vmap(op, 1),
    _save_input,
    _log_softmax_backward,
    cpu=_LOG_SOFTMAX_CPU,
    cuda="log_softmax",
)

_logsumexp: Any = _define_primitive(
    "logsumexp(Tensor x, int[] axes, bool keepdim) -> Tensor",
    _logsumexp_formula,
    _logsumexp_fake,
    lambda op: _axes_vmap(op, 1),
    _save_input,
    _logsumexp_backward,
    cpu=_LOGSUMEXP_CPU,
    cuda="logsumexp",
)


def log_softmax(x: torch.Tensor, axes: tuple[int, ...]) -> torch.Tensor:
    result = _LOG_SOFTMAX_CPU(x, axes) if direct(x) else None
    return _log_softmax(x, list(axes)) if result is None else result  # type: ignore[no-any-return]


def log_softmax_along(x: torch.Tensor, axis: int) -> torch.Tensor | None:
    """The log-softmax over one axis, for :func:`arraykit._dispatch.route` (eager CPU
    calls alone; None sends the rest through the entry checks to :func:`log_softmax`)."""
    axes = one_axis(axis, x.ndim)
    return None if axes is None or not direct(x) else _LOG_SOFTMAX_CPU(x, axes)


def logsumexp_along(x: torch.Tensor, axis: int, keepdims: bool) -> torch.Tensor | None:
    """logsumexp over one axis, as :func:`log_softmax_along`."""
    axes = one_axis(axis, x.ndim)
    return None if axes is None or not direct(x) else _LOGSUMEXP_CPU(x, axes, keepdims)


def logsumexp(x: torch.Tensor, axes: tuple[int, ...], keepdims: bool) -> torch.Tensor:
    result = _LOGSUMEXP_CPU(x, axes, keepdims) if direct(x) else None
    return _logsumexp(x, list(axes), keepdims) if result is None else result  # type: ignore[no-any-return]


# --- the cross-entropy of class indices: an operator for the unweighted losses ------------
# Its CPU kernel the compiled rows' kernel (through NumPy's path), its CUDA kernel Triton's
# (one launch, two for a sum or mean); its backward the softmax with the label's entry
# minus the others' sum. Weights multiply its losses in torch operations, whose autograd
# then also gives their gradient.


def _cross_entropy_numpy(
    logits: np.ndarray, target: np.ndarray, axis: int, reduction: str, threads: int
) -> np.ndarray | None:
    from . import numpy as numpy_paths

    return numpy_paths.cross_entropy(logits, target, axis, reduction, None)


_CROSS_ENTROPY_CPU = _through_numpy(_cross_entropy_numpy, tensors=2)


def _cross_entropy_backward_cpu(
    g: torch.Tensor, logits: torch.Tensor, target: torch.Tensor, axis: int, reduction: str
) -> torch.Tensor | None:
    p = _SOFTMAX_CPU(logits, (axis,))
    if p is None:
        return None
    return _log_space.cross_entropy_backward(g, p, target, axis, reduction, xp=xp)  # type: ignore[no-any-return]


def _cross_entropy_backward_formula(
    g: torch.Tensor,
    logits: torch.Tensor,
    target: torch.Tensor,
    axis: int,
    reduction: str,
    xp: Any,
) -> torch.Tensor:
    p = _formulas.softmax(logits, (axis,), xp=xp)
    return _log_space.cross_entropy_backward(g, p, target, axis, reduction, xp=xp)  # type: ignore[no-any-return]


def _cross_entropy_formula(
    logits: torch.Tensor, target: torch.Tensor, axis: int, reduction: str, xp: Any
) -> torch.Tensor:
    return _log_space.cross_entropy_indices(logits, target, axis, reduction, None, xp=xp)  # type: ignore[no-any-return]


def _cross_entropy_fake(
    logits: torch.Tensor, target: torch.Tensor, axis: int, reduction: str
) -> torch.Tensor:
    return logits.new_empty(target.shape if reduction == "none" else ())


def _cross_entropy_vmap(op: Callable[..., Any]) -> Callable[..., Any]:
    def rule(
        info: Any,
        in_dims: tuple[Any, ...],
        logits: torch.Tensor,
        target: torch.Tensor,
        axis: int,
        reduction: str,
    ) -> Any:
        pair = _batched(info, in_dims, (logits, target))
        if reduction == "none":
            return op(*pair, axis + 1, reduction), 0
        return torch.stack([op(a, b, axis, reduction) for a, b in zip(*pair, strict=True)]), 0

    return rule


def _cross_entropy_backward_vmap(
    info: Any,
    in_dims: tuple[Any, ...],
    g: torch.Tensor,
    logits: torch.Tensor,
    target: torch.Tensor,
    axis: int,
    reduction: str,
) -> Any:
    g, logits, target = _batched(info, in_dims, (g, logits, target))
    if reduction == "none":
        return cross_entropy_backward_op(g, logits, target, axis + 1, reduction), 0
    parts = [
        cross_entropy_backward_op(*one, axis, reduction)
        for one in zip(g, logits, target, strict=True)
    ]
    return torch.stack(parts), 0


cross_entropy_backward_op: Any = _define(
    "cross_entropy_backward(Tensor g, Tensor logits, Tensor target, int axis, str reduction) "
    "-> Tensor",
    _cross_entropy_backward_formula,
    lambda g, logits, *rest: logits.new_empty(logits.shape),  # as _laid_out: contiguous
    _cross_entropy_backward_vmap,
    cpu=_in_float32(_cross_entropy_backward_cpu, 2),
    cuda="cross_entropy_backward",
)


def _save_cross_entropy(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
    ctx.save_for_backward(*inputs[:2])
    ctx.rest = inputs[2:]


def _cross_entropy_backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:
    logits, target = ctx.saved_tensors
    return cross_entropy_backward_op(grad, logits, target, *ctx.rest), None, None, None


_cross_entropy: Any = _define_primitive(
    "cross_entropy(Tensor logits, Tensor target, int axis, str reduction) -> Tensor",
    _cross_entropy_formula,
    _cross_entropy_fake,
    _cross_entropy_vmap,
    _save_cross_entropy,
    _cross_entropy_backward,
    cpu=_CROSS_ENTROPY_CPU,
    cuda="cross_entropy",
)


def cross_entropy_indices(
    logits: torch.Tensor, target: torch.Tensor, axis: int, reduction: str
) -> torch.Tensor | None:
    """The unweighted cross-entropy of class indices (int64) along ``axis``, for
    :func:`arraykit._dispatch.route`, on eager CPU calls: over the last axis by the
    kernel that reads the labels (it checks their range, declining any outside) on
    the logits' memory as it is, or their NumPy view where strided; other axes by
    the NumPy path's kernels on the views. None where those decline or the arguments
    need the entry checks (then :func:`cross_entropy`)."""
    if (
        type(target) is not torch.Tensor
        or target.dtype is not torch.int64
        or not -logits.ndim <= axis < logits.ndim
    ):
        return None
    axis %= logits.ndim
    if target.shape != logits.shape[:axis] + logits.shape[axis + 1 :] or not direct(logits, target):
        return None
    from . import numpy as numpy_paths

    kind = _KINDS.get(logits.dtype)
    kernel = getattr(_compiled.compiled, "cross_entropy_rows", None)
    if axis != logits.ndim - 1 or not target.is_contiguous() or kind is None or kernel is None:
        out = numpy_paths.cross_entropy_indices(
            _numpy_view(logits), _numpy_view(target), axis, reduction
        )
        return None if out is None else torch.from_numpy(np.asarray(out))
    memory = _memory(logits)
    losses = np.empty(target.shape, dtype=kind)
    labels = (target.data_ptr(), target.numel(), "q")
    source = _numpy_view(logits) if memory is None else memory
    if not kernel(source, labels, losses, logits.shape[-1], torch.get_num_threads()):
        return None
    return torch.from_numpy(np.asarray(numpy_paths.nonnegative_reduced(losses, reduction)))


def cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    axis: int,
    reduction: str,
    weights: torch.Tensor | None,
) -> torch.Tensor | None:
    tensors = (logits, target) if weights is None else (logits, target, weights)
    if logits.dtype not in _HALF and direct(*tensors):
        from . import numpy as numpy_paths

        out = numpy_paths.cross_entropy(
            _numpy_view(logits),
            _numpy_view(target),
            axis,
            reduction,
            None if weights is None else _numpy_view(weights),
        )
        if out is not None:
            return torch.from_numpy(np.asarray(out))
    if weights is None:
        return _cross_entropy(logits, target, axis, reduction)  # type: ignore[no-any-return]
    wide = _weighing_dtype(logits)
    terms = _cross_entropy(logits.to(wide), target, axis, "none") * weights.to(wide)
    value = _log_space.reduce(terms, reduction, wide, xp=xp)
    return value.to(logits.dtype)  # type: ignore[no-any-return]
