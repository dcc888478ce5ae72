"""Datasets: drop-in replacements for torchvision's VOC datasets, ``VOCFolder`` (any VOC-format
folder) and a synthetic VOC writer.

Names load lazily, so that ``conveyor synth`` does not import torch.
"""

from importlib import import_module

_NAMES = {
    "VOCDetection": "conveyor.datasets.voc",
    "VOCSegmentation": "conveyor.datasets.voc",
    "VOCFolder": "conveyor.datasets.folder",
    "make_synthetic_voc": "conveyor.datasets.synthetic",
}

__all__ = sorted(_NAMES)


def __getattr__(name):
    if name in _NAMES:
        return getattr(import_module(_NAMES[name]), name)
    raise AttributeError(f"module 'conveyor.datasets' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_NAMES))
