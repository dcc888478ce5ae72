"""torchvision's segmentation reference transforms on the native path.

``references/segmentation/train.py --dataset voc`` runs ``VOCSegmentation(target_format="pil")``
with the reference's own joint classes (``presets.SegmentationPresetTrain``). The engine runs
them with two ops made for them, tested here against torchvision's public kernels on PIL
images, exactly as the reference calls them: ``resize`` / ``random_resize`` with
``mask_interpolation="pil_nearest"`` (PIL's NEAREST) and ``pad_if_smaller`` (right/bottom).

The reference's code is not part of this repository. Recognising its classes (by their exact
source) is tested with local classes of the same names whose source differs: they stay in
Python, with a warning naming the class and ``loader.stats.python_reason`` saying why. Where a
copy of torchvision's ``references/`` is present (``CONVEYOR_VISION_REFERENCES``, default
``/work/vision-refs``), the real classes are also checked end to end against the reference run in
Python on the same samples.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as F
from PIL import Image
from torchvision.transforms import v2

from conveyor import DataLoader, datasets
from conveyor.loader.engine import Engine, IndexBatches
from conveyor.loader.planner import plan_transforms
from conveyor.loader.reference_transforms import delegated_transforms

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
REFERENCES = Path(os.environ.get("CONVEYOR_VISION_REFERENCES", "/work/vision-refs"))


def _tree(root: Path, sizes):
    """PNG images (lossless: the engine's pixels equal PIL's) and P-mode masks of ``sizes``."""
    rng = np.random.default_rng(3)
    images, masks = [], []
    for i, (width, height) in enumerate(sizes):
        image = root / f"{i:03d}.png"
        Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(image)
        mask = Image.fromarray(rng.integers(0, 21, (height, width)).astype(np.uint8), mode="P")
        mask.putpalette([c for k in range(256) for c in (k, 255 - k, k // 2)])
        mask.save(root / f"{i:03d}_mask.png")
        images.append(str(image))
        masks.append(str(root / f"{i:03d}_mask.png"))
    return images, masks


def _one_batch(ops, images, masks):
    engine = Engine(ops, images, mask_paths=masks, num_threads=1)
    engine.start_epoch(0, IndexBatches.regular(range(len(images)), 1))
    out = []
    while (batch := engine.next_batch()) is not None:
        image = batch.images[0] if isinstance(batch.images, list) else batch.images[0]
        mask = batch.masks[0] if isinstance(batch.masks, list) else batch.masks[0]
        out.append((int(batch.indices[0]), np.asarray(image), np.asarray(mask)))
    return sorted(out, key=lambda item: item[0])


# sizes with exact ties for PIL's half-pixel arithmetic (10 -> 3, 2 -> 1), odd scales, upscales
RESIZES = [((10, 6), (3, 4)), ((2, 9), (1, 5)), ((375, 500), (260, 346)), ((7, 5), (23, 17))]


@pytest.mark.parametrize("source, target", RESIZES)
def test_pil_nearest_masks_equal_pils_nearest_resize(tmp_path, source, target):
    images, masks = _tree(tmp_path, [source])
    ops = [{"op": "resize", "size": [target[1], target[0]], "mask_interpolation": "pil_nearest"}]
    ((_, _, mask),) = _one_batch(ops, images, masks)
    expected = np.array(Image.open(masks[0]).resize(target, Image.NEAREST))
    np.testing.assert_array_equal(mask, expected)


def test_torch_nearest_stays_the_default_for_masks(tmp_path):
    # v2 on tv_tensors.Mask uses torch's "nearest", which differs from PIL's on these sizes
    images, masks = _tree(tmp_path, [(10, 6)])
    ((_, _, mask),) = _one_batch([{"op": "resize", "size": [4, 3]}], images, masks)
    source = torch.from_numpy(np.array(Image.open(masks[0])))[None, None].float()
    torch_nearest = torch.nn.functional.interpolate(source, size=(4, 3), mode="nearest")
    np.testing.assert_array_equal(mask, torch_nearest[0, 0].to(torch.uint8).numpy())
    assert not np.array_equal(mask, np.array(Image.open(masks[0]).resize((3, 4), Image.NEAREST)))


def test_random_resize_image_matches_pils_antialiased_bilinear_within_one_level(tmp_path):
    images, masks = _tree(tmp_path, [(375, 500)])
    ops = [
        {
            "op": "random_resize",
            "min_size": 260,
            "max_size": 261,
            "mask_interpolation": "pil_nearest",
        }
    ]
    ((_, image, mask),) = _one_batch(ops, images, masks)
    source = Image.open(images[0]).convert("RGB")
    expected = F.pil_to_tensor(F.resize(source, 260, antialias=True)).numpy()
    assert image.shape == expected.shape == (3, 346, 260)
    assert np.abs(image.astype(int) - expected.astype(int)).max() <= 1
    mask_expected = F.resize(Image.open(masks[0]), 260, interpolation=v2.InterpolationMode.NEAREST)
    np.testing.assert_array_equal(mask, np.array(mask_expected))


@pytest.mark.parametrize("size", [(30, 20), (50, 10), (10, 50), (64, 64), (80, 90)])
def test_pad_if_smaller_pads_right_and_bottom_with_0_and_255(tmp_path, size):
    images, masks = _tree(tmp_path, [size])
    ops = [{"op": "pad_if_smaller", "size": 64, "fill": 0, "mask_fill": 255}]
    ((_, image, mask),) = _one_batch(ops, images, masks)
    width, height = size
    pad = (0, 0, max(64 - width, 0), max(64 - height, 0))  # the reference's pad_if_smaller
    expected_image = F.pil_to_tensor(F.pad(Image.open(images[0]).convert("RGB"), pad, fill=0))
    expected_mask = np.array(F.pad(Image.open(masks[0]), pad, fill=255))
    np.testing.assert_array_equal(image, expected_image.numpy())
    np.testing.assert_array_equal(mask, expected_mask)


def test_the_reference_chain_from_public_kernels(tmp_path):
    """RandomResize(200, 200) + flip + RandomCrop(300) (+ pad) as the engine's ops, equal to the
    reference's calls of torchvision's PIL kernels (a fixed size and a crop larger than the
    image: no random parameter left)."""
    images, masks = _tree(tmp_path, [(150, 120), (120, 160)])
    ops = [
        {"op": "random_resize", "min_size": 200, "max_size": 201},
        {"op": "hflip", "p": 1.0},
        {"op": "pad_if_smaller", "size": 300, "fill": 0, "mask_fill": 255},
        {"op": "random_crop", "size": 300},
    ]
    ops[0]["mask_interpolation"] = "pil_nearest"
    for index, image, mask in _one_batch(ops, images, masks):
        pil_image = Image.open(images[index]).convert("RGB")
        pil_mask = Image.open(masks[index])
        pil_image = F.hflip(F.resize(pil_image, 200, antialias=True))
        pil_mask = F.hflip(F.resize(pil_mask, 200, interpolation=v2.InterpolationMode.NEAREST))
        width, height = pil_image.size
        pad = (0, 0, max(300 - width, 0), max(300 - height, 0))
        expected_image = F.pil_to_tensor(F.pad(pil_image, pad, fill=0)).numpy()
        expected_mask = np.array(F.pad(pil_mask, pad, fill=255))
        np.testing.assert_array_equal(mask, expected_mask)
        assert np.abs(image.astype(int) - expected_image.astype(int)).max() <= 1


def test_pad_if_smaller_rejects_a_bad_size():
    with pytest.raises(ValueError, match="pad_if_smaller"):
        Engine([{"op": "pad_if_smaller", "size": 0}], ["a.png"])
    with pytest.raises(ValueError, match="mask_interpolation"):
        Engine([{"op": "resize", "size": 8, "mask_interpolation": "bilinear"}], ["a.png"])


# ----------------------------------------------------------------- presets and recognition


class Delegating:
    def __init__(self, transforms):
        self.transforms = transforms

    def __call__(self, img, target):
        return self.transforms(img, target)


class NotOnlyDelegating(Delegating):
    def __call__(self, img, target):
        img, target = self.transforms(img, target)
        return img, target


class PropertyTransforms:
    def __init__(self, transforms):
        self._transforms = transforms

    @property
    def transforms(self):
        return self._transforms

    def __call__(self, img, target):
        return self.transforms(img, target)


def test_presets_are_seen_through_only_when_they_only_delegate():
    inner = v2.Compose([v2.RandomHorizontalFlip()])
    assert delegated_transforms(Delegating(inner), joint=True) is inner
    assert delegated_transforms(Delegating(inner), joint=False) is None  # called with 1 arg
    assert delegated_transforms(NotOnlyDelegating(inner), joint=True) is None
    assert delegated_transforms(PropertyTransforms(inner), joint=True) is None
    pipeline = v2.Compose([v2.ToImage(), v2.RandomHorizontalFlip(), v2.ToDtype(torch.float32)])
    assert plan_transforms(Delegating(pipeline), joint=True).fully_native
    plan = plan_transforms(NotOnlyDelegating(pipeline), joint=True)
    assert plan.blocker.endswith("NotOnlyDelegating") and not plan.ops


@pytest.fixture(scope="module")
def voc_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("refvoc")
    datasets.make_synthetic_voc(root, num_images=12, image_size=(200, 150), seed=9)
    return root


# the same names as the reference's classes, another source: never recognised
LOOKALIKES = """
import random
from torchvision.transforms import functional as F


