"""The training loop (Lightning 1.6's fit loop): sanity check, epochs, batches, optimizer
steps with accumulation and clipping, schedulers, and where a run resumes mid-epoch. A mixin of
:class:`conveyor.training.Trainer`."""

from __future__ import annotations

import inspect
import time
import warnings
from typing import Any, Dict, Mapping, Optional

import torch

from conveyor.training.batch import batch_size_of
from conveyor.training.checkpoint_connector import (
    loader_state_after_epoch,
    start_batch_after_reshard,
)
from conveyor.training.combined_loader import CombinedLoader
from conveyor.training.configuration import is_overridden
from conveyor.training.errors import MisconfigurationException
from conveyor.training.grads import grad_norm
from conveyor.training.hooks import DataHooks
from conveyor.training.limits import num_batches
from conveyor.training.model_summary import summarize
from conveyor.training.module import Module
from conveyor.training.optimizers import init_optimizers_and_schedulers
from conveyor.training.overfit import without_shuffling
from conveyor.training.profiler import profiling
from conveyor.training.results import ResultCollection
from conveyor.training.seed import capture_rng_states, restore_rng_states
from conveyor.training.trainer_attributes import TrainerAttributes


class FitLoop(TrainerAttributes):
    """``Trainer.fit``'s loop; the state it reads and writes lives on the Trainer."""

    def _accumulation_for_epoch(self, epoch: int) -> int:
        if isinstance(self.accumulate_grad_batches, int):
            return self.accumulate_grad_batches
        factor = 1
        for start, n in self.accumulate_grad_batches.items():
            if epoch >= start:
                factor = n
        return factor

    # -- fit --------------------------------------------------------------------------------
    def _run_fit(self, checkpoint, train_loader, val_loaders) -> None:
        model = self._attached_module
        self._fit_loaders_given = (train_loader, val_loaders)  # what reloading asks again
        train_loader = self._request_loader("train_dataloader", train_loader)
        if train_loader is None:
            raise MisconfigurationException(
                "No `train_dataloader()` method defined. Lightning `Trainer` expects as minimum a "
                "`training_step()`, `train_dataloader()` and `configure_optimizers()` to be defined."
            )
        if not is_overridden(model, "training_step", Module):
            raise MisconfigurationException(
                "`training_step` must be implemented to be used with the Trainer"
            )
        self._setup_fit_loaders(train_loader, val_loaders)

        if model.automatic_optimization or is_overridden(model, "configure_optimizers", Module):
            self.optimizers, self.lr_scheduler_configs, self.optimizer_frequencies = (
                init_optimizers_and_schedulers(model)
            )
        if self._tuning_optimizers is not None:  # lr_find's optimizer and range schedule
            self._tuning_optimizers(self)
        if not model.automatic_optimization and self.track_grad_norm != -1:
            warnings.warn(
                "track_grad_norm is not applied under manual optimization: conveyor's "
                "`self.optimizers()` are the torch optimizers themselves (Lightning wraps them); "
                "log `conveyor.training.grads.grad_norm(self, p)` before `optimizer.step()`",
                UserWarning,
                stacklevel=2,
            )
        if self.strategy is not None:
            self.strategy.broadcast_module(model)
        self._call_callbacks("on_fit_start")
        self._call_module("on_fit_start")
        if self.enable_model_summary and self.is_global_zero:
            print(summarize(model))
        self._log_hyperparams()
        if checkpoint is not None:
            self._restore_training_state(checkpoint)
        else:
            # a second fit() on one Trainer continues where the first stopped (Lightning 1.6:
            # the loop's progress persists), e.g. after raising max_epochs
            self._resume_state = None
        self._call_module("on_pretrain_routine_start")
        self._call_module("on_pretrain_routine_end")
        self._run_sanity_check()
        model.train()
        self._call_callbacks("on_train_start")
        self._call_module("on_train_start")
        for optimizer in self.optimizers:
            optimizer.zero_grad()
        self._loaders_epoch = self.current_epoch
        while not self._fit_done():
            if self._should_reload_loaders():
                self._setup_fit_loaders(
                    self._request_loader("train_dataloader", self._fit_loaders_given[0]),
                    self._fit_loaders_given[1],
                )
                self._loaders_epoch = self.current_epoch
            with profiling(self.profiler, "run_training_epoch"):
                self._run_train_epoch()
        self._call_callbacks("on_train_end")
        self._call_module("on_train_end")
        self._call_callbacks("on_fit_end")
        self._call_module("on_fit_end")
        if self.is_global_zero:
            for logger in self._loggers:
                logger.finalize("success")

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

    def _setup_fit_loaders(self, train_loader, val_loaders) -> None:
        model = self._attached_module
        self.train_dataloader = self._prepare_train_loader(train_loader)
        # as Lightning: no validation step or limit_val_batches=0 leaves the val loaders unasked
        enable_validation = self.limit_val_batches > 0
        self.val_dataloaders = (
            self._as_list(self._request_loader("val_dataloader", val_loaders))
            if is_overridden(model, "validation_step", Module) and enable_validation
            else []
        )
        self.num_training_batches = num_batches(
            self.train_dataloader, self.limit_train_batches, "train"
        )
        self.val_check_batch = self._val_check_batch()
        self.num_val_batches = [
            num_batches(loader, self.limit_val_batches, "val") for loader in self.val_dataloaders
        ]

    def _prepare_train_loader(self, loader: Any) -> Any:
        """The training loader as the loop reads it: without shuffling under
        ``overfit_batches``, sharded under ddp, and a list or dict of loaders combined into a
        :class:`CombinedLoader` (``multiple_trainloader_mode``), each loader prepared alone."""
        if isinstance(loader, (list, tuple, Mapping)):
            loader = CombinedLoader(loader, self.multiple_trainloader_mode)
        if isinstance(loader, CombinedLoader):
            leaves = [self._prepare_one_train_loader(leaf) for leaf in loader._leaves]
            return CombinedLoader(loader._rebuild(leaves), loader.mode)
        return self._prepare_one_train_loader(loader)

    def _prepare_one_train_loader(self, loader: Any) -> Any:
        if self.overfit_batches > 0:
            loader = without_shuffling(loader)
        return self._prepare_loader(loader)

    def _should_reload_loaders(self) -> bool:
        """``reload_dataloaders_every_n_epochs``: ask the hooks for fresh loaders every N epochs."""
        every = self.reload_dataloaders_every_n_epochs
        return bool(every) and self.current_epoch - self._loaders_epoch >= every

    def _val_check_batch(self):
        """After how many training batches validation runs (``val_check_interval``)."""
        interval, total = self.val_check_interval, self.num_training_batches
        if isinstance(interval, int):
            if total != float("inf") and interval > total:
                raise MisconfigurationException(
                    f"`val_check_interval` ({interval}) must be less than or equal to the number of "
                    f"the training batches ({total}). If you want to disable validation set "
                    "`limit_val_batches` to 0.0 instead."
                )
            return interval
        if total == float("inf"):
            if interval != 1.0:
                raise MisconfigurationException(
                    "When using an IterableDataset for `train_dataloader`, "
                    "`Trainer(val_check_interval)` must be `1.0` or an int. An int k specifies "
                    "checking validation every k training batches."
                )
            return total
        return max(1, int(total * interval))

    def _should_check_val(self, batch_idx: int, is_last_batch: bool) -> bool:
        """Whether validation runs after this training batch, as Lightning 1.6 decides: on
        every ``val_check_batch``-th batch of a validating epoch (the default: the epoch's
        last batch), on the last batch of a loader without a length, or when the run was asked
        to stop. An epoch cut short by ``max_steps`` therefore ends without validation unless
        it stopped on such a batch."""
        if not self._will_validate() or (self.current_epoch + 1) % self.check_val_every_n_epoch:
            return False
        infinite = self.val_check_batch == float("inf")
        if is_last_batch and infinite:
            return True
        if self.should_stop and self.current_epoch >= self.min_epochs:
            return True  # the loop stops after this batch (min_steps aside, as in Lightning)
        if infinite:
            return False
        return (batch_idx + 1) % self.val_check_batch == 0

    def _will_validate(self) -> bool:
        """False without validation batches (``limit_val_batches=0``): the validation loop and
        its hooks are skipped entirely, as in Lightning."""
        return bool(self.val_dataloaders) and sum(self.num_val_batches) > 0

    def _run_sanity_check(self) -> None:
        if not self._will_validate() or self.num_sanity_val_steps == 0 or self.fast_dev_run:
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
        model = self._attached_module
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
        if (
            not start_batch
            and resume is not None
            and resume.get("dataloader_state") is not None
            and callable(getattr(loader, "load_state_dict", None))
        ):  # an epoch-boundary checkpoint: the loader's seed and generator state, not its place
            loader.load_state_dict(resume["dataloader_state"])
        # every use below is guarded by start_batch, which only a saved state sets
        saved: Dict[str, Any] = resume if resume is not None else {}
        rng_epoch_start = capture_rng_states()
        self._results = ResultCollection(reduce=self._results.reduce)
        self.throughput.reset()
        self._call_callbacks("on_train_epoch_start")
        self._call_module("on_train_epoch_start")
        if (
            start_batch
            and saved.get("dataloader_state") is not None
            and hasattr(loader, "load_state_dict")
        ):
            loader.load_state_dict(saved["dataloader_state"])
            start_batch = start_batch_after_reshard(
                loader, saved["dataloader_state"], start_batch, self.num_training_batches
            )
            iterator = iter(loader)
        else:
            iterator = iter(loader)
            for _ in range(start_batch):  # replay the same order up to where the run stopped
                next(iterator)
        if start_batch:
            restore_rng_states(saved["rng_now"])
        accumulation = self._accumulation_for_epoch(epoch)
        outputs_for_epoch_end = []
        keep_outputs = is_overridden(model, "training_epoch_end", Module)
        batch_idx = start_batch
        self._loop_state = {
            "epoch": epoch,
            "batches_done": batch_idx,
            "epoch_finished": False,
            "rng_epoch_start": rng_epoch_start,
        }
        total = self.num_training_batches
        exhausted = False
        while batch_idx < total:
            step_start = time.perf_counter()
            try:
                with profiling(self.profiler, "[TrainingEpochLoop].train_dataloader_next"):
                    batch = next(iterator)
            except StopIteration:
                exhausted = True
                break
            data_time = time.perf_counter() - step_start
            batch = self._transfer(batch, 0)
            self._results.current_batch_size = batch_size_of(
                loader.first_batch(batch) if isinstance(loader, CombinedLoader) else batch
            )
            response = self._call_module("on_train_batch_start", batch, batch_idx)
            self._call_callbacks("on_train_batch_start", batch, batch_idx)
            if response == -1:
                break
            is_last = batch_idx + 1 == total
            should_step = (batch_idx + 1) % accumulation == 0 or is_last
            with profiling(self.profiler, "run_training_batch"):
                outputs = self._training_batch(batch, batch_idx, accumulation, should_step)
            self._loop_state.update(batches_done=batch_idx + 1)
            if callable(
                getattr(loader, "state_dict", None)
            ):  # conveyor.DataLoader resumes mid-epoch
                self._loop_state["dataloader_state"] = loader.state_dict()
                generator = getattr(loader, "generator", None)
                if generator is not None:  # where it stands once the epoch's order is drawn
                    self._loop_state["generator_now"] = generator.get_state()
            self.throughput.update(
                self._results.current_batch_size, time.perf_counter() - step_start, data_time
            )
            self._log_step_metrics()
            if len(self.optimizers) <= 1:  # the hooks get {"loss": detached, ...}, as Lightning
                outputs = _batch_end_output(outputs, model.automatic_optimization, accumulation)
            self._call_callbacks("on_train_batch_end", outputs, batch, batch_idx)
            self._call_module("on_train_batch_end", outputs, batch, batch_idx)
            if keep_outputs and not (isinstance(outputs, list) and not outputs):
                outputs_for_epoch_end.append(outputs)
            if is_last:  # Lightning steps epoch schedulers (not plateau) before the last validation
                self._update_schedulers("epoch", plateau=False)
            if self._should_check_val(batch_idx, is_last):
                self._run_eval_loop("validate", self.val_dataloaders, self.num_val_batches)
                model.train()
            batch_idx += 1
            if self.max_steps != -1 and self.global_step >= self.max_steps:
                break
            if (
                self.should_stop
                and self.current_epoch >= self.min_epochs
                and self.global_step >= self.min_steps
            ):
                break
        # end of epoch: epoch schedulers, hooks (module first), checkpointing, plateau schedulers
        if batch_idx < total:  # cut short, or no length: not stepped at the last batch above
            self._update_schedulers("epoch", plateau=False)
        # a loader without a length only shows it is done here, where Lightning (which
        # prefetches) validates
        if exhausted and total == float("inf") and self._should_check_val(batch_idx, True):
            self._run_eval_loop("validate", self.val_dataloaders, self.num_val_batches)
            model.train()
        if start_batch and saved.get("generator_now") is not None:
            # a resumed epoch may end without drawing its order (nothing was left to read):
            # the generator must stand where the uninterrupted epoch left it
            loader.generator.set_state(saved["generator_now"])
        self._loop_state.update(
            epoch_finished=True,
            dataloader_state=(
                loader.state_after_epoch(epoch)
                if isinstance(loader, CombinedLoader)
                else loader_state_after_epoch(loader, epoch)
            ),
            generator_now=None,
        )
        self._refresh_epoch_metrics(self._results)  # the epoch-end hooks read this epoch's values
        if keep_outputs:
            self._call_module("training_epoch_end", outputs_for_epoch_end)
        self._call_module("on_train_epoch_end")
        self._collect_epoch_metrics(self._results, log=True)
        self._call_callbacks("on_train_epoch_end")
        self._update_schedulers("epoch", plateau=True)  # on this epoch's gathered metrics
        self.current_epoch += 1

    def _transfer(self, batch: Any, dataloader_idx: int) -> Any:
        hooks_owner = self.datamodule if self.datamodule is not None else self._attached_module
        model = self._attached_module
        batch = hooks_owner.on_before_batch_transfer(batch, dataloader_idx)
        batch = (
            model.transfer_batch_to_device(batch, self.root_device, dataloader_idx)
            if not is_overridden(hooks_owner, "transfer_batch_to_device", DataHooks)
            else hooks_owner.transfer_batch_to_device(batch, self.root_device, dataloader_idx)
        )
        batch = hooks_owner.on_after_batch_transfer(batch, dataloader_idx)
        return self._precision.convert_input(batch)

    def _training_step_args(self, batch, batch_idx, optimizer_idx):
        model = self._attached_module
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
        model = self._attached_module
        self._stepped_this_batch = False
        if not model.automatic_optimization:
            with self._precision.forward_context():
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
            with self._precision.forward_context():
                output = self._call_module(
                    "training_step", *self._training_step_args(batch, batch_idx, opt_idx)
                )
            loss = _extract_loss(output)
            if loss is None:
                continue
            if self.terminate_on_nan and not torch.isfinite(loss).all():
                raise ValueError(
                    f"The loss returned in `training_step` is {loss}: nan or inf "
                    f"(epoch {self.current_epoch}, batch {batch_idx}, terminate_on_nan=True)."
                )
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
        scaled = self._precision.scale_loss(loss)
        self._call_module("backward", scaled, optimizer, optimizer_idx, *args, **kwargs)

    def _optimizer_step(self, optimizer, opt_idx: int, batch_idx: int) -> None:
        model = self._attached_module
        if self.strategy is not None:
            self.strategy.average_gradients(model.parameters())
        self._call_callbacks("on_before_optimizer_step", optimizer, opt_idx)
        self._call_module("on_before_optimizer_step", optimizer, opt_idx)
        self._precision.unscale(optimizer)  # clipping must see unscaled gradients
        if opt_idx == 0:  # Lightning tracks the whole model's norms once per step
            self._track_grad_norm()
        self._call_module(
            "configure_gradient_clipping",
            optimizer,
            opt_idx,
            gradient_clip_val=self.gradient_clip_val,
            gradient_clip_algorithm=self.gradient_clip_algorithm,
        )
        self._precision.optimizer_step(optimizer)
        if self.terminate_on_nan:
            for name, parameter in model.named_parameters():
                if not torch.isfinite(parameter).all():
                    raise ValueError(
                        f"Detected nan and/or inf values in `{name}`. Check your forward pass for "
                        "numerically unstable operations."
                    )
        if self.strategy is not None:
            self.strategy.broadcast_buffers(model)
        self._call_callbacks("on_before_zero_grad", optimizer)
        self._call_module("on_before_zero_grad", optimizer)
        self._call_module("optimizer_zero_grad", self.current_epoch, batch_idx, optimizer, opt_idx)
        self.global_step += 1
        self._stepped_this_batch = True
        self._batches_that_stepped += 1
        self._update_schedulers("step", opt_idx)

    def _track_grad_norm(self) -> None:
        """``track_grad_norm``: hand the gradients' norms to ``Module.log_grad_norm`` after
        backward (and unscaling) and before clipping."""
        if self.track_grad_norm == -1:
            return
        model = self._attached_module
        separator = "/"
        if len(self._loggers) == 1:
            separator = getattr(self._loggers[0], "group_separator", "/")
        norms = grad_norm(model, self.track_grad_norm, separator)
        if norms:
            previous, model._current_fx = model._current_fx, "on_before_optimizer_step"
            try:
                model.log_grad_norm(norms)
            finally:
                model._current_fx = previous

    def _update_schedulers(
        self, interval: str, opt_idx: Optional[int] = None, plateau: Optional[bool] = None
    ) -> None:
        """Step the schedulers of ``interval`` (only ReduceLROnPlateau ones when ``plateau`` is
        True, only the others when False, all when None)."""
        counter = self.global_step if interval == "step" else self.current_epoch + 1
        for config in self.lr_scheduler_configs:
            if config.interval != interval or (opt_idx is not None and config.opt_idx != opt_idx):
                continue
            if plateau is not None and config.reduce_on_plateau != plateau:
                continue
            if counter % config.frequency != 0:
                continue
            metric = None
            if config.reduce_on_plateau:
                monitor = config.monitor  # set whenever reduce_on_plateau is
                metric = None if monitor is None else self.callback_metrics.get(monitor)
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


