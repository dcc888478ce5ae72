"""Collate functions for detection and segmentation batches.

``detection_collate`` is what torchvision detection models take: a batch of images plus one
target dict per image (boxes do not stack: each image has its own number of objects).
``segmentation_collate`` stacks images and masks into ``[B, H, W]`` class maps (what
``cross_entropy`` takes). When ``conveyor.DataLoader`` runs a dataset natively, it recognises
these functions and builds the same structure straight from the engine's batch buffers instead
of calling them per sample.
"""

from __future__ import annotations

from typing import Any, List, Sequence, Tuple, Union

import torch

__all__ = ["detection_collate", "segmentation_collate"]


def detection_collate(
    batch: Sequence[Tuple[Any, Any]],
) -> Tuple[Union[torch.Tensor, List[torch.Tensor]], List[Any]]:
    """Collate ``(image, target)`` samples into stacked images and a list of targets.

    Args:
        batch: ``(image, target)`` pairs as a detection dataset returns them (e.g. conveyor's
            ``VOCDetection(target_format="boxes")``: image tensor ``[C, H, W]``, target dict with
            ``"boxes"`` float32 ``[K, 4]`` and ``"labels"`` int64 ``[K]``).

    Returns:
        ``(images, targets)``: images stacked into ``[B, C, H, W]`` when they all have the same
        shape (a list of tensors otherwise, which torchvision detection models also accept), and
        the list of the ``B`` targets, unchanged and in order.

    Raises:
        TypeError: A sample is not an ``(image, target)`` pair.
    """
    images, targets = [], []
    for position, sample in enumerate(batch):
        if not isinstance(sample, (tuple, list)) or len(sample) != 2:
            raise TypeError(
                f"detection_collate expects (image, target) pairs, but sample "
                f"{position} of the batch is a {type(sample).__name__}"
            )
        images.append(sample[0])
        targets.append(sample[1])
    if (
        images
        and all(isinstance(image, torch.Tensor) for image in images)
        and len({tuple(image.shape) for image in images}) == 1
    ):
        return torch.stack([image.as_subclass(torch.Tensor) for image in images]), targets
    return images, targets


def segmentation_collate(batch: Sequence[Tuple[Any, Any]]) -> Tuple[torch.Tensor, torch.Tensor]:
    """Collate ``(image, mask)`` samples into stacked images and stacked ``[B, H, W]`` masks.

    Args:
        batch: ``(image, mask)`` pairs of tensors, e.g. conveyor's
            ``VOCSegmentation(target_format="mask")`` after v2 transforms: image ``[C, H, W]``,
            mask ``[1, H, W]`` (``tv_tensors.Mask``) or ``[H, W]``.

    Returns:
        ``(images [B, C, H, W], masks [B, H, W])`` as plain tensors; a mask's leading channel
        of 1 is dropped, its dtype kept (convert it in the transforms, e.g. ``v2.ToDtype(
        {tv_tensors.Image: torch.float32, tv_tensors.Mask: torch.int64, "others": None})``).

    Raises:
        TypeError: A sample is not an ``(image, mask)`` pair of tensors.
    """
    images, masks = [], []
    for position, sample in enumerate(batch):
        if (
            not isinstance(sample, (tuple, list))
            or len(sample) != 2
            or not all(isinstance(item, torch.Tensor) for item in sample)
        ):
            raise TypeError(
                f"segmentation_collate expects (image, mask) pairs of tensors, but "
                f"sample {position} of the batch is {_describe(sample)}"
            )
        images.append(sample[0].as_subclass(torch.Tensor))
        mask = sample[1].as_subclass(torch.Tensor)
        masks.append(mask[0] if mask.ndim == 3 and mask.shape[0] == 1 else mask)
    return torch.stack(images), torch.stack(masks)


def _describe(sample: Any) -> str:
    if isinstance(sample, (tuple, list)):
        return f"a {type(sample).__name__} of {', '.join(type(x).__name__ for x in sample)}"
    return f"a {type(sample).__name__}"
