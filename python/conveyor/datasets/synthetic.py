"""A synthetic PASCAL VOC tree: real files in the real layout, learnable in minutes.

``make_synthetic_voc(root)`` writes ``root/VOCdevkit/VOC<year>`` (``root/TrainVal/...`` for
2011, as the real archive) with:

* ``JPEGImages/<id>.jpg``: photo-like JPEGs (smooth random colour fields, gradients, grain and
  clutter, quality 90, so they have realistic JPEG sizes, not flat colours);
* 1-4 objects per image, each of one of the 20 VOC classes. Every class has its own colour,
  shape and texture (stripes, checks, dots, rings ... at a class-specific frequency), so a small
  model can learn them on a CPU in a couple of minutes;
* ``Annotations/<id>.xml``: VOC annotations (1-based inclusive pixel boxes, truncated,
  difficult for tiny objects, pose);
* ``SegmentationClass/<id>.png``: palette PNG masks with the VOC palette (0 background,
  1..20 classes, 255 on a 3-pixel band around every object, as in VOC);
* ``ImageSets/Main`` and ``ImageSets/Segmentation``: ``train``, ``val``, ``trainval`` (and
  ``test`` for 2007) plus the per-class ``<class>_<set>.txt`` files of ``Main``.

Everything is determined by ``seed``. ``conveyor synth ROOT`` runs it from the command line.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
from PIL import Image

from conveyor.voc import VOC_CLASSES

BASE_DIRS = {
    "2012": os.path.join("VOCdevkit", "VOC2012"),
    "2011": os.path.join("TrainVal", "VOCdevkit", "VOC2011"),
    "2010": os.path.join("VOCdevkit", "VOC2010"),
    "2009": os.path.join("VOCdevkit", "VOC2009"),
    "2008": os.path.join("VOCdevkit", "VOC2008"),
    "2007": os.path.join("VOCdevkit", "VOC2007"),
}
VOID = 255
BORDER = 3  # width of the void band around objects, in pixels
_SHAPES = ("ellipse", "rectangle", "triangle", "diamond")
_PATTERNS = ("plain", "hstripes", "vstripes", "checks", "dots")


def voc_palette() -> list[int]:
    """The 256-entry VOC colour map as a flat ``[r0, g0, b0, r1, ...]`` list (PIL palette)."""
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


def _class_appearance(label: int) -> dict:
    """Colour, shape, pattern and pattern period of class ``label`` (1..20): all distinct."""
    index = label - 1
    hue = (index * 7 % 20) / 20.0  # neighbours in label order get far-apart hues
    saturation = 0.85 if index % 2 == 0 else 0.6
    value = 0.95 if index % 3 != 1 else 0.7
    i = int(hue * 6)
    f = hue * 6 - i
    p, q, t = (
        value * (1 - saturation),
        value * (1 - f * saturation),
        value * (1 - (1 - f) * saturation),
    )
    rgb = [
        (value, t, p),
        (q, value, p),
        (p, value, t),
        (p, q, value),
        (t, p, value),
        (value, p, q),
    ][i % 6]
    colour = np.array(rgb, dtype=np.float32) * 255.0
    return {
        "colour": colour,
        "second": 255.0 - colour * 0.8,  # the pattern's other colour
        "shape": _SHAPES[index % len(_SHAPES)],
        "pattern": _PATTERNS[index % len(_PATTERNS)],
        "period": 4 + (index * 3) % 9,
    }


_APPEARANCES = {label: _class_appearance(label) for label in range(1, len(VOC_CLASSES) + 1)}


def _background(rng: np.random.Generator, height: int, width: int, grain: np.ndarray) -> np.ndarray:
    """A photo-like background: smooth colour field + gradient + clutter + grain, float32 HWC."""
    grid = rng.uniform(40, 200, size=(4 + rng.integers(0, 4), 5 + rng.integers(0, 4), 3))
    field = Image.fromarray(grid.astype(np.uint8)).resize(
        (width, height), Image.Resampling.BILINEAR
    )
    image = np.asarray(field, dtype=np.float32) * 0.7  # muted, so objects' colours stand out
    image += np.linspace(15, 65, height, dtype=np.float32)[:, None, None]  # light gradient
    for _ in range(int(rng.integers(3, 8))):  # clutter: soft blocks
        y, x = int(rng.integers(0, height)), int(rng.integers(0, width))
        h, w = int(rng.integers(4, max(5, height // 6))), int(rng.integers(4, max(5, width // 6)))
        image[max(0, y - h) : y + h, max(0, x - w) : x + w] += rng.uniform(-30, 30, size=3).astype(
            np.float32
        )
    dy, dx = (
        int(rng.integers(0, grain.shape[0] - height + 1)),
        int(rng.integers(0, grain.shape[1] - width + 1)),
    )
    image += grain[dy : dy + height, dx : dx + width]
    return image


def _shape_mask(shape: str, h: int, w: int) -> np.ndarray:
    ys = (np.arange(h, dtype=np.float32) + 0.5)[:, None] / h * 2 - 1
    xs = (np.arange(w, dtype=np.float32) + 0.5)[None, :] / w * 2 - 1
    if shape == "ellipse":
        return xs**2 + ys**2 <= 1.0
    if shape == "rectangle":
        return np.ones((h, w), dtype=bool)
    if shape == "triangle":
        return np.abs(xs) <= (ys + 1) / 2
    return np.abs(xs) + np.abs(ys) <= 1.0  # diamond


def _pattern(pattern: str, period: int, h: int, w: int) -> np.ndarray:
    ys = np.arange(h)[:, None]
    xs = np.arange(w)[None, :]
    if pattern == "plain":
        return np.zeros((h, w), dtype=bool)
    if pattern == "hstripes":
        return np.broadcast_to((ys // period) % 2 == 0, (h, w))
    if pattern == "vstripes":
        return np.broadcast_to((xs // period) % 2 == 0, (h, w))
    if pattern == "checks":
        return ((ys // period) + (xs // period)) % 2 == 0
    return ((ys % (2 * period)) < period // 2 + 1) & ((xs % (2 * period)) < period // 2 + 1)  # dots


def _draw_image(rng: np.random.Generator, width: int, height: int, grain: np.ndarray):
    image = _background(rng, height, width, grain)
    mask = np.zeros((height, width), dtype=np.uint8)
    objects = []
    for _ in range(int(rng.integers(1, 5))):
        label = int(rng.integers(1, len(VOC_CLASSES) + 1))
        look = _APPEARANCES[label]
        h = int(rng.uniform(0.18, 0.6) * height)
        w = int(rng.uniform(0.18, 0.6) * width)
        y0 = int(rng.integers(-h // 5, height - h + h // 5 + 1))
        x0 = int(rng.integers(-w // 5, width - w + w // 5 + 1))
        inside = _shape_mask(look["shape"], h, w)
        # Clip to the image.
        top, left = max(0, y0), max(0, x0)
        bottom, right = min(height, y0 + h), min(width, x0 + w)
        inside = inside[top - y0 : bottom - y0, left - x0 : right - x0]
        if not inside.any():
            continue
        rows = np.flatnonzero(inside.any(axis=1))
        cols = np.flatnonzero(inside.any(axis=0))
        region = image[top:bottom, left:right]
        stripes = _pattern(look["pattern"], look["period"], bottom - top, right - left)
        paint = np.where(stripes[..., None], look["second"], look["colour"])
        shade = rng.uniform(0.85, 1.1) + np.linspace(-0.1, 0.1, bottom - top)[:, None, None]
        texture = paint * shade.astype(np.float32) + grain[: bottom - top, : right - left]
        np.copyto(region, texture, where=inside[..., None])
        mask_region = mask[top:bottom, left:right]
        mask_region[inside] = label
        truncated = y0 < 0 or x0 < 0 or y0 + h > height or x0 + w > width
        ymin, ymax = top + int(rows[0]), top + int(rows[-1])
        xmin, xmax = left + int(cols[0]), left + int(cols[-1])
        area = (ymax - ymin + 1) * (xmax - xmin + 1)
        objects.append(
            {
                "name": VOC_CLASSES[label - 1],
                "label": label,
                "truncated": int(truncated),
                "difficult": int(area < 24 * 24),
                "pose": str(rng.choice(["Frontal", "Left", "Right", "Rear", "Unspecified"])),
                "box": (xmin + 1, ymin + 1, xmax + 1, ymax + 1),  # VOC: 1-based, inclusive
            }
        )
    # Void band: pixels within BORDER of a boundary between different labels (objects only).
    edges = np.zeros_like(mask, dtype=bool)
    for axis in (0, 1):
        diff = np.diff(mask.astype(np.int16), axis=axis) != 0
        if axis == 0:
            edges[1:] |= diff
            edges[:-1] |= diff
        else:
            edges[:, 1:] |= diff
            edges[:, :-1] |= diff
    band = edges.copy()
    for _ in range(BORDER // 2):
        grown = band.copy()
        grown[1:] |= band[:-1]
        grown[:-1] |= band[1:]
        grown[:, 1:] |= band[:, :-1]
        grown[:, :-1] |= band[:, 1:]
        band = grown
    mask[band] = VOID
    pixels = np.clip(image, 0, 255).astype(np.uint8)
    return pixels, mask, objects


def _annotation_xml(year: str, image_id: str, width: int, height: int, objects) -> str:
    parts = [
        "<annotation>",
        f"\t<folder>VOC{year}</folder>",
        f"\t<filename>{image_id}.jpg</filename>",
        "\t<source>",
        "\t\t<database>conveyor synthetic VOC</database>",
        "\t\t<annotation>PASCAL VOC (synthetic)</annotation>",
        "\t\t<image>generated</image>",
        "\t</source>",
        "\t<size>",
        f"\t\t<width>{width}</width>",
        f"\t\t<height>{height}</height>",
        "\t\t<depth>3</depth>",
        "\t</size>",
        "\t<segmented>1</segmented>",
    ]
    for obj in objects:
        xmin, ymin, xmax, ymax = obj["box"]
        parts += [
            "\t<object>",
            f"\t\t<name>{obj['name']}</name>",
            f"\t\t<pose>{obj['pose']}</pose>",
            f"\t\t<truncated>{obj['truncated']}</truncated>",
            f"\t\t<difficult>{obj['difficult']}</difficult>",
            "\t\t<bndbox>",
            f"\t\t\t<xmin>{xmin}</xmin>",
            f"\t\t\t<ymin>{ymin}</ymin>",
            f"\t\t\t<xmax>{xmax}</xmax>",
            f"\t\t\t<ymax>{ymax}</ymax>",
            "\t\t</bndbox>",
            "\t</object>",
        ]
    parts.append("</annotation>\n")
    return "\n".join(parts)


def _parse_size(image_size) -> tuple[int, int]:
    if isinstance(image_size, int):
        width = height = image_size
    elif isinstance(image_size, str):
        try:
            width, height = (int(v) for v in image_size.lower().split("x"))
        except ValueError:
            raise ValueError(
                f"image_size must look like WIDTHxHEIGHT, got {image_size!r}"
            ) from None
    else:
        width, height = (int(v) for v in image_size)
    if width < 16 or height < 16:
        raise ValueError(f"image_size must be at least 16x16, got {width}x{height}")
    return width, height


def make_synthetic_voc(
    root: Union[str, os.PathLike],
    num_images: int = 200,
    year: str = "2012",
    seed: int = 0,
    image_size: Union[int, str, Sequence[int]] = (500, 375),
    val_fraction: float = 0.25,
    jpeg_quality: int = 90,
) -> Path:
    """Writes a synthetic VOCdevkit tree that conveyor's and torchvision's VOC datasets read.

    Args:
        root: the dataset root (what you pass as ``root`` to ``VOCDetection``).
        num_images: how many images (>= 2; 2007 needs >= 3 for its test split).
        year: ``"2007"`` .. ``"2012"`` (2011 goes under ``TrainVal/``, as the real archive).
        seed: everything written is a function of the seed.
        image_size: ``(width, height)``, ``"WxH"`` or one int for squares.
        val_fraction: share of images in ``val`` (2007 also puts the same share in ``test``).
        jpeg_quality: JPEG quality of the images.

    Returns:
        The ``VOC<year>`` directory.
    """
    year = str(year)
    if year not in BASE_DIRS:
        raise ValueError(f"Unknown year {year!r}; valid years are {sorted(BASE_DIRS)}")
    minimum = 3 if year == "2007" else 2
    if not isinstance(num_images, int) or num_images < minimum:
        raise ValueError(f"num_images must be an int >= {minimum}, got {num_images!r}")
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    width, height = _parse_size(image_size)
    voc_root = Path(os.path.expanduser(os.fspath(root))) / BASE_DIRS[year]
    folders = {
        name: voc_root / name
        for name in (
            "JPEGImages",
            "Annotations",
            "SegmentationClass",
            "ImageSets/Main",
            "ImageSets/Segmentation",
        )
    }
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)

    rng = np.random.default_rng(seed)
    palette = voc_palette()
    # Sensor-like grain, drawn once and cropped at a random offset per image (fast).
    grain = rng.standard_normal((height + 64, width + 64, 1), dtype=np.float32) * 6.0
    ids = [f"{i + 1:06d}" if year == "2007" else f"{year}_{i + 1:06d}" for i in range(num_images)]
    labels_per_image = []
    for image_id in ids:
        pixels, mask, objects = _draw_image(rng, width, height, grain)
        Image.fromarray(pixels).save(
            folders["JPEGImages"] / f"{image_id}.jpg", quality=jpeg_quality
        )
        png = Image.fromarray(mask).convert("P")
        png.putpalette(palette)
        png.save(folders["SegmentationClass"] / f"{image_id}.png", optimize=False)
        (folders["Annotations"] / f"{image_id}.xml").write_text(
            _annotation_xml(year, image_id, width, height, objects), encoding="utf-8"
        )
        labels_per_image.append({obj["label"]: obj["difficult"] == 0 for obj in objects})

    order = rng.permutation(num_images)
    n_val = max(1, int(round(num_images * val_fraction)))
    n_test = n_val if year == "2007" else 0
    n_val = min(n_val, num_images - n_test - 1)
    splits = {
        "val": sorted(order[:n_val].tolist()),
        "train": sorted(order[n_val + n_test :].tolist()),
    }
    splits["trainval"] = sorted(splits["train"] + splits["val"])
    if n_test:
        splits["test"] = sorted(order[n_val : n_val + n_test].tolist())
    for split, indices in splits.items():
        lines = "".join(f"{ids[i]}\n" for i in indices)
        (folders["ImageSets/Main"] / f"{split}.txt").write_text(lines)
        (folders["ImageSets/Segmentation"] / f"{split}.txt").write_text(lines)
        for label, name in enumerate(VOC_CLASSES, start=1):  # VOC's per-class files: 1 / -1 / 0
            rows = []
            for i in indices:
                present = labels_per_image[i]
                flag = -1 if label not in present else (1 if present[label] else 0)
                rows.append(f"{ids[i]} {flag:2d}\n")
            (folders["ImageSets/Main"] / f"{name}_{split}.txt").write_text("".join(rows))
    return voc_root


def build_parser(prog: str = "conveyor synth") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Write a synthetic VOCdevkit tree "
        "(JPEGs, XML boxes, palette PNG masks, splits).",
    )
    parser.add_argument("root", help="dataset root; the tree goes to ROOT/VOCdevkit/VOC<year>")
    parser.add_argument(
        "--num-images", type=int, default=200, help="number of images (default 200)"
    )
    parser.add_argument("--year", default="2012", choices=sorted(BASE_DIRS), help="VOC year layout")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--image-size", default="500x375", help="WIDTHxHEIGHT (default 500x375)")
    return parser


def main(command: str = "synth", argv: Optional[Sequence[str]] = None) -> int:
    """``conveyor synth ROOT [--num-images N --year Y --seed S --image-size WxH]``."""
    parser = build_parser(f"conveyor {command}")
    args = parser.parse_args(argv)
    try:
        voc_root = make_synthetic_voc(
            args.root,
            num_images=args.num_images,
            year=args.year,
            seed=args.seed,
            image_size=args.image_size,
        )
    except ValueError as error:
        parser.error(str(error))
    print(f"wrote {args.num_images} images to {voc_root}")
    return 0
