"""Padded variable-size batches (``DataLoader(pad_to_multiple=m)``): torchvision's
``GeneralizedRCNNTransform.batch_images`` semantics (zeros at the bottom and right, height and
width rounded up to ``m``), boxes unchanged, masks padded with 255, the same batches for any
thread count and on the Python path, and the padding waste in ``loader.stats``."""

import shutil
import warnings

import pytest
import torch
from torch.utils.data import default_collate
from torchvision import tv_tensors
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.transforms import v2

from conveyor import DataLoader, datasets
from conveyor.collate import detection_collate, segmentation_collate
from conveyor.samplers import GroupedBatchSampler

# (width, height) of the mixed tree's parts: landscape, portrait and wide images
SIZES = ((160, 120), (120, 160), (200, 96))


@pytest.fixture(scope="module")
def mixed_root(tmp_path_factory):
    """One VOC2012 tree mixing images of three aspect ratios (ids prefixed by their part)."""
    root = tmp_path_factory.mktemp("padding")
    base = root / "VOCdevkit" / "VOC2012"
    folders = ("JPEGImages", "Annotations", "SegmentationClass")
    for folder in folders + ("ImageSets/Main", "ImageSets/Segmentation"):
        (base / folder).mkdir(parents=True)
    ids = []
    for part, size in enumerate(SIZES):
        made = datasets.make_synthetic_voc(
            root / f"part{part}", num_images=8, image_size=size, seed=part
        )
        for image_id in (made / "ImageSets" / "Main" / "trainval.txt").read_text().split():
            new_id = f"p{part}_{image_id}"
            for folder, ext in zip(folders, (".jpg", ".xml", ".png")):
                shutil.copy(made / folder / f"{image_id}{ext}", base / folder / f"{new_id}{ext}")
            ids.append(new_id)
    listing = "".join(f"{i}\n" for i in ids)
    (base / "ImageSets" / "Main" / "trainval.txt").write_text(listing)
    (base / "ImageSets" / "Segmentation" / "trainval.txt").write_text(listing)
    return root


def faster_rcnn():
    return v2.Compose(
        [
            v2.ToImage(),
            v2.RandomShortestSize([64, 80, 96], max_size=160),
            v2.RandomHorizontalFlip(p=0.5),
            v2.ToDtype(torch.float32, scale=True),
        ]
    )


class DetectionSubclass(datasets.VOCDetection):
    """Runs on the Python path (a subclass's __getitem__ may differ)."""


class SegmentationSubclass(datasets.VOCSegmentation):
    """Runs on the Python path."""


def zip_collate(batch):
    return tuple(zip(*batch))


def detection(root, workers=2, collate=detection_collate, transforms=None, **kwargs):
    dataset = datasets.VOCDetection(
        root, image_set="trainval", transforms=transforms or faster_rcnn(), target_format="boxes"
    )
    kwargs.setdefault("batch_size", 4)
    if "batch_sampler" in kwargs:
        kwargs.pop("batch_size")
    else:
        kwargs.setdefault("shuffle", True)
    return DataLoader(dataset, seed=5, num_workers=workers, collate_fn=collate, **kwargs)


def batch_images(images, multiple):
    """torchvision's own padding of a list of images (what Faster R-CNN does inside)."""
    transform = GeneralizedRCNNTransform(800, 1333, [0.0] * 3, [1.0] * 3)
    return transform.batch_images([image.as_subclass(torch.Tensor) for image in images], multiple)


