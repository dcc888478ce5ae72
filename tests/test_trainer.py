"""Trainer: constructor rules, hook order, loops, return values, precision, optimizers."""

import warnings

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import conveyor
from conveyor.training import Callback, DataModule, MisconfigurationException, Module, Trainer


def make_data(n=40, features=4, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, features, generator=generator)
    y = x @ torch.arange(1.0, features + 1).unsqueeze(1) + 0.5
    return TensorDataset(x, y)


def loader(n=40, batch_size=8, shuffle=False, seed=0):
    return DataLoader(make_data(n, seed=seed), batch_size=batch_size, shuffle=shuffle)


class BoringModel(Module):
    def __init__(self, lr: float = 0.05):
        super().__init__()
        self.save_hyperparameters()
        self.layer = torch.nn.Linear(4, 1)

    def forward(self, x):
        return self.layer(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self(x), y))

    def test_step(self, batch, batch_idx, dataloader_idx=0):
        x, y = batch
        self.log("test_loss", torch.nn.functional.mse_loss(self(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


def quiet(**kwargs):
    kwargs.setdefault("enable_progress_bar", False)
    return Trainer(**kwargs)


# -- constructor ----------------------------------------------------------------------------


def test_defaults(tmp_path):
    with pytest.warns(UserWarning, match="max_epochs"):
        trainer = Trainer(default_root_dir=tmp_path)
    assert trainer.max_epochs == 1000 and trainer.max_steps == -1
    assert trainer.precision == "32-true" and trainer.log_every_n_steps == 50
    assert trainer.num_sanity_val_steps == 2 and trainer.accumulate_grad_batches == 1
    assert trainer.limit_train_batches == 1.0
    assert isinstance(trainer.checkpoint_callback, conveyor.training.ModelCheckpoint)
    assert Trainer(max_steps=5).max_epochs == -1


@pytest.mark.parametrize(
    "given,expected",
    [
        (32, "32-true"),
        ("32", "32-true"),
        (16, "16-mixed"),
        ("16-mixed", "16-mixed"),
        ("bf16", "bf16-mixed"),
        ("bf16-mixed", "bf16-mixed"),
        (64, "64-true"),
        ("32-true", "32-true"),
    ],
)
def test_precision_values(given, expected):
    assert Trainer(max_epochs=1, precision=given).precision == expected


@pytest.mark.parametrize("bad", [8, "fp8", "half", True])
def test_bad_precision_raises(bad):
    with pytest.raises(MisconfigurationException, match="Precision"):
        Trainer(max_epochs=1, precision=bad)


def test_gradient_clip_validation():
    with pytest.raises(TypeError, match="Gradient Clipping Value"):
        Trainer(max_epochs=1, gradient_clip_val="1.0")
    with pytest.raises(MisconfigurationException, match="gradient_clip_algorithm"):
        Trainer(max_epochs=1, gradient_clip_algorithm="l2")


def test_fast_dev_run_negative_raises():
    with pytest.raises(MisconfigurationException, match="fast_dev_run"):
        Trainer(fast_dev_run=-1)


@pytest.mark.parametrize("bad", [1.5, -0.1, -3, "all", True])
def test_bad_limits_raise(bad):
    with pytest.raises(MisconfigurationException, match="limit_train_batches"):
        Trainer(max_epochs=1, limit_train_batches=bad)


def test_fraction_giving_zero_batches_raises(tmp_path):
    trainer = quiet(max_epochs=1, limit_train_batches=0.1, default_root_dir=tmp_path)
    with pytest.raises(MisconfigurationException, match="limit_train_batches"):
        trainer.fit(BoringModel(), loader(n=16))  # 2 batches * 0.1 < 1


def test_accumulate_validation():
    with pytest.raises(TypeError):
        Trainer(max_epochs=1, accumulate_grad_batches=0)
    with pytest.raises(MisconfigurationException):
        Trainer(max_epochs=1, accumulate_grad_batches={0: 0})


def test_gpus_unavailable_raise():
    if torch.cuda.is_available():
        pytest.skip("needs a machine without GPUs")
    with pytest.raises(MisconfigurationException, match="gpus"):
        Trainer(max_epochs=1, gpus=1)
    with pytest.raises(MisconfigurationException):
        Trainer(max_epochs=1, gpus="0,1")
    assert Trainer(max_epochs=1, gpus=0).root_device.type == "cpu"
    assert Trainer(max_epochs=1, gpus="0").root_device.type == "cpu"


def test_deterministic_sets_torch_flag():
    try:
        Trainer(max_epochs=1, deterministic=True)
        assert torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(False)


# -- fit loop -------------------------------------------------------------------------------


def test_fit_counts_steps_and_epochs(tmp_path):
    trainer = quiet(max_epochs=3, default_root_dir=tmp_path)
    model = BoringModel()
    assert trainer.fit(model, loader(), loader()) is None
    assert trainer.global_step == 15 and trainer.current_epoch == 3
    assert "train_loss" in trainer.callback_metrics and "val_loss" in trainer.callback_metrics


def test_training_learns(tmp_path):
    model = BoringModel(lr=0.05)
    trainer = quiet(
        max_epochs=30, default_root_dir=tmp_path, enable_checkpointing=False, logger=False
    )
    trainer.fit(model, loader(), loader())
    assert trainer.callback_metrics["val_loss"] < 0.05


def test_max_steps_stops_mid_epoch(tmp_path):
    trainer = quiet(max_steps=7, default_root_dir=tmp_path)
    trainer.fit(BoringModel(), loader())
    assert trainer.global_step == 7


def test_limit_batches_int_and_fraction(tmp_path):
    seen = []

    class Counting(BoringModel):
        def validation_step(self, batch, batch_idx):
            seen.append(batch_idx)

    trainer = quiet(
        max_epochs=1,
        limit_train_batches=2,
        limit_val_batches=0.4,
        num_sanity_val_steps=0,
        default_root_dir=tmp_path,
    )
    trainer.fit(Counting(), loader(), loader())
    assert trainer.global_step == 2 and seen == [0, 1]


def test_accumulate_grad_batches(tmp_path):
    trainer = quiet(max_epochs=2, accumulate_grad_batches=2, default_root_dir=tmp_path)
    trainer.fit(BoringModel(), loader())  # 5 batches: steps after batch 2, 4 and the last
    assert trainer.global_step == 6
    trainer = quiet(max_epochs=2, accumulate_grad_batches={1: 5}, default_root_dir=tmp_path)
    trainer.fit(BoringModel(), loader())
    assert trainer.global_step == 5 + 1


def test_accumulation_matches_big_batch(tmp_path):
    torch.manual_seed(0)
    a, b = BoringModel(lr=0.1), BoringModel(lr=0.1)
    b.load_state_dict(a.state_dict())
    quiet(max_steps=1, accumulate_grad_batches=4, logger=False, enable_checkpointing=False).fit(
        a, loader(n=32, batch_size=8)
    )
    quiet(max_steps=1, logger=False, enable_checkpointing=False).fit(b, loader(n=32, batch_size=32))
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q)


def test_check_val_every_n_epoch(tmp_path):
    epochs = []

    class Recording(BoringModel):
        def on_validation_epoch_start(self):
            if not self.trainer.sanity_checking:
                epochs.append(self.current_epoch)

    quiet(max_epochs=5, check_val_every_n_epoch=2, default_root_dir=tmp_path).fit(
        Recording(), loader(), loader()
    )
    assert epochs == [1, 3]


def test_num_sanity_val_steps(tmp_path):
    sanity = []

    class Recording(BoringModel):
        def validation_step(self, batch, batch_idx):
            if self.trainer.sanity_checking:
                sanity.append(batch_idx)

    quiet(max_epochs=1, default_root_dir=tmp_path).fit(Recording(), loader(), loader())
    assert sanity == [0, 1]
    sanity.clear()
    quiet(max_epochs=1, num_sanity_val_steps=-1, default_root_dir=tmp_path).fit(
        Recording(), loader(), loader()
    )
    assert sanity == [0, 1, 2, 3, 4]


def test_fast_dev_run(tmp_path):
    trainer = quiet(fast_dev_run=2, default_root_dir=tmp_path)
    trainer.fit(BoringModel(), loader(), loader())
    assert trainer.global_step == 2 and trainer.logger is None
    assert not (tmp_path / "lightning_logs").exists() and not (tmp_path / "checkpoints").exists()
    assert quiet(fast_dev_run=True).max_steps == 1


def test_loaders_and_datamodule_together_raise(tmp_path):
    datamodule = DataModule.from_datasets(make_data())
    with pytest.raises(MisconfigurationException, match="You cannot pass"):
        quiet(max_epochs=1).fit(BoringModel(), loader(), datamodule=datamodule)


def test_datamodule_as_second_positional_argument(tmp_path):
    datamodule = DataModule.from_datasets(make_data(), make_data(), batch_size=8)
    trainer = quiet(max_epochs=1, default_root_dir=tmp_path)
    trainer.fit(BoringModel(), datamodule)
    assert trainer.global_step == 5


def test_missing_train_loader_raises(tmp_path):
    with pytest.raises(MisconfigurationException, match="train_dataloader"):
        quiet(max_epochs=1, default_root_dir=tmp_path).fit(BoringModel())


def test_not_a_module_raises():
    with pytest.raises(TypeError, match="conveyor.Module"):
        quiet(max_epochs=1).fit(torch.nn.Linear(2, 2), loader())


def test_training_step_returning_none_skips(tmp_path):
    class Skipping(BoringModel):
        def training_step(self, batch, batch_idx):
            return None if batch_idx % 2 else super().training_step(batch, batch_idx)

    trainer = quiet(max_epochs=1, default_root_dir=tmp_path)
    trainer.fit(Skipping(), loader())
    assert trainer.global_step == 3


def test_training_step_dict_output(tmp_path):
    class DictModel(BoringModel):
        def training_step(self, batch, batch_idx):
            return {"loss": super().training_step(batch, batch_idx), "extra": 1}

    trainer = quiet(max_epochs=1, default_root_dir=tmp_path)
    trainer.fit(DictModel(), loader())
    assert trainer.global_step == 5


def test_bad_training_step_output_raises(tmp_path):
    class Bad(BoringModel):
        def training_step(self, batch, batch_idx):
            return {"not_loss": 1}

    with pytest.raises(MisconfigurationException, match="loss"):
        quiet(max_epochs=1, default_root_dir=tmp_path).fit(Bad(), loader())


# -- hook order -------------------------------------------------------------------------------


def test_hook_order(tmp_path):
    calls = []

    class Recorder(Callback):
        def __getattribute__(self, name):
            attribute = object.__getattribute__(self, name)
            if name.startswith(("on_", "setup", "teardown")) and callable(attribute):

                def wrapper(*args, **kwargs):
                    calls.append(f"callback.{name}")
                    return attribute(*args, **kwargs)

                return wrapper
            return attribute

    class Recording(BoringModel):
        pass

    for hook in (
        "prepare_data",
        "setup",
        "configure_optimizers",
        "on_fit_start",
        "on_train_start",
        "on_train_epoch_start",
        "on_train_batch_start",
        "training_step",
        "on_before_backward",
        "on_after_backward",
        "on_before_optimizer_step",
        "on_before_zero_grad",
        "on_train_batch_end",
        "on_validation_start",
        "on_validation_epoch_start",
        "validation_step",
        "on_validation_epoch_end",
        "on_validation_end",
        "on_train_epoch_end",
        "on_train_end",
        "on_fit_end",
        "teardown",
    ):

        def make(name):
            original = getattr(BoringModel, name)

            def hook_method(self, *args, **kwargs):
                calls.append(f"model.{name}")
                return original(self, *args, **kwargs)

            return hook_method

        setattr(Recording, hook, make(hook))

    class RecordingDM(DataModule):
        def prepare_data(self):
            calls.append("dm.prepare_data")

        def setup(self, stage=None):
            calls.append(f"dm.setup:{stage}")

        def train_dataloader(self):
            return loader(n=8, batch_size=8)

        def val_dataloader(self):
            return loader(n=8, batch_size=8)

    trainer = quiet(
        max_epochs=1,
        callbacks=[Recorder()],
        num_sanity_val_steps=0,
        default_root_dir=tmp_path,
        enable_checkpointing=False,
    )
    trainer.fit(Recording(), datamodule=RecordingDM())
    model_calls = [c for c in calls if not c.startswith("callback.on_") or c in ("callback.setup",)]
    expected = [
        "dm.prepare_data",
        "model.prepare_data",
        "dm.setup:fit",
        "callback.setup",
        "model.setup",
        "model.configure_optimizers",
        "model.on_fit_start",
        "model.on_train_start",
        "model.on_train_epoch_start",
        "model.on_train_batch_start",
        "model.training_step",
        "model.on_before_backward",
        "model.on_after_backward",
        "model.on_before_optimizer_step",
        "model.on_before_zero_grad",
        "model.on_train_batch_end",
        "model.on_validation_start",
        "model.on_validation_epoch_start",
        "model.validation_step",
        "model.on_validation_epoch_end",
        "model.on_validation_end",
        "model.on_train_epoch_end",
        "model.on_train_end",
        "model.on_fit_end",
        "model.teardown",
    ]
    assert [c for c in model_calls if c != "callback.teardown"] == expected
    # callbacks see on_fit_start before the module, on_train_epoch_end after it
    assert calls.index("callback.on_fit_start") < calls.index("model.on_fit_start")
    assert calls.index("model.on_train_epoch_end") < calls.index("callback.on_train_epoch_end")


# -- evaluation and predict -------------------------------------------------------------------


def test_validate_and_test_return_metric_dicts(tmp_path):
    model = BoringModel()
    trainer = quiet(max_epochs=1, default_root_dir=tmp_path)
    results = trainer.validate(model, loader(), verbose=False)
    assert len(results) == 1 and set(results[0]) == {"val_loss"}
    results = trainer.test(model, [loader(), loader(seed=1)], verbose=False)
    assert len(results) == 2
    assert set(results[0]) == {"test_loss/dataloader_idx_0"} and set(results[1]) == {
        "test_loss/dataloader_idx_1"
    }
    assert results[0]["test_loss/dataloader_idx_0"] != results[1]["test_loss/dataloader_idx_1"]


def test_validate_matches_manual_mean(tmp_path):
    model = BoringModel()
    data = make_data(40)
    with torch.no_grad():
        expected = torch.nn.functional.mse_loss(model(data.tensors[0]), data.tensors[1]).item()
    result = quiet(max_epochs=1, default_root_dir=tmp_path).validate(
        model, loader(batch_size=8), verbose=False
    )
    assert result[0]["val_loss"] == pytest.approx(expected, rel=1e-5)


def test_test_with_best_checkpoint(tmp_path):
    model = BoringModel()
    trainer = quiet(max_epochs=2, default_root_dir=tmp_path)
    trainer.fit(model, loader(), loader())
    results = trainer.test(dataloaders=loader(), ckpt_path="best", verbose=False)
    assert "test_loss" in results[0]
    assert trainer.ckpt_path == trainer.checkpoint_callback.best_model_path


def test_predict(tmp_path):
    model = BoringModel()

    class Predicting(BoringModel):
        def predict_step(self, batch, batch_idx, dataloader_idx=0):
            return self(batch[0])

    predictions = quiet(max_epochs=1).predict(Predicting(), loader(n=20, batch_size=8))
    assert [p.shape[0] for p in predictions] == [8, 8, 4]
    assert model is not None


def test_validate_without_model_raises():
    with pytest.raises(MisconfigurationException, match="model"):
        quiet(max_epochs=1).validate()


# -- optimizers -------------------------------------------------------------------------------


def _optimizer_forms(params):
    sgd = lambda: torch.optim.SGD(params(), lr=0.1)  # noqa: E731
    return {
        "single": lambda: sgd(),
        "list": lambda: [sgd()],
        "two_lists": lambda: (lambda o: ([o], [torch.optim.lr_scheduler.StepLR(o, 1)]))(sgd()),
        "list_and_scheduler": lambda: (lambda o: ([o], torch.optim.lr_scheduler.StepLR(o, 1)))(
            sgd()
        ),
        "dict": lambda: (
            lambda o: {
                "optimizer": o,
                "lr_scheduler": {
                    "scheduler": torch.optim.lr_scheduler.StepLR(o, 1),
                    "interval": "step",
                },
            }
        )(sgd()),
        "dict_plateau": lambda: (
            lambda o: {
                "optimizer": o,
                "lr_scheduler": torch.optim.lr_scheduler.ReduceLROnPlateau(o),
                "monitor": "val_loss",
            }
        )(sgd()),
        "list_of_dicts": lambda: [{"optimizer": sgd()}],
    }


@pytest.mark.parametrize("form", list(_optimizer_forms(lambda: []).keys()))
def test_configure_optimizers_forms(form, tmp_path):
    class Model(BoringModel):
        def configure_optimizers(self):
            return _optimizer_forms(self.parameters)[form]()

    trainer = quiet(max_epochs=2, default_root_dir=tmp_path)
    trainer.fit(Model(), loader(), loader())
    assert trainer.global_step == 10 and len(trainer.optimizers) == 1


def test_step_and_epoch_schedulers(tmp_path):
    class Model(BoringModel):
        def configure_optimizers(self):
            opt = torch.optim.SGD(self.parameters(), lr=1.0)
            return [opt], [
                {
                    "scheduler": torch.optim.lr_scheduler.StepLR(opt, 1, gamma=0.5),
                    "interval": "step",
                }
            ]

    trainer = quiet(max_epochs=1, default_root_dir=tmp_path)
    trainer.fit(Model(), loader())
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.5**5)

    class EpochModel(BoringModel):
        def configure_optimizers(self):
            opt = torch.optim.SGD(self.parameters(), lr=1.0)
            return [opt], [torch.optim.lr_scheduler.StepLR(opt, 1, gamma=0.5)]

    trainer = quiet(max_epochs=3, default_root_dir=tmp_path)
    trainer.fit(EpochModel(), loader())
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.5**3)


