"""Default transforms and collate functions of ``VOCDataModule``.

The default transforms are plain ``torchvision.transforms.v2`` pipelines over the typed VOC
datasets (``VOCSegmentation(target_format="mask")``, ``VOCDetection(target_format="boxes")``),
so ``conveyor.DataLoader`` runs them natively, masks and boxes moving with the images. What
the models need beyond the v2 outputs (``[B, H, W]`` int64 masks; pl_bolts' target dicts) is
built per batch in the collate functions, never in a Python transform that would force the
slow path.
"""

from __future__ import annotations

from typing import Any, Dict, List, Sequence, Tuple

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from conveyor.collate import segmentation_collate

_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)

__all__ = [
    "segmentation_transforms",
    "detection_transforms",
    "segmentation_collate",
    "DetectionCollate",
    "collate_detection",
]


def _pipeline(image_size: int, train: bool, normalize: bool, mask_dtype: Any) -> v2.Compose:
    ops = [v2.ToImage(), v2.Resize((image_size, image_size), antialias=True)]
    if train:
        ops.append(v2.RandomHorizontalFlip())
    dtypes = {tv_tensors.Image: torch.float32, "others": None}
    if mask_dtype is not None:
        dtypes[tv_tensors.Mask] = mask_dtype
    ops.append(v2.ToDtype(dtypes, scale=True))
    if normalize:
        ops.append(v2.Normalize(_MEAN, _STD))
    return v2.Compose(ops)


def segmentation_transforms(image_size: int, train: bool, normalize: bool = True) -> v2.Compose:
    """``(tv_tensors.Image, tv_tensors.Mask)`` -> float image ``[3, S, S]`` and int64 mask
    ``[1, S, S]`` (nearest-neighbour, 255 = void kept).

    Args:
        image_size: output side length.
        train: add a random horizontal flip.
        normalize: normalize with the ImageNet mean and std.

    Returns:
        The v2 pipeline, for ``VOCSegmentation(target_format="mask")``.
    """
    return _pipeline(image_size, train, normalize, torch.int64)


def detection_transforms(image_size: int, train: bool, normalize: bool = True) -> v2.Compose:
    """``(tv_tensors.Image, {"boxes": BoundingBoxes, ...})`` -> float image ``[3, S, S]`` with
    the boxes resized (and flipped) with it.

    Args:
        image_size: output side length.
        train: add a random horizontal flip.
        normalize: normalize with the ImageNet mean and std.

    Returns:
        The v2 pipeline, for ``VOCDetection(target_format="boxes")``.
    """
    return _pipeline(image_size, train, normalize, None)


class DetectionCollate:
    """pl_bolts' detection batch from ``VOCDetection(target_format="boxes")`` samples.

    ``(images, targets)`` as tuples (pl_bolts' ``tuple(zip(*batch))``), each target a dict of
    plain tensors: ``boxes`` float32 ``[N, 4]`` (xyxy pixels of the transformed image),
    ``labels`` int64 1..20, ``iscrowd`` int64 (VOC's ``difficult``), ``area`` float32 and
    ``image_id`` int64 (the digits of the image's file name, e.g. 2008000123).

    Args:
        ids: the dataset's image ids (file stems), indexed by the targets' ``image_id``.
    """

    def __init__(self, ids: Sequence[str]) -> None:
        self.ids = list(ids)

    def _image_id(self, index: int) -> int:
        return int("".join(ch for ch in str(self.ids[index]) if ch.isdigit()) or 0)

    def target(self, target: Dict[str, Any]) -> Dict[str, torch.Tensor]:
        """One typed target as pl_bolts' dict."""
        boxes = target["boxes"].as_subclass(torch.Tensor).to(torch.float32)
        return {
            "boxes": boxes,
            "labels": target["labels"].as_subclass(torch.Tensor).to(torch.int64),
            "iscrowd": target["difficult"].as_subclass(torch.Tensor).to(torch.int64),
            "area": (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]),
            "image_id": torch.tensor(self._image_id(int(target["image_id"])), dtype=torch.int64),
        }

    def __call__(
        self, batch: Sequence[Tuple[Any, Any]]
    ) -> Tuple[Tuple[torch.Tensor, ...], Tuple[Dict[str, torch.Tensor], ...]]:
        images: List[torch.Tensor] = [image.as_subclass(torch.Tensor) for image, _ in batch]
        targets = [self.target(target) for _, target in batch]
        return tuple(images), tuple(targets)

    def __repr__(self) -> str:
        return f"DetectionCollate({len(self.ids)} ids)"


def collate_detection(batch: Sequence[Any]) -> Tuple[Any, ...]:
    """pl_bolts' collate: ``tuple(zip(*batch))`` (images and targets as tuples); used with
    user transforms, which receive torchvision's PIL image and XML dict."""
    return tuple(zip(*batch))
