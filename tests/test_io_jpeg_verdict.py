"""One rule for corrupt JPEGs: a file is good or bad whatever the crop.

Before: the crop path stopped after the crop's last row, so damage below it ("extraneous bytes
before marker", "premature end of data segment") raised for a full decode or a low crop but not
for a high one, and whether the loader raised or skipped depended on the random crop."""

import io
import shutil

import numpy as np
import pytest
from PIL import Image
from torchvision.transforms import v2

from conveyor import DataLoader, datasets
from conveyor import io as cio
from conveyor.collate import detection_collate
from conveyor.errors import DecodeError


def encode(width=160, height=120, seed=0):
    rng = np.random.default_rng(seed)
    cells = rng.integers(0, 256, (height // 8, width // 8, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(cells).resize((width, height), Image.BILINEAR).save(out, "JPEG", quality=90)
    return out.getvalue()


def extraneous(data):
    return data[:-2] + b"\x12" * 64 + b"\xff\xd9"


def premature(data):
    return data[: len(data) * 4 // 5] + b"\xff\xd9"


DAMAGE = {"extraneous bytes": extraneous, "premature end": premature}


def verdict(data, **options):
    try:
        cio.decode_jpeg(data, **options)
    except DecodeError as error:
        return str(error)
    return "ok"


@pytest.mark.parametrize("damage", DAMAGE.values(), ids=DAMAGE.keys())
def test_every_crop_fails_as_the_full_decode(damage):
    data = damage(encode())
    full = verdict(data)
    assert full != "ok"
    for crop in [(0, 0, 8, 8), (150, 0, 10, 10), (0, 60, 160, 4), (159, 119, 1, 1)]:
        assert verdict(data, crop=crop) == full
    assert verdict(data, scale=(1, 2), crop=(0, 0, 8, 8)) == verdict(data, scale=(1, 2))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_loader_raises_for_the_damaged_file_whatever_the_crop(tmp_path_factory, seed):
    root = tmp_path_factory.mktemp("voc_damaged")
    datasets.make_synthetic_voc(root, num_images=8, image_size=(160, 120), seed=4)
    dataset = datasets.VOCDetection(
        root,
        image_set="trainval",
        transforms=v2.Compose([v2.ToImage(), v2.RandomResizedCrop((16, 16), scale=(0.01, 0.02))]),
        target_format="boxes",
    )
    bad = dataset.images[2]
    with open(bad, "rb") as file:
        data = file.read()
    with open(bad, "wb") as file:
        file.write(premature(data))
    loader = DataLoader(dataset, batch_size=4, seed=seed, collate_fn=detection_collate)
    with pytest.raises(Exception, match="premature end of data segment") as info:
        for _ in loader:
            pass
    assert bad in str(info.value)
    assert loader.stats.path == "native"
    shutil.rmtree(root)
