"""The callbacks a Lightning 1.x script imports from ``pytorch_lightning.callbacks``, under the
same names, so porting stays an import swap::

    from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint
    # becomes
    from conveyor.callbacks import EarlyStopping, ModelCheckpoint

The classes live in :mod:`conveyor.training`; this module only gathers them.
"""

from conveyor.training.checkpoint import ModelCheckpoint
from conveyor.training.early_stopping import EarlyStopping
from conveyor.training.hooks import Callback
from conveyor.training.progress import ProgressBar
from conveyor.training.timer import Timer

TQDMProgressBar = ProgressBar  # Lightning 1.6's name for its tqdm bar
ProgressBarBase = ProgressBar

__all__ = [
    "Callback",
    "EarlyStopping",
    "ModelCheckpoint",
    "ProgressBar",
    "ProgressBarBase",
    "TQDMProgressBar",
    "Timer",
]
