"""``DataModule``: Lightning 1.x's LightningDataModule (loaders, transforms, argparse)."""

from __future__ import annotations

import copy
import inspect
from argparse import ArgumentParser, Namespace
from types import FrameType
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional, Union, cast

from torch.utils.data import DataLoader, Dataset, IterableDataset

from conveyor.training import argparse as conveyor_argparse
from conveyor.training.hooks import DataHooks

if TYPE_CHECKING:
    from conveyor.training.trainer import Trainer


class DataModule(DataHooks):
    """Groups the data of a project: ``prepare_data`` (download, once per node),
    ``setup(stage)`` (every process), and the ``*_dataloader`` methods.

    Args:
        train_transforms: transform applied by the training loader.
        val_transforms: transform applied by the validation loader.
        test_transforms: transform applied by the test loader.
    """

    name: str = ""

    def __init__(
        self,
        train_transforms: Optional[Callable] = None,
        val_transforms: Optional[Callable] = None,
        test_transforms: Optional[Callable] = None,
    ) -> None:
        super().__init__()
        self._train_transforms = train_transforms
        self._val_transforms = val_transforms
        self._test_transforms = test_transforms
        self.trainer: Optional[Trainer] = None
        self._hparams: Dict[str, Any] = {}

    # transforms (settable, as in Lightning 1.x)
    @property
    def train_transforms(self) -> Optional[Callable]:
        return self._train_transforms

    @train_transforms.setter
    def train_transforms(self, value: Optional[Callable]) -> None:
        self._train_transforms = value

    @property
    def val_transforms(self) -> Optional[Callable]:
        return self._val_transforms

    @val_transforms.setter
    def val_transforms(self, value: Optional[Callable]) -> None:
        self._val_transforms = value

    @property
    def test_transforms(self) -> Optional[Callable]:
        return self._test_transforms

    @test_transforms.setter
    def test_transforms(self, value: Optional[Callable]) -> None:
        self._test_transforms = value

    def setup(self, stage: Optional[str] = None) -> None:
        """Build datasets for ``stage`` ("fit", "validate", "test" or "predict")."""

    def teardown(self, stage: Optional[str] = None) -> None:
        """Release what ``setup`` built."""

    def state_dict(self) -> Dict[str, Any]:
        """State saved in checkpoints under the class's qualified name ({} saves nothing)."""
        return {}

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""

    # hyperparameters, like Module.save_hyperparameters
    @property
    def hparams(self) -> Dict[str, Any]:
        return self._hparams

    @property
    def hparams_initial(self) -> Dict[str, Any]:
        return copy.deepcopy(getattr(self, "_hparams_initial", {}))

    def save_hyperparameters(self, *args: Any, ignore=None) -> None:
        # CPython always has frames, and a caller's
        frame = cast(FrameType, cast(FrameType, inspect.currentframe()).f_back)
        info = inspect.getargvalues(frame)
        values = {name: info.locals[name] for name in info.args[1:] if name in info.locals}
        if args and isinstance(args[0], str):
            values = {name: values[name] for name in args}
        elif args:
            values = dict(vars(args[0])) if isinstance(args[0], Namespace) else dict(args[0])
        ignore = [ignore] if isinstance(ignore, str) else list(ignore or [])
        values = {k: v for k, v in values.items() if k not in ignore}
        self._hparams = dict(values)
        self._hparams_initial = copy.deepcopy(values)

    # argparse
    @classmethod
    def add_argparse_args(cls, parent_parser: ArgumentParser, **kwargs: Any) -> ArgumentParser:
        return conveyor_argparse.add_argparse_args(cls, parent_parser, **kwargs)

    @classmethod
    def from_argparse_args(
        cls, args: Union[Namespace, ArgumentParser], **kwargs: Any
    ) -> "DataModule":
        return conveyor_argparse.from_argparse_args(cls, args, **kwargs)

    @classmethod
    def get_init_arguments_and_types(cls):
        return conveyor_argparse.get_init_arguments_and_types(cls)

    @classmethod
    def from_datasets(
        cls,
        train_dataset: Optional[Dataset] = None,
        val_dataset: Optional[Dataset] = None,
        test_dataset: Optional[Dataset] = None,
        predict_dataset: Optional[Dataset] = None,
        batch_size: int = 1,
        num_workers: int = 0,
    ) -> "DataModule":
        """A DataModule serving the given datasets (each may also be a list or dict of datasets).

        Args:
            train_dataset: shuffled unless it is an IterableDataset.
            val_dataset: not shuffled.
            test_dataset: not shuffled.
            predict_dataset: not shuffled.
            batch_size: batch size of every loader.
            num_workers: worker processes of every loader.

        Returns:
            A DataModule whose loaders wrap these datasets.
        """

        def loader(dataset: Dataset, shuffle: bool) -> DataLoader:
            shuffle &= not isinstance(dataset, IterableDataset)
            return DataLoader(
                dataset, batch_size=batch_size, shuffle=shuffle, num_workers=num_workers
            )

        def build(dataset, shuffle):
            if isinstance(dataset, dict):
                return {key: loader(ds, shuffle) for key, ds in dataset.items()}
            if isinstance(dataset, (list, tuple)):
                return [loader(ds, shuffle) for ds in dataset]
            return loader(dataset, shuffle)

        datamodule = cls()
        # the hooks are replaced per instance (setattr: mypy refuses assigning to a method)
        if train_dataset is not None:
            setattr(datamodule, "train_dataloader", lambda: build(train_dataset, True))  # noqa: B010
        if val_dataset is not None:
            setattr(datamodule, "val_dataloader", lambda: build(val_dataset, False))  # noqa: B010
        if test_dataset is not None:
            setattr(datamodule, "test_dataloader", lambda: build(test_dataset, False))  # noqa: B010
        if predict_dataset is not None:
            setattr(datamodule, "predict_dataloader", lambda: build(predict_dataset, False))  # noqa: B010
        return datamodule