@pytest.mark.parametrize("multiple", [32, 1, 7])
def test_padded_batches_are_torchvisions_batch_images(mixed_root, multiple):
    plain = list(detection(mixed_root))
    padded_loader = detection(mixed_root, pad_to_multiple=multiple)
    padded = list(padded_loader)
    assert padded_loader.stats.path == "native"
    assert len(plain) == len(padded)
    varied = False
    for (images, targets), (image_list, padded_targets) in zip(plain, padded):
        assert isinstance(image_list, ImageList)
        assert type(image_list.tensors) is torch.Tensor
        assert torch.equal(image_list.tensors, batch_images(images, multiple))
        assert image_list.image_sizes == [tuple(image.shape[-2:]) for image in images]
        assert image_list.tensors.shape[-2] % multiple == 0
        assert image_list.tensors.shape[-1] % multiple == 0
        varied |= len(set(image_list.image_sizes)) > 1
        for target, padded_target in zip(targets, padded_targets):  # padding moves no box
            assert torch.equal(target["boxes"], padded_target["boxes"])
            assert padded_target["boxes"].canvas_size == target["boxes"].canvas_size
            assert torch.equal(target["labels"], padded_target["labels"])
            assert target["image_id"] == padded_target["image_id"]
    assert varied  # the recipe did produce different sizes within a batch


def test_padded_batches_are_identical_for_any_thread_count(mixed_root):
    runs = [list(detection(mixed_root, workers, pad_to_multiple=32)) for workers in (0, 2, 3)]
    for other in runs[1:]:
        assert len(other) == len(runs[0])
        for (a, ta), (b, tb) in zip(runs[0], other):
            assert torch.equal(a.tensors, b.tensors) and a.image_sizes == b.image_sizes
            assert all(torch.equal(x["boxes"], y["boxes"]) for x, y in zip(ta, tb))


def test_zip_collate_gets_an_image_list_and_a_tuple_of_targets(mixed_root):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # fully native
        loader = detection(mixed_root, collate=zip_collate, pad_to_multiple=32)
        batches = list(loader)
    reference = list(detection(mixed_root, collate=zip_collate))
    for (image_list, targets), (images, ref_targets) in zip(batches, reference):
        assert isinstance(image_list, ImageList) and isinstance(targets, tuple)
        assert torch.equal(image_list.tensors, batch_images(images, 32))
        assert [t["image_id"] for t in targets] == [t["image_id"] for t in ref_targets]


