"""What ``self.log`` records: per-step values, epoch aggregates, and the three views the
Trainer exposes (``callback_metrics``, ``logged_metrics``, ``progress_bar_metrics``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional, cast

import torch

_TRAINING_HOOKS = (
    "training_step",
    "on_train_batch_start",
    "on_train_batch_end",
    "on_before_backward",
    "on_after_backward",
    "on_before_optimizer_step",
    "on_before_zero_grad",
    "backward",
)


@dataclass
class _Metric:
    on_step: bool
    on_epoch: bool
    prog_bar: bool
    logger: bool
    reduce_fx: str
    sync_dist: bool
    step_value: Optional[float] = None
    total: float = 0.0
    weight: float = 0.0
    extreme: Optional[float] = None
    fresh_step: bool = False

    def update(self, value: float, weight: float) -> None:
        self.step_value = value
        self.fresh_step = True
        if self.reduce_fx == "mean":
            self.total += value * weight
            self.weight += weight
        elif self.reduce_fx == "sum":
            self.total += value
            self.weight = 1.0
        else:
            better = max if self.reduce_fx == "max" else min
            self.extreme = value if self.extreme is None else better(self.extreme, value)

    def epoch_value(self) -> Optional[float]:
        if self.reduce_fx in ("mean", "sum"):
            if self.weight == 0:
                return None
            return self.total / self.weight if self.reduce_fx == "mean" else self.total
        return self.extreme


@dataclass
class ResultCollection:
    """Metrics logged during one stage ("train", "validate", "test")."""

    reduce: Optional[Callable[[torch.Tensor, str], torch.Tensor]] = None  # cross-process reduction
    current_batch_size: int = 1
    metrics: Dict[str, _Metric] = field(default_factory=dict)

    def reset(self) -> None:
        self.metrics.clear()

    def log(
        self,
        fx: str,
        name: str,
        value: Any,
        *,
        prog_bar: bool,
        logger: bool,
        on_step: Optional[bool],
        on_epoch: Optional[bool],
        reduce_fx: str,
        sync_dist: bool,
        batch_size: Optional[int],
        dataloader_idx: Optional[int],
    ) -> None:
        training = fx in _TRAINING_HOOKS
        on_step = training if on_step is None else on_step
        on_epoch = (not training) if on_epoch is None else on_epoch
        if dataloader_idx is not None and self._multiple_loaders:
            name = f"{name}/dataloader_idx_{dataloader_idx}"
        value = (
            float(value.detach().float().item())
            if isinstance(value, torch.Tensor)
            else float(value)
        )
        if sync_dist and on_step and self.reduce is not None:
            value = float(self.reduce(torch.tensor(value, dtype=torch.float64), reduce_fx).item())
        metric = self.metrics.get(name)
        if metric is None:
            metric = self.metrics[name] = _Metric(
                on_step, on_epoch, prog_bar, logger, reduce_fx, sync_dist
            )
        metric.update(
            value, float(batch_size if batch_size is not None else self.current_batch_size)
        )

    _multiple_loaders: bool = False

    # -- views ----------------------------------------------------------------------------
    def step_metrics(self, *, for_logger: bool) -> Dict[str, float]:
        """Values logged with on_step=True since the last call to :meth:`consume_step`."""
        out = {}
        for name, metric in self.metrics.items():
            if not metric.on_step or not metric.fresh_step:
                continue
            if for_logger and not metric.logger:
                continue
            key = f"{name}_step" if metric.on_epoch else name
            out[key] = cast(float, metric.step_value)  # set whenever fresh_step is
        return out

    def progress_bar_step_metrics(self) -> Dict[str, float]:
        return {
            (f"{n}_step" if m.on_epoch else n): m.step_value
            for n, m in self.metrics.items()
            if m.prog_bar and m.on_step and m.step_value is not None
        }

    def consume_step(self) -> None:
        for metric in self.metrics.values():
            metric.fresh_step = False

    def epoch_metrics(self) -> Dict[str, Dict[str, Any]]:
        """``{key: {"value", "logger", "prog_bar"}}`` for every on_epoch metric, reduced across
        processes."""
        out = {}
        for name, metric in self.metrics.items():
            if not metric.on_epoch:
                continue
            value = metric.epoch_value()
            if value is None:
                continue
            if self.reduce is not None:
                op = metric.reduce_fx if metric.reduce_fx in ("max", "min", "sum") else "mean"
                value = float(self.reduce(torch.tensor(value, dtype=torch.float64), op).item())
            key = f"{name}_epoch" if metric.on_step else name
            out[key] = {"value": value, "logger": metric.logger, "prog_bar": metric.prog_bar}
        return out
