"""``Trainer``: Lightning 1.6's Trainer (constructor, ``fit``/``validate``/``test``/``predict``,
hook order, checkpoints, resume), running on any DataLoader."""

from __future__ import annotations

import inspect
import numbers
import os
import time
import warnings
from argparse import ArgumentParser, Namespace
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Union, cast

import torch

from conveyor.training import argparse as conveyor_argparse
from conveyor.training.checkpoint import ModelCheckpoint
from conveyor.training.checkpoint_connector import CheckpointConnector
from conveyor.training.checkpoint_io import load_checkpoint
from conveyor.training.combined_loader import CombinedLoader
from conveyor.training.configuration import (
    defaults_from_env_vars,
    is_overridden,
    validate_accumulation,
)
from conveyor.training.datamodule import DataModule
from conveyor.training.devices import resolve_devices
from conveyor.training.distributed import DDPStrategy
from conveyor.training.errors import MisconfigurationException
from conveyor.training.evaluation_loop import EvaluationLoop
from conveyor.training.fit_loop import FitLoop
from conveyor.training.grads import validate_norm_type
from conveyor.training.hooks import Callback, DataHooks
from conveyor.training.limits import validate_limit
from conveyor.training.logger_connector import LoggerConnector
from conveyor.training.loggers import (
    CSVLogger,
    Logger,
    TensorBoardLogger,
    tensorboard_available,
)
from conveyor.training.module import Module
from conveyor.training.optimizers import LRSchedulerConfig
from conveyor.training.overfit import validate_overfit_batches
from conveyor.training.precision import PrecisionPlugin, canonical_precision
from conveyor.training.profiler import Profiler, profiling, resolve_profiler
from conveyor.training.progress import ProgressBar, ThroughputMeter
from conveyor.training.results import ResultCollection
from conveyor.training.spawn import spawn_run
from conveyor.training.states import TrainerState, track_state
from conveyor.training.timer import Timer, parse_duration
from conveyor.training.tuner import Tuner, validate_tuner_flags


def _check_unsupported(tpu_cores, ipus, plugins, amp_backend, amp_level) -> None:
    """Lightning 1.6 arguments for hardware or back ends conveyor does not drive: a clear error
    rather than a run that silently ignores them."""
    if tpu_cores is not None:
        raise MisconfigurationException(
            f"tpu_cores={tpu_cores!r}: TPUs are not supported by conveyor; use accelerator='cpu' or 'gpu'"
        )
    if ipus is not None:
        raise MisconfigurationException(
            f"ipus={ipus!r}: IPUs are not supported by conveyor; use accelerator='cpu' or 'gpu'"
        )
    if plugins is not None and plugins != []:
        raise MisconfigurationException(
            f"plugins={plugins!r}: conveyor has no plugin system; precision and strategy are "
            "chosen with `precision=` and `strategy=`"
        )
    if amp_backend not in ("native", "apex"):
        raise MisconfigurationException(
            f"You have asked for `amp_backend={amp_backend!r}`, which is not one of 'native', 'apex'."
        )
    if amp_backend == "apex":
        raise MisconfigurationException(
            "You have asked for Apex AMP, which conveyor does not drive: use "
            "`precision=16` (torch.autocast, Lightning's native backend)."
        )
    if amp_level is not None:
        raise MisconfigurationException(
            f"You have asked for `amp_level={amp_level!r}` but it's only supported with "
            "`amp_backend='apex'`."
        )


def _check_not_implemented(**given) -> None:
    """Lightning 1.6 features conveyor does not have: their defaults are accepted (so a ported
    script's explicit defaults run), anything else raises instead of being silently ignored."""
    for name, (value, default) in given.items():
        if value != default or type(value) is bool and type(default) is not bool:
            raise MisconfigurationException(
                f"Trainer({name}={value!r}) is not supported by conveyor (only the default "
                f"{default!r}); see the README's list of differences from Lightning 1.6"
            )


