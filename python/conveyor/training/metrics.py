"""VOC evaluation metrics: mean IoU for segmentation and mean average precision for detection
(the VOC2010+ all-point interpolated AP at IoU 0.5, ``difficult`` objects ignored)."""

from __future__ import annotations

from collections import defaultdict
from typing import Dict, List, Sequence

import numpy as np
import torch


class ConfusionMatrix:
    """Accumulates a ``num_classes x num_classes`` confusion matrix; ``ignore_index`` pixels are skipped."""

    def __init__(self, num_classes: int, ignore_index: int = 255) -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64)

    def update(self, prediction: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch: ``prediction`` and ``target`` are integer class maps of the same shape."""
        if prediction.shape != target.shape:
            raise ValueError(
                f"prediction shape {tuple(prediction.shape)} != target shape {tuple(target.shape)}"
            )
        keep = target != self.ignore_index
        truth = target[keep].to(torch.int64).cpu()
        guess = prediction[keep].to(torch.int64).cpu()
        if truth.numel() and (truth.max() >= self.num_classes or truth.min() < 0):
            raise ValueError(
                f"target holds class {int(truth.max())} outside 0..{self.num_classes - 1} "
                f"(and not ignore_index={self.ignore_index})"
            )
        self.matrix += torch.bincount(
            truth * self.num_classes + guess, minlength=self.num_classes**2
        ).reshape(self.num_classes, self.num_classes)

    def iou_per_class(self) -> torch.Tensor:
        """IoU of each class; NaN for a class absent from both targets and predictions."""
        m = self.matrix.double()
        intersection = m.diag()
        union = m.sum(0) + m.sum(1) - intersection
        return torch.where(
            union > 0, intersection / union.clamp(min=1), torch.full_like(union, float("nan"))
        )

    def mean_iou(self) -> float:
        iou = self.iou_per_class()
        valid = ~torch.isnan(iou)
        return float(iou[valid].mean()) if valid.any() else 0.0

    def pixel_accuracy(self) -> float:
        total = self.matrix.sum()
        return float(self.matrix.diag().sum() / total) if total > 0 else 0.0


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one box against many (xyxy, continuous coordinates)."""
    if boxes.size == 0:
        return np.zeros(0)
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-12)


def average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """Area under the precision envelope (VOC2010+ "all points")."""
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.concatenate(([0.0], precision, [0.0]))
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = max(mpre[i], mpre[i + 1])
    changed = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[changed + 1] - mrec[changed]) * mpre[changed + 1]))


class DetectionAP:
    """Collects detections and ground truth image by image; :meth:`compute` gives per-class AP
    and mAP over the classes that have non-difficult ground truth."""

    def __init__(self, iou_threshold: float = 0.5) -> None:
        self.iou_threshold = iou_threshold
        self.detections: List[tuple] = []  # (image, label, score, box)
        self.ground_truth: Dict[tuple, list] = defaultdict(
            list
        )  # (image, label) -> [(box, difficult)]
        self._images = 0

    def update(
        self,
        predictions: Sequence[Dict[str, torch.Tensor]],
        targets: Sequence[Dict[str, torch.Tensor]],
    ) -> None:
        for prediction, target in zip(predictions, targets):
            image = self._images
            self._images += 1
            difficult = target.get("iscrowd", torch.zeros(len(target["labels"]), dtype=torch.int64))
            for box, label, hard in zip(
                target["boxes"].cpu().numpy(),
                target["labels"].cpu().tolist(),
                difficult.cpu().tolist(),
            ):
                self.ground_truth[(image, label)].append((box.astype(np.float64), bool(hard)))
            for box, label, score in zip(
                prediction["boxes"].detach().cpu().numpy(),
                prediction["labels"].cpu().tolist(),
                prediction["scores"].cpu().tolist(),
            ):
                self.detections.append((image, label, float(score), box.astype(np.float64)))

    def compute(self) -> Dict[str, float]:
        labels = sorted({label for (_, label) in self.ground_truth})
        per_class = {}
        for label in labels:
            gt = {img: entries for (img, lab), entries in self.ground_truth.items() if lab == label}
            positives = sum(1 for entries in gt.values() for _, hard in entries if not hard)
            if positives == 0:
                continue
            used = {img: np.zeros(len(entries), dtype=bool) for img, entries in gt.items()}
            dets = sorted((d for d in self.detections if d[1] == label), key=lambda d: -d[2])
            tp = np.zeros(len(dets))
            fp = np.zeros(len(dets))
            for k, (img, _, _, box) in enumerate(dets):
                entries = gt.get(img, [])
                if not entries:
                    fp[k] = 1
                    continue
                ious = box_iou(box, np.stack([b for b, _ in entries]))
                best = int(np.argmax(ious))
                if ious[best] >= self.iou_threshold:
                    if entries[best][1]:
                        continue  # a difficult object: neither TP nor FP
                    if not used[img][best]:
                        tp[k], used[img][best] = 1, True
                    else:
                        fp[k] = 1
                else:
                    fp[k] = 1
            tp, fp = np.cumsum(tp), np.cumsum(fp)
            recall = tp / positives
            precision = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
            per_class[label] = average_precision(recall, precision)
        mean = float(np.mean(list(per_class.values()))) if per_class else 0.0
        return {"mAP": mean, **{f"AP_{label}": ap for label, ap in per_class.items()}}