class Compose:
    def __init__(self, transforms):
        self.transforms = transforms

    def __call__(self, image, target):
        for t in self.transforms:
            image, target = t(image, target)
        return image, target


class RandomResize:
    def __init__(self, min_size, max_size=None):
        self.min_size, self.max_size = min_size, max_size or min_size

    def __call__(self, image, target):  # another version: not the reference's
        size = random.randint(self.min_size, self.max_size)
        return F.resize(image, size), F.resize(target, size)
"""


def _import(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _loader_warnings(dataset, **kwargs):
    loader = DataLoader(dataset, batch_size=2, num_workers=0, collate_fn=lambda b: b, **kwargs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        batch = next(iter(loader))
    messages = [str(w.message) for w in caught if "conveyor.DataLoader" in str(w.message)]
    return loader, batch, messages


def test_lookalike_reference_classes_stay_in_python_and_say_why(voc_root, tmp_path):
    (tmp_path / "lookalike_transforms.py").write_text(LOOKALIKES)
    module = _import(tmp_path / "lookalike_transforms.py", "lookalike_transforms")
    pipeline = module.Compose([module.RandomResize(100, 120)])
    dataset = datasets.VOCSegmentation(voc_root, image_set="trainval", transforms=pipeline)
    loader, batch, messages = _loader_warnings(dataset)
    assert loader.stats.path == "python"
    # its Compose is the reference's very source (recognised); its RandomResize is not
    assert "lookalike_transforms.RandomResize" in loader.stats.python_reason
    assert len(messages) == 1 and loader.stats.python_reason in messages[0]
    image, mask = batch[0]
    assert isinstance(image, Image.Image) and isinstance(mask, Image.Image)  # Python's items


def test_v2_transforms_on_a_pil_mask_warn_once_and_stats_say_why(voc_root):
    pipeline = v2.Compose([v2.ToImage(), v2.RandomHorizontalFlip(), v2.ToDtype(torch.float32)])
    dataset = datasets.VOCSegmentation(voc_root, image_set="trainval", transforms=pipeline)
    loader, _, messages = _loader_warnings(dataset)
    assert loader.stats.path == "python"
    reason = loader.stats.python_reason
    assert 'target_format="pil"' in reason and "v2.ToImage" in reason
    assert "second image" in reason and 'target_format="mask"' in reason
    assert len(messages) == 1 and reason in messages[0]
    with warnings.catch_warnings(record=True) as caught:  # once per loader, not per epoch
        warnings.simplefilter("always")
        next(iter(loader))
    assert not [w for w in caught if "conveyor.DataLoader" in str(w.message)]


# ------------------------------------------------------- the real reference, where present

needs_references = pytest.mark.skipif(
    not (REFERENCES / "references" / "segmentation" / "transforms.py").is_file(),
    reason=f"no copy of torchvision's references/ at {REFERENCES} (CONVEYOR_VISION_REFERENCES)",
)


@pytest.fixture
def reference():
    folder = REFERENCES / "references" / "segmentation"
    saved = {name: sys.modules.get(name) for name in ("transforms", "presets")}
    sys.path.insert(0, str(folder))
    try:
        sys.modules.pop("transforms", None)
        sys.modules.pop("presets", None)
        transforms = _import(folder / "transforms.py", "transforms")
        presets = _import(folder / "presets.py", "presets")
        yield transforms, presets
    finally:
        sys.path.remove(str(folder))
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def _python_reference(root, index, pipeline):
    dataset = datasets.VOCSegmentation(root, image_set="trainval")
    image, mask = dataset[index]
    return pipeline(image, mask)


@needs_references
@pytest.mark.parametrize("workers", [0, 2])
def test_the_reference_pipeline_runs_natively_and_equals_it(voc_root, reference, workers):
    transforms, _ = reference
    # a fixed size and a crop no smaller than the image: no random parameter but the flip's
    pipeline = transforms.Compose(
        [
            transforms.RandomResize(180, 180),
            transforms.RandomHorizontalFlip(0.0),
            transforms.RandomCrop(260),
            transforms.PILToTensor(),
            transforms.ToDtype(torch.float, scale=True),
            transforms.Normalize(mean=MEAN, std=STD),
        ]
    )
    dataset = datasets.VOCSegmentation(voc_root, image_set="trainval", transforms=pipeline)
    loader = DataLoader(dataset, batch_size=3, num_workers=workers, collate_fn=lambda b: b)
    seen = 0
    for batch in loader:
        for (image, mask), index in zip(batch, range(seen, seen + len(batch))):
            expected_image, expected_mask = _python_reference(voc_root, index, pipeline)
            assert type(image) is torch.Tensor and type(mask) is torch.Tensor
            assert mask.dtype == torch.int64 and mask.shape == expected_mask.shape
            torch.testing.assert_close(mask, expected_mask, rtol=0, atol=0)
            # images: PIL's antialiased bilinear vs torch's kernel, within one level
            scale = torch.tensor(STD)[:, None, None] * 255
            assert ((image - expected_image).abs() * scale).max() <= 1.0 + 1e-3
        seen += len(batch)
    assert seen == len(dataset)
    assert loader.stats.path == "native" and loader.stats.python_reason == ""


@needs_references
def test_the_training_preset_runs_natively(voc_root, reference):
    _, presets = reference
    preset = presets.SegmentationPresetTrain(base_size=100, crop_size=96)
    dataset = datasets.VOCSegmentation(voc_root, image_set="trainval", transforms=preset)
    loader = DataLoader(dataset, batch_size=4, num_workers=2, collate_fn=lambda b: b)
    for batch in loader:
        for image, mask in batch:
            assert image.shape == (3, 96, 96) and image.dtype == torch.float32
            assert mask.shape == (96, 96) and mask.dtype == torch.int64
            assert set(mask.unique().tolist()) <= set(range(21)) | {255}
    assert loader.stats.path == "native" and loader.stats.python_reason == ""


@needs_references
def test_a_patched_reference_class_stays_in_python(voc_root, reference, monkeypatch):
    transforms, _ = reference
    monkeypatch.setattr(transforms.RandomHorizontalFlip, "__call__", lambda self, i, t: (i, t))
    pipeline = transforms.Compose([transforms.RandomHorizontalFlip(1.0), transforms.PILToTensor()])
    dataset = datasets.VOCSegmentation(voc_root, image_set="trainval", transforms=pipeline)
    loader, _, messages = _loader_warnings(dataset)
    assert loader.stats.path == "python"
    assert "transforms.RandomHorizontalFlip" in loader.stats.python_reason and messages


@pytest.fixture
def detection_presets():
    folder = REFERENCES / "references" / "detection"
    saved = {name: sys.modules.get(name) for name in ("transforms", "presets")}
    sys.path.insert(0, str(folder))
    try:
        sys.modules.pop("transforms", None)
        _import(folder / "transforms.py", "transforms")
        yield _import(folder / "presets.py", "presets")
    finally:
        sys.path.remove(str(folder))
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


@needs_references
def test_the_detection_preset_runs_natively_with_plain_tensors(voc_root, detection_presets):
    import torchvision
    from torchvision.datasets import wrap_dataset_for_transforms_v2

    preset = detection_presets.DetectionPresetTrain(
        data_augmentation="hflip", hflip_prob=0.0, backend="tensor", use_v2=True
    )
    ours = datasets.VOCDetection(
        voc_root, image_set="trainval", transforms=preset, target_format="boxes"
    )
    theirs = wrap_dataset_for_transforms_v2(
        torchvision.datasets.VOCDetection(voc_root, image_set="trainval", transforms=preset),
        target_keys=("boxes", "labels"),
    )
    loader = DataLoader(ours, batch_size=3, num_workers=2, collate_fn=lambda b: b)
    index = 0
    for batch in loader:
        for image, target in batch:
            expected_image, expected_target = theirs[index]
            # ToPureTensor: plain tensors, as torchvision's pipeline returns them
            assert type(image) is torch.Tensor and type(target["boxes"]) is torch.Tensor
            assert image.dtype == torch.float32 and image.shape == expected_image.shape
            assert (image - expected_image).abs().max() <= 3 / 255  # JPEG decoders differ
            # conveyor's typed boxes are float32 (torchvision's VOC wrapper keeps the XML's ints)
            torch.testing.assert_close(target["boxes"], expected_target["boxes"].float())
            assert torch.equal(target["labels"], expected_target["labels"])
            index += 1
    assert index == len(ours)
    assert loader.stats.path == "native" and loader.stats.python_reason == ""
