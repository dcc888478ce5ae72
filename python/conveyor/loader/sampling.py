"""Index order for ``conveyor.DataLoader``: seeded per-epoch shuffling and distributed sharding.

The shuffled order for ``(seed, epoch)`` is exactly the one
``torch.utils.data.DistributedSampler(dataset, shuffle=True, seed=seed)`` produces after
``set_epoch(epoch)``, and sharding by ``rank``/``world_size`` follows DistributedSampler's rules
(pad by repetition so every rank gets the same number of samples, or drop the tail with
``drop_last``; ranks are disjoint otherwise). A conveyor job and a torch DDP job with the same seed
therefore see the same samples on the same ranks.
"""

from __future__ import annotations

import math
from typing import (
    Any,
    Dict,
    Iterable,
    Iterator,
    List,
    Optional,
    Sequence,
    Sized,
    TypeVar,
    Union,
)

import torch
from torch.utils.data import Sampler


def seeded_permutation(length: int, seed: int, epoch: int) -> List[int]:
    """The shuffled indices ``0..length-1`` for one epoch.

    Args:
        length: Number of samples.
        seed: Base seed of the run.
        epoch: Epoch number; each epoch gets a different permutation.

    Returns:
        The permutation as a list of ints (DistributedSampler's order for ``seed + epoch``).
    """
    generator = torch.Generator()
    generator.manual_seed(seed + epoch)
    return torch.randperm(length, generator=generator).tolist()


_Item = TypeVar("_Item")  # what is sharded: sample indices or whole batches


def shard_indices(
    indices: Sequence[_Item], rank: int, world_size: int, drop_last: bool = False
) -> List[_Item]:
    """The part of ``indices`` that ``rank`` sees, with DistributedSampler's semantics.

    Args:
        indices: The epoch's full index order (identical on every rank).
        rank: This process's rank in ``[0, world_size)``.
        world_size: Number of processes.
        drop_last: Drop the tail so the length divides evenly instead of padding by repetition.

    Returns:
        Every ``world_size``-th index starting at ``rank``; all ranks get the same count.
    """
    validate_shard(rank, world_size)
    items = list(indices)
    if world_size == 1:
        return items
    count = sharded_length(len(items), world_size, drop_last)
    total = count * world_size
    if not drop_last:
        padding = total - len(items)
        if items and padding > 0:
            items += (items * math.ceil(padding / len(items)))[:padding]
    else:
        items = items[:total]
    return items[rank:total:world_size]


def unconsumed_order(
    indices: Sequence[int], world_size: int, consumed_per_rank: int, drop_last: bool = False
) -> List[int]:
    """What an epoch sharded over ``world_size`` ranks has not yet read, in its global order.

    Rank ``r``'s ``j``-th sample is position ``j * world_size + r`` of the epoch's (padded)
    order, so once every rank has read ``consumed_per_rank`` samples the rest is exactly the
    order from ``consumed_per_rank * world_size`` on. Re-sharding that rest over another number of
    ranks finishes the epoch with every sample read once (plus DistributedSampler's padding).

    Args:
        indices: The epoch's full index order (identical on every rank).
        world_size: Number of ranks the epoch was started with.
        consumed_per_rank: Samples each of those ranks has read.
        drop_last: The sharding's ``drop_last``.

    Returns:
        The unread rest of the epoch's order.
    """
    validate_shard(0, world_size)
    indices = list(indices)
    total = sharded_length(len(indices), world_size, drop_last) * world_size
    if total > len(indices) and indices:
        indices += (indices * math.ceil(total / len(indices)))[: total - len(indices)]
    return indices[consumed_per_rank * world_size : total]


def sharded_length(length: int, world_size: int, drop_last: bool = False) -> int:
    """How many of ``length`` samples each rank gets (DistributedSampler's ``num_samples``).

    Args:
        length: Number of samples before sharding.
        world_size: Number of processes.
        drop_last: Whether the uneven tail is dropped rather than padded.

    Returns:
        The per-rank sample count.
    """
    if drop_last and length % world_size != 0:
        return math.ceil((length - world_size) / world_size)
    return math.ceil(length / world_size)


def validate_shard(rank: int, world_size: int) -> None:
    """Raise ``ValueError`` unless ``0 <= rank < world_size``."""
    if not isinstance(world_size, int) or isinstance(world_size, bool) or world_size < 1:
        raise ValueError(
            f"world_size should be a positive integer, but got world_size={world_size!r}"
        )
    if not isinstance(rank, int) or isinstance(rank, bool) or not 0 <= rank < world_size:
        raise ValueError(
            f"Invalid rank {rank!r}, rank should be in the interval [0, {world_size - 1}]"
        )


