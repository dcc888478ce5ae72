"""``trainer.state`` follows each run as Lightning 1.6's TrainerState does."""

import pytest
from test_trainer import BoringModel, loader, quiet

from conveyor.training.states import TrainerFn, TrainerStatus


def test_state_follows_the_runs(tmp_path):
    trainer = quiet(max_epochs=1, logger=False, enable_checkpointing=False)
    assert trainer.state.status == "initializing" and trainer.state.fn is None
    assert not trainer.state.finished and not trainer.state.stopped
    seen = []

    class Spy(BoringModel):
        def on_train_start(self):
            seen.append((self.trainer.state.fn, self.trainer.state.status))

    model = Spy()
    trainer.fit(model, loader())
    assert seen == [(TrainerFn.FITTING, TrainerStatus.RUNNING)]
    assert trainer.state.fn == "fit" and trainer.state.finished and trainer.state.stopped
    trainer.validate(model, loader())
    assert trainer.state.fn == TrainerFn.VALIDATING and trainer.state.finished


def test_a_failed_run_is_interrupted(tmp_path):
    class Failing(BoringModel):
        def training_step(self, batch, batch_idx):
            raise ValueError("boom")

    trainer = quiet(max_epochs=1, logger=False, enable_checkpointing=False)
    with pytest.raises(ValueError, match="boom"):
        trainer.fit(Failing(), loader())
    assert trainer.state.status == TrainerStatus.INTERRUPTED
    assert trainer.state.stopped and not trainer.state.finished
