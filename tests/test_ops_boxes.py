"""The native box kernels (conveyor._core.kernels) against torchvision v2: format conversion,
ClampBoundingBoxes and SanitizeBoundingBoxes, on generated boxes (degenerate and out-of-range
ones included) and on the real VOC annotations."""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from conveyor._core import kernels as K

FORMATS = ["XYXY", "XYWH", "CXCYWH"]


def random_boxes(seed: int, count: int = 200, height: int = 120, width: int = 160) -> np.ndarray:
    """XYXY float boxes: most inside, some crossing an edge, some tiny or empty or inverted."""
    rng = np.random.default_rng(seed)
    x1 = rng.uniform(-20, width + 10, count)
    y1 = rng.uniform(-20, height + 10, count)
    w = rng.choice([0.0, 0.4, 1.0, 1.5], count) * (rng.uniform(size=count) < 0.2)
    w = np.where(w > 0, w, rng.uniform(-3, 80, count))
    h = rng.uniform(-3, 60, count)
    h[::17] = 0.5
    return np.stack([x1, y1, x1 + w, y1 + h], axis=1).astype(np.float32)


def tv_boxes(xyxy: np.ndarray, fmt: str, height: int = 120, width: int = 160):
    boxes = tv_tensors.BoundingBoxes(
        torch.from_numpy(xyxy.copy()), format="XYXY", canvas_size=(height, width)
    )
    return F.convert_bounding_box_format(boxes, new_format=fmt)


@pytest.fixture(scope="module")
def real_boxes(realvoc) -> list[tuple[np.ndarray, int, int]]:
    out = []
    for xml in sorted(realvoc.rglob("*.xml"))[:40]:
        root = ET.parse(xml).getroot()
        size = root.find("size")
        if size is None:
            continue
        width, height = int(float(size.findtext("width"))), int(float(size.findtext("height")))
        rows = [
            [float(o.findtext(f"bndbox/{k}")) for k in ("xmin", "ymin", "xmax", "ymax")]
            for o in root.iter("object")
            if o.find("bndbox") is not None
        ]
        if rows and width > 0 and height > 0:
            out.append((np.asarray(rows, np.float32), height, width))
    if not out:
        pytest.skip("no annotated boxes in the real VOC corpus")
    return out


@pytest.mark.parametrize("source, target", list(itertools.product(FORMATS, FORMATS)))
def test_convert_format_equals_torchvision(source, target):
    for seed in range(3):
        boxes = tv_boxes(random_boxes(seed), source)
        expected = F.convert_bounding_box_format(boxes, new_format=target)
        ours = K.convert_box_format(boxes.numpy(), source, target)
        np.testing.assert_allclose(ours, expected.numpy(), rtol=0, atol=1e-4)


@pytest.mark.parametrize("fmt", FORMATS)
def test_clamp_equals_torchvision(fmt):
    for seed in range(3):
        boxes = tv_boxes(random_boxes(seed), fmt)
        expected = v2.ClampBoundingBoxes()(boxes)
        ours = K.clamp_boxes(boxes.numpy(), fmt, 120, 160)
        np.testing.assert_allclose(ours, expected.numpy(), rtol=0, atol=1e-4)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("min_size, min_area", [(1.0, 1.0), (2.5, 1.0), (10.0, 150.0)])
def test_sanitize_equals_torchvision(fmt, min_size, min_area):
    for seed in range(3):
        boxes = tv_boxes(random_boxes(seed), fmt)
        labels = torch.arange(len(boxes))
        difficult = torch.arange(len(boxes)) % 3 == 0
        sample = {"boxes": boxes, "labels": labels, "difficult": difficult}
        # The default labels getter finds "labels"; a callable getter also filters "difficult".
        expected = v2.SanitizeBoundingBoxes(min_size=min_size, min_area=min_area)(sample)
        keep = K.sanitize_mask(boxes.numpy(), fmt, 120, 160, min_size, min_area)
        assert 0 < keep.sum() < len(keep)
        np.testing.assert_array_equal(boxes.numpy()[keep], expected["boxes"].numpy())
        np.testing.assert_array_equal(labels.numpy()[keep], expected["labels"].numpy())
        both = v2.SanitizeBoundingBoxes(
            min_size=min_size,
            min_area=min_area,
            labels_getter=lambda s: (s["labels"], s["difficult"]),
        )(sample)
        np.testing.assert_array_equal(difficult.numpy()[keep], both["difficult"].numpy())


