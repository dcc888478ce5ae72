"""A JPEG's pixels never depend on the images decoded before it on the same thread.

libjpeg keeps quantization and Huffman tables in its decompressor between images. A file
without DQT is invalid (Pillow raises, libjpeg says "Quantization table 0x00 was not
defined") and must raise after any other JPEG; a file without DHT (Motion-JPEG style) is valid
and decodes with the standard tables, as Pillow does, whatever came first. Checked through
``conveyor.io`` (full and crop paths, scaled) and through the DataLoader (native engine and
``on_error="raise"``)."""

import io
import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import v2

from conveyor import DataLoader, datasets
from conveyor import io as cio
from conveyor.collate import detection_collate
from conveyor.errors import DecodeError

NO_DQT_MESSAGE = "Quantization table 0x00 was not defined"


def encode(seed, size=(64, 48), mode="RGB", **save):
    """A Pillow JPEG of smooth noise (``save``: quality, optimize, progressive, subsampling)."""
    rng = np.random.default_rng(seed)
    channels = {"L": 1, "RGB": 3, "CMYK": 4}[mode]
    pixels = rng.integers(0, 256, (size[1] // 4, size[0] // 4, channels), dtype=np.uint8)
    image = Image.fromarray(pixels.squeeze(-1) if channels == 1 else pixels, mode)
    out = io.BytesIO()
    image.resize(size, Image.BILINEAR).save(out, "JPEG", **save)
    return out.getvalue()


def without_segments(data, marker):
    """``data`` without its marker segments of one type (0xDB: DQT, 0xC4: DHT)."""
    out, at = bytearray(data[:2]), 2
    while data[at + 1] != 0xDA:
        length = data[at + 2] << 8 | data[at + 3]
        if data[at + 1] != marker:
            out += data[at : at + 2 + length]
        at += 2 + length
    return bytes(out + data[at:])


def pillow(data):
    return torch.from_numpy(np.array(Image.open(io.BytesIO(data)).convert("RGB"))).permute(2, 0, 1)


# Each leaves different tables in a decoder.
EARLIER = {
    "standard tables": encode(1, quality=90),
    "optimized q20": encode(2, quality=20, optimize=True),
    "optimized q97 4:4:4": encode(3, quality=97, optimize=True, subsampling=0),
    "progressive": encode(4, quality=60, progressive=True),
    "gray": encode(5, mode="L", quality=50, optimize=True),
    "CMYK": encode(6, mode="CMYK", quality=40),
}
NO_DQT = without_segments(encode(7, quality=85), 0xDB)
# Pillow's default (non-optimized) JPEGs use the standard tables: without DHT they stay valid.
WITH_DHT = encode(8, quality=85)
NO_DHT = without_segments(WITH_DHT, 0xC4)
OPTIONS = {
    "full": {},
    "crop": {"crop": (5, 3, 40, 30)},
    "scaled": {"scale": (1, 2)},
    "upscaled crop": {"scale": (5, 4), "crop": (9, 11, 50, 40)},
}


def test_the_files_are_what_the_tests_need():
    with pytest.raises(OSError):
        pillow(NO_DQT)
    assert len(NO_DHT) < len(WITH_DHT)
    assert torch.equal(pillow(NO_DHT), pillow(WITH_DHT))


@pytest.mark.parametrize("options", OPTIONS.values(), ids=OPTIONS.keys())
@pytest.mark.parametrize("earlier", EARLIER.values(), ids=EARLIER.keys())
def test_no_dqt_raises_after_any_jpeg(earlier, options):
    cio.decode_jpeg(earlier, mode="rgb", **options)
    with pytest.raises(DecodeError, match=NO_DQT_MESSAGE):
        cio.decode_jpeg(NO_DQT, **options)


@pytest.mark.parametrize("options", OPTIONS.values(), ids=OPTIONS.keys())
@pytest.mark.parametrize("earlier", EARLIER.values(), ids=EARLIER.keys())
def test_no_dht_uses_the_standard_tables_after_any_jpeg(earlier, options):
    cio.decode_jpeg(earlier, mode="rgb", **options)
    assert torch.equal(cio.decode_jpeg(NO_DHT, **options), cio.decode_jpeg(WITH_DHT, **options))
    if not options:
        assert torch.equal(cio.decode_jpeg(NO_DHT), pillow(NO_DHT))


def test_read_image_names_the_file(tmp_path):
    path = tmp_path / "no_dqt.jpg"
    path.write_bytes(NO_DQT)
    cio.decode_jpeg(EARLIER["optimized q20"])
    with pytest.raises(DecodeError, match=NO_DQT_MESSAGE) as info:
        cio.read_image(path)
    assert str(path) in str(info.value)


@pytest.fixture(scope="module")
def optimized_voc(tmp_path_factory):
    """A VOC tree whose JPEGs have optimized Huffman tables and low quality (unusual tables)."""
    root = tmp_path_factory.mktemp("voc_tables")
    datasets.make_synthetic_voc(root, num_images=12, image_size=(96, 72), seed=5)
    for path in sorted(root.rglob("JPEGImages/*.jpg")):
        with Image.open(path) as image:
            image.load()
        image.save(path, "JPEG", quality=25, optimize=True)
    return root


def detection(root, transforms):
    return datasets.VOCDetection(
        root, image_set="trainval", transforms=transforms, target_format="boxes"
    )


PIPELINES = {
    "full": lambda: v2.Compose([v2.ToImage(), v2.Resize((64, 64))]),
    "crop": lambda: v2.Compose([v2.ToImage(), v2.RandomResizedCrop((32, 32))]),
}


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("pipeline", PIPELINES.values(), ids=PIPELINES.keys())
def test_loader_raises_on_no_dqt_among_other_jpegs(optimized_voc, tmp_path, pipeline, workers):
    root = tmp_path / "voc"
    shutil.copytree(optimized_voc, root)
    dataset = detection(root, pipeline())
    bad = dataset.images[6]
    with Image.open(bad) as image:
        size = image.size
    with open(bad, "wb") as file:
        file.write(without_segments(encode(9, size=size), 0xDB))
    with pytest.raises(DecodeError):
        dataset[6]
    loader = DataLoader(
        dataset, batch_size=3, num_workers=workers, collate_fn=detection_collate, on_error="raise"
    )
    with pytest.raises(Exception, match=NO_DQT_MESSAGE) as info:
        for _ in loader:
            pass
    assert bad in str(info.value)
    assert loader.stats.path == "native"


@pytest.mark.parametrize("workers", [0, 2])
def test_loader_decodes_no_dht_like_pillow_among_other_jpegs(optimized_voc, tmp_path, workers):
    root = tmp_path / "voc"
    shutil.copytree(optimized_voc, root)
    dataset = detection(root, v2.Compose([v2.ToImage()]))
    for index in (3, 7):
        with Image.open(dataset.images[index]) as image:
            size = image.size
        with open(dataset.images[index], "wb") as file:
            file.write(without_segments(encode(index, size=size, quality=85), 0xC4))
    loader = DataLoader(dataset, batch_size=1, num_workers=workers, collate_fn=detection_collate)
    for index, (images, _) in enumerate(loader):
        with open(dataset.images[index], "rb") as file:
            assert torch.equal(images[0].as_subclass(torch.Tensor), pillow(file.read()))
    assert loader.stats.path == "native"