@pytest.mark.parametrize("worker_mode", ["thread", "process"])
def test_python_path_and_user_collate_pad_the_same_way(mixed_root, worker_mode):
    native = list(detection(mixed_root, pad_to_multiple=32))

    def listing(batch):  # a user's collate: not recognised, called per batch
        return [sample[0] for sample in batch], [sample[1] for sample in batch]

    user = list(detection(mixed_root, collate=listing, pad_to_multiple=32))
    for (a, _), (b, _) in zip(native, user):
        assert torch.equal(a.tensors, b.tensors) and a.image_sizes == b.image_sizes
    # a transform the engine cannot run first: the rest runs in Python per sample (a tail on
    # the native path); a subclass of the dataset: the whole pipeline on the Python path. The
    # random draws differ from the engine's, so check the padding itself.
    steps = [v2.Lambda(lambda image: image)] + list(faster_rcnn().transforms)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "... run in Python" (thread mode), said elsewhere
        tail = detection(
            mixed_root, transforms=v2.Compose(steps), pad_to_multiple=32, worker_mode=worker_mode
        )
        tail_batches = list(tail)
    assert tail.stats.worker_mode == worker_mode
    assert tail.stats.path == ("native" if worker_mode == "thread" else "python")

    dataset = DetectionSubclass(
        mixed_root, image_set="trainval", transforms=faster_rcnn(), target_format="boxes"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "... runs in Python", tested elsewhere
        python = DataLoader(
            dataset,
            batch_size=4,
            num_workers=2,
            collate_fn=detection_collate,
            pad_to_multiple=32,
            worker_mode=worker_mode,
        )
        python_batches = list(python)
    assert python.stats.path == "python" and python.stats.worker_mode == worker_mode
    for loader, batches in ((tail, tail_batches), (python, python_batches)):
        assert len(batches) == len(native)
        for image_list, targets in batches:
            assert isinstance(image_list, ImageList)
            assert len(image_list.image_sizes) == len(targets)
            assert image_list.tensors.shape[-2] % 32 == 0 and image_list.tensors.shape[-1] % 32 == 0
            sizes = image_list.image_sizes
            for image, (h, w), target in zip(image_list.tensors, sizes, targets):
                assert tuple(target["boxes"].canvas_size) == (h, w)
                assert not image[:, h:, :].any() and not image[:, :, w:].any()
                assert image[:, :h, :w].any()
        assert loader.stats.padding_fraction > 0


def segmentation_loader(root, collate, dataset_type=datasets.VOCSegmentation, **kwargs):
    transforms = v2.Compose(
        [
            v2.ToImage(),
            v2.RandomResize(52, 120),
            v2.RandomHorizontalFlip(0.5),
            v2.ToDtype(
                {tv_tensors.Image: torch.float32, tv_tensors.Mask: torch.int64, "others": None},
                scale=True,
            ),
        ]
    )
    dataset = dataset_type(root, image_set="trainval", transforms=transforms, target_format="mask")
    return DataLoader(
        dataset, batch_size=4, shuffle=True, seed=3, num_workers=2, collate_fn=collate, **kwargs
    )


def test_segmentation_masks_are_padded_with_255(mixed_root):
    reference = list(segmentation_loader(mixed_root, zip_collate))
    loader = segmentation_loader(mixed_root, segmentation_collate, pad_to_multiple=16)
    batches = list(loader)
    assert loader.stats.path == "native"
    for (images, masks), (ref_images, ref_masks) in zip(batches, reference):
        assert torch.equal(images.tensors, batch_images(ref_images, 16))
        assert masks.dtype == torch.int64 and masks.shape == (len(ref_masks),) + tuple(
            images.tensors.shape[-2:]
        )
        for mask, ref_mask in zip(masks, ref_masks):
            h, w = ref_mask.shape[-2:]
            assert torch.equal(mask[:h, :w], ref_mask[0].as_subclass(torch.Tensor))
            assert (mask[h:, :] == 255).all() and (mask[:, w:] == 255).all()


@pytest.mark.parametrize("worker_mode", ["thread", "process"])
@pytest.mark.parametrize("collate", [segmentation_collate, default_collate])
def test_python_path_pads_segmentation_batches_too(mixed_root, collate, worker_mode):
    native = segmentation_loader(mixed_root, collate, pad_to_multiple=16)
    native_batches = list(native)
    python = segmentation_loader(
        mixed_root,
        collate,
        pad_to_multiple=16,
        dataset_type=SegmentationSubclass,
        worker_mode=worker_mode,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "... runs in Python", tested elsewhere
        python_batches = list(python)
    assert python.stats.path == "python" and python.stats.padding_fraction > 0
    assert python.stats.worker_mode == worker_mode
    for batches in (native_batches, python_batches):
        for images, masks in batches:
            if collate is default_collate:
                assert masks.shape[1] == 1
                masks = masks[:, 0]
            assert masks.shape[-2:] == images.tensors.shape[-2:]
            for image, mask, (h, w) in zip(images.tensors, masks, images.image_sizes):
                assert not image[:, h:, :].any() and not image[:, :, w:].any()
                assert (mask[h:, :] == 255).all() and (mask[:, w:] == 255).all()
                assert (mask[:h, :w] != 255).any()


def test_padding_fraction_is_the_share_of_padding_pixels(mixed_root):
    loader = detection(mixed_root, pad_to_multiple=32)
    padding = total = 0
    for image_list, _ in loader:
        batch, _, height, width = image_list.tensors.shape
        total += batch * height * width
        padding += batch * height * width - sum(h * w for h, w in image_list.image_sizes)
    assert loader.stats.padding_fraction == pytest.approx(padding / total)
    assert 0 < loader.stats.padding_fraction < 1
    unpadded = detection(mixed_root)
    list(unpadded)
    assert unpadded.stats.padding_fraction == 0.0


def test_grouping_by_aspect_ratio_wastes_less_padding(mixed_root):
    def fixed_resize():  # sizes follow the aspect ratio only: grouping removes most padding
        return v2.Compose([v2.ToImage(), v2.Resize(96, max_size=160), v2.ToDtype(torch.float32)])

    ungrouped = detection(mixed_root, transforms=fixed_resize(), pad_to_multiple=32)
    list(ungrouped)
    dataset = datasets.VOCDetection(
        mixed_root, image_set="trainval", transforms=fixed_resize(), target_format="boxes"
    )
    sampler = GroupedBatchSampler.from_dataset(dataset, 4, group_factor=3, seed=5)
    grouped = detection(
        mixed_root, transforms=fixed_resize(), batch_sampler=sampler, pad_to_multiple=32
    )
    list(grouped)
    assert grouped.stats.path == "native"
    assert grouped.stats.padding_fraction < ungrouped.stats.padding_fraction


@pytest.mark.parametrize(
    "value, error, match",
    [(0, ValueError, "positive int"), (-32, ValueError, "positive"), ("32", TypeError, "int")],
)
def test_bad_pad_to_multiple_raises(mixed_root, value, error, match):
    with pytest.raises(error, match=match):
        detection(mixed_root, pad_to_multiple=value)


def test_a_collate_without_images_first_raises_clearly(mixed_root):
    def as_dict(batch):
        return {"images": [sample[0] for sample in batch]}

    with pytest.raises(TypeError, match="pad_to_multiple pads the images of a batch.*dict"):
        next(iter(detection(mixed_root, collate=as_dict, pad_to_multiple=32)))


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32, torch.bfloat16])
def test_pad_images_matches_batch_images_for_any_dtype(dtype):
    from conveyor.loader.padding import pad_images

    generator = torch.Generator().manual_seed(0)
    images = [
        (torch.rand(3, h, w, generator=generator) * 200).to(dtype)
        for h, w in ((37, 50), (64, 20), (5, 5))
    ]
    padded = pad_images(images, 16)
    assert padded.tensors.dtype == dtype
    assert torch.equal(padded.tensors, batch_images(images, 16))
    assert padded.image_sizes == [(37, 50), (64, 20), (5, 5)]