def test_box_kernels_on_real_voc_annotations(real_boxes):
    for xyxy, height, width in real_boxes:
        for fmt in FORMATS:
            boxes = tv_boxes(xyxy, fmt, height, width)
            ours = K.convert_box_format(xyxy, "XYXY", fmt)
            np.testing.assert_allclose(ours, boxes.numpy(), rtol=0, atol=1e-4)
            np.testing.assert_allclose(
                K.clamp_boxes(ours, fmt, height, width),
                v2.ClampBoundingBoxes()(boxes).numpy(),
                rtol=0,
                atol=1e-4,
            )
            expected = v2.SanitizeBoundingBoxes(labels_getter=None)(boxes)
            keep = K.sanitize_mask(ours, fmt, height, width, 1.0, 1.0)
            np.testing.assert_array_equal(ours[keep], expected.numpy())


def test_bad_box_input_is_rejected():
    with pytest.raises(ValueError, match="format 'XYZW'"):
        K.convert_box_format(np.zeros((1, 4), np.float32), "XYZW", "XYXY")
    with pytest.raises(ValueError, match=r"shape \[N, 4\]"):
        K.clamp_boxes(np.zeros((2, 3), np.float32), "XYXY", 10, 10)
    with pytest.raises(ValueError, match="min_size must be >= 1"):
        K.sanitize_mask(np.zeros((1, 4), np.float32), "XYXY", 10, 10, 0.5, 1.0)
    with pytest.raises(ValueError, match="min_area must be >= 1"):
        K.sanitize_mask(np.zeros((1, 4), np.float32), "XYXY", 10, 10, 1.0, 0.0)


# ---- through the loader ----


@pytest.fixture(scope="module")
def voc_root(tmp_path_factory):
    from conveyor import datasets

    root = tmp_path_factory.mktemp("voc")
    datasets.make_synthetic_voc(root, num_images=16, image_size=(200, 150), seed=5)
    return root


@pytest.mark.parametrize("min_size", [1.0, 12.0])
def test_loader_sanitizes_boxes_natively_as_torchvision(voc_root, min_size):
    import warnings

    from conveyor import DataLoader, datasets
    from conveyor.collate import detection_collate

    # A crop that cuts boxes to slivers; Sanitize then drops them with their labels.
    tf = v2.Compose(
        [
            v2.ToImage(),
            v2.Resize((96, 96)),
            v2.CenterCrop((48, 64)),
            v2.ToDtype(torch.float32, scale=True),
            v2.ClampBoundingBoxes(),
            v2.SanitizeBoundingBoxes(min_size=min_size),
        ]
    )

    def dataset():
        return datasets.VOCDetection(
            voc_root, image_set="trainval", transforms=tf, target_format="boxes"
        )

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        native = DataLoader(dataset(), batch_size=4, num_workers=2, collate_fn=detection_collate)
        batches = list(native)
    assert native.stats.path == "native"
    python = torch.utils.data.DataLoader(dataset(), batch_size=4, collate_fn=detection_collate)
    dropped = 0
    for (_, targets_a), (_, targets_b) in zip(batches, python):
        for a, b in zip(targets_a, targets_b):
            np.testing.assert_allclose(a["boxes"].numpy(), b["boxes"].numpy(), atol=1e-4)
            assert torch.equal(a["labels"], b["labels"])
            # Natively the difficult flags of dropped boxes go too (torchvision's default
            # getter only finds "labels"): one flag per kept box.
            assert len(a["difficult"]) == len(a["boxes"])
            dropped += len(b["difficult"]) - len(b["boxes"])
    assert dropped > 0  # the test really removed boxes


@pytest.mark.parametrize("fmt", ["XYWH", "CXCYWH"])
def test_loader_converts_box_format_natively_as_torchvision(voc_root, fmt):
    import warnings

    from conveyor import DataLoader, datasets
    from conveyor.collate import detection_collate

    tf = v2.Compose(
        [
            v2.ToImage(),
            v2.Resize((96, 96)),
            v2.CenterCrop((48, 64)),
            v2.ConvertBoundingBoxFormat(fmt),
            v2.ClampBoundingBoxes(),
            v2.SanitizeBoundingBoxes(min_size=2),
        ]
    )

    def dataset():
        return datasets.VOCDetection(
            voc_root, image_set="trainval", transforms=tf, target_format="boxes"
        )

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        native = DataLoader(dataset(), batch_size=4, num_workers=2, collate_fn=detection_collate)
        batches = list(native)
    assert native.stats.path == "native"
    python = torch.utils.data.DataLoader(dataset(), batch_size=4, collate_fn=detection_collate)
    for (_, targets_a), (_, targets_b) in zip(batches, python):
        for a, b in zip(targets_a, targets_b):
            assert a["boxes"].format == b["boxes"].format == tv_tensors.BoundingBoxFormat[fmt]
            np.testing.assert_allclose(a["boxes"].numpy(), b["boxes"].numpy(), atol=1e-4)
            assert torch.equal(a["labels"], b["labels"])
