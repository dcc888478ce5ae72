"""Lightning 1.6.5 Trainer features, each checked by real training on small data against what
Lightning 1.6.5's own code does: ``overfit_batches``, ``track_grad_norm``, several train loaders
(``CombinedLoader``), and when validation runs (``max_steps``, ``val_check_interval``,
``limit_val_batches``)."""

import json
import math
import os
import warnings

import pytest
import torch
from test_trainer import BoringModel, make_data, quiet
from torch.utils.data import DataLoader, SequentialSampler, TensorDataset

import conveyor
from conveyor.training import Callback, MisconfigurationException, ModelCheckpoint, Trainer
from conveyor.training.combined_loader import CombinedLoader
from conveyor.training.grads import grad_norm


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # default checkpoints and logs land in the test's directory


def indexed_data(n=40, features=4, seed=0):
    """make_data plus each sample's index, so a test sees which samples a step trained on."""
    x, y = make_data(n, features, seed).tensors
    return TensorDataset(x, y, torch.arange(n))


class SeenModel(BoringModel):
    """Records the sample indices of every training batch and counts validation steps."""

    def __init__(self, lr=0.05):
        super().__init__(lr)
        self.seen = []  # (epoch, [indices]) per training step
        self.val_batches = []  # (epoch, global_step, sanity) per validation step

    def training_step(self, batch, batch_idx):
        x, y, idx = batch
        self.seen.append((self.current_epoch, idx.tolist()))
        return torch.nn.functional.mse_loss(self(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch[:2]
        self.val_batches.append(
            (self.current_epoch, self.trainer.global_step, self.trainer.sanity_checking)
        )
        self.log("val_loss", torch.nn.functional.mse_loss(self(x), y))


def fit_quiet(model, *loaders, **kwargs):
    kwargs.setdefault("logger", False)
    kwargs.setdefault("enable_checkpointing", False)
    trainer = quiet(**kwargs)
    trainer.fit(model, *loaders)
    return trainer


# -- overfit_batches --------------------------------------------------------------------------


@pytest.mark.parametrize("overfit,expected", [(2, 2), (3, 3), (0.25, 1), (0.5, 2), (1.0, 5)])
def test_overfit_batches_trains_the_first_batches_every_epoch(overfit, expected):
    model = SeenModel()
    shuffled = DataLoader(indexed_data(), batch_size=8, shuffle=True)
    with pytest.warns(UserWarning, match="requested to overfit but enabled training dataloader"):
        trainer = fit_quiet(model, shuffled, max_epochs=3, overfit_batches=overfit)
    assert trainer.num_training_batches == expected
    first = [list(range(8 * b, 8 * b + 8)) for b in range(expected)]  # in order, unshuffled
    for epoch in range(3):
        assert [idx for e, idx in model.seen if e == epoch] == first
    assert isinstance(trainer.train_dataloader.sampler, SequentialSampler)


def test_overfit_batches_disables_validation_as_lightning_1_6():
    """Lightning 1.6 sets limit_val_batches=0 under overfit_batches (1.5 validated on the
    training batches): no sanity check, no validation, the val loader is not even asked for."""

    class Asked(SeenModel):
        asked = 0

        def val_dataloader(self):
            self.asked += 1
            return DataLoader(indexed_data(16), batch_size=8)

    model = Asked()
    trainer = fit_quiet(
        model, DataLoader(indexed_data(), batch_size=8), max_epochs=2, overfit_batches=2
    )
    assert trainer.limit_val_batches == 0 and trainer.limit_train_batches == 2
    assert model.val_batches == [] and model.asked == 0
    assert trainer.num_val_batches == []
    assert trainer.global_step == 4


def test_overfit_batches_sequential_loader_gives_no_warning():
    model = SeenModel()
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*overfit.*")
        fit_quiet(model, DataLoader(indexed_data(), batch_size=8), max_epochs=1, overfit_batches=2)
    assert [idx for _, idx in model.seen] == [list(range(8)), list(range(8, 16))]


@pytest.mark.parametrize("kwargs", [dict(seed=3), dict(generator=torch.Generator().manual_seed(2))])
def test_overfit_batches_turns_off_a_conveyor_loaders_shuffle(kwargs):
    model = SeenModel()
    loader = conveyor.DataLoader(indexed_data(), batch_size=8, shuffle=True, **kwargs)
    with pytest.warns(UserWarning, match="turning off the training dataloader shuffling"):
        trainer = fit_quiet(model, loader, max_epochs=2, overfit_batches=0.4)
    assert isinstance(trainer.train_dataloader, conveyor.DataLoader)
    assert [idx for _, idx in model.seen] == [list(range(8)), list(range(8, 16))] * 2


def test_overfit_batches_equals_training_on_those_batches():
    """Same weights as training on the first two batches of an unshuffled loader."""
    torch.manual_seed(0)
    overfit = SeenModel()
    reference = SeenModel()
    reference.load_state_dict(overfit.state_dict())
    with pytest.warns(UserWarning, match="overfit"):
        fit_quiet(
            overfit,
            DataLoader(indexed_data(), batch_size=8, shuffle=True),
            max_epochs=4,
            overfit_batches=2,
        )
    first_two = torch.utils.data.Subset(indexed_data(), range(16))
    fit_quiet(reference, DataLoader(first_two, batch_size=8), max_epochs=4)
    for a, b in zip(overfit.parameters(), reference.parameters()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("bad", [-1, 1.5, True, "2", None])
def test_overfit_batches_bad_values_raise(bad):
    with pytest.raises(MisconfigurationException, match="overfit_batches"):
        Trainer(max_epochs=1, overfit_batches=bad)


def test_overfit_batches_whole_float_is_a_count():
    assert Trainer(max_epochs=1, overfit_batches=3.0).overfit_batches == 3


def test_overfit_batches_with_a_custom_loader_class_raises_clearly():
    class MyLoader(DataLoader):
        def __init__(self, dataset):
            super().__init__(dataset, batch_size=8, shuffle=True)

    with pytest.warns(UserWarning, match="overfit"):
        with pytest.raises(MisconfigurationException, match="MyLoader.*shuffle=False"):
            fit_quiet(SeenModel(), MyLoader(indexed_data()), max_epochs=1, overfit_batches=2)


# -- track_grad_norm ---------------------------------------------------------------------------


class GradRecorder(Callback):
    """The gradients as backward left them (before clipping), at every optimizer step."""

    def __init__(self):
        self.grads = []

    def on_before_optimizer_step(self, trainer, pl_module, optimizer, opt_idx):
        self.grads.append({n: p.grad.detach().clone() for n, p in pl_module.named_parameters()})


class NormLog(Callback):
    def __init__(self):
        self.steps = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.steps.append(
            {k: v for k, v in trainer.callback_metrics.items() if k.startswith("grad_")}
        )


@pytest.mark.parametrize("norm", [2, 1, 3.5, "inf"])
def test_track_grad_norm_logs_each_parameter_and_the_total_before_clipping(norm):
    recorder, log = GradRecorder(), NormLog()
    model = BoringModel(lr=0.01)
    trainer = fit_quiet(
        model,
        DataLoader(make_data(), batch_size=8),
        max_epochs=1,
        track_grad_norm=norm,
        gradient_clip_val=1e-3,  # the norms logged must be the unclipped ones
        callbacks=[recorder, log],
    )
    p = float(norm)
    assert trainer.track_grad_norm == p
    assert len(log.steps) == len(recorder.grads) == 5
    for grads, logged in zip(recorder.grads, log.steps):
        expected = {n: g.norm(p).item() for n, g in grads.items()}
        total = torch.cat([g.flatten() for g in grads.values()]).norm(p).item()
        assert set(logged) == {
            f"grad_{p}_norm/layer.weight",
            f"grad_{p}_norm/layer.bias",
            f"grad_{p}_norm_total",
            f"grad_{p}_norm/layer.weight_step",
            f"grad_{p}_norm/layer.bias_step",
            f"grad_{p}_norm_total_step",
        }
        for name, value in expected.items():
            assert logged[f"grad_{p}_norm/{name}_step"] == pytest.approx(value, abs=1e-4)
        assert logged[f"grad_{p}_norm_total_step"] == pytest.approx(total, abs=2e-4)
        assert total > 1e-3  # so clipping did change the gradients the optimizer used


def test_track_grad_norm_epoch_value_is_the_mean_and_reaches_the_logger(tmp_path):
    log = NormLog()
    trainer = quiet(
        max_epochs=2,
        track_grad_norm=2,
        default_root_dir=tmp_path,
        log_every_n_steps=1,
        callbacks=[log],
        enable_checkpointing=False,
    )
    trainer.fit(BoringModel(), DataLoader(make_data(), batch_size=8))
    epoch_mean = sum(s["grad_2.0_norm_total_step"] for s in log.steps[5:]) / 5
    assert trainer.callback_metrics["grad_2.0_norm_total_epoch"] == pytest.approx(epoch_mean)
    header = (tmp_path / "lightning_logs" / "version_0" / "metrics.csv").read_text().splitlines()[0]
    assert "grad_2.0_norm/layer.weight_step" in header and "grad_2.0_norm_total_epoch" in header


def test_log_grad_norm_can_be_overridden():
    class Custom(BoringModel):
        got = []

        def log_grad_norm(self, grad_norm_dict):
            self.got.append(grad_norm_dict)

    model = Custom()
    fit_quiet(model, DataLoader(make_data(), batch_size=8), max_epochs=1, track_grad_norm="inf")
    assert len(model.got) == 5 and "grad_inf_norm_total" in model.got[0]


def test_grad_norm_utility_matches_lightnings_rounding_and_skips_missing_grads():
    layer = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(2, 1))
    layer[0].weight.grad = torch.tensor([[3.0, 4.0, 0.0], [0.0, 0.0, 0.0]])
    norms = grad_norm(layer, 2, group_separator=".")
    assert norms == {"grad_2.0_norm.0.weight": 5.0, "grad_2.0_norm_total": 5.0}
    assert grad_norm(torch.nn.Linear(2, 2), 2) == {}
    with pytest.raises(ValueError, match="positive"):
        grad_norm(layer, 0)


def test_track_grad_norm_under_manual_optimization_says_it_is_not_applied():
    class Manual(BoringModel):
        def __init__(self):
            super().__init__()
            self.automatic_optimization = False

        def training_step(self, batch, batch_idx):
            optimizer = self.optimizers()
            optimizer.zero_grad()
            self.manual_backward(super().training_step(batch, batch_idx))
            optimizer.step()

    with pytest.warns(UserWarning, match="track_grad_norm is not applied under manual"):
        fit_quiet(Manual(), DataLoader(make_data(), batch_size=8), max_epochs=1, track_grad_norm=2)


@pytest.mark.parametrize("bad", [0, -2, "fro", True, 0.0])
def test_track_grad_norm_bad_values_raise(bad):
    with pytest.raises(MisconfigurationException, match="track_grad_norm"):
        Trainer(max_epochs=1, track_grad_norm=bad)


# -- several train loaders (CombinedLoader) ----------------------------------------------------


def test_combined_loader_matches_lightnings_documented_example():
    loaders = {
        "a": DataLoader(range(6), batch_size=4),
        "b": DataLoader(range(15), batch_size=5),
    }
    cycle = [
        {k: v.tolist() for k, v in batch.items()}
        for batch in CombinedLoader(loaders, "max_size_cycle")
    ]
    assert cycle == [
        {"a": [0, 1, 2, 3], "b": [0, 1, 2, 3, 4]},
        {"a": [4, 5], "b": [5, 6, 7, 8, 9]},
        {"a": [0, 1, 2, 3], "b": [10, 11, 12, 13, 14]},
    ]
    shortest = [{k: v.tolist() for k, v in b.items()} for b in CombinedLoader(loaders, "min_size")]
    assert shortest == cycle[:2]
    assert len(CombinedLoader(loaders, "max_size_cycle")) == 3
    assert len(CombinedLoader(loaders)) == 2  # min_size: CombinedLoader's own default


def test_combined_loader_keeps_nested_shapes_and_turns_tuples_into_lists():
    a, b, c = (DataLoader(range(n), batch_size=2) for n in (4, 6, 2))
    batches = list(CombinedLoader({"x": (a, b), "y": {"z": c}}, "max_size_cycle"))
    assert len(batches) == 3
    assert batches[2]["x"][1].tolist() == [4, 5] and batches[2]["y"]["z"].tolist() == [0, 1]
    assert isinstance(batches[0]["x"], list)


class Stream(torch.utils.data.IterableDataset):
    """0, 1, ..., size - 1 with no length."""

    def __init__(self, size):
        self.size = size

    def __iter__(self):
        return iter(range(self.size))


@pytest.mark.parametrize("lengths", [(4, 6), (5, 5), (6, 4)])
def test_combined_loader_with_a_loader_without_length_stops_when_all_ran_out(lengths):
    """As Lightning's test_combined_loader_sequence_with_map_and_iterable: max_size_cycle with
    a stream of unknown length runs until every loader ran out once."""
    x, y = lengths
    combined = CombinedLoader([DataLoader(Stream(x)), DataLoader(range(y))], "max_size_cycle")
    with pytest.raises(TypeError, match="no length"):
        len(combined)
    assert len(list(combined)) == max(x, y)
    assert len(list(CombinedLoader([DataLoader(Stream(x)), DataLoader(range(y))]))) == min(x, y)


def test_combined_loader_of_one_loader_yields_its_batches():
    combined = CombinedLoader(DataLoader(range(6), batch_size=4), "max_size_cycle")
    assert [b.tolist() for b in combined] == [[0, 1, 2, 3], [4, 5]] and len(combined) == 2


@pytest.mark.parametrize(
    "bad,match",
    [
        (({"a": DataLoader(range(2))}, "longest"), "Invalid Mode"),
        (([], "min_size"), "non-empty"),
        (([None], "min_size"), "not a loader"),
    ],
)
def test_combined_loader_bad_arguments_raise(bad, match):
    with pytest.raises(MisconfigurationException, match=match):
        CombinedLoader(*bad)


def test_trainer_bad_multiple_trainloader_mode_raises():
    with pytest.raises(MisconfigurationException, match="multiple_trainloader_mode"):
        Trainer(max_epochs=1, multiple_trainloader_mode="longest")


class TwoLoaderModel(BoringModel):
    """training_step gets one batch of each loader; trains on both."""

    def __init__(self):
        super().__init__(lr=0.02)
        self.seen = []

    def training_step(self, batch, batch_idx):
        parts = list(batch.values()) if isinstance(batch, dict) else batch
        self.seen.append([p[2].tolist() for p in parts])
        losses = [torch.nn.functional.mse_loss(self(p[0]), p[1]) for p in parts]
        return sum(losses)


@pytest.mark.parametrize("mode,steps", [("max_size_cycle", 5), ("min_size", 2)])
def test_fit_with_a_list_of_loaders(mode, steps):
    model = TwoLoaderModel()
    long = DataLoader(indexed_data(40), batch_size=8)
    short = DataLoader(indexed_data(16, seed=1), batch_size=8)
    trainer = fit_quiet(model, [long, short], max_epochs=2, multiple_trainloader_mode=mode)
    assert isinstance(trainer.train_dataloader, CombinedLoader)
    assert trainer.num_training_batches == steps and trainer.global_step == 2 * steps
    short_order = [list(range(8)), list(range(8, 16))]
    expected = [[list(range(8 * b, 8 * b + 8)), short_order[b % 2]] for b in range(steps)]
    assert model.seen == expected * 2


def test_fit_with_a_dict_of_loaders_from_train_dataloader():
    class DictModel(TwoLoaderModel):
        def train_dataloader(self):
            return {
                "big": DataLoader(indexed_data(24), batch_size=8),
                "small": DataLoader(indexed_data(8, seed=2), batch_size=8),
            }

    model = DictModel()
    trainer = fit_quiet(model, max_epochs=1)
    assert trainer.num_training_batches == 3
    assert [s[1] for s in model.seen] == [list(range(8))] * 3


def test_combined_training_equals_the_sum_of_both_losses():
    """One step on (batch_a, batch_b) moves the weights as the summed losses say."""
    torch.manual_seed(0)
    model = TwoLoaderModel()
    start = {k: v.clone() for k, v in model.state_dict().items()}
    a, b = indexed_data(8), indexed_data(8, seed=3)
    fit_quiet(model, [DataLoader(a, batch_size=8), DataLoader(b, batch_size=8)], max_epochs=1)
    layer = torch.nn.Linear(4, 1)
    layer.load_state_dict({k.split(".", 1)[1]: v for k, v in start.items()})
    loss = sum(torch.nn.functional.mse_loss(layer(d.tensors[0]), d.tensors[1]) for d in (a, b))
    loss.backward()
    with torch.no_grad():
        for p in layer.parameters():
            p -= 0.02 * p.grad
    assert torch.allclose(model.layer.weight, layer.weight) and torch.allclose(
        model.layer.bias, layer.bias
    )


def test_cycled_conveyor_loader_draws_a_new_order_each_pass():
    model = TwoLoaderModel()
    long = conveyor.DataLoader(indexed_data(48), batch_size=8, seed=1)
    short = conveyor.DataLoader(indexed_data(16, seed=1), batch_size=8, shuffle=True, seed=4)
    fit_quiet(model, [long, short], max_epochs=2)
    # 6 steps per epoch: the short loader (2 batches) runs 3 passes per epoch
    passes = [tuple(i for step in model.seen[k : k + 2] for i in step[1]) for k in range(0, 12, 2)]
    assert all(sorted(p) == list(range(16)) for p in passes)  # each pass is all of its data
    assert len(set(passes)) == 6, passes  # 3 passes x 2 epochs, each in its own order


def combined_loaders(kind, seed_mode="given"):
    if kind == "torch":
        return [
            DataLoader(indexed_data(40), batch_size=8, shuffle=True),
            DataLoader(indexed_data(16, seed=1), batch_size=8, shuffle=True),
        ]
    extra = [{"seed": 5}, {"seed": 9}]
    if seed_mode == "drawn":
        extra = [{}, {}]
    elif seed_mode == "drawn, 2 workers":
        extra = [{"num_workers": 2}, {"num_workers": 2}]
    elif seed_mode == "generator":
        extra = [{"generator": torch.Generator().manual_seed(s)} for s in (1, 2)]
    return {
        "a": conveyor.DataLoader(indexed_data(40), batch_size=8, shuffle=True, **extra[0]),
        "b": conveyor.DataLoader(indexed_data(24, seed=1), batch_size=8, shuffle=True, **extra[1]),
    }


def fit_combined(tmp_path, tag, kind, seed_mode, callbacks=(), ckpt_path=None):
    model = TwoLoaderModel()
    torch.manual_seed(0)
    model.layer.reset_parameters()
    trainer = Trainer(
        max_epochs=3,
        callbacks=list(callbacks),
        default_root_dir=tmp_path / tag,
        enable_progress_bar=False,
        logger=False,
        enable_checkpointing=bool(callbacks),
    )
    trainer.fit(model, combined_loaders(kind, seed_mode), ckpt_path=ckpt_path)
    return model, trainer


@pytest.mark.parametrize(
    "kind,seed_mode",
    [
        ("conveyor", "given"),
        ("conveyor", "drawn"),
        ("conveyor", "drawn, 2 workers"),
        ("conveyor", "generator"),
        ("torch", "-"),
    ],
)
def test_several_loaders_resume_exactly(tmp_path, kind, seed_mode):
    mid = ModelCheckpoint(dirpath=tmp_path / "mid", every_n_train_steps=3, save_top_k=-1)
    end = ModelCheckpoint(dirpath=tmp_path / "end", save_top_k=-1)
    reference, ref_trainer = fit_combined(tmp_path, "ref", kind, seed_mode, [mid, end])
    order = reference.seen
    checkpoints = [
        tmp_path / "end" / "epoch=0-step=5.ckpt",
        tmp_path / "mid" / "epoch=1-step=9.ckpt",  # b is in its second pass of epoch 1
        tmp_path / "mid" / "epoch=2-step=15.ckpt",  # after the epoch's last batch
        tmp_path / "mid" / "epoch=2-step=12.ckpt",
    ]
    for path in checkpoints:
        assert path.is_file(), sorted(p.name for p in path.parent.iterdir())
        torch.manual_seed(4321)  # a fresh process: torch's RNG is anywhere
        resumed, trainer = fit_combined(tmp_path, path.stem, kind, seed_mode, ckpt_path=str(path))
        assert trainer.global_step == ref_trainer.global_step == 15
        step = int(path.stem.split("step=")[1])
        assert resumed.seen == order[step:], path.name
        for a, b in zip(reference.parameters(), resumed.parameters()):
            assert torch.equal(a, b), path.name


def test_combined_loader_state_of_other_loaders_is_refused():
    combined = CombinedLoader([DataLoader(range(4)), DataLoader(range(2))], "max_size_cycle")
    state = CombinedLoader([DataLoader(range(4))], "max_size_cycle").state_dict()
    with pytest.raises(MisconfigurationException, match="for 1 loaders, but 2"):
        combined.load_state_dict(state)


def test_combined_conveyor_loaders_are_sharded_per_rank():
    """Each conveyor loader of the collection is sharded alone, as a single loader is: over
    two ranks, an epoch of the long loader and a pass of the short one are split disjointly."""
    per_rank = []
    for rank in (0, 1):
        leaves = {k: v.shard(rank, 2) for k, v in combined_loaders("conveyor").items()}
        combined = CombinedLoader(leaves, "max_size_cycle")
        combined.set_epoch(0)
        per_rank.append([{k: v[2].tolist() for k, v in batch.items()} for batch in combined])
    assert len(per_rank[0]) == len(per_rank[1]) == math.ceil(20 / 8)
    a = [i for batches in per_rank for batch in batches for i in batch["a"]]
    assert sorted(a) == list(range(40))
    b_first_pass = [i for batches in per_rank for batch in batches[:2] for i in batch["b"]]
    assert sorted(b_first_pass) == list(range(24))


# -- when validation runs ----------------------------------------------------------------------


def val_steps(model):
    return [(e, s) for e, s, sanity in model.val_batches if not sanity]


def test_epoch_cut_by_max_steps_does_not_validate():
    """Lightning 1.6 validates on the val_check_batch-th batch only: an epoch that max_steps
    ends early (3 of 5 batches) runs no validation."""
    model = SeenModel()
    trainer = fit_quiet(
        model,
        DataLoader(indexed_data(), batch_size=8),
        DataLoader(indexed_data(16), batch_size=8),
        max_steps=3,
        num_sanity_val_steps=0,
    )
    assert trainer.global_step == 3 and val_steps(model) == []


def test_max_steps_at_the_epochs_last_batch_validates():
    model = SeenModel()
    fit_quiet(
        model,
        DataLoader(indexed_data(), batch_size=8),
        DataLoader(indexed_data(16), batch_size=8),
        max_steps=7,
        num_sanity_val_steps=0,
    )
    assert val_steps(model) == [(0, 5), (0, 5)]  # epoch 0's end (2 val batches); not at step 7


def test_max_steps_on_a_val_check_batch_validates():
    model = SeenModel()
    fit_quiet(
        model,
        DataLoader(indexed_data(), batch_size=8),
        DataLoader(indexed_data(8), batch_size=8),
        max_steps=4,
        val_check_interval=2,
        num_sanity_val_steps=0,
    )
    assert val_steps(model) == [(0, 2), (0, 4)]


def test_fractional_val_check_interval_skips_the_epoch_end():
    """0.3 of 10 batches: validation after batches 3, 6 and 9, not after 10 (Lightning 1.6)."""
    model = SeenModel()
    fit_quiet(
        model,
        DataLoader(indexed_data(80), batch_size=8),
        DataLoader(indexed_data(8), batch_size=8),
        max_epochs=1,
        val_check_interval=0.3,
        num_sanity_val_steps=0,
    )
    assert val_steps(model) == [(0, 3), (0, 6), (0, 9)]


def test_val_check_interval_counts_the_limited_batches():
    model = SeenModel()
    trainer = fit_quiet(
        model,
        DataLoader(indexed_data(80), batch_size=8),
        DataLoader(indexed_data(8), batch_size=8),
        max_epochs=2,
        val_check_interval=0.5,
        limit_train_batches=4,
        num_sanity_val_steps=0,
    )
    assert trainer.val_check_batch == 2
    assert val_steps(model) == [(0, 2), (0, 4), (1, 6), (1, 8)]


def test_val_check_interval_beyond_the_epoch_raises():
    with pytest.raises(
        ValueError, match="must be less than or equal to the number of the training"
    ):
        fit_quiet(
            SeenModel(),
            DataLoader(indexed_data(), batch_size=8),
            DataLoader(indexed_data(8), batch_size=8),
            max_epochs=1,
            val_check_interval=6,
        )


def test_limit_val_batches_zero_with_val_check_interval_never_validates():
    model = SeenModel()
    trainer = fit_quiet(
        model,
        DataLoader(indexed_data(), batch_size=8),
        DataLoader(indexed_data(8), batch_size=8),
        max_epochs=2,
        val_check_interval=2,
        limit_val_batches=0,
    )
    assert model.val_batches == [] and trainer.val_dataloaders == []


def test_limit_val_batches_limits_each_check():
    model = SeenModel()
    fit_quiet(
        model,
        DataLoader(indexed_data(), batch_size=8),
        DataLoader(indexed_data(40), batch_size=8),
        max_epochs=1,
        val_check_interval=0.4,
        limit_val_batches=2,
        num_sanity_val_steps=0,
    )
    assert val_steps(model) == [(0, 2), (0, 2), (0, 4), (0, 4)]


def test_stop_requested_during_a_batch_validates_there():
    class StopAt(Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if trainer.global_step == 2:
                trainer.should_stop = True

    model = SeenModel()
    fit_quiet(
        model,
        DataLoader(indexed_data(), batch_size=8),
        DataLoader(indexed_data(8), batch_size=8),
        max_epochs=3,
        callbacks=[StopAt()],
        num_sanity_val_steps=0,
    )
    assert len(model.seen) == 2 and val_steps(model) == [(0, 2)]


def test_check_val_every_n_epoch_with_val_check_interval():
    model = SeenModel()
    fit_quiet(
        model,
        DataLoader(indexed_data(), batch_size=8),
        DataLoader(indexed_data(8), batch_size=8),
        max_epochs=4,
        val_check_interval=0.4,
        check_val_every_n_epoch=2,
        num_sanity_val_steps=0,
    )
    assert val_steps(model) == [(1, 7), (1, 9), (3, 17), (3, 19)]


def test_loader_without_length_validates_when_it_runs_out():
    class Stream(torch.utils.data.IterableDataset):
        def __iter__(self):
            return iter(indexed_data(24))

    model = SeenModel()
    fit_quiet(
        model,
        DataLoader(Stream(), batch_size=8),
        DataLoader(indexed_data(8), batch_size=8),
        max_epochs=2,
        num_sanity_val_steps=0,
    )
    assert val_steps(model) == [(0, 3), (1, 6)]


# -- under ddp_spawn (2 gloo ranks on the CPU) -------------------------------------------------


class RankSeenModel(TwoLoaderModel):
    """Writes what each rank trained on to ``out/rank<r>.json``."""

    def __init__(self, out):
        super().__init__()
        self.out = out
        self.epochs = []

    def training_step(self, batch, batch_idx):
        self.epochs.append(self.current_epoch)
        return super().training_step(batch, batch_idx)

    def on_train_end(self):
        with open(os.path.join(self.out, f"rank{self.global_rank}.json"), "w") as handle:
            json.dump([[e] + s for e, s in zip(self.epochs, self.seen)], handle)


def spawn_fit(tmp_path, model, loaders, **kwargs):
    trainer = Trainer(
        max_epochs=2,
        devices=2,
        accelerator="cpu",
        strategy="ddp_spawn",
        enable_progress_bar=False,
        logger=False,
        enable_checkpointing=False,
        num_sanity_val_steps=0,
        default_root_dir=tmp_path,
        **kwargs,
    )
    trainer.fit(model, loaders)
    return [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]


def test_several_unseeded_conveyor_loaders_shard_disjointly_under_ddp(tmp_path):
    loaders = {
        "a": conveyor.DataLoader(indexed_data(32), batch_size=4, shuffle=True),
        "b": conveyor.DataLoader(indexed_data(16, seed=1), batch_size=4, shuffle=True),
    }
    rank0, rank1 = spawn_fit(tmp_path, RankSeenModel(str(tmp_path)), loaders)
    assert len(rank0) == len(rank1) == 2 * 4  # 16 samples of a per rank: 4 steps per epoch
    for epoch in (0, 1):
        for which, n in ((0, 32), (1, 16)):
            steps = [s for rank in (rank0, rank1) for s in rank if s[0] == epoch]
            seen = [i for s in steps for i in s[1 + which]]
            # a: one epoch over both ranks; b (8 per rank, 2 steps a pass): two whole passes
            assert sorted(seen) == sorted(list(range(n)) * (32 // n)), (epoch, which, seen)


class OneLoaderRankSeenModel(RankSeenModel):
    def training_step(self, batch, batch_idx):
        return super().training_step([batch], batch_idx)


def test_overfit_batches_under_ddp_reads_the_first_samples_in_order(tmp_path):
    loader = conveyor.DataLoader(indexed_data(32), batch_size=4, shuffle=True)
    model = OneLoaderRankSeenModel(str(tmp_path))
    rank0, rank1 = spawn_fit(tmp_path, model, loader, overfit_batches=2)  # warns in the ranks
    # each rank: its first two batches of the unshuffled, sharded order, every epoch
    assert [s[1] for s in rank0] == [[0, 2, 4, 6], [8, 10, 12, 14]] * 2
    assert [s[1] for s in rank1] == [[1, 3, 5, 7], [9, 11, 13, 15]] * 2


def test_the_new_flags_from_the_command_line():
    from argparse import ArgumentParser

    parser = Trainer.add_argparse_args(ArgumentParser())
    args = parser.parse_args(
        "--track_grad_norm 2 --overfit_batches 0.5 --multiple_trainloader_mode min_size "
        "--auto_lr_find true --auto_scale_batch_size binsearch".split()
    )
    trainer = Trainer.from_argparse_args(args, max_epochs=1)
    assert trainer.track_grad_norm == 2.0 and trainer.overfit_batches == 0.5
    assert trainer.multiple_trainloader_mode == "min_size"
    assert trainer.auto_lr_find is True and trainer.auto_scale_batch_size == "binsearch"
    args = parser.parse_args(
        "--track_grad_norm inf --overfit_batches 3 --auto_lr_find my_lr".split()
    )
    trainer = Trainer.from_argparse_args(args, max_epochs=1)
    assert trainer.track_grad_norm == float("inf") and trainer.overfit_batches == 3
    assert trainer.auto_lr_find == "my_lr"
