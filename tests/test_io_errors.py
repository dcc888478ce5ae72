"""Every bad input to conveyor.io raises a specific exception: never a crash or a partial image."""

import struct
import zlib

import numpy as np
import pytest
import torch
from imagegen import encode_jpeg, encode_png, photo_like

from conveyor import io as cio
from conveyor.errors import ConveyorError, DecodeError

JPEG = encode_jpeg(photo_like(64, 80, seed=1))
PNG = encode_png(photo_like(64, 80, seed=2), 2, 8)


def scan_start(data):
    sos = data.index(b"\xff\xda")
    return sos + 2 + (data[sos + 2] << 8 | data[sos + 3])


def png_chunk(kind, payload):
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload))
    )


def test_decode_error_is_a_value_error():
    assert issubclass(DecodeError, ValueError) and issubclass(DecodeError, ConveyorError)


@pytest.mark.parametrize("decode", [cio.decode_jpeg, cio.decode_png, cio.decode_image])
@pytest.mark.parametrize(
    "empty", [b"", bytearray(), np.zeros(0, np.uint8), torch.zeros(0, dtype=torch.uint8)]
)
def test_empty(decode, empty):
    with pytest.raises(DecodeError, match="empty data"):
        decode(empty)


@pytest.mark.parametrize("cut", [0.3, 0.6, 0.95])
def test_truncated_jpeg_is_an_error_unless_accepted(cut):
    start = scan_start(JPEG)
    data = JPEG[: start + int((len(JPEG) - start) * cut)]
    with pytest.raises(DecodeError, match="truncated or corrupt data.*accept_warnings"):
        cio.decode_jpeg(data)
    image = cio.decode_jpeg(data, accept_warnings=True)  # libjpeg-turbo fills the rest
    assert image.shape == (3, 64, 80)


def test_jpeg_cut_inside_the_header():
    with pytest.raises(DecodeError, match="JPEG: corrupt header"):
        cio.decode_jpeg(JPEG[:120])


def test_corrupt_jpeg_header():
    data = bytearray(JPEG)
    sof = data.index(b"\xff\xc0")
    data[sof + 9] = 7  # 7 components
    with pytest.raises(DecodeError, match="JPEG: corrupt header"):
        cio.decode_jpeg(bytes(data))
    data = bytearray(JPEG)
    data[data.index(b"\xff\xc4") + 4] = 0x7F  # bogus Huffman table class/id
    with pytest.raises(DecodeError, match="JPEG: corrupt header"):
        cio.decode_jpeg(bytes(data))


def test_corrupt_jpeg_data():
    start = scan_start(JPEG)
    middle = start + (len(JPEG) - start) // 2
    data = JPEG[:middle] + b"\xff\xd3" + JPEG[middle:]  # an unexpected restart marker
    with pytest.raises(DecodeError, match="libjpeg-turbo warning"):
        cio.decode_jpeg(data)


@pytest.mark.parametrize("data", [b"hello world, not an image", b"GIF89a" + bytes(100), b"\x00"])
def test_not_an_image(data):
    with pytest.raises(DecodeError, match="unsupported image format"):
        cio.decode_image(data)
    with pytest.raises(DecodeError, match="not a JPEG file"):
        cio.decode_jpeg(data)
    with pytest.raises(DecodeError, match="not a PNG file"):
        cio.decode_png(data)


def test_wrong_format_for_the_decoder():
    with pytest.raises(DecodeError, match="not a PNG file"):
        cio.decode_png(JPEG)
    with pytest.raises(DecodeError, match="not a JPEG file"):
        cio.decode_jpeg(PNG)


def test_too_many_pixels_jpeg():
    with pytest.raises(DecodeError, match=r"80x64 = 5120 pixels exceeds the limit of 1000 pixels"):
        cio.decode_jpeg(JPEG, max_pixels=1000)
    bomb = bytearray(JPEG)  # claims 60000 x 60000 = 3.6 G pixels
    sof = bomb.index(b"\xff\xc0")
    bomb[sof + 5 : sof + 9] = struct.pack(">HH", 60000, 60000)
    with pytest.raises(DecodeError, match="decompression bomb"):
        cio.decode_jpeg(bytes(bomb))
    assert cio.decode_jpeg(JPEG, max_pixels=0).shape == (3, 64, 80)  # 0 disables


