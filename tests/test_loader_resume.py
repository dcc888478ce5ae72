"""Mid-epoch resume, set_epoch and distributed sharding of conveyor.DataLoader."""

import pytest
import torch
from torch.utils.data import DistributedSampler, RandomSampler

from conveyor import DataLoader

DATA = list(range(37))


def as_lists(batches):
    return [b.tolist() for b in batches]


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize(
    "make",
    [
        lambda w: DataLoader(DATA, batch_size=4, shuffle=True, seed=5, num_workers=w),
        lambda w: DataLoader(
            DATA,
            batch_size=4,
            shuffle=True,
            num_workers=w,
            generator=torch.Generator().manual_seed(2),
        ),
        lambda w: DataLoader(DATA, batch_size=4, num_workers=w, drop_last=True),
        lambda w: DataLoader(DATA, batch_size=3, shuffle=True, seed=1, num_workers=w).shard(1, 3),
    ],
)
def test_resume_mid_epoch_gives_the_uninterrupted_batches(make, workers):
    reference_loader = make(workers)
    reference = [as_lists(reference_loader) for _ in range(3)]  # 3 uninterrupted epochs

    loader = make(workers)
    first = as_lists(loader)  # epoch 0 complete
    iterator = iter(loader)  # epoch 1: stop after 3 batches
    partial = [next(iterator).tolist() for _ in range(3)]
    state = loader.state_dict()
    del iterator

    resumed = make(workers)
    resumed.load_state_dict(state)
    rest = as_lists(resumed)
    assert [first, partial + rest, as_lists(resumed)] == reference


def test_state_after_full_epoch_points_at_next_epoch():
    loader = DataLoader(DATA, batch_size=5, shuffle=True, seed=0)
    epochs = [as_lists(loader) for _ in range(2)]
    state = loader.state_dict()
    assert (state["epoch"], state["batches_yielded"], state["seed"]) == (2, 0, 0)
    fresh = DataLoader(DATA, batch_size=5, shuffle=True, seed=123)
    fresh.load_state_dict(state)  # the seed travels with the state
    third = as_lists(fresh)
    assert third == as_lists(_at_epoch(2)) and third not in epochs


def _at_epoch(epoch):
    loader = DataLoader(DATA, batch_size=5, shuffle=True, seed=0)
    for _ in range(epoch):
        list(loader)
    return loader


def test_set_epoch_selects_the_permutation():
    loader = DataLoader(DATA, batch_size=5, shuffle=True, seed=4)
    loader.set_epoch(3)
    assert as_lists(loader) == as_lists(_seeded(4, 3))
    assert as_lists(loader) == as_lists(_seeded(4, 4))  # then counts on


def _seeded(seed, epoch):
    loader = DataLoader(DATA, batch_size=5, shuffle=True, seed=seed)
    loader.set_epoch(epoch)
    return loader


def test_set_epoch_keeps_a_loaded_resume_point():
    loader = DataLoader(DATA, batch_size=5, shuffle=True, seed=4)
    loader.load_state_dict({"epoch": 1, "batches_yielded": 6, "seed": 4})
    loader.set_epoch(1)  # what a Trainer does at each epoch start
    assert len(as_lists(loader)) == 2


def test_set_epoch_is_forwarded_to_user_sampler():
    sampler = DistributedSampler(DATA, num_replicas=2, rank=0, shuffle=True, seed=0)
    loader = DataLoader(DATA, batch_size=4, sampler=sampler)
    loader.set_epoch(5)
    assert sampler.epoch == 5


def test_generator_state_required_to_resume_generator_run():
    loader = DataLoader(DATA, batch_size=4, shuffle=True, generator=torch.Generator())
    state = loader.state_dict()
    with pytest.raises(ValueError, match="generator"):
        DataLoader(DATA, batch_size=4, shuffle=True).load_state_dict(state)
    with pytest.raises(KeyError, match="batches_yielded"):
        loader.load_state_dict({"epoch": 1})


@pytest.mark.parametrize("shard_drop_last", [False, True])
@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("world_size", [1, 2, 3, 5])
def test_shard_equals_distributed_sampler(world_size, shuffle, shard_drop_last):
    for rank in range(world_size):
        sampler = DistributedSampler(
            DATA,
            num_replicas=world_size,
            rank=rank,
            shuffle=shuffle,
            seed=11,
            drop_last=shard_drop_last,
        )
        torch_loader = torch.utils.data.DataLoader(DATA, batch_size=4, sampler=sampler)
        ours = DataLoader(DATA, batch_size=4, shuffle=shuffle, seed=11).shard(
            rank, world_size, drop_last=shard_drop_last
        )
        for epoch in range(2):
            sampler.set_epoch(epoch)
            ours.set_epoch(epoch)
            assert as_lists(ours) == as_lists(torch_loader)
            assert len(ours) == len(torch_loader)


def test_shard_constructor_arguments_and_disjoint_cover():
    seen = []
    for rank in range(4):
        loader = DataLoader(
            DATA, batch_size=3, shuffle=True, seed=2, rank=rank, world_size=4, num_workers=2
        )
        seen += [i for b in loader for i in b.tolist()]
    assert sorted(set(seen)) == DATA and len(seen) == 40  # 10 per rank: 3 padded by repetition


def test_shard_custom_batch_sampler_splits_whole_batches():
    batches = [[0, 1], [2, 3], [4, 5], [6]]
    got = [as_lists(DataLoader(DATA, batch_sampler=batches).shard(r, 2)) for r in range(2)]
    assert got == [[[0, 1], [4, 5]], [[2, 3], [6]]]
    assert len(DataLoader(DATA, batch_sampler=batches).shard(1, 2)) == 2


def test_shard_rejects_iterable_and_bad_rank():
    class Stream(torch.utils.data.IterableDataset):
        def __iter__(self):
            return iter(range(3))

    with pytest.raises(ValueError, match="IterableDataset"):
        DataLoader(Stream()).shard(0, 2)
    with pytest.raises(ValueError, match="Invalid rank 2"):
        DataLoader(DATA).shard(2, 2)


def test_user_random_sampler_with_generator_resumes():
    def make():
        return DataLoader(
            DATA,
            batch_size=4,
            generator=None,
            sampler=RandomSampler(DATA, generator=torch.Generator().manual_seed(8)),
        )

    reference = as_lists(make())
    loader = make()
    iterator = iter(loader)
    head = [next(iterator).tolist() for _ in range(4)]
    state = loader.state_dict()
    resumed = make()
    resumed.load_state_dict(state)
    assert head + as_lists(resumed) == reference
