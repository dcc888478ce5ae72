"""Native segmentation: ``VOCSegmentation(target_format="mask")`` with joint v2 transforms runs on
the C++ engine, and its batches equal torchvision's VOCSegmentation wrapped with
``wrap_dataset_for_transforms_v2`` + torch's DataLoader (deterministic pipelines; random crops are
compared per sample with the crop position recovered from the engine's output)."""

import shutil

import pytest
import torch
import torchvision
from PIL import Image
from torchvision import tv_tensors
from torchvision.datasets import wrap_dataset_for_transforms_v2
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from conveyor import DataLoader, datasets

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
LONG_MASKS = {tv_tensors.Image: torch.float32, tv_tensors.Mask: torch.int64, "others": None}
WORKERS = [0, 2]


@pytest.fixture(scope="module")
def voc_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("segvoc")
    datasets.make_synthetic_voc(root, num_images=20, image_size=(200, 150), seed=5)
    return root


def ours(root, tf, **kwargs):
    return datasets.VOCSegmentation(
        root, image_set="trainval", transforms=tf, target_format="mask", **kwargs
    )


def reference(root, tf):
    return wrap_dataset_for_transforms_v2(
        torchvision.datasets.VOCSegmentation(root, image_set="trainval", transforms=tf)
    )


def conveyor_classes():
    from conveyor import transforms as T

    return [
        T.ToImage(),
        T.RandomResizedCrop(72, scale=(1.0, 1.0), ratio=(4 / 3, 4 / 3)),
        T.RandomHorizontalFlip(0.0),
        T.ToDtype(torch.float32, scale=True),
    ]


# torchvision's dataset gives PIL images, so every pipeline starts with ToImage (a no-op on
# conveyor's tensors)
PIPELINES = {
    "resize-normalize": [
        v2.ToImage(),
        v2.Resize((96, 80)),
        v2.RandomHorizontalFlip(0.0),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(MEAN, STD),
    ],
    "resize-shorter-side": [
        v2.ToImage(),
        v2.Resize(64, max_size=90),
        v2.ToDtype(torch.float32, scale=True),
    ],
    "upscale-hflip": [v2.ToImage(), v2.Resize((310, 420)), v2.RandomHorizontalFlip(1.0)],
    "center-crop-smaller": [
        v2.ToImage(),
        v2.CenterCrop((120, 90)),
        v2.ToDtype(LONG_MASKS, scale=True),
    ],
    "center-crop-larger-pads": [
        v2.ToImage(),
        v2.CenterCrop(230),
        v2.ToDtype(torch.float32, scale=True),
    ],
    "pad-fill": [
        v2.ToImage(),
        v2.Pad([3, 5, 7, 2], fill=9),
        v2.Resize((64, 64)),
        v2.ToDtype(LONG_MASKS, scale=True),
        v2.Normalize(MEAN, STD),
    ],
    "pad-int-zero": [v2.ToImage(), v2.Pad(4), v2.RandomHorizontalFlip(1.0)],
    "conveyor-classes-full-crop": conveyor_classes(),
}


@pytest.mark.parametrize("workers", WORKERS)
@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_batches_equal_torchvision_and_torch_dataloader(voc_root, name, workers):
    tf = v2.Compose(PIPELINES[name])
    loader = DataLoader(
        ours(voc_root, tf),
        batch_size=6,
        shuffle=True,
        num_workers=workers,
        generator=torch.Generator().manual_seed(1),
    )
    torch_loader = torch.utils.data.DataLoader(
        reference(voc_root, tf),
        batch_size=6,
        shuffle=True,
        generator=torch.Generator().manual_seed(1),
    )
    batches = list(loader)
    expected = list(torch_loader)
    assert loader.stats.path == "native" and len(batches) == len(expected) == 4
    for (images, masks), (ref_images, ref_masks) in zip(batches, expected):
        assert type(images) is type(ref_images) is torch.Tensor
        assert images.shape == ref_images.shape and images.dtype == ref_images.dtype
        # in uint8 levels: the engine's bilinear resampling is bit-exact, its fused
        # ToDtype + Normalize may differ in the last float bit
        levels = 255.0 * max(STD) if name in ("resize-normalize", "pad-fill") else 255.0
        if not images.is_floating_point():
            levels = 1.0
        assert (images.float() - ref_images.float()).abs().max() * levels <= 1e-3
        assert type(masks) is torch.Tensor and masks.shape == ref_masks.shape
        assert masks.dtype == ref_masks.dtype
        assert torch.equal(masks, ref_masks)  # nearest-neighbour: exactly torchvision's


