"""The native engine end to end: files -> ordered batches, vs torchvision + PIL decoding."""

import gc
import threading
import time

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import BatchSampler, RandomSampler
from torchvision import tv_tensors
from torchvision.transforms import v2

from conveyor.errors import DecodeError
from conveyor.loader.engine import Engine, IndexBatches, run_pipeline

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


def epoch(engine, number=0, batches=None, batch_size=4, start_batch=0):
    """Drain one epoch; by default the dataset in order, in batches of ``batch_size``."""
    if batches is None:
        batches = IndexBatches.regular(range(engine.dataset_size), batch_size)
    engine.start_epoch(number, batches, start_batch=start_batch)
    batches = []
    while (batch := engine.next_batch()) is not None:
        batches.append(batch)
    return batches


def test_batches_match_torchvision_on_pil_decoded_images(dataset):
    engine = Engine(
        DETECTION[:1] + [{"op": "hflip", "p": 0.0}] + DETECTION[2:],
        dataset["images"],
        boxes=dataset["boxes"],
        offsets=dataset["offsets"],
        num_threads=2,
    )
    batches = epoch(engine, batch_size=5)
    assert len(batches) == 5
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
            np.testing.assert_array_equal(batch.box_rows[b0:b1], np.arange(lo, hi))  # none lost
    assert sorted(np.concatenate([b.indices for b in batches]).tolist()) == list(range(23))


def shuffled(count, batch_size, seed):
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed)).tolist()
    return IndexBatches.regular(order, batch_size)


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
            offsets=dataset["offsets"],
            num_threads=threads,
            seed=11,
        )
        batches = epoch(engine, 3, shuffled(23, 4, 5))
        results.append(batches)
        engine.close()
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a.indices, b.indices)
            np.testing.assert_array_equal(a.images, b.images)
            np.testing.assert_array_equal(a.boxes, b.boxes)
            np.testing.assert_array_equal(a.box_offsets, b.box_offsets)
            np.testing.assert_array_equal(a.box_rows, b.box_rows)


def test_unordered_delivery_gives_the_same_batches(dataset):
    order = shuffled(23, 3, 2)
    ordered = epoch(Engine(DETECTION, dataset["images"], num_threads=3, seed=2), 0, order)
    unordered = epoch(
        Engine(DETECTION, dataset["images"], num_threads=3, seed=2, in_order=False), 0, order
    )
    by_index = {b.batch_index: b for b in unordered}
    assert sorted(by_index) == list(range(len(ordered)))
    for batch in ordered:
        np.testing.assert_array_equal(by_index[batch.batch_index].images, batch.images)


def test_engine_matches_run_pipeline_per_sample(dataset):
    pipeline = [{"op": "random_resized_crop", "size": [40, 50]}, {"op": "hflip"}]
    engine = Engine(pipeline, dataset["images"], seed=4, num_threads=2, dct_scaling=False)
    for batch in epoch(engine, 7, shuffled(23, 6, 1)):
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
            engine = Engine([{"op": "resize", "size": size}], paths, dct_scaling=dct)
            results.append(epoch(engine, batch_size=6)[0].images.astype(int))
        difference = np.abs(results[0] - results[1])
        assert difference.mean() < 1.0 and np.percentile(difference, 99) <= 6


def test_batches_come_back_exactly_as_given(dataset):
    """Python owns the order: any batch sizes (a batch_sampler's), repeats, empty batches."""
    given = [[22, 0, 5], [7], [], [3, 3, 1, 9, 12, 2, 4], [11, 10]]
    for threads in (0, 2):
        engine = Engine(DETECTION, dataset["images"], num_threads=threads, prefetch=2)
        batches = epoch(engine, 0, given)
        assert [b.indices.tolist() for b in batches] == given
        assert [b.batch_index for b in batches] == [0, 1, 2, 3, 4]
        assert [b.images.shape[0] for b in batches] == [3, 1, 0, 7, 2]
        reference = {}
        for batch in batches:
            for slot, index in enumerate(batch.indices.tolist()):
                reference.setdefault(index, batch.images[slot])
                np.testing.assert_array_equal(batch.images[slot], reference[index])
    sampler = BatchSampler(
        RandomSampler(range(23), generator=torch.Generator().manual_seed(1)), 5, False
    )
    given = list(sampler)
    engine = Engine([{"op": "resize", "size": 16}], dataset["images"], num_threads=2)
    assert [b.indices.tolist() for b in epoch(engine, 0, given)] == given  # variable sizes