@pytest.mark.parametrize(
    "returned,match",
    [
        ("nonsense", "Unknown configuration"),
        ({"lr_scheduler": None}, "optimizer"),
        ("plateau_without_monitor", "monitor"),
        ("scheduler_dict_without_scheduler", "scheduler"),
        ("bad_interval", "interval"),
    ],
)
def test_configure_optimizers_errors(returned, match, tmp_path):
    class Model(BoringModel):
        def configure_optimizers(self):
            opt = torch.optim.SGD(self.parameters(), lr=0.1)
            if returned == "plateau_without_monitor":
                return {
                    "optimizer": opt,
                    "lr_scheduler": torch.optim.lr_scheduler.ReduceLROnPlateau(opt),
                }
            if returned == "scheduler_dict_without_scheduler":
                return {"optimizer": opt, "lr_scheduler": {"interval": "step"}}
            if returned == "bad_interval":
                return {
                    "optimizer": opt,
                    "lr_scheduler": {
                        "scheduler": torch.optim.lr_scheduler.StepLR(opt, 1),
                        "interval": "hour",
                    },
                }
            return returned

    with pytest.raises(MisconfigurationException, match=match):
        quiet(max_epochs=1, default_root_dir=tmp_path).fit(Model(), loader())


def test_multiple_optimizers_get_optimizer_idx(tmp_path):
    seen = []

    class TwoOpt(BoringModel):
        def __init__(self):
            super().__init__()
            self.other = torch.nn.Linear(4, 1)

        def training_step(self, batch, batch_idx, optimizer_idx):
            seen.append(optimizer_idx)
            x, y = batch
            layer = self.layer if optimizer_idx == 0 else self.other
            return torch.nn.functional.mse_loss(layer(x), y)

        def configure_optimizers(self):
            return [
                torch.optim.SGD(self.layer.parameters(), lr=0.1),
                torch.optim.SGD(self.other.parameters(), lr=0.1),
            ]

    trainer = quiet(max_epochs=1, default_root_dir=tmp_path)
    trainer.fit(TwoOpt(), loader())
    assert seen == [0, 1] * 5 and trainer.global_step == 10


