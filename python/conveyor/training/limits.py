"""How many batches of a loader one epoch or evaluation uses (``limit_*_batches``)."""

from __future__ import annotations

import math
from typing import Any, Optional, Union

from conveyor.training.errors import MisconfigurationException


def validate_limit(limit: Optional[Union[int, float]], name: str) -> Union[int, float]:
    """None means all (1.0); an int is a count; a float in [0, 1] a fraction.

    Raises:
        MisconfigurationException: anything else (a bool, a negative count, a fraction outside [0, 1]).
    """
    if limit is None:
        return 1.0
    if isinstance(limit, bool) or not isinstance(limit, (int, float)):
        raise MisconfigurationException(
            f"`limit_{name}_batches` must be an int or a float in [0, 1], got {limit!r}"
        )
    if isinstance(limit, int) and limit < 0:
        raise MisconfigurationException(
            f"`limit_{name}_batches`={limit}: a batch count must be >= 0"
        )
    if isinstance(limit, float) and not 0.0 <= limit <= 1.0:
        raise MisconfigurationException(
            f"`limit_{name}_batches`={limit}: a fraction must be in [0.0, 1.0]"
        )
    return limit


def loader_length(loader: Any) -> float:
    try:
        return float(len(loader))
    except (TypeError, NotImplementedError):
        return math.inf


def num_batches(loader: Any, limit: Union[int, float], name: str) -> Union[int, float]:
    """The number of batches to draw from ``loader`` under ``limit``.

    Raises:
        MisconfigurationException: a fraction of a loader without a length, or a non-zero
            fraction that rounds to 0 batches.
    """
    length = loader_length(loader)
    if isinstance(limit, int):
        return int(min(length, limit))
    if length == math.inf:
        if limit in (0.0, 1.0):
            return 0 if limit == 0.0 else math.inf
        raise MisconfigurationException(
            f"`limit_{name}_batches`={limit} is a fraction, but the {name} loader has no length: "
            "pass an int number of batches instead"
        )
    count = int(length * limit)
    if limit > 0 and count == 0:
        raise MisconfigurationException(
            f"You requested to check {limit} of the `{name}_dataloader` but {limit} * {int(length)} < 1. "
            f"Please increase the `limit_{name}_batches` argument. Try at least "
            f"`limit_{name}_batches={1.0 / length}`"
        )
    return count
