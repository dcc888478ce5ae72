"""conveyor.samplers: torchvision's aspect-ratio grouping, read from annotations, resumable,
shardable; and any batch_sampler (conveyor's, torchvision's, a plain one) through DataLoader.

torchvision's detection references are not an installed package, so their GroupedBatchSampler
cannot be imported here; its documented behaviour is checked on hand-computed cases and by
invariants (benchmarks/check_references.py runs the real one from a vision checkout)."""

import itertools
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from imagegen import encode_jpeg, encode_png, photo_like
from torch.utils.data import (
    BatchSampler,
    DistributedSampler,
    RandomSampler,
    SequentialSampler,
    Subset,
)

from conveyor import datasets, io
from conveyor.errors import DecodeError
from conveyor.samplers import (
    GroupedBatchSampler,
    aspect_ratio_bins,
    aspect_ratio_groups,
    aspect_ratios,
    group_batches,
)

# (width, height) of the parts of the mixed tree: landscape, portrait, square, wide, tall
SIZES = [(160, 120), (120, 160), (128, 128), (200, 96), (90, 180)]


def mixed_voc(base: Path, per_size: int = 6) -> Path:
    """One VOC2012 tree whose images have several aspect ratios (interleaved in the split)."""
    combined = base / "VOCdevkit" / "VOC2012"
    folders = ("JPEGImages", "Annotations", "SegmentationClass")
    for folder in folders + ("ImageSets/Main", "ImageSets/Segmentation"):
        (combined / folder).mkdir(parents=True, exist_ok=True)
    ids = []
    for part, size in enumerate(SIZES):
        tree = datasets.make_synthetic_voc(
            base / f"part{part}", num_images=per_size, image_size=size, seed=part
        )
        for line in (tree / "ImageSets" / "Main" / "trainval.txt").read_text().split():
            new_id = f"{part}_{line}"
            for folder, ext in zip(folders, (".jpg", ".xml", ".png")):
                shutil.copy(tree / folder / f"{line}{ext}", combined / folder / f"{new_id}{ext}")
            ids.append(new_id)
    ids = [ids[i] for i in np.random.default_rng(0).permutation(len(ids))]
    for split in ("ImageSets/Main", "ImageSets/Segmentation"):
        (combined / split / "trainval.txt").write_text("".join(f"{i}\n" for i in ids))
    return base


@pytest.fixture(scope="module")
def voc_root(tmp_path_factory):
    return mixed_voc(tmp_path_factory.mktemp("mixed"))


def true_ratio(path):
    width, height = torchvision.io.decode_image(str(path)).shape[-1:-3:-1]
    return width / height


# --------------------------------------------------------------------------- aspect ratios


def test_aspect_ratios_come_from_the_annotations_and_equal_the_images(voc_root):
    dataset = datasets.VOCDetection(voc_root, image_set="trainval", target_format="boxes")
    ratios = aspect_ratios(dataset)
    assert ratios.dtype == np.float64 and len(ratios) == len(dataset)
    assert ratios.tolist() == [true_ratio(p) for p in dataset.images]
    assert sorted(set(np.round(ratios, 6))) == sorted({round(w / h, 6) for w, h in SIZES})


def test_aspect_ratios_open_no_image_when_the_xml_has_sizes(voc_root, monkeypatch):
    dataset = datasets.VOCDetection(voc_root, image_set="trainval", target_format="boxes")

    def refuse(*args, **kwargs):
        raise AssertionError("an image was opened")

    monkeypatch.setattr(io, "read_image_size", refuse)
    monkeypatch.setattr("PIL.Image.open", refuse)
    assert len(aspect_ratios(dataset)) == len(dataset)


