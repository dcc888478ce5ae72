"""``RunIf``: a ``skipif`` mark for the requirements Lightning's tests declare.

Each keyword is one requirement; an unmet one skips the test with the requirement as reason.
Requirements this runner does not know how to check skip too (never silently run).
"""

from __future__ import annotations

import os
import sys
from importlib.util import find_spec

import pytest
import torch


def RunIf(**requirements):  # noqa: N802 - Lightning's name
    reasons = []
    for name, wanted in requirements.items():
        if name == "min_gpus":
            if torch.cuda.device_count() < wanted:
                reasons.append(f"needs {wanted} GPU(s)")
        elif name == "skip_windows":
            if wanted and sys.platform == "win32":
                reasons.append("not on Windows")
        elif name == "omegaconf":
            if wanted and find_spec("omegaconf") is None:
                reasons.append("needs omegaconf")
        elif name == "standalone":
            if wanted and os.getenv("PL_RUN_STANDALONE_TESTS") != "1":
                reasons.append("standalone test (set PL_RUN_STANDALONE_TESTS=1)")
        elif wanted:
            reasons.append(f"requirement {name}={wanted!r} not checked by conveyor's runner")
    return pytest.mark.skipif(bool(reasons), reason="; ".join(reasons) or "met")
