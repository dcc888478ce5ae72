"""A small, learnable VOC-format tree: each image holds a few filled shapes whose colour and
shape depend on their class, written as real JPEG images, palette PNG masks and XML
annotations under ``VOCdevkit/VOC<year>``. ``VOCDataModule`` uses it when no ``data_dir`` is
given and ``conveyor.datasets.make_synthetic_voc`` is not available."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Tuple

import numpy as np
from PIL import Image, ImageDraw

VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable",
    "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)


def voc_palette() -> list:
    """The standard VOC palette (label c -> bit-interleaved RGB; 255 -> (224, 224, 192))."""
    palette = []
    for label in range(256):
        r = g = b = 0
        c = label
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette += [r, g, b]
    return palette


def _class_colour(label: int) -> Tuple[int, int, int]:
    rng = np.random.default_rng(1000 + label)
    return tuple(int(v) for v in rng.integers(40, 256, size=3))


def _annotation_xml(name: str, width: int, height: int, objects) -> str:
    parts = [f"<annotation><folder>VOC</folder><filename>{name}.jpg</filename>",
             f"<size><width>{width}</width><height>{height}</height><depth>3</depth></size><segmented>1</segmented>"]
    for label, (x0, y0, x1, y1), difficult in objects:
        parts.append(
            f"<object><name>{VOC_CLASSES[label - 1]}</name><pose>Unspecified</pose><truncated>0</truncated>"
            f"<difficult>{int(difficult)}</difficult><bndbox><xmin>{x0 + 1}</xmin><ymin>{y0 + 1}</ymin>"
            f"<xmax>{x1 + 1}</xmax><ymax>{y1 + 1}</ymax></bndbox></object>")
    parts.append("</annotation>")
    return "".join(parts)


def write_shapes_voc(root: os.PathLike, num_train: int = 200, num_val: int = 50, year: str = "2012",
                     size: Tuple[int, int] = (160, 120), num_classes: int = 20, seed: int = 0) -> Path:
    """Write the tree (skipped when ``root`` already holds a complete one).

    Args:
        root: directory that receives ``VOCdevkit/VOC<year>``.
        num_train: images in the ``train`` split.
        num_val: images in the ``val`` split.
        year: the VOC year directory name.
        size: (width, height) of every image.
        num_classes: how many of the 20 VOC classes appear.
        seed: random seed of the layout.

    Returns:
        The ``VOCdevkit/VOC<year>`` directory.
    """
    base = Path(root) / "VOCdevkit" / f"VOC{year}"
    done = base / ".complete"
    if done.is_file():
        return base
    for sub in ("JPEGImages", "Annotations", "SegmentationClass", "ImageSets/Main", "ImageSets/Segmentation"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    palette = voc_palette()
    width, height = size
    names = {"train": [], "val": []}
    for index in range(num_train + num_val):
        split = "train" if index < num_train else "val"
        name = f"{year}_{index:06d}"
        names[split].append(name)
        noise = rng.integers(0, 60, size=(height, width, 3), dtype=np.uint8)
        image = Image.fromarray(noise, "RGB")
        mask = Image.new("P", (width, height), 0)
        mask.putpalette(palette)
        draw_image, draw_mask = ImageDraw.Draw(image), ImageDraw.Draw(mask)
        objects = []
        for _ in range(int(rng.integers(1, 4))):
            label = int(rng.integers(1, num_classes + 1))
            w = int(rng.integers(width // 4, (width * 3) // 5))
            h = int(rng.integers(height // 4, (height * 3) // 5))
            x0 = int(rng.integers(0, width - w))
            y0 = int(rng.integers(0, height - h))
            box = (x0, y0, x0 + w - 1, y0 + h - 1)
            shape = label % 3
            drawer = {0: "rectangle", 1: "ellipse", 2: "polygon"}[shape]
            for draw, fill in ((draw_image, _class_colour(label)), (draw_mask, label)):
                if drawer == "polygon":
                    draw.polygon([(x0 + w // 2, y0), (x0 + w - 1, y0 + h - 1), (x0, y0 + h - 1)], fill=fill)
                else:
                    getattr(draw, drawer)(box, fill=fill)
            draw_mask.rectangle(box, outline=255) if shape == 0 else None  # a void border, as VOC has
            objects.append((label, box, bool(rng.random() < 0.05)))
        image.save(base / "JPEGImages" / f"{name}.jpg", quality=90)
        mask.save(base / "SegmentationClass" / f"{name}.png")
        (base / "Annotations" / f"{name}.xml").write_text(_annotation_xml(name, width, height, objects))
    for split, ids in names.items():
        for folder in ("Main", "Segmentation"):
            (base / "ImageSets" / folder / f"{split}.txt").write_text("\n".join(ids) + "\n")
        for folder in ("Main", "Segmentation"):
            (base / "ImageSets" / folder / "trainval.txt").write_text("\n".join(names["train"] + names["val"]) + "\n")
    done.write_text("ok\n")
    return base
