"""``Trainer``: Lightning 1.6's Trainer (constructor, ``fit``/``validate``/``test``/``predict``,
hook order, checkpoints, resume), running on any DataLoader."""

from __future__ import annotations

import functools
import inspect
import numbers
import os
import time
import warnings
from argparse import ArgumentParser, Namespace
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Union

import torch

from conveyor.training import argparse as conveyor_argparse
from conveyor.training.batch import batch_size_of
from conveyor.training.checkpoint import ModelCheckpoint
from conveyor.training.checkpoint_io import atomic_save, load_checkpoint
from conveyor.training.datamodule import DataModule
from conveyor.training.devices import resolve_devices
from conveyor.training.distributed import DDPStrategy
from conveyor.training.errors import MisconfigurationException
from conveyor.training.hooks import Callback, DataHooks
from conveyor.training.limits import num_batches, validate_limit
from conveyor.training.loggers import (
    CSVLogger,
    Logger,
    TensorBoardLogger,
    _plain,
    tensorboard_available,
)
from conveyor.training.module import Module
from conveyor.training.optimizers import LRSchedulerConfig, init_optimizers_and_schedulers
from conveyor.training.precision import PrecisionPlugin, canonical_precision
from conveyor.training.progress import ProgressBar, ThroughputMeter
from conveyor.training.results import ResultCollection
from conveyor.training.seed import capture_rng_states, restore_rng_states


def _defaults_from_env_vars(init):
    """Let ``CONVEYOR_TRAINER_<ARG>`` environment variables supply defaults (explicit wins)."""

    @functools.wraps(init)
    def insert_env_defaults(self, *args, **kwargs):
        cls = type(self)
        if args:
            names = [name for name, _, _ in conveyor_argparse.get_init_arguments_and_types(cls)]
            kwargs.update(dict(zip(names, args)))
        env = vars(conveyor_argparse.parse_env_variables(cls))
        return init(self, **{**env, **kwargs})

    return insert_env_defaults


def _overridden(obj: Any, name: str, base: type) -> bool:
    if name in getattr(obj, "__dict__", {}):  # set on the instance (DataModule.from_datasets)
        return True
    method = getattr(type(obj), name, None)
    return method is not None and method is not getattr(base, name, None)


