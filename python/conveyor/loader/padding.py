"""Padded variable-size batches (``DataLoader(pad_to_multiple=...)``).

When the transforms give each image its own size (Faster R-CNN style: ``RandomShortestSize``,
``Resize(max_size=...)``, no final fixed crop), detection models batch them by padding: each
image is copied into the top-left corner of one ``[B, C, Hmax, Wmax]`` tensor of zeros whose
height and width are rounded up to a multiple (torchvision's
``GeneralizedRCNNTransform.batch_images(images, size_divisible)``, detectron2's
``ImageList.from_tensors(..., size_divisibility)``). Padding only adds rows at the bottom and
columns at the right, so boxes keep their coordinates.

The padded images come back as torchvision's own ``ImageList`` (``.tensors`` ``[B, C, Hp, Wp]``
and ``.image_sizes``, the true ``(height, width)`` of each image), the structure torchvision's
detection models build internally; targets are unchanged. Segmentation masks padded to the same
size are filled with 255 (the ``ignore_index`` of torchvision's segmentation references).
"""

from __future__ import annotations

import math
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torchvision.models.detection.image_list import ImageList

__all__ = ["ImageList", "MASK_FILL", "check_pad_to_multiple", "pad_images", "pad_masks"]

# the mask value of padded pixels: the ignore_index of torchvision's segmentation references
MASK_FILL = 255


def check_pad_to_multiple(value: Any) -> Optional[int]:
    """``value`` when it is ``None`` or a positive int, else a ``ValueError``/``TypeError``."""
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"pad_to_multiple should be a positive int or None, but got {value!r}")
    if value < 1:
        raise ValueError(f"pad_to_multiple should be a positive int or None, but got {value}")
    return value


def padded_size(sizes: Sequence[Tuple[int, int]], multiple: int) -> Tuple[int, int]:
    """The batch's ``(Hp, Wp)``: the largest height and width, rounded up to ``multiple``."""
    height = max(size[0] for size in sizes)
    width = max(size[1] for size in sizes)
    return (
        int(math.ceil(height / multiple) * multiple),
        int(math.ceil(width / multiple) * multiple),
    )


def pad_images(images: Any, multiple: int, pin: bool = False) -> ImageList:
    """``images`` (a ``[B, C, H, W]`` tensor or a sequence of ``[C, H, W]`` tensors) as one
    zero-padded ``ImageList``. A stacked batch whose height and width already are multiples is
    returned as is (no copy); otherwise each image is copied once into its padded slot.

    Raises:
        TypeError: An image is not a 3-D tensor, or the images differ in channels or dtype
            (padding cannot make them one tensor).
    """
    if isinstance(images, torch.Tensor) and images.dim() == 4:
        height, width = int(images.shape[-2]), int(images.shape[-1])
        sizes: List[Tuple[int, int]] = [(height, width)] * int(images.shape[0])
        if height % multiple == 0 and width % multiple == 0:
            return ImageList(images.as_subclass(torch.Tensor), sizes)
        images = list(images)
    images = list(images)
    if not images:
        raise TypeError("pad_to_multiple: the batch has no images to pad")
    for position, image in enumerate(images):
        if not isinstance(image, torch.Tensor) or image.dim() != 3:
            described = (
                f"a tensor of shape {tuple(image.shape)}"
                if isinstance(image, torch.Tensor)
                else f"a {type(image).__name__}"
            )
            raise TypeError(
                f"pad_to_multiple pads [C, H, W] image tensors, but image {position} of the "
                f"batch is {described} (end the transforms with v2.ToImage / ToDtype)"
            )
    first = images[0]
    for position, image in enumerate(images):
        if image.shape[0] != first.shape[0] or image.dtype != first.dtype:
            raise TypeError(
                f"pad_to_multiple: image {position} of the batch is {image.dtype} with "
                f"{image.shape[0]} channels, image 0 is {first.dtype} with {first.shape[0]}: "
                "images of one batch must agree in channels and dtype to share one tensor"
            )
    sizes = [(int(image.shape[-2]), int(image.shape[-1])) for image in images]
    height, width = padded_size(sizes, multiple)
    padded = _empty((len(images), int(first.shape[0]), height, width), first.dtype, pin)
    _pad_into(padded, [image.as_subclass(torch.Tensor) for image in images], 0)
    return ImageList(padded, sizes)


def pad_masks(masks: Sequence[torch.Tensor], size: Tuple[int, int], pin: bool = False) -> Any:
    """``[H, W]`` (or ``[1, H, W]``) masks as one ``[B, Hp, Wp]`` tensor filled with 255 beyond
    each mask (``size`` is the images' padded ``(Hp, Wp)``)."""
    masks = [mask.as_subclass(torch.Tensor) for mask in masks]
    masks = [mask[0] if mask.dim() == 3 and mask.shape[0] == 1 else mask for mask in masks]
    padded = _empty((len(masks),) + tuple(size), masks[0].dtype, pin)
    _pad_into(padded, masks, MASK_FILL)
    return padded


