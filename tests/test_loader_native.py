"""The native path: conveyor VOC datasets with recognised transforms run on the C++ engine.

Outputs are compared with torchvision's VOCDetection + torch's DataLoader (flip p=0), with the
same dataset read through conveyor's Python path, across thread counts, and on resume."""

import warnings

import pytest
import torch
import torchvision
from torchvision.transforms import v2

from conveyor import DataLoader, datasets
from conveyor.collate import detection_collate

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
WORKERS = [0, 2]


@pytest.fixture(scope="module")
def voc_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("voc")
    datasets.make_synthetic_voc(root, num_images=24, image_size=(200, 150), seed=3)
    return root


def issue_transforms(p=0.5, size=(96, 96)):
    return v2.Compose(
        [
            v2.ToImage(),
            v2.Resize(size),
            v2.RandomHorizontalFlip(p),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(MEAN, STD),
        ]
    )


def detection(root, tf, **kwargs):
    return datasets.VOCDetection(
        root, image_set="trainval", transforms=tf, target_format="boxes", **kwargs
    )


def to_pixels(images):
    images = torch.stack(images) if isinstance(images, (list, tuple)) else images
    return (
        images * torch.tensor(STD).view(1, 3, 1, 1) * 255
        + torch.tensor(MEAN).view(1, 3, 1, 1) * 255
    )


def assert_same_batch(ours, theirs, pixel_tolerance=1.0, box_tolerance=1e-3):
    (images_a, targets_a), (images_b, targets_b) = ours, theirs
    assert (to_pixels(images_a) - to_pixels(images_b)).abs().max() <= pixel_tolerance
    assert len(targets_a) == len(targets_b)
    for a, b in zip(targets_a, targets_b):
        assert torch.equal(a["labels"], b["labels"])
        assert torch.allclose(
            a["boxes"].as_subclass(torch.Tensor).float(),
            b["boxes"].as_subclass(torch.Tensor).float(),
            rtol=0,
            atol=box_tolerance,
        )
        assert tuple(a["boxes"].canvas_size) == tuple(b["boxes"].canvas_size)


@pytest.mark.parametrize("workers", WORKERS)
def test_issue_snippet_matches_torchvision_and_torch_dataloader(voc_root, workers):
    tf = issue_transforms(p=0.0)
    ours = DataLoader(
        detection(voc_root, tf),
        batch_size=8,
        shuffle=True,
        num_workers=workers,
        generator=torch.Generator().manual_seed(0),
        collate_fn=detection_collate,
    )
    reference = torchvision.datasets.wrap_dataset_for_transforms_v2(
        torchvision.datasets.VOCDetection(voc_root, image_set="trainval", transforms=tf)
    )
    theirs = torch.utils.data.DataLoader(
        reference,
        batch_size=8,
        shuffle=True,
        generator=torch.Generator().manual_seed(0),
        collate_fn=detection_collate,
    )
    batches = list(ours)
    assert ours.stats.path == "native"
    assert [tuple(b[0].shape) for b in batches] == [(8, 3, 96, 96)] * 3
    assert batches[0][0].dtype == torch.float32
    # torchvision keeps VOC's integer boxes, so its resized boxes are rounded: within 1 pixel
    for a, b in zip(batches, theirs):
        assert_same_batch(a, b, box_tolerance=1.0)


@pytest.mark.parametrize("workers", WORKERS)
def test_native_equals_python_path_of_same_dataset(voc_root, workers):
    tf = issue_transforms(p=0.0)
    native = DataLoader(
        detection(voc_root, tf),
        batch_size=5,
        shuffle=True,
        seed=4,
        num_workers=workers,
        collate_fn=detection_collate,
    )
    python = torch.utils.data.DataLoader(
        detection(voc_root, tf),
        batch_size=5,
        collate_fn=detection_collate,
        sampler=list(torch.utils.data.DistributedSampler(range(24), 1, 0, seed=4)),
    )
    for a, b in zip(native, python):
        assert_same_batch(a, b)
        assert [t["image_id"] for t in a[1]] == [t["image_id"] for t in b[1]]
        assert all(torch.equal(x["difficult"], y["difficult"]) for x, y in zip(a[1], b[1]))


