"""``ModelCheckpoint``: Lightning 1.6's checkpoint callback (names, top-k, last, versions)."""

from __future__ import annotations

import math
import os
import re
import time
from datetime import timedelta
from pathlib import Path
from typing import Any, Dict, Optional

import torch

from conveyor.training.checkpoint_io import remove_checkpoint
from conveyor.training.errors import MisconfigurationException
from conveyor.training.hooks import Callback


class ModelCheckpoint(Callback):
    """Save the model periodically, keeping the best ``save_top_k`` by ``monitor``.

    Args:
        dirpath: where checkpoints go; default ``<log_dir>/checkpoints`` (no logger:
            ``<default_root_dir>/checkpoints``).
        filename: a template such as ``"{epoch}-{val_loss:.2f}"``; default ``"{epoch}-{step}"``,
            rendered ``epoch=E-step=S``. A metric missing at save time renders as 0.
        monitor: the logged metric to rank checkpoints by; None keeps the latest.
        verbose: print a line on each save.
        save_last: also write ``last.ckpt`` at each save.
        save_top_k: how many to keep (-1 all, 0 none); with ``monitor=None`` only -1, 0 or 1.
        save_weights_only: save only weights and loop state (no optimizer, schedulers, callbacks).
        mode: "min" or "max": whether a lower or higher ``monitor`` is better.
        auto_insert_metric_name: render ``{epoch}`` as ``epoch=3`` rather than ``3``.
        every_n_train_steps: save every N optimizer steps (mid-epoch checkpoints).
        train_time_interval: save at the first batch end after this much training time (a
            ``datetime.timedelta``); rank 0's clock decides for every rank.
        every_n_epochs: save every N epochs (default 1 when no step interval is set).
        save_on_train_epoch_end: save at the end of the training epoch (default: when
            validation runs every epoch) rather than at the end of validation.
    """

    CHECKPOINT_JOIN_CHAR = "-"
    CHECKPOINT_NAME_LAST = "last"
    FILE_EXTENSION = ".ckpt"
    STARTING_VERSION = 1

    def __init__(
        self,
        dirpath: Optional[str] = None,
        filename: Optional[str] = None,
        monitor: Optional[str] = None,
        verbose: bool = False,
        save_last: Optional[bool] = None,
        save_top_k: int = 1,
        save_weights_only: bool = False,
        mode: str = "min",
        auto_insert_metric_name: bool = True,
        every_n_train_steps: Optional[int] = None,
        train_time_interval: Optional[timedelta] = None,
        every_n_epochs: Optional[int] = None,
        save_on_train_epoch_end: Optional[bool] = None,
    ) -> None:
        if save_top_k < -1:
            raise MisconfigurationException(
                f"Invalid value for save_top_k={save_top_k}. Must be >= -1"
            )
        if monitor is None and save_top_k not in (-1, 0, 1):
            raise MisconfigurationException(
                f"ModelCheckpoint(save_top_k={save_top_k}, monitor=None) is not a valid configuration. "
                "No quantity for top_k to track."
            )
        if mode not in ("min", "max"):
            raise MisconfigurationException(f"`mode` can be 'min' or 'max', got {mode!r}")
        if every_n_train_steps is None and every_n_epochs is None and train_time_interval is None:
            every_n_train_steps, every_n_epochs = 0, 1  # once per epoch, Lightning's default
        every_n_train_steps = every_n_train_steps or 0
        every_n_epochs = every_n_epochs or 0
        if every_n_train_steps < 0:
            raise MisconfigurationException(
                f"Invalid value for every_n_train_steps={every_n_train_steps}. Must be >= 0"
            )
        if every_n_epochs < 0:
            raise MisconfigurationException(
                f"Invalid value for every_n_epochs={every_n_epochs}. Must be >= 0"
            )
        triggers = (every_n_train_steps >= 1) + (every_n_epochs >= 1)
        if triggers + (train_time_interval is not None) > 1:
            raise MisconfigurationException(
                f"Combination of parameters every_n_train_steps={every_n_train_steps}, "
                f"every_n_epochs={every_n_epochs} and train_time_interval={train_time_interval} "
                "should be mutually exclusive."
            )
        self.dirpath = os.path.realpath(os.path.expanduser(str(dirpath))) if dirpath else None
        self.filename = filename
        self.monitor = monitor
        self.verbose = verbose
        self.save_last = save_last
        self.save_top_k = save_top_k
        self.save_weights_only = save_weights_only
        self.mode = mode
        self.auto_insert_metric_name = auto_insert_metric_name
        self.every_n_train_steps = every_n_train_steps
        self.every_n_epochs = every_n_epochs
        self._train_time_interval = train_time_interval
        self._last_time_checked: Optional[float] = None
        self._save_on_train_epoch_end = save_on_train_epoch_end
        self.best_k_models: Dict[str, float] = {}
        self.kth_best_model_path = ""
        self.best_model_score: Optional[torch.Tensor] = None
        self.best_model_path = ""
        self.last_model_path = ""
        self.current_score: Optional[torch.Tensor] = None
        self.kth_value = torch.tensor(math.inf if mode == "min" else -math.inf)
        self._last_global_step_saved = -1

    @property
    def state_key(self) -> str:
        # Lightning 1.6's key, character for character, so that its checkpoints restore this state
        return self._generate_state_key(
            monitor=self.monitor,
            mode=self.mode,
            every_n_train_steps=self.every_n_train_steps,
            every_n_epochs=self.every_n_epochs,
            train_time_interval=self._train_time_interval,
            save_on_train_epoch_end=self._save_on_train_epoch_end,
        )

    @property
    def train_time_interval(self) -> Optional[timedelta]:
        return self._train_time_interval

    # -- lifecycle ------------------------------------------------------------------------
    def setup(self, trainer, pl_module, stage: Optional[str] = None) -> None:
        if self.dirpath is None:
            self.dirpath = trainer._default_checkpoint_dir()
        if self._save_on_train_epoch_end is None:
            self._save_on_train_epoch_end = (
                getattr(trainer, "val_check_interval", 1.0) == 1.0
                and trainer.check_val_every_n_epoch == 1
            )

    def _should_skip(self, trainer) -> bool:
        return (
            trainer.fast_dev_run
            or trainer.sanity_checking
            or trainer.state_stage != "fit"
            or self._last_global_step_saved == trainer.global_step
        )

    def on_train_start(self, trainer, pl_module) -> None:
        self._last_time_checked = time.monotonic()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, unused=0) -> None:
        if self._should_skip(trainer):
            return
        skip_batch = not (
            self.every_n_train_steps
            and trainer._stepped_this_batch
            and trainer.global_step % self.every_n_train_steps == 0
        )
        skip_time, now = True, time.monotonic()
        if self._train_time_interval is not None:
            previous = self._last_time_checked
            skip_time = (
                previous is None or now - previous < self._train_time_interval.total_seconds()
            )
            if trainer.strategy is not None:  # one decision for all ranks, or they would hang
                skip_time = trainer.strategy.broadcast_object(skip_time)
        if skip_batch and skip_time:
            return
        if not skip_time:
            self._last_time_checked = now
        self.save_checkpoint(trainer)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self._should_skip(trainer) or not self._save_on_train_epoch_end:
            return
        if self.every_n_epochs and (trainer.current_epoch + 1) % self.every_n_epochs == 0:
            self.save_checkpoint(trainer)

    def on_validation_end(self, trainer, pl_module) -> None:
        if self._should_skip(trainer) or self._save_on_train_epoch_end:
            return
        if self.every_n_epochs and (trainer.current_epoch + 1) % self.every_n_epochs == 0:
            self.save_checkpoint(trainer)

    def state_dict(self) -> Dict[str, Any]:
        return {
            "monitor": self.monitor,
            "best_model_score": self.best_model_score,
            "best_model_path": self.best_model_path,
            "current_score": self.current_score,
            "dirpath": self.dirpath,
            "best_k_models": {k: float(v) for k, v in self.best_k_models.items()},
            "kth_best_model_path": self.kth_best_model_path,
            "kth_value": self.kth_value,
            "last_model_path": self.last_model_path,
        }

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        if state_dict.get("dirpath") == self.dirpath:
            self.best_model_score = state_dict.get("best_model_score")
            self.kth_best_model_path = state_dict.get("kth_best_model_path", "")
            self.kth_value = state_dict.get("kth_value", self.kth_value)
            self.best_k_models = dict(state_dict.get("best_k_models", {}))
            self.last_model_path = state_dict.get("last_model_path", "")
        self.best_model_path = state_dict.get("best_model_path", "")

    # -- saving ---------------------------------------------------------------------------
    def monitor_candidates(self, trainer) -> Dict[str, Any]:
        candidates = dict(trainer.callback_metrics)
        candidates.setdefault("epoch", trainer.current_epoch)
        candidates.setdefault("step", trainer.global_step)
        return candidates

    def save_checkpoint(self, trainer) -> None:
        """Save now according to ``monitor``/``save_top_k``/``save_last`` (all ranks decide,
        rank 0 writes)."""
        candidates = self.monitor_candidates(trainer)
        self._last_global_step_saved = trainer.global_step
        if self.save_top_k:
            if self.monitor is None:
                self._save_latest(trainer, candidates)
            else:
                self._save_monitored(trainer, candidates)
        if self.save_last:
            self._save_last(trainer, candidates)

    def _save_latest(self, trainer, candidates) -> None:
        filepath = self._unique_filepath(candidates)
        previous, self.best_model_path = self.best_model_path, filepath
        self._write(trainer, filepath)
        if self.save_top_k == 1 and previous and previous != filepath:
            self._remove(trainer, previous)

    def _save_monitored(self, trainer, candidates) -> None:
        if self.monitor not in candidates:
            raise MisconfigurationException(
                f"ModelCheckpoint(monitor={self.monitor!r}) could not find the monitored key in the returned "
                f"metrics: {sorted(k for k in candidates)}. HINT: Did you call `log({self.monitor!r}, value)` "
                "in the `LightningModule`?"
            )
        current = candidates[self.monitor]
        current = (
            torch.tensor(float(current))
            if not isinstance(current, torch.Tensor)
            else current.detach().float().cpu()
        )
        if torch.isnan(current):
            current = torch.tensor(math.inf if self.mode == "min" else -math.inf)
        if not self._is_top_k(current):
            if self.verbose:
                print(
                    f"Epoch {trainer.current_epoch}, global step {trainer.global_step}: "
                    f"{self.monitor!r} was not in top {self.save_top_k}"
                )
            return
        filepath = self._unique_filepath(candidates)
        self.current_score = current
        removed = None
        if len(self.best_k_models) == self.save_top_k and self.save_top_k > 0:
            removed = self.kth_best_model_path
            self.best_k_models.pop(removed)
        self.best_k_models[filepath] = float(current)
        if len(self.best_k_models) == self.save_top_k or self.save_top_k == -1:
            pick = max if self.mode == "min" else min
            self.kth_best_model_path = pick(self.best_k_models, key=self.best_k_models.__getitem__)
            self.kth_value = torch.tensor(self.best_k_models[self.kth_best_model_path])
        choose = min if self.mode == "min" else max
        self.best_model_path = choose(self.best_k_models, key=self.best_k_models.__getitem__)
        self.best_model_score = torch.tensor(self.best_k_models[self.best_model_path])
        if self.verbose:
            print(
                f"Epoch {trainer.current_epoch}, global step {trainer.global_step}: {self.monitor!r} reached "
                f"{float(current):.5f} (best {float(self.best_model_score):.5f}), saving model to {filepath!r}"
            )
        self._write(trainer, filepath)
        if removed and removed != filepath:
            self._remove(trainer, removed)

    def _is_top_k(self, current: torch.Tensor) -> bool:
        if self.save_top_k == -1 or len(self.best_k_models) < self.save_top_k:
            return True
        return (
            bool(current < self.kth_value) if self.mode == "min" else bool(current > self.kth_value)
        )

    def _save_last(self, trainer, candidates) -> None:
        filepath = self.format_checkpoint_name(candidates, self.CHECKPOINT_NAME_LAST)
        previous, self.last_model_path = self.last_model_path, filepath
        self._write(trainer, filepath)
        if (
            previous
            and previous != filepath
            and previous not in self.best_k_models
            and previous != self.best_model_path
        ):
            self._remove(trainer, previous)

    def _write(self, trainer, filepath: str) -> None:
        trainer.save_checkpoint(filepath, weights_only=self.save_weights_only)

    def _remove(self, trainer, filepath: str) -> None:
        # never delete a file outside our own directory (e.g. the checkpoint a run resumed from)
        inside = os.path.dirname(os.path.realpath(filepath)) == os.path.realpath(self.dirpath or "")
        if trainer.is_global_zero and inside:
            remove_checkpoint(filepath)

    # -- names ----------------------------------------------------------------------------
    def _unique_filepath(self, candidates: Dict[str, Any]) -> str:
        filepath = self.format_checkpoint_name(candidates)
        version = self.STARTING_VERSION
        while os.path.exists(filepath) and filepath not in (
            self.best_model_path,
            *self.best_k_models,
        ):
            filepath = self.format_checkpoint_name(candidates, ver=version)
            version += 1
        return filepath

    @staticmethod
    def _format_name(filename: str, metrics: Dict[str, Any], auto_insert_metric_name: bool) -> str:
        metrics = dict(metrics)
        groups = re.findall(r"(\{.*?)[:\}]", filename)
        for group in groups:
            name = group[1:]
            if auto_insert_metric_name:
                filename = filename.replace(group, name.replace("/", "_") + "={" + name, 1)
            if name not in metrics:
                metrics[name] = 0
        # str.format cannot look up names with "/" or "." inside: substitute placeholders
        placeholders = {}
        for index, name in enumerate(sorted({g[1:] for g in groups}, key=len, reverse=True)):
            placeholders[f"__metric{index}"] = metrics[name]
            filename = filename.replace("{" + name, "{" + f"__metric{index}")
        values = {
            k: (v.item() if isinstance(v, torch.Tensor) else v) for k, v in placeholders.items()
        }
        return filename.format(**values)

    def format_checkpoint_name(
        self, metrics: Dict[str, Any], filename: Optional[str] = None, ver: Optional[int] = None
    ) -> str:
        """The checkpoint path for ``metrics``: ``{epoch}`` gives ``epoch=3``, ``{epoch:03d}``
        ``epoch=003``; ``ver`` appends ``-v<ver>``."""
        name = self._format_name(
            filename or self.filename or "{epoch}-{step}", metrics, self.auto_insert_metric_name
        )
        if ver is not None:
            name = self.CHECKPOINT_JOIN_CHAR.join((name, f"v{ver}"))
        name += self.FILE_EXTENSION
        return os.path.join(self.dirpath, name) if self.dirpath else name

    def to_yaml(self, filepath: Optional[str] = None) -> None:
        import yaml

        best = {k: float(v) for k, v in self.best_k_models.items()}
        if not filepath and self.dirpath is None:
            raise ValueError("ModelCheckpoint.to_yaml: no filepath given and no dirpath set yet")
        with open(filepath or Path(self.dirpath or "") / "best_k_models.yaml", "w") as handle:
            yaml.safe_dump(best, handle)