def test_bad_batches_and_options_are_rejected(dataset):
    engine = Engine([{"op": "resize", "size": [8, 8]}], dataset["images"], num_threads=1)
    with pytest.raises(ValueError, match="out of range"):
        engine.start_epoch(0, [[0, 23]])
    with pytest.raises(ValueError, match="out of range"):
        engine.start_epoch(0, [[-1]])
    with pytest.raises(ValueError, match="start with 0"):
        engine.start_epoch(0, IndexBatches(np.array([0, 1]), np.array([1, 2])))
    with pytest.raises(ValueError, match="must not decrease"):
        engine.start_epoch(0, IndexBatches(np.array([0, 1]), np.array([0, 2, 1, 2])))
    with pytest.raises(ValueError, match="number of indices"):
        engine.start_epoch(0, IndexBatches(np.array([0, 1, 2]), np.array([0, 2])))
    with pytest.raises(ValueError, match="start_batch"):
        engine.start_epoch(0, [[0]], start_batch=-1)
    with pytest.raises(ValueError, match="batch_size"):
        IndexBatches.regular(range(3), 0)
    with pytest.raises(ValueError, match="offsets"):
        Engine([], ["a.jpg"], boxes=np.zeros((1, 4), np.float32), offsets=[0, 2])
    with pytest.raises(ValueError, match="on_error"):
        Engine([], ["a.jpg"], on_error="ignore")
    with pytest.raises(ValueError, match="mask_paths"):
        Engine([], ["a.jpg"], mask_paths=["a.png", "b.png"])


def test_regular_batches_cut_like_batch_sampler():
    for count, size, drop in [
        (23, 4, False),
        (23, 4, True),
        (8, 4, True),
        (3, 8, False),
        (3, 8, True),
        (0, 2, False),
    ]:
        expected = list(BatchSampler(range(count), size, drop))
        batches = IndexBatches.regular(range(count), size, drop)
        assert len(batches) == len(expected)
        assert [batches.batch(b).tolist() for b in range(len(batches))] == expected
        assert IndexBatches.of(expected).offsets.tolist() == batches.offsets.tolist()


def test_resume_starts_at_the_given_batch(dataset):
    order = shuffled(23, 4, 123)
    engine = Engine([{"op": "random_resized_crop", "size": [8, 8]}], dataset["images"], seed=3)
    full = epoch(engine, 0, order)
    assert np.concatenate([b.indices for b in full]).tolist() == order.indices.tolist()
    resumed = epoch(engine, 0, order, start_batch=3)
    assert [b.batch_index for b in resumed] == [3, 4, 5]
    for a, b in zip(full[3:], resumed):
        np.testing.assert_array_equal(a.images, b.images)
    assert epoch(engine, 0, order, start_batch=9) == []


def test_masks_follow_the_images(dataset):
    pipeline = [{"op": "resize", "size": [50, 60]}, {"op": "hflip", "p": 1.0}]
    engine = Engine(pipeline, dataset["images"], mask_paths=dataset["masks"])
    for batch in epoch(engine):
        assert batch.masks.shape == (len(batch.indices), 50, 60) and batch.masks.dtype == np.uint8
        for slot, index in enumerate(batch.indices):
            mask = tv_tensors.Mask(torch.from_numpy(np.array(Image.open(dataset["masks"][index]))))
            expected = v2.Compose([v2.Resize((50, 60)), v2.RandomHorizontalFlip(1.0)])(mask)
            np.testing.assert_array_equal(batch.masks[slot], expected.numpy())


def test_variable_sizes_come_as_lists(dataset):
    engine = Engine([{"op": "resize", "size": 32}], dataset["images"], mask_paths=dataset["masks"])
    assert engine.output_shape is None
    batch = epoch(engine)[0]
    assert isinstance(batch.images, list) and len(batch.images) == 4
    for image, mask, index in zip(batch.images, batch.masks, batch.indices):
        pil = Image.open(dataset["images"][index])
        expected = v2.Resize(32)(v2.functional.pil_to_tensor(pil))
        assert image.shape == expected.shape and mask.shape == expected.shape[1:]
        assert np.abs(image.astype(int) - expected.numpy().astype(int)).max() <= 1


def test_feed_buffer_writes_in_place(dataset):
    engine = Engine(DETECTION, dataset["images"])
    buffers = [np.full((4, 3, 96, 96), np.nan, np.float32) for _ in range(3)]
    ids = [engine.feed_buffer(b) for b in buffers]
    assert engine.fed_buffers == 3
    engine.start_epoch(0, IndexBatches.regular(range(23), 4))
    batches = [engine.next_batch() for _ in range(3)]
    for batch, buffer, buffer_id in zip(batches, buffers, ids):
        assert batch.buffer_id == buffer_id
        assert np.shares_memory(batch.images, buffer) and not np.isnan(buffer).any()
    assert engine.next_batch().buffer_id == -1  # no more fed buffers: engine-owned memory
    assert engine.fed_buffers == 0
    with pytest.raises(ValueError):
        engine.feed_buffer(np.zeros((2, 3, 96, 95), np.float32))
    with pytest.raises(ValueError):
        engine.feed_buffer(np.zeros((2, 3, 96, 96), np.float64))


