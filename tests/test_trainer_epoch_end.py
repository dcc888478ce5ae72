"""What the epoch-end hooks see and when the epoch schedulers step, as in Lightning 1.6:
this epoch's aggregated metrics are readable in ``validation_epoch_end``,
``on_validation_epoch_end`` and ``on_train_epoch_end``; non-plateau epoch schedulers step after
the epoch's last batch, before its last validation; ReduceLROnPlateau steps after the epoch's
metrics are gathered (so it may monitor a training epoch metric)."""

import torch
from test_trainer import BoringModel, loader, quiet

from conveyor.training import ModelCheckpoint, Trainer
from conveyor.training.checkpoint_io import load_checkpoint


class Recording(BoringModel):
    """Logs a known value per epoch and records what the epoch-end hooks read back."""

    def __init__(self):
        super().__init__()
        self.seen_val, self.seen_train, self.seen_val_callback = [], [], []

    def training_step(self, batch, batch_idx):
        self.log("train_mark", float(self.current_epoch + batch_idx), on_epoch=True)
        return super().training_step(batch, batch_idx)

    def validation_step(self, batch, batch_idx):
        self.log("val_mark", float(10 * (self.current_epoch + 1)))

    def validation_epoch_end(self, outputs):
        self.seen_val_callback.append(float(self.trainer.callback_metrics["val_mark"]))

    def on_validation_epoch_end(self):
        if not self.trainer.sanity_checking:
            self.seen_val.append(float(self.trainer.logged_metrics["val_mark"]))

    def on_train_epoch_end(self):
        self.seen_train.append(float(self.trainer.logged_metrics["train_mark_epoch"]))


def test_epoch_end_hooks_read_this_epochs_metrics(tmp_path):
    model = Recording()
    quiet(max_epochs=3, default_root_dir=tmp_path, num_sanity_val_steps=0).fit(
        model, loader(n=40, batch_size=8), loader(n=16, batch_size=8)
    )
    assert model.seen_val == [10.0, 20.0, 30.0]
    assert model.seen_val_callback == [10.0, 20.0, 30.0]
    # mean over the 5 batches of (epoch + batch_idx)
    assert model.seen_train == [2.0, 3.0, 4.0]


def test_sanity_check_values_do_not_leak_into_the_first_epoch(tmp_path):
    model = Recording()
    trainer = quiet(max_epochs=1, default_root_dir=tmp_path, num_sanity_val_steps=1)
    trainer.fit(model, loader(), loader(n=16, batch_size=8))
    assert model.seen_val == [10.0]  # the sanity check is not recorded, its values are dropped


class StepLRModel(BoringModel):
    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=0.1)
        return [optimizer], [torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=2)]


def test_epoch_scheduler_steps_before_the_epochs_last_validation(tmp_path):
    """val_check_interval=0.5 validates twice per epoch; the checkpoint written after the
    epoch's last validation already holds the stepped scheduler, the mid-epoch one does not."""
    callback = ModelCheckpoint(dirpath=tmp_path, monitor="val_loss", save_top_k=-1)
    trainer = quiet(
        max_epochs=2, callbacks=[callback], logger=False, val_check_interval=0.5,
        num_sanity_val_steps=0,
    )  # fmt: skip
    trainer.fit(StepLRModel(), loader(n=32, batch_size=8), loader(n=16, batch_size=8))
    by_step = {}
    for path in tmp_path.glob("*.ckpt"):
        checkpoint = load_checkpoint(path)
        by_step[checkpoint["global_step"]] = checkpoint["lr_schedulers"][0]["_step_count"]
    # steps 2 and 6 are mid-epoch, 4 and 8 end an epoch (StepLR's count starts at 1)
    assert by_step == {2: 1, 4: 2, 6: 2, 8: 3}


class PlateauOnTrainMetric(BoringModel):
    def __init__(self):
        super().__init__()
        self.stepped_with = []

    def training_step(self, batch, batch_idx):
        self.log("train_mark", float(self.current_epoch + 1), on_step=False, on_epoch=True)
        return super().training_step(batch, batch_idx)

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=0.1)
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "monitor": "train_mark", "strict": True},
        }

    def lr_scheduler_step(self, scheduler, optimizer_idx, metric):
        self.stepped_with.append(float(metric))
        super().lr_scheduler_step(scheduler, optimizer_idx, metric)


def test_plateau_scheduler_monitors_a_training_epoch_metric(tmp_path):
    model = PlateauOnTrainMetric()
    quiet(max_epochs=3, logger=False, enable_checkpointing=False, limit_val_batches=0).fit(
        model, loader()
    )
    assert model.stepped_with == [1.0, 2.0, 3.0]  # each epoch's own value


def test_num_devices(monkeypatch):
    assert Trainer(logger=False, max_epochs=1).num_devices == 1
    monkeypatch.setenv("CONVEYOR_TRAINER_DEVICES", "2")
    monkeypatch.setenv("CONVEYOR_TRAINER_ACCELERATOR", "cpu")
    assert Trainer(logger=False, max_epochs=1).num_devices == 2


class OutputShapes(BoringModel):
    """Returns a tensor, a dict with extras, or None (skipped), and records what the hooks get."""

    def __init__(self):
        super().__init__()
        self.batch_end, self.epoch_end = [], []

    def training_step(self, batch, batch_idx):
        loss = super().training_step(batch, batch_idx)
        if batch_idx == 0:
            return loss
        if batch_idx == 1:
            return {"loss": loss, "extra": loss * 2}
        return None

    def on_train_batch_end(self, outputs, batch, batch_idx, unused=0):
        self.batch_end.append(outputs)

    def training_epoch_end(self, outputs):
        self.epoch_end.append(outputs)


def test_training_outputs_reach_the_hooks_as_lightning_shapes_them(tmp_path):
    model = OutputShapes()
    quiet(max_epochs=1, logger=False, enable_checkpointing=False, limit_train_batches=3).fit(
        model, loader()
    )
    first, second, skipped = model.batch_end
    assert set(first) == {"loss"} and not first["loss"].requires_grad
    assert set(second) == {"loss", "extra"} and not second["extra"].requires_grad
    assert torch.allclose(second["extra"], second["loss"] * 2)
    assert skipped == []  # a skipped step
    (outputs,) = model.epoch_end
    assert outputs == [first, second]  # the skipped step is left out


def test_epoch_end_loss_is_divided_by_accumulation(tmp_path):
    model = OutputShapes()
    quiet(
        max_epochs=1, logger=False, enable_checkpointing=False, limit_train_batches=2,
        accumulate_grad_batches=2,
    ).fit(model, loader())  # fmt: skip
    raw = BoringModel.training_step(model, next(iter(loader())), 0)  # weights changed: shape only
    assert model.epoch_end[0][0]["loss"].shape == raw.shape
    # Lightning's closure divides the loss it reports by the accumulation factor
    extra_over_loss = model.epoch_end[0][1]["extra"] / model.epoch_end[0][1]["loss"]
    assert torch.allclose(extra_over_loss, torch.tensor(4.0))
