"""conveyor.DataLoader on generic Python datasets, side by side with torch.utils.data.DataLoader."""

import gc
import threading
import time

import pytest
import torch
from torch.utils.data import (
    BatchSampler,
    Dataset,
    IterableDataset,
    SubsetRandomSampler,
)
from torch.utils.data import (
    DataLoader as TorchDataLoader,
)

from conveyor import DataLoader
from conveyor.loader import get_worker_info


class Squares(Dataset):
    """Map-style: a dict of a tensor, an int and a string per sample (default_collate's cases)."""

    def __init__(self, n=23):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        return {"x": torch.full((2, 3), float(i)), "y": i * i, "name": f"s{i}"}


class Stream(IterableDataset):
    def __init__(self, n=11):
        self.n = n

    def __iter__(self):
        return iter(torch.arange(self.n, dtype=torch.float64).unsqueeze(1))


class Failing(Squares):
    def __init__(self, bad, n=23):
        super().__init__(n)
        self.bad = set(bad)
        self.images = [f"/data/img{i}.jpg" for i in range(n)]

    def __getitem__(self, i):
        if i in self.bad:
            raise OSError(f"cannot read {self.images[i]}")
        return super().__getitem__(i)


def assert_same_batches(ours, theirs):
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert type(a) is type(b)
        if isinstance(a, dict):
            assert a.keys() == b.keys()
            for key in a:
                if isinstance(a[key], torch.Tensor):
                    assert torch.equal(a[key], b[key])
                    assert a[key].dtype == b[key].dtype
                else:
                    assert a[key] == b[key]
        elif isinstance(a, torch.Tensor):
            assert torch.equal(a, b) and a.dtype == b.dtype
        else:
            assert a == b


