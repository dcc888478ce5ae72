"""The native path of ``conveyor.DataLoader``: a conveyor VOC dataset run by the C++ engine.

``plan_native(loader)`` decides whether a loader can run natively (warning once, and saying why,
when it cannot or when part of it runs in Python) and prepares the engine's inputs;
``NativeIterator`` runs one epoch. The epoch's batches are the loader's own (seeded shuffle, torch
``RandomSampler`` with a user generator, any sampler, sharding, resume point): they are handed to
the engine as batches of indices, so the native and the Python paths visit exactly the same
samples in the same batches.

Joint transforms move typed targets in the engine: boxes for ``VOCDetection(target_format=
"boxes")``, masks (nearest-neighbour) for ``VOCSegmentation(target_format="mask")``. What stays
in Python -- transforms the engine cannot run, targets, the collate -- runs on finisher threads
(``native_batch``, ``ordered_finishers``), never per sample on the training thread.
"""

from __future__ import annotations

import threading
import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np
import torch
from torchvision import tv_tensors

from conveyor.loader.native_batch import BatchBuilder
from conveyor.loader.ordered_finishers import (
    BATCH,
    END,
    ERROR,
    FinishersClosed,
    OrderedFinishers,
)
from conveyor.loader.padding import MASK_FILL
from conveyor.loader.planner import NativePlan, plan_transforms
from conveyor.loader.stats import StatsRecorder
from conveyor.loader.worker_limits import effective_workers


@dataclass
class NativeSetup:
    """Everything the native iterator needs, computed once per loader.

    Attributes:
        kind: ``"detection"`` or ``"segmentation"``.
        plan: How the transforms split between the engine and Python.
        joint: The transforms take ``(image, target)`` (a ``transforms=`` argument).
        boxes_move: Boxes are transformed with the image (joint v2 transforms, boxes target).
        masks_move: Masks are transformed with the image (joint v2 transforms, mask target).
        target_transform: Applied in Python to each target (separate-transform datasets).
        batch_size: Rows of a fed destination buffer: the loader's batch size, or its batch
            sampler's ``batch_size`` (``None``: batches vary, nothing is fed).
        engine: The ``conveyor.loader.engine.Engine`` (created at the first epoch; it keeps the
            fed destination tensors until it returns them in a batch).
    """

    kind: str
    plan: NativePlan
    joint: bool
    boxes_move: bool
    target_transform: Optional[Callable[..., Any]]
    masks_move: bool = False
    batch_size: Optional[int] = None
    engine: Any = None


def _why_not_native(loader: Any) -> Optional[str]:
    """``None`` when the loader's dataset can run on the engine, else why not."""
    try:
        from conveyor import _core
        from conveyor.datasets import VOCDetection, VOCFolder, VOCSegmentation
    except ImportError:
        return "conveyor's datasets or native core are not available"
    if not hasattr(_core, "Engine"):
        return "the native core was built without the engine"
    if type(loader.dataset) not in (VOCDetection, VOCSegmentation, VOCFolder):
        if isinstance(loader.dataset, (VOCDetection, VOCSegmentation, VOCFolder)):
            return (
                f"{type(loader.dataset).__qualname__} subclasses a conveyor VOC dataset "
                "(its __getitem__ may differ, so only Python runs it faithfully)"
            )
        return "not a conveyor VOC dataset"
    if not getattr(loader.dataset, "natively_decodable", True):
        return "images the engine does not decode (BMP)"
    if loader.batch_size is None and not loader._user_batch_sampler:
        return "no automatic batching"
    return None


def _batch_size(loader: Any) -> Optional[int]:
    # any batch sampler runs natively (the engine takes batches of any size); one that names
    # its batch size (torch's BatchSampler, torchvision's or conveyor's GroupedBatchSampler)
    # also gets fed destination buffers of that many rows
    if loader._user_batch_sampler:
        size = getattr(loader.batch_sampler, "batch_size", None)
        return size if isinstance(size, int) and not isinstance(size, bool) and size > 0 else None
    batch_size: Optional[int] = loader.batch_size
    return batch_size