def test_flip_and_random_crop_are_identical_across_thread_counts(voc_root):
    tf = v2.Compose(
        [
            v2.ToImage(),
            v2.RandomResizedCrop(64),
            v2.RandomHorizontalFlip(),
            v2.ToDtype(torch.float32, scale=True),
        ]
    )
    runs = []
    for workers in WORKERS + [3]:
        loader = DataLoader(
            detection(voc_root, tf),
            batch_size=4,
            shuffle=True,
            seed=11,
            num_workers=workers,
            collate_fn=detection_collate,
        )
        runs.append([(images, [t["boxes"] for t in targets]) for images, targets in loader])
    for other in runs[1:]:
        for (images_a, boxes_a), (images_b, boxes_b) in zip(runs[0], other):
            assert torch.equal(images_a, images_b)
            assert all(torch.equal(x, y) for x, y in zip(boxes_a, boxes_b))


@pytest.mark.parametrize("workers", WORKERS)
def test_native_resume_mid_epoch(voc_root, workers):
    def make():
        return DataLoader(
            detection(voc_root, issue_transforms()),
            batch_size=5,
            shuffle=True,
            seed=2,
            num_workers=workers,
            collate_fn=detection_collate,
        )

    reference_loader = make()
    reference = [[images for images, _ in reference_loader] for _ in range(2)]
    loader = make()
    list(loader)
    iterator = iter(loader)
    head = [next(iterator)[0] for _ in range(2)]
    state = loader.state_dict()
    resumed = make()
    resumed.load_state_dict(state)
    tail = [images for images, _ in resumed]
    assert len(head + tail) == len(reference[1])
    assert all(torch.equal(a, b) for a, b in zip(head + tail, reference[1]))


def test_unknown_transform_warns_once_and_runs_in_python(voc_root):
    # sizes here stay above half the source so the engine decodes at full scale (DCT-scaled
    # decoding is within tolerance of the full decode, not bit-identical)
    tf = v2.Compose(
        [
            v2.ToImage(),
            v2.Resize((96, 96)),
            v2.RandomInvert(p=1.0),
            v2.ToDtype(torch.float32, scale=True),
        ]
    )
    loader = DataLoader(detection(voc_root, tf), batch_size=6, collate_fn=detection_collate)
    with pytest.warns(UserWarning, match="torchvision.transforms.v2.RandomInvert") as caught:
        native = list(loader)
        list(loader)
    assert len([w for w in caught if "RandomInvert" in str(w.message)]) == 1
    assert loader.stats.path == "native"
    python = torch.utils.data.DataLoader(
        detection(voc_root, tf), batch_size=6, collate_fn=detection_collate
    )
    for (images_a, targets_a), (images_b, targets_b) in zip(native, python):
        assert (images_a - images_b).abs().max() <= 1 / 255 + 1e-6  # 1 level
        assert all(torch.equal(a["labels"], b["labels"]) for a, b in zip(targets_a, targets_b))


def test_default_collate_and_custom_collate_on_native_path(voc_root):
    tf = v2.Compose([v2.ToImage(), v2.Resize((100, 120)), v2.ToDtype(torch.float32, scale=True)])
    ds = datasets.VOCDetection(voc_root, image_set="trainval", transform=tf)  # dict targets
    ours = DataLoader(ds, batch_size=4, collate_fn=lambda samples: samples)
    theirs = torch.utils.data.DataLoader(ds, batch_size=4, collate_fn=lambda samples: samples)
    for a, b in zip(ours, theirs):
        assert [t for _, t in a] == [t for _, t in b]  # torchvision's nested dicts
        # PIL's resize (dataset path) and the tensor resize differ by a few levels
        assert all((x - y).abs().max() <= 0.05 for (x, _), (y, _) in zip(a, b))
    assert ours.stats.path == "native"


