"""conveyor.io PNG decoding equals numpy.array(PIL.Image.open(f)) for every colour type/depth."""

import struct

import numpy as np
import pytest
import torch
import torchvision.io as tvio
from imagegen import encode_png, hwc, photo_like, pil_array

from conveyor import io as cio

H, W = 13, 29  # odd sizes: packed rows end mid-byte for 1/2/4-bit images
CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def samples(color_type, bit_depth, seed=0):
    rng = np.random.default_rng(seed + 17 * bit_depth + color_type)
    return rng.integers(0, 2**bit_depth, (H, W, CHANNELS[color_type]))


def palette(n):
    rng = np.random.default_rng(n)
    return rng.integers(0, 256, (n, 3))


def make(color_type, bit_depth, trns=False):
    pixels = samples(color_type, bit_depth)
    options = {}
    if color_type == 3:
        options["palette"] = palette(2**bit_depth)
        if trns:
            options["trns"] = bytes(np.linspace(0, 255, max(1, 2**bit_depth // 2)).astype(np.uint8))
    elif trns and color_type == 0:
        options["trns"] = struct.pack(">H", int(pixels[0, 0, 0]))
        pixels[1, :3] = pixels[0, 0]
    elif trns and color_type == 2:
        options["trns"] = struct.pack(">HHH", *(int(v) for v in pixels[0, 0]))
        pixels[1, :3] = pixels[0, 0]
    return encode_png(pixels, color_type, bit_depth, **options), pixels


CASES = (
    [(0, d) for d in (1, 2, 4, 8, 16)]
    + [(2, 8), (2, 16)]
    + [(3, d) for d in (1, 2, 4, 8)]
    + [(4, 8), (4, 16), (6, 8), (6, 16)]
)


@pytest.mark.parametrize("color_type,bit_depth", CASES)
def test_unchanged_matches_pillow(color_type, bit_depth):
    data, stored = make(color_type, bit_depth)
    decoded = cio.decode_png(data)
    assert decoded.shape == (CHANNELS[color_type], H, W)
    if bit_depth == 16:
        assert decoded.dtype == torch.uint16
        np.testing.assert_array_equal(hwc(decoded), stored)
        tv = tvio.decode_png(torch.frombuffer(bytearray(data), dtype=torch.uint8))
        assert torch.equal(decoded.to(torch.int32), tv.to(torch.int32))
        reference = pil_array(data)
        if color_type == 0:  # Pillow keeps 16-bit gray ("I;16"); colour types keep the high byte
            np.testing.assert_array_equal(hwc(decoded), reference)
        elif color_type == 4:  # Pillow opens 16-bit gray+alpha as RGBA
            np.testing.assert_array_equal(
                hwc(decoded).astype(np.int32) >> 8, reference[..., [0, 3]]
            )
        else:
            np.testing.assert_array_equal(hwc(decoded).astype(np.int32) >> 8, reference)
        return
    assert decoded.dtype == torch.uint8
    if color_type == 3:
        np.testing.assert_array_equal(hwc(decoded), stored)  # palette indices
    reference = pil_array(data, "L" if (color_type, bit_depth) == (0, 1) else None)
    np.testing.assert_array_equal(hwc(decoded), reference)


CONVERSIONS = {"gray": "L", "gray_alpha": "LA", "rgb": "RGB", "rgb_alpha": "RGBA"}


@pytest.mark.parametrize("color_type,bit_depth", [c for c in CASES if c[1] != 16 or c[0] != 0])
@pytest.mark.parametrize("mode", list(CONVERSIONS))
def test_conversions_match_pillow_convert(color_type, bit_depth, mode):
    data, _ = make(color_type, bit_depth)
    decoded = cio.decode_png(data, mode=mode)
    assert decoded.dtype == torch.uint8 and decoded.shape == (len(CONVERSIONS[mode]), H, W)
    np.testing.assert_array_equal(hwc(decoded), pil_array(data, CONVERSIONS[mode]))


@pytest.mark.parametrize("color_type,bit_depth", [(3, 8), (3, 4), (3, 1), (0, 8), (2, 8)])
def test_trns_is_alpha_in_alpha_modes_like_pillow(color_type, bit_depth):
    data, _ = make(color_type, bit_depth, trns=True)
    rgba = cio.decode_png(data, mode="rgb_alpha")
    np.testing.assert_array_equal(hwc(rgba), pil_array(data, "RGBA"))
    assert (hwc(rgba)[..., 3] < 255).any()
    np.testing.assert_array_equal(hwc(cio.decode_png(data, mode="rgb")), pil_array(data, "RGB"))
    # unchanged ignores tRNS, as numpy.array(Image.open(f)) does
    np.testing.assert_array_equal(
        hwc(cio.decode_png(data)),
        pil_array(data, "L" if bit_depth == 1 and color_type == 0 else None),
    )
    if color_type in (0, 3):
        np.testing.assert_array_equal(
            hwc(cio.decode_png(data, mode="gray_alpha")), pil_array(data, "LA")
        )


def test_pillow_written_pngs_of_many_sizes():
    import io

    from PIL import Image

    for h, w in [(1, 1), (2, 3), (17, 5), (64, 63), (375, 500)]:
        pixels = photo_like(h, w, seed=h * w)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, "PNG")
        data = buffer.getvalue()
        np.testing.assert_array_equal(hwc(cio.decode_png(data)), pixels)
        assert torch.equal(cio.decode_image(data), cio.decode_png(data))


def test_voc_style_palette_mask():
    import io

    from PIL import Image

    mask = np.zeros((37, 41), np.uint8)
    mask[5:20, 3:30] = 15
    mask[0, :] = 255  # VOC's "void" boundary index
    image = Image.fromarray(mask, mode="P")
    image.putpalette([v for i in range(256) for v in (i, 255 - i, (7 * i) % 256)])
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    decoded = cio.decode_png(buffer.getvalue())
    assert decoded.shape == (1, 37, 41)
    np.testing.assert_array_equal(decoded[0].numpy(), mask)
    np.testing.assert_array_equal(
        hwc(cio.decode_png(buffer.getvalue(), mode="rgb")), pil_array(buffer.getvalue(), "RGB")
    )


def test_png_rejects_scale_and_crop():
    data, _ = make(2, 8)
    with pytest.raises(ValueError, match="JPEG images only"):
        cio.decode_image(data, scale=0.5)


def test_low_bit_gray_trns_follows_the_png_spec():
    # Pillow compares the raw 4-bit tRNS value with scaled samples and never matches; the PNG
    # spec (and libpng/libspng) make the pixels equal to the tRNS gray transparent.
    data, stored = make(0, 4, trns=True)
    alpha = hwc(cio.decode_png(data, mode="gray_alpha"))[..., 1]
    np.testing.assert_array_equal(alpha == 0, stored[..., 0] == stored[0, 0, 0])


@pytest.mark.parametrize("color_type,bit_depth", [(2, 8), (3, 4), (0, 16), (6, 8)])
@pytest.mark.parametrize("size", [(1, 1), (5, 3), (13, 29)])
def test_adam7_interlaced(color_type, bit_depth, size):
    rng = np.random.default_rng(sum(size))
    stored = rng.integers(0, 2**bit_depth, (*size, CHANNELS[color_type]))
    extra = {"palette": palette(16)} if color_type == 3 else {}
    data = encode_png(stored, color_type, bit_depth, interlaced=True, **extra)
    plain = encode_png(stored, color_type, bit_depth, **extra)
    assert torch.equal(cio.decode_png(data), cio.decode_png(plain))
    np.testing.assert_array_equal(hwc(cio.decode_png(data)), stored)
    if (color_type, bit_depth) != (0, 16):  # Pillow clips 16-bit gray to 255 when converting
        np.testing.assert_array_equal(hwc(cio.decode_png(data, mode="rgb")), pil_array(data, "RGB"))


def test_interlaced_low_bit_palette_after_other_images():
    # Regression: the decoder's reused scratch memory must not leak into interlaced 1/2/4-bit
    # images (libspng ORs their bits into place).
    for size in [(13, 29), (8, 8), (16, 9), (5, 3)]:
        for bit_depth in (1, 2, 4):
            stored = np.random.default_rng(sum(size)).integers(0, 2**bit_depth, (*size, 1))
            cio.decode_png(encode_png(photo_like(*size), 2, 8), mode="rgb_alpha")  # dirty scratch
            data = encode_png(stored, 3, bit_depth, palette=palette(2**bit_depth), interlaced=True)
            np.testing.assert_array_equal(hwc(cio.decode_png(data)), stored)