def native_setup(loader: Any) -> Optional[NativeSetup]:
    """A ``NativeSetup`` when ``loader`` can run on the engine, else ``None`` (generic path)."""
    return plan_native(loader)[0]


def plan_native(loader: Any) -> Tuple[Optional[NativeSetup], str]:
    """``(setup or None, why Python runs all or part of the pipeline, "" when nothing does)``.

    A conveyor VOC dataset that leaves the native path, or whose transforms partly run in
    Python, warns once here (called once per loader and transforms), naming why.
    """
    why = _why_not_native(loader)
    if why is not None:
        try:
            from conveyor.datasets import VOCDetection, VOCFolder, VOCSegmentation

            ours = isinstance(loader.dataset, (VOCDetection, VOCSegmentation, VOCFolder))
        except ImportError:
            ours = False
        if ours:
            _warn_python(why, "the whole pipeline runs in Python")
        return None, why
    from conveyor.datasets import VOCDetection

    dataset = loader.dataset
    kind = getattr(dataset, "task", None)  # VOCFolder says; the VOC datasets are one each
    kind = kind or ("detection" if isinstance(dataset, VOCDetection) else "segmentation")
    typed = getattr(dataset, "target_format", None) in ("boxes", "mask")
    joint_transform = _joint_transforms(dataset)
    joint = joint_transform is not None
    moving: Tuple[type, ...] = ()
    if joint and typed:
        moving = (tv_tensors.BoundingBoxes,) if kind == "detection" else (tv_tensors.Mask,)
    # a PIL mask moves natively only through torchvision's segmentation reference transforms
    pil_mask = joint and not typed and kind == "segmentation"
    plan = plan_transforms(
        joint_transform if joint else dataset.transform, moving, joint=joint, pil_mask=pil_mask
    )
    if typed:
        plan.to_tensor = True  # the dataset's images are tensors from the start
    elif pil_mask and not plan.to_tensor:
        # torchvision's v2 transforms treat VOCSegmentation's PIL mask as a second *image*
        # (bilinear resize, dtype scaling); only Python reproduces that faithfully. With
        # target_format="mask" the target is a tv_tensors.Mask, which the engine moves.
        why = (
            'VOCSegmentation(target_format="pil") with joint transforms: '
            f"{plan.blocker} cannot move the PIL mask natively ({plan.reason})"
        )
        _warn_python(why, "the whole pipeline runs in Python")
        return None, why
    if plan.blocker is not None and not plan.to_tensor:
        why = f"{plan.blocker} cannot run natively ({plan.reason})"
        _warn_python(
            why, "the whole pipeline runs in Python (the native part must end in a tensor)"
        )
        return None, why
    if not plan.to_tensor:
        why = (
            "the transforms return PIL images (no v2.ToImage / ToTensor / PILToTensor), "
            "which only Python produces"
        )
        _warn_python(why, "the whole pipeline runs in Python")
        return None, why
    why = ""
    if plan.blocker is not None:
        why = f"{plan.blocker} cannot run natively ({plan.reason})"
        _warn_python(why, "it and the transforms after it run in Python on the engine's output")
    setup = NativeSetup(
        kind=kind,
        plan=plan,
        joint=joint,
        boxes_move=joint and typed and kind == "detection",
        masks_move=joint and (typed or plan.pil_mask) and kind == "segmentation",
        target_transform=None if joint else dataset.target_transform,
        batch_size=_batch_size(loader),
    )
    return setup, why


def _joint_transforms(dataset: Any) -> Optional[Callable[..., Any]]:
    # torchvision's VisionDataset wraps transform/target_transform in a StandardTransform;
    # a joint `transforms=` argument is stored as given.
    from torchvision.datasets.vision import StandardTransform

    transforms = getattr(dataset, "transforms", None)
    if transforms is None or isinstance(transforms, StandardTransform):
        return None
    joint: Callable[..., Any] = transforms
    return joint


