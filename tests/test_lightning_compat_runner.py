"""The Lightning-compatibility runner (tests/lightning_compat/run_lightning_tests.py) end to end,
on a small Lightning-style test file of our own (Lightning's files are not in this repository):
the shim maps ``pytorch_lightning`` onto conveyor, ``tests.helpers`` is ours, and the counts and
causes are reported per file."""

import importlib.util
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent
spec = importlib.util.spec_from_file_location(
    "run_lightning_tests", ROOT / "lightning_compat" / "run_lightning_tests.py"
)
runner = importlib.util.module_from_spec(spec)
spec.loader.exec_module(runner)

STYLE_OF_LIGHTNING = """
import pytest
import pytorch_lightning as pl
from pytorch_lightning import Trainer
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.utilities.exceptions import MisconfigurationException
from tests.helpers import BoringModel
from tests.helpers.runif import RunIf

import conveyor


def test_names_are_conveyors():
    assert Trainer is conveyor.Trainer and pl.LightningModule is conveyor.Module
    assert issubclass(BoringModel, conveyor.Module)


def test_fit_writes_a_checkpoint(tmpdir):
    callback = ModelCheckpoint(dirpath=tmpdir)
    trainer = Trainer(max_steps=2, callbacks=[callback], logger=False, enable_progress_bar=False)
    trainer.fit(BoringModel())
    assert callback.best_model_path.endswith("epoch=0-step=2.ckpt")


def test_a_failure():
    with pytest.raises(MisconfigurationException):
        ModelCheckpoint(mode="nope")
    raise AssertionError("expected to fail")


@RunIf(min_gpus=64)
def test_skipped():
    pass
"""


def test_runner_counts_and_groups(tmp_path, monkeypatch, capsys):
    upstream = tmp_path / "upstream"
    (upstream / "tests" / "area").mkdir(parents=True)
    (upstream / "tests" / "area" / "test_style.py").write_text(textwrap.dedent(STYLE_OF_LIGHTNING))
    monkeypatch.setattr(runner, "UPSTREAM", upstream)
    assert runner.main([]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("tests/area/test_style.py"))
    assert row.split()[1:] == ["2", "1", "1"]  # passed, failed, skipped
    assert "AssertionError: expected to fail" in out
    assert "needs 64 GPU(s)" in out


def test_runner_skips_without_lightnings_files(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(runner, "UPSTREAM", tmp_path / "absent")
    assert runner.main([]) == 0
    assert "skipping" in capsys.readouterr().out
