"""``trainer.tune()`` and ``trainer.tuner`` (Lightning 1.6's tuner): the learning-rate range test
(``auto_lr_find``) and the batch-size search (``auto_scale_batch_size``). Both run short trial
fits of the model and leave it, and the RNG, as they found them; only the tuned attribute
(``lr``/``learning_rate``, ``batch_size``) changes."""

from __future__ import annotations

import contextlib
import copy
import gc
import logging
import warnings
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional, Tuple

import numpy as np
import torch

from conveyor.training.datamodule import DataModule
from conveyor.training.errors import MisconfigurationException
from conveyor.training.hooks import Callback
from conveyor.training.optimizers import LRSchedulerConfig, init_optimizers_and_schedulers
from conveyor.training.seed import capture_rng_states, restore_rng_states

if TYPE_CHECKING:
    from conveyor.training.module import Module
    from conveyor.training.trainer import Trainer

log = logging.getLogger(__name__)

_SCALE_MODES = ("power", "binsearch")


def validate_tuner_flags(auto_lr_find: Any, auto_scale_batch_size: Any) -> None:
    """``auto_lr_find``: a bool or the name of the attribute to set; ``auto_scale_batch_size``:
    a bool, "power" or "binsearch".

    Raises:
        MisconfigurationException: any other value.
    """
    if not isinstance(auto_lr_find, (bool, str)):
        raise MisconfigurationException(
            f"`auto_lr_find` should be a bool or the name of the learning rate attribute, got "
            f"{auto_lr_find!r}"
        )
    if not isinstance(auto_scale_batch_size, bool) and auto_scale_batch_size not in _SCALE_MODES:
        raise MisconfigurationException(
            f"`auto_scale_batch_size` should be a bool, 'power' or 'binsearch', got "
            f"{auto_scale_batch_size!r}"
        )


# -- where a tuned value lives (Lightning's lightning_hasattr/getattr/setattr) ----------------
def _attribute_holders(model: "Module", name: str) -> List[Any]:
    """The model itself, its ``hparams`` dict and the attached datamodule, those that have it."""
    holders: List[Any] = []
    if hasattr(model, name):
        holders.append(model)
    if name in model.hparams:
        holders.append(model.hparams)
    trainer = model._trainer
    if trainer is not None and trainer.datamodule is not None and hasattr(trainer.datamodule, name):
        holders.append(trainer.datamodule)
    return holders


def _get_attribute(model: "Module", name: str) -> Any:
    holders = _attribute_holders(model, name)
    if not holders:
        raise AttributeError(
            f"{name} is neither stored in the model namespace nor the `hparams` namespace/dict, "
            "nor the datamodule."
        )
    holder = holders[-1]  # the datamodule's, else hparams', else the model's (as Lightning)
    return holder[name] if isinstance(holder, dict) else getattr(holder, name)


def _set_attribute(model: "Module", name: str, value: Any) -> None:
    holders = _attribute_holders(model, name)
    if not holders:
        raise AttributeError(
            f"{name} is neither stored in the model namespace nor the `hparams` namespace/dict, "
            "nor the datamodule."
        )
    for holder in holders:
        if isinstance(holder, dict):
            holder[name] = value
        else:
            setattr(holder, name, value)


# -- out of memory ----------------------------------------------------------------------------
def is_oom_error(exception: BaseException) -> bool:
    """A CUDA or CPU out-of-memory RuntimeError (or cuDNN's NOT_SUPPORTED, which large batches
    cause), recognised by torch's messages as Lightning does."""
    if not isinstance(exception, RuntimeError) or len(exception.args) != 1:
        return False
    message = str(exception.args[0])
    return (
        ("CUDA" in message and "out of memory" in message)
        or "cuDNN error: CUDNN_STATUS_NOT_SUPPORTED." in message
        or "DefaultCPUAllocator: can't allocate memory" in message
    )


