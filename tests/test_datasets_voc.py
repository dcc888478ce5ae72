"""conveyor.datasets VOCDetection / VOCSegmentation side by side with torchvision's, on
generated trees for every year and split and on the real mini VOCdevkit."""

import shutil

import numpy as np
import pytest
import torch
import torchvision.datasets as tv_datasets
from torchvision import tv_tensors
from torchvision.datasets import wrap_dataset_for_transforms_v2

from conveyor import datasets, voc
from conveyor.datasets import make_synthetic_voc
from conveyor.errors import AnnotationError

YEARS = ["2007", "2008", "2009", "2010", "2011", "2012"]


@pytest.fixture(scope="module")
def voc_roots(tmp_path_factory):
    """One small generated tree per year (all years in one root, as real VOC archives extract)."""
    root = tmp_path_factory.mktemp("voc")
    for i, year in enumerate(YEARS):
        make_synthetic_voc(root, num_images=9, year=year, seed=i, image_size=(64, 48))
    return root


def splits(year):
    return ["train", "val", "trainval"] + (["test"] if year == "2007" else [])


def assert_same_image(a, b):
    assert a.mode == b.mode and a.size == b.size
    assert np.array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("year", YEARS)
def test_detection_items_equal_torchvision(voc_roots, year):
    for split in splits(year):
        theirs = tv_datasets.VOCDetection(voc_roots, year=year, image_set=split)
        ours = datasets.VOCDetection(voc_roots, year=year, image_set=split)
        assert len(ours) == len(theirs) > 0
        assert ours.images == theirs.images and ours.annotations == theirs.annotations
        assert ours.targets == theirs.targets
        assert (ours.year, ours.image_set, ours.md5) == (theirs.year, theirs.image_set, theirs.md5)
        for i in range(len(ours)):
            (image, target), (expected_image, expected_target) = ours[i], theirs[i]
            assert_same_image(image, expected_image)
            assert target == expected_target


@pytest.mark.parametrize("year", YEARS)
def test_segmentation_items_equal_torchvision(voc_roots, year):
    for split in splits(year):
        theirs = tv_datasets.VOCSegmentation(voc_roots, year=year, image_set=split)
        ours = datasets.VOCSegmentation(voc_roots, year=year, image_set=split)
        assert len(ours) == len(theirs) > 0
        assert ours.masks == theirs.masks and ours.images == theirs.images
        for i in range(len(ours)):
            (image, mask), (expected_image, expected_mask) = ours[i], theirs[i]
            assert_same_image(image, expected_image)
            assert mask.mode == "P"
            assert_same_image(mask, expected_mask)
            assert mask.getpalette() == expected_mask.getpalette()


def test_real_mini_vocdevkit_matches_torchvision(realvoc, tmp_path):
    source = realvoc / "open-mmlab__mmfewshot" / "tests" / "data" / "VOCdevkit"
    shutil.copytree(source, tmp_path / "VOCdevkit")
    checked = 0
    for year in ("2007", "2012"):
        split_dir = tmp_path / "VOCdevkit" / f"VOC{year}" / "ImageSets" / "Main"
        for split in ("train", "val", "trainval", "test"):
            if not (split_dir / f"{split}.txt").exists() or (split == "test" and year != "2007"):
                continue
            theirs = tv_datasets.VOCDetection(tmp_path, year=year, image_set=split)
            ours = datasets.VOCDetection(tmp_path, year=year, image_set=split)
            boxes = datasets.VOCDetection(
                tmp_path, year=year, image_set=split, target_format="boxes"
            )
            wrapped = wrap_dataset_for_transforms_v2(theirs)
            for i in range(len(theirs)):
                if not ours.images[i] or not (tmp_path / ours.images[i]).exists():
                    continue
                assert ours[i][1] == theirs[i][1]
                assert_same_image(ours[i][0], theirs[i][0])
                image, target = boxes[i]
                _, expected = wrapped[i]
                assert torch.equal(target["boxes"], expected["boxes"].to(torch.float32))
                assert torch.equal(target["labels"], expected["labels"])
                assert target["boxes"].canvas_size == expected["boxes"].canvas_size
                checked += 1
    assert checked > 0


def test_transform_arguments_are_called(voc_roots):
    calls = []
    ours = datasets.VOCDetection(
        voc_roots,
        transform=lambda im: calls.append("t") or im,
        target_transform=lambda t: calls.append("tt") or t,
    )
    ours[0]
    assert calls == ["t", "tt"]
    joint = datasets.VOCSegmentation(voc_roots, transforms=lambda im, m: ("img", "mask"))
    assert joint[0] == ("img", "mask")


