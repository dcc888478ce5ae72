"""Worker modes of conveyor.DataLoader: threads, torch's process workers, "auto"; the intra-op
limit of worker threads; the CONVEYOR_MAX_WORKERS cap; drop-in details found by torch's own
test_dataloader.py (generic class, datasets that change length between epochs).

Process workers use the "fork" start method here (fast on Linux; the datasets below live in this
module so "spawn" would work too). Every process-mode result is compared with torch's DataLoader.
"""

import os
import sys
import threading
import typing
import warnings

import pytest
import torch
import torch.utils.data as tud
from torch.utils.data import TensorDataset
from torchvision import tv_tensors
from torchvision.transforms import v2

from conveyor import DataLoader, datasets
from conveyor.collate import detection_collate

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="fork start method")

FORK = "fork"


def tensor_dataset(n=20):
    return TensorDataset(torch.arange(n, dtype=torch.float32) * 10, torch.arange(n))


def batches_of(loader):
    return [[t.tolist() for t in batch] for batch in loader]


# --------------------------------------------------------------------------- drop-in details


def test_dataloader_is_a_generic_class_like_torch():
    alias = DataLoader[typing.List[torch.Tensor]]
    assert typing.get_origin(alias) is DataLoader

    def make() -> DataLoader[typing.List[torch.Tensor]]: ...

    assert typing.get_type_hints(make)["return"] == alias


@pytest.mark.parametrize("seed", [None, 5])
def test_shuffle_follows_a_dataset_that_grows_and_shrinks(seed):
    data = [torch.tensor([i]) for i in range(4)]
    loader = DataLoader(data, shuffle=True, seed=seed)
    data.append(torch.tensor([4]))
    assert len(loader) == 5
    assert sorted(int(b) for b in loader) == [0, 1, 2, 3, 4]
    del data[1:3]
    assert len(loader) == 3
    assert sorted(int(b) for b in loader) == [0, 3, 4]


def test_worker_mode_is_validated():
    with pytest.raises(ValueError, match="worker_mode should be 'thread', 'process' or 'auto'"):
        DataLoader(tensor_dataset(), worker_mode="processes")


# ------------------------------------------------------------------------------ process mode


@pytest.mark.parametrize("shuffle", [False, True])
def test_process_mode_equals_torch_dataloader(shuffle):
    ds = tensor_dataset(23)
    kwargs = dict(batch_size=4, num_workers=2, multiprocessing_context=FORK, shuffle=shuffle)
    ours = DataLoader(
        ds, worker_mode="process", generator=torch.Generator().manual_seed(7), **kwargs
    )
    theirs = tud.DataLoader(ds, generator=torch.Generator().manual_seed(7), **kwargs)
    assert batches_of(ours) == batches_of(theirs)
    stats = ours.stats
    assert (stats.worker_mode, stats.num_workers, stats.batches, stats.samples) == (
        "process",
        2,
        6,
        23,
    )
    assert stats.worker_mode_reason == "worker_mode='process'"


def test_process_mode_seeded_shuffle_equals_thread_mode():
    ds = tensor_dataset(30)
    runs = [
        batches_of(
            DataLoader(
                ds,
                batch_size=4,
                shuffle=True,
                seed=11,
                num_workers=2,
                worker_mode=mode,
                multiprocessing_context=FORK,
            )
        )
        for mode in ("thread", "process")
    ]
    assert runs[0] == runs[1]


class WorkerProbe(tud.Dataset):
    """Returns (pid, torch worker id, torch's intra-op threads, index, whether torch's worker info
    names this very dataset) of whoever loads the sample."""

    def __len__(self):
        return 8

    def __getitem__(self, index):
        info = tud.get_worker_info()
        worker = -1 if info is None else info.id
        ours = int(info is not None and info.dataset is self)
        return torch.tensor([os.getpid(), worker, torch.get_num_threads(), index, ours])


def _remember_worker(worker_id):
    os.environ["CONVEYOR_TEST_WORKER_ID"] = str(worker_id)


