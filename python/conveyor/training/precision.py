"""Precision settings: Lightning 1.x values (16, 32, 64, "bf16") and Lightning 2 spellings."""

from __future__ import annotations

import contextlib
import warnings
from typing import Any, Optional, Union

import torch

from conveyor.training.batch import apply_to_tensors
from conveyor.training.errors import MisconfigurationException

_CANONICAL = {
    "32": "32-true",
    "32-true": "32-true",
    "16": "16-mixed",
    "16-mixed": "16-mixed",
    "bf16": "bf16-mixed",
    "bf16-mixed": "bf16-mixed",
    "64": "64-true",
    "64-true": "64-true",
}


def canonical_precision(precision: Union[int, str]) -> str:
    """Map 16/32/64/"bf16" and "16-mixed"/"bf16-mixed"/"32-true"/"64-true" to one spelling.

    Raises:
        MisconfigurationException: any other value.
    """
    key = str(precision).strip()
    if key not in _CANONICAL or isinstance(precision, bool):
        raise MisconfigurationException(
            f"Precision {precision!r} is invalid. Allowed precision values: 16, 32, 64, 'bf16', "
            "'16-mixed', 'bf16-mixed', '32-true', '64-true'"
        )
    return _CANONICAL[key]


class PrecisionPlugin:
    """Autocast, gradient scaling and dtype conversion for one canonical precision."""

    def __init__(self, precision: str, device: torch.device) -> None:
        if precision == "16-mixed" and device.type == "cpu":
            warnings.warn(
                "You passed `precision=16` on the CPU: float16 autocast is not supported there, "
                "using bf16 instead.",
                stacklevel=3,
            )
            precision = "bf16-mixed"
        self.precision = precision
        self.device = device
        self.scaler: Optional[torch.amp.GradScaler] = None
        if precision == "16-mixed" and device.type == "cuda":
            self.scaler = torch.amp.GradScaler("cuda")

    @property
    def autocast_dtype(self) -> Optional[torch.dtype]:
        return {"16-mixed": torch.float16, "bf16-mixed": torch.bfloat16}.get(self.precision)

    def forward_context(self):
        dtype = self.autocast_dtype
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    def convert_module(self, module: torch.nn.Module) -> torch.nn.Module:
        return module.double() if self.precision == "64-true" else module

    def convert_input(self, batch: Any) -> Any:
        if self.precision != "64-true":
            return batch
        return apply_to_tensors(batch, lambda t: t.double() if torch.is_floating_point(t) else t)

    def scale_loss(self, loss: torch.Tensor) -> torch.Tensor:
        return self.scaler.scale(loss) if self.scaler is not None else loss

    def unscale(self, optimizer: torch.optim.Optimizer) -> None:
        """Unscale gradients before clipping (so clipping sees the true gradients)."""
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)

    def optimizer_step(self, optimizer: torch.optim.Optimizer, closure=None) -> None:
        if self.scaler is not None:
            self.scaler.step(optimizer)
            self.scaler.update()
        elif closure is not None:
            optimizer.step(closure)
        else:
            optimizer.step()

    def state_dict(self) -> dict:
        return self.scaler.state_dict() if self.scaler is not None else {}

    def load_state_dict(self, state: dict) -> None:
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)