def test_on_error_native_raise_and_skip(voc_root, tmp_path):
    import shutil

    root = tmp_path / "broken"
    shutil.copytree(voc_root, root)
    ds = detection(root, issue_transforms())
    bad = ds.images[5]
    with open(bad, "wb") as file:
        file.write(b"\xff\xd8 not a jpeg")
    loader = DataLoader(ds, batch_size=4, collate_fn=detection_collate)
    iterator = iter(loader)
    next(iterator)
    with pytest.raises(Exception, match="sample 5") as info:
        next(iterator)
    assert bad in str(info.value)
    skipping = DataLoader(
        detection(root, issue_transforms()),
        batch_size=4,
        collate_fn=detection_collate,
        on_error="skip",
    )
    sizes = [images.shape[0] for images, _ in skipping]
    assert sizes == [4, 3, 4, 4, 4, 4]
    assert skipping.stats.samples_skipped == 1 and skipping.stats.skipped[0][0] == 5


def test_fed_buffer_path_without_accelerator(voc_root):
    tf = issue_transforms(p=0.0)
    plain = DataLoader(detection(voc_root, tf), batch_size=5, collate_fn=detection_collate)
    fed = DataLoader(detection(voc_root, tf), batch_size=5, collate_fn=detection_collate)
    fed._feed_buffers = True  # the pinned-memory code path, with ordinary buffers
    for (a, _), (b, _) in zip(plain, fed):
        assert torch.equal(a, b)


def test_pin_memory_degrades_like_torch(voc_root):
    if torch.accelerator.is_available():
        pytest.skip("an accelerator is present")
    loader = DataLoader(
        detection(voc_root, issue_transforms()),
        batch_size=8,
        pin_memory=True,
        collate_fn=detection_collate,
    )
    with pytest.warns(UserWarning, match="no accelerator is found"):
        assert len(list(loader)) == 3


@pytest.mark.parametrize("world_size", [2, 3])
def test_native_sharding_matches_distributed_sampler(voc_root, world_size):
    tf = issue_transforms(p=0.0)
    for rank in range(world_size):
        loader = DataLoader(
            detection(voc_root, tf),
            batch_size=4,
            shuffle=True,
            seed=5,
            collate_fn=detection_collate,
        ).shard(rank, world_size)
        loader.set_epoch(1)
        ids = [t["image_id"] for _, targets in loader for t in targets]
        sampler = torch.utils.data.DistributedSampler(range(24), world_size, rank, seed=5)
        sampler.set_epoch(1)
        assert ids == list(sampler)


def test_segmentation_with_image_transform_runs_natively(voc_root):
    tf = v2.Compose([v2.ToImage(), v2.CenterCrop(100), v2.ToDtype(torch.float32, scale=True)])
    ds = datasets.VOCSegmentation(
        voc_root,
        image_set="trainval",
        transform=tf,
        target_transform=v2.Compose([v2.PILToTensor(), v2.CenterCrop(100)]),
    )
    ours = DataLoader(ds, batch_size=4)
    theirs = torch.utils.data.DataLoader(ds, batch_size=4)
    for (images_a, masks_a), (images_b, masks_b) in zip(ours, theirs):
        assert (images_a - images_b).abs().max() <= 2 / 255 + 1e-6
        assert torch.equal(masks_a, masks_b)
    assert ours.stats.path == "native"


def test_generic_fallback_for_joint_segmentation_transforms(voc_root):
    ds = datasets.VOCSegmentation(
        voc_root, image_set="trainval", transforms=v2.Compose([v2.ToImage(), v2.Resize((16, 16))])
    )
    loader = DataLoader(ds, batch_size=4)
    with pytest.warns(UserWarning, match='target_format="pil"') as caught:
        batches = list(loader)
    assert loader.stats.path == "python" and batches[0][0].shape == (4, 3, 16, 16)
    assert 'target_format="pil"' in loader.stats.python_reason
    with warnings.catch_warnings():  # once per loader
        warnings.simplefilter("error")
        list(loader)
    assert len(caught) == 1


def native_thread_count():
    import os

    return len(os.listdir("/proc/self/task"))


