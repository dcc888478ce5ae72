"""The tuners, as Lightning 1.6.5's: ``auto_lr_find`` / ``trainer.tuner.lr_find`` (learning-rate
range test, steepest-descent suggestion) and ``auto_scale_batch_size`` "power" / "binsearch"
(largest batch size before a real out-of-memory error), on small real training runs."""

import matplotlib
import numpy as np
import pytest
import torch
from test_trainer import make_data
from torch.utils.data import DataLoader

from conveyor.training import DataModule, MisconfigurationException, Module, Trainer
from conveyor.training.tuner import LRFinder, is_oom_error

matplotlib.use("Agg")


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # default checkpoints and logs land in the test's directory


class Regression(Module):
    """Linear regression with its learning rate in hparams.lr and its own train loader."""

    def __init__(self, lr=0.01, batch_size=8):
        super().__init__()
        self.save_hyperparameters()
        self.layer = torch.nn.Linear(4, 1)
        self.optimizer_lrs = []

    def forward(self, x):
        return self.layer(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.mse_loss(self(x), y)

    def train_dataloader(self):
        return DataLoader(make_data(400), batch_size=self.hparams.batch_size, shuffle=True)

    def configure_optimizers(self):
        self.optimizer_lrs.append(self.hparams.lr)
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


def trainer(**kwargs):
    kwargs.setdefault("max_epochs", 3)
    return Trainer(enable_progress_bar=False, logger=False, enable_checkpointing=False, **kwargs)


def weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


# -- learning-rate finder -------------------------------------------------------------------------


def test_lr_find_follows_the_exponential_schedule_and_restores_model_and_rng():
    torch.manual_seed(0)
    model = Regression()
    before = weights(model)
    torch.manual_seed(1)
    finder = trainer().tuner.lr_find(model, num_training=60, early_stop_threshold=None)
    after_rng = torch.rand(3)
    torch.manual_seed(1)
    assert torch.equal(after_rng, torch.rand(3))  # the tuner left torch's RNG untouched
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert isinstance(finder, LRFinder)
    lrs, losses = finder.results["lr"], finder.results["loss"]
    assert len(lrs) == len(losses) == 60
    # Lightning's range: step 0 at min_lr, step k at min * (max/min) ** ((k + 1) / N): max last
    expected = [1e-8] + [1e-8 * (1 / 1e-8) ** ((k + 1) / 60) for k in range(1, 60)]
    assert lrs == pytest.approx(expected, rel=1e-9) and lrs[-1] == pytest.approx(1.0)
    assert model.hparams.lr == 0.01  # update_attr=False by default


def test_lr_find_suggestion_is_the_steepest_descent():
    torch.manual_seed(0)
    model = Regression()
    finder = trainer().tuner.lr_find(model, num_training=80, max_lr=0.5)
    assert len(finder.results["loss"]) > 20
    losses = np.array(finder.results["loss"][10:-1])
    expected = finder.results["lr"][int(np.gradient(losses).argmin()) + 10]
    assert finder.suggestion() == expected


def test_lr_find_stops_early_when_the_loss_diverges():
    finder = trainer(max_epochs=10).tuner.lr_find(Regression(), min_lr=1e-3, max_lr=1e4)
    losses = finder.results["loss"]
    assert len(losses) < 100  # stopped before num_training steps
    assert losses[-1] > 4 * min(losses[1:])


def test_lr_find_linear_mode():
    finder = trainer().tuner.lr_find(
        Regression(), num_training=20, min_lr=0.001, max_lr=0.021, mode="linear"
    )
    expected = [0.001] + [0.001 + (k + 1) / 20 * 0.02 for k in range(1, 20)]
    assert finder.results["lr"] == pytest.approx(expected)


def test_auto_lr_find_tune_sets_hparams_lr_and_fit_uses_it():
    torch.manual_seed(0)
    model = Regression(batch_size=32)  # 13 steps an epoch
    tuner_trainer = trainer(auto_lr_find=True, max_epochs=8)
    result = tuner_trainer.tune(model)
    suggested = result["lr_find"].suggestion()
    assert suggested is not None and model.hparams.lr == suggested != 0.01
    assert tuner_trainer.global_step == 0
    tuner_trainer.fit(model)
    assert model.optimizer_lrs[-1] == suggested
    assert tuner_trainer.global_step == 8 * 13  # an ordinary fit after tuning


def test_auto_lr_find_without_a_suggestion_keeps_the_rate():
    """Lightning 1.6 would set lr=None when the test stops too early to suggest anything;
    conveyor keeps the model's rate and says why."""
    model = Regression()
    with pytest.warns(UserWarning, match="keeping lr=0.01"):
        with pytest.warns(UserWarning, match="Failed to compute suggestion"):
            trainer(auto_lr_find=True).tune(model, lr_find_kwargs={"num_training": 5})
    assert model.hparams.lr == 0.01


class AttributeLR(Regression):
    def __init__(self):
        super().__init__()
        del self.hparams["lr"]  # only the attributes below hold a rate
        self.learning_rate = 0.01
        self.my_rate = 0.01

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.learning_rate)