def test_fed_tensors_come_back_and_larger_batches_take_engine_memory(dataset):
    engine = Engine(DETECTION, dataset["images"], num_threads=2, prefetch=1)
    small = torch.full((2, 3, 96, 96), float("nan"))
    engine.feed_buffer(small)
    batches = epoch(engine, 0, [[0, 1, 2], [3, 4], [5]])
    assert batches[0].buffer_id == -1  # 3 samples do not fit: the buffer stays queued
    assert batches[1].images is not None and isinstance(batches[1].images, torch.Tensor)
    assert batches[1].images.data_ptr() == small.data_ptr() and batches[1].images.shape[0] == 2
    assert batches[2].buffer_id == -1 and engine.fed_buffers == 0


@pytest.fixture()
def broken(dataset, tmp_path):
    images = list(dataset["images"][:8])
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(open(images[2], "rb").read()[:200])
    images[2] = str(corrupt)
    images[5] = str(tmp_path / "missing.jpg")
    return images


def test_errors_name_the_file_and_sample(broken):
    engine = Engine([{"op": "resize", "size": [16, 16]}], broken, num_threads=2)
    engine.start_epoch(0, IndexBatches.regular(range(8), 2))
    assert len(engine.next_batch().indices) == 2
    with pytest.raises(DecodeError, match=r"sample 2 \(.*corrupt.jpg\)"):
        engine.next_batch()
    with pytest.raises(FileNotFoundError, match=r"sample 5 \(.*missing.jpg\)"):
        engine.next_batch()
    assert engine.next_batch().indices.tolist() == [6, 7]  # the epoch goes on
    assert engine.next_batch() is None


def test_skip_mode_drops_bad_samples(broken):
    engine = Engine([{"op": "resize", "size": [16, 16]}], broken, num_threads=2, on_error="skip")
    batches = epoch(engine, batch_size=3)
    assert [b.indices.tolist() for b in batches] == [[0, 1], [3, 4], [6, 7]]
    skipped = [s for b in batches for s in b.skipped]
    assert [s[0] for s in skipped] == [2, 5]
    assert "corrupt.jpg" in skipped[0][1] and "missing.jpg" in skipped[1][1]
    assert batches[0].images.shape == (2, 3, 16, 16)
    reference = Engine([{"op": "resize", "size": [16, 16]}], broken[:2])
    np.testing.assert_array_equal(epoch(reference, batch_size=2)[0].images, batches[0].images)
    assert engine.stats()["samples_skipped"] == 2


def test_mask_size_mismatch_is_an_error(dataset):
    masks = list(dataset["masks"])
    masks[0], masks[1] = masks[1], masks[0]
    engine = Engine(
        [{"op": "resize", "size": [16, 16]}],
        dataset["images"][:2],
        mask_paths=masks[:2],
    )
    engine.start_epoch(0, [[0], [1]])
    with pytest.raises(DecodeError, match="mask .* size"):
        engine.next_batch()


def test_breaking_mid_epoch_and_deleting_never_hangs(dataset):
    before = threading.active_count()
    for threads in (0, 1, 3):
        engine = Engine(DETECTION, dataset["images"] * 4, num_threads=threads, prefetch=3)
        engine.start_epoch(0, IndexBatches.regular(range(92), 4))
        engine.next_batch()
        engine.start_epoch(1, IndexBatches.regular(range(92), 4))  # restart mid-epoch
        engine.next_batch()
        started = time.perf_counter()
        del engine
        gc.collect()
        assert time.perf_counter() - started < 5
    engine = Engine(DETECTION, dataset["images"], num_threads=2)
    engine.start_epoch(0, [[0, 1]])
    engine.close()
    engine.close()
    assert engine.next_batch() is None
    assert threading.active_count() == before


def test_batches_handed_out_are_never_rewritten(dataset):
    engine = Engine(DETECTION, dataset["images"], num_threads=2, prefetch=2)
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
    batch = epoch(Engine([{"op": "resize", "size": [20, 25]}], paths))[0]
    for slot, path in enumerate(paths):
        expected = v2.Resize((20, 25))(v2.functional.pil_to_tensor(Image.open(path).convert("RGB")))
        assert np.abs(batch.images[slot].astype(int) - expected.numpy().astype(int)).max() <= 1


def test_empty_dataset_and_empty_epoch(dataset):
    empty = Engine([{"op": "resize", "size": [8, 8]}], [])
    assert empty.dataset_size == 0 and epoch(empty) == []
    small = Engine([{"op": "resize", "size": [8, 8]}], dataset["images"][:3])
    assert [len(b.indices) for b in epoch(small, batch_size=8)] == [3]
    assert epoch(small, 0, IndexBatches.regular(range(3), 8, drop_last=True)) == []
