"""Lightning 1.6 behaviours a ported script relies on: limit_val_batches=0 skips validation,
hooks set to None are disabled, from_argparse_args honours an overridden parse_argparser,
conveyor.callbacks offers pytorch_lightning.callbacks' names."""

import time
from argparse import ArgumentParser, Namespace
from datetime import timedelta

import pytest
import torch
from test_trainer import BoringModel, loader, quiet

import conveyor.callbacks
import conveyor.training
from conveyor.callbacks import EarlyStopping, ModelCheckpoint
from conveyor.training import Callback, MisconfigurationException, Trainer


class Recorder(Callback):
    def __init__(self):
        self.calls = []

    def on_validation_start(self, trainer, pl_module):
        self.calls.append("on_validation_start")

    def on_validation_epoch_end(self, trainer, pl_module):
        self.calls.append("on_validation_epoch_end")

    def on_sanity_check_start(self, trainer, pl_module):
        self.calls.append("on_sanity_check_start")


class EpochEndModel(BoringModel):
    def __init__(self):
        super().__init__()
        self.epoch_end_calls = []

    def validation_epoch_end(self, outputs):
        self.epoch_end_calls.append(list(outputs))

    def training_epoch_end(self, outputs):
        self.epoch_end_calls.append("train")


def test_limit_val_batches_zero_skips_validation_entirely(tmp_path):
    model, recorder = EpochEndModel(), Recorder()
    trainer = quiet(
        max_epochs=2, limit_val_batches=0, callbacks=[recorder], default_root_dir=tmp_path
    )
    trainer.fit(model, loader(), loader())
    assert recorder.calls == []
    assert model.epoch_end_calls == ["train", "train"]  # no validation_epoch_end([])
    assert trainer.global_step == 10


def test_hook_set_to_none_is_disabled(tmp_path):
    model = EpochEndModel()
    model.validation_epoch_end = None
    model.training_epoch_end = None
    model.on_train_epoch_start = None
    trainer = quiet(max_epochs=1, default_root_dir=tmp_path, num_sanity_val_steps=0)
    trainer.fit(model, loader(), loader())
    assert model.epoch_end_calls == []
    assert "val_loss" in trainer.callback_metrics


class CustomParse(Trainer):
    @classmethod
    def parse_argparser(cls, arg_parser):
        return Namespace(max_epochs=7, enable_progress_bar=False, logger=False)


def test_from_argparse_args_goes_through_the_class_parse_argparser():
    trainer = CustomParse.from_argparse_args(ArgumentParser())
    assert trainer.max_epochs == 7


def test_callbacks_module_matches_lightning_names():
    from conveyor.callbacks import Callback as C
    from conveyor.callbacks import EarlyStopping, ModelCheckpoint, TQDMProgressBar

    assert C is conveyor.training.Callback
    assert ModelCheckpoint is conveyor.training.ModelCheckpoint
    assert EarlyStopping is conveyor.training.EarlyStopping
    assert TQDMProgressBar is conveyor.training.ProgressBar
    assert conveyor.callbacks.__all__ and torch  # the module imports on its own


def test_model_checkpoint_state_key_is_lightnings():
    callback = ModelCheckpoint(monitor="val_loss")
    assert callback.state_key == (
        "ModelCheckpoint{'monitor': 'val_loss', 'mode': 'min', 'every_n_train_steps': 0, "
        "'every_n_epochs': 1, 'train_time_interval': None, 'save_on_train_epoch_end': None}"
    )
    timed = ModelCheckpoint(train_time_interval=timedelta(seconds=3))
    assert timed.state_key == (
        "ModelCheckpoint{'monitor': None, 'mode': 'min', 'every_n_train_steps': 0, "
        "'every_n_epochs': 0, 'train_time_interval': datetime.timedelta(seconds=3), "
        "'save_on_train_epoch_end': None}"
    )
    assert EarlyStopping(monitor="x").state_key == "EarlyStopping{'monitor': 'x', 'mode': 'min'}"


def test_model_checkpoint_triggers_are_mutually_exclusive():
    with pytest.raises(MisconfigurationException, match="should be mutually exclusive"):
        ModelCheckpoint(every_n_epochs=1, train_time_interval=timedelta(seconds=1))


class Slow(BoringModel):
    def training_step(self, batch, batch_idx):
        time.sleep(0.05)
        return super().training_step(batch, batch_idx)


def test_model_checkpoint_train_time_interval(tmp_path):
    saves = []

    class Timed(ModelCheckpoint):
        def _write(self, trainer, filepath):
            saves.append(time.monotonic())
            super()._write(trainer, filepath)

    interval = timedelta(seconds=0.12)
    callback = Timed(dirpath=tmp_path, save_top_k=-1, train_time_interval=interval)
    started = time.monotonic()
    quiet(max_epochs=1, callbacks=[callback], logger=False).fit(Slow(), loader(n=80))
    # 10 batches of at least 0.05 s each: at least one save, each one interval after the last
    assert saves and saves[0] - started >= interval.total_seconds()
    assert all(b - a >= interval.total_seconds() for a, b in zip(saves, saves[1:]))
    assert len(list(tmp_path.glob("*.ckpt"))) == len(saves) < 10
