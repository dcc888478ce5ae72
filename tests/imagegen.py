"""Generated test images, shared by the test suites (import as ``from imagegen import ...``).

``photo_like`` draws smooth, textured content (gradients, blobs, edges, noise) that compresses
like a photograph, so JPEG tests exercise real DCT/entropy work. ``encode_jpeg`` uses Pillow;
``encode_png`` is a tiny independent PNG writer covering every colour type and bit depth
(Pillow cannot write 16-bit colour or low-bit gray with tRNS).
"""

from __future__ import annotations

import io
import struct
import zlib
from typing import Optional, Sequence

import numpy as np
from PIL import Image

SUBSAMPLINGS = {"444": 0, "422": 1, "420": 2}


def photo_like(height: int, width: int, seed: int = 0, channels: int = 3) -> np.ndarray:
    """A photo-like uint8 image ``[H, W, C]``: gradients, soft blobs, hard edges and grain."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.zeros((height, width, channels), np.float32)
    for c in range(channels):
        angle = rng.uniform(0, np.pi)
        image[..., c] = 60 + 80 * (
            np.cos(angle) * x / max(width, 1) + np.sin(angle) * y / max(height, 1)
        )
    for _ in range(6):
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        radius = rng.uniform(0.1, 0.4) * max(height, width)
        blob = np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * radius**2))
        image += blob[..., None] * rng.uniform(-90, 90, channels)
    for _ in range(4):  # hard-edged rectangles: sharp edges like object boundaries
        y0, x0 = rng.integers(0, height), rng.integers(0, width)
        image[y0 : y0 + height // 4, x0 : x0 + width // 5] += rng.uniform(-60, 60, channels)
    image += 12 * np.sin(x / 3.0 + y / 5.0)[..., None]  # texture
    image += rng.normal(0, 6, image.shape)  # grain
    return np.clip(image, 0, 255).astype(np.uint8)


def encode_jpeg(
    pixels: np.ndarray,
    *,
    quality: int = 90,
    subsampling: str = "420",
    progressive: bool = False,
    restart_blocks: int = 0,
    mode: Optional[str] = None,
    exif_orientation: int = 0,
) -> bytes:
    """Encodes ``[H, W]`` (gray) or ``[H, W, 3]`` pixels with Pillow; ``mode="CMYK"`` converts."""
    image = Image.fromarray(pixels)
    if mode:
        image = image.convert(mode)
    options = dict(quality=quality, progressive=progressive)
    if image.mode != "L":
        options["subsampling"] = SUBSAMPLINGS[subsampling]
    if restart_blocks:
        options["restart_marker_blocks"] = restart_blocks
    if exif_orientation:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        options["exif"] = exif
    out = io.BytesIO()
    image.save(out, "JPEG", **options)
    return out.getvalue()


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)
    )


ADAM7 = [
    (0, 0, 8, 8),
    (4, 0, 8, 8),
    (0, 4, 4, 8),
    (2, 0, 4, 4),
    (0, 2, 2, 4),
    (1, 0, 2, 2),
    (0, 1, 1, 2),
]  # (x0, y0, dx, dy) of the seven interlace passes


def _raw_rows(samples: np.ndarray, bit_depth: int) -> bytes:
    rows = []
    for row in samples.reshape(samples.shape[0], -1):
        if bit_depth == 16:
            data = row.astype(">u2").tobytes()
        elif bit_depth == 8:
            data = row.astype(np.uint8).tobytes()
        else:
            bits = np.unpackbits(row.astype(np.uint8)[:, None], axis=1)[:, 8 - bit_depth :]
            data = np.packbits(bits.reshape(-1)).tobytes()
        rows.append(b"\x00" + data)  # filter type 0
    return b"".join(rows)


def encode_png(
    samples: np.ndarray,
    color_type: int,
    bit_depth: int,
    *,
    palette: Optional[Sequence[Sequence[int]]] = None,
    trns: Optional[bytes] = None,
    interlaced: bool = False,
) -> bytes:
    """Writes a PNG from samples ``[H, W, C]`` (or ``[H, W]``) already in the PNG's layout.

    Args:
        samples: Integer samples < 2**bit_depth (palette indices for colour type 3).
        color_type: 0 gray, 2 RGB, 3 palette, 4 gray+alpha, 6 RGBA.
        bit_depth: 1, 2, 4, 8 or 16.
        palette: RGB triples for colour type 3.
        trns: Raw tRNS payload (alpha per palette entry, or the 2/6-byte transparent colour).
        interlaced: Write Adam7-interlaced rows.
    """
    samples = np.asarray(samples)
    if samples.ndim == 2:
        samples = samples[..., None]
    height, width, _ = samples.shape
    if interlaced:
        passes = [samples[y0::dy, x0::dx] for x0, y0, dx, dy in ADAM7]
        raw = b"".join(_raw_rows(p, bit_depth) for p in passes if p.shape[0] and p.shape[1])
    else:
        raw = _raw_rows(samples, bit_depth)
    png = b"\x89PNG\r\n\x1a\n" + _chunk(
        b"IHDR",
        struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, int(interlaced)),
    )
    if palette is not None:
        png += _chunk(b"PLTE", bytes(int(v) for rgb in palette for v in rgb))
    if trns is not None:
        png += _chunk(b"tRNS", trns)
    png += _chunk(b"IDAT", zlib.compress(raw, 6)) + _chunk(b"IEND", b"")
    return png


def pil_array(data: bytes, convert: Optional[str] = None) -> np.ndarray:
    """``numpy.array(PIL.Image.open(data))``, optionally after ``convert(mode)``; always HWC."""
    image = Image.open(io.BytesIO(data))
    if convert:
        image = image.convert(convert)
    array = np.array(image)
    return array[..., None] if array.ndim == 2 else array


def hwc(tensor) -> np.ndarray:
    """A CHW tensor as an HWC numpy array."""
    return tensor.permute(1, 2, 0).numpy()