def test_too_many_pixels_png_and_module_default(monkeypatch):
    bomb = (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 100000, 100000, 8, 0, 0, 0, 0))
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 1000))
        + png_chunk(b"IEND", b"")
    )
    with pytest.raises(DecodeError, match="exceeds the limit of 178956970 pixels"):
        cio.decode_png(bomb)
    monkeypatch.setattr(cio, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(DecodeError, match="limit of 100 pixels"):
        cio.decode_image(PNG)


@pytest.mark.parametrize("cut", [20, 40, 0.5, 0.99])
def test_truncated_png(cut):
    end = int(len(PNG) * cut) if isinstance(cut, float) else cut
    with pytest.raises(DecodeError, match="PNG: "):
        cio.decode_png(PNG[:end])


def test_png_missing_only_its_trailer_still_decodes():
    # The zlib stream (checked by its Adler-32) is complete: every pixel is known, as libpng
    # and Pillow also accept.
    assert torch.equal(cio.decode_png(PNG[:-13]), cio.decode_png(PNG))


def test_png_bad_crc_and_bad_zlib_and_bad_ihdr():
    data = bytearray(PNG)
    data[len(data) // 2] ^= 0xFF  # inside IDAT: CRC mismatch
    with pytest.raises(DecodeError, match="PNG: "):
        cio.decode_png(bytes(data))
    rows = b"".join(b"\x00" + bytes(range(30)) for _ in range(10))
    good = zlib.compress(rows)
    broken = good[:2] + bytes(b ^ 0x55 for b in good[2:-4]) + good[-4:]
    for ihdr, idat in [((10, 10, 8, 0), broken), ((10, 10, 3, 0), good), ((0, 10, 8, 0), good)]:
        data = (
            b"\x89PNG\r\n\x1a\n"
            + png_chunk(b"IHDR", struct.pack(">IIBBBBB", *ihdr, 0, 0, 0))
            + png_chunk(b"IDAT", idat)
            + png_chunk(b"IEND", b"")
        )
        with pytest.raises(DecodeError, match="PNG: "):
            cio.decode_png(data)


def test_palette_png_without_plte():
    data = encode_png(np.zeros((4, 4), np.uint8), 3, 8)  # no palette
    with pytest.raises(DecodeError, match="PNG: "):
        cio.decode_png(data)


@pytest.mark.parametrize("seed", range(4))
def test_random_corruption_never_crashes(seed):
    rng = np.random.default_rng(seed)
    for source in (JPEG, PNG):
        for _ in range(150):
            data = bytearray(source)
            for position in rng.integers(2, len(data), rng.integers(1, 8)):
                data[position] = rng.integers(0, 256)
            data = bytes(data[: rng.integers(3, len(data) + 1)])
            try:
                image = cio.decode_image(data)
            except DecodeError:
                continue
            assert image.shape[1:] == (64, 80)


def test_wrong_argument_types():
    with pytest.raises(TypeError, match="image data must be"):
        cio.decode_jpeg(12345)
    with pytest.raises(ValueError, match="must be uint8"):
        cio.decode_jpeg(torch.zeros(10, dtype=torch.float32))
    with pytest.raises(ValueError, match="must be uint8"):
        cio.decode_jpeg(np.zeros(10, np.int32))
    with pytest.raises(ValueError, match="crop must be"):
        cio.decode_jpeg(JPEG, crop=(1, 2))


def test_read_image_errors_name_the_path(tmp_path):
    missing = tmp_path / "missing.jpg"
    with pytest.raises(FileNotFoundError, match="missing.jpg"):
        cio.read_image(missing)
    with pytest.raises(FileNotFoundError, match="missing.jpg"):
        cio.read_file(missing)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(JPEG[: len(JPEG) // 2])
    with pytest.raises(DecodeError, match=r"broken\.jpg: JPEG: truncated"):
        cio.read_image(broken)
    assert cio.read_image(broken, accept_warnings=True).shape == (3, 64, 80)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(DecodeError, match=r"empty\.png: empty data"):
        cio.read_image(empty)