def _free_cuda_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        try:
            torch.cuda.empty_cache()
        except RuntimeError as exception:
            if not is_oom_error(exception):
                raise


# -- the learning-rate range test -------------------------------------------------------------
class _RangeTestLR(torch.optim.lr_scheduler.LRScheduler):
    """Raises the learning rate from the optimizer's (``min_lr``) to ``end_lr`` over ``num_iter``
    steps, exponentially or linearly (Lightning's schedule: step 0 uses ``min_lr``, step
    ``k >= 1`` the point ``(k + 1) / num_iter`` of the way, so the last step uses ``end_lr``)."""

    def __init__(
        self, optimizer: torch.optim.Optimizer, end_lr: float, num_iter: int, exponential: bool
    ) -> None:
        self.end_lr, self.num_iter, self.exponential = end_lr, num_iter, exponential
        self._lr: List[float] = []
        super().__init__(optimizer)

    def get_lr(self) -> List[float]:  # type: ignore[override]
        fraction = (self.last_epoch + 1) / self.num_iter
        bases = [float(base) for base in self.base_lrs]
        if self.last_epoch <= 0:
            values = bases
        elif self.exponential:
            values = [base * (self.end_lr / base) ** fraction for base in bases]
        else:
            values = [base + fraction * (self.end_lr - base) for base in bases]
        self._lr = values
        return values

    @property
    def lr(self) -> List[float]:
        return self._lr


class LRFinder:
    """What ``lr_find`` measured: ``results["lr"]`` and ``results["loss"]`` (the smoothed
    training loss after each step at that learning rate), ``suggestion()`` and ``plot()``."""

    def __init__(self, mode: str, lr_min: float, lr_max: float, num_training: int) -> None:
        if mode not in ("linear", "exponential"):
            raise MisconfigurationException(
                f"lr_find mode should be 'linear' or 'exponential', got {mode!r}"
            )
        self.mode, self.lr_min, self.lr_max, self.num_training = mode, lr_min, lr_max, num_training
        self.results: Dict[str, List[float]] = {}
        self._optimal_idx: Optional[int] = None

    def _setup_optimizers(self, trainer: "Trainer") -> None:
        """The model's single optimizer, starting at ``lr_min``, driven by the range schedule."""
        optimizers, _, _ = init_optimizers_and_schedulers(trainer._attached_module)
        if len(optimizers) != 1:
            raise MisconfigurationException(
                f"`model.configure_optimizers()` returned {len(optimizers)}, but learning rate "
                "finder only works with single optimizer"
            )
        optimizer = optimizers[0]
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"] = self.lr_min
        scheduler = _RangeTestLR(
            optimizer, self.lr_max, self.num_training, exponential=self.mode == "exponential"
        )
        trainer.optimizers = [optimizer]
        trainer.lr_scheduler_configs = [LRSchedulerConfig(scheduler, interval="step", opt_idx=0)]
        trainer.optimizer_frequencies = []

    def suggestion(self, skip_begin: int = 10, skip_end: int = 1) -> Optional[float]:
        """The learning rate where the loss falls fastest (the steepest negative gradient),
        ignoring the first ``skip_begin`` and last ``skip_end`` points; None (with a warning)
        when too few points remain."""
        losses = np.array(self.results["loss"][skip_begin:-skip_end])
        losses = losses[np.isfinite(losses)]
        if len(losses) < 2:
            warnings.warn(
                f"Failed to compute suggestion for `lr`: {len(losses)} usable points after "
                f"skipping {skip_begin} at the start and {skip_end} at the end "
                f"(of {len(self.results['loss'])}).",
                stacklevel=2,
            )
            self._optimal_idx = None
            return None
        self._optimal_idx = int(np.gradient(losses).argmin()) + skip_begin
        return self.results["lr"][self._optimal_idx]

    def plot(self, suggest: bool = False, show: bool = False) -> Any:
        """Loss against learning rate (log axis in exponential mode), with the suggestion
        marked in red when ``suggest``; returns the matplotlib figure."""
        try:
            import matplotlib.pyplot as plt
        except ImportError as error:
            raise ImportError("LRFinder.plot needs matplotlib: pip install matplotlib") from error
        lrs, losses = self.results["lr"], self.results["loss"]
        figure, axes = plt.subplots()
        axes.plot(lrs, losses)
        if self.mode == "exponential":
            axes.set_xscale("log")
        axes.set_xlabel("Learning rate")
        axes.set_ylabel("Loss")
        if suggest:
            self.suggestion()
            if self._optimal_idx is not None:
                index = self._optimal_idx
                axes.plot(lrs[index], losses[index], markersize=10, marker="o", color="red")
        if show:
            plt.show()
        return figure


