"""decode_jpeg(..., crop=...) decodes only the region (libjpeg's jpeg_crop_scanline and
jpeg_skip_scanlines) and must give exactly the same pixels as the full decode sliced, for every
layout libjpeg-turbo treats differently, at every DCT scale, and the same errors."""

import numpy as np
import pytest
import torch
from imagegen import encode_jpeg, photo_like

from conveyor import io as cio
from conveyor.errors import DecodeError

LAYOUTS = {
    "420": dict(subsampling="420"),
    "422": dict(subsampling="422"),
    "444": dict(subsampling="444"),
    "420-progressive": dict(subsampling="420", progressive=True),
    "422-progressive": dict(subsampling="422", progressive=True),
    "420-restarts": dict(subsampling="420", restart_blocks=3),
    "444-progressive-restarts": dict(subsampling="444", progressive=True, restart_blocks=1),
    "cmyk": dict(mode="CMYK"),
}
SIZES = [(9, 17), (48, 64), (157, 203), (375, 500)]


def random_regions(width, height, rng, count=12):
    regions = [(0, 0, width, height), (0, 0, 1, 1), (width - 1, height - 1, 1, 1)]
    for i in range(count):
        w = int(rng.integers(1, min(width, 4) + 1 if i < 4 else width + 1))
        h = int(rng.integers(1, height + 1))
        regions.append(
            (int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1)), w, h)
        )
    return regions


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_region_equals_slice_of_full_decode(layout, size):
    data = encode_jpeg(photo_like(*size, seed=size[0]), **LAYOUTS[layout])
    rng = np.random.default_rng(size[1])
    for mode in ("rgb", "unchanged", "gray"):
        for scale in (None, "1/2", "3/8", "1/8"):
            full = cio.decode_jpeg(data, mode=mode, scale=scale)
            for x, y, w, h in random_regions(full.shape[2], full.shape[1], rng):
                region = cio.decode_jpeg(data, mode=mode, scale=scale, crop=(x, y, w, h))
                assert torch.equal(region, full[:, y : y + h, x : x + w]), (
                    mode,
                    scale,
                    (x, y, w, h),
                )


@pytest.mark.parametrize("progressive", [False, True])
def test_grayscale_region(progressive):
    data = encode_jpeg(photo_like(123, 77, channels=1)[..., 0], progressive=progressive)
    rng = np.random.default_rng(3)
    for mode in ("unchanged", "rgb"):
        full = cio.decode_jpeg(data, mode=mode)
        for x, y, w, h in random_regions(77, 123, rng):
            assert torch.equal(
                cio.decode_jpeg(data, mode=mode, crop=(x, y, w, h)), full[:, y : y + h, x : x + w]
            )


def test_truncated_file_is_an_error_even_when_the_region_is_intact():
    data = encode_jpeg(photo_like(240, 320, seed=1))
    cut = data[: len(data) * 2 // 3]
    with pytest.raises(
        DecodeError, match="truncated or corrupt data.*Premature end of JPEG file.*accept_warnings"
    ):
        cio.decode_jpeg(cut, crop=(0, 0, 32, 16))
    full = cio.decode_jpeg(cut, accept_warnings=True)
    for x, y, w, h in [(0, 0, 32, 16), (100, 200, 120, 40)]:
        region = cio.decode_jpeg(cut, crop=(x, y, w, h), accept_warnings=True)
        assert torch.equal(region, full[:, y : y + h, x : x + w])


def test_bytes_after_the_end_marker_are_not_truncation():
    data = encode_jpeg(photo_like(64, 64, seed=2)) + b"\x00" * 64
    assert torch.equal(
        cio.decode_jpeg(data, crop=(8, 8, 8, 8)), cio.decode_jpeg(data)[:, 8:16, 8:16]
    )


def test_corrupt_data_inside_the_region_is_reported():
    data = bytearray(encode_jpeg(photo_like(160, 160, seed=4)))
    data[len(data) // 3 : len(data) // 3 + 40] = b"\xff" * 40
    with pytest.raises(DecodeError, match="JPEG: "):
        cio.decode_jpeg(bytes(data), crop=(0, 0, 160, 160))
    with pytest.raises(DecodeError, match="JPEG: "):
        cio.decode_jpeg(bytes(data))
