"""Checkpoints: names, contents, top-k, versions, atomic writes, resume (path and URL), and
interrupted-then-resumed training equal to uninterrupted training."""

import http.server
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
import torch
from test_trainer import BoringModel, loader, make_data
from torch.utils.data import DataLoader

import conveyor
from conveyor.training import CSVLogger, MisconfigurationException, ModelCheckpoint, Trainer
from conveyor.training.checkpoint_io import atomic_save, load_checkpoint
from conveyor.training.loggers import next_version


def quiet(**kwargs):
    kwargs.setdefault("enable_progress_bar", False)
    return Trainer(**kwargs)


def ckpt_names(directory):
    return sorted(p.name for p in Path(directory).glob("*.ckpt"))


# -- directories and names --------------------------------------------------------------------


def test_version_numbering(tmp_path):
    assert next_version(tmp_path / "missing") == 0
    for name in ("version_0", "version_5", "version_x", "other"):
        (tmp_path / name).mkdir()
    (tmp_path / "version_9").write_text("a file, not a dir")
    assert next_version(tmp_path) == 6
    assert CSVLogger(tmp_path.parent, name=tmp_path.name).log_dir.endswith("version_6")
    assert CSVLogger(tmp_path, version=3).log_dir.endswith("version_3")
    assert CSVLogger(tmp_path, version="exp").log_dir.endswith("exp")


def test_default_checkpoint_name_and_location(tmp_path):
    trainer = quiet(max_epochs=3, default_root_dir=tmp_path)
    trainer.fit(BoringModel(), loader())
    directory = tmp_path / "lightning_logs" / "version_0" / "checkpoints"
    assert ckpt_names(directory) == ["epoch=2-step=15.ckpt"]
    assert (
        tmp_path / "lightning_logs" / "version_0" / "hparams.yaml"
    ).read_text().strip() == "lr: 0.05"
    quiet(max_epochs=1, default_root_dir=tmp_path).fit(BoringModel(), loader())
    assert (
        tmp_path / "lightning_logs" / "version_1" / "checkpoints" / "epoch=0-step=5.ckpt"
    ).is_file()


def test_no_logger_checkpoints_under_root(tmp_path):
    quiet(max_epochs=1, logger=False, default_root_dir=tmp_path).fit(BoringModel(), loader())
    assert ckpt_names(tmp_path / "checkpoints") == ["epoch=0-step=5.ckpt"]


def test_checkpoint_contents(tmp_path):
    trainer = quiet(max_epochs=2, default_root_dir=tmp_path)
    trainer.fit(BoringModel(), loader())
    checkpoint = torch.load(trainer.checkpoint_callback.best_model_path, weights_only=True)
    assert {
        "epoch",
        "global_step",
        "conveyor_version",
        "state_dict",
        "loops",
        "callbacks",
        "optimizer_states",
        "lr_schedulers",
        "hyper_parameters",
    } <= set(checkpoint)
    assert checkpoint["epoch"] == 1 and checkpoint["global_step"] == 10
    assert checkpoint["hyper_parameters"] == {"lr": 0.05}
    assert isinstance(checkpoint["optimizer_states"], list) and checkpoint["lr_schedulers"] == []


def test_weights_only_contents(tmp_path):
    callback = ModelCheckpoint(dirpath=tmp_path, save_weights_only=True)
    quiet(max_epochs=1, callbacks=[callback], default_root_dir=tmp_path).fit(
        BoringModel(), loader()
    )
    checkpoint = torch.load(callback.best_model_path, weights_only=True)
    assert "optimizer_states" not in checkpoint and "callbacks" not in checkpoint
    assert {"epoch", "global_step", "state_dict", "loops"} <= set(checkpoint)
    with pytest.raises(KeyError, match="weights"):
        quiet(max_epochs=2, default_root_dir=tmp_path).fit(
            BoringModel(), loader(), ckpt_path=callback.best_model_path
        )


