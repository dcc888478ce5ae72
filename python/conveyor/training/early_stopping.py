"""``EarlyStopping``: stop training when a monitored metric stops improving."""

from __future__ import annotations

import math
from typing import Any, Dict, Optional

from conveyor.training.errors import MisconfigurationException
from conveyor.training.hooks import Callback


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` checks.

    Args:
        monitor: the logged metric to watch.
        min_delta: the smallest change that counts as an improvement.
        patience: checks without improvement before stopping.
        mode: "min" or "max".
        strict: raise when the metric is missing.
        check_on_train_epoch_end: check after the training epoch instead of after validation.
    """

    def __init__(
        self,
        monitor: str,
        min_delta: float = 0.0,
        patience: int = 3,
        verbose: bool = False,
        mode: str = "min",
        strict: bool = True,
        check_on_train_epoch_end: Optional[bool] = None,
    ) -> None:
        if mode not in ("min", "max"):
            raise MisconfigurationException(f"`mode` can be 'min' or 'max', got {mode!r}")
        self.monitor, self.min_delta, self.patience = monitor, abs(min_delta), patience
        self.verbose, self.mode, self.strict = verbose, mode, strict
        self.check_on_train_epoch_end = check_on_train_epoch_end
        self.wait_count = 0
        self.stopped_epoch = 0
        self.best_score = math.inf if mode == "min" else -math.inf

    @property
    def state_key(self) -> str:
        return self._generate_state_key(monitor=self.monitor, mode=self.mode)

    def setup(self, trainer, pl_module, stage=None) -> None:
        if self.check_on_train_epoch_end is None:
            self.check_on_train_epoch_end = False

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self.check_on_train_epoch_end:
            self._check(trainer)

    def on_validation_end(self, trainer, pl_module) -> None:
        if (
            not self.check_on_train_epoch_end
            and not trainer.sanity_checking
            and trainer.state_stage == "fit"
        ):
            self._check(trainer)

    def _check(self, trainer) -> None:
        if trainer.fast_dev_run:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            if self.strict:
                raise RuntimeError(
                    f"Early stopping conditioned on metric `{self.monitor}` which is not available. "
                    f"Available metrics are: {sorted(trainer.callback_metrics)}"
                )
            return
        value = float(value)
        improved = (
            value < self.best_score - self.min_delta
            if self.mode == "min"
            else value > self.best_score + self.min_delta
        )
        if improved:
            self.best_score, self.wait_count = value, 0
        else:
            self.wait_count += 1
            if self.wait_count >= self.patience:
                self.stopped_epoch = trainer.current_epoch
                trainer.should_stop = True
                if self.verbose:
                    print(
                        f"Monitored metric {self.monitor} did not improve in the last {self.wait_count} records. "
                        f"Best score: {self.best_score:.3f}. Signaling Trainer to stop."
                    )

    def state_dict(self) -> Dict[str, Any]:
        return {
            "wait_count": self.wait_count,
            "stopped_epoch": self.stopped_epoch,
            "best_score": self.best_score,
            "patience": self.patience,
        }

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        self.wait_count = state_dict["wait_count"]
        self.stopped_epoch = state_dict["stopped_epoch"]
        self.best_score = state_dict["best_score"]
        self.patience = state_dict["patience"]
