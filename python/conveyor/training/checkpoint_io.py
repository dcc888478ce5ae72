"""Reading and writing checkpoint files.

Writes are atomic: the checkpoint goes to a temporary file in the same directory, is fsynced,
then renamed over the final name (and the directory fsynced), so a process killed mid-write
leaves either the previous file or none, never a truncated ``.ckpt``.

Checkpoints from ``http(s)://`` URLs are downloaded once into a cache
(``$CONVEYOR_CACHE`` or ``~/.cache/conveyor/checkpoints``) with a progress bar and are always
loaded with ``torch.load(..., weights_only=True)``, which refuses arbitrary pickled code.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import urllib.parse
from pathlib import Path
from typing import Any, Dict, Union

import torch

_URL_SCHEMES = ("http://", "https://")


def is_url(path: Union[str, os.PathLike]) -> bool:
    return str(path).startswith(_URL_SCHEMES)


def atomic_save(checkpoint: Dict[str, Any], filepath: Union[str, os.PathLike]) -> None:
    """``torch.save`` to ``filepath`` through a fsynced temporary file and a rename."""
    target = Path(filepath)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(checkpoint, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _fsync_directory(target.parent)


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def cache_dir() -> Path:
    root = os.environ.get("CONVEYOR_CACHE")
    base = Path(root) if root else Path.home() / ".cache" / "conveyor"
    return base / "checkpoints"


def download_checkpoint(url: str, progress: bool = True) -> Path:
    """Download ``url`` into the cache once and return the local path.

    The cache file name is the URL's last path component prefixed by a hash of the whole URL,
    so two URLs never share a file; a partial download never takes the final name (the
    datasets' atomic, resumable ``download_url`` does the transfer).
    """
    from conveyor.datasets.download import download_url

    name = Path(urllib.parse.urlparse(url).path).name or "checkpoint.ckpt"
    digest = hashlib.sha256(url.encode()).hexdigest()[:16]
    return download_url(url, cache_dir(), filename=f"{digest}-{name}", progress=progress)


def load_checkpoint(path: Union[str, os.PathLike], map_location: Any = "cpu") -> Dict[str, Any]:
    """Load a checkpoint from a local path or an ``http(s)://`` URL.

    Raises:
        FileNotFoundError: the local file does not exist.
        RuntimeError: the file is not a loadable checkpoint (truncated, not a torch file).
    """
    if is_url(path):
        local = download_checkpoint(str(path))
    else:
        local = Path(path)
        if not local.is_file():
            raise FileNotFoundError(f"Checkpoint at {path} not found. Aborting training.")
    try:
        checkpoint = torch.load(local, map_location=map_location, weights_only=True)
    except Exception as error:
        raise RuntimeError(
            f"Checkpoint at {path} could not be loaded (truncated or not a checkpoint): {error}"
        ) from error
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise RuntimeError(
            f"Checkpoint at {path} is not a conveyor/Lightning checkpoint: it has no 'state_dict'"
        )
    return checkpoint


def remove_checkpoint(path: Union[str, os.PathLike]) -> None:
    with contextlib.suppress(OSError):
        os.remove(path)


__all__ = [
    "atomic_save",
    "load_checkpoint",
    "download_checkpoint",
    "is_url",
    "cache_dir",
    "remove_checkpoint",
]
