"""Thin typed wrapper over the native engine (``conveyor._core.Engine``).

The engine turns a pipeline of op descriptors and a list of image files (plus optional masks
and boxes) into ordered batches in owned numpy buffers, using native threads without the GIL.
``conveyor.DataLoader`` builds on it; see ``csrc/conveyor/README.md`` ("Engine API").

Ops are ``conveyor._core.Op(name, **args)`` objects, applied in order, or dicts
``{"op": name, **args}`` built through the same native schema; ``conveyor._core.op_schema()``
lists every op and argument (see ``csrc/conveyor/README.md``, "Ops: one schema")::

    Op("resize", size=[512, 512])
    {"op": "hflip", "p": 0.5}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, Optional, Sequence, Tuple, Union

import numpy as np

OpDescriptor = Any  # conveyor._core.Op or a Mapping {"op": name, **args}
_U64 = (1 << 64) - 1  # seeds and epochs are taken modulo 2**64 (negative seeds are fine)


@dataclass
class Batch:
    """One batch as produced by the engine (all arrays are owned, never written again).

    Attributes:
        images: ``[B, C, H, W]`` array in the pipeline's output dtype, or a list of
            ``[C, H_i, W_i]`` arrays when the pipeline has no fixed output size.
        indices: int64 ``[B]`` dataset sample indices in batch order.
        boxes: float32 ``[K, 4]`` transformed xyxy boxes (vanished boxes dropped), or None.
        labels: int64 ``[K]`` labels of the kept boxes, or None.
        box_offsets: int64 ``[B + 1]``; sample ``b`` owns rows ``box_offsets[b]:box_offsets[b+1]``.
        masks: uint8 ``[B, H, W]`` (or a list of ``[H_i, W_i]``), or None.
        skipped: ``(index, path, message)`` for each sample dropped with ``on_error="skip"``.
        batch_index: position of this batch in the epoch.
        buffer_id: id returned by :meth:`Engine.feed_buffer` for the buffer holding ``images``,
            or -1 when the engine allocated it.
    """

    images: Union[np.ndarray, List[np.ndarray]]
    indices: np.ndarray
    boxes: Optional[np.ndarray] = None
    labels: Optional[np.ndarray] = None
    box_offsets: Optional[np.ndarray] = None
    masks: Union[np.ndarray, List[np.ndarray], None] = None
    skipped: List[Tuple[int, str, str]] = field(default_factory=list)
    batch_index: int = 0
    buffer_id: int = -1


def _core():
    from conveyor import _core

    return _core


def _as_optional_array(value: Any, dtype: Any, name: str, ndim: int) -> Optional[np.ndarray]:
    if value is None:
        return None
    array = np.ascontiguousarray(np.asarray(value), dtype=dtype)
    if array.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {array.shape}")
    return array


class Engine:
    """Native batches from image files: read, decode, transform and batch on native threads.

    Args:
        pipeline: Ops (``conveyor._core.Op`` or dicts with an ``"op"`` key, see the module
            docstring), applied in order. ``to_dtype``/``normalize`` must follow every geometric op.
        image_paths: One image file (JPEG or PNG) per dataset sample.
        mask_paths: Optional PNG mask per sample (palette indices); masks follow the image
            geometry with nearest-neighbour sampling.
        boxes: Optional float32 ``[M, 4]`` xyxy pixel boxes of all samples, concatenated.
        labels: Optional int64 ``[M]`` labels of ``boxes``.
        offsets: int64 ``[N + 1]`` row offsets of each sample's boxes (required with boxes).
        batch_size: Samples per batch (>= 1).
        num_threads: Native worker threads; 0 processes samples in the calling thread.
        prefetch: Batches started and not yet returned, at most (>= 1).
        seed: Seed of the per-epoch shuffle and of every random augmentation.
        shuffle: Visit samples in a new seeded order each epoch.
        drop_last: Drop the last incomplete batch.
        rank: This process's rank for distributed sharding.
        world_size: Number of ranks; each gets the same number of samples.
        shard_drop_last: Like ``DistributedSampler(drop_last=True)``: drop the tail instead of
            padding by repetition when the dataset does not divide evenly.
        in_order: Deliver batches in order (False hands out whichever batch is ready first).
        on_error: ``"raise"`` (raise at the batch holding the bad sample, naming file and
            index) or ``"skip"`` (drop the sample, report it in ``Batch.skipped``).
        dct_scaling: Decode JPEGs at 1/2, 1/4 or 1/8 scale when a resize shrinks the region
            by at least twice that factor (much faster for large photos; mean difference to
            the full-decode path about 1 uint8 level). False gives the full-decode result.

    Raises:
        ValueError: An unknown op, a bad op argument, or inconsistent sources.
    """

    def __init__(
        self,
        pipeline: Sequence[OpDescriptor],
        image_paths: Sequence[str],
        *,
        mask_paths: Optional[Sequence[str]] = None,
        boxes: Any = None,
        labels: Any = None,
        offsets: Any = None,
        batch_size: int = 1,
        num_threads: int = 2,
        prefetch: int = 2,
        seed: int = 0,
        shuffle: bool = False,
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
        shard_drop_last: bool = False,
        in_order: bool = True,
        on_error: str = "raise",
        dct_scaling: bool = True,
    ) -> None:
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        self._native = _core().Engine(
            [op if isinstance(op, _core().Op) else dict(op) for op in pipeline],
            [str(p) for p in image_paths],
            None if mask_paths is None else [str(p) for p in mask_paths],
            _as_optional_array(boxes, np.float32, "boxes", 2),
            _as_optional_array(labels, np.int64, "labels", 1),
            _as_optional_array(offsets, np.int64, "offsets", 1),
            int(batch_size),
            int(num_threads),
            int(prefetch),
            int(seed) & _U64,
            bool(shuffle),
            bool(drop_last),
            int(rank),
            int(world_size),
            bool(shard_drop_last),
            bool(in_order),
            on_error == "skip",
            bool(dct_scaling),
        )
        self._fed: dict = {}

    def __len__(self) -> int:
        """Batches per epoch for this rank in the engine's own order."""
        return self._native.num_batches()

    @property
    def num_samples(self) -> int:
        """Samples per epoch for this rank (``DistributedSampler.num_samples`` semantics)."""
        return self._native.num_samples()

    @property
    def output_shape(self) -> Optional[Tuple[int, int, int]]:
        """``(C, H, W)`` of every image when the pipeline fixes the size, else None."""
        shape = self._native.output_shape()
        return None if shape is None else tuple(shape)

    @property
    def output_dtype(self) -> np.dtype:
        """The images' dtype (set by the pipeline's ``to_dtype``; uint8 without it)."""
        return np.dtype(self._native.output_dtype())

    def start_epoch(
        self, epoch: int, start_batch: int = 0, indices: Optional[Sequence[int]] = None
    ) -> None:
        """(Re)start an epoch, cancelling the one in progress.

        Args:
            epoch: Epoch number; with ``seed`` it fixes the order and every random draw.
            start_batch: Skip this many batches (mid-epoch resume).
            indices: Optional sample order for this rank and epoch (already sharded),
                overriding the engine's shuffle and sharding.

        Raises:
            ValueError: ``start_batch`` < 0 or an index out of range.
        """
        order = None if indices is None else np.ascontiguousarray(indices, dtype=np.int64)
        self._native.start_epoch(int(epoch) & _U64, int(start_batch), order)
        self._release_dead_buffers()  # cancelled batches' buffers; unused ones stay queued

    def feed_buffer(self, array: np.ndarray) -> int:
        """Hand in a destination buffer for a coming batch (e.g. pinned memory).

        Buffers are used first in, first out by the batches started after they were fed:
        feed ``prefetch`` buffers before :meth:`start_epoch`, then one per :meth:`next_batch`
        to have every batch land in one. Batches started with no buffer queued use
        engine-owned memory (``Batch.buffer_id == -1``).

        Args:
            array: C-contiguous, writable, ``batch_size * C * H * W`` elements of
                :attr:`output_dtype`. It is kept alive here until returned in a batch.

        Returns:
            The id reported as ``Batch.buffer_id`` for the batch written into it.

        Raises:
            ValueError: The pipeline has no fixed output size, or the array does not fit.
        """
        if (
            not isinstance(array, np.ndarray)
            or not array.flags.c_contiguous
            or not array.flags.writeable
        ):
            raise ValueError("feed_buffer needs a C-contiguous writable numpy array")
        if array.dtype != self.output_dtype:
            raise ValueError(
                f"feed_buffer: dtype {array.dtype} != output dtype {self.output_dtype}"
            )
        buffer_id = self._native.feed_buffer(array)
        self._fed[buffer_id] = array
        return buffer_id

    def _release_dead_buffers(self) -> None:
        live = set(self._native.live_buffer_ids())
        self._fed = {key: value for key, value in self._fed.items() if key in live}

    def next_batch(self) -> Optional[Batch]:
        """The next batch of the epoch, or None when the epoch is over.

        Returns:
            A :class:`Batch`, or None at the end of the epoch (or before ``start_epoch``).

        Raises:
            FileNotFoundError: A sample's file is missing (``on_error="raise"``).
            conveyor.errors.DecodeError: A sample's image or mask could not be decoded.
            conveyor.errors.ConveyorError: Any other sample failure (e.g. mixed sizes).
        """
        try:
            raw = self._native.next_batch()
        except Exception:
            self._release_dead_buffers()  # the failed batch's buffer
            raise
        if raw is None:
            return None
        buffer_id = raw["buffer_id"]
        images = raw["images"]
        if buffer_id >= 0:
            images = self._fed.pop(buffer_id)[: len(raw["indices"])]
        return Batch(
            images=images,
            indices=raw["indices"],
            boxes=raw["boxes"],
            labels=raw["labels"],
            box_offsets=raw["box_offsets"],
            masks=raw["masks"],
            skipped=list(raw["skipped"]),
            batch_index=raw["batch_index"],
            buffer_id=buffer_id,
        )

    def stats(self) -> dict:
        """Counters since construction.

        Returns:
            ``samples_done``, ``samples_skipped``, ``batches_delivered``, ``batches_ready``
            (finished, waiting to be taken: the queue depth) and ``wait_seconds`` (time
            :meth:`next_batch` spent blocked).
        """
        return dict(self._native.stats())

    def close(self) -> None:
        """Stop the worker threads (idempotent; also done when the engine is collected)."""
        self._native.close()

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def run_pipeline(
    pipeline: Sequence[OpDescriptor],
    image: np.ndarray,
    *,
    boxes: Any = None,
    labels: Any = None,
    mask: Optional[np.ndarray] = None,
    seed: int = 0,
    epoch: int = 0,
    index: int = 0,
) -> Tuple[np.ndarray, Optional[np.ndarray], Optional[np.ndarray], Optional[np.ndarray]]:
    """Apply a pipeline to one decoded image, exactly as the engine would for that sample.

    Args:
        pipeline: Op descriptors, as for :class:`Engine`.
        image: uint8 ``[H, W, 3]`` RGB image.
        boxes: Optional float32 ``[M, 4]`` xyxy boxes.
        labels: Optional int64 ``[M]`` labels (returned filtered like the boxes).
        mask: Optional uint8 ``[H, W]`` mask.
        seed: Engine seed.
        epoch: Epoch number.
        index: Dataset sample index (the random draws depend on seed, epoch and index).

    Returns:
        ``(image [C, H', W'], boxes [K, 4] or None, labels [K] or None, mask [H', W'] or None)``.
    """
    image = np.ascontiguousarray(image, dtype=np.uint8)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be uint8 [H, W, 3], got shape {image.shape}")
    if mask is not None:
        mask = np.ascontiguousarray(mask, dtype=np.uint8)
        if mask.shape != image.shape[:2]:
            raise ValueError(f"mask shape {mask.shape} != image size {image.shape[:2]}")
    box_array = _as_optional_array(boxes, np.float32, "boxes", 2)
    label_array = _as_optional_array(labels, np.int64, "labels", 1)
    return _core().run_pipeline(
        [op if isinstance(op, _core().Op) else dict(op) for op in pipeline],
        image,
        box_array,
        label_array,
        mask,
        int(seed) & _U64,
        int(epoch) & _U64,
        int(index),
    )


__all__ = ["Batch", "Engine", "run_pipeline"]