def test_manual_optimization(tmp_path):
    class Manual(BoringModel):
        def __init__(self):
            super().__init__()
            self.automatic_optimization = False

        def training_step(self, batch, batch_idx):
            opt = self.optimizers()
            x, y = batch
            loss = torch.nn.functional.mse_loss(self(x), y)
            opt.zero_grad()
            self.manual_backward(loss)
            opt.step()
            return loss

    model = Manual()
    before = model.layer.weight.detach().clone()
    quiet(max_epochs=1, default_root_dir=tmp_path).fit(model, loader())
    assert not torch.equal(before, model.layer.weight)


# -- precision and clipping -------------------------------------------------------------------


def test_bf16_autocast_on_cpu(tmp_path):
    dtypes = []

    class Model(BoringModel):
        def training_step(self, batch, batch_idx):
            dtypes.append(self(batch[0]).dtype)
            return super().training_step(batch, batch_idx)

    quiet(max_epochs=1, precision="bf16", default_root_dir=tmp_path).fit(Model(), loader())
    assert set(dtypes) == {torch.bfloat16}


def test_fp16_on_cpu_warns_and_uses_bf16(tmp_path):
    trainer = quiet(max_epochs=1, precision=16, default_root_dir=tmp_path)
    with pytest.warns(UserWarning, match="bf16"):
        trainer.fit(BoringModel(), loader())
    assert trainer.precision_plugin.precision == "bf16-mixed"


