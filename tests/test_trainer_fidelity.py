"""Lightning 1.6 behaviours a ported script relies on: limit_val_batches=0 skips validation,
hooks set to None are disabled, from_argparse_args honours an overridden parse_argparser,
conveyor.callbacks offers pytorch_lightning.callbacks' names."""

from argparse import ArgumentParser, Namespace

import torch
from test_trainer import BoringModel, loader, quiet

import conveyor.callbacks
import conveyor.training
from conveyor.training import Callback, Trainer


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