class _LRCallback(Callback):
    """Records each step's learning rate and smoothed loss; stops the test when the smoothed
    loss exceeds ``early_stop_threshold`` times the best one."""

    def __init__(self, early_stop_threshold: Optional[float], beta: float = 0.98) -> None:
        self.early_stop_threshold, self.beta = early_stop_threshold, beta
        self.lrs: List[float] = []
        self.losses: List[float] = []
        self.avg_loss = 0.0
        self.best_loss = 0.0

    def _steps(self, trainer: "Trainer", batch_idx: int) -> bool:
        return (batch_idx + 1) % trainer._accumulation_for_epoch(trainer.current_epoch) == 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx, unused=0) -> None:
        if self._steps(trainer, batch_idx):
            self.lrs.append(trainer.lr_scheduler_configs[0].scheduler.lr[0])

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, unused=0) -> None:
        if not self._steps(trainer, batch_idx) or trainer._last_loss is None:
            return
        step = trainer.global_step
        self.avg_loss = self.beta * self.avg_loss + (1 - self.beta) * trainer._last_loss
        smoothed = self.avg_loss / (1 - self.beta ** (step + 1))  # bias-corrected running mean
        threshold = self.early_stop_threshold
        if threshold is not None and step > 1 and smoothed > threshold * self.best_loss:
            trainer.max_steps = step  # diverging: stop after this step
        if smoothed < self.best_loss or step == 1:
            self.best_loss = smoothed
        self.losses.append(smoothed)


