"""PyTorch fast paths.

PyTorch's fused kernels run 4-6x faster than a chain of generic operations.
Its autograd formula for sigmoid, ``s * (1 - s)``, loses the tails (0 for
x > 17 in float32), so tensors that record gradients take the generic path,
whose gradient is accurate.
"""

from __future__ import annotations

from typing import Any

import torch

from ..activations import _sigmoid


def _records_grad(x: torch.Tensor) -> bool:
    return x.requires_grad and torch.is_grad_enabled()


def sigmoid(x: torch.Tensor) -> Any:
    if _records_grad(x):
        import array_api_compat.torch as xp

        return _sigmoid(x, xp)
    return torch.sigmoid(x)
