"""The pixel limit applies to what is allocated (after DCT upscaling), and skipped samples name
their file for decode errors too."""

import io

import numpy as np
import pytest
from PIL import Image
from torchvision.transforms import v2

from conveyor import DataLoader, datasets
from conveyor import io as cio
from conveyor.collate import detection_collate
from conveyor.errors import DecodeError


def encode(width, height):
    pixels = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG")
    return out.getvalue()


def test_pixel_limit_counts_the_upscaled_output():
    data = encode(64, 48)  # 3072 stored pixels, 128x96 = 12288 at 2/1
    assert cio.decode_jpeg(data, max_pixels=5000).shape == (3, 48, 64)
    assert cio.decode_jpeg(data, scale=(1, 2), max_pixels=5000).shape == (3, 24, 32)
    with pytest.raises(DecodeError, match=r"scaled by 2/1: image of 128x96 = 12288 pixels"):
        cio.decode_jpeg(data, scale=(2, 1), max_pixels=5000)
    with pytest.raises(DecodeError, match="scaled by 15/8"):
        cio.decode_jpeg(data, scale=(15, 8), max_pixels=5000, crop=(0, 0, 8, 8))
    assert cio.decode_jpeg(data, scale=(2, 1), max_pixels=0).shape == (3, 96, 128)


def test_skip_reasons_name_the_file_for_decode_errors(tmp_path):
    datasets.make_synthetic_voc(tmp_path, num_images=6, image_size=(64, 48), seed=1)
    dataset = datasets.VOCDetection(
        tmp_path,
        image_set="trainval",
        transforms=v2.Compose([v2.ToImage(), v2.Resize((32, 32))]),
        target_format="boxes",
    )
    bad = dataset.images[3]
    with open(bad, "wb") as file:
        file.write(b"\xff\xd8\xff\xe0 this is not JPEG data")
    loader = DataLoader(dataset, batch_size=2, collate_fn=detection_collate, on_error="skip")
    assert sum(images.shape[0] for images, _ in loader) == 5
    assert loader.stats.path == "native"
    ((index, reason),) = loader.stats.skipped
    assert index == 3 and reason.startswith(f"{bad}: ") and "JPEG" in reason
