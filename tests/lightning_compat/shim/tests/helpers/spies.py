"""Observers that stand in for Lightning-private spies in Lightning's tests.

``scheduler_monitor_calls`` replaces the tests' ``mock_training_epoch_loop``, which wraps
Lightning's private ``trainer.fit_loop.epoch_loop._get_monitor_value``: it records, per epoch,
the monitored value each ``ReduceLROnPlateau`` scheduler is stepped with, which is what those
tests assert.
"""

from __future__ import annotations

import weakref
from typing import Any, Dict

from torch.optim.lr_scheduler import ReduceLROnPlateau

from conveyor.callbacks import Callback

# scheduler -> (calls, monitored key, trainer); kept outside the scheduler so that its
# state_dict (its __dict__) and hence the checkpoints stay as they would be without the spy
_SPIED: "weakref.WeakKeyDictionary[Any, tuple]" = weakref.WeakKeyDictionary()


class _SpiedPlateau(ReduceLROnPlateau):
    def step(self, metrics, *args, **kwargs):
        calls, key, trainer = _SPIED[self]
        calls[trainer.current_epoch] = {key: metrics}
        return super().step(metrics, *args, **kwargs)


def scheduler_monitor_calls(trainer) -> Dict[int, Dict[str, Any]]:
    calls: Dict[int, Dict[str, Any]] = {}

    class _SchedulerSpy(Callback):
        def on_train_start(self, trainer, pl_module) -> None:
            for config in trainer.lr_scheduler_configs:
                if type(config.scheduler) is ReduceLROnPlateau:
                    _SPIED[config.scheduler] = (calls, config.monitor, trainer)
                    config.scheduler.__class__ = _SpiedPlateau

    trainer.callbacks.append(_SchedulerSpy())
    return calls
