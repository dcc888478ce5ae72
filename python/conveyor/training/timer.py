"""``Timer``: stop training after a wall-clock budget (``Trainer(max_time=...)``), as Lightning
1.6's Timer callback does. The budget is checked after every batch and every epoch; the stop
honours ``min_epochs``/``min_steps`` like any other request to stop."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from typing import Any, Dict, Optional, Union

from conveyor.training.errors import MisconfigurationException
from conveyor.training.hooks import Callback


def parse_duration(duration: Union[str, timedelta, Dict[str, int], None]) -> Optional[timedelta]:
    """``"DD:HH:MM:SS"``, a ``timedelta`` or a dict of ``timedelta`` keywords, as a timedelta."""
    if duration is None or isinstance(duration, timedelta):
        return duration
    if isinstance(duration, dict):
        return timedelta(**duration)
    if isinstance(duration, str) and re.fullmatch(r"\d+:\d\d:\d\d:\d\d", duration.strip()):
        days, hours, minutes, seconds = (int(part) for part in duration.strip().split(":"))
        return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    raise MisconfigurationException(
        f"`Timer(duration={duration!r})` is not a valid duration. "
        "Expected a string in the format DD:HH:MM:SS, a datetime.timedelta or a dict."
    )


class Timer(Callback):
    """Stop ``fit`` once ``duration`` of training time has passed.

    Args:
        duration: ``"DD:HH:MM:SS"``, a ``datetime.timedelta`` or a dict such as
            ``{"hours": 1}``; None: no limit (the time is still measured).
        interval: ``"step"`` (check after every batch) or ``"epoch"``.
    """

    def __init__(self, duration=None, interval: str = "step") -> None:
        if interval not in ("step", "epoch"):
            raise MisconfigurationException(
                f"Unsupported parameter value `Timer(interval={interval})`. "
                "Possible values are: step, epoch."
            )
        self._duration = parse_duration(duration)
        self._interval = interval
        self._start: Optional[float] = None
        self._offset = 0.0  # training time of the run this one resumes

    def time_elapsed(self) -> float:
        """Seconds of training so far (including a resumed run's)."""
        running = time.monotonic() - self._start if self._start is not None else 0.0
        return self._offset + running

    def time_remaining(self) -> Optional[float]:
        if self._duration is None:
            return None
        return self._duration.total_seconds() - self.time_elapsed()

    def on_train_start(self, trainer, pl_module) -> None:
        self._start = time.monotonic()

    def on_train_batch_end(self, trainer, pl_module, *args: Any) -> None:
        if self._interval == "step":
            self._check(trainer)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self._interval == "epoch":
            self._check(trainer)

    def _check(self, trainer) -> None:
        if self._duration is None:
            return
        stop = self.time_elapsed() >= self._duration.total_seconds()
        if trainer.strategy is not None:  # rank 0's clock decides, or the ranks would diverge
            stop = trainer.strategy.broadcast_object(stop)
        trainer.should_stop = trainer.should_stop or stop

    def state_dict(self) -> Dict[str, Any]:
        return {"time_elapsed": {"train": self.time_elapsed()}}

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        self._offset = float(state_dict.get("time_elapsed", {}).get("train", 0.0))