class Trainer(FitLoop, EvaluationLoop, LoggerConnector, CheckpointConnector):
    """Runs a :class:`conveyor.Module`'s training, validation, test and prediction loops."""

    @defaults_from_env_vars
    def __init__(
        self,
        logger: Union[Logger, Iterable[Logger], bool] = True,
        enable_checkpointing: bool = True,
        callbacks: Optional[Union[List[Callback], Callback]] = None,
        default_root_dir: Optional[str] = None,
        gradient_clip_val: Optional[Union[int, float]] = None,
        gradient_clip_algorithm: Optional[str] = None,
        num_nodes: int = 1,
        gpus: Optional[Union[List[int], str, int]] = None,
        enable_progress_bar: bool = True,
        check_val_every_n_epoch: int = 1,
        fast_dev_run: Union[int, bool] = False,
        accumulate_grad_batches: Optional[Union[int, Dict[int, int]]] = None,
        max_epochs: Optional[int] = None,
        min_epochs: Optional[int] = None,
        max_steps: int = -1,
        min_steps: Optional[int] = None,
        limit_train_batches: Optional[Union[int, float]] = None,
        limit_val_batches: Optional[Union[int, float]] = None,
        limit_test_batches: Optional[Union[int, float]] = None,
        limit_predict_batches: Optional[Union[int, float]] = None,
        log_every_n_steps: int = 50,
        accelerator: Optional[str] = None,
        strategy: Optional[str] = None,
        devices: Optional[Union[List[int], str, int]] = None,
        precision: Union[int, str] = 32,
        num_sanity_val_steps: int = 2,
        resume_from_checkpoint: Optional[Union[Path, str]] = None,
        deterministic: Optional[bool] = None,
        benchmark: Optional[bool] = None,
        num_processes: Optional[int] = None,
        val_check_interval: Union[int, float] = 1.0,
        profiler: Optional[Union[str, Profiler]] = None,
        reload_dataloaders_every_n_epochs: int = 0,
        max_time: Optional[Union[str, timedelta, Dict[str, int]]] = None,
        enable_model_summary: bool = True,
        detect_anomaly: bool = False,
        sync_batchnorm: bool = False,
        replace_sampler_ddp: bool = True,
        move_metrics_to_cpu: bool = False,
        auto_select_gpus: bool = False,
        tpu_cores: Optional[Union[List[int], str, int]] = None,
        ipus: Optional[int] = None,
        plugins: Optional[Any] = None,
        amp_backend: str = "native",
        amp_level: Optional[str] = None,
        terminate_on_nan: Optional[bool] = None,
        checkpoint_callback: Optional[bool] = None,
        progress_bar_refresh_rate: Optional[int] = None,
        weights_summary: Optional[str] = "top",
        overfit_batches: Union[int, float] = 0.0,
        track_grad_norm: Union[int, float, str] = -1,
        auto_lr_find: Union[bool, str] = False,
        auto_scale_batch_size: Union[str, bool] = False,
        multiple_trainloader_mode: str = "max_size_cycle",
        stochastic_weight_avg: bool = False,
    ) -> None:
        """Configure a training run.

        Args:
            logger: True for the default loggers (CSV, plus TensorBoard when installed), False for
                none, or Logger instance(s).
            enable_checkpointing: add a default ModelCheckpoint when none is given.
            callbacks: Callback instances.
            default_root_dir: where logs and checkpoints go when no logger or callback says
                otherwise (default: the current directory).
            gradient_clip_val: clip gradients at this value (None or 0: no clipping).
            gradient_clip_algorithm: "norm" (default) or "value".
            num_nodes: number of machines (only 1 is supported).
            gpus: GPUs to use: a count, -1 for all, or a comma list such as "0,1".
            enable_progress_bar: show the tqdm progress bar.
            check_val_every_n_epoch: validate after every N training epochs.
            fast_dev_run: run N (True: 1) batches of each loader once, without logging or
                checkpoints, to find bugs quickly.
            accumulate_grad_batches: step the optimizer every N batches (or {epoch: N}).
            max_epochs: stop after this many epochs (None: 1000 unless max_steps is set).
            min_epochs: train at least this many epochs even if asked to stop.
            max_steps: stop after this many optimizer steps (-1: no limit); an epoch it cuts
                short validates only if it stops on a validation batch (Lightning 1.6).
            min_steps: train at least this many optimizer steps even if asked to stop.
            limit_train_batches: fraction (float) or number (int) of training batches per epoch.
            limit_val_batches: fraction (float) or number (int) of validation batches.
            limit_test_batches: fraction (float) or number (int) of test batches.
            limit_predict_batches: fraction (float) or number (int) of prediction batches.
            log_every_n_steps: how often to send step metrics to the logger.
            accelerator: "cpu" (default), "gpu"/"cuda" or "auto".
            strategy: None or "ddp" (torch.distributed, one process per device).
            devices: number of devices (processes for ddp on the CPU) or GPU indices.
            precision: 32, 16, 64 or "bf16" (also "32-true", "16-mixed", "bf16-mixed", "64-true").
            num_sanity_val_steps: validation batches to run before training (-1: all).
            resume_from_checkpoint: path or http(s) URL of a checkpoint to resume from.
            deterministic: make torch use deterministic algorithms.
            benchmark: set torch.backends.cudnn.benchmark.
            num_processes: processes for ddp on the CPU (Lightning 1.x's name for ``devices``).
            val_check_interval: validate every this fraction of the training epoch (float) or
                every this many training batches (int): after each k-th batch, k =
                int(fraction x batches), so 0.3 of 10 batches validates after 3, 6 and 9.
            profiler: "simple" (per-hook timing table), "advanced" (cProfile per hook) or a
                ``conveyor.training.profiler.Profiler``; the report is printed when the stage ends.
            reload_dataloaders_every_n_epochs: call ``train_dataloader()``/``val_dataloader()``
                again every N epochs (0: once per ``fit``).
            max_time: stop training after this long: "DD:HH:MM:SS", a timedelta or a dict such
                as {"hours": 1} (adds a ``Timer`` callback).
            enable_model_summary: print the model's summary table when ``fit`` starts.
            detect_anomaly: run ``fit`` under ``torch.autograd.set_detect_anomaly``.
            sync_batchnorm: convert BatchNorm layers to SyncBatchNorm under ddp.
            replace_sampler_ddp: shard the loaders over the ranks (False: the loaders shard
                themselves).
            move_metrics_to_cpu: accepted; logged metrics are already kept on the CPU.
            auto_select_gpus: accepted (GPUs are taken in order).
            tpu_cores: TPUs are not supported: any value raises.
            ipus: IPUs are not supported: any value raises.
            plugins: not supported: any value but None raises.
            amp_backend: "native" (torch.autocast); "apex" raises unless apex is installed,
                and conveyor does not drive apex.
            amp_level: apex's optimisation level: raises, as with Lightning's native backend.
            terminate_on_nan: deprecated in Lightning 1.5: raise ValueError when the loss or a
                parameter becomes nan or inf (use ``detect_anomaly``).
            checkpoint_callback: deprecated in Lightning 1.5: use ``enable_checkpointing``.
            progress_bar_refresh_rate: deprecated in Lightning 1.5: 0 hides the progress bar.
            weights_summary: deprecated in Lightning 1.5: None hides the model summary.
            overfit_batches: train on this fraction (float) or number (int) of the training
                batches every epoch, in order (shuffling is turned off with a warning), without
                validation, to check that the model can overfit them.
            track_grad_norm: -1 (off), or log the p-norm (a number or "inf") of each
                parameter's gradient and of all of them as ``grad_{p}_norm/<name>`` and
                ``grad_{p}_norm_total``, after backward and before clipping.
            auto_lr_find: ``trainer.tune(model)`` runs the learning-rate range test and sets the
                model's ``lr`` or ``learning_rate`` (or the attribute this string names) to the
                suggested rate.
            auto_scale_batch_size: ``trainer.tune(model)`` finds the largest batch size that
                fits in memory: "power" (True) doubles it until it fails, "binsearch" then
                bisects; it is set on the ``batch_size`` of the model, its hparams or the
                datamodule.
            multiple_trainloader_mode: how several train loaders (a list or dict) combine:
                "max_size_cycle" (as many steps as the longest, restarting the shorter ones) or
                "min_size" (stop with the shortest).
            stochastic_weight_avg: not supported: True raises.
        """
        _check_not_implemented(
            stochastic_weight_avg=(stochastic_weight_avg, False),
        )
        _check_unsupported(tpu_cores, ipus, plugins, amp_backend, amp_level)
        if checkpoint_callback is not None:
            warnings.warn(
                f"Setting `Trainer(checkpoint_callback={checkpoint_callback})` is deprecated in v1.5 "
                "and will be removed in v1.7. Please consider using "
                f"`Trainer(enable_checkpointing={checkpoint_callback})`.",
                DeprecationWarning,
                stacklevel=3,
            )
            enable_checkpointing = checkpoint_callback
        if progress_bar_refresh_rate is not None:
            warnings.warn(
                "Setting `Trainer(progress_bar_refresh_rate=...)` is deprecated in v1.5 and will be "
                "removed in v1.7. Please pass `ProgressBar(refresh_rate=...)` to callbacks instead.",
                DeprecationWarning,
                stacklevel=3,
            )
            if progress_bar_refresh_rate == 0:
                enable_progress_bar = False
        if weights_summary != "top":
            warnings.warn(
                "Setting `Trainer(weights_summary=...)` is deprecated in v1.5 and will be removed in "
                "v1.7. Please use `Trainer(enable_model_summary=...)` instead.",
                DeprecationWarning,
                stacklevel=3,
            )
            if weights_summary is None:
                enable_model_summary = False
        if terminate_on_nan is not None:
            warnings.warn(
                "Trainer argument `terminate_on_nan` was deprecated in v1.5 and will be removed in "
                "1.7. Please use `Trainer(detect_anomaly=True)` instead.",
                DeprecationWarning,
                stacklevel=3,
            )
            if not isinstance(terminate_on_nan, bool):
                raise TypeError(f"`terminate_on_nan` should be a bool, got {terminate_on_nan}.")
        self.terminate_on_nan = bool(terminate_on_nan)
        self.enable_model_summary = enable_model_summary
        self.detect_anomaly = detect_anomaly
        self.sync_batchnorm = sync_batchnorm
        self.replace_sampler_ddp = replace_sampler_ddp
        self.move_metrics_to_cpu = move_metrics_to_cpu
        self.max_time = parse_duration(max_time)
        if isinstance(val_check_interval, bool) or not isinstance(val_check_interval, (int, float)):
            raise MisconfigurationException(
                f"`val_check_interval` should be an int or a float, got {val_check_interval!r}."
            )
        if isinstance(val_check_interval, float) and not 0.0 <= val_check_interval <= 1.0:
            raise MisconfigurationException(
                f"`val_check_interval` must lie in the range [0.0, 1.0], but got {val_check_interval:.3f}."
            )
        if isinstance(val_check_interval, int) and val_check_interval < 1:
            raise MisconfigurationException(
                f"`val_check_interval` ({val_check_interval}) must be a positive number of batches."
            )
        self.val_check_interval = val_check_interval
        self.profiler = resolve_profiler(profiler)
        if (
            isinstance(reload_dataloaders_every_n_epochs, bool)
            or not isinstance(reload_dataloaders_every_n_epochs, int)
            or reload_dataloaders_every_n_epochs < 0
        ):
            raise MisconfigurationException(
                "`reload_dataloaders_every_n_epochs` should be an int >= 0, got "
                f"{reload_dataloaders_every_n_epochs!r}."
            )
        self.reload_dataloaders_every_n_epochs = reload_dataloaders_every_n_epochs
        self.val_check_batch: Union[int, float] = float("inf")
        if num_processes is not None and devices is None and gpus is None:
            devices = num_processes
        if num_nodes != 1:
            raise MisconfigurationException(
                "num_nodes > 1 is not supported: launch with torchrun per node instead"
            )
        self.precision = canonical_precision(precision)
        if gradient_clip_val is not None and (
            isinstance(gradient_clip_val, bool) or not isinstance(gradient_clip_val, numbers.Number)
        ):
            raise TypeError(
                f"Gradient Clipping Value can be an int or a float, got {type(gradient_clip_val).__name__}."
            )
        if gradient_clip_algorithm is not None and gradient_clip_algorithm not in ("norm", "value"):
            raise MisconfigurationException(
                f"`gradient_clip_algorithm` {gradient_clip_algorithm!r} is invalid. Allowed algorithms: ['value', 'norm']."
            )
        self.gradient_clip_val = gradient_clip_val
        self.gradient_clip_algorithm = gradient_clip_algorithm
        if (
            isinstance(fast_dev_run, int)
            and not isinstance(fast_dev_run, bool)
            and fast_dev_run < 0
        ):
            raise MisconfigurationException(
                f"fast_dev_run={fast_dev_run} is not a valid configuration. It should be >= 0."
            )
        self.fast_dev_run = int(fast_dev_run) if fast_dev_run is not False else 0
        if check_val_every_n_epoch is not None and (
            not isinstance(check_val_every_n_epoch, int) or check_val_every_n_epoch < 1
        ):
            raise MisconfigurationException(
                f"check_val_every_n_epoch={check_val_every_n_epoch!r}: must be an int >= 1"
            )
        self.check_val_every_n_epoch = check_val_every_n_epoch or 1
        self.accumulate_grad_batches = validate_accumulation(accumulate_grad_batches)
        if max_steps is None:
            max_steps = -1
        if max_steps < -1:
            raise MisconfigurationException(f"max_steps={max_steps}: must be -1 (no limit) or >= 0")
        if max_epochs is None:
            if max_steps == -1:
                if not self.fast_dev_run:
                    warnings.warn(
                        "`max_epochs` was not set. Setting it to 1000 epochs. To train without an epoch "
                        "limit, set `max_epochs=-1`.",
                        stacklevel=3,
                    )
                max_epochs = 1000
            else:
                max_epochs = -1
        self.max_epochs = max_epochs
        self.min_epochs = min_epochs or 0
        self.max_steps = max_steps
        self.min_steps = min_steps or 0
        self.limit_train_batches = validate_limit(limit_train_batches, "train")
        self.limit_val_batches = validate_limit(limit_val_batches, "val")
        self.limit_test_batches = validate_limit(limit_test_batches, "test")
        self.limit_predict_batches = validate_limit(limit_predict_batches, "predict")
        if not isinstance(log_every_n_steps, int) or log_every_n_steps < 0:
            raise MisconfigurationException(
                f"log_every_n_steps={log_every_n_steps!r}: must be an int >= 0"
            )
        self.log_every_n_steps = log_every_n_steps
        if not isinstance(num_sanity_val_steps, int) or num_sanity_val_steps < -1:
            raise MisconfigurationException(
                f"num_sanity_val_steps={num_sanity_val_steps!r}: must be -1 or >= 0"
            )
        self.num_sanity_val_steps = num_sanity_val_steps
        self.enable_progress_bar = enable_progress_bar
        self.enable_checkpointing = enable_checkpointing
        self.resume_from_checkpoint = resume_from_checkpoint
        self.default_root_dir = (
            os.path.abspath(os.path.expanduser(str(default_root_dir)))
            if default_root_dir
            else os.getcwd()
        )

        if self.fast_dev_run:
            n = self.fast_dev_run
            self.limit_train_batches = self.limit_val_batches = self.limit_test_batches = n
            self.limit_predict_batches = n
            self.max_epochs, self.max_steps, self.num_sanity_val_steps = 1, n, 0
            self.check_val_every_n_epoch = 1
            logger = False
            self.enable_checkpointing = False
        validate_tuner_flags(auto_lr_find, auto_scale_batch_size)
        self.auto_lr_find = auto_lr_find
        self.auto_scale_batch_size = auto_scale_batch_size
        self.tuner = Tuner(self)
        self._tuning_optimizers: Optional[Callable[[Any], None]] = None  # lr_find's optimizer
        self.track_grad_norm = validate_norm_type(track_grad_norm)
        if multiple_trainloader_mode not in CombinedLoader.SUPPORTED_MODES:
            raise MisconfigurationException(
                f"multiple_trainloader_mode={multiple_trainloader_mode!r}: choose one of "
                f"{list(CombinedLoader.SUPPORTED_MODES)}"
            )
        self.multiple_trainloader_mode = multiple_trainloader_mode
        self.overfit_batches = validate_overfit_batches(overfit_batches)
        if self.overfit_batches > 0:
            # Lightning 1.6: train on these batches only, validation off (1.5 validated on them)
            self.limit_train_batches = self.overfit_batches
            self.limit_val_batches = 0

        # devices, strategy
        self.device_type, device_ids = resolve_devices(accelerator, devices, gpus)
        if strategy not in (None, "ddp", "ddp_spawn", "dp", "single_device"):
            raise MisconfigurationException(
                f"strategy={strategy!r}: conveyor supports None or 'ddp'"
            )
        num_processes = len(device_ids) if isinstance(device_ids, list) else device_ids
        self.num_devices: int = num_processes  # per node, Lightning 1.6's Trainer.num_devices
        if strategy is None and num_processes > 1:
            strategy = "ddp_spawn"  # Lightning 1.6's choice for several devices
        self.strategy: Optional[DDPStrategy] = None
        if strategy in ("ddp", "ddp_spawn") and (num_processes > 1 or "WORLD_SIZE" in os.environ):
            if "WORLD_SIZE" in os.environ:
                num_processes = int(os.environ["WORLD_SIZE"])
            self.strategy = DDPStrategy(
                num_processes, self.device_type, spawn=strategy == "ddp_spawn"
            )
        elif num_processes > 1:
            raise MisconfigurationException(
                f"devices={num_processes} needs strategy='ddp' or 'ddp_spawn'"
            )
        self._device_ids = device_ids if isinstance(device_ids, list) else None

        if deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
        self.deterministic = deterministic
        if benchmark is not None:
            torch.backends.cudnn.benchmark = bool(benchmark)

        # loggers
        if logger is True:
            self._loggers: List[Logger] = [CSVLogger(self.default_root_dir)]
            self._default_logger = True
        elif logger in (False, None):
            self._loggers, self._default_logger = [], False
        elif isinstance(logger, Logger):
            self._loggers, self._default_logger = [logger], False
        else:
            # True, False and None were handled above
            self._loggers, self._default_logger = list(cast(Iterable[Logger], logger)), False

        # callbacks
        callbacks = (
            []
            if callbacks is None
            else ([callbacks] if isinstance(callbacks, Callback) else list(callbacks))
        )
        if self.enable_checkpointing and not any(isinstance(c, ModelCheckpoint) for c in callbacks):
            callbacks.append(ModelCheckpoint())
        elif (
            not self.enable_checkpointing
            and any(isinstance(c, ModelCheckpoint) for c in callbacks)
            and not self.fast_dev_run
        ):
            raise MisconfigurationException(
                "Trainer was configured with `enable_checkpointing=False` but found "
                "`ModelCheckpoint` in callbacks list."
            )
        if self.max_time is not None and not any(isinstance(c, Timer) for c in callbacks):
            callbacks.append(Timer(self.max_time))
        if enable_progress_bar and not any(isinstance(c, ProgressBar) for c in callbacks):
            callbacks.append(ProgressBar())
        self.callbacks: List[Callback] = callbacks

        # state
        self.lightning_module: Optional[Module] = None
        self.datamodule: Optional[DataModule] = None
        self.optimizers: List[torch.optim.Optimizer] = []
        self.lr_scheduler_configs: List[LRSchedulerConfig] = []
        self.optimizer_frequencies: List[int] = []
        self.current_epoch = 0
        self.global_step = 0
        self.state_stage: Optional[str] = None
        self.state = TrainerState()
        self.sanity_checking = False
        self.should_stop = False
        self.callback_metrics: Dict[str, Any] = {}
        self.logged_metrics: Dict[str, Any] = {}
        self.progress_bar_metrics: Dict[str, Any] = {}
        self.num_training_batches: Union[int, float] = 0
        self.num_val_batches: List[Union[int, float]] = []
        self.num_test_batches: List[Union[int, float]] = []
        self.num_predict_batches: List[Union[int, float]] = []
        self.train_dataloader = None
        self.val_dataloaders: List[Any] = []
        self.test_dataloaders: List[Any] = []
        self.predict_dataloaders: List[Any] = []
        self.throughput = ThroughputMeter()
        self._results = ResultCollection()
        self._last_loss: Optional[float] = None
        self._stepped_this_batch = False
        self._batches_that_stepped = 0
        self._loop_state: Dict[str, Any] = {"epoch": 0, "batches_done": 0, "epoch_finished": True}
        self._resume_state: Optional[Dict[str, Any]] = None
        self._ckpt_path: Optional[str] = None
        self.precision_plugin: Optional[PrecisionPlugin] = None

    @classmethod
    def default_attributes(cls) -> Dict[str, Any]:
        """Every constructor argument with its default, as Lightning's ``default_attributes``."""
        return {k: v.default for k, v in inspect.signature(cls).parameters.items()}

    # ----------------------------------------------------------------------------------------
    # argparse (Lightning 1.x classmethods)
    @classmethod
    def add_argparse_args(cls, parent_parser: ArgumentParser, **kwargs: Any) -> ArgumentParser:
        return conveyor_argparse.add_argparse_args(cls, parent_parser, **kwargs)

    @classmethod
    def from_argparse_args(cls, args: Union[Namespace, ArgumentParser], **kwargs: Any) -> "Trainer":
        return conveyor_argparse.from_argparse_args(cls, args, **kwargs)

    @classmethod
    def parse_argparser(cls, arg_parser: Union[ArgumentParser, Namespace]) -> Namespace:
        return conveyor_argparse.parse_argparser(cls, arg_parser)

    @classmethod
    def get_init_arguments_and_types(cls):
        return conveyor_argparse.get_init_arguments_and_types(cls)

    # ----------------------------------------------------------------------------------------
    # properties
    @property
    def logger(self) -> Optional[Logger]:
        return self._loggers[0] if self._loggers else None

    @property
    def loggers(self) -> List[Logger]:
        return self._loggers

    @property
    def log_dir(self) -> str:
        return self.logger.log_dir if self.logger is not None else self.default_root_dir

    @property
    def checkpoint_callbacks(self) -> List[ModelCheckpoint]:
        return [c for c in self.callbacks if isinstance(c, ModelCheckpoint)]

    @property
    def progress_bar_callback(self) -> Optional[ProgressBar]:
        return next((c for c in self.callbacks if isinstance(c, ProgressBar)), None)

    @property
    def checkpoint_callback(self) -> Optional[ModelCheckpoint]:
        found = self.checkpoint_callbacks
        return found[0] if found else None

    @property
    def global_rank(self) -> int:
        return self.strategy.global_rank if self.strategy else 0

    @property
    def local_rank(self) -> int:
        return self.strategy.local_rank if self.strategy else 0

    @property
    def world_size(self) -> int:
        return self.strategy.world_size if self.strategy else 1

    @property
    def is_global_zero(self) -> bool:
        return self.global_rank == 0

    @property
    def root_device(self) -> torch.device:
        if self.device_type == "cuda":
            index = self._device_ids[self.local_rank] if self._device_ids else self.local_rank
            return torch.device("cuda", index)
        return torch.device("cpu")

    @property
    def model(self) -> Optional[Module]:
        return self.lightning_module

    @property
    def ckpt_path(self) -> Optional[str]:
        return self._ckpt_path

    def _default_checkpoint_dir(self) -> str:
        if self.logger is not None:
            return os.path.join(self.logger.log_dir, "checkpoints")
        return os.path.join(self.default_root_dir, "checkpoints")

    # ----------------------------------------------------------------------------------------
    # hook calling
    def _call_callbacks(self, hook: str, *args: Any) -> None:
        module = self.lightning_module
        for callback in self.callbacks:
            with profiling(self.profiler, f"[Callback]{callback.state_key}.{hook}"):
                getattr(callback, hook)(self, module, *args)

    def _call_module(self, hook: str, *args: Any, **kwargs: Any) -> Any:
        module = self._attached_module
        function = getattr(module, hook)
        if function is None:  # a hook set to None is disabled, as in Lightning
            return None
        previous, module._current_fx = module._current_fx, hook
        try:
            with profiling(self.profiler, f"[LightningModule]{type(module).__name__}.{hook}"):
                return function(*args, **kwargs)
        finally:
            module._current_fx = previous

    # ----------------------------------------------------------------------------------------
    # entry points
    def fit(
        self,
        model: Module,
        train_dataloaders: Any = None,
        val_dataloaders: Any = None,
        datamodule: Optional[DataModule] = None,
        ckpt_path: Optional[str] = None,
    ) -> None:
        """Train ``model``.

        Args:
            model: the Module to train.
            train_dataloaders: a DataLoader (or a DataModule, as Lightning accepts).
            val_dataloaders: a DataLoader or a list of them.
            datamodule: a DataModule providing the loaders.
            ckpt_path: checkpoint path or http(s) URL to resume from (default:
                ``resume_from_checkpoint``).
        """
        if isinstance(train_dataloaders, DataModule):
            if datamodule is not None:
                raise MisconfigurationException(
                    "fit() got a DataModule both positionally and as `datamodule`"
                )
            datamodule, train_dataloaders = train_dataloaders, None
        if (
            train_dataloaders is not None or val_dataloaders is not None
        ) and datamodule is not None:
            raise MisconfigurationException(
                "You cannot pass `train_dataloader` or `val_dataloaders` to `trainer.fit(datamodule=...)`"
            )
        self._check_module(model)
        path = ckpt_path if ckpt_path is not None else self.resume_from_checkpoint
        self._run(model, "fit", datamodule, path, train=train_dataloaders, val=val_dataloaders)

    def tune(
        self,
        model: Module,
        train_dataloaders: Any = None,
        val_dataloaders: Any = None,
        datamodule: Optional[DataModule] = None,
        scale_batch_size_kwargs: Optional[Dict[str, Any]] = None,
        lr_find_kwargs: Optional[Dict[str, Any]] = None,
    ) -> Dict[str, Any]:
        """Run the tuners the constructor asked for (``auto_scale_batch_size`` first, then
        ``auto_lr_find``) and return their results: ``{"scale_batch_size": int, "lr_find":
        LRFinder}`` for those that ran. The model keeps its weights; the tuned attributes
        change. The ``*_kwargs`` go to ``trainer.tuner.scale_batch_size`` / ``lr_find``."""
        return self.tuner.tune(
            model,
            train_dataloaders,
            val_dataloaders,
            datamodule,
            scale_batch_size_kwargs,
            lr_find_kwargs,
        )

    def validate(
        self,
        model: Optional[Module] = None,
        dataloaders: Any = None,
        ckpt_path: Optional[str] = None,
        verbose: bool = True,
        datamodule: Optional[DataModule] = None,
    ) -> List[Dict[str, float]]:
        """Run one validation pass; returns one metrics dict per loader."""
        return self._evaluate("validate", model, dataloaders, ckpt_path, verbose, datamodule)

    def test(
        self,
        model: Optional[Module] = None,
        dataloaders: Any = None,
        ckpt_path: Optional[str] = None,
        verbose: bool = True,
        datamodule: Optional[DataModule] = None,
    ) -> List[Dict[str, float]]:
        """Run one test pass; returns one metrics dict per loader."""
        return self._evaluate("test", model, dataloaders, ckpt_path, verbose, datamodule)

    def predict(
        self,
        model: Optional[Module] = None,
        dataloaders: Any = None,
        datamodule: Optional[DataModule] = None,
        return_predictions: Optional[bool] = None,
        ckpt_path: Optional[str] = None,
    ) -> Optional[List[Any]]:
        """Run ``predict_step`` over the loaders; returns the predictions (a list per loader
        when there are several)."""
        if isinstance(dataloaders, DataModule):
            datamodule, dataloaders = dataloaders, None
        if dataloaders is not None and datamodule is not None:
            raise MisconfigurationException(
                "You cannot pass both `trainer.predict(dataloaders=..., datamodule=...)`"
            )
        model = self._resolve_eval_model(model, "predict")
        ckpt_path = self._resolve_eval_ckpt(model, ckpt_path)
        self._return_predictions = True if return_predictions is None else return_predictions
        return self._run(model, "predict", datamodule, ckpt_path, predict=dataloaders)

    def _evaluate(self, stage, model, dataloaders, ckpt_path, verbose, datamodule):
        if isinstance(dataloaders, DataModule):
            datamodule, dataloaders = dataloaders, None
        if dataloaders is not None and datamodule is not None:
            raise MisconfigurationException(
                f"You cannot pass both `trainer.{stage}(dataloaders=..., datamodule=...)`"
            )
        model = self._resolve_eval_model(model, stage)
        ckpt_path = self._resolve_eval_ckpt(model, ckpt_path)
        self._verbose = verbose
        key = "val" if stage == "validate" else "test"
        return self._run(model, stage, datamodule, ckpt_path, **{key: dataloaders})

    def _resolve_eval_model(self, model, stage):
        if model is None:
            if self.lightning_module is None:
                raise MisconfigurationException(
                    f"`model` must be provided to `trainer.{stage}()` when it hasn't "
                    "been passed in a previous run"
                )
            model = self.lightning_module
            self._eval_without_model = True
        else:
            self._check_module(model)
            self._eval_without_model = False
        return model

    def _resolve_eval_ckpt(self, model, ckpt_path):
        if ckpt_path == "best" or (
            ckpt_path is None
            and self._eval_without_model
            and self.checkpoint_callback
            and self.checkpoint_callback.best_model_path
        ):
            callback = self.checkpoint_callback
            if callback is None or not callback.best_model_path:
                raise MisconfigurationException(
                    '`ckpt_path="best"` is set but `ModelCheckpoint` has not saved a best checkpoint'
                )
            return callback.best_model_path
        if ckpt_path == "last":
            callback = self.checkpoint_callback
            if callback is None or not callback.last_model_path:
                raise MisconfigurationException(
                    '`ckpt_path="last"` is set but no last checkpoint was saved'
                )
            return callback.last_model_path
        return ckpt_path

    @staticmethod
    def _check_module(model):
        if not isinstance(model, Module):
            raise TypeError(
                f"`model` must be a `conveyor.Module`, got `{type(model).__qualname__}`"
            )

    # ----------------------------------------------------------------------------------------
    # the run
    @track_state
    def _run(
        self,
        model: Module,
        stage: str,
        datamodule: Optional[DataModule],
        ckpt_path: Optional[Union[str, Path]],
        **loaders: Any,
    ):
        if self.strategy is not None and self.strategy.must_spawn:
            self.lightning_module, self.datamodule = model, datamodule
            model.trainer = self
            return spawn_run(
                self,
                model,
                stage,
                datamodule,
                ckpt_path,
                loaders,
                self.strategy.num_processes,
                self.strategy.timeout,
            )
        self.state_stage = stage
        self.should_stop = False
        self.lightning_module = model
        model.trainer = self
        self.datamodule = datamodule
        if datamodule is not None:
            datamodule.trainer = self
        self._ckpt_path = str(ckpt_path) if ckpt_path is not None else None
        if self.strategy is not None:
            self.strategy.setup_environment()
            self._results.reduce = self.strategy.reduce
            if self.logger is not None:
                version = self.strategy.broadcast_object(self.logger.version)
                for logger in self._loggers:
                    logger._version = version
        if (
            self._default_logger
            and tensorboard_available()
            and len(self._loggers) == 1
            and isinstance(self._loggers[0], CSVLogger)
        ):
            self._loggers.append(
                TensorBoardLogger(self.default_root_dir, version=self._loggers[0].version)
            )
        for callback in model.configure_callbacks() or []:
            self.callbacks = [c for c in self.callbacks if type(c) is not type(callback)] + [
                callback
            ]
        if self.sync_batchnorm and self.strategy is not None:
            torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)  # replaces the children in place
        model.to(self.root_device)
        self.precision_plugin = PrecisionPlugin(self.precision, self.root_device)
        self.precision_plugin.convert_module(model)
        failed = False
        try:
            # prepare_data: once per node (rank 0 here)
            if self.local_rank == 0:
                if datamodule is not None:
                    datamodule.prepare_data()
                model.prepare_data()
            if self.strategy is not None:
                self.strategy.barrier()
            if datamodule is not None:
                datamodule.setup(stage=stage)
            self._call_callbacks("setup", stage)
            self._call_module("setup", stage=stage)
            checkpoint = load_checkpoint(self._ckpt_path) if self._ckpt_path else None
            if checkpoint is not None:
                self._restore_model(checkpoint)
            if stage == "fit":
                with torch.autograd.set_detect_anomaly(self.detect_anomaly):
                    return self._run_fit(checkpoint, loaders.get("train"), loaders.get("val"))
            if stage in ("validate", "test"):
                return self._run_evaluation_stage(
                    stage, loaders.get("val" if stage == "validate" else "test")
                )
            return self._run_predict(loaders.get("predict"))
        except BaseException as exception:
            failed = True
            self._failed_at = time.time()  # ddp_spawn names the rank that failed first
            self._call_callbacks("on_exception", exception)
            for logger in self._loggers if self.is_global_zero else []:
                logger.finalize("failed")
            raise
        finally:
            self._teardown(stage, failed)

    def _teardown(self, stage: str, failed: bool = False) -> None:
        if self.datamodule is not None:
            self.datamodule.teardown(stage=stage)
        self._call_callbacks("teardown", stage)
        self._call_module("teardown", stage=stage)
        if self.profiler is not None and self.is_global_zero:
            self.profiler.describe(stage)
        self.state_stage = None
        if self.strategy is not None:
            self.strategy.teardown(failed)

    # -- loaders ----------------------------------------------------------------------------
    def _request_loader(self, name: str, given: Any) -> Any:
        if given is not None:
            return given
        for source in (self.datamodule, self.lightning_module):
            if source is not None and is_overridden(source, name, DataHooks):
                return getattr(source, name)()
        return None

    def _prepare_loader(self, loader: Any) -> Any:
        if self.strategy is not None and self.replace_sampler_ddp:
            return self.strategy.shard_loader(loader)
        return loader

    def _as_list(self, loaders: Any) -> List[Any]:
        if loaders is None:
            return []
        if isinstance(loaders, (list, tuple)):
            return [self._prepare_loader(loader) for loader in loaders]
        return [self._prepare_loader(loaders)]
