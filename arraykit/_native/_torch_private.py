"""torch's private names that arraykit uses, each with the public behaviour it falls back on.

A torch release may rename or drop any of them. Where one is missing, the
fallback keeps every call right: it either computes the same with public
operations (slower: a loop where torch had one multi-tensor launch) or
answers the question conservatively ("a transform may be active"), which
sends calls down the dispatcher's general route instead of a shortcut.
``tests/test_robustness.py`` deletes each name in turn and checks the values.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import nullcontext
from typing import Any

import torch
import torch.autograd.forward_ad as forward_ad


def _public_foreach(name: str) -> Callable[..., Any]:
    """``torch._foreach_<name>`` as a loop of the public ``Tensor.<name>`` over the lists
    (a scalar argument goes to every tensor)."""

    def each(first: Sequence[torch.Tensor], *args: Any, **kw: Any) -> Any:
        columns = [a if isinstance(a, list | tuple) else [a] * len(first) for a in args]
        results = [
            getattr(t, name)(*others, **kw) for t, *others in zip(first, *columns, strict=True)
        ]
        return None if name.endswith("_") else results

    return each


def _maximum_(tensors: Sequence[torch.Tensor], others: Sequence[torch.Tensor]) -> None:
    for t, other in zip(tensors, others, strict=True):
        torch.maximum(t, other, out=t)


FALLBACKS: dict[str, Any] = {
    "_C._any_requires_grad": lambda *tensors: any(t.requires_grad for t in tensors),
    "_C._are_functorch_transforms_active": lambda: True,
    "_C._is_torch_function_mode_enabled": lambda: True,
    "_C._len_torch_dispatch_stack": lambda: 1,
    "_C._get_tracing_state": lambda: True if torch.jit.is_tracing() else None,  # type: ignore[attr-defined, no-untyped-call]
    "_C._functorch.is_functorch_wrapped_tensor": lambda tensor: True,
    "_C._AutoDispatchBelowAutograd": None,  # with the keyset below: the formula serves
    "_C._after_autograd_keyset": None,
    "_foreach_add": _public_foreach("add"),
    "_foreach_add_": _public_foreach("add_"),
    "_foreach_mul_": _public_foreach("mul_"),
    "_foreach_addcdiv_": _public_foreach("addcdiv_"),
    "_foreach_div_": _public_foreach("div_"),
    "_foreach_addcmul_": _public_foreach("addcmul_"),
    "_foreach_lerp_": _public_foreach("lerp_"),
    "_foreach_sqrt_": _public_foreach("sqrt_"),
    "_foreach_maximum_": _maximum_,
    "_foreach_clamp_min_": _public_foreach("clamp_min_"),
    "_foreach_mul": _public_foreach("mul"),
    "_foreach_div": _public_foreach("div"),
    "_foreach_lerp": _public_foreach("lerp"),
    "_foreach_maximum": _public_foreach("maximum"),
    "_foreach_clamp_min": _public_foreach("clamp_min"),
    "_foreach_addcmul": _public_foreach("addcmul"),
    "_foreach_addcdiv": _public_foreach("addcdiv"),
    "_foreach_sqrt": _public_foreach("sqrt"),
    "_foreach_copy_": _public_foreach("copy_"),
}
"""Each private name under ``torch`` (dotted), and what stands in for it when absent."""


def bound(path: str) -> Any:
    """``torch.<path>``, or its fallback from :data:`FALLBACKS` where this torch lacks it."""
    value: Any = torch
    try:
        for part in path.split("."):
            value = getattr(value, part)
    except AttributeError:
        return FALLBACKS[path]
    return value


any_requires_grad = bound("_C._any_requires_grad")
transforms_active = bound("_C._are_functorch_transforms_active")
function_modes = bound("_C._is_torch_function_mode_enabled")
dispatch_modes = bound("_C._len_torch_dispatch_stack")
tracing_state = bound("_C._get_tracing_state")
is_wrapped = bound("_C._functorch.is_functorch_wrapped_tensor")
foreach_add = bound("_foreach_add")
foreach_addcmul = bound("_foreach_addcmul")
foreach_addcdiv = bound("_foreach_addcdiv")
foreach_sqrt = bound("_foreach_sqrt")
foreach_copy_ = bound("_foreach_copy_")
foreach_mul = bound("_foreach_mul")
foreach_add_ = bound("_foreach_add_")
foreach_mul_ = bound("_foreach_mul_")
foreach_addcdiv_ = bound("_foreach_addcdiv_")
foreach_div_ = bound("_foreach_div_")
foreach_addcmul_ = bound("_foreach_addcmul_")
foreach_lerp_ = bound("_foreach_lerp_")
foreach_sqrt_ = bound("_foreach_sqrt_")
foreach_maximum_ = bound("_foreach_maximum_")
foreach_clamp_min_ = bound("_foreach_clamp_min_")
foreach_div = bound("_foreach_div")
foreach_lerp = bound("_foreach_lerp")
foreach_maximum = bound("_foreach_maximum")
foreach_clamp_min = bound("_foreach_clamp_min")

_below_autograd = bound("_C._AutoDispatchBelowAutograd")
_after_autograd = bound("_C._after_autograd_keyset")
CAN_REDISPATCH = _below_autograd is not None and _after_autograd is not None
"""Whether an Autograd kernel can hand a call to the kernels below autograd; without it
the formula in torch operations computes the call there."""


def below_autograd() -> Any:
    """A context in which the dispatcher skips autograd (see :data:`CAN_REDISPATCH`)."""
    return _below_autograd() if CAN_REDISPATCH else nullcontext()


def after_autograd(keyset: Any) -> Any:
    """The dispatch keys below autograd within ``keyset``."""
    return keyset & _after_autograd


_LEVEL_KNOWN = hasattr(forward_ad, "_current_level")  # the forward-mode level, -1 for none
_is_compiling = torch.compiler.is_compiling


def forward_levels() -> bool:
    """Whether a forward-mode level is open (or torch does not say): tensors may carry
    tangents."""
    return not _LEVEL_KNOWN or forward_ad._current_level >= 0


def untransformed() -> bool:
    """Outside ``torch.compile``, export, tracing, ``torch.func`` transforms and forward-mode
    levels: an eager call, whose tensors say all there is to know about them. (Where torch
    does not say whether a transform or level is in force, one is assumed: False.)"""
    return not (
        _is_compiling()  # first: dynamo folds it, and traces nothing after
        or transforms_active()
        or not _LEVEL_KNOWN
        or forward_ad._current_level >= 0
        or tracing_state() is not None
    )
