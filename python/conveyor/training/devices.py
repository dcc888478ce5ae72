"""Choosing the device(s) from ``accelerator``, ``devices`` and Lightning 1.x's ``gpus``."""

from __future__ import annotations

from typing import List, Optional, Sequence, Union

import torch

from conveyor.training.errors import MisconfigurationException


def parse_gpu_ids(gpus: Optional[Union[int, str, Sequence[int]]]) -> Optional[List[int]]:
    """Lightning's ``gpus`` rules.

    N gives devices 0..N-1; -1 or "-1" all visible GPUs; "1,2" gives [1, 2]; "0," gives [0];
    0, "0", [] and None mean no GPU.

    Raises:
        MisconfigurationException: a malformed value or a GPU that is not available.
    """
    if gpus is None or isinstance(gpus, bool):
        return None
    if isinstance(gpus, str):
        text = gpus.strip()
        if text in ("", "0"):
            return None
        if text == "-1":
            ids = list(range(torch.cuda.device_count()))
        elif "," in text:
            try:
                ids = [int(part) for part in text.split(",") if part.strip()]
            except ValueError as error:
                raise MisconfigurationException(
                    f"gpus={gpus!r}: expected an int, -1 or a comma list such as '0,1'"
                ) from error
        else:
            try:
                count = int(text)
            except ValueError as error:
                raise MisconfigurationException(
                    f"gpus={gpus!r}: expected an int, -1 or a comma list such as '0,1'"
                ) from error
            return parse_gpu_ids(count)
    elif isinstance(gpus, int):
        if gpus == 0:
            return None
        if gpus == -1:
            ids = list(range(torch.cuda.device_count()))
        elif gpus < -1:
            raise MisconfigurationException(
                f"gpus={gpus}: must be -1 (all), 0 (none) or a positive count"
            )
        else:
            ids = list(range(gpus))
    elif isinstance(gpus, (list, tuple)):
        if not gpus:
            return None
        ids = [int(g) for g in gpus]
    else:
        raise MisconfigurationException(f"gpus={gpus!r}: unsupported type {type(gpus).__name__}")
    available = torch.cuda.device_count()
    missing = [i for i in ids if i < 0 or i >= available]
    if missing or not ids:
        raise MisconfigurationException(
            f"You requested gpus: {ids}\n But your machine only has: {list(range(available))}"
        )
    return ids


def resolve_devices(accelerator: Optional[str], devices, gpus) -> tuple:
    """Return ``(device_type, device_indices_or_count)`` for this process."""
    gpu_ids = parse_gpu_ids(gpus)
    if gpu_ids is not None:
        return "cuda", gpu_ids
    if accelerator in (None, "cpu"):
        kind = "cpu"
    elif accelerator == "auto":
        kind = "cuda" if torch.cuda.is_available() else "cpu"
    elif accelerator in ("gpu", "cuda"):
        if not torch.cuda.is_available():
            raise MisconfigurationException(
                f"accelerator={accelerator!r} but no CUDA GPU is available"
            )
        kind = "cuda"
    else:
        raise MisconfigurationException(
            f"accelerator={accelerator!r}: use 'cpu', 'gpu', 'cuda' or 'auto'"
        )
    if devices in (None, "auto"):
        return kind, [0] if kind == "cuda" else 1
    if isinstance(devices, str):
        text = devices.strip()
        if "," in text:
            devices = [int(p) for p in text.split(",") if p.strip()]
        else:
            try:
                devices = int(text)
            except ValueError as error:
                raise MisconfigurationException(
                    f"devices={devices!r}: expected an int, -1 or a comma list"
                ) from error
    if kind == "cuda":
        return kind, parse_gpu_ids(
            devices if not isinstance(devices, int) or devices != 0 else None
        ) or [0]
    if isinstance(devices, (list, tuple)):
        devices = len(devices)
    if devices == -1:
        devices = 1
    if not isinstance(devices, int) or devices < 1:
        raise MisconfigurationException(
            f"devices={devices!r}: expected a positive number of CPU processes"
        )
    return kind, devices
