"""conveyor.collate.detection_collate on generic samples."""

import pytest
import torch
from torchvision import tv_tensors

from conveyor.collate import detection_collate


def sample(h=4, w=5, objects=2, value=1.0):
    image = tv_tensors.Image(torch.full((3, h, w), value))
    target = {"boxes": torch.rand(objects, 4), "labels": torch.arange(1, objects + 1)}
    return image, target


def test_stacks_same_sized_images_and_lists_targets():
    batch = [sample(objects=1, value=1.0), sample(objects=3, value=2.0)]
    images, targets = detection_collate(batch)
    assert type(images) is torch.Tensor and images.shape == (2, 3, 4, 5)
    assert images[1].eq(2.0).all()
    assert targets[0] is batch[0][1] and targets[1] is batch[1][1]
    assert [len(t["labels"]) for t in targets] == [1, 3]


def test_mixed_sizes_give_a_list_like_detection_models_take():
    batch = [sample(4, 5), sample(6, 7)]
    images, targets = detection_collate(batch)
    assert isinstance(images, list) and [tuple(i.shape) for i in images] == [(3, 4, 5), (3, 6, 7)]
    assert len(targets) == 2


def test_works_as_collate_fn_of_torch_and_conveyor_loaders():
    from conveyor import DataLoader

    data = [sample(objects=i % 3, value=float(i)) for i in range(5)]
    for loader in (
        torch.utils.data.DataLoader(data, batch_size=2, collate_fn=detection_collate),
        DataLoader(data, batch_size=2, num_workers=2, collate_fn=detection_collate),
    ):
        batches = list(loader)
        assert [b[0].shape[0] for b in batches] == [2, 2, 1]
        assert [len(t["labels"]) for b in batches for t in b[1]] == [0, 1, 2, 0, 1]


def test_bad_sample_is_reported():
    with pytest.raises(TypeError, match="sample 1 of the batch is a Tensor"):
        detection_collate([sample(), torch.zeros(3)])


def test_segmentation_collate_stacks_masks_without_channel():
    from torchvision import tv_tensors

    from conveyor.collate import segmentation_collate

    samples = [
        (
            tv_tensors.Image(torch.full((3, 4, 5), i, dtype=torch.float32)),
            tv_tensors.Mask(torch.full((1, 4, 5), 255 - i, dtype=torch.int64)),
        )
        for i in range(3)
    ]
    images, masks = segmentation_collate(samples)
    assert type(images) is torch.Tensor and images.shape == (3, 3, 4, 5)
    assert type(masks) is torch.Tensor and masks.shape == (3, 4, 5) and masks.dtype == torch.int64
    assert masks[2, 0, 0] == 253
    flat = segmentation_collate([(torch.zeros(3, 2, 2), torch.ones(2, 2, dtype=torch.uint8))] * 2)
    assert flat[1].shape == (2, 2, 2) and flat[1].dtype == torch.uint8
    with pytest.raises(TypeError, match="sample 1 of the batch is a tuple of Tensor, str"):
        segmentation_collate([samples[0], (torch.zeros(3, 4, 5), "mask")])
