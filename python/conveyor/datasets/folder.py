"""``VOCFolder``: any VOC-format folder (labelImg, CVAT, labelme, Roboflow, VOCdevkit), with its
own classes, on conveyor's native path."""

from __future__ import annotations

import copy
import os
import warnings
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np
import torch
from PIL import Image
from torchvision.datasets.vision import VisionDataset

from conveyor import voc as _voc
from conveyor.datasets import folder_annotations as _annotations
from conveyor.datasets.folder_layout import FolderIndex, index_folder, read_class_file

TASKS = ("detection", "segmentation")
_FORMATS = {"detection": ("boxes", "dict"), "segmentation": ("mask", "pil")}
# what the native engine decodes (others load through Pillow, on the Python path)
_NATIVE_EXTENSIONS = (".jpg", ".jpeg", ".png")


class VOCFolder(VisionDataset):
    """A VOC-format dataset in any layout, with any classes.

    Layouts are detected (see :mod:`conveyor.datasets.folder_layout`): ``VOCdevkit``
    (``JPEGImages/``, ``Annotations/``, ``ImageSets/``, ``SegmentationClass/``), CVAT's VOC export
    (``labelmap.txt``), labelme's ``labelme2voc`` output (``class_names.txt``), Roboflow's
    ``train/ valid/ test/`` folders, and labelImg's (XML beside the image, or ``images/`` +
    ``annotations/``). Images are ``.jpg .jpeg .png .bmp`` in any case, found by the XML's stem or
    else its ``<filename>``; unpaired files are listed in :attr:`problems`.

    Items, as for conveyor's typed VOC datasets: detection ``(tv_tensors.Image, {"boxes":
    BoundingBoxes XYXY float32, "labels": int64, "difficult": bool, "image_id": int})``;
    segmentation ``(tv_tensors.Image, tv_tensors.Mask)``. ``target_format="dict"`` /
    ``"pil"`` give torchvision's PIL items instead. Labels are 1-based into :attr:`classes`
    (0 is background).

    Every annotation is read once, natively, at construction, and repaired where tools write
    oddly: a missing or 0x0 ``<size>`` or one that differs from the image (the image's size is
    used), boxes past the edge (clamped), inverted or zero-area boxes (dropped). Each repair is
    counted in :attr:`report` and summarised in one warning. A malformed or unreadable XML does
    not stop construction: its sample raises :class:`conveyor.errors.AnnotationError` when
    loaded, so ``DataLoader(on_error="skip")`` can skip it.

    Args:
        root: The dataset folder (or one holding ``VOCdevkit/VOC20xx``).
        split: ``"train"``, ``"val"`` (Roboflow's ``valid``), ``"test"``, another split-file
            name, or None for every sample.
        task: ``"detection"`` (needs XML files) or ``"segmentation"`` (needs
            ``SegmentationClass`` masks).
        classes: The class names in label order. Default: read from ``labelmap.txt`` /
            ``class_names.txt`` / ``classes.txt`` when present, else every name in the
            annotations, sorted (see :attr:`classes_source`).
        transform: Takes the image and returns a transformed version.
        target_transform: Takes the target and returns a transformed version.
        transforms: Takes ``(image, target)`` and returns a transformed pair.
        target_format: ``"boxes"`` (default) or ``"dict"`` for detection; ``"mask"``
            (default) or ``"pil"`` for segmentation.
        unknown_classes: ``"raise"`` (default): an object whose class is not in an explicit
            ``classes`` raises naming its file; ``"skip"``: such objects are left out (counted).
            Objects of classes missing from the folder's class file are always left out and
            counted (``report.unknown_names``).
        layout: Force a layout (``"vocdevkit"``, ``"cvat"``, ``"labelme"``, ``"roboflow"``,
            ``"labelimg"``).
        ids: Keep only these sample ids (file stems), in this order.
        image_dir: Where the images are (overrides the layout).
        annotation_dir: Where the XML files are (overrides the layout).
        mask_dir: Where the segmentation masks are (overrides the layout).
        num_threads: Threads reading annotations and image headers (None: every core).

    Raises:
        FileNotFoundError: ``root`` does not exist.
        ValueError: No VOC-format data, an unknown split, classes or argument; an object of a
            class outside ``classes`` (with ``unknown_classes="raise"``).
    """

    def __init__(
        self,
        root: Union[str, Path],
        split: Optional[str] = None,
        task: str = "detection",
        classes: Optional[Sequence[str]] = None,
        transform: Optional[Callable] = None,
        target_transform: Optional[Callable] = None,
        transforms: Optional[Callable] = None,
        *,
        target_format: Optional[str] = None,
        unknown_classes: str = "raise",
        layout: Optional[str] = None,
        ids: Optional[Sequence[str]] = None,
        image_dir: Optional[str] = None,
        annotation_dir: Optional[str] = None,
        mask_dir: Optional[str] = None,
        num_threads: Optional[int] = None,
    ) -> None:
        super().__init__(root, transforms, transform, target_transform)
        if task not in TASKS:
            raise ValueError(f"task={task!r}: use 'detection' or 'segmentation'")
        target_format = target_format or _FORMATS[task][0]
        if target_format not in _FORMATS[task]:
            raise ValueError(
                f"target_format={target_format!r}: use one of {_FORMATS[task]} for {task}"
            )
        if unknown_classes not in _annotations.UNKNOWN_CLASSES:
            raise ValueError(f"unknown_classes={unknown_classes!r}: use 'raise' or 'skip'")
        self.task, self.target_format, self.num_threads = task, target_format, num_threads
        index = index_folder(
            os.fspath(self.root), split, task, layout, image_dir, annotation_dir, mask_dir
        )
        self._dirs, self._restricted = (image_dir, annotation_dir, mask_dir), ids is not None
        if ids is not None:
            index = _restrict(index, ids)
        self.layout, self.split, self.splits = index.layout, index.split, index.splits
        self.ids: list = index.ids
        self.images: list = index.images
        self.annotations: list = index.annotations
        self.masks: list = index.masks
        self.problems: list = index.problems
        self.report = _annotations.AnnotationReport()
        self._native_annotations: Optional[_voc.AnnotationSet] = None
        self.image_sizes = _annotations.read_image_sizes(self.images, num_threads)
        has_xml = task == "detection" or (  # detection samples all have one (maybe none)
            bool(self.annotations) and all(path is not None for path in self.annotations)
        )
        if has_xml:
            self._native_annotations = self._read_annotations()
        self.classes, self.classes_source = self._resolve_classes(classes, index)
        if self._native_annotations is not None:  # classes first: a broken box's name counts
            annotations = _annotations.fit_to_images(
                self._native_annotations, self.image_sizes, self.report
            )
            annotations = _annotations.drop_degenerate_boxes(annotations, self.report)
            self._native_annotations = self._label(annotations, unknown_classes)
            bad = {self.annotations[i] for i in self.report.bad_files}  # reported already
            self.report.size_from_image = [p for p in self.report.size_from_image if p not in bad]
        self._warn_findings()

    # -- construction ----------------------------------------------------------------------
    def _read_annotations(self) -> _voc.AnnotationSet:
        annotations, errors = _annotations.read_annotation_files(self.annotations, self.num_threads)
        self.report.bad_files = errors
        return annotations

    def _resolve_classes(self, classes: Optional[Sequence[str]], index: FolderIndex) -> tuple:
        if classes is not None:
            if isinstance(classes, str):
                raise TypeError("classes must be a sequence of class names, not a str")
            classes = [str(name).strip() for name in classes]
            if len(set(classes)) != len(classes):
                raise ValueError(f"classes contains duplicate names: {classes}")
            return tuple(classes), "argument"
        if index.class_file is not None:
            return tuple(read_class_file(index.class_file)), index.class_file
        if self._native_annotations is not None:
            annotations = self._native_annotations
            if self.split is not None or self._restricted:
                # every split must get the same labels: read the names of the whole folder
                whole = index_folder(index.root, None, "detection", self.layout, *self._dirs)
                annotations, _ = _annotations.read_annotation_files(
                    whole.annotations, self.num_threads
                )
            return _inferred(_annotations.infer_classes(annotations), self.layout)
        if any(path is not None for path in self.annotations):  # masks, some XML: all of it
            return folder_classes(index.root, self.layout, self.num_threads)
        raise ValueError(
            f"{index.root}: no class names found (no labelmap.txt, class_names.txt or "
            f"classes.txt, and no annotations to read them from): pass classes=[...]"
        )

    def _label(self, annotations: _voc.AnnotationSet, unknown_classes: str) -> _voc.AnnotationSet:
        # a class file or the inferred list may not cover every name: those are skipped, counted
        policy = unknown_classes if self.classes_source == "argument" else "skip"
        return _annotations.assign_labels(annotations, self.classes, policy, self.report)

    def _warn_findings(self) -> None:
        lines = [str(problem) for problem in self.problems[:3]]
        if len(self.problems) > 3:
            lines.append(f"... {len(self.problems) - 3} more unpaired file(s)")
        lines += self.report.lines()
        if lines:
            warnings.warn(
                f"VOCFolder({os.fspath(self.root)!r}, split={self.split!r}): "
                + "; ".join(lines)
                + " (see .problems and .report; `conveyor doctor` checks the whole folder)",
                stacklevel=3,
            )

    # -- the dataset -----------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        """Classes including background (label 0)."""
        return len(self.classes) + 1

    @property
    def natively_decodable(self) -> bool:
        """Every image is a JPEG or PNG (the formats conveyor's engine decodes)."""
        return all(path.lower().endswith(_NATIVE_EXTENSIONS) for path in self.images)

    @property
    def native_annotations(self) -> _voc.AnnotationSet:
        """The annotations as one struct of arrays (labels into :attr:`classes`, repaired)."""
        if self._native_annotations is None:
            raise AttributeError(f"{self.root}: this {self.task} dataset has no XML annotations")
        return self._native_annotations

    def check_sample(self, index: int) -> None:
        """Raises the error found reading sample ``index``'s annotation, if there was one."""
        if self.task == "detection":
            error = self.report.bad_files.get(index)
            if error is not None:
                raise copy.copy(error)  # a fresh exception each time (notes, traceback)

    def __len__(self) -> int:
        return len(self.images)

    def typed_target(self, index: int, canvas_size: tuple) -> dict:
        """The ``"boxes"`` target of sample ``index`` for an image of ``(height, width)``."""
        return _annotations.boxes_target(self.native_annotations, index, canvas_size)

    def _image_tensor(self, index: int) -> torch.Tensor:
        from conveyor.datasets.voc import read_image_tensor

        path = self.images[index]
        if path.lower().endswith(_NATIVE_EXTENSIONS):
            return read_image_tensor(path)
        from torchvision import tv_tensors
        from torchvision.transforms.v2.functional import pil_to_tensor

        with Image.open(path) as image:
            return tv_tensors.Image(pil_to_tensor(image.convert("RGB")))

    def __getitem__(self, index: int) -> tuple:
        self.check_sample(index)
        # decoded natively to tensors, or PIL images for target_format="pil"
        image: Union[torch.Tensor, Image.Image]
        if self.target_format == "boxes":
            image = self._image_tensor(index)
            target: Any = self.typed_target(index, (int(image.shape[-2]), int(image.shape[-1])))
        elif self.target_format == "mask":
            from conveyor.datasets.voc import read_mask_tensor
            from conveyor.errors import DecodeError

            image = self._image_tensor(index)
            target = read_mask_tensor(self.masks[index])
            if tuple(target.shape[-2:]) != tuple(image.shape[-2:]):
                raise DecodeError(
                    f"{self.masks[index]}: mask size {target.shape[-1]}x{target.shape[-2]} "
                    f"differs from the image size {image.shape[-1]}x{image.shape[-2]} "
                    f"({self.images[index]})"
                )
        elif self.target_format == "pil":
            image = Image.open(self.images[index]).convert("RGB")
            target = Image.open(self.masks[index])
        else:
            image = Image.open(self.images[index]).convert("RGB")
            path = self.annotations[index]
            with open(path, "rb") as file:
                target = _voc.parse_voc_xml(file.read(), source=path)
        if self.transforms is not None:
            image, target = self.transforms(image, target)
        return image, target

    def extra_repr(self) -> str:
        return "\n".join(
            [
                f"Layout: {self.layout}",
                f"Split: {self.split}",
                f"Task: {self.task} ({self.target_format})",
                f"Classes ({len(self.classes)}, from {self.classes_source}): "
                + ", ".join(self.classes[:10])
                + (", ..." if len(self.classes) > 10 else ""),
            ]
        )


