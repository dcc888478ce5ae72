"""Thin typed wrapper over the native engine (``conveyor._core.Engine``).

The engine turns a pipeline of op descriptors and a list of image files (plus optional masks
and boxes) into batches in owned numpy buffers, using native threads without the GIL. The caller
owns the sample order: each epoch starts with its batches of dataset indices (any sizes, e.g. what
a ``batch_sampler`` yields), and the engine returns them in that order. ``conveyor.DataLoader``
builds on it; see ``csrc/conveyor/README.md`` ("Engine API").

Ops are ``conveyor._core.Op(name, **args)`` objects, applied in order, or dicts
``{"op": name, **args}`` built through the same native schema; ``conveyor._core.op_schema()``
lists every op and argument (see ``csrc/conveyor/README.md``, "Ops: one schema")::

    Op("resize", size=[512, 512])
    {"op": "hflip", "p": 0.5}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

OpDescriptor = Any  # conveyor._core.Op or a Mapping {"op": name, **args}
# run_pipeline's (image, boxes, labels, mask), as the binding returns them
PipelineResult = Tuple[np.ndarray, Optional[np.ndarray], Optional[np.ndarray], Optional[np.ndarray]]
_U64 = (1 << 64) - 1  # seeds and epochs are taken modulo 2**64 (negative seeds are fine)


class IndexBatches(NamedTuple):
    """One epoch's batches of dataset indices: batch ``b`` is ``indices[offsets[b]:offsets[b+1]]``.

    Attributes:
        indices: int64 ``[N]``, every batch's indices one after the other.
        offsets: int64 ``[num_batches + 1]``, starting at 0 and ending at ``N``.
    """

    indices: np.ndarray
    offsets: np.ndarray

    @classmethod
    def of(cls, batches: Iterable[Sequence[int]]) -> "IndexBatches":
        """From a sequence of index lists (batches may differ in size, as a ``batch_sampler``'s
        do)."""
        arrays = [np.asarray(batch, dtype=np.int64).reshape(-1) for batch in batches]
        offsets = np.zeros(len(arrays) + 1, np.int64)
        np.cumsum([len(batch) for batch in arrays], out=offsets[1:])
        indices = np.concatenate(arrays) if arrays else np.zeros(0, np.int64)
        return cls(indices, offsets)

    @classmethod
    def regular(
        cls, order: Sequence[int], batch_size: int, drop_last: bool = False
    ) -> "IndexBatches":
        """``order`` cut into batches of ``batch_size`` (a shorter last one unless
        ``drop_last``), as ``torch.utils.data.BatchSampler`` cuts its sampler's order."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        indices = np.asarray(order, dtype=np.int64).reshape(-1)
        kept = len(indices) - len(indices) % batch_size if drop_last else len(indices)
        offsets = np.append(np.arange(0, kept, batch_size, dtype=np.int64), kept)
        return cls(indices[:kept], offsets if kept else np.zeros(1, np.int64))

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def batch(self, number: int) -> np.ndarray:
        """The indices of batch ``number``."""
        return self.indices[self.offsets[number] : self.offsets[number + 1]]


@dataclass
class Batch:
    """One batch as produced by the engine (all arrays are owned, never written again).

    Attributes:
        images: ``[B, C, H, W]`` array in the pipeline's output dtype, or a list of
            ``[C, H_i, W_i]`` arrays when the pipeline has no fixed output size.
        indices: int64 ``[B]`` dataset sample indices in batch order.
        boxes: float32 ``[K, 4]`` transformed xyxy boxes (vanished boxes dropped), or None.
        box_rows: int64 ``[K]``: each kept box's row in the ``boxes`` given to the engine, which
            indexes any per-box field (labels, difficult flags, ...), or None.
        box_offsets: int64 ``[B + 1]``; sample ``b`` owns rows ``box_offsets[b]:box_offsets[b+1]``.
        masks: uint8 ``[B, H, W]`` (or a list of ``[H_i, W_i]``), or None.
        skipped: ``(index, path, message)`` for each sample dropped with ``on_error="skip"``.
        batch_index: position of this batch in the epoch's ``IndexBatches``.
        buffer_id: id returned by :meth:`Engine.feed_buffer` for the buffer holding ``images``
            (then ``images`` is that buffer's first ``B`` rows, of the type that was fed), or -1
            when the engine allocated it.
        image_sizes: int64 ``[B, 2]``, each image's true ``(height, width)`` when the epoch pads
            its batches (``start_epoch(pad_to_multiple=...)``): ``images`` is then one
            ``[B, C, Hp, Wp]`` array, each image in the top-left corner of its zero-filled slot
            (``masks`` ``[B, Hp, Wp]`` filled with ``mask_pad_fill``). None otherwise.
    """

    images: Union[np.ndarray, List[np.ndarray], Any]
    indices: np.ndarray
    boxes: Optional[np.ndarray] = None
    box_rows: Optional[np.ndarray] = None
    box_offsets: Optional[np.ndarray] = None
    masks: Union[np.ndarray, List[np.ndarray], None] = None
    skipped: List[Tuple[int, str, str]] = field(default_factory=list)
    batch_index: int = 0
    buffer_id: int = -1
    image_sizes: Optional[np.ndarray] = None