def test_filename_templates(tmp_path):
    callback = ModelCheckpoint(dirpath=tmp_path, filename="{epoch:03d}")
    assert os.path.basename(callback.format_checkpoint_name({"epoch": 5})) == "epoch=005.ckpt"
    callback = ModelCheckpoint(dirpath=tmp_path, filename="{epoch}-{val_loss:.2f}")
    assert (
        os.path.basename(
            callback.format_checkpoint_name({"epoch": 2, "val_loss": torch.tensor(0.1234)})
        )
        == "epoch=2-val_loss=0.12.ckpt"
    )
    assert (
        os.path.basename(callback.format_checkpoint_name({"epoch": 2}))
        == "epoch=2-val_loss=0.00.ckpt"
    )
    assert (
        os.path.basename(callback.format_checkpoint_name({"epoch": 2, "val_loss": 1.0}, ver=3))
        == "epoch=2-val_loss=1.00-v3.ckpt"
    )
    plain = ModelCheckpoint(dirpath=tmp_path, filename="{epoch}", auto_insert_metric_name=False)
    assert os.path.basename(plain.format_checkpoint_name({"epoch": 4})) == "4.ckpt"


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"save_top_k": -2}, "save_top_k"),
        ({"save_top_k": 3}, "monitor=None"),
        ({"monitor": "x", "mode": "avg"}, "mode"),
        ({"every_n_train_steps": 2, "every_n_epochs": 2}, "mutually exclusive"),
    ],
)
def test_model_checkpoint_errors(kwargs, match):
    with pytest.raises(MisconfigurationException, match=match):
        ModelCheckpoint(**kwargs)


def test_top_k_by_monitor(tmp_path):
    class Scored(BoringModel):
        scores = [0.5, 0.3, 0.9, 0.1, 0.4]

        def validation_step(self, batch, batch_idx):
            self.log("score", self.scores[self.current_epoch])

    callback = ModelCheckpoint(
        dirpath=tmp_path,
        monitor="score",
        mode="min",
        save_top_k=2,
        filename="{epoch}-{score:.1f}",
        save_last=True,
    )
    quiet(
        max_epochs=5, callbacks=[callback], num_sanity_val_steps=0, default_root_dir=tmp_path
    ).fit(Scored(), loader(), loader())
    assert ckpt_names(tmp_path) == ["epoch=1-score=0.3.ckpt", "epoch=3-score=0.1.ckpt", "last.ckpt"]
    assert callback.best_model_path.endswith("epoch=3-score=0.1.ckpt")
    assert float(callback.best_model_score) == pytest.approx(0.1)
    assert torch.load(tmp_path / "last.ckpt", weights_only=True)["epoch"] == 4


def test_monitor_missing_raises(tmp_path):
    callback = ModelCheckpoint(dirpath=tmp_path, monitor="nope")
    with pytest.raises(MisconfigurationException, match="nope"):
        quiet(max_epochs=1, callbacks=[callback], default_root_dir=tmp_path).fit(
            BoringModel(), loader(), loader()
        )


def test_save_top_k_all_and_zero(tmp_path):
    keep_all = ModelCheckpoint(dirpath=tmp_path / "all", save_top_k=-1)
    quiet(max_epochs=3, callbacks=[keep_all], default_root_dir=tmp_path).fit(
        BoringModel(), loader()
    )
    assert ckpt_names(tmp_path / "all") == [
        "epoch=0-step=5.ckpt",
        "epoch=1-step=10.ckpt",
        "epoch=2-step=15.ckpt",
    ]
    none = ModelCheckpoint(dirpath=tmp_path / "none", save_top_k=0, save_last=True)
    quiet(max_epochs=2, callbacks=[none], default_root_dir=tmp_path).fit(BoringModel(), loader())
    assert ckpt_names(tmp_path / "none") == ["last.ckpt"]


def test_name_collisions_get_version_suffix(tmp_path):
    for _ in range(3):
        callback = ModelCheckpoint(dirpath=tmp_path)
        quiet(max_epochs=1, callbacks=[callback], default_root_dir=tmp_path).fit(
            BoringModel(), loader()
        )
    assert ckpt_names(tmp_path) == [
        "epoch=0-step=5-v1.ckpt",
        "epoch=0-step=5-v2.ckpt",
        "epoch=0-step=5.ckpt",
    ]


