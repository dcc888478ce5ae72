"""``pytorch_lightning.loggers`` mapped onto conveyor's loggers."""

from conveyor.training.loggers import CSVLogger, Logger, TensorBoardLogger

LightningLoggerBase = Logger

__all__ = ["CSVLogger", "LightningLoggerBase", "Logger", "TensorBoardLogger"]
