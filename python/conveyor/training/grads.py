"""``Trainer(track_grad_norm=p)`` (Lightning 1.6): the p-norm of every parameter's gradient and
of all of them together, logged after backward and before clipping."""

from __future__ import annotations

from typing import Dict, Union

import torch

from conveyor.training.errors import MisconfigurationException


def validate_norm_type(track_grad_norm: Union[int, float, str]) -> float:
    """-1 (off), a positive number, or ``"inf"`` (a number's string too, as a command line
    gives it); returned as a float.

    Raises:
        MisconfigurationException: anything else (0, a negative number other than -1, a bool,
            another string).
    """
    if isinstance(track_grad_norm, str) and track_grad_norm != "inf":
        # the command line gives a string (Lightning's argparse parses this flag as a float)
        try:
            track_grad_norm = float(track_grad_norm)
        except ValueError:
            pass
    if track_grad_norm == -1 and not isinstance(track_grad_norm, bool):
        return -1.0
    number = (
        isinstance(track_grad_norm, (int, float)) and not isinstance(track_grad_norm, bool)
    ) or track_grad_norm == "inf"
    if not number or float(track_grad_norm) <= 0:
        raise MisconfigurationException(
            "`track_grad_norm` must be a positive number or 'inf' (infinity norm). "
            f"Got {track_grad_norm}."
        )
    return float(track_grad_norm)


def grad_norm(
    module: torch.nn.Module, norm_type: Union[float, int, str], group_separator: str = "/"
) -> Dict[str, float]:
    """Each parameter's gradient p-norm, keyed ``grad_{p}_norm{sep}{name}``, and the norm of all
    gradients seen as one vector, ``grad_{p}_norm_total``; values rounded to 4 decimals, as
    Lightning's ``grad_norm`` gives them. Parameters without a gradient are left out; no
    gradient at all gives ``{}``.

    Raises:
        ValueError: a norm type that is not positive.
    """
    norm_type = float(norm_type)
    if norm_type <= 0:
        raise ValueError(
            f"`norm_type` must be a positive number or 'inf' (infinity norm). Got {norm_type}"
        )
    norms = {
        f"grad_{norm_type}_norm{group_separator}{name}": parameter.grad.detach()
        .float()
        .norm(norm_type)
        .item()
        for name, parameter in module.named_parameters()
        if parameter.grad is not None
    }
    if not norms:
        return {}
    # the norm of the per-parameter norms is the norm of the concatenated gradients
    norms[f"grad_{norm_type}_norm_total"] = (
        torch.tensor(list(norms.values())).norm(norm_type).item()
    )
    return {key: round(value, 4) for key, value in norms.items()}