def test_process_workers_are_torch_processes_with_worker_info_and_init_fn():
    loader = DataLoader(
        WorkerProbe(),
        batch_size=2,
        num_workers=2,
        worker_mode="process",
        multiprocessing_context=FORK,
        worker_init_fn=_remember_worker,
    )
    iterator = iter(loader)
    rows = torch.cat(list(iterator))
    pids = {w.pid for w in iterator._workers}
    assert set(rows[:, 0].tolist()) == pids and os.getpid() not in pids
    assert set(rows[:, 1].tolist()) == {0, 1}
    assert set(rows[:, 2].tolist()) == {1}  # torch's worker loop: one intra-op thread
    assert rows[:, 3].tolist() == list(range(8))
    assert set(rows[:, 4].tolist()) == {1}  # get_worker_info().dataset: the user's dataset
    assert "CONVEYOR_TEST_WORKER_ID" not in os.environ  # ran in the workers, not here


def test_persistent_process_workers_are_reused_across_epochs():
    loader = DataLoader(
        WorkerProbe(),
        batch_size=4,
        num_workers=2,
        worker_mode="process",
        persistent_workers=True,
        multiprocessing_context=FORK,
    )
    first = {int(p) for batch in loader for p in batch[:, 0]}
    second = {int(p) for batch in loader for p in batch[:, 0]}
    assert first == second and len(first) == 2
    assert loader.stats.epoch == 1


def test_deleting_a_persistent_process_loader_stops_its_workers_at_once():
    """No reference cycle between the loader and its persistent iterator: dropping both stops
    the worker processes right away (torch's test_iterable_style_dataset checks it), not at
    the next cyclic garbage collection."""
    import gc

    loader = DataLoader(
        tensor_dataset(),
        batch_size=5,
        num_workers=2,
        worker_mode="process",
        persistent_workers=True,
        multiprocessing_context=FORK,
    )
    iterator = iter(loader)
    assert len(list(iterator)) == 4
    workers = list(iterator._workers)
    enabled = gc.isenabled()
    gc.disable()
    try:
        del iterator, loader
        for worker in workers:
            worker.join(30)
        assert not any(worker.is_alive() for worker in workers)
        assert all(worker.exitcode == 0 for worker in workers)
        # only the iterator kept (torch's test_partial_workers): it runs on, then stops them
        iterator = iter(
            DataLoader(
                tensor_dataset(),
                batch_size=2,
                num_workers=2,
                worker_mode="process",
                persistent_workers=True,
                multiprocessing_context=FORK,
            )
        )
        workers = list(iterator._workers)
        assert len([next(iterator) for _ in range(3)]) == 3
        del iterator
        for worker in workers:
            worker.join(30)
        assert not any(worker.is_alive() for worker in workers)
    finally:
        if enabled:
            gc.enable()


class Failing(tud.Dataset):
    def __len__(self):
        return 6

    def __getitem__(self, index):
        if index == 3:
            raise KeyError(f"bad sample {index}")
        return index


def test_error_in_worker_process_raises_in_parent_like_torch():
    loader = DataLoader(
        Failing(), batch_size=2, num_workers=2, worker_mode="process", multiprocessing_context=FORK
    )
    iterator = iter(loader)
    assert next(iterator).tolist() == [0, 1]
    with pytest.raises(KeyError, match="bad sample 3") as raised:
        next(iterator)
    assert "Caught KeyError in DataLoader worker process" in str(raised.value)
    assert next(iterator).tolist() == [4, 5]  # torch's epoch goes on after a failed batch


def test_process_mode_names_the_failing_sample_like_thread_mode():
    """conveyor's note (which sample index failed, in which batch) reaches the parent through
    torch's worker exception, as thread mode adds it."""
    texts = {}
    for mode in ("thread", "process"):
        loader = DataLoader(
            Failing(), batch_size=2, num_workers=2, worker_mode=mode, multiprocessing_context=FORK
        )
        iterator = iter(loader)
        next(iterator)
        with pytest.raises(KeyError) as raised:
            next(iterator)
        texts[mode] = str(raised.value) + "\n".join(getattr(raised.value, "__notes__", []))
    note = "conveyor.DataLoader: raised while loading sample index 3 (batch 1)"
    assert note in texts["thread"] and note in texts["process"]


