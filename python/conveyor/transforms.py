"""Image transforms that conveyor runs natively, and the translation of torchvision's.

``conveyor.DataLoader`` runs a conveyor dataset's whole pipeline in the C++ engine when every
transform is recognised:

- conveyor's own classes below (``Compose``, ``ToImage``, ``Resize``, ``RandomResizedCrop``,
  ``RandomCrop``, ``CenterCrop``, ``Pad``, ``RandomHorizontalFlip``, ``ToDtype``,
  ``Normalize``): subclasses of the ``torchvision.transforms.v2`` classes of the same name, so
  they behave identically when called in Python, but they refuse, at construction, settings the
  engine cannot run natively;
- the ``torchvision.transforms`` (v1) and ``torchvision.transforms.v2`` classes listed, with the
  settings that run natively, in the README's "Transforms that run natively" (generated from
  the planner's translators and the native op schema).

With joint ``transforms=`` on the typed datasets, boxes (``VOCDetection(target_format="boxes")``)
and masks (``VOCSegmentation(target_format="mask")``, nearest-neighbour, padded with their own
fill from a per-type fill dict, else the image's) move with the image in the engine, as torchvision's v2 kernels move
``BoundingBoxes`` and ``Mask``. ``ToDtype`` with a per-type dict converts images natively and
masks per batch (``{tv_tensors.Image: torch.float32, tv_tensors.Mask: torch.int64, "others":
None}``); every other type it names must map to None.

Anything else (another class, a subclass of a recognised class, a lambda, a recognised class
with unsupported settings) runs in Python on the engine's output; the loader warns once naming it.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import torch
from torchvision.transforms import v2

from conveyor.loader.planner import UnsupportedTransform, describe

__all__ = [
    "Compose",
    "ToImage",
    "Resize",
    "RandomResizedCrop",
    "RandomCrop",
    "CenterCrop",
    "Pad",
    "RandomHorizontalFlip",
    "ToDtype",
    "Normalize",
]


# --------------------------------------------------------------------- conveyor's own classes


def _require(transform: Any) -> None:
    try:
        describe(transform)
    except UnsupportedTransform as why:
        raise ValueError(f"conveyor.transforms.{type(transform).__name__}: {why}") from None


class Compose(v2.Compose):
    """``v2.Compose`` whose members conveyor plans natively (see ``plan_transforms``)."""


class ToImage(v2.ToImage):
    """``v2.ToImage``: PIL/ndarray to a uint8 CHW image tensor (no native work)."""


class Resize(v2.Resize):
    """``v2.Resize`` (bilinear, antialiased by default); an int size sets the shorter side."""

    def __init__(self, size: Any, max_size: Optional[int] = None, antialias: bool = True) -> None:
        super().__init__(size, max_size=max_size, antialias=antialias)
        _require(self)


class RandomResizedCrop(v2.RandomResizedCrop):
    """``v2.RandomResizedCrop`` (bilinear); the draw depends only on (seed, epoch, index)."""

    def __init__(
        self,
        size: Any,
        scale: Sequence[float] = (0.08, 1.0),
        ratio: Sequence[float] = (3.0 / 4.0, 4.0 / 3.0),
        antialias: bool = True,
    ) -> None:
        super().__init__(size, scale=tuple(scale), ratio=tuple(ratio), antialias=antialias)
        _require(self)


class RandomCrop(v2.RandomCrop):
    """``v2.RandomCrop`` with constant padding."""

    def __init__(
        self, size: Any, padding: Any = None, pad_if_needed: bool = False, fill: float = 0
    ) -> None:
        super().__init__(size, padding=padding, pad_if_needed=pad_if_needed, fill=fill)
        _require(self)


class CenterCrop(v2.CenterCrop):
    """``v2.CenterCrop`` (pads with 0 when the crop is larger than the image)."""


class Pad(v2.Pad):
    """``v2.Pad`` with constant padding."""

    def __init__(self, padding: Any, fill: float = 0) -> None:
        super().__init__(padding, fill=fill)
        _require(self)


class RandomHorizontalFlip(v2.RandomHorizontalFlip):
    """``v2.RandomHorizontalFlip``; boxes and masks flip with the image."""


class ToDtype(v2.ToDtype):
    """``v2.ToDtype`` for images: float32, float16 or uint8, optionally scaling to [0, 1]; a
    per-type dict may also give masks a dtype (never scaled)."""

    def __init__(self, dtype: torch.dtype, scale: bool = False) -> None:
        super().__init__(dtype, scale=scale)
        _require(self)


class Normalize(v2.Normalize):
    """``v2.Normalize``: ``(x - mean) / std`` per channel, fused into the engine's final write."""
