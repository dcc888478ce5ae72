"""The table ``Trainer(enable_model_summary=True)`` prints at the start of ``fit``: each
top-level submodule with its type and parameter count, then trainable, non-trainable and total
parameters and their size in MB, in Lightning 1.6's layout."""

from __future__ import annotations

from typing import List

import torch


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _human(count: int) -> str:
    for unit, size in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return str(count)


def summarize(model: torch.nn.Module) -> str:
    """The summary table of ``model`` as a string."""
    rows: List[List[str]] = [["", "Name", "Type", "Params"]]
    for index, (name, child) in enumerate(model.named_children()):
        rows.append([str(index), name, type(child).__name__, _human(_count(child))])
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [
        " | ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows
    ]
    rule = "-" * max(len(line) for line in lines)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = _count(model)
    size_mb = sum(p.numel() * p.element_size() for p in model.parameters()) / 1e6
    return "\n".join(
        [lines[0], rule, *lines[1:], rule]
        + [
            f"{_human(trainable):<10}Trainable params",
            f"{_human(total - trainable):<10}Non-trainable params",
            f"{_human(total):<10}Total params",
            f"{size_mb:<10.3f}Total estimated model params size (MB)",
        ]
    )