@pytest.mark.skipif(not __import__("os").path.isdir("/proc/self/task"), reason="needs /proc")
def test_break_and_delete_stop_native_threads(voc_root):
    import gc

    def run_partially():
        loader = DataLoader(
            detection(voc_root, issue_transforms()),
            batch_size=4,
            shuffle=True,
            num_workers=3,
            collate_fn=detection_collate,
        )
        for number, _ in enumerate(loader):
            if number == 1:
                break
        return loader

    run_partially()  # warm-up: torch's own thread pools start lazily
    gc.collect()
    baseline = native_thread_count()
    loader = run_partially()
    assert native_thread_count() >= baseline + 3  # the engine's threads are running
    for _ in loader:  # re-iteration after a break starts a clean epoch
        pass
    assert loader.stats.batches == 6
    del loader
    gc.collect()
    assert native_thread_count() <= baseline


def test_new_iterator_ends_the_previous_one_on_the_native_path(voc_root):
    loader = DataLoader(
        detection(voc_root, issue_transforms()), batch_size=4, collate_fn=detection_collate
    )
    first = iter(loader)
    next(first)
    second = iter(loader)
    with pytest.raises(RuntimeError, match="iter\\(\\) was called again"):
        next(first)  # never a batch of the new epoch, never a silent end
    assert len(list(second)) == 6


def test_missing_image_file_is_named(voc_root, tmp_path):
    import os
    import shutil

    root = tmp_path / "missing"
    shutil.copytree(voc_root, root)
    ds = detection(root, issue_transforms())
    os.remove(ds.images[2])
    with pytest.raises(FileNotFoundError, match="sample 2"):
        list(DataLoader(ds, batch_size=4, num_workers=2, collate_fn=detection_collate))
    skipping = DataLoader(
        ds, batch_size=4, num_workers=2, collate_fn=detection_collate, on_error="skip"
    )
    assert sum(len(images) for images, _ in skipping) == 23
    assert skipping.stats.skipped[0][0] == 2


@pytest.mark.parametrize("workers", WORKERS)
def test_real_voc_files_match_torchvision(real_voc_tree, workers):
    def pairs(samples):
        return torch.stack([image for image, _ in samples]), [target for _, target in samples]

    tf = v2.Compose([v2.ToImage(), v2.Resize((512, 512)), v2.ToDtype(torch.float32, scale=True)])
    ours = DataLoader(
        datasets.VOCDetection(real_voc_tree, image_set="trainval", transform=tf),
        batch_size=4,
        num_workers=workers,
        collate_fn=pairs,
    )
    theirs = torch.utils.data.DataLoader(
        torchvision.datasets.VOCDetection(real_voc_tree, image_set="trainval", transform=tf),
        batch_size=4,
        collate_fn=pairs,
    )
    count = 0
    for (images_a, targets_a), (images_b, targets_b) in zip(ours, theirs):
        difference = (images_a - images_b).abs() * 255
        assert difference.mean() < 0.5 and difference.max() <= 16
        assert targets_a == targets_b  # conveyor's XML reader gives torchvision's dicts
        count += len(images_a)
    assert ours.stats.path == "native" and count == len(ours.dataset)


def test_fed_buffers_across_epochs_and_early_breaks(voc_root):
    tf = issue_transforms(p=0.0)
    plain = DataLoader(
        detection(voc_root, tf), batch_size=5, num_workers=2, collate_fn=detection_collate
    )
    fed = DataLoader(
        detection(voc_root, tf), batch_size=5, num_workers=2, collate_fn=detection_collate
    )
    fed._feed_buffers = True
    reference = [images for images, _ in plain]
    for _ in range(2):
        for number, (images, _) in enumerate(fed):  # break early: queued buffers survive
            assert torch.equal(images, reference[number])
            if number == 1:
                break
    kept = [images for images, _ in fed]  # a full epoch after the breaks
    assert len(kept) == len(reference)
    assert all(torch.equal(a, b) for a, b in zip(kept, reference))
    assert len({a.data_ptr() for a in kept}) == len(kept)  # never a buffer handed out twice


