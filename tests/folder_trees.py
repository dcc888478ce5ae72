"""Writes small VOC-format trees of custom classes in the layouts annotation tools produce
(VOCdevkit, CVAT, labelme2voc, Roboflow, labelImg), for the VOCFolder and doctor tests."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Optional

import numpy as np
from imagegen import encode_jpeg, photo_like
from PIL import Image

CLASSES = ("raccoon", "traffic sign", "zebra")


def annotation_xml(
    filename: str,
    size: Optional[tuple],
    objects: list,
    *,
    difficult: bool = True,
) -> str:
    """A labelImg-style annotation; ``size=None`` leaves ``<size>`` out; each object is
    ``(name, (xmin, ymin, xmax, ymax))``; ``difficult=False`` leaves out ``<difficult>``."""
    parts = ["<annotation>", "  <folder>images</folder>", f"  <filename>{filename}</filename>"]
    if size is not None:
        parts += [
            "  <size>",
            f"    <width>{size[0]}</width>",
            f"    <height>{size[1]}</height>",
            "    <depth>3</depth>",
            "  </size>",
        ]
    for name, box in objects:
        parts += ["  <object>", f"    <name>{name}</name>", "    <pose>Unspecified</pose>"]
        if difficult:
            parts += ["    <truncated>0</truncated>", "    <difficult>0</difficult>"]
        parts += ["    <bndbox>"]
        parts += [f"      <{k}>{v}</{k}>" for k, v in zip(("xmin", "ymin", "xmax", "ymax"), box)]
        parts += ["    </bndbox>", "  </object>"]
    parts.append("</annotation>\n")
    return "\n".join(parts)


def image_bytes(width: int, height: int, seed: int, ext: str = ".jpg") -> bytes:
    pixels = photo_like(height, width, seed=seed)
    if ext.lower() in (".jpg", ".jpeg"):
        return encode_jpeg(pixels, quality=85)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, {".png": "PNG", ".bmp": "BMP"}[ext.lower()])
    return out.getvalue()


def random_objects(rng: np.random.Generator, width: int, height: int, classes=CLASSES) -> list:
    objects = []
    for _ in range(int(rng.integers(1, 4))):
        w, h = int(rng.integers(8, width // 2)), int(rng.integers(8, height // 2))
        x, y = int(rng.integers(1, width - w)), int(rng.integers(1, height - h))
        objects.append((str(rng.choice(classes)), (x, y, x + w, y + h)))
    return objects


def write_sample(
    image_dir: Path,
    xml_dir: Path,
    stem: str,
    seed: int,
    *,
    size: tuple = (96, 72),
    ext: str = ".jpg",
    classes=CLASSES,
    mask_dir: Optional[Path] = None,
) -> list:
    """Writes ``<stem><ext>`` and ``<stem>.xml`` (and a palette mask); returns the objects."""
    rng = np.random.default_rng(seed)
    width, height = size
    objects = random_objects(rng, width, height, classes)
    image_dir.mkdir(parents=True, exist_ok=True)
    xml_dir.mkdir(parents=True, exist_ok=True)
    (image_dir / f"{stem}{ext}").write_bytes(image_bytes(width, height, seed, ext))
    (xml_dir / f"{stem}.xml").write_text(annotation_xml(f"{stem}{ext}", size, objects))
    if mask_dir is not None:
        mask_dir.mkdir(parents=True, exist_ok=True)
        mask = np.zeros((height, width), np.uint8)
        for name, (x0, y0, x1, y1) in objects:
            mask[y0:y1, x0:x1] = list(classes).index(name) + 1
        mask[0, :] = 255  # a void border row, as VOC has
        image = Image.fromarray(mask, "P")
        image.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0] + [224] * (256 - 4) * 3)
        image.save(mask_dir / f"{stem}.png")
    return objects


def make_tree(root: Path, layout: str, count: int = 6, seed: int = 0) -> Path:
    """A tree of ``count`` samples in ``layout``; returns the folder to pass to VOCFolder."""
    root = Path(root)
    stems = [f"img_{i:03d}" for i in range(count)]
    if layout in ("vocdevkit", "cvat", "labelme"):
        base = root / "VOCdevkit" / "VOC2012" if layout == "vocdevkit" else root
        for i, stem in enumerate(stems):
            write_sample(
                base / "JPEGImages",
                base / "Annotations",
                stem,
                seed + i,
                mask_dir=base / "SegmentationClass",
            )
        for folder in ("Main", "Segmentation"):
            (base / "ImageSets" / folder).mkdir(parents=True, exist_ok=True)
            train, val = stems[: count * 2 // 3], stems[count * 2 // 3 :]
            (base / "ImageSets" / folder / "train.txt").write_text("\n".join(train) + "\n")
            (base / "ImageSets" / folder / "val.txt").write_text("\n".join(val) + "\n")
        if layout == "cvat":
            lines = ["# label:color_rgb:parts:actions", "background:0,0,0::"]
            lines += [f"{name}:{i * 40},0,0::" for i, name in enumerate(CLASSES, 1)]
            (base / "labelmap.txt").write_text("\n".join(lines) + "\n")
        if layout == "labelme":
            names = ["__ignore__", "_background_", *CLASSES]
            (base / "class_names.txt").write_text("\n".join(names) + "\n")
        return root
    if layout == "roboflow":
        splits = {"train": stems[: count // 2], "valid": stems[count // 2 : -1], "test": stems[-1:]}
        for split, names in splits.items():
            for stem in names:
                write_sample(root / split, root / split, stem, seed + stems.index(stem))
        return root
    if layout == "labelimg":  # images/ + annotations/
        for i, stem in enumerate(stems):
            write_sample(root / "images", root / "annotations", stem, seed + i)
        return root
    if layout == "labelimg-beside":  # XML beside the image, mixed extensions
        for i, stem in enumerate(stems):
            ext = (".jpg", ".JPG", ".png", ".jpeg")[i % 4]
            write_sample(root, root, stem, seed + i, ext=ext)
        return root
    raise ValueError(layout)
