"""``pytorch_lightning.callbacks`` mapped onto :mod:`conveyor.callbacks` (the public module a
ported script imports)."""

import sys as _sys

from conveyor.callbacks import *  # noqa: F401,F403
from conveyor.callbacks import __all__  # noqa: F401
from conveyor.training import checkpoint as model_checkpoint  # noqa: F401

# `mock.patch("pytorch_lightning.callbacks.model_checkpoint.time")` patches conveyor's module
_sys.modules[__name__ + ".model_checkpoint"] = model_checkpoint
