"""Collate functions for detection and segmentation batches.

``detection_collate`` is what torchvision detection models take: a batch of images plus one
target dict per image (boxes do not stack: each image has its own number of objects). When
``conveyor.DataLoader`` runs a dataset natively, it recognises this function and builds the same
structure straight from the engine's batch buffers instead of calling it per sample.
"""

from __future__ import annotations

from typing import Any, List, Sequence, Tuple, Union

import torch

__all__ = ["detection_collate"]


def detection_collate(batch: Sequence[Tuple[Any, Any]]
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
            raise TypeError(f"detection_collate expects (image, target) pairs, but sample "
                            f"{position} of the batch is a {type(sample).__name__}")
        images.append(sample[0])
        targets.append(sample[1])
    if images and all(isinstance(image, torch.Tensor) for image in images) \
            and len({tuple(image.shape) for image in images}) == 1:
        return torch.stack([image.as_subclass(torch.Tensor) for image in images]), targets
    return images, targets
