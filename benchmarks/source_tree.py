"""Which conveyor a benchmark measures: this checkout's build when ``make inplace`` made one
(python/conveyor has its ``_core``), else the installed package (``make install``).

Importing this module puts the source tree first on ``sys.path`` when it has a build;
``SOURCE_TREE`` is that folder (for subprocesses' ``PYTHONPATH``), or None.
"""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCE_TREE = REPO / "python" if any((REPO / "python" / "conveyor").glob("_core*")) else None
if SOURCE_TREE is not None and str(SOURCE_TREE) not in sys.path:
    sys.path.insert(0, str(SOURCE_TREE))
