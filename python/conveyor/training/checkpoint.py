"""``ModelCheckpoint``: Lightning 1.6's checkpoint callback (triggers, names, top-k, last,
versions, and a state that round-trips with Lightning 1.6 checkpoints)."""

from __future__ import annotations

import logging
import math
import os
import re
import time
import warnings
from datetime import timedelta
from typing import Any, Dict, Optional

import torch

from conveyor.training.checkpoint_io import remove_checkpoint
from conveyor.training.errors import MisconfigurationException
from conveyor.training.hooks import Callback

# Lightning logs these lines at INFO on its package logger, whose level it sets to INFO; the
# ``conveyor`` logger does the same unless the application already chose a level for it.
log = logging.getLogger("conveyor")
if log.level == logging.NOTSET:
    log.setLevel(logging.INFO)


def _info(message: str) -> None:
    """An informational line on rank 0: to the ``conveyor`` logger when the application
    configured logging handlers, else printed (as Lightning's default stream handler would)."""
    if os.environ.get("RANK", "0") != "0" or os.environ.get("LOCAL_RANK", "0") != "0":
        return
    if log.hasHandlers():
        log.info(message)
    else:
        print(message)


def _as_tensor(value: Any) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    return torch.tensor(value)


class ModelCheckpoint(Callback):
    """Save the model periodically, keeping the best ``save_top_k`` by ``monitor``.

    Args:
        dirpath: where checkpoints go; default ``<log_dir>/checkpoints`` (no logger:
            ``<default_root_dir>/checkpoints``).
        filename: a template such as ``"{epoch}-{val_loss:.2f}"``; default ``"{epoch}-{step}"``,
            rendered ``epoch=E-step=S``. A metric missing at save time renders as 0.
        monitor: the logged metric to rank checkpoints by; None keeps the latest.
        verbose: report each save (and each monitored value that did not make the top k).
        save_last: also write ``last.ckpt`` whenever a checkpoint could be saved (at every
            trigger and at each epoch end, whatever ``every_n_epochs`` says).
        save_top_k: how many to keep (-1 all, 0 none); with ``monitor=None`` only -1, 0 or 1.
        save_weights_only: save only weights and loop state (no optimizer, schedulers, callbacks).
        mode: "min" or "max": whether a lower or higher ``monitor`` is better.
        auto_insert_metric_name: render ``{epoch}`` as ``epoch=3`` rather than ``3``.
        every_n_train_steps: save every N optimizer steps (mid-epoch checkpoints); 0 never.
        train_time_interval: save at the first batch end after this much training time (a
            ``datetime.timedelta``); rank 0's clock decides for every rank.
        every_n_epochs: save every N epochs (default 1 when no other trigger is set); 0 never.
        save_on_train_epoch_end: save at the end of the training epoch rather than at the end
            of validation (default: when validation runs exactly once per training epoch).

    At most one of ``every_n_train_steps``, ``every_n_epochs`` and ``train_time_interval`` may
    be set. Nothing is saved during the sanity check, under ``fast_dev_run``, outside ``fit``,
    before the first optimizer step or twice at one ``global_step``.
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
        if mode not in ("min", "max"):
            raise MisconfigurationException(f"`mode` can be min, max but got {mode}")
        if every_n_train_steps is None and every_n_epochs is None and train_time_interval is None:
            every_n_train_steps, every_n_epochs = 0, 1  # once per epoch, Lightning's default
        self.dirpath = os.path.realpath(os.path.expanduser(str(dirpath))) if dirpath else None
        self.filename = filename
        self.monitor = monitor
        self.verbose = verbose
        self.save_last = save_last
        self.save_top_k = save_top_k
        self.save_weights_only = save_weights_only
        self.mode = mode
        self.auto_insert_metric_name = auto_insert_metric_name
        self._every_n_train_steps: int = every_n_train_steps or 0
        self._every_n_epochs: int = every_n_epochs or 0
        self._train_time_interval = train_time_interval
        self._save_on_train_epoch_end = save_on_train_epoch_end
        self._validate_configuration()
        self._last_time_checked: Optional[float] = None
        self._last_global_step_saved = 0  # nothing to save before the first optimizer step
        self._validation_ran = False  # in this fit, outside the sanity check
        self.best_k_models: Dict[str, torch.Tensor] = {}
        self.kth_best_model_path = ""
        self.best_model_score: Optional[torch.Tensor] = None
        self.best_model_path = ""
        self.last_model_path = ""
        self.current_score: Optional[torch.Tensor] = None
        self.kth_value = torch.tensor(math.inf if mode == "min" else -math.inf)

    def _validate_configuration(self) -> None:
        if self.save_top_k < -1:
            raise MisconfigurationException(
                f"Invalid value for save_top_k={self.save_top_k}. Must be >= -1"
            )
        if self._every_n_train_steps < 0:
            raise MisconfigurationException(
                f"Invalid value for every_n_train_steps={self._every_n_train_steps}. Must be >= 0"
            )
        if self._every_n_epochs < 0:
            raise MisconfigurationException(
                f"Invalid value for every_n_epochs={self._every_n_epochs}. Must be >= 0"
            )
        triggers = (
            (self._every_n_train_steps >= 1)
            + (self._every_n_epochs >= 1)
            + (self._train_time_interval is not None)
        )
        if triggers > 1:
            raise MisconfigurationException(
                f"Combination of parameters every_n_train_steps={self._every_n_train_steps}, "
                f"every_n_epochs={self._every_n_epochs} and "
                f"train_time_interval={self._train_time_interval} should be mutually exclusive."
            )
        if self.monitor is None:
            if self.save_top_k not in (-1, 0, 1):
                raise MisconfigurationException(
                    f"ModelCheckpoint(save_top_k={self.save_top_k}, monitor=None) is not a valid "
                    "configuration. No quantity for top_k to track."
                )
            if self.save_top_k == -1 and self.save_last:
                _info(
                    "ModelCheckpoint(save_last=True, save_top_k=-1, monitor=None) will duplicate "
                    "the last checkpoint saved."
                )

    @property
    def state_key(self) -> str:
        # Lightning 1.6's key, character for character, so that its checkpoints restore this state
        return self._generate_state_key(
            monitor=self.monitor,
            mode=self.mode,
            every_n_train_steps=self._every_n_train_steps,
            every_n_epochs=self._every_n_epochs,
            train_time_interval=self._train_time_interval,
            save_on_train_epoch_end=self._save_on_train_epoch_end,
        )

    @property
    def every_n_epochs(self) -> int:
        return self._every_n_epochs

    @property
    def every_n_train_steps(self) -> int:
        return self._every_n_train_steps

    @property
    def train_time_interval(self) -> Optional[timedelta]:
        return self._train_time_interval

    # -- lifecycle ------------------------------------------------------------------------
    def setup(self, trainer, pl_module, stage: Optional[str] = None) -> None:
        if self.dirpath is None:
            self.dirpath = trainer._default_checkpoint_dir()
        if trainer.is_global_zero and stage == "fit":
            self._warn_if_dir_not_empty(self.dirpath)
        # part of state_key: settled before a checkpoint's callback states are restored
        if self._save_on_train_epoch_end is None:
            self._save_on_train_epoch_end = (
                getattr(trainer, "val_check_interval", 1.0) == 1.0
                and trainer.check_val_every_n_epoch == 1
            )
        if stage == "fit":
            self._validation_ran = False

    def _warn_if_dir_not_empty(self, dirpath: str) -> None:
        if self.save_top_k != 0 and os.path.isdir(dirpath) and os.listdir(dirpath):
            warnings.warn(f"Checkpoint directory {dirpath} exists and is not empty.", stacklevel=2)

    def _should_skip_saving_checkpoint(self, trainer) -> bool:
        return bool(
            trainer.fast_dev_run
            or trainer.state_stage != "fit"
            or trainer.sanity_checking
            or self._last_global_step_saved == trainer.global_step
        )

    def on_train_start(self, trainer, pl_module) -> None:
        self._last_time_checked = time.monotonic()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, unused=0) -> None:
        if self._should_skip_saving_checkpoint(trainer):
            return
        every = self._every_n_train_steps
        skip_batch = every < 1 or trainer.global_step % every != 0
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
        candidates = self._monitor_candidates(trainer)
        self._save_topk_checkpoint(trainer, candidates)
        self._save_last_checkpoint(trainer, candidates)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self._save_on_train_epoch_end and not self._should_skip_saving_checkpoint(trainer):
            self._save_at_epoch_trigger(trainer)

    def on_validation_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self._validation_ran = True
        if not self._save_on_train_epoch_end and not self._should_skip_saving_checkpoint(trainer):
            self._save_at_epoch_trigger(trainer)

    def _save_at_epoch_trigger(self, trainer) -> None:
        candidates = self._monitor_candidates(trainer)
        every = self._every_n_epochs
        if every >= 1 and (trainer.current_epoch + 1) % every == 0:
            self._save_topk_checkpoint(trainer, candidates)
        self._save_last_checkpoint(trainer, candidates)  # `save_last` ignores every_n_epochs

    def state_dict(self) -> Dict[str, Any]:
        return {
            "monitor": self.monitor,
            "best_model_score": self.best_model_score,
            "best_model_path": self.best_model_path,
            "current_score": self.current_score,
            "dirpath": self.dirpath,
            "best_k_models": self.best_k_models,
            "kth_best_model_path": self.kth_best_model_path,
            "kth_value": self.kth_value,
            "last_model_path": self.last_model_path,
        }

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        saved_dirpath = state_dict.get("dirpath", self.dirpath)
        if saved_dirpath == self.dirpath:
            self.best_model_score = state_dict["best_model_score"]
            self.kth_best_model_path = state_dict.get("kth_best_model_path", "")
            self.kth_value = state_dict.get("kth_value", self.kth_value)
            self.best_k_models = {
                path: _as_tensor(score)
                for path, score in state_dict.get("best_k_models", {}).items()
            }
            self.last_model_path = state_dict.get("last_model_path", "")
        else:
            warnings.warn(
                f"The dirpath has changed from {saved_dirpath!r} to {self.dirpath!r}, therefore "
                "`best_model_score`, `kth_best_model_path`, `kth_value`, `last_model_path` and "
                "`best_k_models` won't be reloaded. Only `best_model_path` will be reloaded.",
                stacklevel=2,
            )
        self.best_model_path = state_dict["best_model_path"]

    # -- saving ---------------------------------------------------------------------------
    def _monitor_candidates(self, trainer) -> Dict[str, Any]:
        """The logged metrics plus ``epoch`` and ``step`` as int tensors (a logged "epoch" or
        "step" value wins, cast to int since ``self.log`` stores floats)."""
        candidates = dict(trainer.callback_metrics)
        for key, fallback in (("epoch", trainer.current_epoch), ("step", trainer.global_step)):
            value = candidates.get(key)
            candidates[key] = (
                value.int() if isinstance(value, torch.Tensor) else torch.tensor(fallback)
            )
        return candidates

    monitor_candidates = _monitor_candidates  # conveyor's earlier public name

    def save_checkpoint(self, trainer) -> None:
        """Save now as the triggers would (top-k, then last). Lightning 1.6 deprecated this in
        favour of ``trainer.save_checkpoint(path)``; it is kept for 1.x scripts."""
        candidates = self._monitor_candidates(trainer)
        self._save_topk_checkpoint(trainer, candidates)
        self._save_last_checkpoint(trainer, candidates)

    def _save_topk_checkpoint(self, trainer, candidates: Dict[str, Any]) -> None:
        if self.save_top_k == 0:
            return
        if self.monitor is None:
            self._save_none_monitor_checkpoint(trainer, candidates)
            return
        if self.monitor not in candidates:
            message = (
                f"`ModelCheckpoint(monitor={self.monitor!r})` could not find the monitored key in "
                f"the returned metrics: {list(candidates)}. HINT: Did you call "
                f"`log({self.monitor!r}, value)` in the `LightningModule`?"
            )
            # before any validation ran, a metric logged only in validation cannot exist yet
            if self._validation_ran:
                raise MisconfigurationException(message)
            warnings.warn(message, stacklevel=2)
        self._save_monitor_checkpoint(trainer, candidates)

    def _save_checkpoint(self, trainer, filepath: str) -> None:
        trainer.save_checkpoint(filepath, self.save_weights_only)
        self._last_global_step_saved = trainer.global_step

    def check_monitor_top_k(self, trainer, current: Optional[torch.Tensor] = None) -> bool:
        """Whether ``current`` makes the top k (all ranks must agree under DDP)."""
        if current is None:
            return False
        if self.save_top_k == -1 or len(self.best_k_models) < self.save_top_k:
            return True
        kth = self.best_k_models[self.kth_best_model_path]
        better = torch.lt if self.mode == "min" else torch.gt
        decision = bool(better(_as_tensor(current), kth))
        strategy = getattr(trainer, "strategy", None)
        if strategy is not None and hasattr(strategy, "reduce_boolean_decision"):
            decision = strategy.reduce_boolean_decision(decision)
        return decision

    def _save_monitor_checkpoint(self, trainer, candidates: Dict[str, Any]) -> None:
        current = candidates.get(self.monitor or "")  # only called with a monitor set
        if self.check_monitor_top_k(trainer, current):
            self._update_best_and_save(_as_tensor(current), trainer, candidates)
        elif self.verbose:
            _info(
                f"Epoch {int(candidates['epoch'])}, global step {int(candidates['step'])}: "
                f"{self.monitor!r} was not in top {self.save_top_k}"
            )

    def _save_none_monitor_checkpoint(self, trainer, candidates: Dict[str, Any]) -> None:
        filepath = self._get_metric_interpolated_filepath_name(candidates, trainer)
        # set before saving: the path is part of the saved callback state
        previous, self.best_model_path = self.best_model_path, filepath
        self._save_checkpoint(trainer, filepath)
        if self.save_top_k == 1 and previous and previous != filepath:
            self._remove(trainer, previous)

    def _update_best_and_save(
        self, current: torch.Tensor, trainer, candidates: Dict[str, Any]
    ) -> None:
        k = len(self.best_k_models) + 1 if self.save_top_k == -1 else self.save_top_k
        removed = None
        if len(self.best_k_models) == k and k > 0:
            removed = self.kth_best_model_path
            self.best_k_models.pop(removed)
        if torch.isnan(current):  # a NaN score ranks last, never first
            current = torch.tensor(float("inf" if self.mode == "min" else "-inf"))
        filepath = self._get_metric_interpolated_filepath_name(candidates, trainer, removed)
        self.current_score = current
        self.best_k_models[filepath] = current
        if len(self.best_k_models) == k:
            worst = max if self.mode == "min" else min
            self.kth_best_model_path = worst(self.best_k_models, key=self.best_k_models.__getitem__)
            self.kth_value = self.best_k_models[self.kth_best_model_path]
        best = min if self.mode == "min" else max
        self.best_model_path = best(self.best_k_models, key=self.best_k_models.__getitem__)
        self.best_model_score = self.best_k_models[self.best_model_path]
        if self.verbose:
            _info(
                f"Epoch {int(candidates['epoch'])}, global step {int(candidates['step'])}: "
                f"{self.monitor!r} reached {float(current):0.5f} "
                f"(best {float(self.best_model_score):0.5f}), saving model to {filepath!r} "
                f"as top {k}"
            )
        self._save_checkpoint(trainer, filepath)
        if removed is not None and removed != filepath:
            self._remove(trainer, removed)

    def _save_last_checkpoint(self, trainer, candidates: Dict[str, Any]) -> None:
        if not self.save_last:
            return
        filepath = self.format_checkpoint_name(candidates, self.CHECKPOINT_NAME_LAST)
        previous, self.last_model_path = self.last_model_path, filepath
        self._save_checkpoint(trainer, filepath)
        if previous and previous != filepath and previous not in self.best_k_models:
            self._remove(trainer, previous)

    def _remove(self, trainer, filepath: str) -> None:
        # never delete a file outside our own directory (e.g. the checkpoint a run resumed from)
        # ("{val/loss}" templates write into subdirectories of dirpath: those are ours too)
        root, path = os.path.realpath(self.dirpath or ""), os.path.realpath(filepath)
        inside = bool(self.dirpath) and os.path.commonpath([root, path]) == root and path != root
        if trainer.is_global_zero and inside:
            remove_checkpoint(filepath)

    def file_exists(self, filepath: str, trainer) -> bool:
        """Whether ``filepath`` exists, as rank 0 sees it (ranks must agree on names)."""
        exists = os.path.exists(filepath)
        strategy = getattr(trainer, "strategy", None)
        if strategy is not None:
            exists = strategy.broadcast_object(exists)
        return exists

    # -- names ----------------------------------------------------------------------------
    def _get_metric_interpolated_filepath_name(
        self, candidates: Dict[str, Any], trainer, del_filepath: Optional[str] = None
    ) -> str:
        """The rendered name, with ``-v1``, ``-v2``... appended while a file of that name
        exists (the checkpoint about to be replaced does not count)."""
        filepath = self.format_checkpoint_name(candidates)
        version = self.STARTING_VERSION
        while self.file_exists(filepath, trainer) and filepath != del_filepath:
            filepath = self.format_checkpoint_name(candidates, ver=version)
            version += 1
        return filepath

    @classmethod
    def _format_checkpoint_name(
        cls,
        filename: Optional[str],
        metrics: Dict[str, Any],
        prefix: str = "",
        auto_insert_metric_name: bool = True,
    ) -> str:
        """Render a filename template: ``{epoch}`` gives ``epoch=3`` (``3`` without
        ``auto_insert_metric_name``), format specs apply (``{epoch:03d}``), names may contain
        ``/`` or ``.``, a missing metric renders as 0; ``prefix`` is joined in front."""
        if not filename:
            filename = "{epoch}" + cls.CHECKPOINT_JOIN_CHAR + "{step}"
        values = dict(metrics)
        for group in re.findall(r"(\{.*?)[:\}]", filename):
            name = group[1:]
            if auto_insert_metric_name:
                filename = filename.replace(group, name + "={" + name)
            # index a mapping argument so names with "." or "/" need no attribute lookup
            filename = filename.replace(group, "{0[" + name + "]")
            values.setdefault(name, 0)
        filename = filename.format(
            {
                k: v.item() if isinstance(v, torch.Tensor) and v.numel() == 1 else v
                for k, v in values.items()
            }
        )
        if prefix:
            filename = cls.CHECKPOINT_JOIN_CHAR.join([prefix, filename])
        return filename

    def format_checkpoint_name(
        self, metrics: Dict[str, Any], filename: Optional[str] = None, ver: Optional[int] = None
    ) -> str:
        """The checkpoint path for ``metrics``: ``{epoch}`` gives ``epoch=3``, ``{epoch:03d}``
        ``epoch=003``; ``ver`` appends ``-v<ver>``."""
        name = self._format_checkpoint_name(
            filename or self.filename, metrics, auto_insert_metric_name=self.auto_insert_metric_name
        )
        if ver is not None:
            name = self.CHECKPOINT_JOIN_CHAR.join((name, f"v{ver}"))
        name += self.FILE_EXTENSION
        return os.path.join(self.dirpath, name) if self.dirpath else name

    def to_yaml(self, filepath: Optional[str] = None) -> None:
        """Write ``best_k_models`` (path -> score) as YAML, by default to
        ``<dirpath>/best_k_models.yaml``."""
        import yaml

        if not filepath and self.dirpath is None:
            raise ValueError("ModelCheckpoint.to_yaml: no filepath given and no dirpath set yet")
        best = {path: float(score) for path, score in self.best_k_models.items()}
        with open(filepath or os.path.join(self.dirpath or "", "best_k_models.yaml"), "w") as out:
            yaml.safe_dump(best, out)