def test_validation_and_error_messages_match_torchvision(voc_roots, tmp_path):
    cases = [
        dict(root=voc_roots, image_set="test"),
        dict(root=voc_roots, image_set="Train"),
        dict(root=voc_roots, year="2013"),
        dict(root=voc_roots, year=2012),
        dict(root=tmp_path / "nowhere"),
        dict(root=voc_roots, transforms=lambda a, b: (a, b), transform=lambda a: a),
    ]
    for kwargs in cases:
        for ours_cls, theirs_cls in (
            (datasets.VOCDetection, tv_datasets.VOCDetection),
            (datasets.VOCSegmentation, tv_datasets.VOCSegmentation),
        ):
            with pytest.raises(Exception) as expected:
                theirs_cls(**kwargs)
            with pytest.raises(type(expected.value)) as got:
                ours_cls(**kwargs)
            assert str(got.value) == str(expected.value)
    with pytest.raises(ValueError, match="Unknown value 'xyxy' for argument target_format"):
        datasets.VOCDetection(voc_roots, target_format="xyxy")
    assert (
        repr(datasets.VOCDetection(voc_roots)).splitlines()[1:]
        == repr(tv_datasets.VOCDetection(voc_roots)).splitlines()[1:]
    )


def test_boxes_target_matches_wrap_dataset_for_transforms_v2(voc_roots):
    theirs = wrap_dataset_for_transforms_v2(
        tv_datasets.VOCDetection(voc_roots, image_set="trainval")
    )
    ours = datasets.VOCDetection(voc_roots, image_set="trainval", target_format="boxes")
    for i in range(len(ours)):
        image, target = ours[i]
        expected_image, expected = theirs[i]
        assert isinstance(image, tv_tensors.Image) and image.dtype == torch.uint8
        assert image.shape == (3, expected_image.height, expected_image.width)
        assert torch.equal(image, torch.from_numpy(np.array(expected_image)).permute(2, 0, 1))
        assert isinstance(target["boxes"], tv_tensors.BoundingBoxes)
        assert target["boxes"].format == tv_tensors.BoundingBoxFormat.XYXY
        assert target["boxes"].dtype == torch.float32
        assert target["boxes"].canvas_size == expected["boxes"].canvas_size
        assert torch.equal(target["boxes"], expected["boxes"].to(torch.float32))
        assert target["labels"].dtype == torch.int64
        assert torch.equal(target["labels"], expected["labels"])
        assert target["difficult"].dtype == torch.bool
        assert target["image_id"] == i


def test_boxes_target_works_with_transforms_v2(voc_roots):
    from torchvision.transforms import v2

    transforms = v2.Compose(
        [v2.RandomHorizontalFlip(p=1.0), v2.Resize((32, 32)), v2.ToDtype(torch.float32, scale=True)]
    )
    ours = datasets.VOCDetection(voc_roots, target_format="boxes", transforms=transforms)
    raw = datasets.VOCDetection(voc_roots, target_format="boxes")
    image, target = ours[0]
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32
    flipped = raw[0][1]["boxes"].clone()
    width = raw[0][0].shape[-1]
    expected_x1 = (width - flipped[:, 2]) * 32 / width
    assert torch.allclose(target["boxes"][:, 0], expected_x1)


def test_native_annotations_contract(voc_roots):
    ours = datasets.VOCDetection(voc_roots, image_set="trainval", target_format="boxes")
    native = ours.native_annotations
    n = len(ours)
    assert isinstance(native, voc.AnnotationSet) and len(native) == n
    assert native.offsets.dtype == np.int64 and native.offsets.shape == (n + 1,)
    m = int(native.offsets[-1])
    assert native.boxes.dtype == np.float32 and native.boxes.shape == (m, 4)
    assert native.labels.dtype == np.int64 and native.labels.shape == (m,)
    assert native.difficult.dtype == bool and native.difficult.shape == (m,)
    assert native.widths.dtype == np.int64 and native.heights.shape == (n,)
    assert len(native.filenames) == n and len(native.names) == m
    assert native.paths == ours.annotations
    assert native.widths.tolist() == [64] * n and native.heights.tolist() == [48] * n
    assert [name for name in native.names] == [voc.VOC_CLASSES[k - 1] for k in native.labels]
    # dict mode builds it on first access, from the same files.
    lazy = datasets.VOCDetection(voc_roots, image_set="trainval")
    np.testing.assert_array_equal(lazy.native_annotations.boxes, native.boxes)