def test_every_n_train_steps(tmp_path):
    callback = ModelCheckpoint(dirpath=tmp_path, every_n_train_steps=4, save_top_k=-1)
    quiet(max_epochs=2, callbacks=[callback], default_root_dir=tmp_path).fit(
        BoringModel(), loader()
    )
    assert ckpt_names(tmp_path) == ["epoch=0-step=4.ckpt", "epoch=1-step=8.ckpt"]


def test_no_checkpoint_during_sanity_check_or_fast_dev_run(tmp_path):
    quiet(fast_dev_run=True, default_root_dir=tmp_path).fit(BoringModel(), loader(), loader())
    assert not list(tmp_path.rglob("*.ckpt"))


def test_every_n_epochs(tmp_path):
    callback = ModelCheckpoint(dirpath=tmp_path, every_n_epochs=2, save_top_k=-1)
    quiet(max_epochs=5, callbacks=[callback], default_root_dir=tmp_path).fit(
        BoringModel(), loader()
    )
    assert ckpt_names(tmp_path) == ["epoch=1-step=10.ckpt", "epoch=3-step=20.ckpt"]


# -- resume -----------------------------------------------------------------------------------


def test_missing_checkpoint_raises(tmp_path):
    missing = tmp_path / "nope.ckpt"
    with pytest.raises(
        FileNotFoundError, match=f"Checkpoint at {missing} not found. Aborting training."
    ):
        quiet(max_epochs=1, resume_from_checkpoint=str(missing), default_root_dir=tmp_path).fit(
            BoringModel(), loader()
        )


def test_resume_continues_epochs_and_steps(tmp_path):
    trainer = quiet(max_epochs=2, default_root_dir=tmp_path)
    trainer.fit(BoringModel(), loader(n=16))
    assert (trainer.current_epoch, trainer.global_step) == (2, 4)
    path = trainer.checkpoint_callback.best_model_path
    starts = []

    class Recording(BoringModel):
        def on_train_start(self):
            starts.append((self.current_epoch, self.global_step))

    resumed = quiet(max_epochs=4, default_root_dir=tmp_path)
    resumed.fit(Recording(), loader(n=16), ckpt_path=path)
    assert starts == [(2, 4)] and (resumed.current_epoch, resumed.global_step) == (4, 8)
    beyond = quiet(max_epochs=1, default_root_dir=tmp_path)
    with pytest.raises(MisconfigurationException, match="max_epochs"):
        beyond.fit(BoringModel(), loader(n=16), ckpt_path=path)


def test_resume_restores_hooks_and_callback_state(tmp_path):
    loaded = []

    class Hooked(BoringModel):
        def on_save_checkpoint(self, checkpoint):
            checkpoint["extra"] = 42

        def on_load_checkpoint(self, checkpoint):
            loaded.append(checkpoint["extra"])

    first = ModelCheckpoint(dirpath=tmp_path, monitor="val_loss", save_top_k=2)
    quiet(max_epochs=2, callbacks=[first], default_root_dir=tmp_path).fit(
        Hooked(), loader(), loader()
    )
    second = ModelCheckpoint(dirpath=tmp_path, monitor="val_loss", save_top_k=2)
    quiet(max_epochs=2, callbacks=[second], default_root_dir=tmp_path).fit(
        Hooked(), loader(), loader(), ckpt_path=first.best_model_path
    )
    assert loaded == [42]
    # scores are tensors, as in Lightning's callback state
    assert {k: float(v) for k, v in second.best_k_models.items()} == pytest.approx(
        {k: float(v) for k, v in first.best_k_models.items()}
    )


def _run(
    tmp_path,
    tag,
    max_epochs,
    ckpt_path=None,
    callbacks=(),
    crash_at_step=None,
    conveyor_loader=False,
):
    conveyor.seed_everything(123)

    class Dropout(BoringModel):
        def __init__(self):
            super().__init__(lr=0.05)
            self.dropout = torch.nn.Dropout(0.3)

        def forward(self, x):
            return self.layer(self.dropout(x))

        def configure_optimizers(self):
            opt = torch.optim.Adam(self.parameters(), lr=0.05)
            return [opt], [
                {"scheduler": torch.optim.lr_scheduler.StepLR(opt, 3, 0.5), "interval": "step"}
            ]

        def on_train_batch_end(self, outputs, batch, batch_idx, unused=0):
            if crash_at_step is not None and self.global_step == crash_at_step:
                raise KeyboardInterrupt("simulated crash")

    model = Dropout()
    data = make_data(36)
    if conveyor_loader:
        train = conveyor.DataLoader(data, batch_size=8, shuffle=True, seed=5)
    else:
        train = DataLoader(data, batch_size=8, shuffle=True)
    trainer = quiet(
        max_epochs=max_epochs,
        callbacks=list(callbacks),
        default_root_dir=tmp_path / tag,
        num_sanity_val_steps=0,
    )
    try:
        trainer.fit(model, train, loader(n=16), ckpt_path=ckpt_path)
    except KeyboardInterrupt:
        pass
    return model, trainer