@pytest.mark.parametrize("native", [True, False])
def test_malformed_annotation_raises_or_is_skipped(voc_root, tmp_path, native):
    import shutil

    from conveyor.errors import AnnotationError

    root = tmp_path / "xml"
    shutil.copytree(voc_root, root)
    tf = v2.Compose([v2.ToImage(), v2.Resize((96, 96)), v2.ToDtype(torch.float32, scale=True)])
    if not native:  # an unknown op first: the whole pipeline runs on the Python path
        tf = v2.Compose([v2.Lambda(lambda x: x), tf])

    def dataset():  # target_format="dict": XML is read per sample, as torchvision does
        return datasets.VOCDetection(root, image_set="trainval", transforms=tf)

    bad = dataset().annotations[6]
    with open(bad, "w") as file:
        file.write("<annotation><object><name>dog</name></annotation>")
    pairs = lambda samples: samples  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the Lambda's slow-path warning
        loader = DataLoader(dataset(), batch_size=4, collate_fn=pairs)
        iterator = iter(loader)
        next(iterator)
        with pytest.raises(AnnotationError) as info:
            next(iterator)
        text = str(info.value) + "\n".join(getattr(info.value, "__notes__", []))
        assert bad in text and "sample index 6" in text
        assert len(next(iterator)) == 4  # the epoch goes on
        skipping = DataLoader(
            dataset(), batch_size=4, collate_fn=pairs, on_error="skip", num_workers=2
        )
        sizes = [len(batch) for batch in skipping]
    assert sizes == [4, 3, 4, 4, 4, 4]
    assert skipping.stats.path == ("native" if native else "python")
    assert [index for index, _ in skipping.stats.skipped] == [6]


@pytest.mark.parametrize("native", [True, False])
def test_corrupt_image_names_file_on_both_paths(voc_root, tmp_path, native):
    import shutil

    root = tmp_path / "corrupt"
    shutil.copytree(voc_root, root)

    class Subclassed(datasets.VOCDetection):  # a user subclass may change __getitem__
        pass

    def dataset():
        cls = datasets.VOCDetection if native else Subclassed
        return cls(root, image_set="trainval", target_format="boxes")

    bad = dataset().images[3]
    with open(bad, "wb") as file:
        file.write(b"\xff\xd8\xff garbage")
    loader = DataLoader(dataset(), batch_size=4, collate_fn=detection_collate)
    assert bad in _first_error_text(loader)
    skipping = DataLoader(
        dataset(), batch_size=4, collate_fn=detection_collate, on_error="skip", num_workers=2
    )
    assert [len(t) for _, t in skipping] == [3, 4, 4, 4, 4, 4]
    assert loader.stats.path == skipping.stats.path == ("native" if native else "python")
    assert skipping.stats.skipped[0][0] == 3


def _first_error_text(loader):
    with pytest.raises(Exception) as info:
        list(loader)
    return str(info.value) + "\n".join(getattr(info.value, "__notes__", []))


def test_native_loader_pickles_and_runs_again(voc_root):
    import pickle

    loader = DataLoader(
        detection(voc_root, issue_transforms(p=0.0)),
        batch_size=6,
        shuffle=True,
        seed=1,
        num_workers=2,
        collate_fn=detection_collate,
    )
    first = [images for images, _ in loader]
    clone = pickle.loads(pickle.dumps(loader))  # e.g. DDP spawn: the engine is rebuilt there
    clone.set_epoch(0)
    again = [images for images, _ in clone]
    assert clone.stats.path == "native"
    assert all(torch.equal(a, b) for a, b in zip(first, again)) and len(again) == len(first)


def test_changing_the_dataset_transforms_replans(voc_root):
    ds = detection(voc_root, issue_transforms(size=(64, 64)))
    loader = DataLoader(ds, batch_size=8, collate_fn=detection_collate)
    assert next(iter(loader))[0].shape == (8, 3, 64, 64)
    ds.transforms = issue_transforms(size=(32, 48))
    assert next(iter(loader))[0].shape == (8, 3, 32, 48)
    assert loader.stats.path == "native"
