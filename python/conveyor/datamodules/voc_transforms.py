"""Default joint transforms of ``VOCDataModule`` (image and target move together)."""

from __future__ import annotations

from typing import Any, Dict, Tuple

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from conveyor.voc import VOC_CLASSES

_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)
_CLASS_INDEX = {name: index + 1 for index, name in enumerate(VOC_CLASSES)}


def _image_ops(image_size: int, train: bool, normalize: bool):
    ops = [v2.ToImage(), v2.Resize((image_size, image_size), antialias=True)]
    if train:
        ops.append(v2.RandomHorizontalFlip())
    ops.append(v2.ToDtype({tv_tensors.Image: torch.float32, "others": None}, scale=True))
    if normalize:
        ops.append(v2.Normalize(_MEAN, _STD))
    return v2.Compose(ops)


class SegmentationTransform:
    """PIL image + P-mode mask -> float image [3, S, S] and int64 mask [S, S] (255 = void).

    Args:
        image_size: output side length.
        train: add a random horizontal flip.
        normalize: normalize with the ImageNet mean and std.
    """

    def __init__(self, image_size: int, train: bool, normalize: bool = True) -> None:
        self.ops = _image_ops(image_size, train, normalize)

    def __call__(self, image: Any, mask: Any) -> Tuple[torch.Tensor, torch.Tensor]:
        mask = tv_tensors.Mask(torch.from_numpy(np.array(mask, dtype=np.uint8, copy=True)))
        image, mask = self.ops(image, mask)
        return image.as_subclass(torch.Tensor), mask.as_subclass(torch.Tensor).long()

    def __repr__(self) -> str:
        return f"SegmentationTransform({self.ops})"


class DetectionTransform:
    """PIL image + torchvision VOC dict -> float image [3, S, S] and the pl_bolts target dict
    (``boxes`` float32 [N, 4] in pixels of the resized image, ``labels`` 1..20, ``iscrowd``
    from ``difficult``, ``area``, ``image_id``).

    Args:
        image_size: output side length.
        train: add a random horizontal flip.
        normalize: normalize with the ImageNet mean and std.
    """

    def __init__(self, image_size: int, train: bool, normalize: bool = True) -> None:
        self.ops = _image_ops(image_size, train, normalize)

    def __call__(self, image: Any, target: Dict[str, Any]) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        annotation = target["annotation"]
        objects = annotation.get("object", [])
        boxes, labels, difficult = [], [], []
        for obj in objects:
            box = obj["bndbox"]
            boxes.append([float(box["xmin"]) - 1, float(box["ymin"]) - 1, float(box["xmax"]), float(box["ymax"])])
            name = obj["name"]
            if name not in _CLASS_INDEX:
                raise ValueError(f"{annotation.get('filename', '?')}: unknown VOC class {name!r}")
            labels.append(_CLASS_INDEX[name])
            difficult.append(int(obj.get("difficult", "0") or 0))
        width, height = image.size
        boxes_tv = tv_tensors.BoundingBoxes(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
                                            format="XYXY", canvas_size=(height, width))
        image, boxes_tv = self.ops(image, boxes_tv)
        boxes_t = boxes_tv.as_subclass(torch.Tensor)
        area = (boxes_t[:, 2] - boxes_t[:, 0]) * (boxes_t[:, 3] - boxes_t[:, 1])
        image_id = int("".join(ch for ch in str(annotation.get("filename", "0")) if ch.isdigit()) or 0)
        return image.as_subclass(torch.Tensor), {
            "boxes": boxes_t, "labels": torch.tensor(labels, dtype=torch.int64),
            "iscrowd": torch.tensor(difficult, dtype=torch.int64), "area": area,
            "image_id": torch.tensor(image_id, dtype=torch.int64),
        }

    def __repr__(self) -> str:
        return f"DetectionTransform({self.ops})"


def collate_detection(batch):
    """pl_bolts' collate: ``tuple(zip(*batch))`` (images and targets as tuples)."""
    return tuple(zip(*batch))
