"""The native path of ``conveyor.DataLoader``: a conveyor VOC dataset run by the C++ engine.

``native_setup(loader)`` decides whether a loader can run natively and prepares the engine's
inputs; ``NativeIterator`` runs one epoch. The epoch's sample order is the loader's own
(seeded shuffle, torch ``RandomSampler`` with a user generator, any sampler, sharding, resume
point): it is handed to the engine as explicit indices, so the native and the Python paths visit
exactly the same samples in the same batches. Transforms the engine cannot run are applied in
Python on what it produced (one warning per loader names the first of them).

Joint transforms move typed targets in the engine: boxes for ``VOCDetection(target_format=
"boxes")``, masks (nearest-neighbour) for ``VOCSegmentation(target_format="mask")``. torch's
``default_collate``, ``detection_collate`` and ``segmentation_collate`` are built straight from
the engine's batch buffers; any other collate function gets per-sample ``tv_tensors``.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, List, Optional

import numpy as np
import torch
from torch.utils.data import default_collate
from torchvision import tv_tensors

from conveyor.collate import detection_collate, segmentation_collate
from conveyor.loader.generic_path import annotate, describe_sample
from conveyor.loader.planner import NativePlan, plan_transforms
from conveyor.loader.stats import StatsRecorder


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
        engine: The ``conveyor.loader.engine.Engine`` (created at the first epoch).
        buffers: Destination tensors fed to the engine and not yet returned in a batch.
    """

    kind: str
    plan: NativePlan
    joint: bool
    boxes_move: bool
    target_transform: Optional[Callable]
    masks_move: bool = False
    engine: Any = None
    buffers: dict = field(default_factory=dict)  # fed buffer id -> the tensor it views


def _why_not_native(loader: Any) -> Optional[str]:
    """``None`` when the loader qualifies, else a short reason (shown only for transforms)."""
    try:
        from conveyor import _core
        from conveyor.datasets import VOCDetection, VOCFolder, VOCSegmentation
    except ImportError:
        return "conveyor's datasets or native core are not available"
    if not hasattr(_core, "Engine"):
        return "the native core was built without the engine"
    if type(loader.dataset) not in (VOCDetection, VOCSegmentation, VOCFolder):
        return "not a conveyor VOC dataset"
    if not getattr(loader.dataset, "natively_decodable", True):
        return "images the engine does not decode (BMP)"
    if loader.batch_size is None or loader._user_batch_sampler:
        return "no automatic batching or a custom batch_sampler"
    return None


def native_setup(loader: Any) -> Optional[NativeSetup]:
    """A ``NativeSetup`` when ``loader`` can run on the engine, else ``None`` (generic path).

    Warns once when a transform forces Python work, naming it.
    """
    if _why_not_native(loader) is not None:
        return None
    from conveyor.datasets import VOCDetection

    dataset = loader.dataset
    kind = getattr(dataset, "task", None)  # VOCFolder says; the VOC datasets are one each
    kind = kind or ("detection" if isinstance(dataset, VOCDetection) else "segmentation")
    typed = getattr(dataset, "target_format", None) in ("boxes", "mask")
    joint_transform = _joint_transforms(dataset)
    joint = joint_transform is not None
    moving = ()
    if joint and typed:
        moving = (tv_tensors.BoundingBoxes,) if kind == "detection" else (tv_tensors.Mask,)
    plan = plan_transforms(joint_transform if joint else dataset.transform, moving)
    if typed:
        plan.to_tensor = True  # the dataset's images are tensors from the start
    elif kind == "segmentation" and joint:
        # torchvision's v2 transforms treat VOCSegmentation's PIL mask as a second *image*
        # (bilinear resize, dtype scaling); only Python reproduces that faithfully. With
        # target_format="mask" the target is a tv_tensors.Mask, which the engine moves.
        return None
    if plan.blocker is not None and not plan.to_tensor:
        _warn(plan, "the whole pipeline runs in Python (the native part must end in a tensor)")
        return None
    if not plan.to_tensor:
        return None  # the dataset returns PIL images: only Python produces those
    if plan.blocker is not None:
        _warn(plan, "it and the transforms after it run in Python on the engine's output")
    return NativeSetup(
        kind=kind,
        plan=plan,
        joint=joint,
        boxes_move=joint and typed and kind == "detection",
        masks_move=joint and typed and kind == "segmentation",
        target_transform=None if joint else dataset.target_transform,
    )


