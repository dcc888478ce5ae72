"""Public import path kept for Lightning-1.x-style scripts: the implementation lives in
:mod:`conveyor.training.argparse`."""

from conveyor.training.argparse import *  # noqa: F401,F403
from conveyor.training.argparse import __all__  # noqa: F401
