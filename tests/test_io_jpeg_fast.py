"""``fast=True`` and DCT-scaled crops equal the same rectangle of the full decode, every time.

Before: TurboJPEG 2.1 chose its own scaling factor when another gave the same output size (a
1x1 image at 1/2 decoded at 1/1: off by 2 on every fast crop), and upscaled fast decodes on a
reused handle differed from run to run by up to 190 levels."""

import io
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from conveyor import io as cio

ALL_SCALES = [tuple(factor) for factor in cio.jpeg_scaling_factors()]


def encode(width, height, seed=0, **save):
    rng = np.random.default_rng(seed)
    cells = rng.integers(0, 256, (height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(cells).resize((width, height), Image.BILINEAR).save(out, "JPEG", **save)
    return out.getvalue()


def random_crops(rng, width, height, count):
    for _ in range(count):
        w, h = int(rng.integers(1, width + 1)), int(rng.integers(1, height + 1))
        yield int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1)), w, h


def crop_mismatches(data, scale, fast, seed, count):
    """The crops of ``data`` that differ from the full decode, with the largest difference."""
    full = cio.decode_jpeg(data, scale=scale, fast=fast)
    rng, bad = np.random.default_rng(seed), []
    for x, y, w, h in random_crops(rng, full.shape[2], full.shape[1], count):
        crop = cio.decode_jpeg(data, scale=scale, fast=fast, crop=(x, y, w, h))
        difference = (crop.int() - full[:, y : y + h, x : x + w].int()).abs().max().item()
        if difference:
            bad.append(((x, y, w, h), difference))
    return bad


@pytest.mark.parametrize("fast", [False, True])
@pytest.mark.parametrize("size", [(1, 1), (2, 2), (3, 2)])
def test_tiny_images_at_every_factor(size, fast):
    for subsampling in (0, 1, 2):
        data = encode(*size, subsampling=subsampling)
        for scale in ALL_SCALES:
            assert crop_mismatches(data, scale, fast, seed=1, count=4) == [], (scale, subsampling)


def test_fast_upscaled_crops_in_threads_are_the_full_decode():
    files = [
        encode(500, 375, seed=1, subsampling=2),
        encode(500, 375, seed=2, subsampling=1, progressive=True),
        encode(203, 157, seed=3, subsampling=0),
    ]
    jobs = [(files[i % 3], scale, i) for i in range(12) for scale in [(5, 4), (3, 2), (2, 1)]]
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda job: crop_mismatches(*job[:2], True, job[2], 4), jobs))
    assert [bad for bad in results if bad] == []
