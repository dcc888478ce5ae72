"""Trainer configuration rules shared by its parts: environment-variable defaults, the
``accumulate_grad_batches`` check, and whether a hook is overridden (Lightning 1.6's rules)."""

from __future__ import annotations

import functools
from typing import Any

from conveyor.training import argparse as conveyor_argparse
from conveyor.training.errors import MisconfigurationException


def defaults_from_env_vars(init):
    """Let ``CONVEYOR_TRAINER_<ARG>`` environment variables supply defaults (explicit wins)."""

    @functools.wraps(init)
    def insert_env_defaults(self, *args, **kwargs):
        cls = type(self)
        if args:
            names = [name for name, _, _ in conveyor_argparse.get_init_arguments_and_types(cls)]
            kwargs.update(dict(zip(names, args)))
        env = vars(conveyor_argparse.parse_env_variables(cls))
        return init(self, **{**env, **kwargs})

    return insert_env_defaults


def is_overridden(obj: Any, name: str, base: type) -> bool:
    """Whether ``obj`` defines hook ``name`` itself (not ``base``'s no-op, not ``None``)."""
    if getattr(obj, name, None) is None:  # `model.validation_epoch_end = None` disables it
        return False
    if name in getattr(obj, "__dict__", {}):  # set on the instance (DataModule.from_datasets)
        return True
    method = getattr(type(obj), name, None)
    return method is not None and method is not getattr(base, name, None)


def validate_accumulation(value):
    """``accumulate_grad_batches`` as Lightning 1.6 accepts it: an int >= 1 or {epoch: n}."""
    if value is None:
        return 1
    if isinstance(value, dict):
        if not all(
            isinstance(k, int) and isinstance(v, int) and k >= 0 and v >= 1
            for k, v in value.items()
        ):
            raise MisconfigurationException(
                f"accumulate_grad_batches={value!r}: expected {{epoch >= 0: n >= 1}}"
            )
        return dict(sorted(value.items()))
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise TypeError(f"Gradient accumulation supports only int and dict types, got {value!r}")
    return value
