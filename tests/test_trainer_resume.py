"""Exact resume with conveyor DataLoaders: a run resumed from any of its own checkpoints ends with
bit-identical weights, whether the loader's seed was given, drawn from torch's RNG or comes from
a generator; at an epoch boundary or mid-epoch; with 0 or 2 workers; with or without
seed_everything; for loaders passed to fit and loaders from a DataModule."""

import pytest
import torch
from test_trainer import BoringModel, make_data

import conveyor
from conveyor.training import DataModule, ModelCheckpoint, Trainer

EPOCHS = 4  # 40 samples, batch 8: 5 steps per epoch, 20 in all


class DropoutModel(BoringModel):
    """Dropout draws from torch's global RNG, so a resume must also restore that RNG."""

    def __init__(self):
        super().__init__(lr=0.05)
        self.dropout = torch.nn.Dropout(0.3)

    def forward(self, x):
        return self.layer(self.dropout(x))


def make_loader(seed_mode, num_workers):
    kwargs = dict(batch_size=8, shuffle=True, num_workers=num_workers)
    if seed_mode == "given":
        kwargs["seed"] = 5
    elif seed_mode == "generator":
        kwargs["generator"] = torch.Generator().manual_seed(1)
    return conveyor.DataLoader(make_data(40), **kwargs)


class LoaderDataModule(DataModule):
    def __init__(self, seed_mode, num_workers):
        super().__init__()
        self.seed_mode, self.num_workers = seed_mode, num_workers

    def train_dataloader(self):
        return make_loader(self.seed_mode, self.num_workers)


def fit(tmp_path, tag, seed_mode, num_workers, via_datamodule, callbacks=(), ckpt_path=None):
    model = DropoutModel()
    trainer = Trainer(
        max_epochs=EPOCHS,
        callbacks=list(callbacks),
        default_root_dir=tmp_path / tag,
        enable_progress_bar=False,
        logger=False,
        enable_checkpointing=bool(callbacks),
    )
    if via_datamodule:
        trainer.fit(model, datamodule=LoaderDataModule(seed_mode, num_workers), ckpt_path=ckpt_path)
    else:
        trainer.fit(model, make_loader(seed_mode, num_workers), ckpt_path=ckpt_path)
    return model, trainer


@pytest.mark.parametrize("seeded", [True, False], ids=["seed_everything", "no_seed_everything"])
@pytest.mark.parametrize("num_workers", [0, 2])
@pytest.mark.parametrize("seed_mode", ["given", "drawn", "generator"])
def test_resume_equals_uninterrupted(tmp_path, seed_mode, num_workers, seeded):
    if seeded:
        conveyor.seed_everything(7)
    mid = ModelCheckpoint(dirpath=tmp_path / "mid", every_n_train_steps=3, save_top_k=-1)
    end = ModelCheckpoint(dirpath=tmp_path / "end", save_top_k=-1)
    reference, ref_trainer = fit(tmp_path, "ref", seed_mode, num_workers, False, [mid, end])
    checkpoints = {
        "epoch boundary": tmp_path / "end" / "epoch=1-step=10.ckpt",
        "mid-epoch": tmp_path / "mid" / "epoch=1-step=9.ckpt",
        "mid-epoch, after its last batch": tmp_path / "mid" / "epoch=2-step=15.ckpt",
    }
    for where, path in checkpoints.items():
        assert path.is_file(), sorted(p.name for p in path.parent.iterdir())
        torch.manual_seed(12345)  # a fresh process: torch's RNG is anywhere
        resumed, trainer = fit(tmp_path, where, seed_mode, num_workers, False, ckpt_path=str(path))
        assert trainer.global_step == ref_trainer.global_step == 5 * EPOCHS
        for (name, a), b in zip(reference.state_dict().items(), resumed.state_dict().values()):
            assert torch.equal(a, b), f"{where}: {name} differs after resume"


@pytest.mark.parametrize("seed_mode", ["drawn", "generator"])
def test_resume_with_datamodule_loader(tmp_path, seed_mode):
    mid = ModelCheckpoint(dirpath=tmp_path / "mid", every_n_train_steps=3, save_top_k=-1)
    end = ModelCheckpoint(dirpath=tmp_path / "end", save_top_k=-1)
    reference, _ = fit(tmp_path, "ref", seed_mode, 0, True, [mid, end])
    for path in (
        tmp_path / "end" / "epoch=1-step=10.ckpt",
        tmp_path / "mid" / "epoch=2-step=12.ckpt",
    ):
        torch.manual_seed(999)
        resumed, _ = fit(tmp_path, path.stem, seed_mode, 0, True, ckpt_path=str(path))
        for a, b in zip(reference.state_dict().values(), resumed.state_dict().values()):
            assert torch.equal(a, b), path.name


def test_checkpoint_holds_the_drawn_seed(tmp_path):
    end = ModelCheckpoint(dirpath=tmp_path / "end", save_top_k=-1)
    model = DropoutModel()
    loader = make_loader("drawn", 0)
    Trainer(max_epochs=1, callbacks=[end], enable_progress_bar=False, logger=False).fit(
        model, loader
    )
    checkpoint = torch.load(tmp_path / "end" / "epoch=0-step=5.ckpt", weights_only=False)
    state = checkpoint["loops"]["fit_loop"]["dataloader_state"]
    assert state["seed"] == loader.seed is not None
    assert state["epoch"] == 1 and state["batches_yielded"] == 0