@pytest.mark.parametrize("tail", [False, True])
def test_process_mode_names_the_corrupt_file_of_a_conveyor_dataset(voc_root, tmp_path, tail):
    """A corrupt JPEG in a conveyor dataset run in worker processes (its engine there, with a
    Python tail or without one) names the file and the sample index, as in threads."""
    import shutil

    root = tmp_path / "corrupt"
    shutil.copytree(voc_root, root)
    steps = [v2.ToImage(), v2.Resize((32, 32))]
    if tail:
        steps.append(v2.Lambda(lambda image: image.float(), tv_tensors.Image))
    dataset = datasets.VOCDetection(
        root, image_set="trainval", transforms=v2.Compose(steps), target_format="boxes"
    )
    bad = dataset.images[5]
    with open(bad, "wb") as file:
        file.write(b"\xff\xd8\xff garbage")
    loader = DataLoader(
        dataset,
        batch_size=4,
        num_workers=2,
        worker_mode="process",
        collate_fn=detection_collate,
        multiprocessing_context=FORK,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the Lambda's "cannot run natively" warning
        iterator = iter(loader)
        next(iterator)
        with pytest.raises(Exception) as raised:
            next(iterator)
        assert len(list(iterator)) == 1  # the epoch goes on, as in torch
    text = str(raised.value) + "\n".join(getattr(raised.value, "__notes__", []))
    assert "in DataLoader worker process" in text
    assert bad in text and "5" in text
    assert loader.stats.path == "native"


class Crashing(tud.Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, index):
        os._exit(3)  # a crash that no exception handler sees


def test_crashed_worker_process_raises_in_parent():
    loader = DataLoader(
        Crashing(), batch_size=2, num_workers=1, worker_mode="process", multiprocessing_context=FORK
    )
    with pytest.raises(
        RuntimeError, match=r"DataLoader worker \(pid\(s\) \d+\) exited unexpectedly"
    ):
        next(iter(loader))


class Slow(tud.Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, index):
        import time

        time.sleep(3)
        return index


def test_timeout_is_enforced_in_process_mode():
    loader = DataLoader(
        Slow(),
        batch_size=2,
        num_workers=1,
        timeout=0.5,
        worker_mode="process",
        multiprocessing_context=FORK,
    )
    with pytest.raises(RuntimeError, match="DataLoader timed out after 0.5 seconds"):
        next(iter(loader))


def test_process_mode_resumes_exactly():
    ds = tensor_dataset(26)

    def loader():
        return DataLoader(
            ds,
            batch_size=4,
            shuffle=True,
            seed=3,
            num_workers=2,
            worker_mode="process",
            multiprocessing_context=FORK,
        )

    full = batches_of(loader())
    first = loader()
    iterator = iter(first)
    head = [[t.tolist() for t in next(iterator)] for _ in range(3)]
    state = first.state_dict()
    resumed = loader()
    resumed.load_state_dict(state)
    assert head + batches_of(resumed) == full


def test_process_mode_shards_like_distributed_sampler():
    ds = tensor_dataset(10)
    sampler = tud.DistributedSampler(ds, num_replicas=3, rank=1, shuffle=True, seed=4)
    expected = [list(sampler)[i : i + 2] for i in range(0, 4, 2)]
    loader = DataLoader(
        ds,
        batch_size=2,
        shuffle=True,
        seed=4,
        num_workers=2,
        worker_mode="process",
        multiprocessing_context=FORK,
        rank=1,
        world_size=3,
    )
    assert len(loader) == 2
    assert [b[1].tolist() for b in loader] == expected


class Stream(tud.IterableDataset):
    def __iter__(self):
        info = tud.get_worker_info()
        start = 0 if info is None else info.id * 100
        return iter(range(start, start + 5))


def test_process_mode_iterable_dataset_has_torch_replicas():
    kwargs = dict(batch_size=2, num_workers=2, multiprocessing_context=FORK)
    ours = DataLoader(Stream(), worker_mode="process", **kwargs)
    theirs = tud.DataLoader(Stream(), **kwargs)
    assert batches_of(ours) == batches_of(theirs)


# ------------------------------------------------------------------------------------- auto


def test_auto_takes_processes_for_a_python_dataset():
    loader = DataLoader(
        tensor_dataset(),
        batch_size=5,
        num_workers=2,
        worker_mode="auto",
        multiprocessing_context=FORK,
    )
    assert len(list(loader)) == 4
    assert loader.stats.worker_mode == "process"
    assert "the dataset runs Python per sample" in loader.stats.worker_mode_reason


@pytest.fixture(scope="module")
def voc_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("voc")
    datasets.make_synthetic_voc(root, num_images=12, image_size=(120, 90), seed=5)
    return root


def test_auto_takes_threads_for_a_native_pipeline(voc_root):
    tf = v2.Compose([v2.ToImage(), v2.Resize((64, 64)), v2.ToDtype(torch.float32, scale=True)])
    dataset = datasets.VOCDetection(
        voc_root, image_set="trainval", transforms=tf, target_format="boxes"
    )
    loader = DataLoader(
        dataset, batch_size=4, num_workers=2, worker_mode="auto", collate_fn=detection_collate
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # fully native: nothing to warn about
        assert len(list(loader)) == 3
    assert (loader.stats.path, loader.stats.worker_mode) == ("native", "thread")
    assert loader.stats.worker_mode_reason == "worker_mode='auto': the whole pipeline runs natively"


def test_auto_with_a_python_transform_runs_the_native_pipeline_in_processes(voc_root):
    """A conveyor dataset whose transforms end in Python: each worker process runs the engine
    (decode, native prefix) then the Python tail; the batches are bit-identical to thread mode's
    (random draws from (seed, epoch, index)), and auto says why it took processes, once."""
    to_float = v2.Lambda(lambda image: image.float() / 255, tv_tensors.Image)
    tf = v2.Compose(
        [v2.ToImage(), v2.RandomResizedCrop((64, 64), antialias=True), v2.RandomHorizontalFlip()]
        + [to_float]
    )
    dataset = datasets.VOCDetection(
        voc_root, image_set="trainval", transforms=tf, target_format="boxes"
    )
    kwargs = dict(batch_size=4, collate_fn=detection_collate, shuffle=True, seed=2)
    auto = DataLoader(dataset, num_workers=2, multiprocessing_context=FORK, **kwargs)
    with pytest.warns(UserWarning) as caught:
        batches = list(auto)
        assert len(list(auto)) == 3  # a second epoch: no new warning
    texts = [str(w.message) for w in caught]
    assert sum("worker_mode='auto' runs this loader in worker processes" in t for t in texts) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the Lambda's "cannot run natively" warning
        reference = list(DataLoader(dataset, num_workers=2, worker_mode="thread", **kwargs))
    assert (auto.stats.worker_mode, auto.stats.path) == ("process", "native")
    assert "Lambda runs in Python per sample" in auto.stats.worker_mode_reason
    assert len(batches) == len(reference) == 3
    for (images_a, targets_a), (images_b, targets_b) in zip(batches, reference):
        assert torch.equal(images_a, images_b)
        for a, b in zip(targets_a, targets_b):
            assert a["image_id"] == b["image_id"]
            assert torch.equal(a["boxes"], b["boxes"]) and torch.equal(a["labels"], b["labels"])


def test_process_mode_runs_the_native_pipeline_with_spawn_too(voc_root):
    """With 'spawn' the workers get the pickled loader: the engine's ops travel as dicts and each
    worker builds its own engine; same batches as threads."""
    tf = v2.Compose([v2.ToImage(), v2.RandomResizedCrop((40, 40), antialias=True)])
    dataset = datasets.VOCDetection(
        voc_root, image_set="trainval", transforms=tf, target_format="boxes"
    )
    kwargs = dict(batch_size=4, collate_fn=detection_collate, shuffle=True, seed=3, num_workers=1)
    spawned = DataLoader(
        dataset, worker_mode="process", multiprocessing_context="spawn", timeout=120, **kwargs
    )
    got = list(spawned)
    reference = list(DataLoader(dataset, worker_mode="thread", **kwargs))
    assert spawned.stats.path == "native" and len(got) == len(reference) == 3
    assert all(torch.equal(a[0], b[0]) for a, b in zip(got, reference))


def test_auto_takes_processes_for_an_unrecognised_collate_and_threads_for_known_ones(voc_root):
    tf = v2.Compose([v2.ToImage(), v2.Resize((64, 64)), v2.ToDtype(torch.float32, scale=True)])
    dataset = datasets.VOCDetection(
        voc_root, image_set="trainval", transforms=tf, target_format="boxes"
    )

    def stack_list(batch):
        return torch.stack([image for image, _ in batch]), [target for _, target in batch]

    def halves(batch):  # not a plain stack: runs in Python on per-sample tensors
        return torch.stack([image for image, _ in batch]) / 2, [target for _, target in batch]

    for collate in (detection_collate, stack_list, lambda batch: tuple(zip(*batch))):
        loader = DataLoader(dataset, batch_size=4, num_workers=2, collate_fn=collate)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            list(loader)
        assert loader.stats.worker_mode == "thread", collate
    loader = DataLoader(
        dataset, batch_size=4, num_workers=2, collate_fn=halves, multiprocessing_context=FORK
    )
    with pytest.warns(UserWarning, match="collate_fn .*halves is not one conveyor builds"):
        got = list(loader)
    assert (loader.stats.worker_mode, loader.stats.path) == ("process", "native")
    reference = list(DataLoader(dataset, batch_size=4, collate_fn=halves, worker_mode="thread"))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(got, reference)) and len(got) == 3


def test_torchs_worker_count_warning_only_where_processes_run(voc_root):
    too_many = len(os.sched_getaffinity(0)) + 1
    with pytest.warns(UserWarning, match="worker processes in total"):
        DataLoader(tensor_dataset(), num_workers=too_many)  # auto: processes, as torch warns
    tf = v2.Compose([v2.ToImage(), v2.Resize((32, 32)), v2.ToDtype(torch.float32, scale=True)])
    dataset = datasets.VOCDetection(
        voc_root, image_set="trainval", transforms=tf, target_format="boxes"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # fully native: threads, no process warning
        loader = DataLoader(
            dataset, batch_size=4, num_workers=too_many, collate_fn=detection_collate
        )
        assert len(list(loader)) == 3
    assert loader.stats.worker_mode == "thread"


def test_on_error_skip_needs_threads():
    with pytest.raises(ValueError, match="on_error='skip' needs worker_mode='thread'"):
        DataLoader(Failing(), worker_mode="process", on_error="skip")
    loader = DataLoader(Failing(), batch_size=2, num_workers=2, worker_mode="auto", on_error="skip")
    assert [b.tolist() for b in loader] == [[0, 1], [2], [4, 5]]
    assert loader.stats.worker_mode == "thread"
    assert loader.stats.worker_mode_reason == "worker_mode='auto': on_error='skip' runs in threads"


def test_num_workers_zero_runs_in_the_calling_thread_whatever_the_mode():
    loader = DataLoader(tensor_dataset(), batch_size=5, worker_mode="process")
    assert len(list(loader)) == 4
    assert (loader.stats.worker_mode, loader.stats.num_workers) == ("main", 0)


# ------------------------------------------------------------ worker threads and the machine


def test_worker_threads_run_torch_ops_single_threaded_without_touching_the_caller():
    before = torch.get_num_threads()
    loader = DataLoader(WorkerProbe(), batch_size=2, num_workers=2, worker_mode="thread")
    rows = torch.cat(list(loader))
    assert set(rows[:, 1].tolist()) == {-1}  # threads: torch's get_worker_info() is None
    assert set(rows[:, 2].tolist()) == {1}
    assert torch.get_num_threads() == before
    seen = []
    thread = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
    thread.start()
    thread.join()
    assert seen == [before]  # threads created later keep torch's setting


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_conveyor_max_workers_caps_the_workers(monkeypatch, mode):
    monkeypatch.setenv("CONVEYOR_MAX_WORKERS", "1")
    loader = DataLoader(
        WorkerProbe(), batch_size=2, num_workers=4, worker_mode=mode, multiprocessing_context=FORK
    )
    rows = torch.cat(list(loader))
    assert loader.num_workers == 4  # the argument as given; the cap applies when running
    assert loader.stats.num_workers == 1
    if mode == "process":
        assert len(set(rows[:, 0].tolist())) == 1
    assert rows[:, 3].tolist() == list(range(8))


def test_conveyor_max_workers_rejects_garbage(monkeypatch):
    monkeypatch.setenv("CONVEYOR_MAX_WORKERS", "many")
    with pytest.raises(ValueError, match="CONVEYOR_MAX_WORKERS should be a non-negative integer"):
        list(DataLoader(tensor_dataset(), num_workers=2))
