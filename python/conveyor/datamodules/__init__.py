"""Ready-made DataModules."""

from conveyor.datamodules.voc import VOCDataModule

__all__ = ["VOCDataModule"]
