"""The VOC-like file tree every loader in bench_loader.py reads.

Uses ``conveyor.datasets.make_synthetic_voc`` when conveyor provides it, so the benchmark and the
tests share one generator; otherwise writes an equivalent tree itself (benchmark-only code).
The images are photo-like 500x375 RGB JPEGs at quality 90 (smooth colour fields, texture and
sensor-like noise, so their entropy and decode cost resemble real VOC photos, unlike flat
synthetic images), with VOC XML annotations and palette PNG masks. The tree is cached: a
``.complete`` marker records the parameters, and a matching tree is reused as it is.
"""

from __future__ import annotations

import inspect
import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

YEAR = "2012"
CLASSES = (
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)


def voc_palette() -> list[int]:
    """The 256-entry PASCAL VOC colour map, flattened (as in the devkit's ``labelcolormap``)."""
    palette = []
    for index in range(256):
        r = g = b = 0
        c = index
        for shift in range(7, -1, -1):
            r |= (c & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        palette += [r, g, b]
    return palette


def ensure_tree(root: Path, num_images: int, seed: int = 0, prefer_conveyor: bool = True) -> dict:
    """Makes sure ``root/VOCdevkit/VOC2012`` holds ``num_images`` samples; returns its description.

    Args:
        root: Directory that receives ``VOCdevkit/``.
        num_images: Number of samples (every one has an image, an annotation and a mask).
        seed: Seed of the generator.
        prefer_conveyor: Use conveyor's ``make_synthetic_voc`` when it is importable.

    Returns:
        A dict with ``root``, ``num_images``, ``generator`` and the mean JPEG size in bytes.
    """
    root = Path(root)
    marker = root / ".complete"
    generator = "benchmarks/voc_tree.py"
    make_synthetic_voc = None
    if prefer_conveyor:
        try:
            from conveyor.datasets import make_synthetic_voc

            generator = "conveyor.datasets.make_synthetic_voc"
        except Exception:  # the voc branch has not landed: use our own generator
            make_synthetic_voc = None
    wanted = {"num_images": num_images, "seed": seed, "generator": generator, "version": 2}
    if marker.exists() and json.loads(marker.read_text()).get("params") == wanted:
        return json.loads(marker.read_text())["info"]

    shutil.rmtree(root / "VOCdevkit", ignore_errors=True)  # never mix two generators' files
    root.mkdir(parents=True, exist_ok=True)
    if make_synthetic_voc is not None:
        try:
            _make_with_conveyor(make_synthetic_voc, root, num_images, seed)
        except Exception as exc:  # keep the benchmark running; say which generator made the tree
            generator = f"benchmarks/voc_tree.py (conveyor's generator failed: {exc})"
            make_synthetic_voc = None
        if make_synthetic_voc is not None and not _tree_is_complete(root):
            generator = "benchmarks/voc_tree.py (conveyor's tree lacked masks or lists)"
            make_synthetic_voc = None
    if make_synthetic_voc is None:
        write_tree(root, num_images, seed)
    voc = root / "VOCdevkit" / f"VOC{YEAR}"
    jpegs = sorted((voc / "JPEGImages").glob("*.jpg"))
    sizes = [p.stat().st_size for p in jpegs]
    info = {
        "root": str(root),
        "num_images": len(sizes),
        "generator": generator,
        "mean_jpeg_bytes": int(np.mean(sizes)) if sizes else 0,
        "first_image_size": list(Image.open(jpegs[0]).size) if jpegs else None,
    }
    marker.write_text(json.dumps({"params": wanted, "info": info}))
    return info


def _make_with_conveyor(make_synthetic_voc, root: Path, num_images: int, seed: int) -> None:
    """Calls conveyor's generator with the options it has among ours (by keyword name)."""
    wanted = {
        "num_images": num_images,
        "seed": seed,
        "year": YEAR,
        "image_size": (500, 375),
        "width": 500,
        "height": 375,
        "quality": 90,
        "jpeg_quality": 90,
        "masks": True,
        "segmentation": True,
    }
    accepted = inspect.signature(make_synthetic_voc).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values()):
        kwargs = {k: wanted[k] for k in ("num_images", "seed", "year")}
    else:
        kwargs = {k: v for k, v in wanted.items() if k in accepted}
    make_synthetic_voc(root, **kwargs)


