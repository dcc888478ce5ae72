"""Native JPEG/PNG decoding into ``torch.Tensor`` (uint8, CHW), like ``torchvision.io``.

Decoding runs in conveyor's C++ core (libjpeg-turbo; libspng, and libdeflate for plain 8-bit
PNGs) with the GIL released, so several Python threads decode in parallel. Results are torch
tensors that share memory with the decoder's freshly allocated output (no copy); like
torchvision's, they are a CHW *view* of HWC pixels (call ``.contiguous()`` when you need CHW
memory).

Pixels equal Pillow's (and torchvision's) for the same file: exactly for PNG, and for JPEG
exactly where the same accurate integer IDCT is used (the default). Conventions:

* EXIF orientation is *not* applied by default, as neither ``PIL.Image.open`` nor
  ``torchvision.io.decode_jpeg`` applies it; pass ``apply_exif_orientation=True`` for what
  ``PIL.ImageOps.exif_transpose`` gives.
* CMYK/YCCK JPEGs follow Pillow: ``mode="unchanged"`` gives 4 channels as Pillow's mode
  ``"CMYK"`` (Adobe-inverted values), ``"rgb"`` equals ``Image.convert("RGB")``.
* ``MAX_IMAGE_PIXELS`` (default 178,956,970, Pillow's ``DecompressionBombError`` threshold)
  guards against decompression bombs; set it (or pass ``max_pixels``; 0 disables) to change.
"""

from __future__ import annotations

import functools
import os
from fractions import Fraction
from typing import Any, Optional, Sequence, Tuple, Union, cast

import numpy as np
import torch

from conveyor import _core
from conveyor.errors import DecodeError

MAX_IMAGE_PIXELS: int = int(_core.DEFAULT_MAX_PIXELS)

ImageData = Union[bytes, bytearray, memoryview, np.ndarray, torch.Tensor]
Scale = Union[None, int, float, Fraction, str, Tuple[int, int]]

_MODES = {
    "unchanged": _core.ColorMode.UNCHANGED,
    "gray": _core.ColorMode.GRAY,
    "grey": _core.ColorMode.GRAY,
    "l": _core.ColorMode.GRAY,
    "gray_alpha": _core.ColorMode.GRAY_ALPHA,
    "la": _core.ColorMode.GRAY_ALPHA,
    "rgb": _core.ColorMode.RGB,
    "rgb_alpha": _core.ColorMode.RGB_ALPHA,
    "rgba": _core.ColorMode.RGB_ALPHA,
}

__all__ = [
    "MAX_IMAGE_PIXELS",
    "decode_jpeg",
    "decode_png",
    "decode_image",
    "read_file",
    "read_image",
    "jpeg_header",
    "read_image_size",
    "jpeg_scaling_factors",
    "smallest_scale_at_least",
]


def _mode(mode: Any) -> "_core.ColorMode":
    """Accepts a mode name (any case) or a ``torchvision.io.ImageReadMode``."""
    name = getattr(mode, "name", mode)
    if isinstance(name, str) and name.lower() in _MODES:
        return _MODES[name.lower()]
    raise ValueError(
        f"unknown mode {mode!r}; expected one of "
        "'unchanged', 'gray', 'gray_alpha', 'rgb', 'rgb_alpha'"
    )


def _as_buffer(data: ImageData) -> Any:
    """A contiguous uint8 buffer over ``data`` (no copy where the input allows it)."""
    if isinstance(data, (bytes, bytearray)):
        return data
    if isinstance(data, memoryview):
        return data.cast("B") if data.c_contiguous else data.tobytes()
    if isinstance(data, torch.Tensor):
        if data.dtype != torch.uint8 or data.device.type != "cpu":
            raise ValueError(
                f"image data tensor must be uint8 on the CPU, got {data.dtype} on {data.device}"
            )
        data = data.detach().contiguous().numpy()
    if isinstance(data, np.ndarray):
        if data.dtype != np.uint8:
            raise ValueError(f"image data array must be uint8, got {data.dtype}")
        return np.ascontiguousarray(data).reshape(-1)
    raise TypeError(
        "image data must be bytes, bytearray, memoryview, a uint8 numpy array or a "
        f"uint8 tensor, not {type(data).__name__}"
    )


