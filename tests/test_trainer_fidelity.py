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
from conveyor.callbacks import EarlyStopping, ModelCheckpoint, Timer
from conveyor.training import Callback, MisconfigurationException, Trainer
from conveyor.training.profiler import AdvancedProfiler
from conveyor.training.timer import parse_duration


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # default checkpoints and logs land in the test's directory


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
        def _save_checkpoint(self, trainer, filepath):
            saves.append(time.monotonic())
            super()._save_checkpoint(trainer, filepath)

    interval = timedelta(seconds=0.12)
    callback = Timed(dirpath=tmp_path, save_top_k=-1, train_time_interval=interval)
    started = time.monotonic()
    quiet(max_epochs=1, callbacks=[callback], logger=False).fit(Slow(), loader(n=80))
    # 10 batches of at least 0.05 s each: at least one save, each one interval after the last
    assert saves and saves[0] - started >= interval.total_seconds()
    assert all(b - a >= interval.total_seconds() for a, b in zip(saves, saves[1:]))
    assert len(list(tmp_path.glob("*.ckpt"))) == len(saves) < 10


# -- Lightning 1.6 constructor arguments ---------------------------------------------------


def test_default_attributes():
    defaults = Trainer.default_attributes()
    assert defaults["max_epochs"] is None and defaults["max_time"] is None
    assert defaults["enable_model_summary"] is True and defaults["replace_sampler_ddp"] is True


def test_max_time_stops_training(tmp_path):
    trainer = quiet(max_epochs=1000, max_time={"seconds": 0.3}, logger=False, callbacks=[])
    trainer.fit(Slow(), loader())
    timer = next(c for c in trainer.callbacks if isinstance(c, Timer))
    assert timer.time_elapsed() >= 0.3
    assert 0 < trainer.global_step < 1000 * 5 and trainer.current_epoch < 1000


def test_max_time_formats():
    assert parse_duration("01:02:03:04") == timedelta(days=1, hours=2, minutes=3, seconds=4)
    assert parse_duration({"minutes": 2}) == timedelta(minutes=2)
    with pytest.raises(MisconfigurationException, match="DD:HH:MM:SS"):
        Trainer(max_time="10 minutes")


def test_model_summary_table(tmp_path, capsys):
    quiet(max_epochs=1, logger=False, enable_checkpointing=False).fit(BoringModel(), loader())
    out = capsys.readouterr().out
    assert "| layer | Linear | 5" in out and "5         Total params" in out
    quiet(max_epochs=1, logger=False, enable_checkpointing=False, enable_model_summary=False).fit(
        BoringModel(), loader()
    )
    assert "Total params" not in capsys.readouterr().out


class NanLoss(BoringModel):
    def training_step(self, batch, batch_idx):
        return torch.sqrt(self.layer(batch[0]) * 0 - 1).sum()


def test_terminate_on_nan_is_deprecated_and_raises(tmp_path):
    with pytest.warns(DeprecationWarning, match="terminate_on_nan"):
        trainer = quiet(max_epochs=1, terminate_on_nan=True, logger=False)
    with pytest.raises(ValueError, match="nan or inf"):
        trainer.fit(NanLoss(), loader())


def test_detect_anomaly_finds_the_nan_in_backward(tmp_path):
    trainer = quiet(max_epochs=1, detect_anomaly=True, logger=False)
    with pytest.raises(RuntimeError, match="returned nan"):
        trainer.fit(NanLoss(), loader())


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"tpu_cores": 8}, "TPUs are not supported"),
        ({"ipus": 1}, "IPUs are not supported"),
        ({"plugins": ["ddp_sharded"]}, "no plugin system"),
        ({"amp_backend": "apex"}, "Apex"),
        ({"amp_level": "O2"}, "only supported with `amp_backend='apex'`"),
    ],
)
def test_unsupported_hardware_and_backends_raise(kwargs, match):
    with pytest.raises(MisconfigurationException, match=match):
        Trainer(max_epochs=1, **kwargs)


def test_deprecated_flags_map_to_their_replacements():
    with pytest.warns(DeprecationWarning, match="enable_checkpointing"):
        trainer = Trainer(max_epochs=1, checkpoint_callback=False)
    assert trainer.checkpoint_callback is None
    with pytest.warns(DeprecationWarning, match="enable_model_summary"):
        assert Trainer(max_epochs=1, weights_summary=None).enable_model_summary is False
    with pytest.warns(DeprecationWarning, match="progress_bar_refresh_rate"):
        assert Trainer(max_epochs=1, progress_bar_refresh_rate=0).progress_bar_callback is None


