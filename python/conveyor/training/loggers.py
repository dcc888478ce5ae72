"""Experiment loggers writing to ``<save_dir>/<name>/version_<N>``: CSV always, TensorBoard
when the ``tensorboard`` package is installed."""

from __future__ import annotations

import csv
import io
import os
from argparse import Namespace
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Union

import yaml


def next_version(root: Union[str, os.PathLike]) -> int:
    """``max + 1`` over the ``version_<int>`` directories in ``root`` (0 when there are none)."""
    root = Path(root)
    if not root.is_dir():
        return 0
    versions = []
    for entry in root.iterdir():
        if entry.is_dir() and entry.name.startswith("version_"):
            suffix = entry.name[len("version_") :]
            if suffix.isdigit():
                versions.append(int(suffix))
    return max(versions) + 1 if versions else 0


def _plain(value: Any) -> Any:
    """Hyperparameters as YAML-safe values (anything exotic becomes its repr)."""
    if isinstance(value, Namespace):
        value = vars(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()
    return repr(value)


class Logger:
    """Base class: a versioned directory plus ``log_metrics`` / ``log_hyperparams``."""

    def __init__(
        self,
        save_dir: Union[str, os.PathLike],
        name: Optional[str] = "lightning_logs",
        version: Optional[Union[int, str]] = None,
    ) -> None:
        self._save_dir = str(save_dir)
        self._name = name or ""
        self._version = version

    @property
    def save_dir(self) -> str:
        return self._save_dir

    @property
    def name(self) -> str:
        return self._name

    @property
    def root_dir(self) -> str:
        return os.path.join(self._save_dir, self._name)

    @property
    def version(self) -> Union[int, str]:
        if self._version is None:
            self._version = next_version(self.root_dir)
        return self._version

    @property
    def log_dir(self) -> str:
        version = self.version if isinstance(self.version, str) else f"version_{self.version}"
        return os.path.join(self.root_dir, version)

    def log_hyperparams(self, params: Any) -> None: ...
    def log_metrics(self, metrics: Dict[str, float], step: Optional[int] = None) -> None: ...
    def save(self) -> None: ...
    def finalize(self, status: str) -> None:
        self.save()


class CSVLogger(Logger):
    """Writes ``metrics.csv`` (one row per logging call, the union of keys as columns) and
    ``hparams.yaml`` in the version directory.

    Args:
        save_dir: the parent directory (the Trainer passes ``default_root_dir``).
        name: the experiment folder name.
        version: an int gives ``version_<v>``, a str is used verbatim, None picks max + 1.
        flush_logs_every_n_steps: rewrite the CSV after this many logging calls.
    """

    NAME_METRICS_FILE = "metrics.csv"
    NAME_HPARAMS_FILE = "hparams.yaml"

    def __init__(
        self,
        save_dir: Union[str, os.PathLike],
        name: Optional[str] = "lightning_logs",
        version: Optional[Union[int, str]] = None,
        flush_logs_every_n_steps: int = 100,
    ) -> None:
        super().__init__(save_dir, name, version)
        self._rows: List[Dict[str, Any]] = []
        self._hparams: Dict[str, Any] = {}
        self._flush_every = flush_logs_every_n_steps
        self._pending = 0

    def log_hyperparams(self, params: Any) -> None:
        self._hparams.update(_plain(params or {}))
        os.makedirs(self.log_dir, exist_ok=True)
        with open(os.path.join(self.log_dir, self.NAME_HPARAMS_FILE), "w") as handle:
            yaml.safe_dump(self._hparams, handle, sort_keys=False)

    def log_metrics(self, metrics: Dict[str, float], step: Optional[int] = None) -> None:
        row = {k: (v.item() if hasattr(v, "item") else v) for k, v in metrics.items()}
        row["step"] = step if step is not None else len(self._rows)
        self._rows.append(row)
        self._pending += 1
        if self._pending >= self._flush_every:
            self.save()

    def save(self) -> None:
        if not self._rows and not os.path.isdir(self.log_dir):
            return
        os.makedirs(self.log_dir, exist_ok=True)
        keys: List[str] = []
        for row in self._rows:
            keys.extend(k for k in row if k not in keys)
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=keys)
        writer.writeheader()
        writer.writerows(self._rows)
        path = os.path.join(self.log_dir, self.NAME_METRICS_FILE)
        with open(path + ".tmp", "w", newline="") as handle:
            handle.write(buffer.getvalue())
        os.replace(path + ".tmp", path)
        self._pending = 0


def tensorboard_available() -> bool:
    try:
        import tensorboard  # noqa: F401
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except Exception:
        return False
    return True


class TensorBoardLogger(Logger):
    """TensorBoard event files in the version directory (needs the ``tensorboard`` package)."""

    def __init__(
        self,
        save_dir: Union[str, os.PathLike],
        name: Optional[str] = "lightning_logs",
        version: Optional[Union[int, str]] = None,
    ) -> None:
        if not tensorboard_available():
            raise ModuleNotFoundError(
                "TensorBoardLogger needs the `tensorboard` package: pip install tensorboard"
            )
        super().__init__(save_dir, name, version)
        self._writer = None

    @property
    def experiment(self):
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            os.makedirs(self.log_dir, exist_ok=True)
            self._writer = SummaryWriter(log_dir=self.log_dir)
        return self._writer

    def log_hyperparams(self, params: Any) -> None:
        params = _plain(params or {})
        os.makedirs(self.log_dir, exist_ok=True)
        with open(os.path.join(self.log_dir, CSVLogger.NAME_HPARAMS_FILE), "w") as handle:
            yaml.safe_dump(params, handle, sort_keys=False)
        self.experiment.add_text("hparams", yaml.safe_dump(params))

    def log_metrics(self, metrics: Dict[str, float], step: Optional[int] = None) -> None:
        for key, value in metrics.items():
            self.experiment.add_scalar(key, value, step)

    def save(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    def finalize(self, status: str) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
