"""``pytorch_lightning`` as Lightning 1.6's tests import it, mapped onto conveyor.

Written for conveyor's Lightning-compatibility runner (run_lightning_tests.py): every name is
conveyor's own object, so a test that patches ``pytorch_lightning.Trainer.__init__`` patches
``conveyor.Trainer``. Nothing here re-implements Lightning.
"""

from conveyor.training import (
    Callback,
    DataModule,
    Module,
    Trainer,
    seed_everything,
)

LightningModule = Module
LightningDataModule = DataModule

__all__ = [
    "Callback",
    "LightningDataModule",
    "LightningModule",
    "Trainer",
    "seed_everything",
]