def test_a_stacked_batch_already_on_the_multiple_is_not_copied():
    from conveyor.loader.padding import pad_images

    stacked = torch.rand(2, 3, 64, 96)
    padded = pad_images(stacked, 32)
    assert padded.tensors.data_ptr() == stacked.data_ptr()
    assert padded.image_sizes == [(64, 96), (64, 96)]
    assert torch.equal(
        pad_images(torch.rand(2, 3, 60, 96), 32).tensors[:, :, 60:], torch.zeros(2, 3, 4, 96)
    )


def test_images_that_cannot_share_a_tensor_raise_clearly():
    from conveyor.loader.padding import pad_images

    with pytest.raises(TypeError, match=r"image 1 of the batch is a tensor of shape \(8, 8\)"):
        pad_images([torch.zeros(3, 8, 8), torch.zeros(8, 8)], 32)
    with pytest.raises(TypeError, match="image 1 of the batch is torch.float32 with 1 channels"):
        pad_images([torch.zeros(3, 8, 8), torch.zeros(1, 8, 8)], 32)


# ------------------------------------------------- padded by the engine: each image in its slot


def _peak_rss_mib():
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def engine_stats(loader):
    return loader._native_plan.engine.stats()


def assert_same_padded(batches, reference, multiple):
    """``batches`` (padded) are ``reference`` (unpadded lists) padded by torchvision."""
    assert len(batches) == len(reference)
    for (image_list, targets), (images, ref_targets) in zip(batches, reference):
        assert torch.equal(image_list.tensors, batch_images(images, multiple))
        assert image_list.image_sizes == [tuple(image.shape[-2:]) for image in images]
        for target, ref_target in zip(targets, ref_targets):
            assert torch.equal(target["boxes"], ref_target["boxes"])
            assert target["boxes"].canvas_size == ref_target["boxes"].canvas_size
            assert target["image_id"] == ref_target["image_id"]


