"""Batch samplers for detection training: aspect-ratio grouping as torchvision's references do it.

torchvision's detection reference (``references/detection/train.py``, ``--aspect-ratio-group-factor
3`` by default) batches images of similar shape together so that a padded batch wastes few pixels.
This module gives the same grouping with three differences a training job needs:

* **No image is opened.** ``aspect_ratios`` reads each sample's size from the VOC annotations
  conveyor already parses natively (``<size><width>/<height>``); only where an annotation has no
  size (absent or 0x0) is the image's *header* read (``conveyor.io.read_image_size``).
  torchvision's ``create_aspect_ratio_groups`` opens every image with PIL instead.
* **Seeded by (seed, epoch), resumable.** With no base sampler, ``GroupedBatchSampler`` shuffles
  with ``DistributedSampler``'s permutation of ``seed + epoch``; ``state_dict`` /
  ``load_state_dict`` resume mid-epoch exactly (torchdata's stateful-sampler protocol).
* **Shardable.** ``shard(rank, world_size)`` splits each epoch's order as ``DistributedSampler``
  does and groups within the rank's share, so every rank yields the same number of batches, as
  torchvision's ``DistributedSampler`` + ``GroupedBatchSampler`` pairing does.

The grouping itself equals torchvision's ``GroupedBatchSampler`` for the same base order and group
ids, including its leftovers: once the base order is exhausted, the fullest partial groups are
completed with their group's earliest samples (repeated if the group is small) until the epoch has
``len(order) // batch_size`` batches; every batch has exactly ``batch_size`` indices.
"""

from __future__ import annotations

import bisect
import itertools
import math
import warnings
from typing import Any, Dict, Iterator, List, Optional, Sequence, Sized, cast

import numpy as np
from torch.utils.data import BatchSampler, Sampler, Subset

from conveyor.loader.sampling import (
    SeededShuffleSampler,
    epoch_snapshot,
    replays_epoch,
    restore_snapshot,
    shard_indices,
    sharded_length,
)

__all__ = [
    "GroupedBatchSampler",
    "aspect_ratio_bins",
    "aspect_ratio_groups",
    "aspect_ratios",
    "group_batches",
]

_STATE_VERSION = 1


# ------------------------------------------------------------------------------- aspect ratios


def aspect_ratios(dataset: Any, indices: Optional[Sequence[int]] = None) -> np.ndarray:
    """Each sample's ``width / height``, as torchvision's ``compute_aspect_ratios`` defines it.

    Sources, cheapest first: a conveyor ``VOCDetection``'s native annotations; a torch ``Subset``
    (recursing into its dataset); a ``get_height_and_width(i)`` method (torchvision's protocol);
    a torchvision ``VOCDetection`` (its XML files, parsed natively); any dataset with an
    ``images`` list of paths (image headers, e.g. ``VOCSegmentation``). Annotation sizes that
    are missing or 0x0 fall back to the image's header.

    Args:
        dataset: The dataset.
        indices: Samples to measure (default: all).

    Returns:
        float64 array, one ratio per requested sample.

    Raises:
        TypeError: The dataset offers none of the sources above.
        conveyor.errors.DecodeError: An image header needed as fallback is unreadable.
    """
    if indices is None:
        indices = range(len(dataset))
    indices = [int(i) for i in indices]
    if isinstance(dataset, Subset):
        return aspect_ratios(dataset.dataset, [int(dataset.indices[i]) for i in indices])
    if hasattr(dataset, "get_height_and_width"):
        sizes = [dataset.get_height_and_width(i) for i in indices]
        return np.array([_ratio(w, h, f"sample {i}") for i, (h, w) in zip(indices, sizes)])
    native = getattr(dataset, "native_annotations", None)
    if native is not None:
        return _ratios_from_sizes(dataset, indices, native.widths, native.heights)
    if _is_torchvision_voc_detection(dataset):
        from conveyor.voc import load_annotations

        loaded = load_annotations([dataset.annotations[i] for i in indices], classes=None)
        return _ratios_from_sizes(
            dataset, indices, loaded.widths, loaded.heights, positions=range(len(indices))
        )
    if isinstance(getattr(dataset, "images", None), (list, tuple)):
        return _ratios_from_headers(dataset, indices)
    raise TypeError(
        f"cannot tell the aspect ratios of a {type(dataset).__name__} without loading every "
        "sample: give it get_height_and_width(index) -> (height, width) or an `images` list of "
        "paths, or pass the ratios (width / height per sample) to aspect_ratio_groups"
    )


def _is_torchvision_voc_detection(dataset: Any) -> bool:
    try:
        from torchvision.datasets import VOCDetection
    except ImportError:  # pragma: no cover - torchvision is a dependency
        return False
    return isinstance(dataset, VOCDetection)