@pytest.mark.parametrize("size_xml", ["<width>0</width><height>0</height>", ""])
def test_missing_or_zero_xml_size_falls_back_to_the_image_header(tmp_path, size_xml):
    root = mixed_voc(tmp_path, per_size=2)
    dataset = datasets.VOCDetection(root, image_set="trainval", target_format="dict")
    victim = Path(dataset.annotations[3])
    text = victim.read_text()
    text = re.sub(r"<width>\d+</width>\s*<height>\d+</height>", size_xml, text)
    victim.write_text(text)
    dataset = datasets.VOCDetection(root, image_set="trainval", target_format="dict")
    assert dataset.native_annotations.widths[3] in (0, -1)
    ratios = aspect_ratios(dataset)
    assert ratios.tolist() == [true_ratio(p) for p in dataset.images]


def test_missing_xml_size_and_unreadable_image_names_the_sample(tmp_path):
    root = mixed_voc(tmp_path, per_size=2)
    dataset = datasets.VOCDetection(root, image_set="trainval", target_format="dict")
    victim = Path(dataset.annotations[4])
    victim.write_text(re.sub(r"<size>.*?</size>", "", victim.read_text(), flags=re.S))
    Path(dataset.images[4]).write_bytes(b"\xff\xd8\xff garbage")
    dataset = datasets.VOCDetection(root, image_set="trainval", target_format="dict")
    with pytest.raises(
        DecodeError, match=r"sample 4: .*" + re.escape(Path(dataset.images[4]).name)
    ):
        aspect_ratios(dataset)


def test_aspect_ratios_of_torchvision_voc_subset_segmentation_and_custom(voc_root):
    ours = datasets.VOCDetection(voc_root, image_set="trainval", target_format="boxes")
    expected = aspect_ratios(ours)
    theirs = torchvision.datasets.VOCDetection(voc_root, image_set="trainval")
    assert aspect_ratios(theirs).tolist() == expected.tolist()
    segmentation = datasets.VOCSegmentation(voc_root, image_set="trainval")
    assert aspect_ratios(segmentation).tolist() == expected.tolist()
    picks = [5, 0, 17]
    assert aspect_ratios(Subset(ours, picks)).tolist() == expected[picks].tolist()
    assert aspect_ratios(ours, picks).tolist() == expected[picks].tolist()

    class Custom(torch.utils.data.Dataset):
        def __len__(self):
            return 2

        def get_height_and_width(self, index):
            return (100, 300) if index == 0 else (50, 25)

    assert aspect_ratios(Custom()).tolist() == [3.0, 0.5]
    with pytest.raises(TypeError, match="get_height_and_width"):
        aspect_ratios(torch.utils.data.TensorDataset(torch.zeros(3)))


def test_read_image_size_jpeg_png_and_errors(tmp_path):
    jpeg = tmp_path / "a.jpg"
    jpeg.write_bytes(encode_jpeg(photo_like(37, 53)))
    png = tmp_path / "b.jpg"  # a PNG behind a .jpg name: the signature decides
    png.write_bytes(encode_png(photo_like(21, 34), 2, 8))
    assert io.read_image_size(jpeg) == (53, 37)
    assert io.read_image_size(png) == (34, 21)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really")
    with pytest.raises(DecodeError, match="bad.jpg"):
        io.read_image_size(bad)
    with pytest.raises(FileNotFoundError):
        io.read_image_size(tmp_path / "absent.jpg")


# ------------------------------------------------------------------------------- groups


def test_bins_and_groups_are_torchvisions():
    # create_aspect_ratio_groups: bins 2 ** linspace(-1, 1, 2k + 1), bisect_right
    assert aspect_ratio_bins(0) == [1.0]
    assert aspect_ratio_bins(1) == [0.5, 1.0, 2.0]
    assert np.allclose(aspect_ratio_bins(3), 2 ** np.linspace(-1, 1, 7))
    ratios = [0.4, 0.5, 0.7, 1.0, 1.2, 2.0, 3.0]
    assert aspect_ratio_groups(ratios, 1) == [0, 1, 1, 2, 2, 3, 3]
    assert aspect_ratio_groups(ratios, 0) == [0, 0, 0, 1, 1, 1, 1]
    with pytest.raises(ValueError, match="group_factor"):
        aspect_ratio_groups(ratios, -1)
    with pytest.raises(ValueError, match="sample 1"):
        aspect_ratio_groups([1.0, float("nan")], 3)