def _warn_python(why: str, consequence: str) -> None:
    warnings.warn(f"conveyor.DataLoader: {why}; {consequence}, which is slower", stacklevel=6)


def create_engine(loader: Any, setup: NativeSetup) -> Any:
    """The engine for ``loader``'s dataset and pipeline (reused across epochs)."""
    from conveyor.loader.engine import Engine

    dataset = loader.dataset
    sources: Dict[str, Any] = {}
    if setup.boxes_move:
        annotations = dataset.native_annotations
        # each kept box comes back with its row (Batch.box_rows): it indexes every per-object field
        sources = dict(boxes=annotations.boxes, offsets=annotations.offsets)
        # the annotations' image sizes let padded batches be planned before decoding (the
        # engine checks them against the files and learns the others' at their first decode)
        sources["source_sizes"] = np.stack([annotations.widths, annotations.heights], axis=1)
    if setup.masks_move:
        sources = dict(mask_paths=dataset.masks)
    return Engine(
        setup.plan.ops,
        dataset.images,
        num_threads=effective_workers(loader.num_workers),  # CONVEYOR_MAX_WORKERS caps it
        prefetch=max(1, loader.prefetch_factor or 2),
        seed=loader.seed,
        in_order=loader.in_order,
        on_error=loader.on_error,
        mask_pad_fill=MASK_FILL,
        **sources,
    )