def _tree_is_complete(root: Path) -> bool:
    voc = Path(root) / "VOCdevkit" / f"VOC{YEAR}"
    needed = (
        "JPEGImages",
        "Annotations",
        "SegmentationClass",
        "ImageSets/Main/trainval.txt",
        "ImageSets/Segmentation/trainval.txt",
    )
    return all((voc / part).exists() for part in needed)


def write_tree(root: Path, num_images: int, seed: int) -> None:
    """Writes a VOCdevkit tree with images, annotations, masks and both trainval lists."""
    voc = Path(root) / "VOCdevkit" / f"VOC{YEAR}"
    for sub in (
        "JPEGImages",
        "Annotations",
        "SegmentationClass",
        "ImageSets/Main",
        "ImageSets/Segmentation",
    ):
        (voc / sub).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    palette = voc_palette()
    ids = []
    for index in range(num_images):
        image_id = f"2012_{index:06d}"
        ids.append(image_id)
        image, mask, objects = _photo_like_sample(rng, 500, 375)
        image.save(voc / "JPEGImages" / f"{image_id}.jpg", quality=90)
        mask_image = Image.fromarray(mask, mode="P")
        mask_image.putpalette(palette)
        mask_image.save(voc / "SegmentationClass" / f"{image_id}.png")
        (voc / "Annotations" / f"{image_id}.xml").write_text(
            _annotation_xml(image_id, 500, 375, objects)
        )
    listing = "\n".join(ids) + "\n"
    (voc / "ImageSets" / "Main" / "trainval.txt").write_text(listing)
    (voc / "ImageSets" / "Segmentation" / "trainval.txt").write_text(listing)


def _smooth_field(rng, width: int, height: int, cells: int, channels: int) -> np.ndarray:
    coarse = rng.uniform(0, 255, size=(cells, cells, channels)).astype(np.uint8)
    mode = "RGB" if channels == 3 else "L"
    field = Image.fromarray(coarse.squeeze(), mode=mode).resize((width, height), Image.BICUBIC)
    return np.asarray(field, dtype=np.float32).reshape(height, width, channels)


def _photo_like_sample(rng, width: int, height: int):
    base = _smooth_field(rng, width, height, 4, 3)
    texture = _smooth_field(rng, width, height, 48, 1) - 128.0
    pixels = base + 0.35 * texture + rng.normal(0.0, 7.0, size=(height, width, 3))
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode="RGB")
    mask = Image.new("P", (width, height), 0)
    draw, mask_draw = ImageDraw.Draw(image), ImageDraw.Draw(mask)
    objects = []
    for _ in range(int(rng.integers(1, 5))):
        w, h = int(rng.integers(40, width // 2)), int(rng.integers(40, height // 2))
        x0, y0 = int(rng.integers(0, width - w)), int(rng.integers(0, height - h))
        box = (x0, y0, x0 + w - 1, y0 + h - 1)
        label = int(rng.integers(0, len(CLASSES)))
        colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
        draw.ellipse(box, fill=colour)
        mask_draw.ellipse(box, fill=label + 1, outline=255, width=3)
        objects.append((CLASSES[label], box, bool(rng.random() < 0.1)))
    # Texture over the objects too, so they are not flat patches that JPEG codes for free.
    pixels = np.asarray(image, dtype=np.float32) + rng.normal(0.0, 5.0, size=(height, width, 3))
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode="RGB")
    return image, np.asarray(mask), objects


def _annotation_xml(image_id: str, width: int, height: int, objects) -> str:
    parts = [
        "<annotation>",
        f"  <folder>VOC{YEAR}</folder>",
        f"  <filename>{image_id}.jpg</filename>",
        "  <source><database>conveyor benchmark</database></source>",
        f"  <size><width>{width}</width><height>{height}</height><depth>3</depth></size>",
        "  <segmented>1</segmented>",
    ]
    for name, (x0, y0, x1, y1), difficult in objects:
        parts += [
            "  <object>",
            f"    <name>{name}</name>",
            "    <pose>Unspecified</pose>",
            "    <truncated>0</truncated>",
            f"    <difficult>{int(difficult)}</difficult>",
            f"    <bndbox><xmin>{x0 + 1}</xmin><ymin>{y0 + 1}</ymin>"
            f"<xmax>{x1 + 1}</xmax><ymax>{y1 + 1}</ymax></bndbox>",
            "  </object>",
        ]
    parts.append("</annotation>")
    return "\n".join(parts) + "\n"
