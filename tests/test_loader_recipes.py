"""torchvision's reference recipes (detection "ssd" geometry, Faster R-CNN variable sizes,
ScaleJitter + RandomCrop, segmentation train) through conveyor.DataLoader: fully native with
torchvision's own classes, identical for any thread count, and resumable exactly.

Pixel-level agreement with torchvision's kernels for the drawn parameters is tested per op in
test_ops_recipes.py; here the loader runs the whole recipes end to end."""

import warnings

import pytest
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from conveyor import DataLoader, datasets
from conveyor.collate import detection_collate, segmentation_collate

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


@pytest.fixture(scope="module")
def voc_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("recipes")
    datasets.make_synthetic_voc(root, num_images=16, image_size=(160, 120), seed=7)
    return root


def ssd():
    fill = {tv_tensors.Image: (123, 117, 104), "others": 0}
    return v2.Compose(
        [
            v2.ToImage(),
            v2.RandomZoomOut(fill=fill),
            v2.RandomIoUCrop(),
            v2.RandomHorizontalFlip(p=0.5),
            v2.Resize((96, 96)),
            v2.ToDtype(torch.float32, scale=True),
        ]
    )


def faster_rcnn():
    return v2.Compose(
        [
            v2.ToImage(),
            v2.RandomShortestSize([64, 80, 96], max_size=160),
            v2.RandomHorizontalFlip(p=0.5),
            v2.ToDtype(torch.float32, scale=True),
        ]
    )


def scale_jitter():
    return v2.Compose(
        [
            v2.ToImage(),
            v2.ScaleJitter((96, 96)),
            v2.RandomCrop(96, pad_if_needed=True),
            v2.RandomHorizontalFlip(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(MEAN, STD),
        ]
    )


def segmentation():
    return v2.Compose(
        [
            v2.ToImage(),
            v2.RandomResize(52, 208),
            v2.RandomHorizontalFlip(0.5),
            v2.RandomCrop(96, pad_if_needed=True, fill={tv_tensors.Image: 0, tv_tensors.Mask: 255}),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(MEAN, STD),
        ]
    )


RECIPES = {"ssd": ssd, "faster_rcnn": faster_rcnn, "scale_jitter": scale_jitter}


def loader(root, recipe, workers, **kwargs):
    if recipe == "segmentation":
        dataset = datasets.VOCSegmentation(
            root, image_set="trainval", transforms=segmentation(), target_format="mask"
        )
        collate = segmentation_collate
    else:
        dataset = datasets.VOCDetection(
            root, image_set="trainval", transforms=RECIPES[recipe](), target_format="boxes"
        )
        collate = detection_collate
    return DataLoader(
        dataset,
        batch_size=4,
        shuffle=True,
        seed=5,
        num_workers=workers,
        collate_fn=collate,
        **kwargs,
    )


def flat(batches):
    """Every tensor of an epoch's batches, in order (images, boxes/labels or masks)."""
    out = []
    for images, targets in batches:
        out.extend(images if isinstance(images, (list, tuple)) else [images])
        if isinstance(targets, torch.Tensor):
            out.append(targets)
        else:
            for t in targets:
                out.extend([t["boxes"].as_subclass(torch.Tensor), t["labels"]])
    return out


@pytest.mark.parametrize("recipe", ["ssd", "faster_rcnn", "scale_jitter", "segmentation"])
def test_recipe_is_native_and_identical_across_thread_counts(voc_root, recipe):
    runs = []
    for workers in (0, 2, 3):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no "cannot run natively" warning
            run = loader(voc_root, recipe, workers)
            runs.append(flat(list(run)))
        assert run.stats.path == "native"
    for other in runs[1:]:
        assert len(other) == len(runs[0])
        assert all(torch.equal(a, b) for a, b in zip(runs[0], other))


def test_variable_sizes_come_as_lists_of_their_own_sizes(voc_root):
    batches = list(loader(voc_root, "faster_rcnn", 2))
    sizes = set()
    for images, targets in batches:
        assert isinstance(images, (list, tuple)) and len(images) == len(targets)
        for image, target in zip(images, targets):
            h, w = image.shape[-2:]
            assert min(h, w) in (64, 80, 96) or max(h, w) == 160
            assert tuple(target["boxes"].canvas_size) == (h, w)
            sizes.add((h, w))
    assert len(sizes) > 1


def test_ssd_boxes_stay_inside_and_labels_follow(voc_root):
    for images, targets in loader(voc_root, "ssd", 2):
        assert images.shape[1:] == (3, 96, 96)
        for t in targets:
            boxes = t["boxes"].as_subclass(torch.Tensor)
            assert len(boxes) == len(t["labels"])
            assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
            assert (boxes >= 0).all() and (boxes <= 96 + 1e-3).all()  # float32 scaling


@pytest.mark.parametrize("recipe", ["ssd", "segmentation"])
def test_recipe_resumes_exactly(voc_root, recipe):
    reference = flat(list(loader(voc_root, recipe, 2)))
    first = loader(voc_root, recipe, 2)
    iterator = iter(first)
    head = [next(iterator) for _ in range(2)]
    resumed = loader(voc_root, recipe, 2)
    resumed.load_state_dict(first.state_dict())
    tail = list(resumed)
    got = flat(head + tail)
    assert len(got) == len(reference)
    assert all(torch.equal(a, b) for a, b in zip(got, reference))
