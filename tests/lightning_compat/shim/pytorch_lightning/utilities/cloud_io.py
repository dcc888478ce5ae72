"""``pytorch_lightning.utilities.cloud_io.load``: read a checkpoint as conveyor reads it."""

from conveyor.training.checkpoint_io import load_checkpoint as load

__all__ = ["load"]
