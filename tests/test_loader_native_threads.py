"""The native path off the training thread: Python tails, targets and the user's collate run on
finisher threads, in order, bit-identical for any num_workers; recognised collates are built
from the engine's buffers; several threads sharing one iterator or one loader never crash and
never lose a batch silently."""

import random
import threading
import time
import types
import warnings

import pytest
import torch
from torch.utils.data import default_collate
from torchvision import tv_tensors
from torchvision.transforms import v2

from conveyor import DataLoader, datasets
from conveyor.collate import detection_collate
from conveyor.loader.native_batch import is_zip_collate

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


@pytest.fixture(scope="module")
def voc_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("voc_threads")
    datasets.make_synthetic_voc(root, num_images=22, image_size=(120, 90), seed=5)
    return root


class Recorded(v2.Transform):
    """A transform conveyor cannot run natively (so it is the Python tail): doubles the image
    and records the thread it ran on."""

    def __init__(self, threads):
        super().__init__()
        self.threads = threads

    def forward(self, image, target):
        self.threads.add(threading.current_thread().name)
        return tv_tensors.wrap(image * 2, like=image), target


def pipeline(tail=None, p=0.5):
    ops = [
        v2.ToImage(),
        v2.RandomResizedCrop((48, 64), scale=(0.3, 1.0), antialias=True),
        v2.RandomHorizontalFlip(p),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(MEAN, STD),
    ]
    return v2.Compose(ops + ([tail] if tail is not None else []))


def detection(root, transforms):
    return datasets.VOCDetection(
        root, image_set="trainval", transforms=transforms, target_format="boxes"
    )


def user_collate(batch):
    """What a user writes: stacked images, a list of targets."""
    images, targets = zip(*batch)
    return torch.stack(images), list(targets)


def collate_fn(batch):  # torchvision references' utils.collate_fn
    return tuple(zip(*batch))