# -- the tuner ----------------------------------------------------------------------------------
class Tuner:
    """``trainer.tuner``: ``lr_find`` and ``scale_batch_size`` (also run by ``trainer.tune``)."""

    def __init__(self, trainer: "Trainer") -> None:
        self.trainer = trainer

    def tune(
        self,
        model: "Module",
        train_dataloaders: Any = None,
        val_dataloaders: Any = None,
        datamodule: Optional[DataModule] = None,
        scale_batch_size_kwargs: Optional[Dict[str, Any]] = None,
        lr_find_kwargs: Optional[Dict[str, Any]] = None,
    ) -> Dict[str, Any]:
        trainer = self.trainer
        if isinstance(train_dataloaders, DataModule):
            datamodule, train_dataloaders = train_dataloaders, None
        if (
            train_dataloaders is not None or val_dataloaders is not None
        ) and datamodule is not None:
            raise MisconfigurationException(
                "You cannot pass `train_dataloader` or `val_dataloaders` to "
                "`trainer.tune(datamodule=...)`"
            )
        trainer._check_module(model)
        if trainer.strategy is not None and (trainer.auto_scale_batch_size or trainer.auto_lr_find):
            raise MisconfigurationException(
                "`trainer.tune()` is currently not supported with several processes "
                "(strategy='ddp'/'ddp_spawn'): tune on one device, then train"
            )
        # what the attribute lookups and the model's hooks see, as after fit's attach
        trainer.lightning_module, trainer.datamodule = model, datamodule
        model.trainer = trainer
        loaders = (train_dataloaders, val_dataloaders, datamodule)
        result: Dict[str, Any] = {}
        rng = capture_rng_states()
        try:
            if trainer.auto_scale_batch_size:
                kwargs = dict(scale_batch_size_kwargs or {})
                if isinstance(trainer.auto_scale_batch_size, str):
                    kwargs.setdefault("mode", trainer.auto_scale_batch_size)
                result["scale_batch_size"] = self._scale_batch_size(model, loaders, **kwargs)
            if trainer.auto_lr_find:
                kwargs = dict(lr_find_kwargs or {})
                kwargs.setdefault("update_attr", True)
                result["lr_find"] = self._lr_find(model, loaders, **kwargs)
        finally:
            restore_rng_states(rng)
            _reset_progress(trainer)  # the fit that follows starts from scratch
        return result

    def lr_find(
        self,
        model: "Module",
        train_dataloaders: Any = None,
        val_dataloaders: Any = None,
        datamodule: Optional[DataModule] = None,
        min_lr: float = 1e-8,
        max_lr: float = 1,
        num_training: int = 100,
        mode: str = "exponential",
        early_stop_threshold: Optional[float] = 4.0,
        update_attr: bool = False,
    ) -> Optional[LRFinder]:
        """Learning-rate range test: ``num_training`` steps from ``min_lr`` to ``max_lr``
        ("exponential" or "linear"), stopped early when the smoothed loss exceeds
        ``early_stop_threshold`` times its best (None: never). ``update_attr`` sets the model's
        ``lr``/``learning_rate`` (or the attribute ``auto_lr_find`` names) to the suggestion.
        The model's weights are restored afterwards.

        Raises:
            MisconfigurationException: no learning-rate attribute to update, or several
                optimizers.
        """
        trainer = self.trainer
        previous, trainer.auto_lr_find = trainer.auto_lr_find, True
        try:
            found = self.tune(
                model,
                train_dataloaders,
                val_dataloaders,
                datamodule,
                lr_find_kwargs=dict(
                    min_lr=min_lr,
                    max_lr=max_lr,
                    num_training=num_training,
                    mode=mode,
                    early_stop_threshold=early_stop_threshold,
                    update_attr=update_attr,
                ),
            )
        finally:
            trainer.auto_lr_find = previous
        return found["lr_find"]

    def scale_batch_size(
        self,
        model: "Module",
        train_dataloaders: Any = None,
        val_dataloaders: Any = None,
        datamodule: Optional[DataModule] = None,
        mode: str = "power",
        steps_per_trial: int = 3,
        init_val: int = 2,
        max_trials: int = 25,
        batch_arg_name: str = "batch_size",
    ) -> Optional[int]:
        """The largest batch size that trains ``steps_per_trial`` steps without running out of
        memory: doubled from ``init_val`` until it fails ("power": then halved), or then bisected
        between the last success and the failure ("binsearch"); at most ``max_trials`` trials.
        The size is read from and written to ``batch_arg_name`` on the model, its ``hparams`` or
        the datamodule, which the loader hooks must use; the model's weights are restored.

        Raises:
            MisconfigurationException: no such attribute, or loaders passed directly (they
                cannot be rebuilt with another batch size).
        """
        trainer = self.trainer
        previous, trainer.auto_scale_batch_size = trainer.auto_scale_batch_size, True
        try:
            found = self.tune(
                model,
                train_dataloaders,
                val_dataloaders,
                datamodule,
                scale_batch_size_kwargs=dict(
                    mode=mode,
                    steps_per_trial=steps_per_trial,
                    init_val=init_val,
                    max_trials=max_trials,
                    batch_arg_name=batch_arg_name,
                ),
            )
        finally:
            trainer.auto_scale_batch_size = previous
        return found["scale_batch_size"]

    # -- trials -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def _trial_settings(self, **settings: Any) -> Iterator[None]:
        """Trainer settings for the trial fits (no loggers, no checkpoints, no progress bar or
        summary), restored afterwards with the model's weights."""
        trainer = self.trainer
        model = trainer._attached_module
        weights = copy.deepcopy(model.state_dict())
        names = ["callbacks", "_loggers", "max_steps", "enable_model_summary"] + list(settings)
        saved = {name: getattr(trainer, name) for name in names}
        trainer.callbacks, trainer._loggers, trainer.enable_model_summary = [], [], False
        for name, value in settings.items():
            setattr(trainer, name, value)
        try:
            yield
        finally:
            for name, value in saved.items():
                setattr(trainer, name, value)
            trainer._tuning_optimizers = None
            model.load_state_dict(weights)

    def _trial_fit(self, model: "Module", loaders: Any) -> None:
        """One short fit from step 0 (as Lightning resets ``global_step`` for each trial)."""
        train, val, datamodule = loaders
        _reset_progress(self.trainer)
        self.trainer._run(model, "fit", datamodule, None, train=train, val=val)

    def _lr_find(
        self,
        model: "Module",
        loaders: Any,
        min_lr: float = 1e-8,
        max_lr: float = 1,
        num_training: int = 100,
        mode: str = "exponential",
        early_stop_threshold: Optional[float] = 4.0,
        update_attr: bool = False,
    ) -> Optional[LRFinder]:
        trainer = self.trainer
        if trainer.fast_dev_run:
            warnings.warn(
                "Skipping learning rate finder since fast_dev_run is enabled.", stacklevel=3
            )
            return None
        attribute = _lr_attribute(trainer, model) if update_attr else None
        finder = LRFinder(mode, min_lr, max_lr, num_training)
        recorder = _LRCallback(early_stop_threshold)
        with self._trial_settings(max_steps=num_training, auto_lr_find=False):
            trainer.callbacks = [recorder]
            trainer._tuning_optimizers = finder._setup_optimizers
            self._trial_fit(model, loaders)
            if trainer.global_step != num_training:
                log.info(
                    "LR finder stopped early after %d steps due to diverging loss.",
                    trainer.global_step,
                )
        finder.results.update(lr=recorder.lrs, loss=recorder.losses)
        if attribute is not None:
            lr = finder.suggestion()
            if lr is None:  # Lightning 1.6 would set None, which breaks the optimizer later
                warnings.warn(
                    f"lr_find could not suggest a learning rate: keeping "
                    f"{attribute}={_get_attribute(model, attribute)}",
                    stacklevel=3,
                )
            else:
                _set_attribute(model, attribute, lr)
                log.info("Learning rate set to %s", lr)
        return finder

    def _scale_batch_size(
        self,
        model: "Module",
        loaders: Any,
        mode: str = "power",
        steps_per_trial: int = 3,
        init_val: int = 2,
        max_trials: int = 25,
        batch_arg_name: str = "batch_size",
    ) -> Optional[int]:
        trainer = self.trainer
        if trainer.fast_dev_run:
            warnings.warn("Skipping batch size scaler since fast_dev_run is enabled.", stacklevel=3)
            return None
        if mode not in _SCALE_MODES:
            raise ValueError(
                "mode in method `scale_batch_size` could either be `power` or `binsearch`"
            )
        if not _attribute_holders(model, batch_arg_name):
            raise MisconfigurationException(
                f"Field {batch_arg_name} not found in both `model` and `model.hparams`"
            )
        if hasattr(model, batch_arg_name) and batch_arg_name in model.hparams:
            warnings.warn(
                f"Field `model.{batch_arg_name}` and `model.hparams.{batch_arg_name}` are mutually "
                f"exclusive! `model.{batch_arg_name}` will be used as the initial batch size for "
                "scaling. If this is not the intended behavior, please remove either one.",
                stacklevel=3,
            )
        if loaders[0] is not None:
            raise MisconfigurationException(
                "The batch scaling feature cannot be used with dataloaders passed directly to "
                "`.fit()`. Please disable the feature or incorporate the dataloader into the model."
            )
        with self._trial_settings(
            max_steps=steps_per_trial,
            auto_scale_batch_size=False,
            auto_lr_find=False,
            limit_train_batches=1.0,
        ):
            trainer.train_dataloader = None  # the first size is checked against no loader
            size, _ = self._adjust(model, batch_arg_name, value=init_val)
            if mode == "power":
                size = self._power_scaling(model, loaders, size, batch_arg_name, max_trials)
            else:
                size = self._binsearch_scaling(model, loaders, size, batch_arg_name, max_trials)
            _free_cuda_memory()
        log.info(
            "Finished batch size finder, will continue with full run using batch size %d", size
        )
        return size

    def _try(self, model: "Module", loaders: Any) -> bool:
        """One trial fit: True if it ran, False if it ran out of memory (other errors raise)."""
        _free_cuda_memory()
        try:
            self._trial_fit(model, loaders)
        except RuntimeError as exception:
            if not is_oom_error(exception):
                raise
            _free_cuda_memory()
            return False
        return True

    def _power_scaling(self, model, loaders, size: int, name: str, max_trials: int) -> int:
        for _ in range(max_trials):
            if not self._try(model, loaders):
                size, _ = self._adjust(model, name, factor=0.5, desc="failed")
                break
            size, changed = self._adjust(model, name, factor=2.0, desc="succeeded")
            if not changed:
                break
        return size

    def _binsearch_scaling(self, model, loaders, size: int, name: str, max_trials: int) -> int:
        low, high, count = 1, None, 0
        while True:
            if self._try(model, loaders):
                count += 1
                if count > max_trials:
                    break
                low = size
                if high is not None:
                    if high - low <= 1:
                        break
                    size, changed = self._adjust(model, name, value=(high + low) // 2)
                else:
                    size, changed = self._adjust(model, name, factor=2.0, desc="succeeded")
                if not changed:
                    break
            else:
                high = size
                size, _ = self._adjust(model, name, value=(high + low) // 2, desc="failed")
                if high - low <= 1:
                    break
        return size

    def _adjust(
        self,
        model: "Module",
        name: str,
        factor: float = 1.0,
        value: Optional[int] = None,
        desc: Optional[str] = None,
    ) -> Tuple[int, bool]:
        """Set the batch size to ``value`` or the current one times ``factor``; as Lightning, a
        size above the last loader's number of batches is capped at its dataset's length."""
        current = _get_attribute(model, name)
        size = value if value is not None else int(current * factor)
        if desc:
            log.info("Batch size %s %s, trying batch size %s", current, desc, size)
        loader = self.trainer.train_dataloader
        length = _length(loader)
        if length is not None and size > length:
            size = min(size, len(loader.dataset))
        _set_attribute(model, name, size)
        return size, size != current


def _reset_progress(trainer: "Trainer") -> None:
    trainer.current_epoch = trainer.global_step = trainer._batches_that_stepped = 0
    trainer._loop_state = {"epoch": 0, "batches_done": 0, "epoch_finished": True}


def _length(loader: Any) -> Optional[int]:
    if loader is None:
        return None
    try:
        return len(loader)
    except (TypeError, NotImplementedError):
        return None


def _lr_attribute(trainer: "Trainer", model: "Module") -> str:
    """The attribute ``lr_find`` updates: the name ``auto_lr_find`` gives, else ``lr`` or
    ``learning_rate``, on the model, its hparams or the datamodule."""
    if isinstance(trainer.auto_lr_find, str):
        if not _attribute_holders(model, trainer.auto_lr_find):
            raise MisconfigurationException(
                f"`auto_lr_find` was set to {trainer.auto_lr_find}, however could not find this "
                "as a field in `model` or `model.hparams`."
            )
        return trainer.auto_lr_find
    for name in ("lr", "learning_rate"):
        if _attribute_holders(model, name):
            return name
    raise MisconfigurationException(
        "When `auto_lr_find=True`, either `model` or `model.hparams` should have one of these "
        "fields: ('lr', 'learning_rate') overridden."
    )
