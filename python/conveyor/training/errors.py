"""Errors raised by the training layer."""

from conveyor.errors import ConveyorError


class MisconfigurationException(ConveyorError, ValueError):
    """A Trainer, callback or module is configured in a way that cannot work (Lightning's name)."""
