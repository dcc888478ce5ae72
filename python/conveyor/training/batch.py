"""Moving and converting (nested) batches."""

from __future__ import annotations

from typing import Any, Callable

import torch


def apply_to_tensors(batch: Any, function: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    """Apply ``function`` to every tensor in lists, tuples, namedtuples and dicts."""
    if isinstance(batch, torch.Tensor):
        return function(batch)
    if isinstance(batch, dict):
        items = {k: apply_to_tensors(v, function) for k, v in batch.items()}
        try:
            return type(batch)(items)
        except TypeError:
            return items
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return type(batch)(*(apply_to_tensors(v, function) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(apply_to_tensors(v, function) for v in batch)
    if hasattr(batch, "to") and callable(batch.to) and not isinstance(batch, type):
        try:
            return function(batch)
        except Exception:
            return batch
    return batch


def move_to_device(batch: Any, device: torch.device) -> Any:
    non_blocking = torch.device(device).type == "cuda"
    return apply_to_tensors(batch, lambda t: t.to(device, non_blocking=non_blocking))


def batch_size_of(batch: Any) -> int:
    """The first dimension of the first tensor found (1 when there is none)."""
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0]) if batch.dim() > 0 else 1
    if isinstance(batch, dict):
        for value in batch.values():
            return batch_size_of(value)
    if isinstance(batch, (list, tuple)) and batch:
        first = batch[0]
        if isinstance(first, torch.Tensor):
            return int(first.shape[0]) if first.dim() > 0 else 1
        if isinstance(first, (list, tuple)):  # detection batches: (images tuple, targets tuple)
            return len(first)
        return batch_size_of(first)
    return 1
