"""``trainer.state``: what the Trainer is doing and how its last run ended (Lightning 1.6's
``TrainerState``, ``TrainerFn`` and ``TrainerStatus``; the enums compare equal to their strings)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable, Optional


class TrainerFn(str, Enum):
    """The entry point being run: ``trainer.fit`` / ``validate`` / ``test`` / ``predict``."""

    FITTING = "fit"
    VALIDATING = "validate"
    TESTING = "test"
    PREDICTING = "predict"


class TrainerStatus(str, Enum):
    INITIALIZING = "initializing"  # constructed, nothing run yet
    RUNNING = "running"
    FINISHED = "finished"  # the last run returned
    INTERRUPTED = "interrupted"  # the last run raised (a rank failure, Ctrl-C, an error)


@dataclass
class TrainerState:
    fn: Optional[TrainerFn] = None
    status: TrainerStatus = TrainerStatus.INITIALIZING

    @property
    def finished(self) -> bool:
        return self.status == TrainerStatus.FINISHED

    @property
    def stopped(self) -> bool:
        return self.status in (TrainerStatus.FINISHED, TrainerStatus.INTERRUPTED)


def track_state(run: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap ``Trainer._run(model, stage, ...)`` so that ``trainer.state`` follows the run."""

    @functools.wraps(run)
    def tracked(self: Any, model: Any, stage: str, *args: Any, **kwargs: Any) -> Any:
        self.state = TrainerState(fn=TrainerFn(stage), status=TrainerStatus.RUNNING)
        try:
            result = run(self, model, stage, *args, **kwargs)
        except BaseException:
            self.state.status = TrainerStatus.INTERRUPTED
            raise
        self.state.status = TrainerStatus.FINISHED
        return result

    return tracked