def loader_for(root, workers, collate, tail=None, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tail's one warning
        return DataLoader(
            detection(root, pipeline(tail)),
            batch_size=4,
            shuffle=True,
            seed=7,
            num_workers=workers,
            collate_fn=collate,
            **kwargs,
        )


def drain(loader):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return list(loader)


def assert_equal_batches(a, b):
    assert len(a) == len(b)
    for (images_a, targets_a), (images_b, targets_b) in zip(a, b):
        if isinstance(images_a, torch.Tensor):
            assert torch.equal(images_a, images_b)
        else:
            assert all(torch.equal(x, y) for x, y in zip(images_a, images_b))
        for x, y in zip(targets_a, targets_b):
            assert x["image_id"] == y["image_id"]
            assert torch.equal(x["boxes"], y["boxes"]) and torch.equal(x["labels"], y["labels"])


def test_tail_and_collate_run_off_the_consumer_thread(voc_root):
    threads = set()
    collate_threads = set()

    def recording_collate(batch):
        collate_threads.add(threading.current_thread().name)
        return user_collate(batch)

    # threads explicitly: "auto" would run this Python tail in worker processes
    loader = loader_for(
        voc_root, 2, recording_collate, tail=Recorded(threads), worker_mode="thread"
    )
    batches = drain(loader)
    assert loader.stats.path == "native" and "Recorded" in loader.stats.python_reason
    assert len(batches) == 6
    main = threading.current_thread().name
    assert threads and main not in threads and main not in collate_threads
    assert all(name.startswith("conveyor-native-finisher") for name in threads | collate_threads)
    threads.clear()
    drain(loader_for(voc_root, 0, user_collate, tail=Recorded(threads), worker_mode="thread"))
    assert threads == {main}  # num_workers=0: everything in next(), as torch does


@pytest.mark.parametrize("collate", [user_collate, detection_collate, collate_fn])
def test_bit_identical_and_in_order_for_any_num_workers(voc_root, collate):
    results = [
        drain(loader_for(voc_root, workers, collate, tail=Recorded(set())))
        for workers in (0, 1, 2, 3)
    ]
    for other in results[1:]:
        assert_equal_batches(results[0], other)
    order = [t["image_id"] for _, targets in results[0] for t in targets]
    expected = list(loader_for(voc_root, 2, collate).batch_sampler)
    assert order == [i for batch in expected for i in batch]


def test_slow_collates_finishing_out_of_order_come_back_in_order(voc_root):
    rng = random.Random(0)

    def slow(batch):
        time.sleep(rng.uniform(0, 0.03))
        return user_collate(batch)

    reference = drain(loader_for(voc_root, 0, user_collate))
    assert_equal_batches(drain(loader_for(voc_root, 3, slow)), reference)


@pytest.mark.parametrize("workers", [0, 2])
def test_a_failing_collate_raises_at_its_batch_and_the_epoch_goes_on(voc_root, workers):
    calls = []

    def failing(batch):
        calls.append(1)
        if any(target["image_id"] == 5 for _, target in batch):
            raise ValueError("collate rejects image 5")
        return user_collate(batch)

    loader = loader_for(voc_root, workers, failing)
    position = next(
        b for b, batch in enumerate(loader.batch_sampler) if 5 in batch
    )  # the batch holding image 5
    iterator = iter(loader)
    got = []
    for b in range(6):
        if b == position:
            with pytest.raises(ValueError, match="image 5"):
                next(iterator)
        else:
            got.append(next(iterator))
    with pytest.raises(StopIteration):
        next(iterator)
    assert len(got) == 5


def test_fused_collates_match_the_collate_called_per_sample(voc_root):
    """detection_collate and tuple(zip(*batch)) are built from the engine's buffers; the result
    equals calling them on the per-sample (image, target) pairs (the tail forces that)."""
    for collate in (detection_collate, collate_fn):
        fused = drain(loader_for(voc_root, 2, collate))
        per_sample = drain(loader_for(voc_root, 2, collate, tail=Recorded(set())))
        for (images_a, targets_a), (images_b, targets_b) in zip(fused, per_sample):
            if collate is collate_fn:
                assert isinstance(images_a, tuple) and isinstance(targets_a, tuple)
                assert type(images_a[0]) is type(images_b[0])
                images_a, images_b = torch.stack(images_a), torch.stack(images_b)
            assert torch.equal(images_a * 2, images_b)
            assert [t["image_id"] for t in targets_a] == [t["image_id"] for t in targets_b]


def test_zip_collate_is_recognised_by_its_code_only():
    assert is_zip_collate(collate_fn)
    assert is_zip_collate(lambda samples: tuple(zip(*samples)))
    assert not is_zip_collate(user_collate)
    assert not is_zip_collate(lambda samples: list(zip(*samples)))
    assert not is_zip_collate(default_collate)
    scope = {"zip": lambda *a: "shadowed"}
    exec("def shadowed(batch):\n    return tuple(zip(*batch))\n", scope)
    assert not is_zip_collate(scope["shadowed"])


@pytest.mark.parametrize("workers", [0, 2])
def test_exact_resume_with_finisher_threads(voc_root, workers):
    loader = loader_for(voc_root, workers, user_collate, tail=Recorded(set()))
    full = drain(loader)
    loader = loader_for(voc_root, workers, user_collate, tail=Recorded(set()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        iterator = iter(loader)
    head = [next(iterator) for _ in range(2)]
    state = loader.state_dict()
    resumed = loader_for(voc_root, workers, user_collate, tail=Recorded(set()))
    resumed.load_state_dict(state)
    assert_equal_batches(head + drain(resumed), full)


@pytest.mark.parametrize("workers", [0, 2])
def test_two_threads_calling_next_on_one_iterator(voc_root, workers):
    reference = drain(loader_for(voc_root, workers, user_collate, tail=Recorded(set())))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tail's one warning
        iterator = iter(loader_for(voc_root, workers, user_collate, tail=Recorded(set())))
    got, errors = [], []

    def consume():
        try:
            while True:
                try:
                    got.append(next(iterator))
                except StopIteration:
                    return
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=consume) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    key = lambda batch: [t["image_id"] for t in batch[1]]  # noqa: E731
    assert sorted(map(key, got)) == sorted(map(key, reference))  # each batch exactly once
    by_key = {tuple(key(b)): b for b in reference}
    for batch in got:
        assert torch.equal(batch[0], by_key[tuple(key(batch))][0])


@pytest.mark.parametrize("workers", [0, 2])
def test_two_loops_over_one_loader_in_two_threads_never_lose_a_batch_silently(voc_root, workers):
    loader = loader_for(voc_root, workers, user_collate)
    outcomes = {}
    started = threading.Barrier(2)

    def loop(name):
        seen = []
        try:
            started.wait()
            for _, targets in loader:
                seen.append([t["image_id"] for t in targets])
                time.sleep(0.005)
            outcomes[name] = ("complete", seen)
        except RuntimeError as error:
            outcomes[name] = ("error", str(error))

    threads = [threading.Thread(target=loop, args=(n,)) for n in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert set(outcomes) == {"a", "b"}
    for kind, value in outcomes.values():
        if kind == "complete":
            assert len(value) == 6  # a whole epoch, or ...
        else:
            assert "iter() was called again" in value  # ... a clear error, never a short epoch
    assert any(kind == "complete" for kind, _ in outcomes.values())


def test_a_users_stack_collate_is_recognised_by_its_code_and_fused(voc_root):
    from conveyor.loader.native_batch import collate_kind

    def tuple_targets(batch):
        return torch.stack([image for image, _ in batch]), tuple(t for _, t in batch)

    indexed = lambda b: (torch.stack([x[0] for x in b]), [x[1] for x in b])  # noqa: E731

    def scaled(batch):
        images, targets = zip(*batch)
        return torch.stack(images) / 255, list(targets)

    def channels_last(batch):
        images, targets = zip(*batch)
        return torch.stack(images).contiguous(memory_format=torch.channels_last), list(targets)

    def broken(batch):
        raise RuntimeError("never works")

    calls = []

    def sneaky(batch):  # a plain stack on small batches only: a behaviour probe would fuse it
        calls.append(len(batch))
        images, targets = zip(*batch)
        if len(batch) == 4:
            return torch.stack(images).flip(0), list(targets)
        return torch.stack(images), list(targets)

    scope = {"torch": types.SimpleNamespace(stack=lambda images: "not torch.stack")}
    exec(
        "def shadowed(batch):\n    images, targets = zip(*batch)\n"
        "    return torch.stack(images), list(targets)\n",
        scope,
    )
    assert collate_kind(user_collate, False) == "stack_list"  # with a docstring
    assert collate_kind(indexed, False) == "stack_list"
    assert collate_kind(tuple_targets, False) == "stack_tuple"
    for other in (scaled, channels_last, broken, sneaky, scope["shadowed"], default_collate):
        assert collate_kind(other, False) not in ("stack_list", "stack_tuple")
    assert calls == []  # recognising a collate never calls it
    expected = [  # what sneaky itself returns: run as written, never fused
        (images.flip(0) if len(targets) == 4 else images, targets)
        for images, targets in drain(loader_for(voc_root, 2, user_collate))
    ]
    assert_equal_batches(drain(loader_for(voc_root, 2, sneaky, worker_mode="thread")), expected)
    fused = drain(loader_for(voc_root, 2, user_collate))
    reference = drain(loader_for(voc_root, 0, detection_collate))  # fused the same way
    assert_equal_batches(fused, reference)
    assert all(type(images) is torch.Tensor and isinstance(t, list) for images, t in fused)
    per_sample = drain(loader_for(voc_root, 2, user_collate, tail=Recorded(set())))
    for (images_a, _), (images_b, _) in zip(fused, per_sample):
        assert torch.equal(images_a * 2, images_b)


def test_breaking_out_and_deleting_leaves_no_finisher_thread(voc_root):
    import gc

    def finishers():
        return [t for t in threading.enumerate() if t.name.startswith("conveyor-native-finisher")]

    for _ in range(3):
        loader = loader_for(voc_root, 2, user_collate, tail=Recorded(set()))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for _batch in loader:
                break  # the iterator is dropped mid-epoch with batches in flight
        gc.collect()
        deadline = time.monotonic() + 10
        while finishers() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not finishers()
        del loader
