"""Reading and writing checkpoint files.

Writes are atomic: the checkpoint goes to a temporary file in the same directory, is fsynced,
then renamed over the final name (and the directory fsynced), so a process killed mid-write
leaves either the previous file or none, never a truncated ``.ckpt``.

Checkpoints from ``http(s)://`` URLs are downloaded once into a cache
(``$CONVEYOR_CACHE`` or ``~/.cache/conveyor/checkpoints``) with a progress bar and are always
loaded with ``torch.load(..., weights_only=True)``, which refuses arbitrary pickled code.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import urllib.parse
import urllib.request
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
        with _suppress_os_error():
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


class _suppress_os_error:
    def __enter__(self):
        return self

    def __exit__(self, kind, value, traceback):
        return kind is not None and issubclass(kind, OSError)


def cache_dir() -> Path:
    root = os.environ.get("CONVEYOR_CACHE")
    base = Path(root) if root else Path.home() / ".cache" / "conveyor"
    return base / "checkpoints"


def download_checkpoint(url: str, progress: bool = True) -> Path:
    """Download ``url`` into the cache once and return the local path.

    The cache file name is the URL's last path component prefixed by a hash of the whole URL,
    so two URLs never share a file; a partial download never takes the final name.
    """
    name = Path(urllib.parse.urlparse(url).path).name or "checkpoint.ckpt"
    digest = hashlib.sha256(url.encode()).hexdigest()[:16]
    target = cache_dir() / f"{digest}-{name}"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        with urllib.request.urlopen(url, timeout=60) as response, os.fdopen(fd, "wb") as handle:
            total = response.headers.get("Content-Length")
            bar = None
            if progress:
                from tqdm.auto import tqdm

                bar = tqdm(total=int(total) if total else None, unit="B", unit_scale=True,
                           desc=f"Downloading {name}", file=sys.stderr)
            while True:
                chunk = response.read(1 << 20)
                if not chunk:
                    break
                handle.write(chunk)
                if bar is not None:
                    bar.update(len(chunk))
            if bar is not None:
                bar.close()
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        with _suppress_os_error():
            os.unlink(temporary)
        raise
    return target


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
        raise RuntimeError(f"Checkpoint at {path} could not be loaded (truncated or not a checkpoint): {error}") from error
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise RuntimeError(f"Checkpoint at {path} is not a conveyor/Lightning checkpoint: it has no 'state_dict'")
    return checkpoint


def remove_checkpoint(path: Union[str, os.PathLike]) -> None:
    with _suppress_os_error():
        os.remove(path)


__all__ = ["atomic_save", "load_checkpoint", "download_checkpoint", "is_url", "cache_dir", "remove_checkpoint"]