def test_double_precision(tmp_path):
    model = BoringModel()
    quiet(max_epochs=1, precision=64, default_root_dir=tmp_path).fit(model, loader())
    assert model.layer.weight.dtype == torch.float64


@pytest.mark.parametrize("algorithm", ["value", "norm"])
def test_gradient_clipping(algorithm, tmp_path):
    norms = []

    class Model(BoringModel):
        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.0)

        def on_before_zero_grad(self, optimizer):
            grads = torch.cat([p.grad.flatten() for p in self.parameters()])
            norms.append(grads.abs().max().item() if algorithm == "value" else grads.norm().item())

    quiet(
        max_epochs=1,
        gradient_clip_val=0.01,
        gradient_clip_algorithm=algorithm,
        default_root_dir=tmp_path,
    ).fit(Model(), loader())
    assert max(norms) <= 0.01 + 1e-6


# -- logging ----------------------------------------------------------------------------------


def test_log_defaults_and_csv(tmp_path):
    class Model(BoringModel):
        def training_step(self, batch, batch_idx):
            loss = super().training_step(batch, batch_idx)
            self.log("both", loss, on_step=True, on_epoch=True, prog_bar=True)
            return loss

    trainer = quiet(max_epochs=2, log_every_n_steps=1, default_root_dir=tmp_path)
    trainer.fit(Model(), loader(), loader())
    metrics = trainer.callback_metrics
    assert {"train_loss", "val_loss", "both", "both_step", "both_epoch"} <= set(metrics)
    assert "both_step" in trainer.progress_bar_metrics
    csv_text = (tmp_path / "lightning_logs" / "version_0" / "metrics.csv").read_text()
    header = csv_text.splitlines()[0].split(",")
    assert {"train_loss", "epoch", "step", "val_loss", "both_step", "both_epoch"} <= set(header)
    assert len(csv_text.splitlines()) == 1 + 10 + 2 + 2  # steps, validation and train-epoch rows