def test_num_processes_means_cpu_devices():
    trainer = Trainer(max_epochs=1, num_processes=2, accelerator="cpu")
    assert trainer.strategy is not None and trainer.strategy.spawn
    assert trainer.strategy.num_processes == 2


class ValCounter(BoringModel):
    def __init__(self):
        super().__init__()
        self.validated_after = []

    def on_validation_start(self):
        if not self.trainer.sanity_checking:
            self.validated_after.append(self.global_step)


@pytest.mark.parametrize(
    "interval,expected",
    [(1.0, [5, 10]), (0.5, [2, 4, 7, 9]), (2, [2, 4, 7, 9]), (1, list(range(1, 11)))],
)
def test_val_check_interval(tmp_path, interval, expected):
    model = ValCounter()
    trainer = quiet(max_epochs=2, val_check_interval=interval, logger=False, callbacks=[])
    trainer.fit(model, loader(), loader(n=16))  # 5 training batches per epoch
    assert model.validated_after == expected


@pytest.mark.parametrize(
    "interval,match", [(1.5, r"range \[0.0, 1.0\]"), (6, "less than or equal"), ("x", "int or")]
)
def test_val_check_interval_errors(tmp_path, interval, match):
    with pytest.raises(MisconfigurationException, match=match):
        quiet(max_epochs=1, val_check_interval=interval, logger=False).fit(
            BoringModel(), loader(), loader()
        )


def test_simple_profiler_reports_every_hook(tmp_path, capsys):
    quiet(max_epochs=2, profiler="simple", logger=False).fit(BoringModel(), loader(), loader())
    out = capsys.readouterr().out
    assert "FIT Profiler Report" in out
    rows = {line.split("|")[1].strip(): line for line in out.splitlines() if line.startswith("|")}
    # 5 batches x 2 epochs; validation: 2 sanity batches + 5 per epoch
    assert rows["[LightningModule]BoringModel.training_step"].split("|")[3].strip() == "10"
    assert rows["[LightningModule]BoringModel.validation_step"].split("|")[3].strip() == "12"
    assert rows["[TrainingEpochLoop].train_dataloader_next"].split("|")[3].strip() == "10"
    assert any(key.startswith("[Callback]ModelCheckpoint{") for key in rows)


def test_advanced_profiler_writes_its_report(tmp_path):
    profiler = AdvancedProfiler(dirpath=tmp_path, filename="prof")
    quiet(max_epochs=1, profiler=profiler, logger=False).fit(BoringModel(), loader())
    report = (tmp_path / "fit-prof.txt").read_text()
    assert "Profile stats for: [LightningModule]BoringModel.training_step" in report
    assert "cumulative" in report


def test_unknown_profiler_name_raises():
    with pytest.raises(MisconfigurationException, match="it can only be one of"):
        Trainer(profiler="fast")


class Reloading(BoringModel):
    def __init__(self):
        super().__init__()
        self.requests = []

    def train_dataloader(self):
        self.requests.append(("train", self.current_epoch))
        return loader()

    def val_dataloader(self):
        self.requests.append(("val", self.current_epoch))
        return loader(n=16)


@pytest.mark.parametrize("every,train_epochs", [(0, [0]), (1, [0, 1, 2, 3]), (2, [0, 2])])
def test_reload_dataloaders_every_n_epochs(tmp_path, every, train_epochs):
    model = Reloading()
    trainer = quiet(
        max_epochs=4, reload_dataloaders_every_n_epochs=every, logger=False, num_sanity_val_steps=0
    )
    trainer.fit(model)
    assert [e for kind, e in model.requests if kind == "train"] == train_epochs
    assert [e for kind, e in model.requests if kind == "val"] == train_epochs
    assert trainer.global_step == 20


@pytest.mark.parametrize(
    "name,default,other",
    [
        ("stochastic_weight_avg", False, True),
    ],
)
def test_missing_features_accept_their_default_and_refuse_the_rest(name, default, other):
    Trainer(max_epochs=1, **{name: default})
    with pytest.raises(MisconfigurationException, match=f"{name}=.*not supported"):
        Trainer(max_epochs=1, **{name: other})
