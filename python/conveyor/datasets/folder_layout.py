"""Finding the samples of a VOC-format folder, whatever tool wrote it.

Layouts recognised (``detect_layout``), each overridable by explicit directories:

* ``"vocdevkit"``: ``JPEGImages/``, ``Annotations/``, ``ImageSets/{Main,Segmentation}/<split>.txt``,
  ``SegmentationClass/`` (also found under ``VOCdevkit/VOC20xx/``);
* ``"cvat"``: the same plus CVAT's ``labelmap.txt``;
* ``"labelme"``: labelme's ``labelme2voc`` output (the same plus ``class_names.txt``);
* ``"roboflow"``: ``train/``, ``valid/``, ``test/`` folders with each image's XML beside it;
* ``"labelimg"``: XML beside the image, or ``images/`` + ``annotations/``.

A split is a split file (``ImageSets``), a split folder (Roboflow), or everything (``None``).
Pairing never guesses silently: an annotation without an image, an image without an
annotation and a split entry without files are returned as problems.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Optional

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
"""Image file extensions, matched in any case."""

CLASS_FILES = ("labelmap.txt", "class_names.txt", "classes.txt")
"""Files naming the classes, looked for in this order in the dataset folder."""

LAYOUTS = ("vocdevkit", "cvat", "labelme", "roboflow", "labelimg")

_IMAGE_DIRS = ("JPEGImages", "images", "Images", "imgs")
_ANNOTATION_DIRS = ("Annotations", "annotations")
_SPLIT_ALIASES = {"val": ("val", "valid", "validation"), "valid": ("valid", "val", "validation")}
# entries of a class file that name no object class (labelme2voc, CVAT)
_NOT_CLASSES = {"__ignore__", "_background_", "background", "__background__"}


@dataclass
class Problem:
    """A file the folder cannot use as it is: ``path`` and what is wrong with it."""

    path: str
    kind: str  # "orphan-annotation", "orphan-image", "missing-file", "bad-annotation", ...
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass
class FolderIndex:
    """The samples of one split of a VOC-format folder.

    Attributes:
        layout: one of ``LAYOUTS``.
        root: the folder holding the data (``VOCdevkit/VOC2012`` when found under it).
        split: the split read (``None``: every sample).
        splits: the splits the folder offers.
        ids: the sample ids (file stems), in split-file order or sorted.
        images: each sample's image path.
        annotations: each sample's XML path (``None`` where it has none: segmentation only).
        masks: each sample's ``SegmentationClass`` PNG (``None`` where it has none).
        class_file: the file naming the classes, if any.
        problems: unpaired or missing files.
    """

    layout: str
    root: str
    split: Optional[str]
    splits: tuple
    ids: list = field(default_factory=list)
    images: list = field(default_factory=list)
    annotations: list = field(default_factory=list)
    masks: list = field(default_factory=list)
    class_file: Optional[str] = None
    problems: list = field(default_factory=list)


def _listdir(path: str) -> list:
    try:
        return sorted(os.listdir(path))
    except (FileNotFoundError, NotADirectoryError):
        return []


def _first_dir(root: str, names: tuple) -> Optional[str]:
    for name in names:
        path = os.path.join(root, name)
        if os.path.isdir(path):
            return path
    return None


def _is_image(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def _files_by_stem(directory: str, keep) -> dict:
    """``{stem: path}`` of the files in ``directory`` that ``keep(name)`` accepts."""
    found: dict = {}
    for name in _listdir(directory):
        if keep(name):
            found.setdefault(os.path.splitext(name)[0], os.path.join(directory, name))
    return found


def _resolve_root(root: str) -> str:
    """``root`` itself, or the single ``VOC20xx`` under ``root/VOCdevkit`` or ``root``."""
    if _first_dir(root, _ANNOTATION_DIRS + _IMAGE_DIRS):
        return root
    devkit = os.path.join(root, "VOCdevkit")
    if not os.path.isdir(devkit):
        devkit = root  # root may be the VOCdevkit folder itself (then only VOC<year> count)
    years = [
        name
        for name in _listdir(devkit)
        if os.path.isdir(os.path.join(devkit, name))
        and (devkit != root or re.fullmatch(r"VOC\d{4}", name))
    ]
    if devkit == root and not years:
        return root
    if len(years) != 1:
        raise ValueError(
            f"{devkit} holds {len(years)} folders ({', '.join(years) or 'none'}): pass the one "
            f"to read as root, e.g. {os.path.join(devkit, years[0] if years else 'VOC2012')}"
        )
    return os.path.join(devkit, years[0])


def _roboflow_splits(root: str) -> dict:
    splits = {}
    for name in _listdir(root):
        path = os.path.join(root, name)
        if name.lower() in ("train", "valid", "val", "test", "validation") and os.path.isdir(path):
            if any(entry.lower().endswith(".xml") for entry in _listdir(path)):
                splits[name] = path
    return splits


def find_class_file(root: str) -> Optional[str]:
    for name in CLASS_FILES:
        path = os.path.join(root, name)
        if os.path.isfile(path):
            return path
    return None


def read_class_file(path: str) -> list:
    """The class names of a ``labelmap.txt`` (CVAT: ``name:color:parts:actions``),
    ``class_names.txt`` (labelme2voc) or ``classes.txt`` (one name a line); background and
    ignore entries are left out (label 0 is background)."""
    names = []
    with open(path, encoding="utf-8") as file:
        for line in file:
            line = line.rstrip("\r\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            name = line.split(":")[0] if os.path.basename(path) == "labelmap.txt" else line
            name = name.strip()
            if name not in _NOT_CLASSES and name not in names:
                names.append(name)
    if not names:
        raise ValueError(f"{path}: names no classes")
    return names


def detect_layout(root: str) -> tuple:
    """``(layout, data root)`` of the VOC-format folder ``root``.

    Raises:
        FileNotFoundError: ``root`` is not a directory.
        ValueError: nothing in ``root`` looks like VOC-format data.
    """
    if not os.path.isdir(root):
        raise FileNotFoundError(f"{root}: no such directory")
    root = _resolve_root(root)
    if _roboflow_splits(root):
        return "roboflow", root
    images = _first_dir(root, _IMAGE_DIRS)
    annotations = _first_dir(root, _ANNOTATION_DIRS)
    if images is not None and os.path.basename(images) == "JPEGImages":
        class_file = find_class_file(root)
        name = os.path.basename(class_file) if class_file else ""
        return {"labelmap.txt": "cvat", "class_names.txt": "labelme"}.get(name, "vocdevkit"), root
    if images is not None and annotations is not None:
        return "labelimg", root
    if (
        images is None
        and annotations is not None
        and os.path.basename(annotations) == "Annotations"
    ):
        # VOC's Annotations/ without JPEGImages/: every sample is reported without its image
        class_file = find_class_file(root)
        name = os.path.basename(class_file) if class_file else ""
        return {"labelmap.txt": "cvat", "class_names.txt": "labelme"}.get(name, "vocdevkit"), root
    if any(name.lower().endswith(".xml") for name in _listdir(root)):
        return "labelimg", root
    raise ValueError(
        f"{root}: no VOC-format data found (looked for JPEGImages/ + Annotations/, "
        f"train/ valid/ test/ folders with XML files, images/ + annotations/, or XML files "
        f"beside images)"
    )


def _split_ids(root: str, task: str, split: str) -> Optional[list]:
    """The ids of ``split``'s ``ImageSets`` file, or ``None`` when there is none."""
    folders = ("Main", "Segmentation") if task == "detection" else ("Segmentation", "Main")
    for folder in folders:
        for name in _SPLIT_ALIASES.get(split, (split,)):
            path = os.path.join(root, "ImageSets", folder, name + ".txt")
            if os.path.isfile(path):
                with open(path, encoding="utf-8") as file:
                    # "<id>" or "<id> <flag>" (per-class files); blank lines ignored
                    return [line.split()[0] for line in file if line.strip()]
    return None