def _core() -> Any:
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
        boxes: Optional float32 ``[M, 4]`` xyxy pixel boxes of all samples, concatenated
            (``Batch.box_rows`` names each kept box's row here).
        offsets: int64 ``[N + 1]`` row offsets of each sample's boxes (required with boxes).
        num_threads: Native worker threads; 0 processes samples in the calling thread.
        prefetch: Batches started and not yet returned, at most (>= 1).
        seed: With the epoch and the sample index, seeds every random augmentation (a sample's
            result does not depend on its batch, its position or the thread count).
        in_order: Deliver batches in order (False hands out whichever batch is ready first).
        on_error: ``"raise"`` (raise at the batch holding the bad sample, naming file and
            index) or ``"skip"`` (drop the sample, report it in ``Batch.skipped``).
        dct_scaling: Decode JPEGs at 1/2, 1/4 or 1/8 scale when a resize shrinks the region
            by at least twice that factor (much faster for large photos; mean difference to
            the full-decode path about 1 uint8 level). False gives the full-decode result.
        source_sizes: Optional int ``[N, 2]`` ``(width, height)`` of each image as the
            annotations state it (0 where unknown): padded batches are then planned before
            their images are decoded (sizes learnt from the files otherwise; a wrong size only
            costs a copy, never a wrong batch).
        mask_pad_fill: The masks' value in the padding of padded batches (images get 0).

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
        offsets: Any = None,
        num_threads: int = 2,
        prefetch: int = 2,
        seed: int = 0,
        in_order: bool = True,
        on_error: str = "raise",
        dct_scaling: bool = True,
        source_sizes: Any = None,
        mask_pad_fill: int = 255,
    ) -> None:
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        self._native = _core().Engine(
            [op if isinstance(op, _core().Op) else dict(op) for op in pipeline],
            [str(p) for p in image_paths],
            None if mask_paths is None else [str(p) for p in mask_paths],
            _as_optional_array(boxes, np.float32, "boxes", 2),
            _as_optional_array(offsets, np.int64, "offsets", 1),
            int(num_threads),
            int(prefetch),
            int(seed) & _U64,
            bool(in_order),
            on_error == "skip",
            bool(dct_scaling),
            _as_optional_array(source_sizes, np.intc, "source_sizes", 2),
            int(mask_pad_fill),
        )
        self._fed: Dict[int, Any] = {}  # fed buffer id -> the object fed (returned as Batch.images)

    @property
    def dataset_size(self) -> int:
        """Number of samples (image files) the indices refer to."""
        return int(self._native.dataset_size())

    @property
    def output_shape(self) -> Optional[Tuple[int, int, int]]:
        """``(C, H, W)`` of every image when the pipeline fixes the size, else None."""
        shape = self._native.output_shape()
        return None if shape is None else tuple(shape)

    @property
    def output_dtype(self) -> np.dtype:
        """The images' dtype (set by the pipeline's ``to_dtype``; uint8 without it)."""
        dtype: np.dtype = np.dtype(self._native.output_dtype())
        return dtype

    def start_epoch(
        self,
        epoch: int,
        batches: Union[IndexBatches, Sequence[Sequence[int]]],
        start_batch: int = 0,
        pad_to_multiple: Optional[int] = None,
    ) -> int:
        """(Re)start an epoch, cancelling the one in progress.

        Args:
            epoch: Epoch number; with ``seed`` it fixes every random draw.
            batches: The epoch's batches of dataset indices, in delivery order: an
                :class:`IndexBatches` or a sequence of index sequences (sizes may differ; an
                empty batch comes back empty).
            start_batch: Skip this many batches (mid-epoch resume); ``Batch.batch_index``
                still counts from the epoch's first batch.
            pad_to_multiple: For a pipeline without a fixed output size: each batch as one
                padded ``[B, C, Hp, Wp]`` array (``Batch.image_sizes``), ``Hp`` and ``Wp``
                the largest height and width rounded up to this multiple, each image written
                by the worker straight into its slot. Ignored for a fixed output size.

        Returns:
            The epoch's ticket: ``next_batch(ticket)`` returns only this epoch's batches.

        Raises:
            ValueError: ``start_batch`` < 0, ``pad_to_multiple`` < 1, an index out of range or
                malformed offsets.
        """
        if pad_to_multiple is not None and int(pad_to_multiple) < 1:
            raise ValueError(f"pad_to_multiple must be >= 1 or None, got {pad_to_multiple}")
        if not isinstance(batches, IndexBatches):
            batches = IndexBatches.of(batches)
        ticket = self._native.start_epoch(
            int(epoch) & _U64,
            np.ascontiguousarray(batches.indices, dtype=np.int64),
            np.ascontiguousarray(batches.offsets, dtype=np.int64),
            int(start_batch),
            0 if pad_to_multiple is None else int(pad_to_multiple),
        )
        self._release_dead_buffers()  # cancelled batches' buffers; unused ones stay queued
        return int(ticket)

    def cancel(self, ticket: Optional[int] = None) -> bool:
        """End the epoch of ``ticket`` now (None: whichever runs), unless a later
        :meth:`start_epoch` already replaced it: its batches in progress are dropped and its
        ``next_batch`` callers (waiting or to come) get None.

        Returns:
            Whether an epoch was cancelled (never a newer one than ``ticket``'s).
        """
        cancelled = self._native.cancel(0 if ticket is None else int(ticket))
        self._release_dead_buffers()
        return bool(cancelled)

    def feed_buffer(self, buffer: Any) -> int:
        """Hand in a destination buffer for a coming batch (e.g. pinned memory).

        Buffers are used first in, first out by the batches started after they were fed: the
        next batch that fits in the oldest queued buffer is written into it (a larger batch
        takes engine memory and leaves the buffer queued). Feed ``prefetch`` buffers before
        :meth:`start_epoch`, then one per :meth:`next_batch` to have every batch land in one.
        Batches started with no buffer queued use engine-owned memory (``Batch.buffer_id ==
        -1``). The engine keeps the buffer alive until it returns it as ``Batch.images``.

        Args:
            buffer: A C-contiguous, writable numpy array or CPU ``torch.Tensor`` of
                :attr:`output_dtype` and shape ``[B, C, H, W]`` (room for ``B`` samples).

        Returns:
            The id reported as ``Batch.buffer_id`` for the batch written into it.

        Raises:
            ValueError: The pipeline has no fixed output size, or the buffer does not fit.
        """
        array = (
            buffer.numpy()
            if hasattr(buffer, "numpy") and not isinstance(buffer, np.ndarray)
            else buffer
        )
        if (
            not isinstance(array, np.ndarray)
            or not array.flags.c_contiguous
            or not array.flags.writeable
        ):
            raise ValueError("feed_buffer needs a C-contiguous writable numpy array or tensor")
        if array.dtype != self.output_dtype:
            raise ValueError(
                f"feed_buffer: dtype {array.dtype} != output dtype {self.output_dtype}"
            )
        shape = self.output_shape
        if shape is None or array.ndim != 4 or tuple(array.shape[1:]) != shape:
            raise ValueError(
                f"feed_buffer needs a [B, *{shape}] buffer, got shape {tuple(array.shape)}"
            )
        buffer_id = self._native.feed_buffer(array)
        self._fed[buffer_id] = buffer
        return int(buffer_id)

    @property
    def current_ticket(self) -> int:
        """The ticket of the latest :meth:`start_epoch` or :meth:`cancel`: when
        ``next_batch(ticket)`` returned None, a different value here means the epoch was
        replaced rather than finished."""
        return int(self._native.current_ticket())

    @property
    def fed_buffers(self) -> int:
        """Fed buffers not yet returned in a batch (queued, or held by a batch in flight)."""
        return len(self._fed)

    def _release_dead_buffers(self) -> None:
        live = set(self._native.live_buffer_ids())
        self._fed = {key: value for key, value in self._fed.items() if key in live}

    def next_batch(self, ticket: Optional[int] = None) -> Optional[Batch]:
        """The next batch of the epoch, or None when the epoch is over.

        Safe to call from several threads at once: each caller gets a different batch.

        Args:
            ticket: From :meth:`start_epoch`: only a batch of that epoch (None once another
                ``start_epoch`` or :meth:`cancel` replaced it), so a consumer of an abandoned
                epoch never takes a batch of the next one. None: the current epoch.

        Returns:
            A :class:`Batch`, or None at the end of the epoch (or before ``start_epoch``).

        Raises:
            FileNotFoundError: A sample's file is missing (``on_error="raise"``).
            conveyor.errors.DecodeError: A sample's image or mask could not be decoded.
            conveyor.errors.ConveyorError: Any other sample failure (e.g. mixed sizes).
        """
        try:
            raw = self._native.next_batch(0 if ticket is None else int(ticket))
        except Exception:
            self._release_dead_buffers()  # the failed batch's buffer
            raise
        if raw is None:
            return None
        batch = Batch(*raw)  # the binding's tuple is in Batch's field order
        if batch.buffer_id >= 0:  # the buffer as it was fed (tensor or array), cut to the batch
            batch.images = self._fed.pop(batch.buffer_id)[: len(batch.indices)]
        return batch

    def stats(self) -> Dict[str, Any]:
        """Counters since construction.

        Returns:
            ``samples_done``, ``samples_skipped``, ``batches_delivered``, ``batches_ready``
            (finished, waiting to be taken: the queue depth), ``wait_seconds`` (time
            :meth:`next_batch` spent blocked) and ``samples_repadded`` (samples of padded
            batches copied into their batch because their size was not known, or not the
            planned one, when the batch started).
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
) -> PipelineResult:
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
    result: PipelineResult = _core().run_pipeline(
        [op if isinstance(op, _core().Op) else dict(op) for op in pipeline],
        image,
        box_array,
        label_array,
        mask,
        int(seed) & _U64,
        int(epoch) & _U64,
        int(index),
    )
    return result


__all__ = ["Batch", "Engine", "IndexBatches", "run_pipeline"]
