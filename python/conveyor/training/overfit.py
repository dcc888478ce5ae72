"""``Trainer(overfit_batches=...)`` (Lightning 1.6): train again and again on the same first
batches of the training set, in a fixed order, with validation switched off."""

from __future__ import annotations

import warnings
from typing import Any, Union

import torch.utils.data as tud

from conveyor.loader.dataloader import DataLoader as ConveyorDataLoader
from conveyor.training.errors import MisconfigurationException
from conveyor.training.loader_rebuild import torch_loader_arguments


def validate_overfit_batches(value: Any) -> Union[int, float]:
    """0 (off), a fraction in (0, 1] of the training batches, or a number of batches.

    Raises:
        MisconfigurationException: a bool, a negative number, or a float above 1 that is not a
            whole number (Lightning reads ``2.0`` as 2 batches).
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MisconfigurationException(
            f"You have passed invalid value {value!r} for overfit_batches, it has to be in "
            "[0.0, 1.0] or an int."
        )
    if 0 <= value <= 1:
        return value
    if value > 1 and value % 1.0 == 0:
        return int(value)
    raise MisconfigurationException(
        f"You have passed invalid value {value} for overfit_batches, it has to be in [0.0, 1.0] "
        "or an int."
    )


def without_shuffling(loader: Any) -> Any:
    """``loader`` reading its dataset in order: Lightning 1.6 replaces a training loader's
    sampler that is not a ``SequentialSampler`` by one, with a warning, so that every epoch
    trains on the same first batches.

    Raises:
        MisconfigurationException: a DataLoader subclass with its own constructor, which cannot
            be rebuilt with another sampler.
    """
    if not isinstance(loader, tud.DataLoader):
        return loader  # a custom iterable: its order is its own
    if isinstance(loader.dataset, tud.IterableDataset):
        return loader  # a stream has no sampler to turn off
    if isinstance(loader.sampler, tud.SequentialSampler):
        return loader
    warnings.warn(
        "You requested to overfit but enabled training dataloader shuffling. "
        "We are turning off the training dataloader shuffling for you.",
        UserWarning,
        stacklevel=4,
    )
    base = ConveyorDataLoader if isinstance(loader, ConveyorDataLoader) else tud.DataLoader
    if type(loader).__init__ is not base.__init__:
        raise MisconfigurationException(
            f"overfit_batches: the training loader's {type(loader.sampler).__name__} must be "
            f"replaced by a SequentialSampler, but {type(loader).__qualname__} has its own "
            "constructor and cannot be rebuilt: build it with shuffle=False"
        )
    common = torch_loader_arguments(loader)
    if not isinstance(loader, ConveyorDataLoader):
        return tud.DataLoader(loader.dataset, **common)
    return ConveyorDataLoader(
        loader.dataset,
        **common,
        seed=loader.seed,
        on_error=loader.on_error,
        rank=loader.rank,
        world_size=loader.world_size,
        worker_mode=loader.worker_mode,
        pad_to_multiple=loader.pad_to_multiple,
    )
