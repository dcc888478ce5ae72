"""``VOCDetection`` and ``VOCSegmentation``: torchvision's datasets, read faster.

Swapping ``from torchvision.datasets import VOCDetection`` for
``from conveyor.datasets import VOCDetection`` changes nothing but speed: same constructor,
validation, error messages, archives and md5s, and by default the very same items. On top:

* ``VOCDetection(..., target_format="boxes")`` gives typed targets for training and for
  ``torchvision.transforms.v2``: ``tv_tensors.Image`` images and ``{"boxes":
  tv_tensors.BoundingBoxes (XYXY, float32), "labels": int64, "difficult": bool,
  "image_id": int}`` targets (boxes and labels equal what
  ``wrap_dataset_for_transforms_v2(torchvision VOCDetection)`` gives).
* ``VOCSegmentation(..., target_format="mask")`` gives ``tv_tensors.Image`` images and
  ``tv_tensors.Mask`` targets (uint8 ``[1, H, W]`` palette indices, 255 borders kept), the same
  as ``wrap_dataset_for_transforms_v2(torchvision VOCSegmentation)`` gives: with
  ``torchvision.transforms.v2`` the mask then moves with nearest-neighbour sampling and
  conveyor's DataLoader runs the whole joint pipeline natively.
* ``native_annotations``: every annotation of the split parsed once, by native threads, into
  one struct of arrays (:class:`conveyor.voc.AnnotationSet`), which conveyor's DataLoader uses.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Optional, Union

import torch
import torchvision.datasets
from PIL import Image
from torchvision.datasets.utils import verify_str_arg
from torchvision.datasets.vision import VisionDataset

from conveyor import voc as _voc
from conveyor.datasets.download import download_and_extract_archive, resolve_url

# The archives torchvision downloads (torchvision.datasets.voc.DATASET_YEAR_DICT), except that the
# 2008 archive keeps its own name (torchvision stores it as VOCtrainval_11-May-2012.tar).
DATASET_YEAR_DICT = {
    "2012": {
        "url": "https://thor.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar",
        "filename": "VOCtrainval_11-May-2012.tar",
        "md5": "6cd6e144f989b92b3379bac3b3de84fd",
        "base_dir": os.path.join("VOCdevkit", "VOC2012"),
    },
    "2011": {
        "url": "https://thor.robots.ox.ac.uk/pascal/VOC/voc2011/VOCtrainval_25-May-2011.tar",
        "filename": "VOCtrainval_25-May-2011.tar",
        "md5": "6c3384ef61512963050cb5d687e5bf1e",
        "base_dir": os.path.join("TrainVal", "VOCdevkit", "VOC2011"),
    },
    "2010": {
        "url": "https://thor.robots.ox.ac.uk/pascal/VOC/voc2010/VOCtrainval_03-May-2010.tar",
        "filename": "VOCtrainval_03-May-2010.tar",
        "md5": "da459979d0c395079b5c75ee67908abb",
        "base_dir": os.path.join("VOCdevkit", "VOC2010"),
    },
    "2009": {
        "url": "https://thor.robots.ox.ac.uk/pascal/VOC/voc2009/VOCtrainval_11-May-2009.tar",
        "filename": "VOCtrainval_11-May-2009.tar",
        "md5": "a3e00b113cfcfebf17e343f59da3caa1",
        "base_dir": os.path.join("VOCdevkit", "VOC2009"),
    },
    "2008": {
        "url": "https://thor.robots.ox.ac.uk/pascal/VOC/voc2008/VOCtrainval_14-Jul-2008.tar",
        "filename": "VOCtrainval_14-Jul-2008.tar",
        "md5": "2629fa636546599198acfcfbfcf1904a",
        "base_dir": os.path.join("VOCdevkit", "VOC2008"),
    },
    "2007": {
        "url": "https://thor.robots.ox.ac.uk/pascal/VOC/voc2007/VOCtrainval_06-Nov-2007.tar",
        "filename": "VOCtrainval_06-Nov-2007.tar",
        "md5": "c52e279531787c972589f7e41ab4ae64",
        "base_dir": os.path.join("VOCdevkit", "VOC2007"),
    },
    "2007-test": {
        "url": "https://thor.robots.ox.ac.uk/pascal/VOC/voc2007/VOCtest_06-Nov-2007.tar",
        "filename": "VOCtest_06-Nov-2007.tar",
        "md5": "b6e924de25625d8de591ea690078ad9f",
        "base_dir": os.path.join("VOCdevkit", "VOC2007"),
    },
}

TARGET_FORMATS = ("dict", "boxes")
SEGMENTATION_TARGET_FORMATS = ("pil", "mask")


def _check_target_format(target_format: str, valid: tuple) -> None:
    if target_format not in valid:
        raise ValueError(
            f"Unknown value '{target_format}' for argument target_format. "
            f"Valid values are {{{', '.join(map(repr, valid))}}}."
        )


def read_mask_tensor(path: str) -> torch.Tensor:
    """A PNG segmentation mask as a ``tv_tensors.Mask`` (uint8 ``[1, H, W]`` palette indices,
    what ``tv_tensors.Mask(PIL.Image.open(path))`` holds), decoded natively when the codecs are
    built in, else through Pillow.

    Raises:
        FileNotFoundError: The file does not exist.
        conveyor.errors.DecodeError: The file is not a decodable PNG, or not a single-channel
            8-bit (palette or gray) image; the message names the file.
    """
    from torchvision import tv_tensors

    read_image: Optional[Callable[..., torch.Tensor]]
    try:
        from conveyor.io import read_image
    except ImportError:  # conveyor built without its codecs
        read_image = None
    if read_image is not None:
        mask = read_image(path, mode="unchanged")
    else:
        import numpy as np

        with Image.open(path) as image:
            mask = torch.from_numpy(np.array(image, copy=True))
        mask = mask[None] if mask.ndim == 2 else mask.permute(2, 0, 1)
    if mask.shape[0] != 1 or mask.dtype != torch.uint8:
        from conveyor.errors import DecodeError

        raise DecodeError(
            f"{os.fspath(path)}: a segmentation mask must be a single-channel 8-bit "
            f"(palette or gray) image, got {mask.shape[0]} channel(s) of "
            f"{str(mask.dtype).replace('torch.', '')}"
        )
    return tv_tensors.Mask(mask)


def read_image_tensor(path: str) -> torch.Tensor:
    """An image file as a ``tv_tensors.Image`` (uint8, CHW, RGB), decoded natively when the
    codecs are built in, else through Pillow."""
    from torchvision import tv_tensors

    read_image: Optional[Callable[..., torch.Tensor]]
    try:
        from conveyor.io import read_image
    except ImportError:  # conveyor built without its codecs
        read_image = None
    if read_image is not None:
        return tv_tensors.Image(read_image(path, mode="rgb"))
    from torchvision.transforms.v2.functional import pil_to_tensor

    with Image.open(path) as image:
        return tv_tensors.Image(pil_to_tensor(image.convert("RGB")))


class _VOCBase(VisionDataset):
    _SPLITS_DIR: str
    _TARGET_DIR: str
    _TARGET_FILE_EXT: str

    def __init__(
        self,
        root: Union[str, Path],
        year: str = "2012",
        image_set: str = "train",
        download: bool = False,
        transform: Optional[Callable] = None,
        target_transform: Optional[Callable] = None,
        transforms: Optional[Callable] = None,
        *,
        url: Optional[str] = None,
    ):
        # VisionDataset's, not torchvision's VOC constructor (a base class, for isinstance only)
        VisionDataset.__init__(self, root, transforms, transform, target_transform)

        self.year = verify_str_arg(year, "year", valid_values=[str(yr) for yr in range(2007, 2013)])

        valid_image_sets = ["train", "trainval", "val"]
        if year == "2007":
            valid_image_sets.append("test")
        self.image_set = verify_str_arg(image_set, "image_set", valid_image_sets)

        key = "2007-test" if year == "2007" and image_set == "test" else year
        dataset_year_dict = DATASET_YEAR_DICT[key]

        self.url = resolve_url(dataset_year_dict["url"], dataset_year_dict["filename"], url)
        self.filename = dataset_year_dict["filename"]
        self.md5 = dataset_year_dict["md5"]

        base_dir = dataset_year_dict["base_dir"]
        voc_root = os.path.join(self.root, base_dir)

        if download:
            download_and_extract_archive(self.url, self.root, filename=self.filename, md5=self.md5)

        if not os.path.isdir(voc_root):
            raise RuntimeError(
                "Dataset not found or corrupted. You can use download=True to download it"
            )

        splits_dir = os.path.join(voc_root, "ImageSets", self._SPLITS_DIR)
        split_f = os.path.join(splits_dir, image_set.rstrip("\n") + ".txt")
        with open(os.path.join(split_f)) as f:
            file_names = [x.strip() for x in f.readlines()]

        self.ids = file_names
        image_dir = os.path.join(voc_root, "JPEGImages")
        self.images = [os.path.join(image_dir, x + ".jpg") for x in file_names]

        target_dir = os.path.join(voc_root, self._TARGET_DIR)
        self.targets = [os.path.join(target_dir, x + self._TARGET_FILE_EXT) for x in file_names]

        assert len(self.images) == len(self.targets)

    def __len__(self) -> int:
        return len(self.images)


class VOCSegmentation(_VOCBase, torchvision.datasets.VOCSegmentation):
    """`Pascal VOC <https://www.robots.ox.ac.uk/~vgg/projects/pascal/VOC/>`_ Segmentation Dataset.

    Drop-in for ``torchvision.datasets.VOCSegmentation`` (and an instance of it): with ``target_format="pil"`` (default)
    items are ``(PIL RGB image, P-mode PIL mask)`` (0 background, 1..20 classes, 255 void), then
    ``transforms``. With ``target_format="mask"`` items are ``(tv_tensors.Image,
    tv_tensors.Mask)`` (uint8 ``[3, H, W]`` and ``[1, H, W]`` palette indices, 255 kept), both
    decoded natively: what ``wrap_dataset_for_transforms_v2(torchvision VOCSegmentation)``
    gives, so ``torchvision.transforms.v2`` moves the mask with nearest-neighbour sampling, leaves
    it out of ``ToDtype``/``Normalize`` (unless given a per-type dtype) and pads it with the same
    fill as the image; conveyor's DataLoader then runs the whole joint pipeline natively.

    Args:
        root: Root directory of the VOC Dataset (``~`` is expanded).
        year: The dataset year, ``"2007"`` to ``"2012"``.
        image_set: ``"train"``, ``"trainval"`` or ``"val"``; also ``"test"`` for 2007.
        download: Download and extract the archive into ``root`` unless a verified copy is there.
        transform: Takes the PIL image and returns a transformed version.
        target_transform: Takes the mask and returns a transformed version.
        transforms: Takes ``(image, mask)`` and returns a transformed pair.
        target_format: ``"pil"`` (torchvision's PIL items) or ``"mask"`` (typed tensors).
        url: Download from this URL instead (a mirror); see
            :func:`conveyor.datasets.download.resolve_url` for the environment variable.

    Raises:
        ValueError: An unknown ``target_format`` (and torchvision's validation errors).
    """

    _SPLITS_DIR = "Segmentation"
    _TARGET_DIR = "SegmentationClass"
    _TARGET_FILE_EXT = ".png"

    def __init__(
        self,
        root: Union[str, Path],
        year: str = "2012",
        image_set: str = "train",
        download: bool = False,
        transform: Optional[Callable] = None,
        target_transform: Optional[Callable] = None,
        transforms: Optional[Callable] = None,
        *,
        target_format: str = "pil",
        url: Optional[str] = None,
    ):
        _check_target_format(target_format, SEGMENTATION_TARGET_FORMATS)
        super().__init__(
            root, year, image_set, download, transform, target_transform, transforms, url=url
        )
        self.target_format = target_format

    @property
    def masks(self) -> list[str]:
        return self.targets

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        """
        Args:
            index (int): Index

        Returns:
            tuple: (image, target) where target is the image segmentation.
        """
        # decoded natively to tensors, or PIL images for target_format="pil"
        img: Union[torch.Tensor, Image.Image]
        target: Union[torch.Tensor, Image.Image]
        if self.target_format == "mask":
            img = read_image_tensor(self.images[index])
            target = read_mask_tensor(self.masks[index])
            if tuple(target.shape[-2:]) != tuple(img.shape[-2:]):
                from conveyor.errors import DecodeError

                raise DecodeError(
                    f"{self.masks[index]}: mask size {target.shape[-1]}x"
                    f"{target.shape[-2]} differs from the image size "
                    f"{img.shape[-1]}x{img.shape[-2]} ({self.images[index]})"
                )
        else:
            img = Image.open(self.images[index]).convert("RGB")
            target = Image.open(self.masks[index])

        if self.transforms is not None:
            img, target = self.transforms(img, target)

        return img, target


class VOCDetection(_VOCBase, torchvision.datasets.VOCDetection):
    """`Pascal VOC <https://www.robots.ox.ac.uk/~vgg/projects/pascal/VOC/>`_ Detection Dataset.

    Drop-in for ``torchvision.datasets.VOCDetection`` (and an instance of it, so that
    ``isinstance`` checks and ``wrap_dataset_for_transforms_v2`` accept it). With ``target_format="dict"`` (default)
    items are ``(PIL RGB image, parse_voc_xml dict)``, exactly torchvision's, parsed by the
    native reader. With ``target_format="boxes"`` items are ``(tv_tensors.Image, {"boxes",
    "labels", "difficult", "image_id"})``; every annotation is then parsed once at construction
    (a bad file fails here, named with its line and column) and ``__getitem__`` reads no XML.
    Inverted and zero-area boxes are left out of those targets (both loader paths read the same
    arrays) and counted in ``dropped_boxes``, with a warning: torchvision keeps them, and they
    break box losses.

    Args:
        root: Root directory of the VOC Dataset (``~`` is expanded).
        year: The dataset year, ``"2007"`` to ``"2012"``.
        image_set: ``"train"``, ``"trainval"`` or ``"val"``; also ``"test"`` for 2007.
        download: Download and extract the archive into ``root`` unless a verified copy is there.
        transform: Takes the image and returns a transformed version.
        target_transform: Takes the target and returns a transformed version.
        transforms: Takes ``(image, target)`` and returns a transformed pair.
        target_format: ``"dict"`` (torchvision's target) or ``"boxes"`` (typed target).
        url: Download from this URL instead (a mirror).
        num_threads: Threads parsing the annotations (``None``: every core).
    """

    _SPLITS_DIR = "Main"
    _TARGET_DIR = "Annotations"
    _TARGET_FILE_EXT = ".xml"

    def __init__(
        self,
        root: Union[str, Path],
        year: str = "2012",
        image_set: str = "train",
        download: bool = False,
        transform: Optional[Callable] = None,
        target_transform: Optional[Callable] = None,
        transforms: Optional[Callable] = None,
        *,
        target_format: str = "dict",
        url: Optional[str] = None,
        num_threads: Optional[int] = None,
    ):
        _check_target_format(target_format, TARGET_FORMATS)
        super().__init__(
            root, year, image_set, download, transform, target_transform, transforms, url=url
        )
        self.target_format = target_format
        self.num_threads = num_threads
        self._native_annotations: Optional[_voc.AnnotationSet] = None
        self.dropped_boxes: list = []  # (file, box, why) left out of the "boxes" targets
        if target_format == "boxes":
            self._native_annotations = self._load_native_annotations()

    @property
    def annotations(self) -> list[str]:
        return self.targets

    @property
    def classes(self) -> tuple[str, ...]:
        """The class names; label ``k`` is ``classes[k - 1]`` (0 is background)."""
        return _voc.VOC_CLASSES

    def _load_native_annotations(self) -> _voc.AnnotationSet:
        from conveyor.datasets.folder_annotations import AnnotationReport, drop_degenerate_boxes

        annotations = _voc.load_annotations(
            self.annotations, classes=_voc.VOC_CLASSES, num_threads=self.num_threads
        )
        report = AnnotationReport()
        annotations = drop_degenerate_boxes(annotations, report)
        self.dropped_boxes = report.dropped_boxes
        if report.dropped_boxes:
            import warnings

            warnings.warn(f"VOCDetection({self.root!r}): {report.lines()[0]}", stacklevel=4)
        return annotations

    @property
    def native_annotations(self) -> _voc.AnnotationSet:
        """Every annotation of the split as one struct of arrays (parsed once, natively).

        Built at construction for ``target_format="boxes"``; with ``"dict"`` on first access
        (so that, as with torchvision, constructing the dataset reads no XML).
        """
        if self._native_annotations is None:
            self._native_annotations = self._load_native_annotations()
        return self._native_annotations

    def typed_target(self, index: int, canvas_size: tuple[int, int]) -> dict[str, Any]:
        """The ``"boxes"`` target of sample ``index`` for an image of ``(height, width)``."""
        from conveyor.datasets.folder_annotations import boxes_target

        return boxes_target(self.native_annotations, index, canvas_size)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        """
        Args:
            index (int): Index

        Returns:
            tuple: (image, target) where target is a dictionary of the XML tree (or the typed
            target with ``target_format="boxes"``).
        """
        img: Union[torch.Tensor, Image.Image]  # a tensor (native decode) or a PIL image
        if self.target_format == "boxes":
            img = read_image_tensor(self.images[index])
            target = self.typed_target(index, (int(img.shape[-2]), int(img.shape[-1])))
        else:
            img = Image.open(self.images[index]).convert("RGB")
            path = self.annotations[index]
            with open(path, "rb") as file:
                target = _voc.parse_voc_xml(file.read(), source=path)

        if self.transforms is not None:
            img, target = self.transforms(img, target)

        return img, target

    @staticmethod
    def parse_voc_xml(node: Any) -> dict[str, Any]:
        """torchvision's static helper: an ``ElementTree`` element (or XML bytes/str) to the dict."""
        if isinstance(node, (bytes, bytearray, memoryview, str)):
            return _voc.parse_voc_xml(node)
        from torchvision.datasets import VOCDetection as TorchvisionVOCDetection

        return TorchvisionVOCDetection.parse_voc_xml(node)


def _register_transforms_v2_wrappers() -> None:
    """``wrap_dataset_for_transforms_v2`` for conveyor's datasets: torchvision's own wrapping
    for torchvision's items (``"dict"``, ``"pil"``); the typed items already are what it would
    make, so they pass through (``target_keys`` selects among the typed target's keys)."""
    from torchvision.tv_tensors import _dataset_wrapper as wrappers

    def typed_or(torchvision_factory):
        def factory(dataset, target_keys):
            if getattr(dataset, "target_format", None) in ("dict", "pil"):
                return torchvision_factory(dataset, target_keys)
            keys = None
            if getattr(dataset, "target_format", None) == "boxes":
                keys = wrappers.parse_target_keys(
                    target_keys,
                    available={"boxes", "labels", "difficult", "image_id"},
                    default="all",
                )

            def wrapper(index, sample):
                image, target = sample
                if keys is not None:
                    target = {key: value for key, value in target.items() if key in keys}
                return image, target

            return wrapper

        return factory

    registry = wrappers.WRAPPER_FACTORIES
    registry.register(VOCDetection)(typed_or(wrappers.voc_detection_wrapper_factory))
    registry.register(VOCSegmentation)(typed_or(wrappers.segmentation_wrapper_factory))
    from conveyor.datasets.folder import VOCFolder

    def folder_dict_factory(dataset, target_keys):
        # the folder's own classes and repaired boxes, not torchvision's 20 VOC classes
        keys = wrappers.parse_target_keys(
            target_keys, available={"annotation", "boxes", "labels"}, default={"boxes", "labels"}
        )

        def wrapper(index, sample):
            image, target = sample
            typed = dataset.typed_target(index, (image.height, image.width))
            target = {"annotation": target["annotation"]} if "annotation" in keys else {}
            target.update({key: typed[key] for key in ("boxes", "labels") if key in keys})
            return image, target

        return wrapper

    def folder_factory(dataset, target_keys):
        if dataset.target_format == "dict":
            return folder_dict_factory(dataset, target_keys)
        return typed_or(wrappers.segmentation_wrapper_factory)(dataset, target_keys)

    registry.register(VOCFolder)(folder_factory)


_register_transforms_v2_wrappers()