def test_boxes_mode_reports_a_bad_annotation_at_construction(voc_roots, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(voc_roots / "VOCdevkit" / "VOC2012", root / "VOCdevkit" / "VOC2012")
    first = (root / "VOCdevkit/VOC2012/ImageSets/Main/train.txt").read_text().split()[0]
    bad = root / "VOCdevkit/VOC2012/Annotations" / f"{first}.xml"
    bad.write_text(bad.read_text().replace("</size>", "</sizes>"))
    with pytest.raises(AnnotationError, match=rf"{bad}:\d+:\d+: mismatched tag"):
        datasets.VOCDetection(root, target_format="boxes")
    lazy = datasets.VOCDetection(root)  # dict mode, like torchvision, fails on access only
    with pytest.raises(AnnotationError, match=str(bad)):
        lazy[0]


@pytest.mark.parametrize("year", YEARS)
def test_mask_target_matches_wrap_dataset_for_transforms_v2(voc_roots, year):
    for split in splits(year):
        theirs = wrap_dataset_for_transforms_v2(
            tv_datasets.VOCSegmentation(voc_roots, year=year, image_set=split)
        )
        ours = datasets.VOCSegmentation(voc_roots, year=year, image_set=split, target_format="mask")
        assert len(ours) == len(theirs) > 0 and ours.target_format == "mask"
        for i in range(len(ours)):
            (image, mask), (expected_image, expected_mask) = ours[i], theirs[i]
            assert type(image) is tv_tensors.Image and image.dtype == torch.uint8
            assert torch.equal(image, torch.from_numpy(np.array(expected_image)).permute(2, 0, 1))
            assert type(mask) is type(expected_mask) is tv_tensors.Mask
            assert mask.dtype == expected_mask.dtype == torch.uint8
            assert mask.shape == expected_mask.shape == (1, 48, 64)
            assert torch.equal(mask, expected_mask)
            assert 255 in mask.unique().tolist()  # the void border is kept


def test_mask_target_with_transforms_v2(voc_roots):
    from torchvision.transforms import v2

    transforms = v2.Compose(
        [v2.RandomHorizontalFlip(p=1.0), v2.Resize((24, 40)), v2.ToDtype(torch.float32, scale=True)]
    )
    ours = datasets.VOCSegmentation(voc_roots, target_format="mask", transforms=transforms)
    raw = datasets.VOCSegmentation(voc_roots, target_format="mask")
    image, mask = ours[0]
    assert image.dtype == torch.float32 and image.shape == (3, 24, 40)
    assert mask.dtype == torch.uint8 and mask.shape == (1, 24, 40)  # not scaled, nearest
    assert set(mask.unique().tolist()) <= set(raw[0][1].unique().tolist())


def test_segmentation_target_format_is_validated(voc_roots):
    with pytest.raises(
        ValueError,
        match=r"Unknown value 'boxes' for argument target_format. "
        r"Valid values are \{'pil', 'mask'\}.",
    ):
        datasets.VOCSegmentation(voc_roots, target_format="boxes")
    assert datasets.VOCSegmentation(voc_roots).target_format == "pil"


@pytest.mark.parametrize("damage", ["rgb", "16-bit", "wrong-size", "garbage"])
def test_bad_mask_file_is_named(voc_roots, tmp_path, damage):
    from PIL import Image

    from conveyor.errors import DecodeError

    root = tmp_path / "copy"
    shutil.copytree(voc_roots / "VOCdevkit" / "VOC2012", root / "VOCdevkit" / "VOC2012")
    ours = datasets.VOCSegmentation(root, target_format="mask")
    bad = ours.masks[0]
    if damage == "rgb":
        Image.open(bad).convert("RGB").save(bad)
        match = "single-channel 8-bit"
    elif damage == "16-bit":
        Image.fromarray(np.zeros((48, 64), np.uint16)).save(bad)
        match = "single-channel 8-bit"
    elif damage == "wrong-size":
        Image.open(bad).resize((10, 10)).save(bad)
        match = "differs from the image size"
    else:
        open(bad, "wb").write(b"not a png")
        match = "format"
    with pytest.raises(DecodeError, match=match) as info:
        ours[0]
    assert bad in str(info.value)
