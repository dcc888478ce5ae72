"""The Python part of a native batch: from the engine's ``Batch`` to what the collate returns.

``BatchBuilder.build`` runs on the finisher threads (``ordered_finishers``), several batches at
once, never on the training thread when ``num_workers > 0``. Collates conveyor recognises are
built straight from the engine's batch buffers (no per-sample tensors, no copy of the pixels):

- ``conveyor.collate.detection_collate``: ``(images [B, C, H, W] or list, list of targets)``;
- ``tuple(zip(*batch))`` (torchvision's references' ``utils.collate_fn``, recognised by its
  code): ``(tuple of per-image views, tuple of targets)``;
- a user's ``(torch.stack(images), list(targets))`` collate written one of the usual ways,
  recognised by its code (see ``stacks_images_and_lists_targets``): the engine's stacked batch;
- ``segmentation_collate`` and torch's ``default_collate`` of ``(image, mask)`` samples whose
  masks the engine moved: stacked images and masks.

Any other collate gets the per-sample ``(tv_tensors.Image view, target)`` list, as torch's
DataLoader would pass it (views into the batch buffer: the pixels are not copied). Transforms the
engine cannot run (the plan's tail) run per sample before the collate.
"""

from __future__ import annotations

import builtins
import threading
import types
from typing import Any, Callable, List, Optional, Tuple

import numpy as np
import torch
from torch.utils.data import default_collate
from torchvision import tv_tensors

from conveyor.collate import detection_collate, segmentation_collate
from conveyor.loader.generic_path import annotate, describe_sample
from conveyor.loader.padding import (
    ImageList,
    pad_collated,
    pad_images,
    pad_masks,
    padding_pixels,
)
from conveyor.loader.stats import StatsRecorder

# varargs, varkeywords, generator, coroutine, iterable coroutine, async generator (not the
# __future__ or nesting flags, which depend only on where the function was defined)
_KIND_FLAGS = 0x4 | 0x8 | 0x20 | 0x80 | 0x100 | 0x200
# per-image (boxes, labels, difficult) of a batch, views into one tensor each
_ImageFields = Tuple[List[torch.Tensor], Tuple[torch.Tensor, ...], Tuple[torch.Tensor, ...]]


def _same_code(code: types.CodeType, reference: types.CodeType) -> bool:
    """The same byte code, names, constants (nested comprehensions compared the same way),
    argument count and kind of function; local variable names may differ."""
    if (
        code.co_code != reference.co_code
        or code.co_names != reference.co_names
        or code.co_argcount != reference.co_argcount
        or code.co_kwonlyargcount != reference.co_kwonlyargcount
        or code.co_flags & _KIND_FLAGS != reference.co_flags & _KIND_FLAGS
        or code.co_freevars
        or len(code.co_cellvars) != len(reference.co_cellvars)
        or len(code.co_consts) != len(reference.co_consts)
    ):
        return False
    for const, expected in zip(code.co_consts, reference.co_consts):
        if isinstance(expected, types.CodeType):
            if not isinstance(const, types.CodeType) or not _same_code(const, expected):
                return False
        elif type(const) is not type(expected) or const != expected:
            return False
    return True