def _empty(shape: Tuple[int, ...], dtype: torch.dtype, pin: bool) -> torch.Tensor:
    if pin:
        return torch.empty(shape, dtype=dtype, pin_memory=True)
    try:  # numpy's allocation (filled by numpy below, see _pad_into)
        numpy_dtype = torch.empty((), dtype=dtype).numpy().dtype
    except TypeError:  # a dtype numpy lacks (bfloat16)
        return torch.empty(shape, dtype=dtype)
    return torch.from_numpy(np.empty(shape, dtype=numpy_dtype))


def _numpy(tensor: torch.Tensor) -> Any:
    try:
        return tensor.numpy()
    except (TypeError, RuntimeError):  # bfloat16, or a tensor that needs grad / is not on CPU
        return None


def _pad_into(padded: torch.Tensor, sources: Sequence[torch.Tensor], fill: int) -> None:
    """Each source into the top-left corner of its slot of ``padded`` (uninitialised), and
    ``fill`` into the rest of the slot (only the padding is written twice: never the image).

    Copied with numpy when it can (one thread per copy): these copies run on several finisher
    threads at once, where torch's intra-op threads oversubscribe the cores (measured ~10x
    slower on 2 busy cores)."""
    target = _numpy(padded)
    for b, source in enumerate(sources):
        h, w = int(source.shape[-2]), int(source.shape[-1])
        array = _numpy(source) if target is not None else None
        slot = target[b] if array is not None else padded[b]
        slot[..., :h, :w] = array if array is not None else source
        slot[..., h:, :] = fill
        slot[..., :h, w:] = fill


def padding_pixels(image_list: ImageList) -> Tuple[int, int]:
    """``(padding pixels, batch pixels)`` of one padded batch (per channel plane)."""
    batch, _, height, width = image_list.tensors.shape
    used = sum(h * w for h, w in image_list.image_sizes)
    total = int(batch) * int(height) * int(width)
    return total - used, total


def pad_collated(result: Any, multiple: int, pin: bool, stats: Any = None) -> Any:
    """A collate's ``(images, rest...)`` result with its images padded into an ``ImageList``
    (a collate conveyor does not build itself, or the Python path). ``stats`` (a
    ``StatsRecorder``) counts the padding.

    Raises:
        TypeError: The result is not a tuple or list whose first item is a ``[B, C, H, W]``
            tensor or a sequence of ``[C, H, W]`` tensors.
    """
    images = result[0] if isinstance(result, (tuple, list)) and len(result) >= 1 else None
    if not (
        (isinstance(images, torch.Tensor) and images.dim() == 4)
        or (
            isinstance(images, (tuple, list))
            and images
            and all(isinstance(image, torch.Tensor) for image in images)
        )
    ):
        raise TypeError(
            "pad_to_multiple pads the images of a batch, but the collate_fn returned "
            f"{_describe(result)}; it needs (images, targets...) with images a [B, C, H, W] "
            "tensor or a list of [C, H, W] tensors (e.g. conveyor.collate.detection_collate "
            "or tuple(zip(*batch))), or pass pad_to_multiple=None"
        )
    padded = pad_images(images, multiple, pin)
    if stats is not None:
        stats.record_padding(*padding_pixels(padded))
    if isinstance(result, list):
        return [padded] + list(result[1:])
    return (padded,) + tuple(result[1:])


def _describe(result: Any) -> str:
    if isinstance(result, (tuple, list)):
        first = type(result[0]).__name__ if result else "nothing"
        return f"a {type(result).__name__} of {len(result)} items starting with a {first}"
    return f"a {type(result).__name__}"


class PaddingCollate:
    """``collate_fn`` followed by ``pad_collated`` (the Python path's padded batches).

    Segmentation batches are padded before the collate stacks them (images with 0, masks with
    255), as ``segmentation_collate`` and ``default_collate`` of ``(image, mask)`` samples could
    not stack masks of different sizes.
    """

    def __init__(self, collate: Any, multiple: int, pin: bool, stats: Any) -> None:
        self.collate = collate
        self.multiple = multiple
        self.pin = pin
        self.stats = stats

    def __call__(self, samples: Any) -> Any:
        from torch.utils.data import default_collate

        from conveyor.collate import segmentation_collate

        if self.collate in (segmentation_collate, default_collate) and _mask_pairs(samples):
            images = pad_images([image for image, _ in samples], self.multiple, self.pin)
            if self.stats is not None:
                self.stats.record_padding(*padding_pixels(images))
            size = tuple(images.tensors.shape[-2:])
            masks = pad_masks([mask for _, mask in samples], size, self.pin)
            if self.collate is segmentation_collate:
                return images, masks
            return [images, masks.unsqueeze(1)]  # as [1, H, W] Mask samples stack
        return pad_collated(self.collate(samples), self.multiple, self.pin, self.stats)


def _mask_pairs(samples: Any) -> bool:
    from torchvision import tv_tensors

    return bool(samples) and all(
        isinstance(sample, (tuple, list))
        and len(sample) == 2
        and isinstance(sample[0], torch.Tensor)
        and isinstance(sample[1], tv_tensors.Mask)
        for sample in samples
    )


def record_padding(batch: Any, stats: Any) -> None:
    """Count the padding of a delivered batch whose first item is an ``ImageList`` (batches
    padded in torch's worker processes, whose own counters stay in those processes)."""
    if isinstance(batch, (tuple, list)) and batch and isinstance(batch[0], ImageList):
        stats.record_padding(*padding_pixels(batch[0]))