def folder_classes(
    root: Union[str, Path], layout: Optional[str] = None, num_threads: Optional[int] = None
) -> tuple:
    """``(class names, where they came from)`` of a VOC-format folder, all splits: its class
    file (``labelmap.txt`` / ``class_names.txt`` / ``classes.txt``), else every name in its
    annotations, sorted."""
    index = index_folder(os.fspath(root), None, "detection", layout)
    if index.class_file is not None:
        return tuple(read_class_file(index.class_file)), index.class_file
    annotations, _ = _annotations.read_annotation_files(index.annotations, num_threads)
    names = _annotations.infer_classes(annotations)
    if not names:
        raise ValueError(f"{index.root}: the annotations name no objects; pass classes=[...]")
    return _inferred(names, index.layout)


def _inferred(names: list, layout: str) -> tuple:
    """``(classes, source)`` for names read from the annotations: a VOCdevkit tree whose names
    are all PASCAL VOC's keeps VOC's 20 classes and labels (a partial tree labels alike)."""
    if layout == "vocdevkit" and names and set(names) <= set(_voc.VOC_CLASSES):
        return _voc.VOC_CLASSES, "PASCAL VOC (every name in the annotations is one of its 20)"
    return tuple(names), "annotations"


def _restrict(index: FolderIndex, ids: Sequence[str]) -> FolderIndex:
    position = {sample_id: i for i, sample_id in enumerate(index.ids)}
    missing = [sample_id for sample_id in ids if sample_id not in position]
    if missing:
        raise ValueError(f"{index.root}: ids not in split {index.split!r}: {missing[:5]}")
    order = [position[sample_id] for sample_id in ids]
    for name in ("ids", "images", "annotations", "masks"):
        values = getattr(index, name)
        setattr(index, name, [values[i] for i in order])
    return index


def holdout_ids(ids: Sequence[str], fraction: float, seed: int = 0) -> tuple:
    """``(train ids, held-out ids)``: a deterministic split of ``ids`` (by ``seed``) for
    folders that come without split files."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction={fraction}: must be between 0 and 1")
    ids = list(ids)
    order = np.random.default_rng(seed).permutation(len(ids))
    count = max(1, round(len(ids) * fraction)) if len(ids) > 1 else 0
    held = sorted(order[:count].tolist())
    kept = sorted(order[count:].tolist())
    return [ids[i] for i in kept], [ids[i] for i in held]


# wrap_dataset_for_transforms_v2 support lives with the other VOC datasets' (registered there)
import conveyor.datasets.voc  # noqa: E402, F401