def _global_names(code: types.CodeType) -> List[str]:
    names = list(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names += _global_names(const)
    return names


_UNBOUND = object()


def _is_reference(collate: Any, reference: Callable[..., Any]) -> bool:
    """Whether ``collate`` is ``reference`` written again: same code (``_same_code``), no
    closure or defaults, and every global or builtin the reference uses (``torch``, ``zip``,
    ``list``, ...) bound to the same object in the collate's module (not shadowed)."""
    code = getattr(collate, "__code__", None)
    if not isinstance(code, types.CodeType):
        return False
    doc = getattr(collate, "__doc__", None)
    if isinstance(doc, str) and code.co_consts and code.co_consts[0] == doc:
        code = code.replace(co_consts=(None,) + code.co_consts[1:])  # a docstring changes nothing
    if (
        getattr(collate, "__closure__", None)
        or getattr(collate, "__defaults__", None)
        or getattr(collate, "__kwdefaults__", None)
        or not _same_code(code, reference.__code__)
    ):
        return False
    scope = getattr(collate, "__globals__", {})
    for name in _global_names(code):
        expected = reference.__globals__.get(name, getattr(builtins, name, _UNBOUND))
        if expected is _UNBOUND:
            continue  # an attribute name (torch.stack's "stack")
        if scope.get(name, getattr(builtins, name, _UNBOUND)) is not expected:
            return False
    return True


def _zip_collate_reference(batch: Any) -> Tuple[Any, ...]:  # compared by code, never called
    return tuple(zip(*batch))


def is_zip_collate(collate: Any) -> bool:
    """Whether ``collate`` is ``def f(batch): return tuple(zip(*batch))`` (or the same lambda),
    as torchvision's detection and segmentation references define ``utils.collate_fn``: the same
    byte code, the same global names, and ``tuple``/``zip`` not shadowed in its module."""
    return _is_reference(collate, _zip_collate_reference)


# The usual ways of writing "stack the images, keep the targets" (compared by code, never
# called): a collate written exactly one of these ways (any variable names, def or lambda)
# does exactly what the fused path builds, on every batch.
def _stack_zip_list(batch: Any) -> Any:
    images, targets = zip(*batch)
    return torch.stack(images), list(targets)


def _stack_zip_tuple(batch: Any) -> Any:
    images, targets = zip(*batch)
    return torch.stack(images), tuple(targets)


def _stack_indexed_list(batch: Any) -> Any:
    return torch.stack([sample[0] for sample in batch]), [sample[1] for sample in batch]


def _stack_indexed_tuple(batch: Any) -> Any:
    return torch.stack([sample[0] for sample in batch]), tuple(sample[1] for sample in batch)


def _stack_unpacked_list(batch: Any) -> Any:
    return torch.stack([image for image, _ in batch]), [target for _, target in batch]


def _stack_unpacked_tuple(batch: Any) -> Any:
    return torch.stack([image for image, _ in batch]), tuple(target for _, target in batch)


_STACK_REFERENCES = (
    (_stack_zip_list, list),
    (_stack_zip_tuple, tuple),
    (_stack_indexed_list, list),
    (_stack_indexed_tuple, tuple),
    (_stack_unpacked_list, list),
    (_stack_unpacked_tuple, tuple),
)


def stacks_images_and_lists_targets(collate: Callable[..., Any]) -> Optional[type]:
    """Whether ``collate`` is ``(torch.stack(images), list(targets))`` (or a tuple of targets)
    -- the collate users write for detection -- written one of the usual ways
    (``_STACK_REFERENCES``: ``zip(*batch)``, ``sample[0]``/``sample[1]`` or ``image, _``
    comprehensions; any variable names, ``def`` or ``lambda``). Recognised by its code, never
    by calling it: a collate that matches on some batches and differs on others (by size,
    content, state or side effects) cannot be told apart by behaviour, and fusing it would
    give silently different batches. Returns the targets' container type (list or tuple), or
    None (not recognised: it then runs as written, on per-sample tensors)."""
    for reference, container in _STACK_REFERENCES:
        if _is_reference(collate, reference):
            return container
    return None


def collate_kind(collate: Callable[..., Any], has_tail: bool) -> str:
    """``"detection"``, ``"zip"``, ``"stack_list"``, ``"stack_tuple"``, ``"segmentation"``,
    ``"default"`` or ``"user"`` (recognised by identity or by code; a collate is never called
    to find out)."""
    if collate is detection_collate:
        return "detection"
    if collate is segmentation_collate:
        return "segmentation"
    if collate is default_collate:
        return "default"
    if is_zip_collate(collate):
        return "zip"
    container = stacks_images_and_lists_targets(collate)
    if container is list:
        return "stack_list"
    if container is tuple:
        return "stack_tuple"
    return "user"


class BatchBuilder:
    """Turns engine batches of one loader into collated batches; thread-safe (no state per batch).

    Args:
        setup: The loader's ``NativeSetup``.
        dataset: The loader's dataset.
        collate: The loader's ``collate_fn``.
        on_error: ``"raise"`` or ``"skip"`` (for the Python part of a sample).
        stats: Records skipped samples.
        pin: ``None`` or the device type to pin for.
        refill: Called once per batch that used a fed buffer (feeds the next one).
        pad_to_multiple: ``None``, or pad each batch's images into one zero-padded
            ``ImageList`` whose height and width are multiples of it (``padding``).
    """

    def __init__(
        self,
        setup: Any,
        dataset: Any,
        collate: Callable[..., Any],
        on_error: str,
        stats: StatsRecorder,
        pin: Optional[str],
        refill: Callable[[], None],
        pad_to_multiple: Optional[int] = None,
    ) -> None:
        self._setup = setup
        self._plan = setup.plan
        self._dataset = dataset
        self._collate = collate
        self._on_error = on_error
        self._stats = stats
        self._pin = pin
        self._refill = refill
        self._multiple = pad_to_multiple
        self._kind: Optional[str] = None
        self._kind_lock = threading.Lock()

    @property
    def kind(self) -> str:
        """The collate's kind (``collate_kind``), found at the first batch."""
        if self._kind is None:
            with self._kind_lock:
                if self._kind is None:
                    self._kind = collate_kind(self._collate, bool(self._plan.tail))
        return self._kind

    def engine_padding(self) -> Optional[int]:
        """The ``pad_to_multiple`` to ask the engine for: the batches whose images this builder
        hands on as one padded ``ImageList`` (the fused collates, nothing run per sample in
        Python) are padded by the engine's workers, each image written straight into its slot.
        None when the images go to Python per sample (they stay one array each). Decided
        without calling a user's collate (only collates recognised by identity or code)."""
        if self._multiple is None or self._plan.tail:
            return None
        collate = self._collate
        if collate not in (detection_collate, segmentation_collate, default_collate):
            if not is_zip_collate(collate):
                return None
        if self._setup.masks_move:
            return self._multiple if self.kind in ("default", "segmentation") else None
        return self._multiple if self.kind in ("detection", "zip") else None

    def build(self, batch: Any) -> Tuple[Any, int]:
        """``(batch as the collate builds it, samples in it)``; ``(None, 0)`` when no sample is
        left (all skipped, or an empty batch)."""
        for index, _path, message in batch.skipped:
            self._stats.record_skip(int(index), message)
        images = self._images(batch)
        if len(batch.indices) == 0:
            return None, 0
        if self._stacks_masks(images, batch):
            return self._segmentation_batch(images, batch), len(batch.indices)
        fused = not self._plan.tail and self.kind in (
            "detection",
            "zip",
            "stack_list",
            "stack_tuple",
        )
        if (
            self.kind.startswith("stack")
            and not isinstance(images, torch.Tensor)
            and self._multiple is None
        ):
            fused = False  # variable sizes: the user's torch.stack raises, as it would in torch
        targets = _TargetBuilder(self, batch)
        kept: List[int] = []
        samples = []
        for b in range(len(batch.indices)):
            try:
                target = targets.target(b)
                if fused:
                    samples.append(target)
                else:
                    image: Any = images[b]
                    if not self._plan.plain_tensors:
                        image = tv_tensors.Image(image)
                    if self._plan.tail:
                        image, target = self._run_tail(image, target)
                    samples.append((image, target))
            except Exception as error:
                index = int(batch.indices[b])
                if self._on_error == "skip":
                    self._stats.record_skip(index, f"{type(error).__name__}: {error}")
                    continue
                annotate(
                    error,
                    f"conveyor.DataLoader: raised while loading "
                    f"{describe_sample(self._dataset, index)} (batch {batch.batch_index})",
                )
                raise
            kept.append(b)
        if not kept:
            return None, 0
        if not fused:
            result = self._collate(samples)
            if self._multiple is not None:  # the user's batch: its images padded, one copy each
                result = pad_collated(result, self._multiple, self._pin is not None, self._stats)
            return result, len(kept)
        if len(kept) < len(batch.indices):  # a target failed: drop its image too
            if batch.image_sizes is not None:  # padded by the engine: padded again without it
                images = [images[b, :, :h, :w] for b, (h, w) in _sizes_of(batch, kept)]
            elif isinstance(images, torch.Tensor):
                images = images[kept]
            else:
                images = [images[b] for b in kept]
        elif batch.image_sizes is not None:  # padded by the engine's workers
            images = ImageList(images, [size for _, size in _sizes_of(batch)])
        if self._multiple is not None and not isinstance(images, ImageList):
            # one ImageList, each image copied once into its slot
            images = pad_images(images, self._multiple, self._pin is not None)
        if isinstance(images, ImageList):
            self._stats.record_padding(*padding_pixels(images))
            if self.kind == "zip":
                return (images, tuple(samples)), len(kept)
        if self.kind == "zip":  # tuple(zip(*batch)): per-image views, as the samples would be
            wrap = (lambda image: image) if self._plan.plain_tensors else tv_tensors.Image
            return (tuple(wrap(image) for image in images), tuple(samples)), len(kept)
        if self.kind == "stack_tuple":
            return (images, tuple(samples)), len(kept)
        return (images, samples), len(kept)  # detection_collate: stacked images, list of targets

    def _images(self, batch: Any) -> Any:
        if batch.buffer_id >= 0:  # the fed (maybe pinned) tensor itself
            self._refill()
            return batch.images
        if isinstance(batch.images, list):
            return [torch.from_numpy(image) for image in batch.images]
        images = torch.from_numpy(batch.images)
        if self._pin is not None:
            images = images.pin_memory()
        return images

    def _stacks_masks(self, images: Any, batch: Any) -> bool:
        # torch's default_collate of (Image, Mask) pairs ([images, masks [B, 1, H, W]]) and
        # segmentation_collate ((images, masks [B, H, W])) are built straight from the engine's
        # buffers when nothing runs per sample in Python
        # (variable sizes too, when the batch is padded)
        return (
            self._setup.masks_move
            and not self._plan.tail
            and self.kind in ("default", "segmentation")
            and (
                self._multiple is not None
                or (isinstance(images, torch.Tensor) and isinstance(batch.masks, np.ndarray))
            )
        )

    def _segmentation_batch(self, images: Any, batch: Any) -> Any:
        if batch.image_sizes is not None:  # padded by the engine's workers (masks with 255)
            images = ImageList(images, [size for _, size in _sizes_of(batch)])
            self._stats.record_padding(*padding_pixels(images))
            masks = torch.from_numpy(batch.masks)
        elif self._multiple is not None:  # images zero-padded, masks padded with 255
            images = pad_images(images, self._multiple, self._pin is not None)
            self._stats.record_padding(*padding_pixels(images))
            sources = [torch.from_numpy(mask) for mask in batch.masks]
            masks = pad_masks(sources, tuple(images.tensors.shape[-2:]), self._pin is not None)
        else:
            masks = torch.from_numpy(batch.masks)
        if self._plan.mask_dtype is not None:
            masks = masks.to(self._plan.mask_dtype)
        if self._pin is not None and not masks.is_pinned():
            masks = masks.pin_memory()
        if self.kind == "segmentation" or self._plan.pil_mask:  # [H, W] samples stack so
            return images, masks
        return [images, masks.unsqueeze(1)]  # as Mask samples [1, H, W] stack

    def _run_tail(self, image: Any, target: Any) -> Any:
        for transform in self._plan.tail:
            if self._setup.joint:
                image, target = transform(image, target)
            else:
                image = transform(image)
        return image, target


def _sizes_of(batch: Any, rows: Optional[List[int]] = None) -> List[Tuple[int, Tuple[int, int]]]:
    """``(row, (height, width))`` of an engine-padded batch's images (``rows``: default all)."""
    sizes = batch.image_sizes.tolist()
    rows = list(range(len(sizes))) if rows is None else rows
    return [(b, (int(sizes[b][0]), int(sizes[b][1]))) for b in rows]


class _TargetBuilder:
    """The targets of one batch (per-object fields split once per batch, not per image)."""

    def __init__(self, builder: BatchBuilder, batch: Any) -> None:
        self._setup = builder._setup
        self._plan = builder._plan
        self._dataset = builder._dataset
        self._batch = batch
        self._split: Optional[_ImageFields] = None

    def target(self, b: int) -> Any:
        batch, dataset, setup = self._batch, self._dataset, self._setup
        index = int(batch.indices[b])
        check = getattr(dataset, "check_sample", None)  # VOCFolder: a malformed XML raises
        if check is not None:
            check(index)
        if setup.masks_move:
            mask = torch.from_numpy(batch.masks[b])
            if not self._plan.pil_mask:  # a tv_tensors.Mask is [1, H, W]; the reference's [H, W]
                mask = mask.unsqueeze(0)
            if self._plan.mask_dtype is not None:
                mask = mask.to(self._plan.mask_dtype)
            target: Any = mask if self._plan.plain_tensors else tv_tensors.Mask(mask)
        elif setup.kind == "segmentation" and dataset.target_format == "mask":
            from conveyor.datasets.voc import read_mask_tensor

            target = read_mask_tensor(dataset.masks[index])  # image-only transform: unmoved
        elif setup.kind == "segmentation":
            from PIL import Image

            target = Image.open(dataset.masks[index])
        elif getattr(dataset, "target_format", "dict") == "boxes":
            target = self._boxes_target(b, index)
        else:
            from conveyor import voc

            path = dataset.annotations[index]
            with open(path, "rb") as file:
                target = voc.parse_voc_xml(file.read(), source=path)
        if setup.target_transform is not None:
            target = setup.target_transform(target)
        return target

    def _boxes_target(self, b: int, index: int) -> Any:
        if not self._setup.boxes_move:  # image-only transform: boxes stay on the source image
            from PIL import Image

            with Image.open(self._dataset.images[index]) as source:
                width, height = source.size
            return self._dataset.typed_target(index, (height, width))
        boxes, labels, difficult = self._per_image_fields()
        return {
            "boxes": boxes[b],
            "labels": labels[b],
            "difficult": difficult[b],
            "image_id": index,
        }

    def _per_image_fields(self) -> _ImageFields:
        """Per-image boxes, labels and difficult flags: one tensor each for the whole batch,
        split into per-image views (cheaper than per image)."""
        if self._split is not None:
            return self._split
        batch = self._batch
        annotations = self._dataset.native_annotations
        counts = np.diff(batch.box_offsets).tolist()
        rows = batch.box_rows  # each kept box's row: indexes every per-object field
        boxes = torch.split(torch.from_numpy(batch.boxes), counts)
        labels = torch.split(torch.from_numpy(annotations.labels[rows]), counts)
        difficult = torch.split(torch.from_numpy(annotations.difficult[rows]), counts)
        images = batch.images
        # each image's own size (a padded batch's images are smaller than its tensor)
        sizes = None if batch.image_sizes is None else batch.image_sizes.tolist()
        wrapped: List[torch.Tensor] = []
        template = None
        for b, image_boxes in enumerate(boxes):
            if template is None or isinstance(images, list) or sizes is not None:
                canvas = sizes[b] if sizes is not None else images[b].shape[-2:]
                template = tv_tensors.BoundingBoxes(
                    image_boxes,
                    format=tv_tensors.BoundingBoxFormat[self._plan.box_format],
                    canvas_size=(int(canvas[0]), int(canvas[1])),
                )
                wrapped.append(template)
            else:  # same canvas for every image of a stacked batch: wrap like the first
                wrapped.append(tv_tensors.wrap(image_boxes, like=template))
        if self._plan.plain_tensors:  # a native ToPureTensor
            wrapped = [boxes_of_image.as_subclass(torch.Tensor) for boxes_of_image in wrapped]
        self._split = (wrapped, labels, difficult)
        return self._split