class NativeIterator:
    """One epoch of a loader running on the engine. Created by ``DataLoader.__iter__``.

    With ``num_workers > 0`` the Python part of each batch (targets, transforms the engine
    cannot run, the collate) runs on ``num_workers`` finisher threads, several batches at once;
    ``next()`` only pops the next finished batch (in the epoch's order, whatever thread
    finished first). With ``num_workers == 0`` it all runs in ``next()``, as torch's
    single-process loading does. Several threads may call ``next()`` on one iterator: each
    batch goes to exactly one of them.

    Args:
        loader: The ``conveyor.DataLoader``.
        setup: Its ``NativeSetup`` (with the engine created).
        batches: This rank's batches of dataset indices for the epoch (``IndexBatches``).
        epoch: The epoch number (seeds the random augmentations).
        skip: Batches to skip (mid-epoch resume).
        stats: Counters shown by ``loader.stats``.
        on_batch: Called after each delivered batch; on_end: once at the epoch's end.
        pin: ``None`` or the device type to pin for (buffers are fed to the engine).
        feed_buffers: Feed engine-written buffers even without pinning (tests the pinned path
            on machines without an accelerator).
    """

    def __init__(
        self,
        loader: Any,
        setup: NativeSetup,
        batches: Any,
        epoch: int,
        skip: int,
        stats: StatsRecorder,
        on_batch: Callable[[], None],
        on_end: Callable[[], None],
        pin: Optional[str],
        feed_buffers: bool = False,
    ) -> None:
        self._loader = loader  # keeps the loader (and so its engine) alive, as torch's iterators do
        self._engine = setup.engine
        self._stats = stats
        self._on_batch = on_batch
        self._on_end = on_end
        self._length = len(loader)
        self._done = False
        self._superseded = False  # closed because iter(loader) started a newer epoch
        self._lock = threading.Lock()  # num_workers == 0: one next() at a time
        engine = self._engine
        buffer_shape = None
        if (
            (pin is not None or feed_buffers)
            and engine.output_shape is not None
            and setup.batch_size is not None  # a batch sampler without a batch_size: none fed
        ):
            buffer_shape = (setup.batch_size,) + tuple(engine.output_shape)
        dtype = getattr(torch, engine.output_dtype.name)
        pinned = pin is not None

        def refill() -> None:  # one fed buffer per batch that used one
            if buffer_shape is not None:
                engine.feed_buffer(torch.empty(buffer_shape, dtype=dtype, pin_memory=pinned))

        prefetch = max(1, loader.prefetch_factor or 2)
        if buffer_shape is not None:  # fed before the epoch starts: its first batches use them
            # (fed buffers outlive epochs: unused ones stay queued in the engine)
            while engine.fed_buffers < prefetch + 1:
                refill()
        self._builder = BatchBuilder(
            setup,
            loader.dataset,
            loader.collate_fn,
            loader.on_error,
            stats,
            pin,
            refill,
            pad_to_multiple=getattr(loader, "pad_to_multiple", None),
        )
        self._ticket = engine.start_epoch(
            epoch, batches, start_batch=skip, pad_to_multiple=self._builder.engine_padding()
        )
        self._finishers: Optional[OrderedFinishers] = None
        if loader.num_workers > 0:
            ticket = self._ticket
            self._finishers = OrderedFinishers(
                loader.num_workers,
                take=lambda: engine.next_batch(ticket),
                finish=self._builder.build,
                capacity=loader.num_workers * prefetch,
                name="conveyor-native-finisher",
            )

    def __iter__(self) -> "NativeIterator":
        return self

    def __len__(self) -> int:
        return self._length

    def __next__(self) -> Any:
        while True:
            if self._done:
                self._raise_if_superseded()
                raise StopIteration
            started = time.perf_counter()
            if self._finishers is not None:
                kind, item = self._pop_finished(self._finishers)
            else:
                kind, item = self._finish_here()
            if kind == END:
                if not self._done and self._engine.current_ticket != self._ticket:
                    self._superseded = True  # another iterator's start_epoch replaced ours
                    self._finish(ended=False)
                    raise self._superseded_error()
                self._finish(ended=True)
                raise StopIteration
            self._on_batch()  # like torch, the epoch goes on after a failed batch
            if kind == ERROR:
                raise item
            result, count = item
            if count == 0:
                continue  # every sample skipped
            self._stats.record_batch(count, time.perf_counter() - started)
            ready = self._engine.stats().get("batches_ready", 0)
            self._stats.queue_depth = int(ready) + (self._finishers.ready if self._finishers else 0)
            return result

    def _pop_finished(self, finishers: OrderedFinishers) -> Tuple[str, Any]:
        try:
            return finishers.get()
        except FinishersClosed:
            self._raise_if_superseded()
            return END, None

    def _finish_here(self) -> Tuple[str, Any]:
        with self._lock:
            if self._done:
                return END, None
            try:
                batch = self._engine.next_batch(self._ticket)
                if batch is None:
                    self._raise_if_superseded()
                    return END, None  # __next__ tells a finished epoch from a replaced one
                return BATCH, self._builder.build(batch)
            except RuntimeError as error:
                if self._superseded:
                    raise self._superseded_error() from error
                return ERROR, error
            except Exception as error:
                return ERROR, error

    def _superseded_error(self) -> RuntimeError:
        return RuntimeError(
            "conveyor.DataLoader: this iterator was closed because iter() was called again on "
            "its loader (a second loop over the same loader, maybe in another thread); a loader "
            "on the native path runs one epoch at a time, so its batches now go to the new "
            "iterator. Use one loader per concurrent loop."
        )

    def _raise_if_superseded(self) -> None:
        if self._superseded:
            raise self._superseded_error()

    def _finish(self, ended: bool) -> None:
        if self._done:
            return
        self._done = True
        if self._finishers is not None:
            self._finishers.stop()
        self._engine.cancel(self._ticket)  # wakes takers of this epoch; never a newer one
        if self._finishers is not None:
            self._finishers.stop(join_timeout=5.0)
        if ended:
            self._on_end()

    def close(self, superseded: bool = True) -> None:
        """Stop early: drop the batches in progress and stop the finisher threads. Called by
        ``iter(loader)`` for the previous iterator (whose next ``next()`` then raises a clear
        RuntimeError instead of taking the new epoch's batches)."""
        if not self._done:
            self._superseded = superseded
        self._finish(ended=False)

    def __del__(self) -> None:
        try:
            if not self._done:
                self._finish(ended=False)
        except Exception:  # interpreter shutdown: the engine may be gone already
            pass
