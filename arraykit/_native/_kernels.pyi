# The compiled kernels of _kernels.c. Each takes C-contiguous arrays of one
# native float32/float64 dtype and size, and returns False (or None) when it
# cannot serve them; the caller then discards its outputs.
from typing import Any

THREADS: int  # 1 where built with threads, 0 for C99 or -DARRAYKIT_NO_THREADS
INSTRUCTIONS: str  # the vector instructions built for (clones, or one level)

def sigmoid(x: Any, out: Any, threads: int = 1, /) -> bool: ...
def sigmoid_derivative(x: Any, out: Any, threads: int = 1, /) -> bool: ...
def softmax_rows(x: Any, out: Any, row_length: int, threads: int = 1, /) -> bool: ...
def softmax_columns(x: Any, out: Any, length: int, width: int, threads: int = 1, /) -> bool: ...
def normalize_rows(x: Any, out: Any, row_length: int, threads: int = 1, /) -> bool: ...
def loss_sum(yhat: Any, y: Any, power: int, threads: int = 1, /) -> float | None: ...
def loss_elements(yhat: Any, y: Any, out: Any, power: int, threads: int = 1, /) -> bool: ...
def share_threads(library: str | None, /) -> bool: ...
def line_adagrad(
    moments: Any,
    start: Any,
    out: Any,
    steps: int,
    every: int,
    lr: float,
    eps: float,
    initial: float,
    decay: float,
    penalty: float,
    check: int,
    /,
) -> bool: ...