def _available_splits(root: str, task: str) -> tuple:
    folder = os.path.join(root, "ImageSets", "Main" if task == "detection" else "Segmentation")
    names = [os.path.splitext(name)[0] for name in _listdir(folder) if name.endswith(".txt")]
    # per-class files ("dog_train.txt") are not splits
    return tuple(name for name in names if "_" not in name)


def index_folder(
    root: str,
    split: Optional[str] = None,
    task: str = "detection",
    layout: Optional[str] = None,
    image_dir: Optional[str] = None,
    annotation_dir: Optional[str] = None,
    mask_dir: Optional[str] = None,
) -> FolderIndex:
    """Finds the samples of ``split`` (``None``: all) in the VOC-format folder ``root``.

    Args:
        root: the dataset folder.
        split: a split name (``"train"``, ``"val"`` (also found as ``"valid"``), ...) or None.
        task: ``"detection"`` (each sample needs an XML) or ``"segmentation"`` (a mask).
        layout: one of ``LAYOUTS`` (default: detected).
        image_dir, annotation_dir, mask_dir: override where images, XML files and masks are.

    Raises:
        FileNotFoundError, ValueError: no such folder, no VOC data, or an unknown split.
    """
    detected, data_root = detect_layout(root)
    layout = layout or detected
    if layout not in LAYOUTS:
        raise ValueError(f"layout={layout!r}: use one of {', '.join(LAYOUTS)}")
    index = FolderIndex(layout=layout, root=data_root, split=split, splits=())
    index.class_file = find_class_file(data_root)

    if layout == "roboflow":
        folders = _roboflow_splits(data_root)
        index.splits = tuple(sorted(folders))
        if split is None:
            chosen = [folders[name] for name in sorted(folders)]
        else:
            match = [
                folders[name]
                for name in folders
                if name.lower() in _SPLIT_ALIASES.get(split.lower(), (split.lower(),))
            ]
            if not match:
                raise ValueError(
                    f"{data_root}: no split {split!r} (it has {', '.join(sorted(folders))})"
                )
            chosen = match[:1]
        for folder in chosen:
            folder_index = index_folder(folder, None, task, "labelimg")
            for name in ("ids", "images", "annotations", "masks", "problems"):
                getattr(index, name).extend(getattr(folder_index, name))
        return index

    default_images = "JPEGImages" if layout in ("vocdevkit", "cvat", "labelme") else ""
    image_dir = image_dir or _first_dir(data_root, _IMAGE_DIRS)
    image_dir = image_dir or os.path.join(data_root, default_images)
    annotation_dir = annotation_dir or _first_dir(data_root, _ANNOTATION_DIRS) or image_dir
    mask_dir = mask_dir or os.path.join(data_root, "SegmentationClass")
    images = _files_by_stem(image_dir, _is_image)
    xmls = _files_by_stem(annotation_dir, lambda name: name.lower().endswith(".xml"))
    masks = _files_by_stem(mask_dir, lambda name: name.lower().endswith(".png"))
    index.splits = _available_splits(data_root, task)

    ids = None
    if split is not None:
        ids = _split_ids(data_root, task, split)
        if ids is None:
            raise ValueError(
                f"{data_root}: no split file for {split!r} under ImageSets/ (splits: "
                f"{', '.join(index.splits) or 'none; use split=None for every sample'})"
            )
    paired = xmls if task == "detection" else masks
    everything = ids is None
    if ids is None:
        ids = sorted(paired)
    wanted = "annotation" if task == "detection" else "mask"
    for stem in ids:
        image = images.get(stem)
        if image is None and stem in xmls:
            image = _image_from_filename(xmls[stem], image_dir)
        required = xmls.get(stem) if task == "detection" else masks.get(stem)
        if image is None or required is None:
            missing = [what for what, got in (("image", image), (wanted, required)) if got is None]
            path = required or image or os.path.join(data_root, stem)
            kind = "orphan-annotation" if required is not None else "missing-file"
            index.problems.append(
                Problem(path, kind, f"sample {stem!r} has no {' and no '.join(missing)} (not used)")
            )
            continue
        index.ids.append(stem)
        index.images.append(image)
        index.annotations.append(xmls.get(stem))
        index.masks.append(masks.get(stem))
    if everything:  # every image should belong to a sample
        used = set(index.images)
        for path in sorted(set(images.values()) - used):
            index.problems.append(
                Problem(path, "orphan-image", f"image without {wanted} (not used)")
            )
    return index


def _image_from_filename(xml_path: str, image_dir: str) -> Optional[str]:
    """The image an XML's ``<filename>`` names (often wrong, or without extension), if present."""
    from conveyor import voc

    try:
        with open(xml_path, "rb") as file:
            filename = voc.parse_annotation(file.read(), None, source=xml_path).filename
    except Exception:  # a malformed file is reported when the annotations are read
        return None
    filename = os.path.basename(filename.strip())
    if not filename:
        return None
    candidates = [filename] if _is_image(filename) else []
    stem = os.path.splitext(filename)[0] if _is_image(filename) else filename
    candidates += [stem + ext for ext in IMAGE_EXTENSIONS]
    by_lower = {name.lower(): name for name in _listdir(image_dir)}
    for candidate in candidates:
        name = by_lower.get(candidate.lower())
        if name is not None:
            return os.path.join(image_dir, name)
    return None
