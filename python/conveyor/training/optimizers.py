"""Turning every return form of ``configure_optimizers`` into optimizers + scheduler configs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Optional, Tuple

import torch

from conveyor.training.errors import MisconfigurationException

_SCHEDULER_KEYS = {
    "scheduler",
    "interval",
    "frequency",
    "monitor",
    "strict",
    "name",
    "reduce_on_plateau",
    "opt_idx",
}


@dataclass
class LRSchedulerConfig:
    scheduler: Any
    interval: str = "epoch"
    frequency: int = 1
    monitor: Optional[str] = None
    strict: bool = True
    name: Optional[str] = None
    reduce_on_plateau: bool = False
    opt_idx: Optional[int] = None


def _is_optimizer(value: Any) -> bool:
    return isinstance(value, torch.optim.Optimizer)


def _is_scheduler(value: Any) -> bool:
    return hasattr(value, "step") and hasattr(value, "state_dict") and not _is_optimizer(value)


def init_optimizers_and_schedulers(
    module,
) -> Tuple[List[torch.optim.Optimizer], List[LRSchedulerConfig], List[int]]:
    """Call ``module.configure_optimizers()`` and normalize its result.

    Returns:
        ``(optimizers, scheduler_configs, optimizer_frequencies)``.

    Raises:
        MisconfigurationException: an unknown return form, a scheduler dict without
            ``scheduler``, a bad ``interval``, or ReduceLROnPlateau without ``monitor``.
    """
    returned = module.configure_optimizers()
    if returned is None:
        raise MisconfigurationException(
            "`configure_optimizers` returned None: return at least one optimizer"
        )
    optimizers: List[torch.optim.Optimizer] = []
    schedulers: List[Any] = []
    frequencies: List[int] = []
    monitor = None
    if _is_optimizer(returned):
        optimizers = [returned]
    elif isinstance(returned, dict):
        _check_optimizer_dict(returned)
        optimizers = [returned["optimizer"]]
        monitor = returned.get("monitor")
        if returned.get("lr_scheduler") is not None:
            schedulers = [returned["lr_scheduler"]]
    elif (
        isinstance(returned, (list, tuple))
        and len(returned) == 2
        and isinstance(returned[0], (list, tuple))
    ):
        optimizers = list(returned[0])
        second = returned[1]
        schedulers = list(second) if isinstance(second, (list, tuple)) else [second]
    elif (
        isinstance(returned, (list, tuple))
        and returned
        and all(isinstance(d, dict) for d in returned)
    ):
        for index, item in enumerate(returned):
            _check_optimizer_dict(item)
            optimizers.append(item["optimizer"])
            if item.get("lr_scheduler") is not None:
                config = item["lr_scheduler"]
                config = dict(config) if isinstance(config, dict) else {"scheduler": config}
                config.setdefault("opt_idx", index)
                if item.get("monitor") is not None:
                    config.setdefault("monitor", item["monitor"])
                schedulers.append(config)
            if item.get("frequency") is not None:
                frequencies.append(int(item["frequency"]))
    elif (
        isinstance(returned, (list, tuple)) and returned and all(_is_optimizer(o) for o in returned)
    ):
        optimizers = list(returned)
    else:
        raise MisconfigurationException(
            "Unknown configuration for model optimizers. Output from `model.configure_optimizers()` should be: "
            "a single optimizer, a list or tuple of optimizers, two lists (optimizers, schedulers), "
            "a dict with 'optimizer' and optional 'lr_scheduler'/'monitor', or a list of such dicts; "
            f"got {type(returned).__name__}"
        )
    for optimizer in optimizers:
        if not _is_optimizer(optimizer):
            raise MisconfigurationException(
                f"configure_optimizers returned {type(optimizer).__name__}, not a torch.optim.Optimizer"
            )
    configs = [_scheduler_config(item, monitor) for item in schedulers]
    for config in configs:
        if config.opt_idx is None:
            config.opt_idx = _owning_optimizer(config.scheduler, optimizers)
    return optimizers, configs, frequencies


def _check_optimizer_dict(item: dict) -> None:
    if "optimizer" not in item:
        raise MisconfigurationException(
            f"configure_optimizers returned a dict without 'optimizer': keys {sorted(item)}"
        )
    unknown = set(item) - {"optimizer", "lr_scheduler", "monitor", "frequency"}
    if unknown:
        raise MisconfigurationException(
            f"configure_optimizers returned unknown keys {sorted(unknown)}"
        )


def _scheduler_config(item: Any, monitor: Optional[str]) -> LRSchedulerConfig:
    if isinstance(item, dict):
        if "scheduler" not in item:
            raise MisconfigurationException(
                'The lr scheduler dict must have the key "scheduler" with its item being an lr scheduler'
            )
        unknown = set(item) - _SCHEDULER_KEYS
        if unknown:
            raise MisconfigurationException(
                f"Unknown keys in the lr scheduler dict: {sorted(unknown)}"
            )
        if item.get("interval", "epoch") not in ("epoch", "step"):
            raise MisconfigurationException(
                f'The "interval" key in lr scheduler dict must be "step" or "epoch" but is "{item["interval"]}"'
            )
        config = LRSchedulerConfig(**{**{"monitor": monitor}, **item})
    else:
        config = LRSchedulerConfig(scheduler=item, monitor=monitor)
    if not _is_scheduler(config.scheduler):
        raise MisconfigurationException(
            f"{type(config.scheduler).__name__} is not a learning rate scheduler"
        )
    config.reduce_on_plateau = isinstance(
        config.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau
    )
    if config.reduce_on_plateau and config.monitor is None:
        raise MisconfigurationException(
            "`configure_optimizers` must include a monitor when a `ReduceLROnPlateau` scheduler is used. "
            'For example: {"optimizer": optimizer, "lr_scheduler": scheduler, "monitor": "metric_to_track"}'
        )
    return config


def _owning_optimizer(scheduler: Any, optimizers: List[torch.optim.Optimizer]) -> int:
    owner = getattr(scheduler, "optimizer", None)
    for index, optimizer in enumerate(optimizers):
        if optimizer is owner:
            return index
    return 0