def test_workers_write_each_image_into_its_padded_slot(mixed_root):
    """The annotations' sizes plan every batch before decoding: no sample is copied."""
    loader = detection(mixed_root, pad_to_multiple=32)
    batches = list(loader)
    assert engine_stats(loader)["samples_repadded"] == 0
    assert_same_padded(batches, list(detection(mixed_root)), 32)
    # hflip only (the reference "hflip" preset): sizes are the source sizes
    flip = v2.Compose([v2.ToImage(), v2.RandomHorizontalFlip(0.5), v2.ToDtype(torch.float32, True)])
    loader = detection(mixed_root, transforms=flip, pad_to_multiple=32)
    batches = list(loader)
    assert engine_stats(loader)["samples_repadded"] == 0
    assert_same_padded(batches, list(detection(mixed_root, transforms=flip)), 32)


def test_wrong_annotation_sizes_cost_a_copy_never_a_wrong_batch(mixed_root, tmp_path):
    root = tmp_path / "lying"
    shutil.copytree(mixed_root, root)
    annotations = sorted((root / "VOCdevkit" / "VOC2012" / "Annotations").glob("*.xml"))
    for number, path in enumerate(annotations[::3]):
        text = path.read_text()
        start, end = text.index("<size>"), text.index("</size>")
        lie = (
            "<width>0</width><height>0</height>",
            "<width>700</width><height>20</height>",
            "<width>4000</width><height>3000</height>",  # its batch planned 4 x 144 MB
        )
        path.write_text(text[:start] + "<size>" + lie[number % 3] + "<depth>3</depth>" + text[end:])
    loader = detection(root, pad_to_multiple=32)
    peak = _peak_rss_mib()
    first = list(loader)
    # the planned slots were never filled: the padding is written once the sizes are checked
    assert _peak_rss_mib() - peak < 200
    repadded = engine_stats(loader)["samples_repadded"]
    assert repadded > 0  # the samples whose size was not as planned were copied
    second = list(loader)  # the files' sizes were learnt: nothing copied again
    assert engine_stats(loader)["samples_repadded"] == repadded
    plain = detection(root)
    assert_same_padded(first, list(plain), 32)
    assert_same_padded(second, list(plain), 32)


def test_segmentation_sizes_are_learnt_at_the_first_decode(mixed_root):
    """No annotation sizes: the first epoch copies each image into its batch, later epochs
    write in place; both give torchvision's padding."""
    loader = segmentation_loader(mixed_root, segmentation_collate, pad_to_multiple=16)
    reference = segmentation_loader(mixed_root, zip_collate)
    for _ in range(2):
        batches = list(loader)
        assert engine_stats(loader)["samples_repadded"] == len(loader.dataset)  # epoch 0 only
        for (images, masks), (ref_images, ref_masks) in zip(batches, list(reference)):
            assert torch.equal(images.tensors, batch_images(ref_images, 16))
            padded_masks = batch_images([m.to(torch.int16) - 255 for m in ref_masks], 16) + 255
            assert torch.equal(masks, padded_masks[:, 0].to(masks.dtype))


@pytest.mark.parametrize("workers", [0, 2])
def test_padded_epochs_resume_exactly(mixed_root, workers):
    dataset = datasets.VOCDetection(mixed_root, image_set="trainval", target_format="boxes")

    def loader_():
        sampler = GroupedBatchSampler.from_dataset(dataset, 3, group_factor=3, seed=1)
        return detection(mixed_root, workers, batch_sampler=sampler, pad_to_multiple=32)

    full = list(loader_())
    loader = loader_()
    iterator = iter(loader)
    taken = [next(iterator) for _ in range(3)]
    state = loader.state_dict()
    del iterator
    resumed = loader_()
    resumed.load_state_dict(state)
    rest = list(resumed)
    assert len(taken) + len(rest) == len(full)
    for (a, ta), (b, tb) in zip(taken + rest, full):
        assert torch.equal(a.tensors, b.tensors) and a.image_sizes == b.image_sizes
        assert [t["image_id"] for t in ta] == [t["image_id"] for t in tb]