def threads_settle(baseline, seconds=5.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        gc.collect()
        if threading.active_count() <= baseline:
            return True
        time.sleep(0.02)
    return False


@pytest.mark.parametrize("workers", [0, 1, 3])
@pytest.mark.parametrize(
    "kwargs",
    [
        dict(batch_size=4),
        dict(batch_size=4, drop_last=True),
        dict(batch_size=None),
        lambda: dict(
            batch_size=5,
            sampler=SubsetRandomSampler(
                range(0, 23, 2), generator=torch.Generator().manual_seed(1)
            ),
        ),
        lambda: dict(batch_sampler=BatchSampler(range(22, -1, -1), 6, False)),
        dict(batch_size=3, collate_fn=lambda samples: [s["y"] for s in samples]),
    ],
)
def test_map_dataset_matches_torch(kwargs, workers):
    make = kwargs if callable(kwargs) else lambda: kwargs
    ours = list(DataLoader(Squares(), num_workers=workers, **make()))
    theirs = list(TorchDataLoader(Squares(), **make()))
    assert_same_batches(ours, theirs)


@pytest.mark.parametrize("workers", [0, 2])
def test_shuffle_with_generator_follows_torch_order(workers):
    def run(factory, **extra):
        loader = factory(
            Squares(),
            batch_size=4,
            shuffle=True,
            generator=torch.Generator().manual_seed(7),
            **extra,
        )
        return [[b["y"].tolist() for b in loader] for _ in range(3)]  # 3 epochs

    assert run(DataLoader, num_workers=workers) == run(TorchDataLoader)


def test_shuffle_without_generator_is_seeded_and_differs_per_epoch():
    loader = DataLoader(Squares(), batch_size=5, shuffle=True, seed=3)
    epochs = [torch.cat([b["x"][:, 0, 0] for b in loader]).tolist() for _ in range(3)]
    assert all(sorted(e) == list(map(float, range(23))) for e in epochs)
    assert epochs[0] != epochs[1] != epochs[2]
    again = DataLoader(Squares(), batch_size=5, shuffle=True, seed=3)
    assert torch.cat([b["x"][:, 0, 0] for b in again]).tolist() == epochs[0]


def test_seed_defaults_from_torch_rng():
    torch.manual_seed(123)
    first = [b.tolist() for b in DataLoader(list(range(20)), batch_size=4, shuffle=True)]
    torch.manual_seed(123)
    second = [b.tolist() for b in DataLoader(list(range(20)), batch_size=4, shuffle=True)]
    assert first == second


@pytest.mark.parametrize("workers", [0, 1, 2, 4])
def test_deterministic_across_thread_counts(workers):
    reference = [b["y"].tolist() for b in DataLoader(Squares(), batch_size=4, shuffle=True, seed=9)]
    got = [
        b["y"].tolist()
        for b in DataLoader(Squares(), batch_size=4, shuffle=True, seed=9, num_workers=workers)
    ]
    assert got == reference


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize(
    "kwargs", [dict(batch_size=3), dict(batch_size=3, drop_last=True), dict(batch_size=None)]
)
def test_iterable_dataset_matches_torch_single_process(kwargs, workers):
    ours = list(DataLoader(Stream(), num_workers=workers, worker_mode="thread", **kwargs))
    theirs = list(TorchDataLoader(Stream(), **kwargs))
    assert_same_batches(ours, theirs)


def test_iterable_dataset_is_not_duplicated_by_workers():
    loader = DataLoader(Stream(13), batch_size=4, num_workers=3, worker_mode="thread")
    values = torch.cat(list(loader)).flatten()
    assert values.tolist() == list(map(float, range(13)))


def test_reiteration_and_len():
    loader = DataLoader(Squares(), batch_size=4, num_workers=2)
    assert len(loader) == 6
    first = [b["y"].tolist() for b in loader]
    second = [b["y"].tolist() for b in loader]
    assert first == second and len(first) == 6


def test_two_live_iterators_are_independent():
    loader = DataLoader(Squares(), batch_size=4, num_workers=2)
    a, b = iter(loader), iter(loader)
    assert next(a)["y"].tolist() == next(b)["y"].tolist() == [0, 1, 4, 9]
    assert len(list(a)) == len(list(b)) == 5


@pytest.mark.parametrize("persistent", [False, True])
def test_break_mid_epoch_and_delete_leave_no_threads(persistent):
    baseline = threading.active_count()
    loader = DataLoader(Squares(200), batch_size=2, num_workers=3, persistent_workers=persistent)
    for _ in range(3):
        for i, _batch in enumerate(loader):
            if i == 2:
                break
    assert threading.active_count() <= baseline + 3 * (1 if persistent else 2)
    del loader, _batch
    assert threads_settle(baseline), threading.enumerate()


def test_persistent_workers_reuse_threads_and_init_once():
    calls = []
    loader = DataLoader(
        Squares(),
        batch_size=4,
        num_workers=2,
        persistent_workers=True,
        worker_init_fn=calls.append,
        worker_mode="thread",
    )
    for _ in range(3):
        assert len(list(loader)) == 6
    assert sorted(calls) == [0, 1]


def test_worker_init_fn_and_worker_info():
    seen = {}

    class WhoAmI(Squares):
        def __getitem__(self, i):
            info = get_worker_info()
            seen[i] = (info.id, info.num_workers, info.dataset is dataset)
            return super().__getitem__(i)

    dataset = WhoAmI(12)
    started = []
    list(
        DataLoader(
            dataset,
            batch_size=2,
            num_workers=3,
            worker_init_fn=started.append,
            worker_mode="thread",
        )
    )
    assert sorted(started) == [0, 1, 2]
    assert {v[1] for v in seen.values()} == {3} and all(v[2] for v in seen.values())
    assert get_worker_info() is None


def test_worker_init_fn_error_reaches_the_caller():
    def init(worker_id):
        raise RuntimeError(f"init failed in {worker_id}")

    with pytest.raises(RuntimeError, match="init failed"):
        list(DataLoader(Squares(), batch_size=4, num_workers=2, worker_init_fn=init))


@pytest.mark.parametrize("workers", [0, 2])
def test_error_in_dataset_raises_at_its_batch_with_index_and_file(workers):
    baseline = threading.active_count()
    loader = DataLoader(Failing({9}), batch_size=4, num_workers=workers, worker_mode="thread")
    iterator = iter(loader)
    assert next(iterator)["y"].tolist() == [0, 1, 4, 9]
    assert next(iterator)["y"].tolist() == [16, 25, 36, 49]
    with pytest.raises(OSError, match="img9.jpg") as info:
        next(iterator)
    notes = "\n".join(getattr(info.value, "__notes__", []))
    assert "sample index 9" in notes and "/data/img9.jpg" in notes and "batch 2" in notes
    # like torch, the epoch can go on after a failed batch
    assert next(iterator)["y"].tolist() == [144, 169, 196, 225]
    del iterator, info
    assert threads_settle(baseline)


@pytest.mark.parametrize("workers", [0, 2])
def test_on_error_skip_drops_and_counts(workers):
    loader = DataLoader(
        Failing({1, 8, 9, 10, 11}), batch_size=4, num_workers=workers, on_error="skip"
    )
    batches = [b["y"].tolist() for b in loader]
    assert batches == [
        [0, 4, 9],
        [16, 25, 36, 49],
        [144, 169, 196, 225],
        [256, 289, 324, 361],
        [400, 441, 484],
    ]  # batch 8..11 vanished entirely
    stats = loader.stats
    assert stats.samples_skipped == 5 and stats.total_samples_skipped == 5
    assert [i for i, _ in stats.skipped] == [1, 8, 9, 10, 11]
    assert "img8.jpg" in stats.skipped[1][1]
    list(loader)
    assert loader.stats.samples_skipped == 5 and loader.stats.total_samples_skipped == 10


def test_collate_error_propagates():
    def collate(_):
        raise TypeError("cannot collate")

    for workers in (0, 2):
        with pytest.raises(TypeError, match="cannot collate"):
            list(DataLoader(Squares(), batch_size=4, num_workers=workers, collate_fn=collate))


def test_timeout_raises_like_torch():
    class Slow(Squares):
        def __getitem__(self, i):
            time.sleep(1.0)
            return super().__getitem__(i)

    loader = DataLoader(Slow(4), batch_size=1, num_workers=1, timeout=0.1)
    with pytest.raises(RuntimeError, match=r"DataLoader timed out after 0.1 seconds"):
        next(iter(loader))


def test_getitems_is_used_like_torch():
    class Batched(Squares):
        calls = 0

        def __getitems__(self, indices):
            Batched.calls += 1
            return [self[i] for i in indices]

    ours = list(DataLoader(Batched(), batch_size=5, num_workers=2, worker_mode="thread"))
    assert Batched.calls == 5
    assert_same_batches(ours, list(TorchDataLoader(Batched(), batch_size=5)))


def test_out_of_order_delivery_yields_every_batch():
    class Uneven(Squares):
        def __getitem__(self, i):
            if i < 4:
                time.sleep(0.2)
            return super().__getitem__(i)

    loader = DataLoader(Uneven(16), batch_size=4, num_workers=2, in_order=False)
    got = [b["y"].tolist() for b in loader]
    assert sorted(got) == sorted(b["y"].tolist() for b in DataLoader(Uneven(16), batch_size=4))
    assert got[0] != [0, 1, 4, 9]


def test_stats_count_samples_and_waiting():
    loader = DataLoader(Squares(), batch_size=4, num_workers=2)
    assert loader.stats.batches == 0
    for _ in loader:
        pass
    stats = loader.stats
    assert (stats.batches, stats.samples, stats.epoch, stats.path) == (6, 23, 0, "python")
    assert stats.images_per_second > 0 and 0 <= stats.wait_s <= stats.elapsed_s


def test_loader_pickles():
    import pickle

    loader = DataLoader(list(range(10)), batch_size=3, num_workers=2, persistent_workers=True)
    list(loader)
    clone = pickle.loads(pickle.dumps(loader))
    assert [b.tolist() for b in clone] == [b.tolist() for b in loader]


def test_iterable_length_warning_like_torch():
    import re
    import warnings

    class Sized(Stream):
        def __len__(self):
            return 2  # wrong on purpose: the stream has 11 elements

    messages = []
    for factory in (DataLoader, TorchDataLoader):
        loader = factory(Sized(), batch_size=None)
        assert len(loader) == 2
        with pytest.warns(UserWarning) as caught:
            list(loader)
        messages.append([re.sub(r" at 0x[0-9a-f]+", "", str(w.message)) for w in caught])
    assert messages[0] == messages[1] and len(messages[0]) == 9
    with warnings.catch_warnings():  # no len() call, no warning
        warnings.simplefilter("error")
        list(DataLoader(Sized(), batch_size=None))