def test_group_batches_hand_computed_case():
    # groups: index -> group;  order walks 0..9
    groups = [0, 1, 0, 1, 1, 0, 2, 0, 1, 2]
    # walking: g1 fills [1, 3, 4] at index 4; g0 fills [0, 2, 5] at index 5; then g2 gets 6,
    # g0 gets 7, g1 gets 8, g2 gets 9. Owed: 10 // 3 = 3, 2 made. The largest partial buffer,
    # g2=[6, 9], is completed with g2's first sample of the epoch, 6.
    assert group_batches(range(10), groups, 3) == [[1, 3, 4], [0, 2, 5], [6, 9, 6]]
    assert group_batches(range(8), groups, 3) == [[1, 3, 4], [0, 2, 5]]  # nothing owed
    # ties (g1, g0, g2 all hold one sample): dict order decides, and the buffers of g1 and g0
    # were re-created (moved to the end) when they yielded, g1 first, before g2 was started
    assert group_batches([0, 1, 2, 3, 4, 5, 7, 8, 6], groups, 3)[2] == [8, 1, 3]
    # a group smaller than the missing count is cycled
    assert group_batches([6, 0, 1, 2, 3], [0, 1, 2, 3, 4, 5, 9], 4) == [[6, 6, 6, 6]]
    with pytest.raises(IndexError, match="index 10"):
        group_batches([10], groups, 2)


