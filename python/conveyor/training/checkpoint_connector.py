"""Checkpoint save and restore (Lightning 1.6's checkpoint connector): the model, optimizer,
scheduler, callback and loop state, and what each conveyor DataLoader needs to resume exactly.
A mixin of :class:`conveyor.training.Trainer`."""

from __future__ import annotations

import inspect
import warnings
from pathlib import Path
from typing import Any, Dict, Optional, Type, TypeVar, Union

import torch

from conveyor.loader.sampling import sharded_length, unconsumed_order
from conveyor.training.checkpoint_io import atomic_save, load_checkpoint
from conveyor.training.errors import MisconfigurationException
from conveyor.training.loggers import (
    _plain,
)
from conveyor.training.seed import capture_rng_states
from conveyor.training.trainer_attributes import TrainerAttributes


class CheckpointConnector(TrainerAttributes):
    """Builds checkpoints (``save_checkpoint``) and restores a run from one."""

    # -- checkpoint restore -----------------------------------------------------------------
    def _restore_model(self, checkpoint: Dict[str, Any]) -> None:
        model = self._attached_module
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
                callback.on_load_checkpoint(self, self._attached_module, state)
        if "native_amp_scaling_state" in checkpoint:
            self._precision.load_state_dict(checkpoint["native_amp_scaling_state"])
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

        model = self._attached_module
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


def start_batch_after_reshard(loader: Any, state: Dict[str, Any], start_batch: int, total) -> int:
    """The batch index a mid-epoch resume starts at when the checkpoint was written by a run on
    another number of ranks: the loader re-shards the epoch's unread rest over this run's ranks,
    so this rank has ``remaining`` batches left of the ``total`` its full epoch would have."""
    saved_world = int(state.get("world_size") or 1)
    world = int(getattr(loader, "world_size", 1) or 1)
    if saved_world == world or state.get("resharded_from") or total == float("inf"):
        return start_batch
    per_batch = loader.batch_size or 1
    drop = bool(getattr(loader, "shard_drop_last", False))
    read_per_rank = int(state["batches_yielded"]) * per_batch
    rest = len(unconsumed_order(range(len(loader.sampler)), saved_world, read_per_rank, drop))
    samples = sharded_length(rest, world, drop)
    remaining = samples // per_batch if loader.drop_last else -(-samples // per_batch)
    return max(0, int(total) - remaining)


def loader_state_after_epoch(loader: Any, epoch: int) -> Optional[Dict[str, Any]]:
    """What a conveyor DataLoader needs to start epoch ``epoch + 1`` as an uninterrupted run
    would: its seed (given or drawn) and its generator's state now, whether or not the epoch
    ran to the loader's end (``limit_train_batches``, ``max_steps``)."""
    if not callable(getattr(loader, "state_dict", None)):
        return None
    state = loader.state_dict()
    if "batches_yielded" not in state:
        return None
    generator = getattr(loader, "generator", None)
    state.update(
        epoch=epoch + 1,
        batches_yielded=0,
        generator_state=generator.get_state() if generator is not None else None,
    )
    return state


ModuleT = TypeVar("ModuleT")


def load_module_from_checkpoint(
    cls: Type[ModuleT],
    checkpoint_path: Union[str, Path],
    map_location: Any = "cpu",
    hparams_file: Optional[Union[str, Path]] = None,
    strict: bool = True,
    **kwargs: Any,
) -> ModuleT:
    """A module of class ``cls`` built from a checkpoint, as Lightning 1.6's
    ``LightningModule.load_from_checkpoint`` builds it.

    The constructor receives the checkpoint's saved hyperparameters (those of
    ``hparams_file``, a YAML file, when given) updated with ``kwargs``, filtered to the
    constructor's parameters unless it takes ``**kwargs``; then the module's
    ``on_load_checkpoint(checkpoint)`` runs and the weights load with ``strict``.

    Raises:
        FileNotFoundError: ``checkpoint_path`` does not exist.
        RuntimeError: the weights do not fit the module (with ``strict=True``).
    """
    checkpoint = load_checkpoint(checkpoint_path, map_location=map_location)
    hparams: Dict[str, Any] = dict(checkpoint.get("hyper_parameters") or {})
    if hparams_file is not None:
        import yaml

        with open(hparams_file) as handle:
            hparams = dict(yaml.safe_load(handle) or {})
    hparams.update(kwargs)
    signature = inspect.signature(cls.__init__)
    takes_any = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    if not takes_any:
        hparams = {k: v for k, v in hparams.items() if k in signature.parameters and k != "self"}
    module: Any = cls(**hparams)
    module.on_load_checkpoint(checkpoint)
    result = module.load_state_dict(checkpoint["state_dict"], strict=strict)
    if not strict:
        if result.missing_keys:
            warnings.warn(
                f"Found keys that are in the model state dict but not in the checkpoint: {result.missing_keys}",
                stacklevel=2,
            )
        if result.unexpected_keys:
            warnings.warn(
                f"Found keys that are not in the model state dict but in the checkpoint: {result.unexpected_keys}",
                stacklevel=2,
            )
    return module
