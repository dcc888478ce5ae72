"""The tqdm progress bar: loss, throughput (images/s) and how much of each step was spent
waiting for the next batch, so an input-bound run is visible at a glance."""

from __future__ import annotations

import sys
from typing import Any, Dict, Optional

from conveyor.training.hooks import Callback


class ThroughputMeter:
    """Accumulates samples, step time and data-wait time over an epoch."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.samples = 0
        self.total_time = 0.0
        self.data_time = 0.0

    def update(self, samples: int, step_time: float, data_time: float) -> None:
        self.samples += samples
        self.total_time += step_time
        self.data_time += data_time

    @property
    def images_per_second(self) -> float:
        return self.samples / self.total_time if self.total_time > 0 else 0.0

    @property
    def data_wait_share(self) -> float:
        return self.data_time / self.total_time if self.total_time > 0 else 0.0


class ProgressBar(Callback):
    """One bar per training epoch and per evaluation run (written to stderr)."""

    def __init__(self, refresh_rate: int = 1) -> None:
        self.refresh_rate = max(1, int(refresh_rate))
        self._bar = None

    def _new_bar(self, total: Optional[int], desc: str, leave: bool):
        from tqdm.auto import tqdm

        return tqdm(
            total=total if total != float("inf") else None,
            desc=desc,
            leave=leave,
            dynamic_ncols=True,
            file=sys.stderr,
            smoothing=0,
        )

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._close()
        self._bar = self._new_bar(
            trainer.num_training_batches, f"Epoch {trainer.current_epoch}", leave=True
        )

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, unused=0) -> None:
        if self._bar is None:
            return
        if (
            batch_idx + 1
        ) % self.refresh_rate == 0 or batch_idx + 1 == trainer.num_training_batches:
            self._bar.n = batch_idx + 1
            self._bar.set_postfix(self.metrics(trainer), refresh=True)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self._bar is not None:
            self._bar.set_postfix(self.metrics(trainer), refresh=True)
        self._close()

    def on_validation_start(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        counts = (
            trainer.num_test_batches if trainer.state_stage == "test" else trainer.num_val_batches
        )
        total = sum(counts) if counts else None
        title = "Testing" if trainer.state_stage == "test" else "Validating"
        self._eval_bar = self._new_bar(total, title, leave=False)

    def on_validation_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ) -> None:
        bar = getattr(self, "_eval_bar", None)
        if bar is not None:
            bar.update(1)

    def on_validation_end(self, trainer, pl_module) -> None:
        bar = getattr(self, "_eval_bar", None)
        if bar is not None:
            bar.close()
            self._eval_bar = None

    on_test_start = on_validation_start
    on_test_batch_end = on_validation_batch_end
    on_test_end = on_validation_end

    def on_train_end(self, trainer, pl_module) -> None:
        self._close()

    @staticmethod
    def metrics(trainer) -> Dict[str, Any]:
        shown: Dict[str, Any] = {}
        loss = trainer._last_loss
        if loss is not None:
            shown["loss"] = f"{loss:.3g}"
        for key, value in trainer.progress_bar_metrics.items():
            shown[key] = f"{value:.3g}" if isinstance(value, float) else value
        meter = trainer.throughput
        if meter.total_time > 0:
            shown["img/s"] = f"{meter.images_per_second:.1f}"
            shown["data"] = f"{100 * meter.data_wait_share:.0f}%"
        if trainer.logger is not None:
            shown["v_num"] = trainer.logger.version
        return shown
