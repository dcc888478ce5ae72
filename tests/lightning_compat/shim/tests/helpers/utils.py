"""``tests.helpers.utils`` functions Lightning's tests call, on conveyor."""

from __future__ import annotations

import conveyor
from conveyor.training.loggers import TensorBoardLogger


def get_default_logger(save_dir, version=None):
    """The logger a default Trainer would create under ``save_dir``."""
    return TensorBoardLogger(save_dir, name="lightning_logs", version=version)


def reset_seed(seed: int = 0) -> None:
    conveyor.seed_everything(seed)
