"""What the Trainer's mixins (``FitLoop``, ``EvaluationLoop``, ``LoggerConnector``,
``CheckpointConnector``) use of each other and of ``Trainer``: declared once, for the type
checker only, so each mixin is checked against the attributes ``Trainer`` really sets."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Optional, Union

if TYPE_CHECKING:
    import torch

    from conveyor.training.datamodule import DataModule
    from conveyor.training.distributed import DDPStrategy
    from conveyor.training.hooks import Callback
    from conveyor.training.loggers import Logger
    from conveyor.training.module import Module
    from conveyor.training.optimizers import LRSchedulerConfig
    from conveyor.training.precision import PrecisionPlugin
    from conveyor.training.profiler import Profiler
    from conveyor.training.progress import ThroughputMeter
    from conveyor.training.results import ResultCollection


class TrainerAttributes:
    """Base of the Trainer's mixins: the declarations, and typed access to what a run attaches."""

    @property
    def _attached_module(self) -> Module:
        # the loops run only after fit/validate/test/predict attached the module
        module = self.lightning_module
        if module is None:
            raise RuntimeError(
                "no module attached: the Trainer's loops run inside fit/validate/..."
            )
        return module

    @property
    def _precision(self) -> PrecisionPlugin:
        # set with the module, before any loop runs
        plugin = self.precision_plugin
        if plugin is None:
            raise RuntimeError(
                "no precision plugin: the Trainer's loops run inside fit/validate/..."
            )
        return plugin

    if TYPE_CHECKING:
        # set by Trainer.__init__ (and its run entry points)
        lightning_module: Optional[Module]
        datamodule: Optional[DataModule]
        callbacks: List[Callback]
        _loggers: List[Logger]
        strategy: Optional[DDPStrategy]
        precision_plugin: Optional[PrecisionPlugin]
        profiler: Optional[Profiler]
        optimizers: List[torch.optim.Optimizer]
        lr_scheduler_configs: List[LRSchedulerConfig]
        throughput: ThroughputMeter
        _results: ResultCollection
        callback_metrics: Dict[str, Any]
        logged_metrics: Dict[str, Any]
        progress_bar_metrics: Dict[str, Any]
        current_epoch: int
        global_step: int
        sanity_checking: bool
        should_stop: bool
        _resume_state: Optional[Dict[str, Any]]
        _batches_that_stepped: int
        _stepped_this_batch: bool
        _loop_state: Dict[str, Any]
        _return_predictions: bool
        max_epochs: int  # -1: no limit
        min_epochs: int
        max_steps: int
        min_steps: int
        accumulate_grad_batches: Union[int, Dict[int, int]]
        check_val_every_n_epoch: int
        val_check_interval: Union[int, float]
        num_sanity_val_steps: int
        reload_dataloaders_every_n_epochs: int
        limit_train_batches: Union[int, float]
        limit_val_batches: Union[int, float]
        limit_test_batches: Union[int, float]
        limit_predict_batches: Union[int, float]
        log_every_n_steps: int
        fast_dev_run: int
        gradient_clip_val: Optional[Union[int, float]]
        gradient_clip_algorithm: Optional[str]
        enable_model_summary: bool
        terminate_on_nan: bool
        overfit_batches: Union[int, float]
        track_grad_norm: float  # -1.0: off
        multiple_trainloader_mode: str
        _tuning_optimizers: Optional[Any]  # Callable[[Trainer], None]
        _last_loss: Optional[float]
        auto_lr_find: Union[bool, str]
        auto_scale_batch_size: Union[bool, str]

        @property
        def is_global_zero(self) -> bool: ...

        @property
        def root_device(self) -> torch.device: ...

        # Trainer's
        def _call_callbacks(self, hook: str, *args: Any) -> None: ...
        def _call_module(self, hook: str, *args: Any, **kwargs: Any) -> Any: ...
        def _request_loader(self, name: str, given: Any) -> Any: ...
        def _prepare_loader(self, loader: Any) -> Any: ...
        def _as_list(self, loaders: Any) -> List[Any]: ...

        # FitLoop's
        def _set_loader_epoch(self, loader: Any, epoch: int) -> None: ...
        def _transfer(self, batch: Any, dataloader_idx: int) -> Any: ...

        # EvaluationLoop's
        def _run_eval_loop(
            self, stage: str, dataloaders: List[Any], counts: List[Union[int, float]]
        ) -> List[Dict[str, float]]: ...

        # LoggerConnector's
        def _log_hyperparams(self) -> None: ...
        def _log_step_metrics(self) -> None: ...
        def _refresh_epoch_metrics(self, results: ResultCollection) -> Dict[str, Dict]: ...
        def _collect_epoch_metrics(
            self, results: ResultCollection, log: bool
        ) -> Dict[str, float]: ...

        # CheckpointConnector's
        def _restore_training_state(self, checkpoint: Dict[str, Any]) -> None: ...