def _joint_transforms(dataset: Any) -> Optional[Callable]:
    # torchvision's VisionDataset wraps transform/target_transform in a StandardTransform;
    # a joint `transforms=` argument is stored as given.
    from torchvision.datasets.vision import StandardTransform

    transforms = getattr(dataset, "transforms", None)
    if transforms is None or isinstance(transforms, StandardTransform):
        return None
    return transforms


def _warn(plan: NativePlan, consequence: str) -> None:
    warnings.warn(
        f"conveyor.DataLoader: {plan.blocker} cannot run natively ({plan.reason}); "
        f"{consequence}, which is slower",
        stacklevel=5,
    )


def create_engine(loader: Any, setup: NativeSetup) -> Any:
    """The engine for ``loader``'s dataset and pipeline (reused across epochs)."""
    from conveyor.loader.engine import Engine

    dataset = loader.dataset
    sources: dict = {}
    if setup.boxes_move:
        annotations = dataset.native_annotations
        # labels carry each box's global row: the kept rows then index every per-object field
        sources = dict(
            boxes=annotations.boxes,
            labels=np.arange(len(annotations.boxes), dtype=np.int64),
            offsets=annotations.offsets,
        )
    if setup.masks_move:
        sources = dict(mask_paths=dataset.masks)
    return Engine(
        setup.plan.ops,
        dataset.images,
        batch_size=loader.batch_size,
        num_threads=loader.num_workers,
        prefetch=max(1, loader.prefetch_factor or 2),
        seed=loader.seed,
        shuffle=False,
        drop_last=loader.drop_last,
        in_order=loader.in_order,
        on_error=loader.on_error,
        **sources,
    )


