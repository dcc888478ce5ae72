"""conveyor.io JPEG decoding equals Pillow's and torchvision's on generated images."""

import io
from fractions import Fraction

import numpy as np
import pytest
import torch
import torchvision.io as tvio
from imagegen import encode_jpeg, hwc, photo_like, pil_array
from PIL import Image, ImageOps

from conveyor import io as cio

SIZES = [(1, 1), (7, 5), (16, 16), (17, 33), (63, 65), (120, 97), (375, 500)]


def tv_decode(data, mode=tvio.ImageReadMode.UNCHANGED):
    return tvio.decode_jpeg(torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=mode)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("subsampling", ["444", "422", "420"])
def test_rgb_equals_pillow_and_torchvision(size, subsampling):
    data = encode_jpeg(photo_like(*size, seed=sum(size)), subsampling=subsampling)
    decoded = cio.decode_jpeg(data)
    assert decoded.dtype == torch.uint8 and decoded.shape == (3, *size)
    np.testing.assert_array_equal(hwc(decoded), pil_array(data))
    assert torch.equal(decoded, tv_decode(data, tvio.ImageReadMode.RGB))


@pytest.mark.parametrize("size", [(1, 1), (31, 29), (375, 500)])
def test_grayscale_jpeg(size):
    data = encode_jpeg(photo_like(*size, channels=1)[..., 0])
    assert cio.jpeg_header(data)["colorspace"] == "gray"
    unchanged = cio.decode_jpeg(data, mode="unchanged")
    assert unchanged.shape == (1, *size)
    np.testing.assert_array_equal(hwc(unchanged), pil_array(data))
    np.testing.assert_array_equal(hwc(cio.decode_jpeg(data)), pil_array(data, "RGB"))


def test_gray_mode_of_colour_jpeg_is_luma_like_torchvision():
    data = encode_jpeg(photo_like(45, 61, seed=3))
    gray = cio.decode_jpeg(data, mode="gray")
    assert gray.shape == (1, 45, 61)
    assert torch.equal(gray, tv_decode(data, tvio.ImageReadMode.GRAY))
    draft = Image.open(io.BytesIO(data))
    draft.draft("L", draft.size)
    np.testing.assert_array_equal(hwc(gray)[..., 0], np.array(draft))


@pytest.mark.parametrize("subsampling", ["444", "420"])
def test_progressive(subsampling):
    data = encode_jpeg(photo_like(99, 131, seed=5), progressive=True, subsampling=subsampling)
    np.testing.assert_array_equal(hwc(cio.decode_jpeg(data)), pil_array(data))


def test_restart_markers():
    data = encode_jpeg(photo_like(80, 120, seed=6), restart_blocks=3)
    assert b"\xff\xdd" in data and b"\xff\xd0" in data
    np.testing.assert_array_equal(hwc(cio.decode_jpeg(data)), pil_array(data))


def test_cmyk_like_pillow():
    data = encode_jpeg(photo_like(41, 57, seed=7), mode="CMYK")
    assert cio.jpeg_header(data)["components"] == 4
    unchanged = cio.decode_jpeg(data, mode="unchanged")
    assert unchanged.shape == (4, 41, 57)
    np.testing.assert_array_equal(hwc(unchanged), pil_array(data))  # Pillow's mode "CMYK"
    np.testing.assert_array_equal(hwc(cio.decode_jpeg(data)), pil_array(data, "RGB"))
    np.testing.assert_array_equal(hwc(cio.decode_jpeg(data, mode="gray")), pil_array(data, "L"))