def test_auto_lr_find_sets_a_learning_rate_attribute_or_the_named_one():
    model = AttributeLR()
    result = trainer(auto_lr_find=True).tune(model)
    assert model.learning_rate == result["lr_find"].suggestion()
    model = AttributeLR()
    result = trainer(auto_lr_find="my_rate").tune(model)
    assert model.my_rate == result["lr_find"].suggestion() and model.learning_rate == 0.01


def test_auto_lr_find_without_an_lr_attribute_raises():
    class NoLR(Module):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(4, 1)

        def training_step(self, batch, batch_idx):
            return self.layer(batch[0]).sum()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    with pytest.raises(MisconfigurationException, match="lr', 'learning_rate"):
        trainer(auto_lr_find=True).tune(NoLR(), DataLoader(make_data(), batch_size=8))
    with pytest.raises(MisconfigurationException, match="auto_lr_find` was set to nope"):
        trainer(auto_lr_find="nope").tune(NoLR(), DataLoader(make_data(), batch_size=8))


def test_lr_find_refuses_several_optimizers():
    class Two(Regression):
        def configure_optimizers(self):
            return [torch.optim.SGD(self.parameters(), lr=0.1)] * 2

    with pytest.raises(MisconfigurationException, match="single optimizer"):
        trainer().tuner.lr_find(Two())


def test_lr_finder_plot_and_too_few_points():
    finder = trainer().tuner.lr_find(Regression(), num_training=30, early_stop_threshold=None)
    figure = finder.plot(suggest=True)
    assert len(figure.axes[0].lines) == 2  # the curve and the suggestion's red dot
    line = figure.axes[0].lines[0]
    assert list(line.get_xdata()) == finder.results["lr"]
    assert figure.axes[0].get_xscale() == "log"
    short = trainer().tuner.lr_find(Regression(), num_training=5)
    with pytest.warns(UserWarning, match="Failed to compute suggestion"):
        assert short.suggestion() is None


def test_lr_find_is_skipped_under_fast_dev_run():
    with pytest.warns(UserWarning, match="Skipping learning rate finder"):
        assert trainer(fast_dev_run=True).tuner.lr_find(Regression()) is None


@pytest.mark.parametrize("bad", [1, None, 0.5])
def test_bad_auto_lr_find_raises(bad):
    with pytest.raises(MisconfigurationException, match="auto_lr_find"):
        Trainer(max_epochs=1, auto_lr_find=bad)


# -- batch size scaling ---------------------------------------------------------------------------

FITS = 24  # the largest batch that "fits": above it, training really runs out of CPU memory


