"""Where logged metrics go: step and epoch metrics to ``callback_metrics``, the progress bar
and the loggers (Lightning 1.6's logger connector). A mixin of :class:`conveyor.training.Trainer`."""

from __future__ import annotations

from typing import Dict

from conveyor.training.results import ResultCollection
from conveyor.training.trainer_attributes import TrainerAttributes


class LoggerConnector(TrainerAttributes):
    """Sends what ``Module.log`` collected to ``callback_metrics``, the bar and the loggers."""

    def _log_hyperparams(self) -> None:
        if not self._loggers or not self.is_global_zero:
            return
        params = dict(self._attached_module.hparams_initial)
        if self.datamodule is not None:
            params.update(self.datamodule.hparams_initial)
        for logger in self._loggers:
            logger.log_hyperparams(params)
            logger.save()

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

    def _refresh_epoch_metrics(self, results: ResultCollection) -> Dict[str, Dict]:
        """Publish the epoch-level values of ``results`` in ``callback_metrics``,
        ``logged_metrics`` and ``progress_bar_metrics`` without sending them to the loggers.

        Runs before the epoch-end hooks too: Lightning computes these dicts live once the epoch's
        batches are done, so ``validation_epoch_end``/``on_validation_epoch_end`` (and a callback's
        ``on_train_epoch_end``) read this epoch's values, not the previous epoch's.
        """
        collected = results.epoch_metrics()
        for key, entry in collected.items():
            value = entry["value"]
            self.callback_metrics[key] = value
            if key.endswith("_epoch"):
                self.callback_metrics[key[:-6]] = value
            if entry["logger"]:
                self.logged_metrics[key] = value
            if entry["prog_bar"]:
                self.progress_bar_metrics[key] = value
        return collected

    def _collect_epoch_metrics(self, results: ResultCollection, log: bool) -> Dict[str, float]:
        collected = self._refresh_epoch_metrics(results)
        to_log = {k: e["value"] for k, e in collected.items() if e["logger"]}
        if log and to_log and not self.sanity_checking:
            self._send_to_loggers(dict(to_log, epoch=self.current_epoch))
        return {key: entry["value"] for key, entry in collected.items()}
