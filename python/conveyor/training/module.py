"""``Module``: a ``torch.nn.Module`` with Lightning 1.x's training hooks (``LightningModule``)."""

from __future__ import annotations

import copy
import inspect
import numbers
from types import FrameType
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union, cast

import torch

from conveyor.training.errors import MisconfigurationException
from conveyor.training.hooks import DataHooks, ModelHooks


class Module(ModelHooks, DataHooks, torch.nn.Module):
    """Subclass it like ``pl.LightningModule``: define ``training_step`` and
    ``configure_optimizers`` (plus ``validation_step``, ``test_step``, ``predict_step`` and any
    ``on_*`` hook) and hand it to :class:`conveyor.Trainer`."""

    CHECKPOINT_HYPER_PARAMS_KEY = "hyper_parameters"  # where checkpoints keep the hparams

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._trainer = None
        self._hparams: Dict[str, Any] = {}
        self._hparams_initial: Dict[str, Any] = {}
        self.automatic_optimization: bool = True
        self._current_fx: Optional[str] = None
        self._current_dataloader_idx: Optional[int] = None

    # -- trainer link ---------------------------------------------------------------------
    @property
    def trainer(self):
        if self._trainer is None:
            raise RuntimeError(f"{type(self).__name__} is not attached to a `Trainer`.")
        return self._trainer

    @trainer.setter
    def trainer(self, trainer) -> None:
        object.__setattr__(self, "_trainer", trainer)

    @property
    def current_epoch(self) -> int:
        return self._trainer.current_epoch if self._trainer is not None else 0

    @property
    def global_step(self) -> int:
        return self._trainer.global_step if self._trainer is not None else 0

    @property
    def global_rank(self) -> int:
        return self._trainer.global_rank if self._trainer is not None else 0

    @property
    def local_rank(self) -> int:
        return self._trainer.local_rank if self._trainer is not None else 0

    @property
    def device(self) -> torch.device:
        for tensor in list(self.parameters()) + list(self.buffers()):
            return tensor.device
        return torch.device("cpu")

    @property
    def logger(self):
        return self._trainer.logger if self._trainer is not None else None

    @classmethod
    def load_from_checkpoint(
        cls, checkpoint_path, map_location="cpu", hparams_file=None, strict=True, **kwargs
    ):
        """A new module built with the checkpoint's hyperparameters (updated by ``kwargs``)
        and its weights loaded, as ``LightningModule.load_from_checkpoint``."""
        from conveyor.training.checkpoint_connector import load_module_from_checkpoint

        return load_module_from_checkpoint(
            cls, checkpoint_path, map_location, hparams_file, strict, **kwargs
        )

    # -- hyperparameters ------------------------------------------------------------------
    @property
    def hparams(self) -> Dict[str, Any]:
        return self._hparams

    @property
    def hparams_initial(self) -> Dict[str, Any]:
        return copy.deepcopy(self._hparams_initial)

    def save_hyperparameters(
        self,
        *args: Any,
        ignore: Optional[Union[Sequence[str], str]] = None,
        frame=None,
        logger: bool = True,
    ) -> None:
        """Record the constructor's arguments in ``self.hparams`` (and ``hparams.yaml``).

        Args:
            *args: names of the arguments to keep, or one dict / Namespace to store as is;
                none keeps every constructor argument.
            ignore: argument names to leave out (e.g. a large ``nn.Module``).
            frame: the constructor's frame (found automatically).
            logger: also write them to the logger.
        """
        ignore = [ignore] if isinstance(ignore, str) else list(ignore or [])
        if len(args) == 1 and not isinstance(args[0], str):
            value = args[0]
            hparams = (
                dict(vars(value))
                if hasattr(value, "__dict__") and not isinstance(value, Mapping)
                else dict(value)
            )
        else:
            if frame is None:
                frame = cast(FrameType, inspect.currentframe()).f_back  # CPython: never None
            init_args = _collect_init_args(frame)
            if args:
                missing = [name for name in args if name not in init_args]
                if missing:
                    raise ValueError(
                        f"save_hyperparameters: {missing} are not arguments of __init__"
                    )
                hparams = {name: init_args[name] for name in args}
            else:
                hparams = init_args
        hparams = {k: v for k, v in hparams.items() if k not in ignore}
        self._log_hyperparams = logger
        self._hparams = _AttributeDict(hparams)
        self._hparams_initial = copy.deepcopy(hparams)

    # -- logging --------------------------------------------------------------------------
    def log(
        self,
        name: str,
        value: Any,
        prog_bar: bool = False,
        logger: bool = True,
        on_step: Optional[bool] = None,
        on_epoch: Optional[bool] = None,
        reduce_fx: str = "mean",
        sync_dist: bool = False,
        batch_size: Optional[int] = None,
        **_: Any,
    ) -> None:
        """Log a scalar.

        Args:
            name: the metric key.
            value: a number or a one-element tensor.
            prog_bar: also show it on the progress bar.
            logger: send it to the logger.
            on_step: log the per-step value (default: True in training_step, else False).
            on_epoch: log the epoch mean (default: False in training_step, else True).
            reduce_fx: "mean", "sum", "max" or "min" over the epoch.
            sync_dist: reduce the value across processes each step (epoch values always are).
            batch_size: weight of this value in the epoch mean (inferred from the batch).
        """
        if self._trainer is None:
            return
        if isinstance(value, torch.Tensor):
            if value.numel() != 1:
                raise ValueError(
                    f"self.log({name!r}, ...) needs a scalar, got a tensor of shape {tuple(value.shape)}"
                )
        elif not isinstance(value, numbers.Number):
            raise ValueError(
                f"self.log({name!r}, ...) needs a number or a one-element tensor, got {type(value).__name__}"
            )
        if reduce_fx not in ("mean", "sum", "max", "min"):
            raise MisconfigurationException(
                f"reduce_fx={reduce_fx!r} is not one of mean, sum, max, min"
            )
        self._trainer._results.log(
            self._current_fx or "training_step",
            name,
            value,
            prog_bar=prog_bar,
            logger=logger,
            on_step=on_step,
            on_epoch=on_epoch,
            reduce_fx=reduce_fx,
            sync_dist=sync_dist,
            batch_size=batch_size,
            dataloader_idx=self._current_dataloader_idx,
        )

    def log_dict(self, dictionary: Mapping[str, Any], **kwargs: Any) -> None:
        """Call :meth:`log` for each item, with the same options."""
        for name, value in dictionary.items():
            self.log(name, value, **kwargs)

    def log_grad_norm(self, grad_norm_dict: Dict[str, float]) -> None:
        """Log the gradient norms ``Trainer(track_grad_norm=p)`` computed (each step and their
        epoch mean); override to log them differently."""
        self.log_dict(grad_norm_dict, on_step=True, on_epoch=True, prog_bar=False, logger=True)

    # -- steps ----------------------------------------------------------------------------
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__}.forward is not implemented")

    def training_step(self, *args: Any, **kwargs: Any):
        raise MisconfigurationException(
            "`training_step` must be implemented to be used with the Trainer"
        )

    def validation_step(self, *args: Any, **kwargs: Any):
        return None

    def test_step(self, *args: Any, **kwargs: Any):
        return None

    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> Any:
        return self(batch)

    def configure_optimizers(self):
        raise MisconfigurationException(
            "`configure_optimizers` must be implemented to be used with the Trainer"
        )

    def configure_callbacks(self) -> List[Any]:
        return []

    # -- optimization helpers -------------------------------------------------------------
    def optimizers(self, use_pl_optimizer: bool = True):
        optimizers = self.trainer.optimizers
        return optimizers[0] if len(optimizers) == 1 else optimizers

    def lr_schedulers(self):
        schedulers = [config.scheduler for config in self.trainer.lr_scheduler_configs]
        if not schedulers:
            return None
        return schedulers[0] if len(schedulers) == 1 else schedulers

    def manual_backward(self, loss: torch.Tensor, *args: Any, **kwargs: Any) -> None:
        self.trainer._backward(loss, *args, **kwargs)

    def backward(
        self, loss: torch.Tensor, optimizer=None, optimizer_idx=None, *args: Any, **kwargs: Any
    ) -> None:
        loss.backward(*args, **kwargs)

    def optimizer_zero_grad(
        self, epoch: int, batch_idx: int, optimizer, optimizer_idx: int = 0
    ) -> None:
        optimizer.zero_grad()

    def configure_gradient_clipping(
        self, optimizer, optimizer_idx: int, gradient_clip_val=None, gradient_clip_algorithm=None
    ) -> None:
        self.clip_gradients(optimizer, gradient_clip_val, gradient_clip_algorithm)

    def clip_gradients(
        self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None
    ) -> None:
        if gradient_clip_val is None or gradient_clip_val == 0:
            return
        parameters = [
            p for group in optimizer.param_groups for p in group["params"] if p.grad is not None
        ]
        if (gradient_clip_algorithm or "norm") == "value":
            torch.nn.utils.clip_grad_value_(parameters, gradient_clip_val)
        else:
            torch.nn.utils.clip_grad_norm_(parameters, gradient_clip_val)

    def lr_scheduler_step(self, scheduler, optimizer_idx: int, metric: Any) -> None:
        if metric is None:
            scheduler.step()
        else:
            scheduler.step(metric)

    def print(self, *args: Any, **kwargs: Any) -> None:
        """``print`` on rank 0 only."""
        if self.global_rank == 0:
            print(*args, **kwargs)


class _AttributeDict(dict):
    """A dict whose keys read as attributes (``self.hparams.lr``)."""

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError as error:
            raise AttributeError(f"hparams has no {key!r}") from error

    def __setattr__(self, key: str, value: Any) -> None:
        self[key] = value


def _collect_init_args(frame) -> Dict[str, Any]:
    """The arguments of the outermost ``__init__`` of ``self``'s class chain on the stack."""
    collected: Dict[str, Any] = {}
    while frame is not None and frame.f_code.co_name == "__init__":
        info = inspect.getargvalues(frame)
        local_self = info.locals.get(info.args[0]) if info.args else None
        if not isinstance(local_self, torch.nn.Module):
            break
        values = {name: info.locals[name] for name in info.args[1:] if name in info.locals}
        if info.varargs and info.locals.get(info.varargs):
            values[info.varargs] = info.locals[info.varargs]
        if info.keywords:
            values.update(info.locals.get(info.keywords, {}))
        collected = {**values, **collected} if collected else values
        frame = frame.f_back
    collected.pop("__class__", None)
    return collected