def test_masks_keep_palette_indices_and_void_border(voc_root):
    tf = v2.Compose([v2.ToImage(), v2.Resize((100, 100)), v2.ToDtype(LONG_MASKS, scale=True)])
    values = set()
    for _, masks in DataLoader(ours(voc_root, tf), batch_size=5, num_workers=2):
        assert masks.dtype == torch.int64 and masks.shape[1:] == (1, 100, 100)
        values |= set(masks.unique().tolist())
    assert 255 in values and 0 in values and values <= set(range(21)) | {255}
    assert len(values - {0, 255}) >= 3


def test_mask_dtype_float_is_not_scaled(voc_root):
    tf = v2.Compose(
        [
            v2.ToImage(),
            v2.Resize((40, 40)),
            v2.ToDtype(
                {tv_tensors.Image: torch.float16, tv_tensors.Mask: torch.float32, "others": None},
                scale=True,
            ),
        ]
    )
    ((images, masks),) = [next(iter(DataLoader(ours(voc_root, tf), batch_size=4)))]
    ((ref_images, ref_masks),) = [
        next(iter(torch.utils.data.DataLoader(reference(voc_root, tf), batch_size=4)))
    ]
    assert images.dtype == torch.float16 and masks.dtype == torch.float32
    assert masks.max() == 255 and torch.equal(masks, ref_masks)
    assert torch.allclose(images.float(), ref_images.float(), atol=1e-3)


def _recover_crop(mask, source_mask, crop_h, crop_w):
    """The (top, left) positions whose nearest resize of the source mask equals ``mask``."""
    out_h, out_w = mask.shape[-2:]
    ramp_y = tv_tensors.Mask(
        torch.arange(crop_h, dtype=torch.uint8).view(1, crop_h, 1).expand(1, crop_h, 2)
    )
    ramp_x = tv_tensors.Mask(
        torch.arange(crop_w, dtype=torch.uint8).view(1, 1, crop_w).expand(1, 2, crop_w)
    )
    ys = F.resize(ramp_y, [out_h, 2])[0, :, 0].long()
    xs = F.resize(ramp_x, [2, out_w])[0, 0, :].long()
    source = source_mask[0]
    height, width = source.shape
    tops = torch.arange(height - crop_h + 1)
    lefts = torch.arange(width - crop_w + 1)
    rows = source[(tops[:, None] + ys[None, :])]  # [T, out_h, W]
    grid = rows[:, :, (lefts[:, None] + xs[None, :])]  # [T, out_h, L, out_w]
    match = (grid == mask[0][None, :, None, :]).all(dim=3).all(dim=1)  # [T, L]
    return [tuple(p) for p in match.nonzero().tolist()]


@pytest.mark.parametrize("workers", WORKERS)
def test_random_resized_crop_matches_torchvision_at_the_same_crop(voc_root, workers):
    # scale and ratio fixed: every crop is 100x75 (w x h); only its position is random
    tf = v2.Compose(
        [
            v2.ToImage(),
            v2.RandomResizedCrop((48, 64), scale=(0.25, 0.25), ratio=(4 / 3, 4 / 3)),
            v2.ToDtype(torch.float32, scale=True),
        ]
    )
    loader = DataLoader(ours(voc_root, tf), batch_size=5, shuffle=True, seed=3, num_workers=workers)
    raw = ours(voc_root, None)
    positions = set()
    order = list(loader.sampler)
    for number, (images, masks) in enumerate(loader):
        assert images.shape == (len(images), 3, 48, 64) and masks.dtype == torch.uint8
        for slot in range(len(images)):
            source_image, source_mask = raw[order[number * 5 + slot]]
            candidates = _recover_crop(masks[slot], source_mask, 75, 100)
            assert candidates, "the mask is no nearest-resized crop of the source mask"
            errors = []
            for top, left in candidates:
                expected = F.resized_crop(
                    source_image, top, left, 75, 100, [48, 64], antialias=True
                )
                errors.append((images[slot] * 255 - expected.float()).abs().max().item())
            assert min(errors) <= 1.0 + 1e-3
            positions.add(candidates[0])
    assert loader.stats.path == "native" and len(positions) > 5  # the position does vary


def test_random_crop_with_padding_moves_mask_like_the_image(voc_root):
    tf = v2.Compose([v2.ToImage(), v2.RandomCrop((160, 210), pad_if_needed=True, fill=7)])
    raw = ours(voc_root, None)
    loader = DataLoader(ours(voc_root, tf), batch_size=4, seed=9)
    for number, (images, masks) in enumerate(loader):
        for slot in range(len(images)):
            source_image, source_mask = raw[number * 4 + slot]
            # v2's pad_if_needed pads both sides by the whole shortfall (10 pixels here)
            padded_image = F.pad(source_image, [10, 10, 10, 10], fill=7)
            padded_mask = F.pad(source_mask, [10, 10, 10, 10], fill=7)
            candidates = _recover_crop(masks[slot], padded_mask, 160, 210)
            assert any(
                torch.equal(images[slot], F.crop(padded_image, top, left, 160, 210))
                for top, left in candidates
            )


