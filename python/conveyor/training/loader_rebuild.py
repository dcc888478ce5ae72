"""A torch DataLoader's constructor arguments, to build it again with another sampler (what
Lightning does for DDP sharding and ``overfit_batches``)."""

from __future__ import annotations

from typing import Any, Dict

import torch.utils.data as tud


def torch_loader_arguments(loader: tud.DataLoader[Any]) -> Dict[str, Any]:
    """The arguments of ``torch.utils.data.DataLoader`` that ``loader`` was built with, less its
    dataset and sampler (``shuffle=False``: the caller passes the sampler it wants)."""
    workers = loader.num_workers > 0
    arguments: Dict[str, Any] = dict(
        batch_size=loader.batch_size,
        shuffle=False,
        num_workers=loader.num_workers,
        collate_fn=loader.collate_fn,
        pin_memory=loader.pin_memory,
        drop_last=loader.drop_last,
        timeout=loader.timeout,
        worker_init_fn=loader.worker_init_fn,
        multiprocessing_context=loader.multiprocessing_context,
        generator=loader.generator,
        prefetch_factor=loader.prefetch_factor if workers else None,
        persistent_workers=loader.persistent_workers if workers else False,
        in_order=loader.in_order,
    )
    if loader.pin_memory_device:
        arguments["pin_memory_device"] = loader.pin_memory_device
    return arguments