class NativeIterator:
    """One epoch of a loader running on the engine. Created by ``DataLoader.__iter__``.

    Args:
        loader: The ``conveyor.DataLoader``.
        setup: Its ``NativeSetup`` (with the engine created).
        order: This rank's sample order for the epoch (indices into the dataset).
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
        order: List[int],
        epoch: int,
        skip: int,
        stats: StatsRecorder,
        on_batch: Callable[[], None],
        on_end: Callable[[], None],
        pin: Optional[str],
        feed_buffers: bool = False,
    ) -> None:
        self._loader = loader
        self._dataset = loader.dataset
        self._setup = setup
        self._engine = setup.engine
        self._collate = loader.collate_fn
        self._stats = stats
        self._on_batch = on_batch
        self._on_end = on_end
        self._length = len(loader)
        self._done = False
        self._pin = pin
        self._buffers = setup.buffers  # fed buffers outlive epochs: they stay queued
        self._targets_cache: Optional[tuple] = None  # (batch, its per-image target tensors)
        self._feed = (pin is not None or feed_buffers) and self._engine.output_shape is not None
        if self._feed:  # fed before the epoch starts, so its first batches land in them
            self._forget_dead_buffers()
            while len(self._buffers) < max(1, loader.prefetch_factor or 2) + 1:
                self._feed_one()
        self._engine.start_epoch(epoch, start_batch=skip, indices=np.asarray(order, np.int64))
        self._forget_dead_buffers()

    def __iter__(self) -> "NativeIterator":
        return self

    def __len__(self) -> int:
        return self._length

    def _forget_dead_buffers(self) -> None:
        # buffers of batches a restart cancelled are never returned; drop them here too
        live = getattr(self._engine._native, "live_buffer_ids", None)
        if live is not None and self._buffers:
            alive = set(live())
            for buffer_id in [b for b in self._buffers if b not in alive]:
                del self._buffers[buffer_id]

    def _feed_one(self) -> None:
        shape = (self._loader.batch_size,) + tuple(self._engine.output_shape)
        dtype = getattr(torch, self._engine.output_dtype.name)
        tensor = torch.empty(shape, dtype=dtype, pin_memory=self._pin is not None)
        self._buffers[self._engine.feed_buffer(tensor.numpy())] = tensor

    def __next__(self) -> Any:
        while True:
            if self._done:
                raise StopIteration
            started = time.perf_counter()
            try:
                batch = self._engine.next_batch()
            except Exception:
                self._on_batch()  # like torch, the epoch goes on after a failed batch
                raise
            if batch is None:
                self._finish(ended=True)
                raise StopIteration
            for index, _path, message in batch.skipped:
                self._stats.record_skip(int(index), message)
            count = len(batch.indices)
            if count == 0:
                self._on_batch()
                continue
            try:
                result, count = self._assemble(batch)
            except Exception:
                self._on_batch()
                raise
            if count == 0:
                self._on_batch()
                continue
            self._stats.record_batch(count, time.perf_counter() - started)
            self._stats.queue_depth = int(self._engine.stats().get("batches_ready", 0))
            self._on_batch()
            return result

    # ----------------------------------------------------------------------------- assembly

    def _images(self, batch: Any) -> Any:
        if batch.buffer_id >= 0:
            tensor = self._buffers.pop(batch.buffer_id)[: len(batch.indices)]
            self._feed_one()
            return tensor
        if isinstance(batch.images, list):
            return [torch.from_numpy(image) for image in batch.images]
        images = torch.from_numpy(batch.images)
        if self._pin is not None:
            images = images.pin_memory()
        return images

    def _assemble(self, batch: Any) -> Any:
        """``(batch as the user's collate function builds it, samples in it)``; ``(None, 0)`` when
        every sample failed the Python part (targets, transforms the engine cannot run)."""
        images = self._images(batch)
        plan = self._setup.plan
        if self._stacks_masks(images, batch):
            return self._segmentation_batch(images, batch), len(batch.indices)
        fused = not plan.tail and self._collate is detection_collate
        kept: List[int] = []
        samples = []
        for b in range(len(batch.indices)):
            try:
                target = self._target(batch, b)
                if fused:
                    samples.append(target)
                else:
                    image: Any = tv_tensors.Image(images[b])
                    if plan.tail:
                        image, target = self._run_tail(image, target)
                    samples.append((image, target))
            except Exception as error:
                index = int(batch.indices[b])
                if self._loader.on_error == "skip":
                    self._stats.record_skip(index, f"{type(error).__name__}: {error}")
                    continue
                annotate(
                    error,
                    f"conveyor.DataLoader: raised while loading "
                    f"{describe_sample(self._dataset, index)} "
                    f"(batch {batch.batch_index})",
                )
                raise
            kept.append(b)
        self._targets_cache = None
        if not kept:
            return None, 0
        if not fused:
            return self._collate(samples), len(kept)
        if len(kept) < len(batch.indices):  # a target failed: drop its image too
            images = images[kept] if isinstance(images, torch.Tensor) else [images[b] for b in kept]
        # the native detection collate: stacked images, list of targets
        return (images, samples), len(kept)

    def _stacks_masks(self, images: Any, batch: Any) -> bool:
        # torch's default_collate of (Image, Mask) pairs ([images, masks [B, 1, H, W]]) and
        # segmentation_collate ((images, masks [B, H, W])) are built straight from the engine's
        # buffers when nothing runs per sample in Python
        return (
            self._setup.masks_move
            and not self._setup.plan.tail
            and self._collate in (default_collate, segmentation_collate)
            and isinstance(images, torch.Tensor)
            and isinstance(batch.masks, np.ndarray)
        )

    def _segmentation_batch(self, images: torch.Tensor, batch: Any) -> Any:
        masks = torch.from_numpy(batch.masks)
        if self._setup.plan.mask_dtype is not None:
            masks = masks.to(self._setup.plan.mask_dtype)
        if self._pin is not None:
            masks = masks.pin_memory()
        if self._collate is segmentation_collate:
            return images, masks
        return [images, masks.unsqueeze(1)]  # as Mask samples [1, H, W] stack

    def _mask_target(self, batch: Any, b: int) -> Any:
        mask = torch.from_numpy(batch.masks[b]).unsqueeze(0)
        if self._setup.plan.mask_dtype is not None:
            mask = mask.to(self._setup.plan.mask_dtype)
        return tv_tensors.Mask(mask)

    def _run_tail(self, image: Any, target: Any) -> Any:
        for transform in self._setup.plan.tail:
            if self._setup.joint:
                image, target = transform(image, target)
            else:
                image = transform(image)
        return image, target

    def _target(self, batch: Any, b: int) -> Any:
        index = int(batch.indices[b])
        dataset = self._dataset
        check = getattr(dataset, "check_sample", None)  # VOCFolder: a malformed XML raises
        if check is not None:
            check(index)
        if self._setup.masks_move:
            target = self._mask_target(batch, b)
        elif self._setup.kind == "segmentation" and dataset.target_format == "mask":
            from conveyor.datasets.voc import read_mask_tensor

            target = read_mask_tensor(dataset.masks[index])  # image-only transform: unmoved
        elif self._setup.kind == "segmentation":
            from PIL import Image

            target = Image.open(dataset.masks[index])
        elif getattr(dataset, "target_format", "dict") == "boxes":
            target = self._boxes_target(batch, b, index)
        else:
            from conveyor import voc

            path = dataset.annotations[index]
            with open(path, "rb") as file:
                target = voc.parse_voc_xml(file.read(), source=path)
        if self._setup.target_transform is not None:
            target = self._setup.target_transform(target)
        return target

    def _boxes_target(self, batch: Any, b: int, index: int) -> Any:
        if not self._setup.boxes_move:  # image-only transform: boxes stay on the source image
            from PIL import Image

            with Image.open(self._dataset.images[index]) as source:
                width, height = source.size
            return self._dataset.typed_target(index, (height, width))
        boxes, labels, difficult = self._batch_targets(batch)
        return {
            "boxes": boxes[b],
            "labels": labels[b],
            "difficult": difficult[b],
            "image_id": index,
        }

    def _batch_targets(self, batch: Any) -> Any:
        """Per-image boxes, labels and difficult flags of ``batch``, built once per batch: one
        tensor each for the whole batch, split into per-image views (cheaper than per image)."""
        cached = self._targets_cache
        if cached is not None and cached[0] is batch:
            return cached[1]
        annotations = self._dataset.native_annotations
        counts = np.diff(batch.box_offsets).tolist()
        rows = batch.labels  # each kept box's global row: indexes every per-object field
        boxes = torch.from_numpy(batch.boxes).split(counts)
        labels = torch.from_numpy(annotations.labels[rows]).split(counts)
        difficult = torch.from_numpy(annotations.difficult[rows]).split(counts)
        images = batch.images
        wrapped = []
        template = None
        for b, image_boxes in enumerate(boxes):
            if template is None or not isinstance(images, np.ndarray):
                image = images[b]
                template = tv_tensors.BoundingBoxes(
                    image_boxes,
                    format=tv_tensors.BoundingBoxFormat.XYXY,
                    canvas_size=(int(image.shape[-2]), int(image.shape[-1])),
                )
                wrapped.append(template)
            else:  # same canvas for every image of a stacked batch: wrap like the first
                wrapped.append(tv_tensors.wrap(image_boxes, like=template))
        targets = (wrapped, labels, difficult)
        self._targets_cache = (batch, targets)
        return targets

    def _finish(self, ended: bool) -> None:
        if self._done:
            return
        self._done = True
        if ended:
            self._on_end()

    def close(self) -> None:
        """Stop early (the engine's threads stop at the next ``start_epoch`` or ``close``)."""
        self._finish(ended=False)