@pytest.mark.parametrize("denom", [2, 4, 8])
def test_dct_scaling_equals_pillow_draft(denom):
    data = encode_jpeg(photo_like(375, 500, seed=8))
    scaled = cio.decode_jpeg(data, scale=Fraction(1, denom))
    expected_size = (-(-375 // denom), -(-500 // denom))
    assert scaled.shape == (3, *expected_size)
    draft = Image.open(io.BytesIO(data))
    draft.draft("RGB", (500 // denom, 375 // denom))
    reference = np.array(draft)
    assert reference.shape[:2] == expected_size
    diff = np.abs(hwc(scaled).astype(int) - reference.astype(int))
    assert diff.max() <= 1
    # ... and close to a box-filtered full decode (the point of DCT scaling).
    reduced = np.array(Image.open(io.BytesIO(data)).reduce(denom)).astype(int)
    h, w = reduced.shape[:2]
    assert np.abs(hwc(scaled)[:h, :w].astype(int) - reduced).mean() < 4


@pytest.mark.parametrize("scale", [0.5, "1/2", (1, 2), Fraction(4, 8)])
def test_scale_spellings(scale):
    data = encode_jpeg(photo_like(40, 60))
    assert cio.decode_jpeg(data, scale=scale).shape == (3, 20, 30)


def test_min_size_picks_smallest_scale_at_least():
    data = encode_jpeg(photo_like(375, 500))
    assert cio.smallest_scale_at_least(375, 500, 180, 180) == Fraction(1, 2)
    assert cio.smallest_scale_at_least(375, 500, 100, 100) == Fraction(3, 8)
    assert cio.smallest_scale_at_least(375, 500, 400, 400) == 1
    decoded = cio.decode_jpeg(data, min_size=(180, 200))
    assert decoded.shape == (3, 188, 250)
    assert (1, 8) in cio.jpeg_scaling_factors() and (2, 1) in cio.jpeg_scaling_factors()


def test_unsupported_scale_is_value_error():
    data = encode_jpeg(photo_like(40, 60))
    with pytest.raises(ValueError, match="unsupported scale"):
        cio.decode_jpeg(data, scale=Fraction(1, 3))
    with pytest.raises(ValueError, match="either scale or min_size"):
        cio.decode_jpeg(data, scale=0.5, min_size=(10, 10))


@pytest.mark.parametrize("scale", [None, 0.5])
def test_crop_equals_slice_of_full_decode(scale):
    data = encode_jpeg(photo_like(120, 160, seed=9))
    full = cio.decode_jpeg(data, scale=scale)
    for x, y, w, h in [
        (0, 0, 10, 10),
        (13, 7, 31, 22),
        (full.shape[2] - 5, full.shape[1] - 3, 5, 3),
    ]:
        crop = cio.decode_jpeg(data, scale=scale, crop=(x, y, w, h))
        assert torch.equal(crop, full[:, y : y + h, x : x + w])
    with pytest.raises(ValueError, match="crop region"):
        cio.decode_jpeg(data, scale=scale, crop=(0, 0, full.shape[2] + 1, 1))


def test_cmyk_crop():
    data = encode_jpeg(photo_like(41, 57, seed=7), mode="CMYK")
    full = cio.decode_jpeg(data)
    assert torch.equal(cio.decode_jpeg(data, crop=(5, 6, 20, 9)), full[:, 6:15, 5:25])


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_like_pillow_exif_transpose(orientation):
    data = encode_jpeg(photo_like(30, 50, seed=orientation), exif_orientation=orientation)
    plain = cio.decode_jpeg(data)
    np.testing.assert_array_equal(hwc(plain), pil_array(data))  # not applied by default
    turned = cio.decode_jpeg(data, apply_exif_orientation=True)
    expected = np.array(ImageOps.exif_transpose(Image.open(io.BytesIO(data))))
    np.testing.assert_array_equal(hwc(turned), expected)


def test_every_input_type_gives_the_same_image():
    data = encode_jpeg(photo_like(21, 34))
    expected = cio.decode_jpeg(data)
    array = np.frombuffer(data, np.uint8)
    for variant in (
        bytearray(data),
        memoryview(data),
        array,
        torch.from_numpy(array.copy()),
        cio.read_file.__wrapped__
        if False
        else torch.frombuffer(bytearray(data), dtype=torch.uint8),
    ):
        assert torch.equal(cio.decode_jpeg(variant), expected)
    strided = np.zeros(len(data) * 2, np.uint8)
    strided[::2] = array
    assert torch.equal(cio.decode_jpeg(strided[::2]), expected)


def test_result_is_a_chw_view_owning_its_memory():
    data = encode_jpeg(photo_like(21, 34))
    decoded = cio.decode_jpeg(data)
    assert decoded.stride() == (1, 34 * 3, 3)  # like torchvision: CHW view of HWC pixels
    del data
    assert decoded.contiguous().sum() > 0


def test_mode_accepts_torchvision_image_read_mode():
    data = encode_jpeg(photo_like(21, 34))
    assert cio.decode_jpeg(data, mode=tvio.ImageReadMode.GRAY).shape == (1, 21, 34)
    with pytest.raises(ValueError, match="JPEG has no alpha"):
        cio.decode_jpeg(data, mode="rgb_alpha")
    with pytest.raises(ValueError, match="unknown mode"):
        cio.decode_jpeg(data, mode="hsv")


def test_header():
    data = encode_jpeg(photo_like(21, 34), subsampling="422")
    assert cio.jpeg_header(data) == {
        "width": 34,
        "height": 21,
        "components": 3,
        "colorspace": "ycbcr",
        "subsampling": "422",
    }


def test_fast_mode_is_close_but_not_the_default():
    data = encode_jpeg(photo_like(120, 160, seed=11))
    exact = cio.decode_jpeg(data)
    fast = cio.decode_jpeg(data, fast=True)
    assert fast.shape == exact.shape
    diff = (fast.int() - exact.int()).abs()
    assert diff.float().mean() < 2.0 and diff.max() <= 40
    assert torch.equal(cio.decode_image(data, mode="rgb"), exact)


def test_list_input_decodes_each_like_torchvision():
    images = [encode_jpeg(photo_like(20 + i, 30, seed=i)) for i in range(3)]
    tensors = [torch.frombuffer(bytearray(d), dtype=torch.uint8) for d in images]
    decoded = cio.decode_jpeg(tensors)
    assert isinstance(decoded, list) and len(decoded) == 3
    for ours, theirs in zip(decoded, tvio.decode_jpeg(tensors)):
        assert torch.equal(ours, theirs)
