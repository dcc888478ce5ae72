"""``pytorch_lightning.callbacks`` mapped onto :mod:`conveyor.callbacks` (the public module a
ported script imports)."""

from conveyor.callbacks import *  # noqa: F401,F403
from conveyor.callbacks import __all__  # noqa: F401