class Trainer:
    """Runs a :class:`conveyor.Module`'s training, validation, test and prediction loops."""

    @_defaults_from_env_vars
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
            max_steps: stop after this many optimizer steps (-1: no limit).
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
        """
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
        self.accumulate_grad_batches = self._validate_accumulation(accumulate_grad_batches)
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

        # devices, strategy
        self.device_type, device_ids = resolve_devices(accelerator, devices, gpus)
        if strategy not in (None, "ddp", "ddp_spawn", "dp", "single_device"):
            raise MisconfigurationException(
                f"strategy={strategy!r}: conveyor supports None or 'ddp'"
            )
        num_processes = len(device_ids) if isinstance(device_ids, list) else device_ids
        self.strategy: Optional[DDPStrategy] = None
        if strategy in ("ddp", "ddp_spawn") and (num_processes > 1 or "WORLD_SIZE" in os.environ):
            if "WORLD_SIZE" in os.environ:
                num_processes = int(os.environ["WORLD_SIZE"])
            self.strategy = DDPStrategy(num_processes, self.device_type)
        elif num_processes > 1:
            raise MisconfigurationException(f"devices={num_processes} needs strategy='ddp'")
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
            self._loggers, self._default_logger = list(logger), False

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

    @staticmethod
    def _validate_accumulation(value):
        if value is None:
            return 1
        if isinstance(value, dict):
            if not all(
                isinstance(k, int) and isinstance(v, int) and k >= 0 and v >= 1
                for k, v in value.items()
            ):
                raise MisconfigurationException(
                    f"accumulate_grad_batches={value!r}: expected {{epoch >= 0: n >= 1}}"
                )
            return dict(sorted(value.items()))
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise TypeError(
                f"Gradient accumulation supports only int and dict types, got {value!r}"
            )
        return value

    def _accumulation_for_epoch(self, epoch: int) -> int:
        if isinstance(self.accumulate_grad_batches, int):
            return self.accumulate_grad_batches
        factor = 1
        for start, n in self.accumulate_grad_batches.items():
            if epoch >= start:
                factor = n
        return factor

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
            getattr(callback, hook)(self, module, *args)

    def _call_module(self, hook: str, *args: Any, **kwargs: Any) -> Any:
        module = self.lightning_module
        previous, module._current_fx = module._current_fx, hook
        try:
            return getattr(module, hook)(*args, **kwargs)
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
        ckpt_path = ckpt_path if ckpt_path is not None else self.resume_from_checkpoint
        self._run(model, "fit", datamodule, ckpt_path, train=train_dataloaders, val=val_dataloaders)

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
    def _run(
        self,
        model: Module,
        stage: str,
        datamodule: Optional[DataModule],
        ckpt_path: Optional[str],
        **loaders: Any,
    ):
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
                TensorBoardLogger(self.default_root_dir, version=self.logger.version)
            )
        for callback in model.configure_callbacks() or []:
            self.callbacks = [c for c in self.callbacks if type(c) is not type(callback)] + [
                callback
            ]
        model.to(self.root_device)
        self.precision_plugin = PrecisionPlugin(self.precision, self.root_device)
        self.precision_plugin.convert_module(model)
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
                return self._run_fit(checkpoint, loaders.get("train"), loaders.get("val"))
            if stage in ("validate", "test"):
                return self._run_evaluation_stage(
                    stage, loaders.get("val" if stage == "validate" else "test")
                )
            return self._run_predict(loaders.get("predict"))
        except BaseException as exception:
            self._call_callbacks("on_exception", exception)
            for logger in self._loggers if self.is_global_zero else []:
                logger.finalize("failed")
            raise
        finally:
            self._teardown(stage)

    def _teardown(self, stage: str) -> None:
        if self.datamodule is not None:
            self.datamodule.teardown(stage=stage)
        self._call_callbacks("teardown", stage)
        self._call_module("teardown", stage=stage)
        self.state_stage = None
        if self.strategy is not None:
            self.strategy.teardown()

    # -- checkpoint restore -----------------------------------------------------------------
    def _restore_model(self, checkpoint: Dict[str, Any]) -> None:
        model = self.lightning_module
        self._call_module("on_load_checkpoint", checkpoint)
        model.load_state_dict(checkpoint["state_dict"])
        if self.datamodule is not None:
            key = type(self.datamodule).__qualname__
            if key in checkpoint:
                self.datamodule.load_state_dict(checkpoint[key])

    def _restore_training_state(self, checkpoint: Dict[str, Any]) -> None:
        callback_states = checkpoint.get("callbacks", {})
        for callback in self.callbacks:
            state = callback_states.get(callback.state_key)
            if state is not None:
                callback.load_state_dict(state)
                callback.on_load_checkpoint(self, self.lightning_module, state)
        if "native_amp_scaling_state" in checkpoint:
            self.precision_plugin.load_state_dict(checkpoint["native_amp_scaling_state"])
        loops = checkpoint.get("loops", {}).get("fit_loop", {})
        self.global_step = int(checkpoint.get("global_step", 0))
        epoch = int(checkpoint.get("epoch", 0))
        finished = loops.get("epoch_finished", True)
        self.current_epoch = epoch + 1 if finished else epoch
        self._batches_that_stepped = int(loops.get("batches_that_stepped", self.global_step))
        if self.max_epochs != -1 and self.current_epoch > self.max_epochs:
            raise MisconfigurationException(
                f"You restored a checkpoint with current_epoch={self.current_epoch}, but you have set "
                f"Trainer(max_epochs={self.max_epochs})."
            )
        self._resume_state = None if finished and not loops.get("rng_now") else loops
        if "optimizer_states" not in checkpoint:
            raise KeyError(
                "Trying to restore optimizer state but checkpoint contains only the model. This is "
                "probably due to `ModelCheckpoint.save_weights_only` being set to `True`."
            )
        for optimizer, state in zip(self.optimizers, checkpoint["optimizer_states"]):
            optimizer.load_state_dict(state)
            for group_state in optimizer.state.values():  # move state to the model's device
                for key, value in group_state.items():
                    if isinstance(value, torch.Tensor) and key != "step":
                        group_state[key] = value.to(self.root_device)
        if "lr_schedulers" not in checkpoint:
            raise KeyError(
                "Trying to restore learning rate scheduler state but checkpoint contains only the model."
            )
        for config, state in zip(self.lr_scheduler_configs, checkpoint["lr_schedulers"]):
            config.scheduler.load_state_dict(state)

    # -- checkpoint save --------------------------------------------------------------------
    def _dump_checkpoint(self, weights_only: bool = False) -> Dict[str, Any]:
        import conveyor

        model = self.lightning_module
        loops = dict(
            self._loop_state,
            global_step=self.global_step,
            batches_that_stepped=self._batches_that_stepped,
            rng_now=capture_rng_states(),
        )
        checkpoint: Dict[str, Any] = {
            "epoch": self.current_epoch,
            "global_step": self.global_step,
            "conveyor_version": conveyor.__version__,
            "state_dict": model.state_dict(),
            "loops": {"fit_loop": loops},
        }
        if not weights_only:
            callback_states = {}
            for callback in self.callbacks:
                state = callback.state_dict()
                extra = callback.on_save_checkpoint(self, model, checkpoint)
                if extra:
                    state = {**state, **extra}
                if state:
                    callback_states[callback.state_key] = state
            checkpoint["callbacks"] = callback_states
            checkpoint["optimizer_states"] = [o.state_dict() for o in self.optimizers]
            checkpoint["lr_schedulers"] = [
                c.scheduler.state_dict() for c in self.lr_scheduler_configs
            ]
            precision_state = self.precision_plugin.state_dict() if self.precision_plugin else {}
            if precision_state:
                checkpoint["native_amp_scaling_state"] = precision_state
        if model.hparams:
            checkpoint["hyper_parameters"] = _plain(dict(model.hparams))
        if self.datamodule is not None:
            datamodule_hparams = self.datamodule.hparams_initial
            if datamodule_hparams:
                checkpoint["datamodule_hyper_parameters"] = _plain(datamodule_hparams)
            state = self.datamodule.state_dict()
            if state:
                checkpoint[type(self.datamodule).__qualname__] = state
        self._call_module("on_save_checkpoint", checkpoint)
        return checkpoint

    def save_checkpoint(self, filepath: Union[str, Path], weights_only: bool = False) -> None:
        """Write a checkpoint of the current state (rank 0 writes; the write is atomic)."""
        checkpoint = self._dump_checkpoint(weights_only)
        if self.is_global_zero:
            atomic_save(checkpoint, filepath)
        if self.strategy is not None:
            self.strategy.barrier()

    # -- loaders ----------------------------------------------------------------------------
    def _request_loader(self, name: str, given: Any) -> Any:
        if given is not None:
            return given
        for source in (self.datamodule, self.lightning_module):
            if source is not None and _overridden(source, name, DataHooks):
                return getattr(source, name)()
        return None

    def _prepare_loader(self, loader: Any) -> Any:
        if self.strategy is not None:
            return self.strategy.shard_loader(loader)
        return loader

    def _as_list(self, loaders: Any) -> List[Any]:
        if loaders is None:
            return []
        if isinstance(loaders, (list, tuple)):
            return [self._prepare_loader(loader) for loader in loaders]
        return [self._prepare_loader(loaders)]

    # -- fit --------------------------------------------------------------------------------
    def _run_fit(self, checkpoint, train_loader, val_loaders) -> None:
        model = self.lightning_module
        train_loader = self._request_loader("train_dataloader", train_loader)
        if train_loader is None:
            raise MisconfigurationException(
                "No `train_dataloader()` method defined. Lightning `Trainer` expects as minimum a "
                "`training_step()`, `train_dataloader()` and `configure_optimizers()` to be defined."
            )
        if not _overridden(model, "training_step", Module):
            raise MisconfigurationException(
                "`training_step` must be implemented to be used with the Trainer"
            )
        self.train_dataloader = self._prepare_loader(train_loader)
        self.val_dataloaders = (
            self._as_list(self._request_loader("val_dataloader", val_loaders))
            if _overridden(model, "validation_step", Module)
            else []
        )
        self.num_training_batches = num_batches(
            self.train_dataloader, self.limit_train_batches, "train"
        )
        self.num_val_batches = [
            num_batches(loader, self.limit_val_batches, "val") for loader in self.val_dataloaders
        ]

        if model.automatic_optimization or _overridden(model, "configure_optimizers", Module):
            self.optimizers, self.lr_scheduler_configs, self.optimizer_frequencies = (
                init_optimizers_and_schedulers(model)
            )
        if self.strategy is not None:
            self.strategy.broadcast_module(model)
        self._call_callbacks("on_fit_start")
        self._call_module("on_fit_start")
        self._log_hyperparams()
        if checkpoint is not None:
            self._restore_training_state(checkpoint)
        else:
            self.current_epoch = 0
            self.global_step = 0
            self._batches_that_stepped = 0
            self._resume_state = None
        self._call_module("on_pretrain_routine_start")
        self._call_module("on_pretrain_routine_end")
        self._run_sanity_check()
        model.train()
        self._call_callbacks("on_train_start")
        self._call_module("on_train_start")
        for optimizer in self.optimizers:
            optimizer.zero_grad()
        while not self._fit_done():
            self._run_train_epoch()
        self._call_callbacks("on_train_end")
        self._call_module("on_train_end")
        self._call_callbacks("on_fit_end")
        self._call_module("on_fit_end")
        if self.is_global_zero:
            for logger in self._loggers:
                logger.finalize("success")

    def _log_hyperparams(self) -> None:
        if not self._loggers or not self.is_global_zero:
            return
        params = dict(self.lightning_module.hparams_initial)
        if self.datamodule is not None:
            params.update(self.datamodule.hparams_initial)
        for logger in self._loggers:
            logger.log_hyperparams(params)
            logger.save()

    def _fit_done(self) -> bool:
        if self.max_steps != -1 and self.global_step >= self.max_steps:
            return True
        if self.max_epochs != -1 and self.current_epoch >= self.max_epochs:
            return True
        if self.should_stop:
            if self.current_epoch >= self.min_epochs and self.global_step >= self.min_steps:
                return True
            self.should_stop = False
        return False

    def _run_sanity_check(self) -> None:
        if not self.val_dataloaders or self.num_sanity_val_steps == 0 or self.fast_dev_run:
            return
        limits = [
            n if self.num_sanity_val_steps == -1 else min(n, self.num_sanity_val_steps)
            for n in self.num_val_batches
        ]
        self.sanity_checking = True
        self._call_callbacks("on_sanity_check_start")
        try:
            self._run_eval_loop("validate", self.val_dataloaders, limits)
        finally:
            self.sanity_checking = False
            self._call_callbacks("on_sanity_check_end")
            self.callback_metrics = {
                k: v for k, v in self.callback_metrics.items() if not k.startswith("val")
            }
            self.logged_metrics.clear()
            self.progress_bar_metrics.clear()

    def _set_loader_epoch(self, loader: Any, epoch: int) -> None:
        sampler = getattr(loader, "sampler", None)
        for candidate in (
            loader,
            sampler,
            getattr(loader, "batch_sampler", None),
            getattr(getattr(loader, "batch_sampler", None), "sampler", None),
        ):
            if candidate is not None and hasattr(candidate, "set_epoch"):
                candidate.set_epoch(epoch)
                return

    def _run_train_epoch(self) -> None:
        model = self.lightning_module
        loader = self.train_dataloader
        epoch = self.current_epoch
        resume = self._resume_state
        self._resume_state = None
        start_batch = 0
        if resume is not None and not resume.get("epoch_finished", True):
            start_batch = int(resume.get("batches_done", 0))
            restore_rng_states(resume["rng_epoch_start"])
        elif resume is not None and resume.get("rng_now"):
            restore_rng_states(resume["rng_now"])
        self._set_loader_epoch(loader, epoch)
        rng_epoch_start = capture_rng_states()
        self._results = ResultCollection(reduce=self._results.reduce)
        self.throughput.reset()
        self._call_callbacks("on_train_epoch_start")
        self._call_module("on_train_epoch_start")
        if (
            start_batch
            and resume.get("dataloader_state") is not None
            and hasattr(loader, "load_state_dict")
        ):
            loader.load_state_dict(resume["dataloader_state"])
            iterator = iter(loader)
        else:
            iterator = iter(loader)
            for _ in range(start_batch):  # replay the same order up to where the run stopped
                next(iterator)
        if start_batch:
            restore_rng_states(resume["rng_now"])
        accumulation = self._accumulation_for_epoch(epoch)
        outputs_for_epoch_end = []
        keep_outputs = _overridden(model, "training_epoch_end", Module)
        batch_idx = start_batch
        self._loop_state = {
            "epoch": epoch,
            "batches_done": batch_idx,
            "epoch_finished": False,
            "rng_epoch_start": rng_epoch_start,
        }
        total = self.num_training_batches
        while batch_idx < total:
            step_start = time.perf_counter()
            try:
                batch = next(iterator)
            except StopIteration:
                break
            data_time = time.perf_counter() - step_start
            batch = self._transfer(batch, 0)
            self._results.current_batch_size = batch_size_of(batch)
            response = self._call_module("on_train_batch_start", batch, batch_idx)
            self._call_callbacks("on_train_batch_start", batch, batch_idx)
            if response == -1:
                break
            is_last = batch_idx + 1 == total
            should_step = (batch_idx + 1) % accumulation == 0 or is_last
            outputs = self._training_batch(batch, batch_idx, accumulation, should_step)
            self._loop_state.update(batches_done=batch_idx + 1)
            if callable(
                getattr(loader, "state_dict", None)
            ):  # conveyor.DataLoader resumes mid-epoch
                self._loop_state["dataloader_state"] = loader.state_dict()
            self.throughput.update(
                self._results.current_batch_size, time.perf_counter() - step_start, data_time
            )
            self._log_step_metrics()
            self._call_callbacks("on_train_batch_end", outputs, batch, batch_idx)
            self._call_module("on_train_batch_end", outputs, batch, batch_idx)
            if keep_outputs:
                outputs_for_epoch_end.append(outputs)
            batch_idx += 1
            if self.max_steps != -1 and self.global_step >= self.max_steps:
                break
            if (
                self.should_stop
                and self.current_epoch >= self.min_epochs
                and self.global_step >= self.min_steps
            ):
                break
        # end of epoch: validation, epoch schedulers, hooks (module first), checkpointing
        if self.val_dataloaders and (epoch + 1) % self.check_val_every_n_epoch == 0:
            self._run_eval_loop("validate", self.val_dataloaders, self.num_val_batches)
            model.train()
        self._update_schedulers("epoch")
        self._loop_state.update(epoch_finished=True, dataloader_state=None)
        if keep_outputs:
            self._call_module("training_epoch_end", outputs_for_epoch_end)
        self._call_module("on_train_epoch_end")
        self._collect_epoch_metrics(self._results, log=True)
        self._call_callbacks("on_train_epoch_end")
        self.current_epoch += 1

    def _transfer(self, batch: Any, dataloader_idx: int) -> Any:
        hooks_owner = self.datamodule if self.datamodule is not None else self.lightning_module
        model = self.lightning_module
        batch = hooks_owner.on_before_batch_transfer(batch, dataloader_idx)
        batch = (
            model.transfer_batch_to_device(batch, self.root_device, dataloader_idx)
            if not _overridden(hooks_owner, "transfer_batch_to_device", DataHooks)
            else hooks_owner.transfer_batch_to_device(batch, self.root_device, dataloader_idx)
        )
        batch = hooks_owner.on_after_batch_transfer(batch, dataloader_idx)
        return self.precision_plugin.convert_input(batch)

    def _training_step_args(self, batch, batch_idx, optimizer_idx):
        model = self.lightning_module
        args = [batch, batch_idx]
        if len(self.optimizers) > 1 and model.automatic_optimization:
            if "optimizer_idx" not in inspect.signature(model.training_step).parameters:
                raise MisconfigurationException(
                    "Your `training_step` needs an `optimizer_idx` argument when "
                    "`configure_optimizers` returns several optimizers"
                )
            args.append(optimizer_idx)
        return args

    def _training_batch(self, batch, batch_idx, accumulation, should_step) -> Any:
        model = self.lightning_module
        self._stepped_this_batch = False
        if not model.automatic_optimization:
            with self.precision_plugin.forward_context():
                output = self._call_module("training_step", batch, batch_idx)
            self._last_loss = _loss_value(output)
            return output
        optimizer_indices = list(range(len(self.optimizers)))
        if self.optimizer_frequencies:
            cycle = sum(self.optimizer_frequencies)
            position = batch_idx % cycle
            for index, frequency in enumerate(self.optimizer_frequencies):
                if position < frequency:
                    optimizer_indices = [index]
                    break
                position -= frequency
        output = None
        for opt_idx in optimizer_indices:
            optimizer = self.optimizers[opt_idx]
            with self.precision_plugin.forward_context():
                output = self._call_module(
                    "training_step", *self._training_step_args(batch, batch_idx, opt_idx)
                )
            loss = _extract_loss(output)
            if loss is None:
                continue
            self._last_loss = float(loss.detach().float().item())
            self._call_callbacks("on_before_backward", loss)
            self._call_module("on_before_backward", loss)
            self._backward(loss / accumulation if accumulation > 1 else loss, optimizer, opt_idx)
            self._call_callbacks("on_after_backward")
            self._call_module("on_after_backward")
            if should_step:
                self._optimizer_step(optimizer, opt_idx, batch_idx)
        return output

    def _backward(
        self, loss: torch.Tensor, optimizer=None, optimizer_idx=None, *args, **kwargs
    ) -> None:
        scaled = self.precision_plugin.scale_loss(loss)
        self._call_module("backward", scaled, optimizer, optimizer_idx, *args, **kwargs)

    def _optimizer_step(self, optimizer, opt_idx: int, batch_idx: int) -> None:
        model = self.lightning_module
        if self.strategy is not None:
            self.strategy.average_gradients(model.parameters())
        self._call_callbacks("on_before_optimizer_step", optimizer, opt_idx)
        self._call_module("on_before_optimizer_step", optimizer, opt_idx)
        self.precision_plugin.unscale(optimizer)  # clipping must see unscaled gradients
        self._call_module(
            "configure_gradient_clipping",
            optimizer,
            opt_idx,
            gradient_clip_val=self.gradient_clip_val,
            gradient_clip_algorithm=self.gradient_clip_algorithm,
        )
        self.precision_plugin.optimizer_step(optimizer)
        if self.strategy is not None:
            self.strategy.broadcast_buffers(model)
        self._call_callbacks("on_before_zero_grad", optimizer)
        self._call_module("on_before_zero_grad", optimizer)
        self._call_module("optimizer_zero_grad", self.current_epoch, batch_idx, optimizer, opt_idx)
        self.global_step += 1
        self._stepped_this_batch = True
        self._batches_that_stepped += 1
        self._update_schedulers("step", opt_idx)

    def _update_schedulers(self, interval: str, opt_idx: Optional[int] = None) -> None:
        counter = self.global_step if interval == "step" else self.current_epoch + 1
        for config in self.lr_scheduler_configs:
            if config.interval != interval or (opt_idx is not None and config.opt_idx != opt_idx):
                continue
            if counter % config.frequency != 0:
                continue
            metric = None
            if config.reduce_on_plateau:
                metric = self.callback_metrics.get(config.monitor)
                if metric is None:
                    if config.strict:
                        raise MisconfigurationException(
                            f"ReduceLROnPlateau conditioned on metric {config.monitor} which is not available. "
                            f"Available metrics are: {sorted(self.callback_metrics)}. Condition can be set using "
                            "`monitor` key in lr scheduler dict"
                        )
                    warnings.warn(
                        f"ReduceLROnPlateau: metric {config.monitor!r} not available, skipping",
                        stacklevel=2,
                    )
                    continue
            self._call_module("lr_scheduler_step", config.scheduler, config.opt_idx or 0, metric)

    # -- metrics ----------------------------------------------------------------------------
    def _log_step_metrics(self) -> None:
        results = self._results
        self.progress_bar_metrics.update(results.progress_bar_step_metrics())
        step_metrics = results.step_metrics(for_logger=False)
        for key, value in step_metrics.items():
            self.callback_metrics[key] = value
            base = key[:-5] if key.endswith("_step") else key
            self.callback_metrics[base] = value
        logged = results.step_metrics(for_logger=True)
        results.consume_step()
        due = (
            self.log_every_n_steps > 0
            and self._batches_that_stepped % self.log_every_n_steps == 0
            and self._stepped_this_batch
        )
        if logged and due:
            self._send_to_loggers(dict(logged, epoch=self.current_epoch))

    def _send_to_loggers(self, metrics: Dict[str, float]) -> None:
        self.logged_metrics.update(metrics)
        if not self.is_global_zero:
            return
        for logger in self._loggers:
            logger.log_metrics(metrics, step=self.global_step)

    def _collect_epoch_metrics(self, results: ResultCollection, log: bool) -> Dict[str, float]:
        collected = results.epoch_metrics()
        values = {key: entry["value"] for key, entry in collected.items()}
        for key, value in values.items():
            self.callback_metrics[key] = value
            if key.endswith("_epoch"):
                self.callback_metrics[key[:-6]] = value
        self.progress_bar_metrics.update(
            {k: e["value"] for k, e in collected.items() if e["prog_bar"]}
        )
        to_log = {k: e["value"] for k, e in collected.items() if e["logger"]}
        if log and to_log and not self.sanity_checking:
            self._send_to_loggers(dict(to_log, epoch=self.current_epoch))
        return values

    # -- evaluation -------------------------------------------------------------------------
    def _run_evaluation_stage(self, stage: str, loaders: Any) -> List[Dict[str, float]]:
        model = self.lightning_module
        step_name = "validation_step" if stage == "validate" else "test_step"
        loader_name = "val_dataloader" if stage == "validate" else "test_dataloader"
        requested = self._request_loader(loader_name, loaders)
        if requested is None:
            raise MisconfigurationException(
                f"No `{loader_name}()` method defined to run `Trainer.{stage}`."
            )
        if not _overridden(model, step_name, Module):
            raise MisconfigurationException(
                f"No `{step_name}()` method defined to run `Trainer.{stage}`."
            )
        dataloaders = self._as_list(requested)
        limit = self.limit_val_batches if stage == "validate" else self.limit_test_batches
        counts = [
            num_batches(loader, limit, "val" if stage == "validate" else "test")
            for loader in dataloaders
        ]
        if stage == "validate":
            self.val_dataloaders, self.num_val_batches = dataloaders, counts
        else:
            self.test_dataloaders, self.num_test_batches = dataloaders, counts
        results = self._run_eval_loop(stage, dataloaders, counts)
        if getattr(self, "_verbose", True) and self.is_global_zero:
            _print_results(stage, results)
        if self.is_global_zero:
            for logger in self._loggers:
                logger.finalize("success")
        return results

    def _run_eval_loop(
        self, stage: str, dataloaders: List[Any], counts: List[Union[int, float]]
    ) -> List[Dict[str, float]]:
        model = self.lightning_module
        prefix = "validation" if stage == "validate" else "test"
        hook_prefix = "validation" if stage == "validate" else "test"
        previous_results = self._results
        results = ResultCollection(reduce=previous_results.reduce)
        results._multiple_loaders = len(dataloaders) > 1
        self._results = results
        was_training = model.training
        model.eval()
        self._call_callbacks(f"on_{hook_prefix}_start")
        self._call_module(f"on_{hook_prefix}_start")
        self._call_callbacks(f"on_{hook_prefix}_epoch_start")
        self._call_module(f"on_{hook_prefix}_epoch_start")
        step = getattr(model, f"{prefix}_step")
        takes_loader_idx = len(dataloaders) > 1
        all_outputs = []
        per_loader_keys: List[set] = []
        with torch.no_grad():
            for loader_idx, (loader, count) in enumerate(zip(dataloaders, counts)):
                outputs = []
                before = set(results.metrics)
                self._set_loader_epoch(loader, self.current_epoch)
                for batch_idx, batch in enumerate(loader):
                    if batch_idx >= count:
                        break
                    batch = self._transfer(batch, loader_idx)
                    results.current_batch_size = batch_size_of(batch)
                    model._current_dataloader_idx = loader_idx if takes_loader_idx else None
                    self._call_callbacks(
                        f"on_{hook_prefix}_batch_start", batch, batch_idx, loader_idx
                    )
                    self._call_module(f"on_{hook_prefix}_batch_start", batch, batch_idx, loader_idx)
                    args = (
                        (batch, batch_idx, loader_idx) if takes_loader_idx else (batch, batch_idx)
                    )
                    with self.precision_plugin.forward_context():
                        model._current_fx = f"{prefix}_step"
                        try:
                            output = step(*args)
                        finally:
                            model._current_fx = None
                    outputs.append(output)
                    self._call_callbacks(
                        f"on_{hook_prefix}_batch_end", output, batch, batch_idx, loader_idx
                    )
                    self._call_module(
                        f"on_{hook_prefix}_batch_end", output, batch, batch_idx, loader_idx
                    )
                model._current_dataloader_idx = None
                all_outputs.append(outputs)
                per_loader_keys.append(set(results.metrics) - before)
        epoch_end = f"{prefix}_epoch_end"
        if _overridden(model, epoch_end, Module):
            self._call_module(epoch_end, all_outputs[0] if len(all_outputs) == 1 else all_outputs)
        self._call_callbacks(f"on_{hook_prefix}_epoch_end")
        self._call_module(f"on_{hook_prefix}_epoch_end")
        values = self._collect_epoch_metrics(results, log=not self.sanity_checking)
        self._call_callbacks(f"on_{hook_prefix}_end")
        self._call_module(f"on_{hook_prefix}_end")
        if was_training:
            model.train()
        self._results = previous_results
        if len(dataloaders) <= 1:
            return [values] if dataloaders else []
        shared = {k: v for k, v in values.items() if "/dataloader_idx_" not in k}
        return [
            dict(shared, **{k: v for k, v in values.items() if k.endswith(f"/dataloader_idx_{i}")})
            for i in range(len(dataloaders))
        ]

    # -- predict ----------------------------------------------------------------------------
    def _run_predict(self, loaders: Any) -> Optional[List[Any]]:
        model = self.lightning_module
        requested = self._request_loader("predict_dataloader", loaders)
        if requested is None:
            raise MisconfigurationException(
                "No `predict_dataloader()` method defined to run `Trainer.predict`."
            )
        dataloaders = self._as_list(requested)
        counts = [
            num_batches(loader, self.limit_predict_batches, "predict") for loader in dataloaders
        ]
        self.predict_dataloaders, self.num_predict_batches = dataloaders, counts
        model.eval()
        self._call_callbacks("on_predict_start")
        self._call_module("on_predict_start")
        self._call_callbacks("on_predict_epoch_start")
        self._call_module("on_predict_epoch_start")
        predictions: List[List[Any]] = []
        with torch.no_grad():
            for loader_idx, (loader, count) in enumerate(zip(dataloaders, counts)):
                outputs = []
                for batch_idx, batch in enumerate(loader):
                    if batch_idx >= count:
                        break
                    batch = self._transfer(batch, loader_idx)
                    self._call_callbacks("on_predict_batch_start", batch, batch_idx, loader_idx)
                    self._call_module("on_predict_batch_start", batch, batch_idx, loader_idx)
                    with self.precision_plugin.forward_context():
                        args = (
                            (batch, batch_idx, loader_idx)
                            if len(dataloaders) > 1
                            else (batch, batch_idx)
                        )
                        output = self._call_module("predict_step", *args)
                    if self._return_predictions:
                        outputs.append(output)
                    self._call_callbacks(
                        "on_predict_batch_end", output, batch, batch_idx, loader_idx
                    )
                    self._call_module("on_predict_batch_end", output, batch, batch_idx, loader_idx)
                predictions.append(outputs)
        self._call_callbacks("on_predict_epoch_end", predictions)
        self._call_module("on_predict_epoch_end", predictions)
        self._call_callbacks("on_predict_end")
        self._call_module("on_predict_end")
        if not self._return_predictions:
            return None
        return predictions[0] if len(predictions) == 1 else predictions


def _extract_loss(output: Any) -> Optional[torch.Tensor]:
    if output is None:
        return None
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, dict):
        if "loss" not in output:
            raise MisconfigurationException(
                "In automatic optimization, `training_step` must return a Tensor, "
                "a dict, or None (where the step will be skipped); a dict needs 'loss'"
            )
        return output["loss"]
    raise MisconfigurationException(
        f"`training_step` returned {type(output).__name__}: return a Tensor, "
        "a dict with 'loss', or None"
    )


def _loss_value(output: Any) -> Optional[float]:
    try:
        loss = _extract_loss(output)
    except MisconfigurationException:
        return None
    return float(loss.detach().float().item()) if loss is not None else None


def _print_results(stage: str, results: List[Dict[str, float]]) -> None:
    if not results:
        return
    title = "Validate metric" if stage == "validate" else "Test metric"
    for index, metrics in enumerate(results):
        header = f"{title:<30} {'DataLoader ' + str(index):>20}"
        print("─" * len(header))
        print(header)
        print("─" * len(header))
        for key in sorted(metrics):
            print(f"{key:<30} {metrics[key]:>20.6g}")
        print("─" * len(header))
