"""The native engine end to end: files -> ordered batches, vs torchvision + PIL decoding."""

import gc
import threading
import time

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DistributedSampler, RandomSampler
from torchvision import tv_tensors
from torchvision.transforms import v2

from conveyor.errors import DecodeError
from conveyor.loader.engine import Engine, run_pipeline

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
DETECTION = [
    {"op": "resize", "size": [96, 96]},
    {"op": "hflip", "p": 0.5},
    {"op": "to_dtype", "dtype": "float32", "scale": True},
    {"op": "normalize", "mean": MEAN, "std": STD},
]


def photo(height, width, seed):
    rng = np.random.default_rng(seed)
    coarse = torch.from_numpy(rng.integers(0, 256, (1, 3, 4, 5)).astype(np.float32))
    image = torch.nn.functional.interpolate(coarse, size=(height, width), mode="bicubic")[0]
    image = image.permute(1, 2, 0).numpy() + rng.normal(0, 5, (height, width, 3))
    return np.clip(image, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """23 JPEGs of varied sizes, a PNG mask each, and 0-3 boxes each."""
    root = tmp_path_factory.mktemp("engine_data")
    rng = np.random.default_rng(0)
    images, masks, boxes, labels, offsets = [], [], [], [], [0]
    for i in range(23):
        height, width = int(rng.integers(60, 140)), int(rng.integers(60, 160))
        path = root / f"{i:03d}.jpg"
        Image.fromarray(photo(height, width, i)).save(path, quality=92)
        images.append(str(path))
        mask_path = root / f"{i:03d}.png"
        mask = Image.fromarray(rng.integers(0, 21, (height, width)).astype(np.uint8), mode="P")
        mask.putpalette([c for k in range(256) for c in (k, 255 - k, k // 2)])
        mask.save(mask_path)
        masks.append(str(mask_path))
        for _ in range(i % 4):
            x0, y0 = rng.uniform(0, width / 2), rng.uniform(0, height / 2)
            boxes.append([x0, y0, x0 + rng.uniform(5, width / 2), y0 + rng.uniform(5, height / 2)])
            labels.append(int(rng.integers(1, 21)))
        offsets.append(len(boxes))
    return {
        "images": images,
        "masks": masks,
        "boxes": np.array(boxes, np.float32),
        "labels": np.array(labels, np.int64),
        "offsets": np.array(offsets, np.int64),
    }


def epoch(engine, number=0, **kwargs):
    engine.start_epoch(number, **kwargs)
    batches = []
    while (batch := engine.next_batch()) is not None:
        batches.append(batch)
    return batches


def test_batches_match_torchvision_on_pil_decoded_images(dataset):
    engine = Engine(
        DETECTION[:1] + [{"op": "hflip", "p": 0.0}] + DETECTION[2:],
        dataset["images"],
        boxes=dataset["boxes"],
        labels=dataset["labels"],
        offsets=dataset["offsets"],
        batch_size=5,
        num_threads=2,
    )
    batches = epoch(engine)
    assert len(batches) == len(engine) == 5
    assert [len(b.indices) for b in batches] == [5, 5, 5, 5, 3]
    tf = v2.Compose(
        [
            v2.ToImage(),
            v2.Resize((96, 96)),
            v2.RandomHorizontalFlip(0.0),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(MEAN, STD),
        ]
    )
    for batch in batches:
        assert (
            batch.images.shape == (len(batch.indices), 3, 96, 96)
            and batch.images.dtype == np.float32
        )
        for slot, index in enumerate(batch.indices):
            pil = Image.open(dataset["images"][index]).convert("RGB")
            lo, hi = dataset["offsets"][index], dataset["offsets"][index + 1]
            canvas = (pil.height, pil.width)
            image, boxes = tf(
                pil,
                tv_tensors.BoundingBoxes(
                    torch.from_numpy(dataset["boxes"][lo:hi]), format="XYXY", canvas_size=canvas
                ),
            )
            tolerance = 1 / 255 / min(STD) + 1e-5
            assert np.abs(batch.images[slot] - image.numpy()).max() <= tolerance
            b0, b1 = batch.box_offsets[slot], batch.box_offsets[slot + 1]
            np.testing.assert_allclose(batch.boxes[b0:b1], boxes.numpy(), rtol=1e-5, atol=1e-3)
            np.testing.assert_array_equal(batch.labels[b0:b1], dataset["labels"][lo:hi])
    assert sorted(np.concatenate([b.indices for b in batches]).tolist()) == list(range(23))


def test_deterministic_whatever_the_thread_count(dataset):
    pipeline = [
        {"op": "random_resized_crop", "size": 48},
        {"op": "hflip"},
        {"op": "to_dtype", "dtype": "float32", "scale": True},
    ]
    results = []
    for threads in (0, 1, 2, 3):
        engine = Engine(
            pipeline,
            dataset["images"],
            boxes=dataset["boxes"],
            labels=dataset["labels"],
            offsets=dataset["offsets"],
            batch_size=4,
            num_threads=threads,
            shuffle=True,
            seed=11,
        )
        batches = epoch(engine, 3)
        results.append(batches)
        engine.close()
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a.indices, b.indices)
            np.testing.assert_array_equal(a.images, b.images)
            np.testing.assert_array_equal(a.boxes, b.boxes)
            np.testing.assert_array_equal(a.box_offsets, b.box_offsets)


def test_unordered_delivery_gives_the_same_batches(dataset):
    ordered = epoch(
        Engine(DETECTION, dataset["images"], batch_size=3, num_threads=3, shuffle=True, seed=2)
    )
    unordered = epoch(
        Engine(
            DETECTION,
            dataset["images"],
            batch_size=3,
            num_threads=3,
            shuffle=True,
            seed=2,
            in_order=False,
        )
    )
    by_index = {b.batch_index: b for b in unordered}
    assert sorted(by_index) == list(range(len(ordered)))
    for batch in ordered:
        np.testing.assert_array_equal(by_index[batch.batch_index].images, batch.images)


def test_engine_matches_run_pipeline_per_sample(dataset):
    pipeline = [{"op": "random_resized_crop", "size": [40, 50]}, {"op": "hflip"}]
    engine = Engine(
        pipeline, dataset["images"], batch_size=6, seed=4, num_threads=2, dct_scaling=False
    )
    for batch in epoch(engine, 7):
        for slot, index in enumerate(batch.indices):
            decoded = np.asarray(Image.open(dataset["images"][index]).convert("RGB"))
            expected = run_pipeline(pipeline, decoded, seed=4, epoch=7, index=int(index))[0]
            np.testing.assert_array_equal(batch.images[slot], expected)  # same decode, same ops


def test_dct_scaled_decoding_stays_close_to_the_full_decode(tmp_path):
    paths = []
    for i in range(6):
        path = tmp_path / f"{i}.jpg"
        Image.fromarray(photo(600, 800, i)).save(path, quality=90)
        paths.append(str(path))
    for size in ([150, 200], [70, 90], [30, 40]):
        results = []
        for dct in (True, False):
            engine = Engine([{"op": "resize", "size": size}], paths, batch_size=6, dct_scaling=dct)
            results.append(epoch(engine)[0].images.astype(int))
        difference = np.abs(results[0] - results[1])
        assert difference.mean() < 1.0 and np.percentile(difference, 99) <= 6


def test_shuffle_is_a_new_permutation_each_epoch(dataset):
    engine = Engine(
        [{"op": "resize", "size": [8, 8]}], dataset["images"], batch_size=4, shuffle=True, seed=1
    )
    orders = [np.concatenate([b.indices for b in epoch(engine, e)]).tolist() for e in range(3)]
    assert all(sorted(order) == list(range(23)) for order in orders)
    assert orders[0] != orders[1] != orders[2]
    again = Engine(
        [{"op": "resize", "size": [8, 8]}], dataset["images"], batch_size=5, shuffle=True, seed=1
    )
    assert np.concatenate([b.indices for b in epoch(again, 1)]).tolist() == orders[1]
    plain = Engine([{"op": "resize", "size": [8, 8]}], dataset["images"], batch_size=4)
    assert np.concatenate([b.indices for b in epoch(plain)]).tolist() == list(range(23))


@pytest.mark.parametrize("world_size", [1, 2, 3, 4, 5, 7])
@pytest.mark.parametrize("shard_drop_last", [False, True])
def test_sharding_follows_distributed_sampler(dataset, world_size, shard_drop_last):
    n = len(dataset["images"])
    per_rank, counts = [], np.zeros(n, int)
    for rank in range(world_size):
        engine = Engine(
            [{"op": "resize", "size": [8, 8]}],
            dataset["images"],
            batch_size=4,
            rank=rank,
            world_size=world_size,
            shard_drop_last=shard_drop_last,
        )
        sampler = DistributedSampler(
            range(n), num_replicas=world_size, rank=rank, shuffle=False, drop_last=shard_drop_last
        )
        indices = np.concatenate([b.indices for b in epoch(engine)]).tolist()
        assert engine.num_samples == len(sampler) == len(indices)
        assert indices == list(sampler)  # unshuffled: the very same order
        per_rank.append(indices)
        shuffled = Engine(
            [{"op": "resize", "size": [8, 8]}],
            dataset["images"],
            batch_size=4,
            rank=rank,
            world_size=world_size,
            shard_drop_last=shard_drop_last,
            shuffle=True,
            seed=3,
        )
        for i in np.concatenate([b.indices for b in epoch(shuffled, 2)]):
            counts[i] += 1
    assert len({len(p) for p in per_rank}) == 1
    total = len(per_rank[0]) * world_size
    if shard_drop_last:
        assert counts.max() == 1 and counts.sum() == total  # disjoint, tail dropped
    else:
        assert counts.min() == 1 and counts.sum() == total  # all covered, padding repeats


def test_invalid_rank_and_options():
    with pytest.raises(ValueError, match="rank"):
        Engine([], ["a.jpg"], rank=2, world_size=2)
    with pytest.raises(ValueError, match="batch_size"):
        Engine([], ["a.jpg"], batch_size=0)
    with pytest.raises(ValueError, match="offsets"):
        Engine([], ["a.jpg"], boxes=np.zeros((1, 4), np.float32), offsets=[0, 2])
    with pytest.raises(ValueError, match="on_error"):
        Engine([], ["a.jpg"], on_error="ignore")
    with pytest.raises(ValueError, match="mask_paths"):
        Engine([], ["a.jpg"], mask_paths=["a.png", "b.png"])


def test_indices_override_and_resume(dataset):
    generator = torch.Generator().manual_seed(123)
    order = list(RandomSampler(range(23), generator=generator))
    engine = Engine(
        [{"op": "resize", "size": [8, 8]}], dataset["images"], batch_size=4, shuffle=True
    )
    full = epoch(engine, 0, indices=order)
    assert np.concatenate([b.indices for b in full]).tolist() == order
    resumed = epoch(engine, 0, indices=order, start_batch=3)
    assert [b.batch_index for b in resumed] == [3, 4, 5]
    for a, b in zip(full[3:], resumed):
        np.testing.assert_array_equal(a.images, b.images)
    native = epoch(engine, 5)
    assert [b.batch_index for b in epoch(engine, 5, start_batch=4)] == [4, 5]
    assert len(native) == 6
    with pytest.raises(ValueError, match="out of range"):
        engine.start_epoch(0, indices=[0, 23])


def test_masks_follow_the_images(dataset):
    pipeline = [{"op": "resize", "size": [50, 60]}, {"op": "hflip", "p": 1.0}]
    engine = Engine(pipeline, dataset["images"], mask_paths=dataset["masks"], batch_size=4)
    for batch in epoch(engine):
        assert batch.masks.shape == (len(batch.indices), 50, 60) and batch.masks.dtype == np.uint8
        for slot, index in enumerate(batch.indices):
            mask = tv_tensors.Mask(torch.from_numpy(np.array(Image.open(dataset["masks"][index]))))
            expected = v2.Compose([v2.Resize((50, 60)), v2.RandomHorizontalFlip(1.0)])(mask)
            np.testing.assert_array_equal(batch.masks[slot], expected.numpy())


def test_variable_sizes_come_as_lists(dataset):
    engine = Engine(
        [{"op": "resize", "size": 32}], dataset["images"], mask_paths=dataset["masks"], batch_size=4
    )
    assert engine.output_shape is None
    batch = epoch(engine)[0]
    assert isinstance(batch.images, list) and len(batch.images) == 4
    for image, mask, index in zip(batch.images, batch.masks, batch.indices):
        pil = Image.open(dataset["images"][index])
        expected = v2.Resize(32)(v2.functional.pil_to_tensor(pil))
        assert image.shape == expected.shape and mask.shape == expected.shape[1:]
        assert np.abs(image.astype(int) - expected.numpy().astype(int)).max() <= 1


def test_feed_buffer_writes_in_place(dataset):
    engine = Engine(DETECTION, dataset["images"], batch_size=4)
    buffers = [np.full((4, 3, 96, 96), np.nan, np.float32) for _ in range(3)]
    ids = [engine.feed_buffer(b) for b in buffers]
    engine.start_epoch(0)
    batches = [engine.next_batch() for _ in range(3)]
    for batch, buffer, buffer_id in zip(batches, buffers, ids):
        assert batch.buffer_id == buffer_id
        assert np.shares_memory(batch.images, buffer) and not np.isnan(buffer).any()
    assert engine.next_batch().buffer_id == -1  # no more fed buffers: engine-owned memory
    with pytest.raises(ValueError):
        engine.feed_buffer(np.zeros((2, 3, 96, 96), np.float32))


@pytest.fixture()
def broken(dataset, tmp_path):
    images = list(dataset["images"][:8])
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(open(images[2], "rb").read()[:200])
    images[2] = str(corrupt)
    images[5] = str(tmp_path / "missing.jpg")
    return images


def test_errors_name_the_file_and_sample(broken):
    engine = Engine([{"op": "resize", "size": [16, 16]}], broken, batch_size=2, num_threads=2)
    engine.start_epoch(0)
    assert len(engine.next_batch().indices) == 2
    with pytest.raises(DecodeError, match=r"sample 2 \(.*corrupt.jpg\)"):
        engine.next_batch()
    with pytest.raises(FileNotFoundError, match=r"sample 5 \(.*missing.jpg\)"):
        engine.next_batch()
    assert engine.next_batch().indices.tolist() == [6, 7]  # the epoch goes on
    assert engine.next_batch() is None


def test_skip_mode_drops_bad_samples(broken):
    engine = Engine(
        [{"op": "resize", "size": [16, 16]}], broken, batch_size=3, num_threads=2, on_error="skip"
    )
    batches = epoch(engine)
    assert [b.indices.tolist() for b in batches] == [[0, 1], [3, 4], [6, 7]]
    skipped = [s for b in batches for s in b.skipped]
    assert [s[0] for s in skipped] == [2, 5]
    assert "corrupt.jpg" in skipped[0][1] and "missing.jpg" in skipped[1][1]
    assert batches[0].images.shape == (2, 3, 16, 16)
    reference = Engine([{"op": "resize", "size": [16, 16]}], broken[:2], batch_size=2)
    np.testing.assert_array_equal(epoch(reference)[0].images, batches[0].images)
    assert engine.stats()["samples_skipped"] == 2


def test_mask_size_mismatch_is_an_error(dataset):
    masks = list(dataset["masks"])
    masks[0], masks[1] = masks[1], masks[0]
    engine = Engine(
        [{"op": "resize", "size": [16, 16]}],
        dataset["images"][:2],
        mask_paths=masks[:2],
        batch_size=1,
    )
    engine.start_epoch(0)
    with pytest.raises(DecodeError, match="mask .* size"):
        engine.next_batch()


def test_breaking_mid_epoch_and_deleting_never_hangs(dataset):
    before = threading.active_count()
    for threads in (0, 1, 3):
        engine = Engine(
            DETECTION, dataset["images"] * 4, batch_size=4, num_threads=threads, prefetch=3
        )
        engine.start_epoch(0)
        engine.next_batch()
        engine.start_epoch(1)  # restart mid-epoch
        engine.next_batch()
        started = time.perf_counter()
        del engine
        gc.collect()
        assert time.perf_counter() - started < 5
    engine = Engine(DETECTION, dataset["images"], batch_size=4, num_threads=2)
    engine.start_epoch(0)
    engine.close()
    engine.close()
    assert engine.next_batch() is None
    assert threading.active_count() == before


def test_batches_handed_out_are_never_rewritten(dataset):
    engine = Engine(DETECTION, dataset["images"], batch_size=4, num_threads=2, prefetch=2)
    kept = []
    for e in range(3):
        for batch in epoch(engine, e):
            kept.append((batch.images, batch.images.copy()))
    for live, snapshot in kept:
        np.testing.assert_array_equal(live, snapshot)


def test_png_gray_and_cmyk_inputs_become_rgb(tmp_path):
    rgb = photo(40, 50, 3)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    Image.fromarray(rgb).convert("L").save(tmp_path / "b.jpg", quality=95)
    Image.fromarray(rgb).convert("RGBA").save(tmp_path / "c.png")
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "d.jpg", quality=95)
    paths = [str(tmp_path / n) for n in ("a.png", "b.jpg", "c.png", "d.jpg")]
    batch = epoch(Engine([{"op": "resize", "size": [20, 25]}], paths, batch_size=4))[0]
    for slot, path in enumerate(paths):
        expected = v2.Resize((20, 25))(v2.functional.pil_to_tensor(Image.open(path).convert("RGB")))
        assert np.abs(batch.images[slot].astype(int) - expected.numpy().astype(int)).max() <= 1


def test_empty_dataset_and_batch_larger_than_dataset(dataset):
    empty = Engine([{"op": "resize", "size": [8, 8]}], [], batch_size=4)
    assert len(empty) == 0 and epoch(empty) == []
    small = Engine([{"op": "resize", "size": [8, 8]}], dataset["images"][:3], batch_size=8)
    assert [len(b.indices) for b in epoch(small)] == [3]
    dropped = Engine(
        [{"op": "resize", "size": [8, 8]}], dataset["images"][:3], batch_size=8, drop_last=True
    )
    assert len(dropped) == 0 and epoch(dropped) == []