def test_random_augmentations_identical_across_thread_counts(voc_root):
    tf = v2.Compose(
        [
            v2.ToImage(),
            v2.RandomResizedCrop(56),
            v2.RandomHorizontalFlip(),
            v2.ToDtype(LONG_MASKS, scale=True),
            v2.Normalize(MEAN, STD),
        ]
    )
    runs = []
    for workers in (0, 2, 3):
        loader = DataLoader(
            ours(voc_root, tf), batch_size=4, shuffle=True, seed=11, num_workers=workers
        )
        runs.append(list(loader))
    for other in runs[1:]:
        for (images_a, masks_a), (images_b, masks_b) in zip(runs[0], other):
            assert torch.equal(images_a, images_b) and torch.equal(masks_a, masks_b)


@pytest.mark.parametrize("workers", WORKERS)
def test_native_equals_python_path_of_the_same_dataset(voc_root, workers):
    tf = v2.Compose(
        [
            v2.ToImage(),
            v2.Resize((90, 70)),
            v2.RandomHorizontalFlip(0.0),
            v2.ToDtype(LONG_MASKS, scale=True),
            v2.Normalize(MEAN, STD),
        ]
    )
    native = DataLoader(ours(voc_root, tf), batch_size=6, num_workers=workers)
    python = torch.utils.data.DataLoader(ours(voc_root, tf), batch_size=6)
    for (images_a, masks_a), (images_b, masks_b) in zip(native, python):
        assert (images_a - images_b).abs().max() <= 1e-5
        assert torch.equal(masks_a, masks_b)
    assert native.stats.path == "native"


def test_custom_collate_gets_image_and_mask_tv_tensors(voc_root):
    # (sizes above half the source: the engine decodes at full scale, bit-exact)
    tf = v2.Compose([v2.Resize((96, 96)), v2.ToDtype(LONG_MASKS, scale=True)])
    loader = DataLoader(ours(voc_root, tf), batch_size=3, collate_fn=lambda samples: samples)
    samples = next(iter(loader))
    expected = [ours(voc_root, tf)[i] for i in range(3)]
    for (image, mask), (ref_image, ref_mask) in zip(samples, expected):
        assert isinstance(image, tv_tensors.Image) and isinstance(mask, tv_tensors.Mask)
        assert mask.shape == (1, 96, 96) and mask.dtype == torch.int64
        assert torch.equal(mask, ref_mask) and torch.allclose(image, ref_image, atol=1e-6)
    assert loader.stats.path == "native"


def test_unknown_transform_runs_in_python_on_image_and_mask(voc_root):
    tf = v2.Compose(
        [
            v2.ToImage(),
            v2.Resize((64, 64)),
            v2.RandomRotation((90, 90)),  # deterministic, not native
            v2.ToDtype(LONG_MASKS, scale=True),
        ]
    )
    loader = DataLoader(ours(voc_root, tf), batch_size=5)
    with pytest.warns(UserWarning, match="RandomRotation"):
        batches = list(loader)
    expected = list(torch.utils.data.DataLoader(reference(voc_root, tf), batch_size=5))
    for (images, masks), (ref_images, ref_masks) in zip(batches, expected):
        assert torch.allclose(images, ref_images, atol=1e-6) and torch.equal(masks, ref_masks)
    assert loader.stats.path == "native"


def test_image_only_transform_leaves_the_mask_untransformed(voc_root):
    tf = v2.Compose([v2.Resize((50, 50)), v2.ToDtype(torch.float32, scale=True)])
    ds = datasets.VOCSegmentation(
        voc_root, image_set="trainval", transform=tf, target_format="mask"
    )
    samples = next(iter(DataLoader(ds, batch_size=4, collate_fn=lambda s: s)))
    for index, (image, mask) in enumerate(samples):
        assert image.shape == (3, 50, 50)
        assert isinstance(mask, tv_tensors.Mask) and torch.equal(mask, ds[index][1])


def test_pil_target_format_keeps_the_python_path(voc_root):
    ds = datasets.VOCSegmentation(
        voc_root, image_set="trainval", transforms=v2.Compose([v2.ToImage(), v2.Resize((16, 16))])
    )
    loader = DataLoader(ds, batch_size=4)
    with pytest.warns(UserWarning, match='target_format="pil"'):  # it says why, once
        list(loader)
    assert loader.stats.path == "python" and "target_format" in loader.stats.python_reason


def _broken_copy(voc_root, tmp_path, name):
    root = tmp_path / name
    shutil.copytree(voc_root, root)
    return root