def _detached(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach()
    if isinstance(value, dict):
        return {k: _detached(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_detached(v) for v in value)
    return value


def _batch_end_output(output: Any, automatic: bool, accumulation: int) -> Any:
    """What ``on_train_batch_end`` and ``training_epoch_end`` receive for one batch, as in
    Lightning 1.6: a dict with the detached ``loss`` (divided by the accumulation factor in
    automatic optimization, as Lightning's closure does) and the step's other keys detached; a
    Tensor counts as ``{"loss": tensor}``; a skipped step (None) gives ``[]`` (and is left out of
    ``training_epoch_end``'s list)."""
    if output is None:
        return []
    if isinstance(output, torch.Tensor):
        output = {"loss": output}
    if not isinstance(output, dict):
        return output
    extra = {k: _detached(v) for k, v in output.items() if k not in ("loss", "hiddens")}
    if "loss" not in output:
        return extra
    loss = output["loss"]
    if automatic and isinstance(loss, torch.Tensor):
        loss = loss.detach().clone() / accumulation if accumulation > 1 else loss.detach().clone()
    return {"loss": _detached(loss), **extra}


def _loss_value(output: Any) -> Optional[float]:
    try:
        loss = _extract_loss(output)
    except MisconfigurationException:
        return None
    return float(loss.detach().float().item()) if loss is not None else None
