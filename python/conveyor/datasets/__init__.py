"""Datasets: drop-in replacements for torchvision's VOC datasets and a synthetic VOC writer."""

from conveyor.datasets.synthetic import make_synthetic_voc
from conveyor.datasets.voc import VOCDetection, VOCSegmentation

__all__ = ["VOCDetection", "VOCSegmentation", "make_synthetic_voc"]