class MemoryBound(Module):
    """Allocates an impossible buffer (1 PiB) for batches above FITS samples: torch raises its
    real DefaultCPUAllocator out-of-memory RuntimeError."""

    def __init__(self, batch_size=2):
        super().__init__()
        self.batch_size = batch_size
        self.layer = torch.nn.Linear(4, 1)
        self.sizes_tried = []

    def training_step(self, batch, batch_idx):
        x, y = batch
        self.sizes_tried.append(len(x))
        if len(x) > FITS:
            torch.empty(2**50, dtype=torch.uint8)
        return torch.nn.functional.mse_loss(self.layer(x), y)

    def train_dataloader(self):
        return DataLoader(make_data(256), batch_size=self.batch_size)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def test_the_oom_the_test_model_raises_is_torchs_own():
    with pytest.raises(RuntimeError) as caught:
        torch.empty(2**50, dtype=torch.uint8)
    assert is_oom_error(caught.value)
    assert not is_oom_error(RuntimeError("shapes cannot be multiplied"))
    assert is_oom_error(RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"))


@pytest.mark.parametrize("mode,found", [("power", 16), ("binsearch", 24)])
def test_scale_batch_size_finds_the_largest_size_before_oom(mode, found):
    model = MemoryBound()
    before = weights(model)
    size = trainer().tuner.scale_batch_size(model, mode=mode, steps_per_trial=2)
    assert size == found and model.batch_size == found
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    tried = sorted(set(model.sizes_tried))
    if mode == "power":
        assert tried == [2, 4, 8, 16, 32]
    else:  # doubling to the failure at 32, then 24 ok, 28, 26 and 25 fail
        assert tried == [2, 4, 8, 16, 24, 25, 26, 28, 32]


def test_auto_scale_batch_size_tune_then_fit_with_the_found_size():
    model = MemoryBound()
    tuned = trainer(auto_scale_batch_size="binsearch", max_epochs=1)
    assert tuned.tune(model) == {"scale_batch_size": 24}
    model.sizes_tried.clear()
    tuned.fit(model)
    assert set(model.sizes_tried) == {24, 256 - 10 * 24}
    assert tuned.global_step == 11


class SizedDataModule(DataModule):
    def __init__(self):
        super().__init__()
        self.batch_size = 2

    def train_dataloader(self):
        return DataLoader(make_data(128), batch_size=self.batch_size)


def test_scale_batch_size_sets_the_datamodules_and_the_hparams_size():
    class FromHparams(MemoryBound):
        def __init__(self):
            Module.__init__(self)
            self.save_hyperparameters({"batch_size": 2})
            self.layer = torch.nn.Linear(4, 1)
            self.sizes_tried = []

        def train_dataloader(self):
            return DataLoader(make_data(256), batch_size=self.hparams.batch_size)

    model = FromHparams()
    assert trainer(auto_scale_batch_size=True).tune(model)["scale_batch_size"] == 16
    assert model.hparams.batch_size == 16

    class NoLoader(MemoryBound):
        train_dataloader = Module.train_dataloader

        def __init__(self):
            super().__init__()
            del self.batch_size

    datamodule = SizedDataModule()
    found = trainer(auto_scale_batch_size="power").tune(NoLoader(), datamodule=datamodule)
    assert found["scale_batch_size"] == datamodule.batch_size == 16


def test_scale_batch_size_lets_other_errors_through():
    class Broken(MemoryBound):
        def training_step(self, batch, batch_idx):
            if len(batch[0]) > 4:
                raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")
            return super().training_step(batch, batch_idx)

    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        trainer().tuner.scale_batch_size(Broken())


def test_scale_batch_size_refuses_loaders_passed_directly_and_missing_fields():
    model = MemoryBound()
    with pytest.raises(MisconfigurationException, match="dataloaders passed directly"):
        trainer().tuner.scale_batch_size(model, DataLoader(make_data(), batch_size=2))
    with pytest.raises(MisconfigurationException, match="Field bs not found"):
        trainer().tuner.scale_batch_size(model, batch_arg_name="bs")
    with pytest.raises(ValueError, match="`power` or `binsearch`"):
        trainer().tuner.scale_batch_size(model, mode="linear")


@pytest.mark.parametrize("bad", ["linear", 2, None])
def test_bad_auto_scale_batch_size_raises(bad):
    with pytest.raises(MisconfigurationException, match="auto_scale_batch_size"):
        Trainer(max_epochs=1, auto_scale_batch_size=bad)


def test_tune_without_tuners_does_nothing():
    model = Regression()
    before = weights(model)
    assert trainer().tune(model) == {}
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
