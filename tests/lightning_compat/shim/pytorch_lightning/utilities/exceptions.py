"""``pytorch_lightning.utilities.exceptions`` mapped onto conveyor's exception."""

from conveyor.training.errors import MisconfigurationException

__all__ = ["MisconfigurationException"]
