"""The validation pipeline Resize then CenterCrop on the native path: the engine computes only
the crop's window of the resize and decodes only the JPEG region that window reads. Batches must
equal torchvision + torch's DataLoader (images, boxes and masks), and the images must be exactly
torchvision's resize-then-crop of the whole image decoded by the same JPEG decoder."""

import warnings

import pytest
import torch
import torchvision
from torchvision.datasets import wrap_dataset_for_transforms_v2
from torchvision.transforms import v2

from conveyor import DataLoader, datasets
from conveyor.collate import detection_collate
from conveyor.io import read_image

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
WORKERS = [0, 2]
LONG_MASKS = {
    torchvision.tv_tensors.Image: torch.float32,
    torchvision.tv_tensors.Mask: torch.int64,
    "others": None,
}

# Geometric part of each pipeline: (ops, output (H, W)). Flip probabilities are 0 or 1 so that
# torchvision draws the same. Sizes keep the engine off DCT-scaled decoding (which is close to,
# not exactly, the full decode) so that the comparisons can be exact.
GEOMETRY = {
    "val224": ([v2.Resize(256), v2.CenterCrop(224)], (224, 224)),
    "resize-hw": ([v2.Resize((256, 300)), v2.CenterCrop(224)], (224, 224)),
    "max-size-odd-crop": ([v2.Resize(160, max_size=200), v2.CenterCrop((101, 77))], (101, 77)),
    "no-antialias": ([v2.Resize(180, antialias=False), v2.CenterCrop(150)], (150, 150)),
    "upscale": ([v2.Resize(600), v2.CenterCrop(512)], (512, 512)),
    "flips-around": (
        [
            v2.RandomHorizontalFlip(1.0),
            v2.Resize(200),
            v2.RandomHorizontalFlip(1.0),
            v2.CenterCrop((90, 131)),
            v2.RandomHorizontalFlip(1.0),
        ],
        (90, 131),
    ),
    "crop-larger-pads": ([v2.Resize(200), v2.CenterCrop(240)], (240, 240)),
}


@pytest.fixture(scope="module", params=[(500, 375), (333, 517)], ids=["500x375", "333x517"])
def voc_root(request, tmp_path_factory):
    root = tmp_path_factory.mktemp("valvoc")
    datasets.make_synthetic_voc(root, num_images=12, image_size=request.param, seed=8)
    return root


def val_transforms(name, dtype=torch.float32):
    ops, _ = GEOMETRY[name]
    return v2.Compose([v2.ToImage(), *ops, v2.ToDtype(dtype, scale=True), v2.Normalize(MEAN, STD)])


def pairs(samples):
    return torch.stack([image for image, _ in samples]), [target for _, target in samples]


@pytest.mark.parametrize("workers", WORKERS)
@pytest.mark.parametrize("name", sorted(GEOMETRY))
def test_detection_batches_equal_torchvision_and_torch_dataloader(voc_root, name, workers):
    tf = val_transforms(name)
    ours = DataLoader(
        datasets.VOCDetection(voc_root, image_set="trainval", transforms=tf, target_format="boxes"),
        batch_size=4,
        shuffle=True,
        num_workers=workers,
        generator=torch.Generator().manual_seed(2),
        collate_fn=detection_collate,
    )
    reference = wrap_dataset_for_transforms_v2(
        torchvision.datasets.VOCDetection(voc_root, image_set="trainval", transforms=tf)
    )
    theirs = torch.utils.data.DataLoader(
        reference,
        batch_size=4,
        shuffle=True,
        generator=torch.Generator().manual_seed(2),
        collate_fn=detection_collate,
    )
    count = 0
    for (images, targets), (ref_images, ref_targets) in zip(ours, theirs):
        images, ref_images = torch.stack(list(images)), torch.stack(list(ref_images))
        assert images.shape == ref_images.shape == (len(images), 3, *GEOMETRY[name][1])
        # in uint8 levels: the resampling is exact, the fused Normalize may differ in the last bit
        assert (images - ref_images).abs().max() * 255 * max(STD) <= 1e-3
        for a, b in zip(targets, ref_targets):
            # torchvision keeps boxes the crop emptied (clamped to zero area); conveyor drops
            # them with their labels, as SanitizeBoundingBoxes would
            ref_boxes = b["boxes"].as_subclass(torch.Tensor).float()
            kept = (ref_boxes[:, 2] > ref_boxes[:, 0]) & (ref_boxes[:, 3] > ref_boxes[:, 1])
            assert torch.equal(a["labels"], b["labels"][kept])
            # torchvision keeps VOC's integer boxes, so its scaled boxes are rounded
            assert torch.allclose(
                a["boxes"].as_subclass(torch.Tensor).float(), ref_boxes[kept], rtol=0, atol=1.0
            )
        count += len(images)
    assert ours.stats.path == "native" and count == 12