class SeededShuffleSampler(Sampler[int]):
    """A new permutation every epoch, fully determined by ``(seed, epoch)``.

    It is what ``conveyor.DataLoader(shuffle=True)`` uses when no ``generator`` is given.
    Unlike ``RandomSampler`` it draws nothing from torch's global RNG, so a resumed run or a
    run with another number of threads sees exactly the same order.

    Args:
        length: Number of samples, or the dataset itself: its current ``len()`` is then read at
            every epoch, so a dataset that grows or shrinks between epochs is sampled whole (as
            torch's ``RandomSampler`` does).
        seed: Base seed.
    """

    def __init__(self, length: Union[int, Sized], seed: int) -> None:
        self._source = length
        self.seed = int(seed)
        self.epoch = 0

    @property
    def length(self) -> int:
        """Number of samples of the current epoch."""
        source = self._source
        return source if isinstance(source, int) else len(source)

    def set_epoch(self, epoch: int) -> None:
        """Select the permutation of ``epoch`` for the next iteration.

        Args:
            epoch: Epoch number.
        """
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[int]:
        return iter(seeded_permutation(self.length, self.seed, self.epoch))

    def __len__(self) -> int:
        return self.length


def batch_indices(
    indices: Iterable[int], batch_size: Optional[int], drop_last: bool
) -> Iterator[Any]:
    """Group an index stream like ``torch.utils.data.BatchSampler`` (``None``: no batching).

    Args:
        indices: Sample indices in order.
        batch_size: Samples per batch, or ``None`` to yield single indices.
        drop_last: Drop a final incomplete batch.

    Returns:
        An iterator of index lists (or of single indices when ``batch_size`` is None).
    """
    if batch_size is None:
        yield from indices
        return
    batch: List[int] = []
    for index in indices:
        batch.append(index)
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch and not drop_last:
        yield batch


# ------------------------------------------------------------------- user samplers and resume


def epoch_snapshot(sampler: Any) -> Optional[Dict[str, Any]]:
    """What replays ``sampler``'s next epoch: taken before the epoch is iterated.

    A stateful sampler (torchdata's protocol: ``state_dict``/``load_state_dict``) gives its
    state; a batch sampler without one defers to the sampler it wraps (``.sampler``); a sampler
    with a ``torch.Generator`` gives the generator's state. ``None``: nothing to keep (the
    sampler is deterministic given its epoch, or cannot be replayed: see ``replays_epoch``).
    """
    from conveyor.samplers import GroupedBatchSampler  # (it imports this module)

    if isinstance(sampler, GroupedBatchSampler):  # the loader warns itself, in its state_dict
        return {"state_dict": sampler.state_dict(warn=False)}
    if hasattr(sampler, "state_dict") and hasattr(sampler, "load_state_dict"):
        return {"state_dict": sampler.state_dict()}
    inner = getattr(sampler, "sampler", None)
    if inner is not None and inner is not sampler:
        snapshot = epoch_snapshot(inner)
        return None if snapshot is None else {"sampler": snapshot}
    generator = getattr(sampler, "generator", None)
    if isinstance(generator, torch.Generator):
        return {"generator_state": generator.get_state()}
    return None


def restore_snapshot(sampler: Any, snapshot: Optional[Dict[str, Any]]) -> None:
    """Put ``sampler`` back where ``epoch_snapshot`` found it."""
    if not snapshot:
        return
    if "state_dict" in snapshot:
        sampler.load_state_dict(snapshot["state_dict"])
    elif "sampler" in snapshot:
        restore_snapshot(sampler.sampler, snapshot["sampler"])
    elif "generator_state" in snapshot:
        sampler.generator.set_state(snapshot["generator_state"])


def replays_epoch(sampler: Any) -> bool:
    """Whether an epoch of ``sampler`` can be replayed exactly after ``restore_snapshot``.

    True for stateful samplers, samplers with a ``torch.Generator``, the deterministic torch
    samplers (sequential, ``DistributedSampler``, a plain sequence) and conveyor's seeded
    shuffle, and for batch samplers wrapping one of those. False for e.g. ``RandomSampler``
    without a generator (it draws from torch's global RNG).
    """
    from torch.utils.data import DistributedSampler, SequentialSampler

    from conveyor.samplers import GroupedBatchSampler

    if isinstance(sampler, GroupedBatchSampler):  # stateful, but only as exact as its base
        return replays_epoch(sampler.sampler)
    if hasattr(sampler, "state_dict") and hasattr(sampler, "load_state_dict"):
        return True
    if isinstance(sampler, (SeededShuffleSampler, SequentialSampler, DistributedSampler)):
        return True
    if isinstance(sampler, (range, list, tuple)):
        return True
    if isinstance(getattr(sampler, "generator", None), torch.Generator):
        return True
    inner = getattr(sampler, "sampler", None)
    return inner is not None and inner is not sampler and replays_epoch(inner)