def _error_text(info):
    return str(info.value) + "\n".join(getattr(info.value, "__notes__", []))


class Subclassed(datasets.VOCSegmentation):
    """A user subclass: conveyor's loader runs it on the Python path."""


@pytest.mark.parametrize("native", [True, False])
@pytest.mark.parametrize("damage", ["garbage", "truncated", "missing", "rgb", "wrong-size"])
def test_bad_mask_raises_naming_file_and_sample_or_is_skipped(voc_root, tmp_path, damage, native):
    from conveyor.errors import DecodeError

    root = _broken_copy(voc_root, tmp_path, damage)
    tf = v2.Compose([v2.ToImage(), v2.Resize((48, 48)), v2.ToDtype(torch.float32, scale=True)])
    cls = datasets.VOCSegmentation if native else Subclassed
    dataset = cls(root, image_set="trainval", transforms=tf, target_format="mask")
    bad = dataset.masks[6]
    if damage == "garbage":
        open(bad, "wb").write(b"\x89PNG\r\n\x1a\n not a png at all")
    elif damage == "truncated":
        data = open(bad, "rb").read()
        open(bad, "wb").write(data[: len(data) // 2])
    elif damage == "missing":
        import os

        os.remove(bad)
    elif damage == "rgb":
        Image.open(bad).convert("RGB").save(bad)
    else:
        Image.open(bad).resize((20, 10)).save(bad)
    loader = DataLoader(dataset, batch_size=4)
    iterator = iter(loader)
    next(iterator)
    expected = FileNotFoundError if damage == "missing" else DecodeError
    with pytest.raises(expected) as info:
        next(iterator)
    text = _error_text(info)
    assert bad in text and ("sample 6" in text or "sample index 6" in text)
    skipping = DataLoader(
        cls(root, image_set="trainval", transforms=tf, target_format="mask"),
        batch_size=4,
        on_error="skip",
        num_workers=2,
    )
    sizes = [len(images) for images, _ in skipping]
    assert sizes == [4, 3, 4, 4, 4]
    assert [index for index, _ in skipping.stats.skipped] == [6]
    assert skipping.stats.path == ("native" if native else "python")


@pytest.mark.parametrize("workers", WORKERS)
def test_segmentation_collate_native_equals_torch_dataloader(voc_root, workers):
    from conveyor.collate import segmentation_collate

    tf = v2.Compose(
        [
            v2.ToImage(),
            v2.Resize((80, 80)),
            v2.RandomHorizontalFlip(0.0),
            v2.ToDtype(LONG_MASKS, scale=True),
            v2.Normalize(MEAN, STD),
        ]
    )
    loader = DataLoader(
        ours(voc_root, tf), batch_size=6, num_workers=workers, collate_fn=segmentation_collate
    )
    expected = torch.utils.data.DataLoader(
        reference(voc_root, tf), batch_size=6, collate_fn=segmentation_collate
    )
    count = 0
    for (images, masks), (ref_images, ref_masks) in zip(loader, expected):
        assert images.shape == (len(images), 3, 80, 80) and masks.shape == (len(images), 80, 80)
        assert masks.dtype == torch.int64 and type(masks) is torch.Tensor
        assert (images - ref_images).abs().max() <= 1e-5 and torch.equal(masks, ref_masks)
        count += len(images)
    assert count == 20 and loader.stats.path == "native"


def test_no_transforms_gives_the_datasets_items(voc_root):
    ds = ours(voc_root, None)
    loader = DataLoader(ds, batch_size=4, num_workers=2, collate_fn=lambda samples: samples)
    count = 0
    for number, batch in enumerate(loader):
        for slot, (image, mask) in enumerate(batch):
            expected_image, expected_mask = ds[number * 4 + slot]
            assert type(image) is tv_tensors.Image and type(mask) is tv_tensors.Mask
            assert torch.equal(image, expected_image) and torch.equal(mask, expected_mask)
            count += 1
    assert count == len(ds) and loader.stats.path == "native"


def test_per_type_dtype_without_a_mask_entry_raises_like_torchvision(voc_root):
    tf = v2.Compose(
        [
            v2.ToImage(),
            v2.Resize((40, 40)),
            v2.ToDtype({tv_tensors.Image: torch.float32}, scale=True),
        ]
    )
    with pytest.raises(ValueError, match="No dtype was specified for type") as expected:
        next(iter(torch.utils.data.DataLoader(reference(voc_root, tf), batch_size=2)))
    loader = DataLoader(ours(voc_root, tf), batch_size=2)
    with pytest.warns(UserWarning, match="no entry for Mask targets"):
        with pytest.raises(ValueError) as got:
            next(iter(loader))
    assert str(got.value) == str(expected.value) and "sample" in _error_text(got)
