"""The validation, test and predict loops (Lightning 1.6's evaluation and prediction loops).
A mixin of :class:`conveyor.training.Trainer`."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Union

import torch

from conveyor.training.batch import batch_size_of
from conveyor.training.configuration import is_overridden
from conveyor.training.errors import MisconfigurationException
from conveyor.training.limits import num_batches
from conveyor.training.module import Module
from conveyor.training.profiler import profiling
from conveyor.training.results import ResultCollection
from conveyor.training.trainer_attributes import TrainerAttributes


class EvaluationLoop(TrainerAttributes):
    """``Trainer.validate``/``test``/``predict`` and the validation run inside ``fit``."""

    # -- evaluation -------------------------------------------------------------------------
    def _run_evaluation_stage(self, stage: str, loaders: Any) -> List[Dict[str, float]]:
        model = self._attached_module
        step_name = "validation_step" if stage == "validate" else "test_step"
        loader_name = "val_dataloader" if stage == "validate" else "test_dataloader"
        requested = self._request_loader(loader_name, loaders)
        if requested is None:
            raise MisconfigurationException(
                f"No `{loader_name}()` method defined to run `Trainer.{stage}`."
            )
        if not is_overridden(model, step_name, Module):
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
        model = self._attached_module
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
                    with self._precision.forward_context():
                        model._current_fx = f"{prefix}_step"
                        try:
                            with profiling(
                                self.profiler,
                                f"[LightningModule]{type(model).__name__}.{prefix}_step",
                            ):
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
        self._refresh_epoch_metrics(results)  # the epoch-end hooks read this epoch's values
        epoch_end = f"{prefix}_epoch_end"
        if is_overridden(model, epoch_end, Module):
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
        model = self._attached_module
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
                    with self._precision.forward_context():
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