def test_a_skipped_sample_leaves_a_batch_padded_as_the_others(mixed_root, tmp_path):
    """on_error="skip": the batch is padded over the samples left (a smaller one when the
    largest image was the bad one), as torchvision would pad them."""
    root = tmp_path / "broken"
    shutil.copytree(mixed_root, root)
    images = sorted((root / "VOCdevkit" / "VOC2012" / "JPEGImages").glob("p2_*.jpg"))
    for path in images[:3]:  # the widest images: a batch without them is narrower
        path.write_bytes(path.read_bytes()[:200])
    flip = v2.Compose([v2.ToImage(), v2.RandomHorizontalFlip(0.5), v2.ToDtype(torch.float32, True)])
    loader = detection(root, transforms=flip, pad_to_multiple=32, on_error="skip")
    batches = list(loader)
    assert len(loader.stats.skipped) == 3
    reference = list(detection(root, transforms=flip, on_error="skip"))
    assert_same_padded(batches, reference, 32)


PIPELINES = {  # each way a worker writes its image: resized, after photometric ops, erased
    "resize": [
        {"op": "random_shortest_size", "min_size": [64, 80, 96], "max_size": 160},
        {"op": "hflip", "p": 0.5},
        {"op": "to_dtype", "dtype": "float32", "scale": True},
    ],
    "photometric": [
        {"op": "hflip", "p": 0.5},
        {"op": "color_jitter", "brightness": [0.6, 1.4], "hue": [-0.1, 0.1]},
        {"op": "to_dtype", "dtype": "float16", "scale": True},
    ],
    "erasing": [
        {"op": "resize", "size": 100, "max_size": 150},
        {"op": "to_dtype", "dtype": "float32", "scale": True},
        {"op": "random_erasing", "p": 1.0, "value": 0.5},
    ],
    "uint8": [{"op": "vflip", "p": 0.5}],
}


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_engine_pads_straight_into_slots_for_any_thread_count(mixed_root, name):
    """The engine alone: padded batches are the variable-size ones padded, with the sizes
    given, unknown (learnt) or wrong, for 0, 1 and 3 threads."""
    from conveyor.loader.engine import Engine
    from conveyor.loader.padding import pad_images

    dataset = datasets.VOCDetection(mixed_root, image_set="trainval", target_format="boxes")
    annotations = dataset.native_annotations
    true_sizes = [(int(w), int(h)) for w, h in zip(annotations.widths, annotations.heights)]
    pipeline = PIPELINES[name]
    batches = [[5, 1, 17, 9], [2], [], [23, 0, 12]]
    reference = Engine(pipeline, dataset.images, num_threads=2, seed=4)
    reference.start_epoch(3, batches)
    expected = []
    while (batch := reference.next_batch()) is not None:
        expected.append([torch.from_numpy(image) for image in batch.images])
    wrong = [(h, w) for w, h in true_sizes]
    for sizes in (true_sizes, None, wrong):
        for threads in (0, 1, 3):
            engine = Engine(
                pipeline, dataset.images, num_threads=threads, seed=4, source_sizes=sizes
            )
            for _ in range(2):
                engine.start_epoch(3, batches, pad_to_multiple=32)
                for images in expected:
                    batch = engine.next_batch()
                    if not images:
                        assert batch.image_sizes is None and list(batch.images) == []
                        continue
                    padded = pad_images(images, 32)
                    assert torch.equal(torch.from_numpy(batch.images), padded.tensors)
                    assert [tuple(s) for s in batch.image_sizes.tolist()] == padded.image_sizes
                assert engine.next_batch() is None
            copies = engine.stats()["samples_repadded"]
            if sizes is true_sizes:
                assert copies == 0
            elif sizes is None:  # learnt in the first epoch, which copies every sample
                assert copies == 8
            else:  # wrong sizes: copied in the first epoch, corrected for the second
                assert 0 < copies <= 8
            engine.close()
