"""Dask fast paths: each block through its own backend's kernels, in one pass.

The generic formulas already run on Dask, as graphs of one task per operation
and block that Dask fuses. Two things make them the wrong shape for data
larger than memory:

* every operation on a block is a separate call into the block's library,
  with a full-size temporary each; handing the whole block to arraykit's
  kernel for that library (NumPy's cache-blocked ones, or the generic formula
  on CuPy blocks) does the same work in one pass over the block;
* the losses scale the errors by their global maximum before summing, so
  every block would be needed twice, with the whole array held (or spilled)
  in between. Here each block yields ``(scale, scaled sum)`` and the pairs
  are merged up a tree, exactly: one pass, bounded memory.

Row-wise functions take the block path when each block holds whole rows
(whole slices along ``axis`` for softmax); a row split across blocks goes
through the generic formula, whose row reductions Dask carries across blocks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import array_api_compat
import dask.array as da
from dask.array.utils import meta_from_array

from .. import _formulas
from .._array_api import describe, namespace_of
from . import _eager


def _in_block(name: str, generic: Callable[..., Any], block: Any, *args: Any) -> Any:
    """``name`` on one block, through the block backend's fast path if it has one."""
    return _eager.dispatch(namespace_of(block), name, generic, block, *args)


def _blockwise(name: str, generic: Callable[..., Any], x: Any, *args: Any) -> Any:
    # partial of module-level functions: pickled by reference to the workers.
    return da.map_blocks(
        partial(_in_block, name, generic), x, *args, dtype=x.dtype, meta=meta_from_array(x)
    )


def _whole(x: Any, axes: Sequence[int]) -> bool:
    """Whether every block spans all of ``axes``."""
    return all(len(x.chunks[axis]) == 1 for axis in axes)


def sigmoid(x: Any) -> Any:
    return _blockwise("sigmoid", _formulas.sigmoid, x)


def sigmoid_derivative(x: Any) -> Any:
    return _blockwise("sigmoid_derivative", _formulas.sigmoid_derivative, x)


def softmax(x: Any, axes: tuple[int, ...]) -> Any:
    if _whole(x, axes):
        return _blockwise("softmax", _formulas.softmax, x, axes)
    _require_known_chunks(x, "x", "split along the softmax axis")
    return None  # split rows: the generic formula, whose reductions Dask spans


def normalize_rows(x: Any) -> Any:
    if _whole(x, (1,)):
        return _blockwise("normalize_rows", _formulas.normalize_rows, x)
    _require_known_chunks(x, "x", "split within rows")
    return None  # split rows: the generic formula, whose reductions Dask spans


def _block_sum(yhat: Any, y: Any, power: int) -> tuple[Any, Any, int]:
    """``(scale, scaled sum, count)`` of one block (blocks may be empty)."""
    block_xp = namespace_of(yhat)
    count = math.prod(yhat.shape)
    if count == 0:
        one = block_xp.ones((), dtype=yhat.dtype, device=array_api_compat.device(yhat))
        return one, one * 0, 0
    scale, total = _formulas.scaled_sum(yhat, y, power, xp=block_xp)
    return scale, total, count


def _flatten(nested: Any) -> list[Any]:
    """The triples in Dask's nested lists of block results (one level per axis)."""
    if isinstance(nested, tuple):
        return [nested]
    return [triple for item in nested for triple in _flatten(item)]


def _merge(nested: Any, axis: Any = None, keepdims: bool = False, *, power: int) -> Any:
    triples = _flatten(nested)
    block_xp = namespace_of(triples[0][1])
    scale, total = _formulas.merge_scaled_sums([(s, t) for s, t, _ in triples], power, xp=block_xp)
    return scale, total, sum(n for _, _, n in triples)


def _finish(
    nested: Any, axis: Any = None, keepdims: bool = False, *, power: int, mean: bool
) -> Any:
    scale, total, count = _merge(nested, power=power)
    block_xp = namespace_of(total)
    if mean:
        if count == 0:  # the mean of nothing, without NumPy's 0/0 warning
            return block_xp.full((), math.nan, dtype=total.dtype)
        total = total / count  # counted as the blocks were: sizes may be unknown till now
    return _formulas.unscale(total, scale, power, xp=block_xp)


def _pass_through(triple: Any, axis: Any = None, keepdims: bool = False) -> Any:
    return triple


def l1_loss(yhat: Any, y: Any, reduction: str, power: int) -> Any:
    if y.chunks != yhat.chunks:  # blocks are paired by index: cut them alike
        _require_known_chunks(yhat, "yhat", "chunked like y")
        _require_known_chunks(y, "y", "chunked like yhat")
        y = y.rechunk(yhat.chunks)
    if reduction == "none":
        name = ("l1_loss", "l2_loss")[power - 1]
        return _blockwise(name, _formulas.loss, yhat, y, reduction, power)
    index = tuple(range(yhat.ndim))
    # One (scale, sum, count) triple per block; Dask keeps such non-array
    # block results as they are and hands them to _merge in nested lists.
    triples = da.blockwise(
        _block_sum,
        index,
        yhat,
        index,
        y,
        index,
        power=power,
        adjust_chunks=dict.fromkeys(index, 1),
        dtype=yhat.dtype,
        meta=meta_from_array(yhat),
    )
    return da.reduction(
        triples,
        chunk=_pass_through,
        combine=partial(_merge, power=power),
        aggregate=partial(_finish, power=power, mean=reduction == "mean"),
        axis=None,
        concatenate=False,
        dtype=yhat.dtype,
        meta=meta_from_array(yhat, ndim=0),
    )


def _require_known_chunks(x: Any, name: str, why: str) -> None:
    if any(math.isnan(c) for sizes in x.chunks for c in sizes):
        raise ValueError(
            f"{name} must have known chunk sizes to be {why}; got {describe(x)} "
            f"(call {name}.compute_chunk_sizes() first)"
        )


l2_loss = l1_loss  # power selects the loss
