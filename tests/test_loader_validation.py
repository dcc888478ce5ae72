"""conveyor.DataLoader's constructor validates exactly like torch.utils.data.DataLoader: each case
triggers both side by side and compares the exception type and message."""

import multiprocessing

import pytest
import torch
from torch.utils.data import BatchSampler, IterableDataset, SequentialSampler
from torch.utils.data import DataLoader as TorchDataLoader

from conveyor import DataLoader


class Stream(IterableDataset):
    def __iter__(self):
        return iter(range(5))


MAP = list(range(10))

CASES = {
    "negative workers": (MAP, dict(num_workers=-1)),
    "negative timeout": (MAP, dict(timeout=-1)),
    "prefetch without workers": (MAP, dict(prefetch_factor=2)),
    "negative prefetch": (MAP, dict(num_workers=1, prefetch_factor=-1)),
    "persistent without workers": (MAP, dict(persistent_workers=True)),
    "iterable with shuffle": (Stream(), dict(shuffle=True)),
    "iterable with sampler": (Stream(), dict(sampler=[0, 1])),
    "iterable with batch_sampler": (Stream(), dict(batch_sampler=[[0, 1]])),
    "sampler and shuffle": (MAP, dict(sampler=SequentialSampler(MAP), shuffle=True)),
    "batch_sampler and batch_size": (MAP, dict(batch_sampler=[[0, 1]], batch_size=2)),
    "batch_sampler and shuffle": (MAP, dict(batch_sampler=[[0, 1]], shuffle=True)),
    "batch_sampler and drop_last": (MAP, dict(batch_sampler=[[0, 1]], drop_last=True)),
    "no batching and drop_last": (MAP, dict(batch_size=None, drop_last=True)),
    "context without workers": (MAP, dict(multiprocessing_context="spawn")),
    "bad context name": (MAP, dict(num_workers=1, multiprocessing_context="nope")),
    "bad context type": (MAP, dict(num_workers=1, multiprocessing_context=3)),
}


def _error_of(factory, dataset, kwargs):
    with pytest.raises(Exception) as info:
        factory(dataset, **kwargs)
    return type(info.value), str(info.value)


@pytest.mark.parametrize("case", sorted(CASES))
def test_same_error_as_torch(case):
    dataset, kwargs = CASES[case]
    assert _error_of(DataLoader, dataset, kwargs) == _error_of(TorchDataLoader, dataset, kwargs)


@pytest.mark.parametrize(
    "attr", ["batch_size", "batch_sampler", "sampler", "drop_last", "dataset", "persistent_workers"]
)
def test_frozen_attributes_like_torch(attr):
    errors = []
    for factory in (DataLoader, TorchDataLoader):
        loader = factory(MAP, batch_size=2)
        with pytest.raises(ValueError) as info:
            setattr(loader, attr, None)
        errors.append(str(info.value))
    assert errors[0] == errors[1]


def test_timeout_without_workers_fails_at_iteration_like_torch():
    messages = []
    for factory in (DataLoader, TorchDataLoader):
        loader = factory(MAP, timeout=1)
        with pytest.raises(AssertionError) as info:
            iter(loader)
        messages.append(str(info.value))
    assert messages[0] == messages[1]


def test_constructor_signature_extends_torch():
    import inspect

    ours = inspect.signature(DataLoader.__init__).parameters
    theirs = inspect.signature(TorchDataLoader.__init__).parameters
    for name, parameter in theirs.items():
        assert name in ours, name
        assert ours[name].kind == parameter.kind, name
        assert ours[name].default == parameter.default, name
    assert list(ours)[: len(theirs)] == list(theirs)
    for extra in ("seed", "on_error", "rank", "world_size"):
        assert ours[extra].kind is inspect.Parameter.KEYWORD_ONLY


def test_is_a_torch_dataloader_with_same_attributes():
    ours, theirs = (
        DataLoader(MAP, batch_size=3, drop_last=True),
        TorchDataLoader(MAP, batch_size=3, drop_last=True),
    )
    assert isinstance(ours, TorchDataLoader)
    for attr in (
        "batch_size",
        "drop_last",
        "num_workers",
        "prefetch_factor",
        "timeout",
        "pin_memory",
        "collate_fn",
        "in_order",
    ):
        assert getattr(ours, attr) == getattr(theirs, attr), attr
    assert len(ours) == len(theirs) == 3
    assert isinstance(ours.batch_sampler, BatchSampler)
    assert DataLoader(MAP, num_workers=2).prefetch_factor == 2


def test_valid_context_accepted_with_workers():
    loader = DataLoader(MAP, num_workers=1, multiprocessing_context="spawn")
    assert isinstance(loader.multiprocessing_context, multiprocessing.context.BaseContext)
    assert [int(x) for x in loader] == MAP


@pytest.mark.parametrize(
    "kwargs, error",
    [
        (dict(on_error="ignore"), ValueError),
        (dict(seed="1"), TypeError),
        (dict(rank=2, world_size=2), ValueError),
        (dict(rank=-1, world_size=2), ValueError),
        (dict(world_size=0), ValueError),
    ],
)
def test_conveyor_extras_are_validated(kwargs, error):
    with pytest.raises(error):
        DataLoader(MAP, **kwargs)


def test_pin_memory_warns_like_torch_without_accelerator():
    if torch.accelerator.is_available():
        pytest.skip("an accelerator is present: pinning really happens")
    records = []
    for factory in (DataLoader, TorchDataLoader):
        with pytest.warns(UserWarning) as caught:
            batches = [b for b in factory(MAP, batch_size=4, pin_memory=True)]
        records.append(sorted(str(w.message) for w in caught))
        assert [b.tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert records[0] == records[1]
