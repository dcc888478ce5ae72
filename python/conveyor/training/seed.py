"""Seeding every random number generator a training run touches."""

from __future__ import annotations

import os
import random
import warnings
from typing import Any, Dict, Optional, Tuple, cast

import numpy as np
import torch

SEED_ENV = "CONVEYOR_GLOBAL_SEED"
_MAX_SEED = np.iinfo(np.uint32).max


def seed_everything(seed: Optional[int] = None, workers: bool = False) -> int:
    """Seed Python's ``random``, NumPy and torch (CPU and CUDA).

    Args:
        seed: the seed; None reads ``CONVEYOR_GLOBAL_SEED`` (or ``PL_GLOBAL_SEED``) and otherwise
            picks one at random with a warning. Out-of-range values also pick one at random.
        workers: record that DataLoader workers should derive their seeds from it
            (``CONVEYOR_SEED_WORKERS=1``, read by :func:`worker_init_fn`).

    Returns:
        The seed used.
    """
    if seed is None:
        env_seed = os.environ.get(SEED_ENV) or os.environ.get("PL_GLOBAL_SEED")
        if env_seed is None:
            seed = random.randint(0, _MAX_SEED)
            warnings.warn(f"No seed found, seed set to {seed}", stacklevel=2)
        else:
            try:
                seed = int(env_seed)
            except ValueError:
                seed = random.randint(0, _MAX_SEED)
                warnings.warn(f"Invalid seed found: {env_seed!r}, seed set to {seed}", stacklevel=2)
    elif not isinstance(seed, int):
        seed = int(seed)
    if not (0 <= seed <= _MAX_SEED):
        new_seed = random.randint(0, _MAX_SEED)
        warnings.warn(
            f"{seed} is not in bounds, numpy accepts from 0 to {_MAX_SEED}; seed set to {new_seed}",
            stacklevel=2,
        )
        seed = new_seed
    os.environ[SEED_ENV] = str(seed)
    os.environ["CONVEYOR_SEED_WORKERS"] = str(int(workers))
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return seed


def worker_init_fn(worker_id: int) -> None:
    """Seed NumPy and ``random`` in a torch DataLoader worker from torch's per-worker seed."""
    worker_seed = torch.initial_seed() % 2**32
    np.random.seed(worker_seed)
    random.seed(worker_seed)


def capture_rng_states() -> Dict[str, Any]:
    """Every global RNG state, in types that ``torch.load(weights_only=True)`` accepts."""
    # the legacy (default) form: (name, keys, pos, has_gauss, cached_gaussian)
    np_state = cast(Tuple[str, np.ndarray, int, int, float], np.random.get_state())
    states: Dict[str, Any] = {
        "python": _to_plain(random.getstate()),
        "numpy": [
            np_state[0],
            torch.from_numpy(np_state[1].astype(np.int64)),
            int(np_state[2]),
            int(np_state[3]),
            float(np_state[4]),
        ],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: Dict[str, Any]) -> None:
    """Undo :func:`capture_rng_states`."""
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def _to_plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_to_plain(v) for v in value]
    return value
