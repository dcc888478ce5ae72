"""The Lightning-1.x-style training layer: ``Trainer``, ``Module``, ``DataModule``,
callbacks and loggers. A Lightning 1.x project ports by changing its imports."""

from conveyor.training.checkpoint import ModelCheckpoint
from conveyor.training.combined_loader import CombinedLoader
from conveyor.training.datamodule import DataModule
from conveyor.training.early_stopping import EarlyStopping
from conveyor.training.errors import MisconfigurationException
from conveyor.training.hooks import Callback
from conveyor.training.loggers import CSVLogger, Logger, TensorBoardLogger
from conveyor.training.module import Module
from conveyor.training.progress import ProgressBar
from conveyor.training.seed import seed_everything
from conveyor.training.trainer import Trainer

LightningModule = Module
LightningDataModule = DataModule

__all__ = [
    "Trainer",
    "Module",
    "DataModule",
    "seed_everything",
    "ModelCheckpoint",
    "EarlyStopping",
    "Callback",
    "CSVLogger",
    "TensorBoardLogger",
    "Logger",
    "ProgressBar",
    "CombinedLoader",
    "MisconfigurationException",
    "LightningModule",
    "LightningDataModule",
]
