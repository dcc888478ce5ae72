"""conveyor.io on the real VOC JPEGs and PNG masks of ../shared/data/realvoc (read-only)."""

import shutil

import numpy as np
import pytest
import torch
import torchvision.io as tvio
from imagegen import hwc
from PIL import Image

from conveyor import io as cio


def files(root, *suffixes):
    found = sorted(p for p in root.rglob("*") if p.suffix.lower() in suffixes and p.is_file())
    if not found:
        pytest.skip(f"no {suffixes} files under {root}")
    return found


def test_real_jpegs_equal_pillow_and_torchvision(realvoc):
    paths = files(realvoc, ".jpg", ".jpeg")
    assert len(paths) >= 20
    for path in paths:
        data = path.read_bytes()
        decoded = cio.read_image(path, mode="rgb")
        with Image.open(path) as image:
            reference = np.array(image.convert("RGB"))
        np.testing.assert_array_equal(hwc(decoded), reference, err_msg=str(path))
        if not data.startswith(b"\xff\xd8\xff"):  # a few ".jpg" files are really PNGs
            continue
        tv = tvio.decode_jpeg(
            torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=tvio.ImageReadMode.RGB
        )
        assert torch.equal(decoded, tv), path
        half = cio.decode_jpeg(data, scale=0.5)
        assert half.shape[1:] == ((decoded.shape[1] + 1) // 2, (decoded.shape[2] + 1) // 2)


def test_real_png_masks_equal_pillow(realvoc):
    paths = files(realvoc, ".png")
    for path in paths:
        decoded = cio.read_image(path)
        with Image.open(path) as image:
            reference = np.array(image)
            mode = image.mode
        reference = reference[..., None] if reference.ndim == 2 else reference
        np.testing.assert_array_equal(hwc(decoded), reference, err_msg=f"{path} ({mode})")
        if mode == "P":  # VOC class masks: palette indices
            assert decoded.shape[0] == 1 and decoded.dtype == torch.uint8


def test_real_files_copied_and_corrupted_raise_with_path(realvoc, tmp_path):
    source = files(realvoc, ".jpg")[0]
    copy = tmp_path / source.name
    shutil.copyfile(source, copy)
    copy.write_bytes(copy.read_bytes()[: copy.stat().st_size // 3])
    with pytest.raises(Exception, match=str(copy.name)):
        cio.read_image(copy)