@pytest.mark.parametrize("workers", WORKERS)
@pytest.mark.parametrize("name", ["val224", "flips-around", "crop-larger-pads"])
def test_segmentation_images_and_masks_equal_torchvision(voc_root, name, workers):
    ops, _ = GEOMETRY[name]
    tf = v2.Compose(
        [v2.ToImage(), *ops, v2.ToDtype(LONG_MASKS, scale=True), v2.Normalize(MEAN, STD)]
    )
    ours = DataLoader(
        datasets.VOCSegmentation(
            voc_root, image_set="trainval", transforms=tf, target_format="mask"
        ),
        batch_size=5,
        num_workers=workers,
    )
    theirs = torch.utils.data.DataLoader(
        wrap_dataset_for_transforms_v2(
            torchvision.datasets.VOCSegmentation(voc_root, image_set="trainval", transforms=tf)
        ),
        batch_size=5,
    )
    count = 0
    for (images, masks), (ref_images, ref_masks) in zip(ours, theirs):
        assert images.shape == ref_images.shape and masks.dtype == ref_masks.dtype
        assert (images - ref_images).abs().max() * 255 * max(STD) <= 1e-3
        assert torch.equal(masks, ref_masks)  # nearest-neighbour masks: unaffected
        count += len(images)
    assert ours.stats.path == "native" and count == 12


def image_files(dataset):
    return [dataset.images[i] for i in range(len(dataset))]


@pytest.mark.parametrize("name", ["val224", "resize-hw", "flips-around", "upscale", "no-antialias"])
def test_region_decode_is_exactly_resize_then_crop_of_the_full_decode(voc_root, name):
    """uint8 output: the windowed resize over the decoded region gives exactly torchvision's
    resize then crop of the whole image, decoded by conveyor's own (full) JPEG decode."""
    ops, _ = GEOMETRY[name]
    tf = v2.Compose([v2.ToImage(), *ops])
    dataset = datasets.VOCDetection(voc_root, image_set="trainval", transform=tf)
    loader = DataLoader(dataset, batch_size=3, num_workers=2, collate_fn=pairs)
    images = torch.cat([batch for batch, _ in loader])
    expected = torch.stack(
        [v2.Compose(ops)(read_image(path, mode="rgb")) for path in image_files(dataset)]
    )
    assert loader.stats.path == "native"
    assert images.dtype == expected.dtype == torch.uint8
    assert torch.equal(images, expected)


@pytest.mark.parametrize("name", ["val224", "flips-around"])
def test_real_voc_files_exact_against_full_decode_and_close_to_torchvision(real_voc_tree, name):
    ops, _ = GEOMETRY[name]
    tf = v2.Compose([v2.ToImage(), *ops])
    dataset = datasets.VOCDetection(real_voc_tree, image_set="trainval", transform=tf)
    loader = DataLoader(dataset, batch_size=4, num_workers=2, collate_fn=pairs)
    images = torch.cat([batch for batch, _ in loader])
    assert loader.stats.path == "native" and len(images) == len(dataset)
    files = image_files(dataset)
    expected = torch.stack([v2.Compose(ops)(read_image(path, mode="rgb")) for path in files])
    assert torch.equal(images, expected)
    # torchvision's own dataset decodes with PIL: a different JPEG decoder, so only close
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = torchvision.datasets.VOCDetection(
            real_voc_tree, image_set="trainval", transform=tf
        )
        theirs = torch.stack([reference[i][0] for i in range(len(reference))])
    difference = (images.float() - theirs.float()).abs()
    assert difference.mean() < 0.5 and difference.max() <= 16