@pytest.mark.parametrize("batch_size", [1, 2, 3, 5, 8])
def test_group_batches_invariants(batch_size):
    rng = np.random.default_rng(batch_size)
    groups = rng.integers(0, 6, size=101).tolist()
    order = rng.permutation(101).tolist()
    batches = group_batches(order, groups, batch_size)
    assert len(batches) == 101 // batch_size
    for batch in batches:
        assert len(batch) == batch_size and len({groups[i] for i in batch}) == 1
    # first, every full chunk of B consecutive (in base order) samples of a group, in the order
    # the chunk's last sample arrives; then the largest remainders, each completed with its
    # group's first samples (cycled)
    position = {index: p for p, index in enumerate(order)}
    per_group = {}
    for index in order:
        per_group.setdefault(groups[index], []).append(index)
    full = [
        members[start : start + batch_size]
        for members in per_group.values()
        for start in range(0, len(members) - batch_size + 1, batch_size)
    ]
    full.sort(key=lambda chunk: position[chunk[-1]])
    assert batches[: len(full)] == full
    rest = batches[len(full) :]
    remainders = {g: m[len(m) // batch_size * batch_size :] for g, m in per_group.items()}
    lengths = []
    for batch in rest:
        members = per_group[groups[batch[0]]]
        head = remainders[groups[batch[0]]]
        assert batch[: len(head)] == head
        fill = list(itertools.islice(itertools.cycle(members), batch_size - len(head)))
        assert batch[len(head) :] == fill
        lengths.append(len(head))
    assert lengths == sorted(lengths, reverse=True)
    unused = sorted((len(r) for r in remainders.values()), reverse=True)[len(rest) :]
    assert all(length <= min(lengths, default=batch_size) for length in unused)


# ------------------------------------------------------------------- GroupedBatchSampler


def test_sampler_accepts_torchvisions_signature_and_checks_it():
    assert list(GroupedBatchSampler(SequentialSampler(range(10)), [0, 1] * 5, 2)) == [
        [0, 2],
        [1, 3],
        [4, 6],
        [5, 7],
        [8, 0],
    ]
    with pytest.raises(ValueError, match="Sampler"):
        GroupedBatchSampler([0, 1, 2], [0, 0, 0], 2)
    with pytest.raises(ValueError, match="batch_size"):
        GroupedBatchSampler(None, [0, 0, 0], 0)


def test_seeded_shuffle_by_seed_and_epoch_equals_distributed_sampler_order():
    groups = [i % 3 for i in range(40)]
    ours = GroupedBatchSampler(None, groups, 4, seed=7)
    base = DistributedSampler(range(40), num_replicas=1, rank=0, shuffle=True, seed=7)
    for epoch in range(3):  # epochs count with each iter()
        base.set_epoch(epoch)
        assert list(ours) == group_batches(list(base), groups, 4)
    ours.set_epoch(1)
    base.set_epoch(1)
    assert list(ours) == group_batches(list(base), groups, 4)
    assert list(GroupedBatchSampler(None, groups, 4, seed=8)) != group_batches(
        list(DistributedSampler(range(40), 1, 0, seed=7)), groups, 4
    )


def test_from_dataset_groups_by_annotation_ratio(voc_root):
    dataset = datasets.VOCDetection(voc_root, image_set="trainval", target_format="boxes")
    sampler = GroupedBatchSampler.from_dataset(dataset, 4, group_factor=3, seed=1)
    ratios = aspect_ratios(dataset)
    assert len(sampler) == len(dataset) // 4
    for batch in sampler:
        assert len(batch) == 4 and len(set(aspect_ratio_groups(ratios[batch], 3))) == 1


@pytest.mark.parametrize("world_size", [2, 3])
def test_shards_have_equal_batch_counts_and_match_torchvisions_ddp_pairing(world_size):
    rng = np.random.default_rng(world_size)
    groups = rng.integers(0, 4, size=53).tolist()
    counts = set()
    for rank in range(world_size):
        ours = GroupedBatchSampler(None, groups, 3, seed=5).shard(rank, world_size)
        base = DistributedSampler(range(53), world_size, rank, shuffle=True, seed=5)
        for epoch in range(2):
            ours.set_epoch(epoch)
            base.set_epoch(epoch)
            batches = list(ours)
            assert batches == group_batches(list(base), groups, 3)  # torchvision's DDP setup
            counts.add(len(batches))
            assert len(batches) == len(ours)
    assert len(counts) == 1
    with pytest.raises(ValueError, match="rank"):
        GroupedBatchSampler(None, groups, 3).shard(3, 3)


@pytest.mark.parametrize(
    "make_base",
    [
        lambda: None,
        lambda: RandomSampler(range(30), generator=torch.Generator().manual_seed(3)),
        lambda: SequentialSampler(range(30)),
    ],
    ids=["seeded", "random-with-generator", "sequential"],
)
def test_resume_mid_epoch_is_exact(make_base):
    groups = [i % 4 for i in range(30)]
    reference = GroupedBatchSampler(make_base(), groups, 3, seed=2)
    epochs = [list(reference) for _ in range(3)]

    run = GroupedBatchSampler(make_base(), groups, 3, seed=2)
    list(run)  # epoch 0
    iterator = iter(run)  # epoch 1
    seen = [next(iterator) for _ in range(4)]
    state = run.state_dict()
    assert (state["epoch"], state["batches_yielded"]) == (1, 4)

    resumed = GroupedBatchSampler(make_base(), groups, 3, seed=2)
    resumed.load_state_dict(state)
    assert seen + list(resumed) == epochs[1]
    assert list(resumed) == epochs[2]


def test_state_dict_warns_once_for_a_sampler_that_cannot_replay():
    run = GroupedBatchSampler(RandomSampler(range(12)), [0] * 12, 3)
    with pytest.warns(UserWarning, match="RandomSampler cannot replay"):
        run.state_dict()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run.state_dict()


def test_load_state_dict_checks_its_input():
    run = GroupedBatchSampler(None, [0] * 12, 3)
    with pytest.raises(KeyError, match="batches_yielded"):
        run.load_state_dict({"epoch": 0})
    state = GroupedBatchSampler(None, [0] * 12, 3).shard(1, 2).state_dict()
    with pytest.raises(ValueError, match="rank 1 of 2"):
        run.load_state_dict(state)


# ------------------------------------------------------------ batch samplers in DataLoader


def loader_dataset(root):
    from torchvision.transforms import v2

    tf = v2.Compose([v2.ToImage(), v2.Resize((48, 64)), v2.ToDtype(torch.float32, scale=True)])
    return datasets.VOCDetection(root, image_set="trainval", transforms=tf, target_format="boxes")


def ids_of(batches):
    return [[int(t["image_id"]) for t in targets] for _images, targets in batches]


def conveyor_loader(dataset, batch_sampler, workers=2):
    from conveyor import DataLoader
    from conveyor.collate import detection_collate

    return DataLoader(
        dataset, batch_sampler=batch_sampler, num_workers=workers, collate_fn=detection_collate
    )


@pytest.mark.parametrize("workers", [0, 2])
def test_grouped_batch_sampler_runs_natively_and_equals_torch_dataloader(voc_root, workers):
    from conveyor.collate import detection_collate

    dataset = loader_dataset(voc_root)
    ours = conveyor_loader(dataset, GroupedBatchSampler.from_dataset(dataset, 4, seed=3), workers)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback warning
        batches = list(ours)
    assert ours.stats.path == "native"
    reference = torch.utils.data.DataLoader(
        dataset,
        batch_sampler=GroupedBatchSampler.from_dataset(dataset, 4, seed=3),
        collate_fn=detection_collate,
    )
    expected = list(reference)
    assert ids_of(batches) == ids_of(expected) and len(batches) == len(dataset) // 4
    for (images, targets), (ref_images, ref_targets) in zip(batches, expected):
        assert (images - ref_images).abs().max() <= 2 / 255
        for a, b in zip(targets, ref_targets):
            assert torch.allclose(a["boxes"].float(), b["boxes"].float(), atol=1e-3)
    ratios = aspect_ratios(dataset)
    for ids in ids_of(batches):
        assert len(set(aspect_ratio_groups(ratios[ids], 3))) == 1


def test_plain_batch_sampler_of_the_issue_runs_natively(voc_root):
    dataset = loader_dataset(voc_root)
    make = lambda: BatchSampler(  # noqa: E731
        RandomSampler(dataset, generator=torch.Generator().manual_seed(4)), 7, False
    )
    ours = conveyor_loader(dataset, make())
    batches = ids_of(ours)
    assert ours.stats.path == "native"
    assert batches == list(make()) and [len(b) for b in batches][-1] == len(dataset) % 7


def test_batches_of_varying_size_run_natively_and_exactly(voc_root):
    dataset = loader_dataset(voc_root)
    sizes = [3, 5, 1, 6, 2, 4]

    class Varying(torch.utils.data.Sampler):
        batch_size = 3

        def __iter__(self):
            start = 0
            for size in itertools.cycle(sizes):
                if start >= len(dataset):
                    return
                yield list(range(start, min(start + size, len(dataset))))[::-1]
                start += size

        def __len__(self):
            return len(list(iter(self)))

    for workers in (0, 2):
        ours = conveyor_loader(dataset, Varying(), workers)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            batches = list(ours)
        assert ours.stats.path == "native"
        assert ids_of(batches) == list(Varying())
        assert [len(images) for images, _ in batches][:6] == sizes
        assert all(images.shape[1:] == (3, 48, 64) for images, _ in batches)


@pytest.mark.parametrize("world_size", [2, 3])
def test_loader_shard_forwards_to_the_grouped_sampler(voc_root, world_size):
    dataset = loader_dataset(voc_root)
    per_rank = []
    for rank in range(world_size):
        sampler = GroupedBatchSampler.from_dataset(dataset, 3, seed=9)
        loader = conveyor_loader(dataset, sampler).shard(rank, world_size)
        expected = GroupedBatchSampler.from_dataset(dataset, 3, seed=9).shard(rank, world_size)
        batches = ids_of(loader)
        assert loader.stats.path == "native"
        assert batches == list(expected) and len(batches) == len(loader)
        per_rank.append(batches)
    assert len({len(b) for b in per_rank}) == 1


@pytest.mark.parametrize(
    "make_sampler",
    [
        lambda ds: GroupedBatchSampler.from_dataset(ds, 4, seed=5),
        lambda ds: BatchSampler(
            RandomSampler(ds, generator=torch.Generator().manual_seed(5)), 4, False
        ),
    ],
    ids=["grouped", "batch-sampler-with-generator"],
)
def test_loader_resume_mid_epoch_is_exact(voc_root, make_sampler):
    dataset = loader_dataset(voc_root)
    reference = conveyor_loader(dataset, make_sampler(dataset))
    epochs = [ids_of(reference) for _ in range(3)]
    assert epochs[0] != epochs[1]

    run = conveyor_loader(dataset, make_sampler(dataset))
    ids_of(run)  # epoch 0
    iterator = iter(run)
    seen = ids_of(itertools.islice(iterator, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # these samplers replay: no warning
        state = run.state_dict()
    del iterator

    resumed = conveyor_loader(dataset, make_sampler(dataset))
    resumed.load_state_dict(state)
    assert seen + ids_of(resumed) == epochs[1]
    assert ids_of(resumed) == epochs[2]


def test_loader_warns_once_when_a_batch_sampler_cannot_replay(voc_root):
    dataset = loader_dataset(voc_root)
    loader = conveyor_loader(dataset, BatchSampler(RandomSampler(dataset), 4, False))
    with pytest.warns(UserWarning, match="BatchSampler given cannot replay"):
        loader.state_dict()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loader.state_dict()


def test_fed_buffers_with_batch_samplers_of_fixed_and_varying_size(voc_root):
    # the pinned-memory path: destination buffers of the batch sampler's batch_size are fed to
    # the engine; a larger batch takes engine memory, a smaller one a buffer's first rows
    dataset = loader_dataset(voc_root)
    reference = ids_of(conveyor_loader(dataset, GroupedBatchSampler.from_dataset(dataset, 4)))
    varying = [list(range(i, min(i + size, len(dataset)))) for i, size in ((0, 2), (2, 6), (8, 4))]

    class Varying(torch.utils.data.Sampler):
        batch_size = 4

        def __iter__(self):
            return iter(varying)

        def __len__(self):
            return len(varying)

    for make, expected in (
        (lambda: GroupedBatchSampler.from_dataset(dataset, 4), reference),
        (Varying, varying),
    ):
        loader = conveyor_loader(dataset, make())
        loader._feed_buffers = True
        plain = list(conveyor_loader(dataset, make()))
        fed = list(loader)
        assert loader.stats.path == "native" and ids_of(fed) == expected
        for (images, _), (plain_images, _) in zip(fed, plain):
            assert torch.equal(images, plain_images)


def test_loader_iterating_a_grouped_sampler_over_random_sampler_warns_only_on_state_dict(voc_root):
    dataset = loader_dataset(voc_root)
    sampler = GroupedBatchSampler(RandomSampler(dataset), aspect_ratio_groups(dataset), 4)
    loader = conveyor_loader(dataset, sampler)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(ids_of(loader)) == len(dataset) // 4
    with pytest.warns(UserWarning, match="GroupedBatchSampler given cannot replay"):
        loader.state_dict()


@pytest.mark.parametrize("world_size", [2, 3])
def test_loader_shard_splits_another_batch_sampler_whole(voc_root, world_size):
    # a batch sampler without shard() (torch's, torchvision's) is split batch by batch, as
    # DistributedSampler splits samples: equal counts, padded by repeating the first batches
    from conveyor.loader.sampling import shard_indices

    dataset = loader_dataset(voc_root)
    make = lambda: BatchSampler(SequentialSampler(dataset), 4, False)  # noqa: E731
    for rank in range(world_size):
        loader = conveyor_loader(dataset, make()).shard(rank, world_size)
        batches = ids_of(loader)
        assert loader.stats.path == "native"
        assert batches == shard_indices(list(make()), rank, world_size)
        assert len(batches) == len(loader) == -(-len(make()) // world_size)