def _scale(scale: Scale) -> Tuple[int, int]:
    if scale is None:
        return 1, 1
    try:
        return _parse_scale(scale)
    except TypeError:  # unhashable spelling (e.g. a list): parse it uncached
        return _parse_scale.__wrapped__(scale)


@functools.lru_cache(maxsize=64)
def _parse_scale(scale: Scale) -> Tuple[int, int]:
    """(num, denom) of a scale spelling; cached because Fraction parsing costs microseconds."""
    if isinstance(scale, (tuple, list)) and len(scale) == 2:
        return int(scale[0]), int(scale[1])
    try:
        # any other spelling: Fraction rejects what it cannot read (caught below)
        fraction = Fraction(cast(Any, scale)).limit_denominator(16)
    except (TypeError, ValueError, ZeroDivisionError):
        raise ValueError(f"scale must be a fraction such as 1/2 or '1/2', got {scale!r}") from None
    return fraction.numerator, fraction.denominator


def _to_tensor(pixels: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(pixels).permute(2, 0, 1)


def _apply_exif_orientation(image: torch.Tensor, orientation: int) -> torch.Tensor:
    """Transposes a CHW tensor as ``PIL.ImageOps.exif_transpose`` does for EXIF tag 0x0112."""
    if orientation == 2:
        return image.flip(-1)
    if orientation == 3:
        return image.flip(-1).flip(-2)
    if orientation == 4:
        return image.flip(-2)
    if orientation == 5:
        return image.transpose(-1, -2)
    if orientation == 6:
        return torch.rot90(image, -1, dims=(-2, -1))
    if orientation == 7:
        return image.transpose(-1, -2).flip(-1).flip(-2)
    if orientation == 8:
        return torch.rot90(image, 1, dims=(-2, -1))
    return image


def _decode(
    data: ImageData,
    fmt: str,
    mode: Any,
    scale: Scale,
    min_size: Optional[Sequence[int]],
    crop: Optional[Sequence[int]],
    accept_warnings: bool,
    max_pixels: Optional[int],
    apply_exif_orientation: bool,
    fast: bool = False,
) -> torch.Tensor:
    buffer = _as_buffer(data)
    if min_size is not None:
        if scale is not None:
            raise ValueError("pass either scale or min_size, not both")
        if _core.detect_image_format(buffer) == "jpeg" or fmt == "jpeg":
            header = _core.jpeg_header(buffer)
            min_h, min_w = (int(v) for v in min_size)
            scale = _core.smallest_scale_at_least(header["height"], header["width"], min_h, min_w)
    num, denom = _scale(scale)
    crop_region = None if crop is None else tuple(int(v) for v in crop)
    if crop_region is not None and len(crop_region) != 4:
        raise ValueError(f"crop must be (x, y, width, height), got {crop!r}")
    limit = MAX_IMAGE_PIXELS if max_pixels is None else int(max_pixels)
    pixels = _core.decode_image(
        buffer, fmt, _mode(mode), num, denom, crop_region, bool(accept_warnings), limit, bool(fast)
    )
    image = _to_tensor(pixels)
    if apply_exif_orientation and _core.detect_image_format(buffer) == "jpeg":
        image = _apply_exif_orientation(image, _core.jpeg_exif_orientation(buffer))
    return image


def decode_jpeg(
    data: ImageData,
    *,
    mode: Any = "rgb",
    scale: Scale = None,
    min_size: Optional[Sequence[int]] = None,
    crop: Optional[Sequence[int]] = None,
    accept_warnings: bool = False,
    max_pixels: Optional[int] = None,
    apply_exif_orientation: bool = False,
    fast: bool = False,
) -> Any:
    """Decodes a JPEG into a uint8 CHW tensor, like ``torchvision.io.decode_jpeg``.

    Args:
        data: The encoded bytes: bytes, bytearray, memoryview, or a 1-D uint8 numpy array or
            CPU tensor (e.g. from ``read_file``); or a list of those, decoded one by one into a
            list (as torchvision accepts).
        mode: ``"rgb"`` (3 channels, default), ``"gray"`` (the luma channel, as
            ``ImageReadMode.GRAY``) or ``"unchanged"`` (1, 3, or 4 channels for CMYK); a
            ``torchvision.io.ImageReadMode`` is accepted too.
        scale: libjpeg-turbo DCT scaling factor n/8 (n = 1..16), e.g. ``1/2``, ``"1/4"``,
            ``(3, 8)``; decoding smaller is much cheaper. Sizes round up.
        min_size: ``(height, width)``: use the smallest DCT scale whose output is still at
            least this large (instead of ``scale``).
        crop: ``(x, y, width, height)`` of the scaled image to return.
        accept_warnings: Accept an image libjpeg-turbo completed despite a warning (e.g. a
            truncated file, whose missing part is gray). By default that is a ``DecodeError``.
        max_pixels: Pixel limit of the stored image; defaults to ``MAX_IMAGE_PIXELS``; 0
            disables it.
        apply_exif_orientation: Rotate/flip as the EXIF orientation tag says (after crop).
        fast: Use libjpeg-turbo's fast IDCT and upsampling: ~10-15% faster, but pixels differ
            slightly from Pillow's/torchvision's (off by a few levels at edges).

    Returns:
        A ``torch.uint8`` tensor ``[C, H, W]`` (a list of them for a list input).

    Raises:
        DecodeError: Empty, truncated, corrupt, non-JPEG or too large data.
        ValueError: An invalid mode, scale or crop.
    """
    if isinstance(data, list):
        return [
            decode_jpeg(
                item,
                mode=mode,
                scale=scale,
                min_size=min_size,
                crop=crop,
                accept_warnings=accept_warnings,
                max_pixels=max_pixels,
                apply_exif_orientation=apply_exif_orientation,
                fast=fast,
            )
            for item in data
        ]
    return _decode(
        data,
        "jpeg",
        mode,
        scale,
        min_size,
        crop,
        accept_warnings,
        max_pixels,
        apply_exif_orientation,
        fast,
    )


def decode_png(
    data: ImageData, *, mode: Any = "unchanged", max_pixels: Optional[int] = None
) -> torch.Tensor:
    """Decodes a PNG into a CHW tensor with what ``numpy.array(PIL.Image.open(f))`` holds.

    Args:
        data: The encoded bytes (see ``decode_jpeg``).
        mode: ``"unchanged"`` (default: palette images give their palette *indices*, as VOC
            masks are read; gray/gray+alpha/RGB/RGBA as stored; 16-bit images give uint16),
            or ``"gray"``, ``"gray_alpha"``, ``"rgb"``, ``"rgb_alpha"``, converted as Pillow's
            ``convert()`` does (tRNS becomes alpha; 16-bit samples keep their high byte).
        max_pixels: Pixel limit; defaults to ``MAX_IMAGE_PIXELS``; 0 disables it.

    Returns:
        A ``torch.uint8`` (``torch.uint16`` for 16-bit PNGs decoded unchanged) tensor
        ``[C, H, W]``.

    Raises:
        DecodeError: Empty, truncated, corrupt, non-PNG or too large data.
    """
    return _decode(data, "png", mode, None, None, None, False, max_pixels, False)


def decode_image(
    data: ImageData,
    *,
    mode: Any = "unchanged",
    scale: Scale = None,
    min_size: Optional[Sequence[int]] = None,
    crop: Optional[Sequence[int]] = None,
    accept_warnings: bool = False,
    max_pixels: Optional[int] = None,
    apply_exif_orientation: bool = False,
    fast: bool = False,
) -> torch.Tensor:
    """Decodes a JPEG or PNG (chosen by its magic bytes), like ``torchvision.io.decode_image``.

    Args:
        data: The encoded bytes (see ``decode_jpeg``).
        mode: See ``decode_jpeg`` and ``decode_png``; default ``"unchanged"``.
        scale: JPEG only: DCT scaling factor (see ``decode_jpeg``).
        min_size: JPEG only: smallest DCT scale still at least ``(height, width)``.
        crop: JPEG only: ``(x, y, width, height)`` of the scaled image.
        accept_warnings: JPEG only: accept images completed despite a warning.
        max_pixels: Pixel limit; defaults to ``MAX_IMAGE_PIXELS``; 0 disables it.
        apply_exif_orientation: JPEG only: apply the EXIF orientation tag.
        fast: JPEG only: fast IDCT and upsampling (see ``decode_jpeg``).

    Returns:
        A CHW tensor (uint8; uint16 for 16-bit PNGs decoded unchanged).

    Raises:
        DecodeError: Empty, unknown-format, truncated, corrupt or too large data.
    """
    return _decode(
        data,
        "auto",
        mode,
        scale,
        min_size,
        crop,
        accept_warnings,
        max_pixels,
        apply_exif_orientation,
        fast,
    )


def read_file(path: Union[str, os.PathLike]) -> torch.Tensor:
    """Reads a file's bytes into a 1-D uint8 tensor, like ``torchvision.io.read_file``.

    Args:
        path: The file to read.

    Returns:
        A 1-D ``torch.uint8`` tensor of the file's bytes.

    Raises:
        FileNotFoundError: The file does not exist (the message names it).
    """
    with open(path, "rb") as handle:
        return torch.from_numpy(np.frombuffer(bytearray(handle.read()), dtype=np.uint8))


def read_image(
    path: Union[str, os.PathLike], *, mode: Any = "unchanged", **options: Any
) -> torch.Tensor:
    """Reads and decodes a JPEG or PNG file, like ``torchvision.io.read_image``.

    Args:
        path: The image file.
        mode: See ``decode_image``.
        **options: Further ``decode_image`` options (``scale``, ``min_size``, ``crop``,
            ``accept_warnings``, ``max_pixels``, ``apply_exif_orientation``, ``fast``).

    Returns:
        A CHW tensor, as ``decode_image`` returns.

    Raises:
        FileNotFoundError: The file does not exist.
        DecodeError: The file cannot be decoded; the message starts with its path.
    """
    with open(path, "rb") as handle:
        data = handle.read()
    try:
        return decode_image(data, mode=mode, **options)
    except DecodeError as error:
        raise DecodeError(f"{os.fspath(path)}: {error}") from error


def jpeg_header(data: ImageData) -> dict:
    """Reads a JPEG header without decoding pixels.

    Args:
        data: The encoded bytes.

    Returns:
        ``{"width", "height", "components", "colorspace", "subsampling"}``.
    """
    return _core.jpeg_header(_as_buffer(data))


def jpeg_scaling_factors() -> list:
    """The DCT scaling factors libjpeg-turbo supports, as ``(num, denom)``, largest first."""
    return [tuple(f) for f in _core.jpeg_scaling_factors()]


def smallest_scale_at_least(height: int, width: int, min_height: int, min_width: int) -> Fraction:
    """The smallest DCT scale whose output of a ``height x width`` JPEG is at least the minimum.

    Args:
        height: Stored image height.
        width: Stored image width.
        min_height: Smallest acceptable output height.
        min_width: Smallest acceptable output width.

    Returns:
        The scale as a ``Fraction`` (1 when even the full image is smaller).
    """
    num, denom = _core.smallest_scale_at_least(height, width, min_height, min_width)
    return Fraction(num, denom)


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def read_image_size(path: Union[str, os.PathLike]) -> Tuple[int, int]:
    """An image file's stored ``(width, height)``, from its header alone (no pixel is decoded).

    The size is the one ``PIL.Image.open(path).size`` reports: EXIF orientation is not applied.
    JPEG and PNG headers are read natively; other formats through Pillow's lazy open.

    Args:
        path: The image file.

    Returns:
        ``(width, height)``.

    Raises:
        FileNotFoundError: The file does not exist.
        DecodeError: The header is unreadable or declares an empty image (message names the file).
    """
    with open(path, "rb") as handle:
        data = handle.read()
    name = os.fspath(path)
    if data[:8] == _PNG_SIGNATURE:
        # IHDR is always the first chunk: width and height are its first two big-endian u32
        if len(data) < 24 or data[12:16] != b"IHDR":
            raise DecodeError(f"{name}: PNG without an IHDR chunk")
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    elif data[:2] == b"\xff\xd8":
        try:
            header = _core.jpeg_header(data)
        except Exception as error:
            raise DecodeError(f"{name}: unreadable JPEG header ({error})") from error
        width, height = int(header["width"]), int(header["height"])
    else:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(name) as image:
                width, height = image.size
        except UnidentifiedImageError as error:
            raise DecodeError(f"{name}: not an image file Pillow or conveyor can read") from error
    if width <= 0 or height <= 0:
        raise DecodeError(f"{name}: header declares an empty image ({width}x{height})")
    return width, height