def _ratio(width: Any, height: Any, what: str) -> float:
    width, height = float(width), float(height)
    if not (width > 0 and height > 0 and math.isfinite(width) and math.isfinite(height)):
        raise ValueError(f"{what}: size {width}x{height} has no aspect ratio")
    return width / height


def _ratios_from_sizes(
    dataset: Any,
    indices: List[int],
    widths: np.ndarray,
    heights: np.ndarray,
    positions: Optional[Sequence[int]] = None,
) -> np.ndarray:
    # positions: where each requested sample sits in widths/heights (default: its index)
    rows = np.asarray(indices if positions is None else list(positions), dtype=np.int64)
    w = np.asarray(widths, dtype=np.float64)[rows]
    h = np.asarray(heights, dtype=np.float64)[rows]
    ratios = np.divide(w, h, out=np.zeros_like(w), where=(w > 0) & (h > 0))
    missing = np.flatnonzero(ratios <= 0)  # no <size>, or 0x0 as some exporters write
    if len(missing):
        ratios[missing] = _ratios_from_headers(dataset, [indices[m] for m in missing])
    return ratios


def _ratios_from_headers(dataset: Any, indices: List[int]) -> np.ndarray:
    from conveyor.errors import DecodeError
    from conveyor.io import read_image_size

    ratios = np.empty(len(indices), dtype=np.float64)
    for position, index in enumerate(indices):
        try:
            width, height = read_image_size(dataset.images[index])
        except (OSError, DecodeError) as error:
            raise type(error)(f"sample {index}: no size in its annotation and {error}") from error
        ratios[position] = width / height
    return ratios


def aspect_ratio_bins(group_factor: int) -> List[float]:
    """The bin edges of torchvision's ``create_aspect_ratio_groups(dataset, k=group_factor)``.

    ``2 ** linspace(-1, 1, 2k + 1)`` (ratios 1/2 .. 2 in ``2k`` steps), or ``[1.0]`` for ``k=0``
    (portrait vs landscape).
    """
    if not isinstance(group_factor, int) or isinstance(group_factor, bool) or group_factor < 0:
        raise ValueError(f"group_factor should be an int >= 0, but got {group_factor!r}")
    if group_factor == 0:
        return [1.0]
    return (2 ** np.linspace(-1, 1, 2 * group_factor + 1)).tolist()


def aspect_ratio_groups(ratios: Any, group_factor: int = 3) -> List[int]:
    """Quantize aspect ratios into group ids exactly as torchvision's references do.

    Args:
        ratios: ``width / height`` per sample, or a dataset (measured with ``aspect_ratios``).
        group_factor: torchvision's ``--aspect-ratio-group-factor`` (``k``): ``2k + 2`` groups.

    Returns:
        One group id per sample, ``bisect_right(bins, ratio)`` in ``[0, len(bins)]``.
    """
    bins = aspect_ratio_bins(group_factor)
    if not isinstance(ratios, (np.ndarray, list, tuple)):
        ratios = aspect_ratios(ratios)
    values = np.asarray(ratios, dtype=np.float64).reshape(-1)
    bad = np.flatnonzero(~(np.isfinite(values) & (values > 0)))
    if len(bad):
        raise ValueError(
            f"aspect ratio of sample {int(bad[0])} is {values[bad[0]]}: ratios must be finite "
            "and > 0 (width / height)"
        )
    return [bisect.bisect_right(bins, value) for value in values.tolist()]


# ------------------------------------------------------------------------------------ grouping


def group_batches(order: Sequence[int], group_ids: Sequence[int], batch_size: int) -> List[list]:
    """Batches of ``order`` whose members share a group, as torchvision's sampler forms them.

    Walking ``order``, each index joins its group's buffer; a full buffer is a batch. At the end,
    ``len(order) // batch_size`` batches are owed: the largest partial buffers (ties: the group
    whose buffer was started or last emptied first, as torchvision's dict order has it) are
    completed with their group's first samples of the epoch, cycled if the group is small.

    Args:
        order: The epoch's sample order.
        group_ids: Group id of every dataset index.
        batch_size: Samples per batch.

    Returns:
        The epoch's batches (lists of indices), all of ``batch_size`` indices.
    """
    # the dict's insertion order decides ties below; torchvision's buffer of a group that just
    # yielded is deleted and re-created empty at once, i.e. it moves to the end
    buffers: Dict[Any, List[int]] = {}
    seen: Dict[Any, List[int]] = {}
    batches: List[list] = []
    size = len(group_ids)
    for index in order:
        if not 0 <= index < size:
            raise IndexError(f"sampler yielded index {index}, but group_ids covers 0..{size - 1}")
        group = group_ids[index]
        buffers.setdefault(group, []).append(index)
        seen.setdefault(group, []).append(index)
        if len(buffers[group]) == batch_size:
            batches.append(buffers.pop(group))
            buffers[group] = []
    owed = len(order) // batch_size - len(batches)
    for group, buffer in sorted(buffers.items(), key=lambda item: len(item[1]), reverse=True):
        if owed <= 0:
            break
        missing = batch_size - len(buffer)
        batches.append(buffer + list(itertools.islice(itertools.cycle(seen[group]), missing)))
        owed -= 1
    return batches


