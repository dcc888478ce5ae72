"""ddp_spawn under pytest (torch.multiprocessing, 2 gloo ranks on the CPU): without any seeding,
the ranks' shards are disjoint and cover every sample each epoch, for conveyor's and torch's
DataLoader; Trainer(devices=2) picks ddp_spawn; the caller's model ends up trained; a rank
that fails is reported with its error instead of hanging."""

import json
import os

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import conveyor
from conveyor.training import ModelCheckpoint, Module, Trainer
from conveyor.training.spawn import SpawnedRankFailed

SAMPLES = 48


def dataset():
    x = torch.arange(SAMPLES * 4, dtype=torch.float32).reshape(SAMPLES, 4) / 100
    return TensorDataset(x, x.sum(1, keepdim=True), torch.arange(SAMPLES))


class SeenModel(Module):
    """Writes the sample indices each rank trained on, per epoch, to ``out/rank<r>.json``."""

    def __init__(self, out, fail_on_rank=None):
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)
        self.out, self.fail_on_rank = out, fail_on_rank
        self.seen = []

    def training_step(self, batch, batch_idx):
        x, y, idx = batch
        if self.global_rank == self.fail_on_rank:
            raise ValueError(f"rank {self.global_rank} fails on purpose")
        self.seen += [(self.current_epoch, int(i)) for i in idx]
        return torch.nn.functional.mse_loss(self.layer(x), y)

    def on_train_end(self):
        with open(os.path.join(self.out, f"rank{self.global_rank}.json"), "w") as handle:
            json.dump(self.seen, handle)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def spawn_trainer(tmp_path, **kwargs):
    kwargs.setdefault("strategy", "ddp_spawn")
    return Trainer(
        max_epochs=2,
        devices=2,
        accelerator="cpu",
        enable_progress_bar=False,
        logger=False,
        enable_checkpointing=False,
        num_sanity_val_steps=0,
        default_root_dir=tmp_path,
        **kwargs,
    )


def seen_per_rank(tmp_path):
    return [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]


@pytest.mark.parametrize("loader_kind", ["conveyor", "conveyor-2-workers", "torch"])
def test_shards_disjoint_without_seeding(tmp_path, loader_kind):
    data = dataset()
    if loader_kind == "torch":
        loader = DataLoader(data, batch_size=4, shuffle=True)
    else:
        workers = 2 if loader_kind.endswith("workers") else 0
        loader = conveyor.DataLoader(data, batch_size=4, shuffle=True, num_workers=workers)
    model = SeenModel(str(tmp_path))
    before = [p.detach().clone() for p in model.parameters()]
    trainer = spawn_trainer(tmp_path, strategy=None)  # devices=2 alone picks ddp_spawn
    assert trainer.strategy is not None and trainer.strategy.spawn
    trainer.fit(model, loader)
    rank0, rank1 = seen_per_rank(tmp_path)
    for epoch in (0, 1):
        a = [i for e, i in rank0 if e == epoch]
        b = [i for e, i in rank1 if e == epoch]
        assert len(a) == len(b) == SAMPLES // 2
        assert not set(a) & set(b) and set(a) | set(b) == set(range(SAMPLES)), (epoch, a, b)
    # the caller's model and trainer hold rank 0's results
    assert trainer.global_step == 2 * SAMPLES // 2 // 4
    assert any(not torch.equal(p, q) for p, q in zip(before, model.parameters()))


def test_failing_rank_raises_its_error(tmp_path):
    model = SeenModel(str(tmp_path), fail_on_rank=1)
    loader = conveyor.DataLoader(dataset(), batch_size=4, shuffle=True)
    with pytest.raises(SpawnedRankFailed, match="(?s)rank 1 raised.*fails on purpose"):
        spawn_trainer(tmp_path).fit(model, loader)


def _fit_epoch(out, devices, ckpt_path=None, every=None):
    """One epoch over a fresh, unseeded conveyor loader; returns what each rank read, in order."""
    out.mkdir(parents=True, exist_ok=True)
    callbacks = []
    if every:
        callbacks.append(
            ModelCheckpoint(dirpath=out / "ckpt", every_n_train_steps=every, save_top_k=-1)
        )
    trainer = Trainer(
        max_epochs=1,
        devices=devices,
        accelerator="cpu",
        enable_progress_bar=False,
        logger=False,
        enable_checkpointing=bool(callbacks),
        callbacks=callbacks,
        num_sanity_val_steps=0,
        default_root_dir=out,
    )
    loader = conveyor.DataLoader(dataset(), batch_size=4, shuffle=True)
    trainer.fit(SeenModel(str(out)), loader, ckpt_path=ckpt_path)
    return [[i for _, i in json.loads((out / f"rank{r}.json").read_text())] for r in range(devices)]


@pytest.mark.parametrize("before,after", [(2, 1), (1, 2)])
def test_resume_mid_epoch_on_another_number_of_ranks(tmp_path, before, after):
    first = _fit_epoch(tmp_path / "first", before, every=2)
    step = 2 if before == 2 else 4  # stop after 16 of the 48 samples either way
    checkpoint = tmp_path / "first" / "ckpt" / f"epoch=0-step={step}.ckpt"
    read_before = [i for rank in first for i in rank[: step * 4]]
    assert len(read_before) == 16
    second = _fit_epoch(tmp_path / "second", after, ckpt_path=str(checkpoint))
    read_after = [i for rank in second for i in rank]
    # the interrupted epoch ends with every sample read exactly once
    assert sorted(read_before + read_after) == list(range(SAMPLES)), (read_before, second)
    assert all(len(rank) == len(second[0]) for rank in second)