def test_log_rejects_non_scalars(tmp_path):
    class Model(BoringModel):
        def training_step(self, batch, batch_idx):
            self.log("vector", torch.ones(3))
            return super().training_step(batch, batch_idx)

    with pytest.raises(ValueError, match="scalar"):
        quiet(max_epochs=1, default_root_dir=tmp_path).fit(Model(), loader())


def test_progress_bar_reports_throughput(tmp_path, capsys):
    trainer = Trainer(max_epochs=1, default_root_dir=tmp_path)
    trainer.fit(BoringModel(), loader())
    err = capsys.readouterr().err
    assert "img/s" in err and "data=" in err and "loss=" in err
    assert trainer.throughput.samples == 40


def test_early_stopping(tmp_path):
    class Plateau(BoringModel):
        def validation_step(self, batch, batch_idx):
            self.log("val_loss", 1.0)

    trainer = quiet(
        max_epochs=20,
        default_root_dir=tmp_path,
        callbacks=[conveyor.training.EarlyStopping("val_loss", patience=2)],
    )
    trainer.fit(Plateau(), loader(), loader())
    assert trainer.current_epoch == 3


def test_seed_everything_reproducible(tmp_path):
    def run():
        conveyor.seed_everything(7)
        model = BoringModel()
        quiet(max_epochs=2, logger=False, enable_checkpointing=False).fit(
            model, loader(shuffle=True)
        )
        return model.layer.weight.detach().clone()

    torch.testing.assert_close(run(), run(), rtol=0, atol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert conveyor.seed_everything(3) == 3


def test_tensorboard_logger_writes_scalars_and_hparams(tmp_path):
    pytest.importorskip("tensorboard", reason="TensorBoardLogger needs the tensorboard package")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from conveyor.training.loggers import TensorBoardLogger

    logger = TensorBoardLogger(tmp_path)
    quiet(max_epochs=2, log_every_n_steps=1, logger=logger, default_root_dir=tmp_path).fit(
        BoringModel(), loader(), loader()
    )
    version_dir = tmp_path / "lightning_logs" / "version_0"
    assert (version_dir / "hparams.yaml").is_file()
    events = EventAccumulator(str(version_dir))
    events.Reload()
    assert {"train_loss", "val_loss"} <= set(events.Tags()["scalars"])
    assert len(events.Scalars("train_loss")) == 10  # 2 epochs x 5 steps, every step logged
    assert len(events.Scalars("val_loss")) == 2