class GroupedBatchSampler(BatchSampler):
    """Batches whose images share an aspect-ratio group: torchvision's ``GroupedBatchSampler``.

    Drop-in for ``references/detection/group_by_aspect_ratio.GroupedBatchSampler(sampler,
    group_ids, batch_size)``: the same batches for the same base order. Pass it to
    ``conveyor.DataLoader(dataset, batch_sampler=...)`` (or torch's).

    Usually built with ``GroupedBatchSampler.from_dataset(dataset, batch_size, group_factor=3)``,
    which reads the aspect ratios without opening images and shuffles by ``(seed, epoch)``.

    Epochs count 0, 1, 2, ... with each ``iter()`` unless ``set_epoch`` chooses one (forwarded to
    the base sampler when it has ``set_epoch``). Resume (``state_dict`` / ``load_state_dict``) is
    exact when the base order of an epoch can be replayed: ``sampler=None`` (the seeded shuffle),
    ``SequentialSampler``, ``DistributedSampler``, a sampler with a ``generator`` (its state is
    kept) or one with ``state_dict``/``load_state_dict``. Otherwise (e.g. ``RandomSampler``
    without a generator, which draws from torch's global RNG) it warns once in ``state_dict``:
    the resumed epoch has the right number of batches but another order.

    Args:
        sampler: Base sampler of dataset indices; ``None``: shuffle by ``(seed, epoch)``.
        group_ids: Group id of every dataset index (``aspect_ratio_groups``).
        batch_size: Samples per batch.
        seed: Seed of the shuffle when ``sampler`` is None (same on every rank).
    """

    def __init__(
        self,
        sampler: Optional[Sampler],
        group_ids: Sequence[int],
        batch_size: int,
        *,
        seed: int = 0,
    ) -> None:
        # BatchSampler.__init__ is not called: like torchvision's, this sampler has no drop_last
        # (every batch is full: leftovers are completed, see group_batches)
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
            raise ValueError(f"batch_size should be a positive integer, but got {batch_size!r}")
        group_ids = list(np.asarray(group_ids).reshape(-1).tolist())
        if sampler is None:
            sampler = SeededShuffleSampler(len(group_ids), seed)
        elif not isinstance(sampler, Sampler):
            raise ValueError(
                f"sampler should be an instance of torch.utils.data.Sampler, but got {sampler!r}"
            )
        self.sampler = sampler
        self.group_ids = group_ids
        self.batch_size = batch_size
        self.rank, self.world_size, self.shard_drop_last = 0, 1, False
        self._next_epoch = 0
        self._resume_skip = 0
        self._pending_snapshot: Any = None  # base-sampler state to restore at the next iter()
        self._progress: Optional[Dict[str, Any]] = None
        self._warned = False

    @classmethod
    def from_dataset(
        cls,
        dataset: Any,
        batch_size: int,
        group_factor: int = 3,
        *,
        sampler: Optional[Sampler] = None,
        seed: int = 0,
    ) -> "GroupedBatchSampler":
        """Group ``dataset`` by aspect ratio (read from annotations, no image opened).

        Args:
            dataset: A dataset ``aspect_ratios`` can measure.
            batch_size: Samples per batch.
            group_factor: torchvision's ``--aspect-ratio-group-factor`` (default 3).
            sampler: Base sampler (``None``: shuffle by ``(seed, epoch)``).
            seed: Seed of that shuffle.
        """
        groups = aspect_ratio_groups(aspect_ratios(dataset), group_factor)
        return cls(sampler, groups, batch_size, seed=seed)

    @property
    def seed(self) -> Optional[int]:
        """The shuffle's seed (``None`` when a user sampler decides the order)."""
        return self.sampler.seed if isinstance(self.sampler, SeededShuffleSampler) else None

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch of the next iteration (forwarded to the base sampler).

        Args:
            epoch: Epoch number (>= 0).
        """
        if not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"epoch should be a non-negative int, but got epoch={epoch!r}")
        if epoch != self._next_epoch:
            self._resume_skip = 0
            self._pending_snapshot = None
        self._next_epoch = epoch
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)

    def shard(self, rank: int, world_size: int, drop_last: bool = False) -> "GroupedBatchSampler":
        """Yield only ``rank``'s batches: the epoch's order is split as ``DistributedSampler``
        splits it, then grouped. Every rank gets ``sharded_length(N) // batch_size`` batches.

        Args:
            rank: This process's rank in ``[0, world_size)``.
            world_size: Number of processes.
            drop_last: Drop the uneven tail of the order instead of padding it by repetition.

        Returns:
            The sampler itself.
        """
        shard_indices([], rank, world_size)  # validates rank and world_size
        self.rank, self.world_size, self.shard_drop_last = rank, world_size, bool(drop_last)
        return self

    def _order_length(self) -> int:
        # a base sampler without __len__ fails here as torch's BatchSampler would
        return sharded_length(len(cast(Sized, self.sampler)), self.world_size, self.shard_drop_last)

    def __len__(self) -> int:
        return self._order_length() // self.batch_size

    def epoch_batches(self, epoch: int) -> List[list]:
        """All batches of ``epoch`` for this rank (the base sampler is iterated once)."""
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)
        order = [int(i) for i in self.sampler]
        if self.world_size > 1:
            order = shard_indices(order, self.rank, self.world_size, self.shard_drop_last)
        return group_batches(order, self.group_ids, self.batch_size)

    def __iter__(self) -> Iterator[List[int]]:
        epoch, skip = self._next_epoch, self._resume_skip
        self._next_epoch, self._resume_skip = epoch + 1, 0
        restore_snapshot(self.sampler, self._pending_snapshot)
        self._pending_snapshot = None
        progress = {
            "epoch": epoch,
            "batches": skip,
            "snapshot": epoch_snapshot(self.sampler),
            "finished": False,
        }
        self._progress = progress
        batches = self.epoch_batches(epoch)
        return self._yield(batches, skip, progress)

    def _yield(self, batches: List[list], skip: int, progress: Dict[str, Any]) -> Iterator:
        for batch in batches[skip:]:
            progress["batches"] += 1
            yield batch
        progress["finished"] = True

    def state_dict(self, warn: bool = True) -> Dict[str, Any]:
        """Where the sampler stands: the next ``iter()`` after ``load_state_dict`` resumes there.

        Args:
            warn: Warn (once) when the base sampler cannot replay an epoch. ``conveyor.
                DataLoader`` passes False for the snapshot it takes at each epoch's start.

        Returns:
            ``epoch``, ``batches_yielded`` (of that epoch), ``seed``, the shard, and the base
            sampler's state at the epoch's start (when it has one).
        """
        if warn and not self._warned and not replays_epoch(self.sampler):
            self._warned = True
            warnings.warn(
                f"GroupedBatchSampler: its base sampler {type(self.sampler).__name__} cannot "
                "replay an epoch's order (it has no generator or state_dict); a resumed epoch "
                "gets the right number of batches but not the same ones",
                stacklevel=2,
            )
        progress = self._progress
        if progress is None or progress["finished"]:
            epoch, skip, snapshot = self._next_epoch, self._resume_skip, self._pending_snapshot
            if snapshot is None:
                snapshot = epoch_snapshot(self.sampler)
        else:
            epoch, skip, snapshot = progress["epoch"], progress["batches"], progress["snapshot"]
        return {
            "version": _STATE_VERSION,
            "epoch": epoch,
            "batches_yielded": skip,
            "seed": self.seed,
            "rank": self.rank,
            "world_size": self.world_size,
            "sampler_state": snapshot,
        }

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Resume from ``state_dict()``: the next ``iter()`` continues that epoch.

        Args:
            state: What ``state_dict()`` returned.

        Raises:
            KeyError: ``state`` is not a GroupedBatchSampler state.
            ValueError: It comes from another shard layout or another seed.
        """
        missing = {"epoch", "batches_yielded"} - set(state)
        if missing:
            raise KeyError(f"not a GroupedBatchSampler state_dict: missing {sorted(missing)}")
        world_size = state.get("world_size", 1)
        if world_size != self.world_size or state.get("rank", 0) != self.rank:
            raise ValueError(
                f"this state_dict is rank {state.get('rank', 0)} of {world_size}; this sampler is "
                f"rank {self.rank} of {self.world_size} (call shard() to match before loading)"
            )
        if state.get("seed") is not None:
            if not isinstance(self.sampler, SeededShuffleSampler):
                raise ValueError("this state_dict comes from a sampler=None (seeded) sampler")
            self.sampler.seed = int(state["seed"])
        self._next_epoch = int(state["epoch"])
        self._resume_skip = int(state["batches_yielded"])
        self._pending_snapshot = state.get("sampler_state")
        self._progress = None
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(self._next_epoch)