@pytest.mark.parametrize("conveyor_loader", [False, True])
def test_interrupted_then_resumed_equals_uninterrupted(tmp_path, conveyor_loader):
    reference, ref_trainer = _run(tmp_path, "ref", 4, conveyor_loader=conveyor_loader)
    # checkpoint mid-epoch (every 3 steps; 5 batches per epoch) and crash at step 13 (epoch 2)
    saver = ModelCheckpoint(dirpath=tmp_path / "mid", every_n_train_steps=3, save_top_k=-1)
    _, crashed = _run(
        tmp_path, "crash", 4, callbacks=[saver], crash_at_step=13, conveyor_loader=conveyor_loader
    )
    last = tmp_path / "mid" / "epoch=2-step=12.ckpt"
    assert last.is_file(), ckpt_names(tmp_path / "mid")
    resumed, trainer = _run(
        tmp_path, "resumed", 4, ckpt_path=str(last), conveyor_loader=conveyor_loader
    )
    assert trainer.global_step == ref_trainer.global_step == 20
    for a, b in zip(reference.state_dict().values(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    # and from an epoch-end checkpoint
    epoch_end = ModelCheckpoint(dirpath=tmp_path / "end", save_top_k=-1)
    _run(tmp_path, "partial", 2, callbacks=[epoch_end], conveyor_loader=conveyor_loader)
    resumed2, _ = _run(
        tmp_path,
        "resumed2",
        4,
        ckpt_path=str(tmp_path / "end" / "epoch=1-step=10.ckpt"),
        conveyor_loader=conveyor_loader,
    )
    for a, b in zip(reference.state_dict().values(), resumed2.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_resume_from_url(tmp_path, monkeypatch):
    trainer = quiet(max_epochs=1, default_root_dir=tmp_path / "a")
    trainer.fit(BoringModel(), loader())
    served = tmp_path / "served"
    served.mkdir()
    (served / "model.ckpt").write_bytes(
        Path(trainer.checkpoint_callback.best_model_path).read_bytes()
    )
    monkeypatch.setenv("CONVEYOR_CACHE", str(tmp_path / "cache"))
    handler = lambda *a, **k: _QuietHandler(*a, directory=str(served), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/model.ckpt"
        resumed = quiet(max_epochs=2, resume_from_checkpoint=url, default_root_dir=tmp_path / "b")
        resumed.fit(BoringModel(), loader())
        assert resumed.global_step == 10
        cached = list((tmp_path / "cache" / "checkpoints").glob("*model.ckpt"))
        assert len(cached) == 1
        (served / "model.ckpt").unlink()  # the second use comes from the cache
        assert load_checkpoint(url)["global_step"] == 5
        with pytest.raises(Exception):  # noqa: B017 - urllib's HTTPError or OSError
            load_checkpoint(f"http://127.0.0.1:{server.server_address[1]}/missing.ckpt")
    finally:
        server.shutdown()


def test_url_checkpoint_refuses_pickled_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "payload": Evil()}, path)
    with pytest.raises(RuntimeError, match="could not be loaded"):
        load_checkpoint(path)


def test_truncated_checkpoint_is_rejected(tmp_path):
    path = tmp_path / "good.ckpt"
    atomic_save({"state_dict": {"w": torch.ones(1000)}, "epoch": 0}, path)
    data = path.read_bytes()
    (tmp_path / "cut.ckpt").write_bytes(data[: len(data) // 2])
    with pytest.raises(RuntimeError, match="cut.ckpt"):
        load_checkpoint(tmp_path / "cut.ckpt")


_KILL_SCRIPT = textwrap.dedent("""
    import os, sys, torch
    from conveyor.training.checkpoint_io import atomic_save
    path = sys.argv[1]
    atomic_save({"state_dict": {"w": torch.zeros(10)}, "epoch": 0}, path)   # a first, complete save
    print("ready", flush=True)
    big = {"state_dict": {f"w{i}": torch.randn(1_000_000) for i in range(64)}, "epoch": 1}
    while True:
        atomic_save(big, path)
""")


def test_killed_during_save_leaves_no_truncated_checkpoint(tmp_path):
    """SIGKILL a process while it writes 256 MB checkpoints: the file at the final name is
    always a complete checkpoint (the old or the new one), never a truncated one."""
    path = tmp_path / "model.ckpt"
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(
            [str(Path(conveyor.__file__).parents[1]), os.environ.get("PYTHONPATH", "")]
        ),
    )
    for _attempt in range(3):
        child = subprocess.Popen(
            [sys.executable, "-c", _KILL_SCRIPT, str(path)], stdout=subprocess.PIPE, env=env
        )
        assert child.stdout.readline().strip() == b"ready"
        # wait until a temporary file is being written, then kill mid-write
        for _ in range(2000):
            temporaries = list(tmp_path.glob(".model.ckpt.*.tmp"))
            if temporaries and temporaries[0].stat().st_size > 0:
                break
            threading.Event().wait(0.005)
        child.send_signal(signal.SIGKILL)
        child.wait()
        checkpoint = torch.load(path, weights_only=True)  # complete: loads without error
        assert checkpoint["epoch"] in (0, 1)
        if checkpoint["epoch"] == 1:
            assert len(checkpoint["state_dict"]) == 64
        assert [p for p in tmp_path.glob("*.ckpt")] == [
            path
        ]  # leftovers are hidden .tmp files only


# -- Lightning 1.6 ModelCheckpoint semantics ---------------------------------------------------


def _lightning_state_key(monitor, save_on_train_epoch_end):
    return (
        f"ModelCheckpoint{{'monitor': {monitor!r}, 'mode': 'min', 'every_n_train_steps': 0, "
        f"'every_n_epochs': 1, 'train_time_interval': None, "
        f"'save_on_train_epoch_end': {save_on_train_epoch_end}}}"
    )


@pytest.mark.parametrize("every_n_epochs", [0, 5])
def test_save_last_ignores_every_n_epochs(tmp_path, every_n_epochs):
    callback = ModelCheckpoint(
        dirpath=tmp_path, every_n_epochs=every_n_epochs, save_last=True, save_top_k=0
    )
    written = []
    original = Trainer.save_checkpoint

    def spy(self, filepath, weights_only=False):
        written.append(Path(filepath).name)
        original(self, filepath, weights_only)

    trainer = quiet(max_epochs=2, callbacks=[callback], logger=False, limit_val_batches=0)
    trainer.save_checkpoint = spy.__get__(trainer)
    trainer.fit(BoringModel(), loader())
    assert written == ["last.ckpt", "last.ckpt"]  # one per epoch end, top-k never
    assert ckpt_names(tmp_path) == ["last.ckpt"]


def test_versions_avoid_existing_files_only(tmp_path):
    """A rerun in the same directory, by a new or the same Trainer, never overwrites a file:
    names that exist get -v<STARTING_VERSION>, -v<STARTING_VERSION + 1>..."""
    callback = ModelCheckpoint(dirpath=tmp_path, save_top_k=-1, monitor="epoch", filename="run")
    callback.STARTING_VERSION = 9
    trainer = quiet(max_epochs=2, callbacks=[callback], logger=False, limit_val_batches=0)
    trainer.fit(BoringModel(), loader())
    assert ckpt_names(tmp_path) == ["run-v9.ckpt", "run.ckpt"]
    assert {Path(p).name for p in callback.best_k_models} == {"run.ckpt", "run-v9.ckpt"}


def test_missing_monitor_warns_until_validation_ran(tmp_path):
    # no validation at all: the metric could still appear, so only a warning
    callback = ModelCheckpoint(dirpath=tmp_path, monitor="never_logged")
    with pytest.warns(UserWarning, match="could not find the monitored key"):
        quiet(max_epochs=1, callbacks=[callback], logger=False, limit_val_batches=0).fit(
            BoringModel(), loader()
        )
    # once validation ran the metric should exist: a hard error
    callback = ModelCheckpoint(dirpath=tmp_path / "b", monitor="never_logged")
    with pytest.raises(MisconfigurationException, match="could not find the monitored key"):
        quiet(max_epochs=1, callbacks=[callback], logger=False).fit(
            BoringModel(), loader(), loader()
        )


def test_nothing_saved_before_the_first_step(tmp_path):
    callback = ModelCheckpoint(dirpath=tmp_path, save_top_k=0, save_last=False, monitor="x")
    assert callback._last_global_step_saved == 0

    class NoTrainer:  # neither method may touch the trainer when nothing is to be saved
        pass

    callback._save_topk_checkpoint(NoTrainer(), {"x": 1.0})
    callback._save_last_checkpoint(NoTrainer(), {"x": 1.0})
    assert callback._last_global_step_saved == 0 and not list(tmp_path.iterdir())
    # a fit whose only step is skipped... saves nothing at step 0 either
    callback = ModelCheckpoint(dirpath=tmp_path, every_n_train_steps=1)

    class SkipAll(BoringModel):
        def training_step(self, batch, batch_idx):
            return None  # no optimizer step: global_step stays 0

    quiet(max_epochs=1, callbacks=[callback], logger=False, limit_val_batches=0).fit(
        SkipAll(), loader()
    )
    assert not list(tmp_path.iterdir())


def test_format_checkpoint_name_rules(tmp_path):
    fmt = ModelCheckpoint._format_checkpoint_name
    assert fmt("", {"epoch": 3, "step": 2}) == "epoch=3-step=2"
    assert fmt(None, {"epoch": 3, "step": 2}, prefix="test") == "test-epoch=3-step=2"
    assert fmt("ckpt", {}, prefix="test") == "test-ckpt"
    assert fmt("{epoch:03d}-{acc}", {"epoch": 3, "acc": 0.03}) == "epoch=003-acc=0.03"
    assert fmt("{missing:d}", {}) == "missing=0"
    assert fmt("{step}", {"step": torch.tensor(7)}) == "step=7"
    assert (
        fmt("mAP@0.50={val/mAP@0.50:.4f}", {"val/mAP@0.50": 0.2}, auto_insert_metric_name=False)
        == "mAP@0.50=0.2000"
    )
    # "/" in a metric name makes a subdirectory of dirpath, as in Lightning
    callback = ModelCheckpoint(dirpath=tmp_path, filename="{epoch}_{val/loss:.5f}")
    assert callback.format_checkpoint_name({"epoch": 4, "val/loss": 0.03}) == str(
        tmp_path / "epoch=4_val" / "loss=0.03000.ckpt"
    )
    assert ModelCheckpoint(dirpath=tmp_path, filename="n").format_checkpoint_name({}, ver=3) == str(
        tmp_path / "n-v3.ckpt"
    )


def test_slash_metric_checkpoints_are_rotated_in_their_subdirectory(tmp_path):
    class SlashModel(BoringModel):
        def validation_step(self, batch, batch_idx):
            x, y = batch
            self.log("val/loss", torch.nn.functional.mse_loss(self(x), y))

    callback = ModelCheckpoint(dirpath=tmp_path, monitor="val/loss", filename="{epoch}-{val/loss}")
    quiet(max_epochs=3, callbacks=[callback], logger=False).fit(SlashModel(), loader(), loader())
    kept = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.ckpt"))
    assert len(kept) == 1 and kept[0].parts[0].startswith("epoch=")  # the others were removed
    assert Path(callback.best_model_path).is_file()


def test_duplicate_last_configuration_is_reported(tmp_path, caplog):
    import logging

    with caplog.at_level(logging.INFO, logger="conveyor"):
        ModelCheckpoint(dirpath=tmp_path, monitor=None, save_top_k=-1, save_last=True)
    assert "will duplicate the last checkpoint saved" in caplog.text


def test_mode_error_names_the_choices():
    with pytest.raises(MisconfigurationException, match="`mode` can be min, max but got avg"):
        ModelCheckpoint(mode="avg")


def test_callback_state_matches_lightning(tmp_path):
    """The state is stored under Lightning's key with Lightning's fields (scores as tensors), so
    a Lightning 1.6 checkpoint's callback state restores, and a changed dirpath keeps only
    best_model_path (with a warning)."""
    callback = ModelCheckpoint(dirpath=tmp_path, monitor="val_loss", save_top_k=2)
    trainer = quiet(max_epochs=2, callbacks=[callback], default_root_dir=tmp_path)
    trainer.fit(BoringModel(), loader(), loader())
    assert callback.state_key == _lightning_state_key("val_loss", True)
    state = load_checkpoint(callback.best_model_path)["callbacks"][callback.state_key]
    assert set(state) == {
        "monitor", "best_model_score", "best_model_path", "current_score", "dirpath",
        "best_k_models", "kth_best_model_path", "kth_value", "last_model_path",
    }  # fmt: skip
    assert all(isinstance(v, torch.Tensor) for v in state["best_k_models"].values())
    restored = ModelCheckpoint(dirpath=tmp_path, monitor="val_loss", save_top_k=2)
    restored.load_state_dict(state)
    assert restored.best_model_path == state["best_model_path"]
    assert restored.best_k_models.keys() == state["best_k_models"].keys()
    elsewhere = ModelCheckpoint(dirpath=tmp_path / "other", monitor="val_loss")
    with pytest.warns(UserWarning, match="The dirpath has changed"):
        elsewhere.load_state_dict(state)
    assert elsewhere.best_model_path == state["best_model_path"]
    assert elsewhere.best_k_models == {} and elsewhere.best_model_score is None


def test_load_from_checkpoint_rebuilds_the_module(tmp_path):
    callback = ModelCheckpoint(dirpath=tmp_path)
    model = BoringModel(lr=0.01)
    quiet(max_epochs=1, callbacks=[callback], logger=False).fit(model, loader())
    loaded = BoringModel.load_from_checkpoint(callback.best_model_path)
    assert loaded.hparams.lr == 0.01  # constructor got the saved hyperparameters
    for a, b in zip(model.parameters(), loaded.parameters()):
        assert torch.equal(a.detach().cpu(), b)
    assert BoringModel.load_from_checkpoint(callback.best_model_path, lr=0.5).hparams.lr == 0.5

    class Wider(BoringModel):
        def __init__(self, lr: float = 0.05):
            super().__init__(lr)
            self.extra = torch.nn.Linear(2, 2)

    with pytest.raises(RuntimeError, match="Missing key"):
        Wider.load_from_checkpoint(callback.best_model_path)
    with pytest.warns(UserWarning, match="not in the checkpoint"):
        Wider.load_from_checkpoint(callback.best_model_path, strict=False)
    with pytest.raises(FileNotFoundError):
        BoringModel.load_from_checkpoint(tmp_path / "absent.ckpt")


def test_second_fit_on_one_trainer_continues(tmp_path):
    """As in Lightning 1.6 the loop's progress persists: fit() again after raising max_epochs
    trains only the new epochs, and its checkpoints get new versions, never overwriting."""
    callback = ModelCheckpoint(dirpath=tmp_path, save_top_k=-1, monitor="epoch", filename="run")
    trainer = quiet(max_epochs=2, callbacks=[callback], logger=False, limit_val_batches=0)
    trainer.fit(BoringModel(), loader())
    assert (trainer.current_epoch, trainer.global_step) == (2, 10)
    trainer.fit(BoringModel(), loader())  # already at max_epochs: nothing to do
    assert (trainer.current_epoch, trainer.global_step) == (2, 10)
    trainer.max_epochs = 4
    trainer.fit(BoringModel(), loader())
    assert (trainer.current_epoch, trainer.global_step) == (4, 20)
    assert ckpt_names(tmp_path) == ["run-v1.ckpt", "run-v2.ckpt", "run-v3.ckpt", "run.ckpt"]
    epochs = sorted(load_checkpoint(tmp_path / name)["epoch"] for name in ckpt_names(tmp_path))
    assert epochs == [0, 1, 2, 3]
